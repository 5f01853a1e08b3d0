//! Uploads that run while a new file is written.
//!
//! A new file written from its start by appending only (cp, a saved download, an export)
//! starts its upload once it holds [`STREAM_FROM`] bytes: the bytes so far are read back
//! from the staged file, and every later write is handed to a worker of the file's own,
//! which writes it to the staged file and then sends it with the upload. The store at
//! close then ends the upload's body and waits for the server's answer, instead of sending
//! the whole file after the program finished writing: the upload overlaps the writing, as
//! mountpoint-s3 does for sequential writes. A write answers once its bytes are handed over,
//! so the program's writing, the staged copy and the upload run side by side; a writer
//! faster than the network waits while the worker holds [`HELD`] bytes, so a large file to
//! a distant server takes about the time of its upload, with bounded memory.
//!
//! The staged file still gets every byte, so nothing depends on the streamed upload. Every
//! other use of the staged content (a read, a truncation, a store from it) first waits
//! until the worker has written all bytes handed to it ([`drain`]). Whenever the upload
//! cannot be used, it is dropped, which cuts its request off before the body is whole (the
//! server stores only a complete form), and the store uploads the staged file as it always
//! did. That happens after
//! - a write anywhere but at the end (a seek back, a gap), a truncation, a rename or an
//!   unlink before the store;
//! - a failure or stall of the upload while the file is written (the worker waits for the
//!   network at most the client's timeout per piece);
//! - a failure of the upload at the store, unless the server refused the content for good
//!   (its type or size): the staged copy is then uploaded, with the usual retries, before the
//!   close answers.
//!
//! Should writing the staged file fail, the worker stops and keeps the bytes it could not
//! write; the next use of the staged content writes them itself, and fails with the error
//! if that fails again (a write, a read or the close then answers the error).
//!
//! Not streamed at all: content that replaces a file on the server (the safe overwrite of
//! [`super::store`] deletes the old file first), a new name without an extension (it waits
//! for a better name, see `waits_for_a_name`), `--write-back` (the upload waits by design),
//! and more than [`MAX_STREAMS`] files at once (each has a worker and buffers).

use std::collections::VecDeque;
use std::fs;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex, MutexGuard};

use super::Pending;
use crate::api::UploadStream;
use crate::fs::{CloudifyFs, FsError};

/// Content below this size is uploaded at close only: small files gain little from an
/// upload that overlaps their writing.
pub const STREAM_FROM: u64 = 4 * 1024 * 1024;

/// Files uploaded while written at one time; more are uploaded at close.
pub const MAX_STREAMS: usize = 4;

/// Bytes handed to a file's worker and not yet written and sent, beyond which its writers
/// wait.
pub const HELD: usize = 4 * 1024 * 1024;

/// Every this many bytes written, the worker lets go of the staged copy's pages but the
/// last [`KEEP_CACHED`] bytes (see [`Shared::run`]).
const RELEASE_EVERY: u64 = 32 * 1024 * 1024;
const KEEP_CACHED: u64 = 16 * 1024 * 1024;

/// How a pending file's content may reach the server.
#[derive(Default)]
pub enum Streaming {
    /// Written only by appending since it was created; no upload started yet.
    #[default]
    Candidate,
    /// Being uploaded while written.
    On(Arc<Stream>),
    /// Uploaded from the staged file by the store.
    Off,
}

/// The worker of one file: the bytes handed to it, the staged file and the upload.
pub struct Stream {
    shared: Arc<Shared>,
    /// The folder id and file name it uploads to.
    folder: String,
    name: String,
    /// Counts the streams of the mount; this one leaves the count when dropped.
    active: Arc<AtomicUsize>,
}

struct Shared {
    state: Mutex<Worker>,
    /// Signalled whenever the worker's state changes.
    changed: Condvar,
    path: String,
    /// Buffers of large pieces, used again once a piece is written and sent.
    pool: Arc<Pool>,
}

/// Pieces of at least this size go into buffers of the stream's [`Pool`].
const POOLED_FROM: usize = 256 * 1024;

/// Buffers kept for reuse: enough for what a stream holds at once in pieces of 1 MiB (the
/// most the kernel writes at a time), with the upload's own buffer of pieces.
const POOL_MAX: usize = HELD / (1024 * 1024) + 8;

/// The buffers of a stream's large pieces. Allocated afresh for every write, buffers of a
/// MiB came from whichever FUSE thread's malloc arena served the write and went back there
/// once sent, so a copy of a GiB left tens of MiB of free memory spread over the arenas;
/// a stream uses the same few buffers over and over instead.
#[derive(Default)]
struct Pool {
    free: Mutex<Vec<Vec<u8>>>,
}

