//! Test doubles of [`Remote`]: an in-memory library ([`MemRemote`]) that counts requests and
//! can ignore Range headers, a failure-injecting wrapper ([`Faulty`]) that breaks listings
//! and download bodies on demand, and a wrapper that takes uploads while their content is
//! written ([`Streams`]) and breaks those on demand. `forward_to_inner!` writes the methods a
//! wrapper passes on to its inner remote unchanged.

use std::collections::HashMap;
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use chrono::NaiveDate;
use parking_lot::Mutex;

use crate::api::{ApiError, Download, File, Folder, Id, Listing, Remote, SizeHint};

#[derive(Default)]
struct Library {
    /// (parent, folder) in creation order.
    folders: Vec<(Id, Folder)>,
    files: Vec<(File, Arc<Vec<u8>>)>,
    next_id: u64,
    /// With [`MemRemote::set_bigint_ids`]: the last folder and file numbers given.
    bigint: Option<(u64, u64)>,
    /// Trashed files and folders: gone from listings, their names still reserved.
    trashed_files: Vec<File>,
    trashed_folders: Vec<(Id, Folder)>,
}

/// An in-memory Cloudify library.
#[derive(Default)]
pub struct MemRemote {
    lib: Mutex<Library>,
    lists: AtomicUsize,
    heads: AtomicUsize,
    numeric_sizes: AtomicBool,
    ignore_range: AtomicBool,
    /// Storage tells no length (no Content-Length, no Content-Range), as a streamed proxy.
    no_length: AtomicBool,
    /// Sleep inside `list_folder`, so concurrent callers overlap.
    list_delay: Mutex<Duration>,
    uploads: AtomicUsize,
    /// The next N uploads fail with a server error.
    fail_uploads: AtomicUsize,
    /// The next N removals (trash or delete) of a file fail with a server error.
    fail_removals: AtomicUsize,
}

fn date() -> chrono::NaiveDateTime {
    NaiveDate::from_ymd_opt(2026, 2, 4)
        .and_then(|d| d.and_hms_opt(15, 26, 17))
        .unwrap_or_default()
}

impl MemRemote {
    pub fn new() -> MemRemote {
        MemRemote::default()
    }

    fn next_id(lib: &mut Library, folder: bool) -> Id {
        if let Some((folders, files)) = &mut lib.bigint {
            let n = if folder { folders } else { files };
            *n += 1;
            return Id::new(n.to_string());
        }
        lib.next_id += 1;
        Id::new(format!("0190aaaa-0000-7000-8000-{:012x}", lib.next_id))
    }

    /// Numbers new folders and files 1, 2, 3... each kind on its own, as a BIGINT install
    /// does, so a folder and a file may share an id.
    pub fn set_bigint_ids(&self) {
        self.lib.lock().bigint.get_or_insert((0, 0));
    }

    pub fn add_folder(&self, parent: &Id, name: &str) -> Id {
        let mut lib = self.lib.lock();
        let id = Self::next_id(&mut lib, true);
        let folder = Folder {
            id: id.clone(),
            name: name.to_string(),
            created_at: Some(date()),
            updated_at: Some(date()),
        };
        lib.folders.push((parent.clone(), folder));
        id
    }

    pub fn add_file(&self, folder: &Id, name: &str, ext: &str, bytes: Vec<u8>) -> Id {
        let mut lib = self.lib.lock();
        let id = Self::next_id(&mut lib, false);
        let basename = format!("{}.{ext}", name.to_lowercase().replace(' ', "-"));
        let file = File {
            id: id.clone(),
            name: name.to_string(),
            basename: Some(basename.clone()),
            url: Some(format!("f/{basename}")),
            full_url: Some(format!("http://storage.invalid/{id}")),
            indirect_url: Some(format!("http://site.invalid/media/files/x/{id}")),
            size: None,
            mime_type: None,
            folder_id: Some(folder.clone()),
            created_at: Some(date()),
            updated_at: Some(date()),
        };
        lib.files.push((file, Arc::new(bytes)));
        id
    }

    /// Listings carry numeric (exact) sizes instead of rounded text.
    pub fn set_numeric_sizes(&self, on: bool) {
        self.numeric_sizes.store(on, Ordering::SeqCst);
    }

    /// Downloads ignore the requested range and send the whole file.
    pub fn set_ignore_range(&self, on: bool) {
        self.ignore_range.store(on, Ordering::SeqCst);
    }

    /// Storage tells no length: HEADs answer without one, downloads carry no total, and
    /// listings round sizes down ("1,00 KB" for 1500 bytes), as for a private file served
    /// only by a streamed `indirect_url`.
    pub fn set_no_length(&self, on: bool) {
        self.no_length.store(on, Ordering::SeqCst);
    }

    pub fn set_list_delay(&self, d: Duration) {
        *self.list_delay.lock() = d;
    }

    /// The next `n` uploads fail with a server refusal.
    pub fn fail_next_uploads(&self, n: usize) {
        self.fail_uploads.store(n, Ordering::SeqCst);
    }

    /// The next `n` removals of a file (trash or delete) fail with a server error, as after
    /// the client's retries.
    pub fn fail_next_removals(&self, n: usize) {
        self.fail_removals.store(n, Ordering::SeqCst);
    }

    /// Takes one of the failures [`Self::fail_next_removals`] asked for.
    fn removal_fails(&self, context: &str) -> Result<(), ApiError> {
        let failing = self
            .fail_removals
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        match failing {
            Ok(_) => Err(ApiError::Server {
                context: context.into(),
                status: 503,
                message: "injected removal failure".into(),
            }),
            Err(_) => Ok(()),
        }
    }

    pub fn uploads(&self) -> usize {
        self.uploads.load(Ordering::SeqCst)
    }

    /// Live files of `folder` as (name, extension, bytes).
    pub fn files_in(&self, folder: &Id) -> Vec<(String, Option<String>, Vec<u8>)> {
        let lib = self.lib.lock();
        lib.files
            .iter()
            .filter(|(f, _)| f.folder_id.as_ref() == Some(folder))
            .map(|(f, b)| (f.name.clone(), f.extension(), b.to_vec()))
            .collect()
    }

    /// Live subfolder names of `folder`.
    pub fn folders_in(&self, folder: &Id) -> Vec<String> {
        let lib = self.lib.lock();
        lib.folders
            .iter()
            .filter(|(p, _)| p == folder)
            .map(|(_, f)| f.name.clone())
            .collect()
    }

    pub fn lists(&self) -> usize {
        self.lists.load(Ordering::SeqCst)
    }

    pub fn heads(&self) -> usize {
        self.heads.load(Ordering::SeqCst)
    }

    /// The listing of a folder, without counting a request.
    pub fn list_folder_now(&self, folder: &Id) -> Listing {
        let lib = self.lib.lock();
        let numeric = self.numeric_sizes.load(Ordering::SeqCst);
        let round_down = self.no_length.load(Ordering::SeqCst);
        let folders = lib
            .folders
            .iter()
            .filter(|(p, _)| p == folder)
            .map(|(_, f)| f.clone())
            .collect();
        let files = lib
            .files
            .iter()
            .filter(|(f, _)| f.folder_id.as_ref() == Some(folder))
            .map(|(f, bytes)| {
                let mut f = f.clone();
                let n = bytes.len() as u64;
                f.size = Some(if numeric {
                    SizeHint::Exact(n)
                } else if round_down {
                    SizeHint::Approx(n / 1024 * 1024)
                } else {
                    SizeHint::Approx(n.div_ceil(1024) * 1024)
                });
                f
            })
            .collect();
        Listing { folders, files }
    }

    fn bytes_of(&self, id: &Id) -> Option<Arc<Vec<u8>>> {
        let lib = self.lib.lock();
        lib.files
            .iter()
            .find(|(f, _)| &f.id == id)
            .map(|(_, b)| b.clone())
    }
}

/// `name`, or `name-1`, `name-2`... when taken (compared case-insensitively).
fn free_name(name: &str, taken: &[String]) -> String {
    let mut candidate = name.to_string();
    let mut n = 0;
    while taken.contains(&candidate.to_lowercase()) {
        n += 1;
        candidate = format!("{name}-{n}");
    }
    candidate
}

fn not_found(what: &str) -> ApiError {
    ApiError::NotFound {
        context: what.to_string(),
        message: "not found".to_string(),
    }
}