/// A piece in a pooled buffer; the buffer goes back to the pool when the piece is dropped.
struct Pooled {
    buf: Vec<u8>,
    pool: Arc<Pool>,
}

impl AsRef<[u8]> for Pooled {
    fn as_ref(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        let mut free = self.pool.free.lock();
        if free.len() < POOL_MAX {
            free.push(buf);
        }
    }
}

impl Shared {
    /// A copy of a write's bytes, to be handed to the worker.
    fn piece(&self, data: &[u8]) -> Bytes {
        if data.len() < POOLED_FROM {
            return Bytes::copy_from_slice(data);
        }
        let mut buf = self.pool.free.lock().pop().unwrap_or_default();
        buf.clear();
        buf.extend_from_slice(data);
        Bytes::from_owner(Pooled {
            buf,
            pool: self.pool.clone(),
        })
    }
}

struct Worker {
    /// The content from offset `front` on that is not both written and sent yet.
    pieces: VecDeque<Bytes>,
    front: u64,
    /// The end of the content handed over.
    end: u64,
    /// The staged file holds the content up to here.
    written: u64,
    held: usize,
    /// `None` once the upload failed (or was dropped, or taken by the store).
    upload: Option<Box<dyn UploadStream>>,
    /// The worker is sending a piece (it has the upload out).
    sending: bool,
    /// Writing the staged file failed: the worker stopped, leaving the rest to [`drain`].
    failed: Option<io::Error>,
    /// The stream is dropped: the worker ends.
    dropped: bool,
}

impl Worker {
    /// The first piece not written to the staged file, with its offset.
    fn unwritten(&self) -> Option<(u64, Bytes)> {
        let mut at = self.front;
        for piece in &self.pieces {
            let next = at + piece.len() as u64;
            if next > self.written {
                return Some((at, piece.clone()));
            }
            at = next;
        }
        None
    }

    /// Drops the front piece once it is written and sent (or nothing is sent any more).
    fn pop_front(&mut self) {
        if let Some(piece) = self.pieces.pop_front() {
            self.front += piece.len() as u64;
            self.held -= piece.len();
        }
    }
}

impl Shared {
    /// The worker: writes the pieces to the staged file, then sends them.
    ///
    /// The staged copy of a large file goes on to the disk as it grows: every
    /// [`RELEASE_EVERY`] bytes, its pages before the last [`KEEP_CACHED`] bytes are released
    /// (`POSIX_FADV_DONTNEED` starts their writeback and drops those already written out).
    /// Otherwise a copy of a GiB would take a GiB of memory as dirty pages until its upload
    /// ended, on top of the copy the program read, and the kernel would have to evict other
    /// files' pages for it as fast as the program writes; released pages go back to the
    /// allocator for the next pieces. The copy is only read again should the upload fail.
    fn run(&self, file: fs::File) {
        let mut released = 0;
        let mut w = self.state.lock();
        loop {
            if w.dropped {
                return;
            }
            if w.written >= released + RELEASE_EVERY {
                released = w.written;
                let upto = released - KEEP_CACHED;
                MutexGuard::unlocked(&mut w, || release_pages(&file, upto));
                continue;
            }
            if w.failed.is_none()
                && let Some((at, piece)) = w.unwritten()
            {
                let wrote = MutexGuard::unlocked(&mut w, || file.write_all_at(&piece, at));
                match wrote {
                    Ok(()) => w.written = at + piece.len() as u64,
                    Err(e) => {
                        log::warn!(
                            "{}: writing the staged copy failed ({e}); trying again at the \
                             next use of the file, which is then uploaded from it",
                            self.path
                        );
                        // The staged copy must be whole before anything is stored.
                        w.failed = Some(e);
                        w.upload = None;
                        self.changed.notify_all();
                        return;
                    }
                }
                self.changed.notify_all();
                continue;
            }
            let written_front = w
                .pieces
                .front()
                .filter(|piece| w.front + piece.len() as u64 <= w.written);
            if let Some(piece) = written_front.cloned() {
                if let Some(mut upload) = w.upload.take() {
                    w.sending = true;
                    let sent = MutexGuard::unlocked(&mut w, || upload.send(piece));
                    w.sending = false;
                    match sent {
                        Ok(()) if !w.dropped => w.upload = Some(upload),
                        Ok(()) => {}
                        Err(e) => log::info!(
                            "{}: the upload while writing stopped ({e}); the file is uploaded \
                             from its staged copy when it is closed",
                            self.path
                        ),
                    }
                }
                w.pop_front();
                self.changed.notify_all();
                continue;
            }
            self.changed.wait(&mut w);
        }
    }
}