impl Remote for MemRemote {
    fn list_folder(&self, folder: &Id) -> Result<Listing, ApiError> {
        self.lists.fetch_add(1, Ordering::SeqCst);
        let delay = *self.list_delay.lock();
        if !delay.is_zero() {
            std::thread::sleep(delay);
        }
        Ok(self.list_folder_now(folder))
    }

    fn get_folder(&self, id: &Id) -> Result<Folder, ApiError> {
        let lib = self.lib.lock();
        lib.folders
            .iter()
            .find(|(_, f)| &f.id == id)
            .map(|(_, f)| f.clone())
            .ok_or_else(|| not_found("GET folder"))
    }

    fn create_folder(&self, parent: &Id, name: &str) -> Result<Folder, ApiError> {
        let taken: Vec<String> = {
            let lib = self.lib.lock();
            lib.folders
                .iter()
                .chain(lib.trashed_folders.iter())
                .filter(|(p, _)| p == parent)
                .map(|(_, f)| f.name.to_lowercase())
                .collect()
        };
        let name = free_name(name.trim(), &taken);
        let id = self.add_folder(parent, &name);
        self.get_folder(&id)
    }

    fn trash_folder(&self, id: &Id) -> Result<(), ApiError> {
        let mut lib = self.lib.lock();
        let gone: Vec<(Id, Folder)> = lib
            .folders
            .iter()
            .filter(|(_, f)| &f.id == id)
            .cloned()
            .collect();
        lib.folders.retain(|(_, f)| &f.id != id);
        lib.trashed_folders.extend(gone);
        Ok(())
    }

    fn delete_folder(&self, id: &Id) -> Result<(), ApiError> {
        let mut lib = self.lib.lock();
        lib.folders.retain(|(_, f)| &f.id != id);
        lib.trashed_folders.retain(|(_, f)| &f.id != id);
        Ok(())
    }

    fn upload_file(&self, folder: &Id, name: &str, path: &Path) -> Result<File, ApiError> {
        self.uploads.fetch_add(1, Ordering::SeqCst);
        let refuse = |message: &str| ApiError::Refused {
            context: "POST /media/files".into(),
            message: message.into(),
        };
        let failing = self.fail_uploads.load(Ordering::SeqCst);
        if failing > 0 {
            self.fail_uploads.store(failing - 1, Ordering::SeqCst);
            return Err(refuse("injected upload failure"));
        }
        let bytes = std::fs::read(path).map_err(|source| ApiError::Local {
            context: "upload".into(),
            source,
        })?;
        let (stem, ext) = name.rsplit_once('.').unwrap_or((name, ""));
        if bytes.is_empty() || ext == "exe" {
            return Err(ApiError::TypeNotAllowed {
                context: "POST /media/files".into(),
                message: "The file type is not allowed".into(),
            });
        }
        let taken: Vec<String> = {
            let lib = self.lib.lock();
            lib.files
                .iter()
                .map(|(f, _)| f)
                .chain(lib.trashed_files.iter())
                .filter(|f| f.folder_id.as_ref() == Some(folder))
                .map(|f| f.name.to_lowercase())
                .collect()
        };
        let stem = free_name(stem, &taken);
        let id = self.add_file(folder, &stem, ext, bytes);
        let lib = self.lib.lock();
        Ok(lib
            .files
            .iter()
            .find(|(f, _)| f.id == id)
            .map(|(f, _)| f.clone())
            .unwrap_or_else(|| unreachable!()))
    }

    fn trash_file(&self, id: &Id) -> Result<(), ApiError> {
        self.removal_fails("PATCH trash")?;
        let mut lib = self.lib.lock();
        let Some(pos) = lib.files.iter().position(|(f, _)| &f.id == id) else {
            return Err(ApiError::Refused {
                context: "PATCH trash".into(),
                message: "Error when deleting selected item(s)".into(),
            });
        };
        let (f, _) = lib.files.remove(pos);
        lib.trashed_files.push(f);
        Ok(())
    }

    fn delete_file(&self, id: &Id) -> Result<(), ApiError> {
        self.removal_fails("DELETE /media/files")?;
        let mut lib = self.lib.lock();
        lib.files.retain(|(f, _)| &f.id != id);
        lib.trashed_files.retain(|f| &f.id != id);
        Ok(())
    }

    fn content_length(&self, file: &File) -> Result<Option<u64>, ApiError> {
        self.heads.fetch_add(1, Ordering::SeqCst);
        let bytes = self.bytes_of(&file.id).ok_or_else(|| not_found("HEAD"))?;
        if self.no_length.load(Ordering::SeqCst) {
            return Ok(None);
        }
        Ok(Some(bytes.len() as u64))
    }

    fn download(&self, file: &File, offset: u64, end: Option<u64>) -> Result<Download, ApiError> {
        let bytes = self
            .bytes_of(&file.id)
            .ok_or_else(|| not_found("GET content"))?;
        let len = bytes.len() as u64;
        let (start, stop) = if self.ignore_range.load(Ordering::SeqCst) {
            (0, len)
        } else {
            (offset.min(len), end.unwrap_or(len).min(len))
        };
        let body = bytes[start as usize..stop.max(start) as usize].to_vec();
        Ok(Download {
            start,
            total_len: (!self.no_length.load(Ordering::SeqCst)).then_some(len),
            body: Box::new(io::Cursor::new(body)),
        })
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(5)
    }
}

/// A reader that fails with ConnectionReset after `left` bytes.
struct BreakingBody {
    inner: Box<dyn Read + Send>,
    left: u64,
}

impl Read for BreakingBody {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "injected break",
            ));
        }
        let max = buf.len().min(self.left as usize);
        let n = self.inner.read(&mut buf[..max])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// Writes the named [`Remote`] methods of a wrapping double as calls of the same method of
/// its `inner` remote with the same arguments, so that the double's `impl Remote` spells out
/// only the methods it changes: `forward_to_inner! { get_folder, timeout, }` beside them. A
/// provided method neither named nor written keeps the trait's default: `start_upload` then
/// streams nothing, whatever `inner` does. It calls itself by name, so a module imports it
/// (`use crate::fs::testing::forward_to_inner;`) rather than calling it by its path.
macro_rules! forward_to_inner {
    ($($method:ident),+ $(,)?) => {
        $(forward_to_inner!(@ $method);)+
    };
    // Each method as `Remote` declares it, after `&self`; `Result<T>` is `Result<T, ApiError>`.
    (@ list_folder) => {
        forward_to_inner!(@ list_folder(folder: &$crate::api::Id) -> Result<$crate::api::Listing>);
    };
    (@ get_folder) => {
        forward_to_inner!(@ get_folder(id: &$crate::api::Id) -> Result<$crate::api::Folder>);
    };
    (@ create_folder) => {
        forward_to_inner!(@ create_folder(parent: &$crate::api::Id, name: &str)
            -> Result<$crate::api::Folder>);
    };
    (@ trash_folder) => {
        forward_to_inner!(@ trash_folder(id: &$crate::api::Id) -> Result<()>);
    };
    (@ delete_folder) => {
        forward_to_inner!(@ delete_folder(id: &$crate::api::Id) -> Result<()>);
    };
    (@ upload_file) => {
        forward_to_inner!(@ upload_file(
            folder: &$crate::api::Id, name: &str, path: &::std::path::Path
        ) -> Result<$crate::api::File>);
    };
    (@ start_upload) => {
        forward_to_inner!(@ start_upload(folder: &$crate::api::Id, name: &str)
            -> Option<Box<dyn $crate::api::UploadStream>>);
    };
    (@ trash_file) => {
        forward_to_inner!(@ trash_file(id: &$crate::api::Id) -> Result<()>);
    };
    (@ delete_file) => {
        forward_to_inner!(@ delete_file(id: &$crate::api::Id) -> Result<()>);
    };
    (@ content_length) => {
        forward_to_inner!(@ content_length(file: &$crate::api::File) -> Result<Option<u64>>);
    };
    (@ download) => {
        forward_to_inner!(@ download(file: &$crate::api::File, offset: u64, end: Option<u64>)
            -> Result<$crate::api::Download>);
    };
    (@ timeout) => {
        forward_to_inner!(@ timeout() -> ::std::time::Duration);
    };
    (@ $name:ident($($arg:ident: $ty:ty),*) -> Result<$ok:ty>) => {
        forward_to_inner!(@ $name($($arg: $ty),*) -> Result<$ok, $crate::api::ApiError>);
    };
    (@ $name:ident($($arg:ident: $ty:ty),*) -> $answer:ty) => {
        fn $name(&self, $($arg: $ty),*) -> $answer {
            self.inner.$name($($arg),*)
        }
    };
    (@ $other:ident) => {
        compile_error!(concat!("forward_to_inner: Remote has no method ", stringify!($other)));
    };
}
pub(crate) use forward_to_inner;