/// Asks the kernel to write out and drop the cached pages of `file` below `upto`.
fn release_pages(file: &fs::File, upto: u64) {
    use std::os::fd::AsRawFd;
    let Ok(len) = libc::off_t::try_from(upto) else {
        return;
    };
    // SAFETY: a plain call on an open descriptor; no memory is passed.
    let status =
        unsafe { libc::posix_fadvise(file.as_raw_fd(), 0, len, libc::POSIX_FADV_DONTNEED) };
    if status != 0 {
        log::debug!("posix_fadvise: {}", io::Error::from_raw_os_error(status));
    }
}

/// Leaves the worker's state consistent however it ends (also by a panic): with the
/// upload dropped and `failed` set, the bytes it did not write are written by [`drain`],
/// nobody waits for a piece to be sent and the store uploads the staged copy.
struct Ended<'a>(&'a Shared);

impl Drop for Ended<'_> {
    fn drop(&mut self) {
        let mut w = self.0.state.lock();
        w.failed
            .get_or_insert_with(|| io::Error::other("the worker of the upload ended"));
        w.upload = None;
        w.sending = false;
        self.0.changed.notify_all();
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let mut w = self.shared.state.lock();
        w.dropped = true;
        // Unfinished: its request is cut off (when the worker is sending, it drops it).
        w.upload = None;
        self.shared.changed.notify_all();
        drop(w);
        self.active.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Waits until the staged file holds every byte handed to the worker of `st`, writing
/// them itself when the worker failed to. Call under the slot's lock before any other use
/// of the staged content.
pub fn drain(st: &Pending) -> Result<(), FsError> {
    let Streaming::On(stream) = &st.stream else {
        return Ok(());
    };
    let shared = &stream.shared;
    let mut w = shared.state.lock();
    while w.written < w.end {
        if w.failed.is_none() {
            shared.changed.wait(&mut w);
            continue;
        }
        // The worker stopped (and dropped the upload): write the rest here.
        let Some((at, piece)) = w.unwritten() else {
            break;
        };
        if let Err(e) = st.file.write_all_at(&piece, at) {
            return Err(FsError::Io {
                what: format!("writing {}", st.staged.data.display()),
                source: Arc::new(e),
            });
        }
        w.written = at + piece.len() as u64;
        w.pop_front();
    }
    Ok(())
}

/// Stops uploading `st` while it is written, keeping every byte in the staged file: its
/// request is cut off and the next store uploads the staged file. For a truncation or a
/// rename.
pub fn stop(st: &mut Pending) -> Result<(), FsError> {
    drain(st)?;
    if let Streaming::On(stream) = &st.stream {
        log::debug!(
            "{}: changed other than by appending; uploaded from its staged copy instead of \
             while written",
            stream.shared.path
        );
    }
    st.stream = Streaming::Off;
    Ok(())
}

/// Drops the streamed upload of `st` with the bytes not written yet: for an unlink, after
/// which nothing of the content is stored.
pub fn discard(st: &mut Pending) {
    st.stream = Streaming::Off;
}

/// A streamed write after the slot's lock: waits while the worker holds too much.
pub struct Handed(Arc<Shared>);

impl Handed {
    pub fn wait_for_room(self) {
        let mut w = self.0.state.lock();
        while w.held > HELD && w.failed.is_none() && !w.dropped {
            self.0.changed.wait(&mut w);
        }
    }
}

impl CloudifyFs {
    /// Called by a write under the slot's lock before it touches the staged file: hands
    /// the bytes to the worker of a streamed file (`Some`: the write is done but for
    /// [`Handed::wait_for_room`] after the lock), starting the upload when the content
    /// reaches [`STREAM_FROM`]. `None`: the write goes to the staged file as always (any
    /// upload while written was stopped, its bytes all in the staged file).
    pub(super) fn stream_write(
        &self,
        st: &mut Pending,
        offset: u64,
        data: &[u8],
    ) -> Result<Option<Handed>, FsError> {
        let end = offset + data.len() as u64;
        let appended = offset == st.size;
        match &st.stream {
            Streaming::Off => return Ok(None),
            Streaming::On(stream) if appended => {
                let shared = &stream.shared;
                let mut w = shared.state.lock();
                if w.failed.is_none() {
                    w.pieces.push_back(shared.piece(data));
                    w.end = end;
                    w.held += data.len();
                    shared.changed.notify_all();
                    return Ok(Some(Handed(shared.clone())));
                }
                // The worker failed: the staged file takes over.
            }
            Streaming::Candidate if appended && end < STREAM_FROM => return Ok(None),
            Streaming::Candidate if appended => {
                st.stream = match self.start_stream(st) {
                    Some(stream) => Streaming::On(Arc::new(stream)),
                    None => Streaming::Off,
                };
                return self.stream_write(st, offset, data);
            }
            _ => {}
        }
        stop(st)?;
        Ok(None)
    }

    /// Starts the upload of `st` with the bytes staged so far, if it may be streamed.
    fn start_stream(&self, st: &Pending) -> Option<Stream> {
        let new_file = st.replaces.is_none()
            && st.stored.is_none()
            && st.backup.is_none()
            && st.obsolete.is_empty()
            && !st.unlinked;
        let allowed = super::ops::check_extension(
            self.config.allowed_extensions.as_deref(),
            &st.manifest.name,
        )
        .is_ok();
        if !new_file
            || !allowed
            || !self.config.write_back.is_zero()
            || super::ops::waits_for_a_name(st)
        {
            return None;
        }
        let active = self.writes.streams.clone();
        let taken = active.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
            (n < MAX_STREAMS).then_some(n + 1)
        });
        if taken.is_err() {
            return None;
        }
        let stream = Stream {
            shared: Arc::new(Shared {
                state: Mutex::new(Worker {
                    pieces: VecDeque::new(),
                    front: 0,
                    end: 0,
                    written: 0,
                    held: 0,
                    upload: None,
                    sending: false,
                    failed: None,
                    dropped: false,
                }),
                changed: Condvar::new(),
                path: st.manifest.path.clone(),
                pool: Arc::default(),
            }),
            folder: st.manifest.folder.clone(),
            name: st.manifest.name.clone(),
            active,
        };
        let path = &stream.shared.path;
        let file = st
            .file
            .try_clone()
            .map_err(|e| log::debug!("{path}: cannot share the staged file: {e}"))
            .ok()?;
        // The bytes written so far, read back from the staged file: the start of the body.
        let mut prefix = vec![0; st.size as usize];
        if let Err(e) = st.file.read_exact_at(&mut prefix, 0) {
            log::debug!("{path}: reading the staged copy: {e}");
            return None;
        }
        let upload = self
            .remote
            .start_upload(&st.manifest.folder_id(), &st.manifest.name)?;
        {
            let mut w = stream.shared.state.lock();
            w.upload = Some(upload);
            w.end = st.size;
            w.written = st.size;
            w.held = prefix.len();
            if !prefix.is_empty() {
                w.pieces.push_back(Bytes::from(prefix));
            }
        }
        let shared = stream.shared.clone();
        let spawned = std::thread::Builder::new()
            .name("cloudify-stream".into())
            .spawn(move || {
                let _ended = Ended(&shared);
                shared.run(file);
            });
        if let Err(e) = spawned {
            log::debug!("{path}: cannot start the upload while written: {e}");
            return None;
        }
        log::debug!("{path}: uploading while written");
        Some(stream)
    }

    /// Called by a store under the slot's lock: the streamed upload that holds exactly the
    /// content of `st`, to be ended after the lock ([`ForStore::upload`]), once the staged
    /// file holds it all too. The stream is dropped either way: content written after this
    /// store goes through the staged file.
    pub(super) fn stream_for_store(&self, st: &mut Pending) -> Result<Option<ForStore>, FsError> {
        drain(st)?;
        let Streaming::On(stream) = std::mem::replace(&mut st.stream, Streaming::Off) else {
            return Ok(None);
        };
        let same = stream.folder == st.manifest.folder
            && stream.name == st.manifest.name
            && st.replaces.is_none()
            && st.obsolete.is_empty()
            && !st.unlinked;
        Ok(same.then_some(ForStore(stream)))
    }
}

/// A streamed upload that holds a pending file's whole content, for its store.
pub struct ForStore(Arc<Stream>);

impl ForStore {
    /// The upload, once the worker sent it every byte; `None` when it failed meanwhile.
    pub fn upload(self) -> Option<Box<dyn UploadStream>> {
        let shared = &self.0.shared;
        let mut w = shared.state.lock();
        while w.upload.is_some() || w.sending {
            if w.pieces.is_empty() && !w.sending {
                return w.upload.take();
            }
            shared.changed.wait(&mut w);
        }
        None
    }
}