/// Wraps a remote and injects failures.
pub struct Faulty<R> {
    pub inner: R,
    /// Errors the next listings answer with, front first.
    list_errors: Mutex<Vec<ApiError>>,
    /// For the next `n` downloads, the body breaks after `after` bytes.
    breaks: Mutex<(usize, u64)>,
    /// Downloads per file id, for assertions.
    pub downloads_by_id: Mutex<HashMap<Id, usize>>,
    /// How many of the next HEADs fail (with a server error, before reaching `inner`).
    head_failures: Mutex<usize>,
}

impl<R: Remote> Faulty<R> {
    pub fn new(inner: R) -> Faulty<R> {
        Faulty {
            inner,
            list_errors: Mutex::new(Vec::new()),
            breaks: Mutex::new((0, 0)),
            downloads_by_id: Mutex::new(HashMap::new()),
            head_failures: Mutex::new(0),
        }
    }

    pub fn fail_next_heads(&self, n: usize) {
        *self.head_failures.lock() = n;
    }

    pub fn fail_next_list(&self, e: ApiError) {
        self.list_errors.lock().push(e);
    }

    pub fn break_next_bodies(&self, n: usize, after: u64) {
        *self.breaks.lock() = (n, after);
    }
}

impl<R: Remote> Remote for Faulty<R> {
    forward_to_inner! {
        get_folder, create_folder, trash_folder, delete_folder, upload_file, trash_file,
        delete_file, timeout,
    }

    fn list_folder(&self, folder: &Id) -> Result<Listing, ApiError> {
        let injected = {
            let mut errors = self.list_errors.lock();
            (!errors.is_empty()).then(|| errors.remove(0))
        };
        match injected {
            Some(e) => Err(e),
            None => self.inner.list_folder(folder),
        }
    }

    fn content_length(&self, file: &File) -> Result<Option<u64>, ApiError> {
        let fail = {
            let mut left = self.head_failures.lock();
            let fail = *left > 0;
            *left = left.saturating_sub(1);
            fail
        };
        if fail {
            return Err(ApiError::Server {
                context: format!("HEAD of file {}", file.id),
                status: 503,
                message: "Service Unavailable".into(),
            });
        }
        self.inner.content_length(file)
    }

    fn download(&self, file: &File, offset: u64, end: Option<u64>) -> Result<Download, ApiError> {
        *self
            .downloads_by_id
            .lock()
            .entry(file.id.clone())
            .or_default() += 1;
        let mut d = self.inner.download(file, offset, end)?;
        let mut breaks = self.breaks.lock();
        if breaks.0 > 0 {
            breaks.0 -= 1;
            d.body = Box::new(BreakingBody {
                inner: d.body,
                left: breaks.1,
            });
        }
        Ok(d)
    }
}

/// How the next streamed upload of a [`Streams`] remote breaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamFault {
    /// `send` fails once the body would pass this many bytes (the connection broke).
    SendAfter(u64),
    /// `finish` fails with a server error (503) after the whole body was taken.
    FinishServerError,
    /// `finish` fails with the server's refusal of the content's type.
    FinishTypeRefused,
    /// `send` panics once the body would pass this many bytes (a bug in the sending code).
    SendPanics(u64),
}

/// What happened to the streamed uploads of a [`Streams`] remote.
#[derive(Default)]
pub struct StreamCounts {
    pub started: AtomicUsize,
    /// Finished and stored.
    pub stored: AtomicUsize,
    /// Dropped unfinished: the request was cut off and nothing stored.
    pub abandoned: AtomicUsize,
    /// Finished with an injected failure.
    pub failed: AtomicUsize,
}

/// A [`MemRemote`] that also takes uploads while their content is written
/// ([`Remote::start_upload`]), as the HTTP client does, and breaks them on demand. A
/// finished streamed upload is stored by the inner remote's `upload_file`, so it counts in
/// [`MemRemote::uploads`] and follows the same naming and type rules.
pub struct Streams {
    pub inner: Arc<MemRemote>,
    pub counts: Arc<StreamCounts>,
    faults: Mutex<Vec<StreamFault>>,
}

impl Streams {
    pub fn new(inner: Arc<MemRemote>) -> Streams {
        Streams {
            inner,
            counts: Arc::default(),
            faults: Mutex::new(Vec::new()),
        }
    }

    /// The next streamed upload breaks so (faults are taken in order, one per upload).
    pub fn break_next_stream(&self, fault: StreamFault) {
        self.faults.lock().push(fault);
    }

    pub fn started(&self) -> usize {
        self.counts.started.load(Ordering::SeqCst)
    }

    pub fn stored(&self) -> usize {
        self.counts.stored.load(Ordering::SeqCst)
    }

    pub fn abandoned(&self) -> usize {
        self.counts.abandoned.load(Ordering::SeqCst)
    }

    pub fn failed(&self) -> usize {
        self.counts.failed.load(Ordering::SeqCst)
    }
}

struct MemUpload {
    remote: Arc<MemRemote>,
    counts: Arc<StreamCounts>,
    folder: Id,
    name: String,
    body: Vec<u8>,
    fault: Option<StreamFault>,
    done: bool,
}

impl crate::api::UploadStream for MemUpload {
    fn send(&mut self, data: bytes::Bytes) -> Result<(), ApiError> {
        if let Some(StreamFault::SendAfter(n)) = self.fault
            && (self.body.len() + data.len()) as u64 > n
        {
            return Err(ApiError::Network {
                context: "POST /media/files".into(),
                message: "injected break of a streamed upload".into(),
            });
        }
        if let Some(StreamFault::SendPanics(n)) = self.fault
            && (self.body.len() + data.len()) as u64 > n
        {
            panic!("injected panic in a streamed upload");
        }
        self.body.extend_from_slice(&data);
        Ok(())
    }

    fn finish(mut self: Box<Self>) -> Result<File, ApiError> {
        self.done = true;
        let context = "POST /media/files".to_string();
        let failure = match self.fault {
            Some(StreamFault::FinishServerError) => Some(ApiError::Server {
                context,
                status: 503,
                message: "injected failure of a streamed upload".into(),
            }),
            Some(StreamFault::FinishTypeRefused) => Some(ApiError::TypeNotAllowed {
                context,
                message: "The file type is not allowed".into(),
            }),
            _ => None,
        };
        if let Some(e) = failure {
            self.counts.failed.fetch_add(1, Ordering::SeqCst);
            return Err(e);
        }
        let local = |source| ApiError::Local {
            context: "streamed upload".into(),
            source,
        };
        let tmp = tempfile::NamedTempFile::new().map_err(local)?;
        std::fs::write(tmp.path(), &self.body).map_err(local)?;
        let stored = self
            .remote
            .upload_file(&self.folder, &self.name, tmp.path())?;
        self.counts.stored.fetch_add(1, Ordering::SeqCst);
        Ok(stored)
    }
}

impl Drop for MemUpload {
    fn drop(&mut self) {
        if !self.done {
            self.counts.abandoned.fetch_add(1, Ordering::SeqCst);
        }
    }
}

impl Remote for Streams {
    forward_to_inner! {
        list_folder, get_folder, create_folder, trash_folder, delete_folder, upload_file,
        trash_file, delete_file, content_length, download, timeout,
    }

    fn start_upload(&self, folder: &Id, name: &str) -> Option<Box<dyn crate::api::UploadStream>> {
        self.counts.started.fetch_add(1, Ordering::SeqCst);
        let fault = {
            let mut faults = self.faults.lock();
            (!faults.is_empty()).then(|| faults.remove(0))
        };
        Some(Box::new(MemUpload {
            remote: self.inner.clone(),
            counts: self.counts.clone(),
            folder: folder.clone(),
            name: name.to_string(),
            body: Vec::new(),
            fault,
            done: false,
        }))
    }
}
