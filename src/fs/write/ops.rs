//! The changing operations of [`CloudifyFs`]: create, open for writing, write, flush,
//! fsync, release, setattr, unlink, mkdir, rmdir, rename, and what the mount refuses
//! (symlinks, hard links, special files: EPERM; extended attributes: ENOTSUP). Every one
//! answers EROFS on a `--read-only` mount.
//!
//! The rules are those of ../shared/DESIGN.md; [`super`] describes the pending state and
//! its locks, [`super::store`] the safe overwrite.

use std::ffi::OsStr;
use std::os::unix::fs::FileExt;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use super::staging::{Manifest, Staged, upload_name};
use super::store::{self, Job};
use super::stream::{self, Streaming};
use super::{Handle, Pending, Slot};
use crate::api::{File, Id, SizeHint};
use crate::fs::config::DeleteMode;
use crate::fs::dir::{self, DirEntry};
use crate::fs::inode::{Ino, Key, LocalFile, Node, RemoteFile};
use crate::fs::names::{NAME_MAX, display_name};
use crate::fs::{CloudifyFs, Entry, FsError, Opened};

/// When content is stored, which decides what may wait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StoreAt {
    /// A close, a truncation or a rename without `--write-back`: a new file whose name has
    /// no extension waits (see [`waits_for_a_name`]).
    Close,
    /// `fsync` and unmount: whatever is pending is stored.
    Sync,
    /// The write-back delay has passed: a file still open for writing waits for its last
    /// close, which schedules it again.
    Due,
}

/// Whether pending content waits for a better name instead of being stored at close: a new
/// file whose name has no extension. Cloudify would name it by its content (`sedAbC123`
/// becomes `sedAbC123.txt`), and such names are mostly temporary ones (sed -i, Python's
/// `tempfile`) that are renamed right after the close; the rename then stores the content
/// once under its final name.
pub(super) fn waits_for_a_name(st: &Pending) -> bool {
    st.replaces.is_none()
        && st.stored.is_none()
        && st.obsolete.is_empty()
        && extension_of_name(&st.manifest.name).is_none()
}

/// A handle opened for writing only takes its writes past the page cache (FOPEN_DIRECT_IO):
/// nothing can read through it, and the pages the kernel would fill from the writes (a
/// copy of every byte) are dropped at the next open of the file anyway, while the write
/// goes from the program's buffer straight to the mount. Other handles keep the page cache
/// (the kernel drops their cached pages that such a write changes).
fn write_only(flags: i32, mut opened: Opened) -> Opened {
    opened.direct_io = flags & libc::O_ACCMODE == libc::O_WRONLY;
    opened
}

/// What a name in a directory stands for now.
enum Target {
    Pending(Ino),
    Listed(Box<DirEntry>),
}

/// The settable attributes of `setattr`.
#[derive(Clone, Copy, Debug, Default)]
pub struct SetAttr {
    pub size: Option<u64>,
    pub atime: Option<SystemTime>,
    pub mtime: Option<SystemTime>,
    /// mode, uid or gid given: accepted without effect (Cloudify has no owners or modes).
    pub owner_or_mode: bool,
}

fn name_str(name: &OsStr) -> Result<&str, FsError> {
    let s = name
        .to_str()
        .ok_or_else(|| FsError::Invalid("names on Cloudify must be UTF-8".into()))?;
    if s.len() > NAME_MAX {
        return Err(FsError::Invalid(format!(
            "names are at most {NAME_MAX} bytes"
        )));
    }
    Ok(s)
}

/// Cloudify's folder name rule, `^[\pL\s _\-0-9]+$` after trimming: letters, white space,
/// `_`, `-` and ASCII digits. (`char::is_alphabetic` is a close stand-in for `\pL`: names it
/// lets through that the server still refuses get EINVAL from the server's 422.)
pub fn check_folder_name(name: &str) -> Result<&str, FsError> {
    let trimmed = name.trim();
    let ok = |c: char| {
        c.is_alphabetic() || c.is_whitespace() || c == '_' || c == '-' || c.is_ascii_digit()
    };
    if trimmed.is_empty() || !trimmed.chars().all(ok) {
        return Err(FsError::Invalid(format!(
            "folder name {name:?} refused: Cloudify folder names may hold only letters, \
             digits 0-9, spaces, '_' and '-' (rule ^[\\pL\\s _\\-0-9]+$; no dots or other \
             punctuation)"
        )));
    }
    Ok(trimmed)
}

/// How a file the server stored is shown.
fn shown_name(f: &File) -> String {
    display_name(&f.name, f.extension().as_deref(), "")
}

fn extension_of_name(name: &str) -> Option<String> {
    let (stem, ext) = name.rsplit_once('.')?;
    (!stem.is_empty() && !ext.is_empty()).then(|| ext.to_lowercase())
}

/// Whether the library accepts a file named `name` (`--allowed-extensions`): a name
/// without an extension is left to the server, which names it by its content.
pub fn check_extension(allowed: Option<&[String]>, name: &str) -> Result<(), FsError> {
    let (Some(allowed), Some(ext)) = (allowed, extension_of_name(name)) else {
        return Ok(());
    };
    if allowed.contains(&ext) {
        return Ok(());
    }
    Err(FsError::ExtensionRefused(format!(
        "Cloudify refuses files ending in .{ext}; it accepts only {} (--allowed-extensions)",
        allowed.join(", ")
    )))
}

impl CloudifyFs {
    fn writable(&self) -> Result<&super::staging::Staging, FsError> {
        if self.config.read_only {
            return Err(FsError::ReadOnly);
        }
        self.writes.staging()
    }

    /// Refuses a name the library would refuse, at create and rename. With a write-back
    /// delay, any name may exist locally (temporary names of rsync and editors are renamed
    /// before the upload); the check then applies at upload ([`Self::check_upload_name`]).
    fn check_new_name(&self, name: &str) -> Result<(), FsError> {
        if !self.config.write_back.is_zero() {
            return Ok(());
        }
        self.check_upload_name(name)
    }

    fn check_upload_name(&self, name: &str) -> Result<(), FsError> {
        check_extension(self.config.allowed_extensions.as_deref(), name)
    }

    fn folder_of(&self, dir: Ino) -> Result<Id, FsError> {
        self.node_of(dir)?.folder_id().ok_or(FsError::NotADirectory)
    }

    fn resolve(&self, parent: Ino, name: &str) -> Result<Option<Target>, FsError> {
        if let Some(ino) = self.writes.overlay_get(parent, name) {
            return Ok(Some(Target::Pending(ino)));
        }
        let listing = self.listing(parent)?;
        Ok(listing
            .find(name)
            .cloned()
            .map(|e| Target::Listed(Box::new(e))))
    }

    pub(super) fn remove_remote_file(&self, f: &File) -> Result<(), FsError> {
        match self.config.delete_mode {
            DeleteMode::Trash => self.remote.trash_file(&f.id)?,
            DeleteMode::Permanent => self.remote.delete_file(&f.id)?,
        }
        Ok(())
    }

    fn remove_remote_folder(&self, id: &Id) -> Result<(), FsError> {
        match self.config.delete_mode {
            DeleteMode::Trash => self.remote.trash_folder(id)?,
            DeleteMode::Permanent => self.remote.delete_folder(id)?,
        }
        Ok(())
    }

    fn forget_listing(&self, folder: &Id) {
        self.dirs.invalidate(folder);
    }

    /// Records a new size of a pending inode's content.
    fn set_local_size(&self, ino: Ino, size: u64) {
        let mut inodes = self.inodes.lock();
        if let Some(inode) = inodes.get_mut(ino)
            && let Node::Local(l) = &mut inode.node
        {
            l.size = size;
            l.mtime = SystemTime::now();
        }
        inodes.content_changed(ino);
    }

    /// Marks pending content changed; a clean file (stored, still open) becomes dirty and
    /// replaces its stored version at the next store.
    fn mark_dirty(&self, st: &mut Pending) -> Result<(), FsError> {
        if st.dirty {
            return Ok(());
        }
        st.dirty = true;
        if let Some(stored) = st.stored.take() {
            st.replaces = Some(stored);
        }
        self.save_manifest(st)
    }

    fn save_manifest(&self, st: &mut Pending) -> Result<(), FsError> {
        st.manifest.set_replaces(st.replaces.as_ref());
        st.manifest.set_obsolete(&st.obsolete);
        st.manifest.backup = st.backup.as_ref().map(|b| b.id.clone());
        self.writes
            .staging()?
            .write_manifest(&st.staged, &st.manifest)
    }

    fn new_handle(&self, ino: Ino, writable: bool) -> Opened {
        self.inodes.lock().pin(ino);
        let fh = self
            .next_fh
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.writes.handles.lock().insert(
            fh,
            Handle {
                ino,
                writable,
                wrote: false,
            },
        );
        Opened {
            fh,
            keep_cache: false,
            direct_io: false,
        }
    }

    /// Makes `ino` pending: local key and node, name in the overlay, slot in `pending`.
    /// Returns the slot that won when another thread staged the same inode first.
    fn make_pending(&self, ino: Ino, p: Pending) -> Arc<Slot> {
        let size = p.size;
        let staged = p.staged.clone();
        let slot = {
            let mut pending = self.writes.pending.lock();
            if let Some(existing) = pending.get(&ino) {
                let existing = existing.clone();
                drop(pending);
                if let Ok(s) = self.writes.staging() {
                    s.remove(&staged);
                }
                return existing;
            }
            let slot = Slot::new(p);
            pending.insert(ino, slot.clone());
            slot
        };
        let mut inodes = self.inodes.lock();
        inodes.rekey(ino, Key::Local(ino));
        let parent_name = inodes.get_mut(ino).map(|inode| {
            inode.node = Node::Local(LocalFile {
                size,
                mtime: SystemTime::now(),
            });
            (inode.parent, inode.name.clone())
        });
        inodes.content_changed(ino);
        drop(inodes);
        if let Some(key) = parent_name {
            self.writes.overlay.lock().insert(key, ino);
        }
        slot
    }

    fn new_pending(&self, staged: Staged, file: std::fs::File, manifest: Manifest) -> Pending {
        Pending {
            staged,
            file,
            manifest,
            size: 0,
            dirty: true,
            replaces: None,
            backup: None,
            obsolete: Vec::new(),
            stored: None,
            writers: 0,
            handles: 0,
            busy: false,
            unlinked: false,
            error: None,
            noted: false,
            stream: Streaming::Candidate,
        }
    }

    pub fn create(
        &self,
        parent: Ino,
        name: &OsStr,
        flags: i32,
    ) -> Result<(Entry, Opened), FsError> {
        let staging = self.writable()?;
        let name_s = name_str(name)?;
        let folder = self.folder_of(parent)?;
        if self.resolve(parent, name_s)?.is_some() {
            if flags & libc::O_EXCL != 0 {
                return Err(FsError::Exists);
            }
            let entry = self.lookup(parent, name)?;
            let opened = self.open(entry.attr.ino, flags)?;
            return Ok((entry, opened));
        }

        self.check_new_name(name_s)?;
        let path = self.child_path(parent, name);
        let manifest = Manifest::new(&folder, name_s, &path);
        let (staged, file) = staging.create(&manifest)?;
        let mut p = self.new_pending(staged, file, manifest);
        p.writers = 1;
        p.handles = 1;
        let ino = {
            let mut inodes = self.inodes.lock();
            let node = Node::Local(LocalFile {
                size: 0,
                mtime: SystemTime::now(),
            });
            let ino = inodes.insert_local(parent, name_s, node);
            inodes.add_lookups(ino, 1);
            ino
        };
        self.make_pending(ino, p);
        let opened = write_only(flags, self.new_handle(ino, true));
        let entry = self.entry_of(&self.inodes.lock(), ino)?;
        Ok((entry, opened))
    }

    /// `open` of a pending file, or of a remote file for writing.
    pub(crate) fn open_staged(&self, ino: Ino, flags: i32) -> Result<Opened, FsError> {
        let writable = flags & libc::O_ACCMODE != libc::O_RDONLY;
        if writable || flags & libc::O_TRUNC != 0 {
            self.writable()?;
        }
        let trunc = writable && flags & libc::O_TRUNC != 0;
        let size = loop {
            let slot = match self.writes.slot(ino) {
                Some(slot) => slot,
                None if writable => self.stage_existing(ino, trunc)?,
                // Settled meanwhile into the stored file: read that.
                None if matches!(self.node_of(ino)?, Node::File(_)) => {
                    return self.open(ino, flags);
                }
                None => return Err(FsError::NotFound),
            };
            let mut st = slot.lock_idle();
            // A close may have settled this slot meanwhile (it leaves `pending` under its
            // lock, after the inode became the stored file): then open that file afresh.
            if !self
                .writes
                .slot(ino)
                .is_some_and(|s| Arc::ptr_eq(&s, &slot))
            {
                continue;
            }
            if trunc && st.size > 0 {
                stream::stop(&mut st)?;
                st.file
                    .set_len(0)
                    .map_err(|e| io_error("truncating", &st.staged, e))?;
                st.size = 0;
                self.mark_dirty(&mut st)?;
            }
            st.handles += 1;
            if writable {
                st.writers += 1;
            }
            break st.size;
        };
        if writable {
            self.writes.queue.cancel(ino);
        }
        if trunc {
            self.set_local_size(ino, size);
        }
        Ok(write_only(flags, self.new_handle(ino, writable)))
    }

    /// Stages a remote file's content for a change: empty when truncating, else downloaded.
    fn stage_existing(&self, ino: Ino, trunc: bool) -> Result<Arc<Slot>, FsError> {
        let staging = self.writable()?;
        let remote_file = match self.node_of(ino)? {
            Node::File(f) => Arc::unwrap_or_clone(f.file),
            Node::Root | Node::Folder(_) => return Err(FsError::IsADirectory),
            Node::Local(_) => return Err(FsError::NotFound),
        };
        let parent = self.inodes.lock().get(ino).map(|i| i.parent);
        let parent = parent.ok_or(FsError::StaleInode(ino))?;
        let folder = self.folder_of(parent)?;
        let path = self.path_of(ino);
        let name = self.inodes.lock().get(ino).map(|i| i.name.clone());
        let name = name.ok_or(FsError::StaleInode(ino))?;
        let mut manifest = Manifest::new(&folder, &name, &path);
        manifest.set_replaces(Some(&remote_file));

        let (staged, file, size, backup) = if trunc {
            let (staged, file) = staging.create(&manifest)?;
            (staged, file, 0, None)
        } else {
            // The old content is both the start of the new one and the copy held for the
            // safe overwrite.
            let mut held = Manifest::new(&folder, &upload_name(&remote_file), &path);
            held.backup_of = Some(remote_file.id.as_str().to_string());
            let (backup, mut old) = staging.download(&*self.remote, &remote_file, &held)?;
            let len = old.metadata().map(|m| m.len()).unwrap_or(0);
            staging.check_space(len)?;
            manifest.backup = Some(backup.id.clone());
            let (staged, mut file) = staging.create(&manifest)?;
            let copy =
                std::io::Seek::rewind(&mut old).and_then(|()| std::io::copy(&mut old, &mut file));
            if let Err(e) = copy {
                staging.remove(&staged);
                staging.remove(&backup);
                return Err(io_error("copying into", &staged, e));
            }
            (staged, file, len, Some(backup))
        };
        let mut p = self.new_pending(staged, file, manifest);
        p.size = size;
        p.backup = backup;
        if trunc {
            p.replaces = Some(remote_file);
        } else {
            // Same content as the server's until the first write (which writes the manifest).
            staging.forget_manifest(&p.staged);
            p.dirty = false;
            p.stored = Some(remote_file);
        }
        Ok(self.make_pending(ino, p))
    }

    pub(crate) fn read_staged(
        &self,
        fh: u64,
        offset: u64,
        size: u32,
    ) -> Option<Result<Vec<u8>, FsError>> {
        let h = self.writes.handle(fh)?;
        self.read_pending(h.ino, offset, size)
    }

    /// Bytes of the staged content of `ino`, while it has some: what every handle of the
    /// file reads, also one opened for reading before the change began.
    pub(crate) fn read_pending(
        &self,
        ino: Ino,
        offset: u64,
        size: u32,
    ) -> Option<Result<Vec<u8>, FsError>> {
        let slot = self.writes.slot(ino)?;
        let st = slot.state.lock();
        if let Err(e) = stream::drain(&st) {
            return Some(Err(e));
        }
        let len = (size as u64).min(st.size.saturating_sub(offset)) as usize;
        let mut buf = vec![0; len];
        let mut done = 0;
        while done < len {
            match st.file.read_at(&mut buf[done..], offset + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) => return Some(Err(io_error("reading", &st.staged, e))),
            }
        }
        buf.truncate(done);
        Some(Ok(buf))
    }

    pub fn write(&self, fh: u64, offset: u64, data: &[u8]) -> Result<u32, FsError> {
        let h = self.writes.handle(fh).ok_or(FsError::BadHandle(fh))?;
        if !h.writable {
            return Err(FsError::BadHandle(fh));
        }
        let slot = self.writes.slot(h.ino).ok_or(FsError::BadHandle(fh))?;
        let staging = self.writes.staging()?;
        let (size, handed) = {
            let mut st = slot.lock_idle();
            let end = offset + data.len() as u64;
            staging.check_space(end.saturating_sub(st.size))?;
            // The worker of a file uploaded while written writes its staged file.
            let handed = self.stream_write(&mut st, offset, data)?;
            if handed.is_none() {
                st.file
                    .write_all_at(data, offset)
                    .map_err(|e| io_error("writing", &st.staged, e))?;
            }
            st.size = st.size.max(end);
            self.mark_dirty(&mut st)?;
            (st.size, handed)
        };
        // After the lock: a writer faster than the upload waits for it here.
        if let Some(handed) = handed {
            handed.wait_for_room();
        }
        self.writes.set_wrote(fh, true);
        self.set_local_size(h.ino, size);
        Ok(data.len() as u32)
    }

    /// Close of a descriptor: without write-back, stores what was written and answers only
    /// once the server answered.
    pub fn flush(&self, fh: u64) -> Result<(), FsError> {
        let Some(h) = self.writes.handle(fh) else {
            return Ok(());
        };
        self.writes.set_wrote(fh, false);
        if !h.writable || !self.config.write_back.is_zero() {
            return Ok(());
        }
        self.store_ino(h.ino, StoreAt::Close)
    }

    /// Stores what is pending and reports the result. With `--write-back` the upload keeps
    /// its schedule: fsync makes the staged bytes durable on local disk (a later mount
    /// uploads what a crash left staged) and reports the failure of an earlier write-back.
    /// Programs that save by writing a temporary file, fsyncing it and renaming it over the
    /// original (GLib's `g_file_replace`: gedit, file managers, `gio save`) would otherwise
    /// upload the temporary name, which Cloudify refuses.
    pub fn fsync(&self, fh: u64) -> Result<(), FsError> {
        let Some(h) = self.writes.handle(fh) else {
            return Ok(());
        };
        if self.config.write_back.is_zero() {
            return self.store_ino(h.ino, StoreAt::Sync);
        }
        let Some(slot) = self.writes.slot(h.ino) else {
            return Ok(());
        };
        let st = slot.lock_idle();
        if let Some(e) = &st.error {
            return Err(e.clone());
        }
        st.file
            .sync_all()
            .map_err(|e| io_error("syncing", &st.staged, e))
    }

    /// Releases a write-side handle; false when `fh` is not one.
    pub(crate) fn release_staged(&self, fh: u64) -> bool {
        let Some(h) = self.writes.handles.lock().remove(&fh) else {
            return false;
        };
        self.inodes.lock().unpin(h.ino);
        let Some(slot) = self.writes.slot(h.ino) else {
            return true;
        };
        let schedule = {
            let mut st = slot.state.lock();
            st.handles = st.handles.saturating_sub(1);
            if h.writable {
                st.writers = st.writers.saturating_sub(1);
            }
            st.handles == 0 && st.dirty && !st.unlinked && st.size > 0
        };
        if schedule && !self.config.write_back.is_zero() {
            self.writes
                .queue
                .schedule(h.ino, Instant::now() + self.config.write_back);
        }
        self.settle(h.ino);
        true
    }

    /// Once a pending inode has no handle and nothing to store, it becomes the remote file
    /// it was stored as (or disappears, when unlinked). Content not stored yet keeps the
    /// inode pending: a stored file emptied and closed stays empty in the mount (the server,
    /// which cannot store an empty file, keeps the old content until the file gets new
    /// content, or for good when the mount ends first).
    fn settle(&self, ino: Ino) {
        let Some(slot) = self.writes.slot(ino) else {
            return;
        };
        let st = slot.state.lock();
        if st.handles > 0 || st.busy || (st.dirty && !st.unlinked) {
            return;
        }
        if let Ok(staging) = self.writes.staging() {
            staging.remove(&st.staged);
            if let Some(b) = &st.backup {
                staging.remove(b);
            }
        }
        // The inode becomes the stored file before the slot leaves `pending`, both under the
        // slot's lock: an open racing with this close (the kernel sends RELEASE
        // asynchronously) finds either the slot or the stored file, never a local node
        // without content (which answered ENOENT).
        let stored = if st.unlinked { None } else { st.stored.clone() };
        if let Some(file) = stored {
            self.become_stored(ino, &st, file);
        }
        self.writes.pending.lock().remove(&ino);
    }

    /// The inode of a settled slot takes the server's key and node.
    fn become_stored(&self, ino: Ino, st: &Pending, file: File) {
        let same_ext = file.extension() == extension_of_name(&st.manifest.name);
        let exact = same_ext
            .then(|| exact_stored_size(st.size, &file))
            .flatten();
        let mut inodes = self.inodes.lock();
        let key = inodes.get(ino).map(|i| (i.parent, i.name.clone()));
        inodes.rekey(ino, Key::File(file.id.clone()));
        if let Some(inode) = inodes.get_mut(ino) {
            inode.node = Node::File(RemoteFile {
                file: file.into(),
                exact_size: exact,
            });
        }
        drop(inodes);
        if let Some(key) = key {
            self.writes.overlay.lock().remove(&key);
        }
    }

    /// Stores the pending content of `ino` now (see [`store::store`]), unless it waits by
    /// the rules of [`StoreAt`].
    pub(crate) fn store_ino(&self, ino: Ino, at: StoreAt) -> Result<(), FsError> {
        self.store_and_clean(ino, at).map(drop)
    }

    /// [`Self::store_ino`], also answering the first failure to remove an obsolete copy once
    /// the content was stored (the old name of a renamed file; logged): the content is
    /// stored, so only a rename reports it, as its own failure.
    fn store_and_clean(&self, ino: Ino, at: StoreAt) -> Result<Option<FsError>, FsError> {
        let Some(slot) = self.writes.slot(ino) else {
            return Ok(None);
        };
        let staging = self.writes.staging()?;
        let streamed;
        let job = {
            let mut st = slot.lock_idle();
            if !st.dirty || st.unlinked || (at == StoreAt::Due && st.writers > 0) {
                return Ok(None);
            }
            if st.size == 0 {
                keep_empty(&mut st);
                return Ok(None);
            }
            if at == StoreAt::Close && waits_for_a_name(&st) {
                keep_unnamed(&mut st);
                return Ok(None);
            }
            if let Err(e) = self.check_upload_name(&st.manifest.name) {
                st.error = Some(e.clone());
                return Err(e);
            }
            streamed = self.stream_for_store(&mut st)?;
            st.busy = true;
            Job {
                folder: st.manifest.folder_id(),
                name: st.manifest.name.clone(),
                staged: st.staged.clone(),
                path: st.manifest.path.clone(),
                replaces: st.replaces.clone(),
                backup: st.backup.take(),
            }
        };
        let folder = job.folder.clone();
        let sent_name = job.name.clone();
        let replaced = job.replaces.is_some();
        let result = store::store_or_finish(&*self.remote, staging, job, streamed);
        if result.is_err() {
            // The upload may have been stored (an answer lost), or an overwrite may have
            // put the old file back under a new id: fetch the folder again, but while the
            // server is unreachable keep showing what was there rather than failing `ls`.
            self.dirs.expire(&folder);
        }

        let mut st = slot.state.lock();
        st.busy = false;
        slot.idle.notify_all();
        match result {
            Ok(file) => {
                st.dirty = false;
                st.replaces = None;
                st.error = None;
                st.noted = false;
                staging.forget_manifest(&st.staged);
                let obsolete = std::mem::take(&mut st.obsolete);
                let exact = (file.extension() == extension_of_name(&sent_name))
                    .then(|| exact_stored_size(st.size, &file))
                    .flatten();
                self.adopt_name(ino, &mut st, &file);
                st.stored = Some(file.clone());
                let added = !replaced && obsolete.is_empty();
                self.note_stored(&folder, &file, exact, added);
                drop(st);
                if let Some(n) = exact {
                    self.sizes.put_many(&[(&file, n)]);
                }
                let mut leftover = None;
                for old in obsolete {
                    if let Err(e) = self.remove_remote_file(&old) {
                        log::warn!(
                            "removing the old {} after storing its new copy: {e}",
                            upload_name(&old)
                        );
                        leftover.get_or_insert(e);
                    }
                    // Forgotten after the removal: a listing fetched before it still holds the
                    // old copy (also the listing of the folder a rename came from).
                    let from = old
                        .folder_id
                        .as_ref()
                        .map(|f| if f.is_root() { Id::root() } else { f.clone() });
                    self.forget_listing(from.as_ref().unwrap_or(&folder));
                }
                self.settle(ino);
                Ok(leftover)
            }
            Err(failure) => {
                st.replaces = failure.replaces;
                st.backup = failure.backup;
                let _ = self.save_manifest(&mut st);
                let error = if self.drops_when_refused(&st, &failure.error) {
                    self.drop_refused(ino, &mut st, failure.error)
                } else {
                    failure.error
                };
                st.error = Some(error.clone());
                Err(error)
            }
        }
    }

    /// After a store: the file the server answered goes into the cached listing of its
    /// folder (`added`: a new name; an overwrite or a rename removed other files, and the
    /// listing is fetched again instead), with its exact size, which the caller puts into
    /// the size cache: neither the next lookup nor `ls -l` asks the server again.
    ///
    /// Called under the slot's lock: a rename, unlink or settle of the file takes that lock
    /// first, so the listing cannot get back a name that is gone by then (amended after the
    /// lock, the stored name could come back into a listing fetched after its rename).
    fn note_stored(&self, folder: &Id, file: &File, exact: Option<u64>, added: bool) {
        let in_folder = file
            .folder_id
            .as_ref()
            .is_some_and(|f| f == folder || (f.is_root() && folder.is_root()));
        if added && in_folder {
            self.dirs
                .amend(folder, |listing| listing.add_file(file.clone(), exact));
        } else {
            self.forget_listing(folder);
        }
    }

    /// Whether a failed store leaves nothing worth keeping: the server refuses the content
    /// for good, it is a new file (no old content on the server depends on it), and the
    /// close that tried reports the error (no write-back delay), as a failed `cp` would.
    fn drops_when_refused(&self, st: &Pending, error: &FsError) -> bool {
        self.config.write_back.is_zero()
            && error.is_permanent_refusal()
            && st.replaces.is_none()
            && st.backup.is_none()
            && st.obsolete.is_empty()
            && !st.unlinked
    }

    /// Drops a refused new file: its staged copy and its name in the mount (the last
    /// close then forgets the inode, as after unlink).
    fn drop_refused(&self, ino: Ino, st: &mut Pending, error: FsError) -> FsError {
        st.unlinked = true;
        if let Ok(staging) = self.writes.staging() {
            staging.remove(&st.staged);
        }
        let key = self
            .inodes
            .lock()
            .get(ino)
            .map(|i| (i.parent, i.name.clone()));
        if let Some(key) = key {
            self.writes.overlay.lock().remove(&key);
            self.writes.invalidate(key.0, &key.1);
        }
        match error {
            FsError::NotStored { cause, .. } => FsError::NotStored {
                message: "nothing was kept: the file is removed from the mount".to_string(),
                cause,
            },
            other => other,
        }
    }

    /// After a store: the entry takes the name the server chose.
    fn adopt_name(&self, ino: Ino, st: &mut Pending, file: &File) {
        let shown = shown_name(file);
        let old = {
            let mut inodes = self.inodes.lock();
            let Some(inode) = inodes.get_mut(ino) else {
                return;
            };
            if inode.name == shown {
                log::info!("{}: stored ({} bytes)", st.manifest.path, st.size);
                return;
            }
            let old = (
                inode.parent,
                std::mem::replace(&mut inode.name, shown.clone()),
            );
            drop(inodes);
            old
        };
        log::info!("{}: stored as {shown}", st.manifest.path);
        st.manifest.name = shown.clone();
        let mut overlay = self.writes.overlay.lock();
        overlay.remove(&old);
        overlay.insert((old.0, shown), ino);
        drop(overlay);
        self.writes.invalidate(old.0, &old.1);
    }

    /// Called by the write-back thread when a file's delay has passed.
    pub(crate) fn store_deferred(&self, ino: Ino) {
        if let Err(e) = self.store_ino(ino, StoreAt::Due) {
            log::warn!("write-back of {}: {e}", self.path_of(ino));
        }
    }

    pub fn setattr(&self, ino: Ino, set: SetAttr) -> Result<Entry, FsError> {
        if self.config.read_only {
            return Err(FsError::ReadOnly);
        }
        if let Some(size) = set.size {
            self.truncate(ino, size)?;
        }
        if set.atime.is_some() || set.mtime.is_some() {
            let mut times = self.writes.times.lock();
            let t = times.entry(ino).or_default();
            t.atime = set.atime.or(t.atime);
            t.mtime = set.mtime.or(t.mtime);
        }
        self.entry_of(&self.inodes.lock(), ino)
    }

    fn truncate(&self, ino: Ino, size: u64) -> Result<(), FsError> {
        let staging = self.writable()?;
        let slot = match self.writes.slot(ino) {
            Some(slot) => slot,
            None => self.stage_existing(ino, size == 0)?,
        };
        let idle = {
            let mut st = slot.lock_idle();
            if st.size != size {
                staging.check_space(size.saturating_sub(st.size))?;
                stream::stop(&mut st)?;
                st.file
                    .set_len(size)
                    .map_err(|e| io_error("truncating", &st.staged, e))?;
                st.size = size;
                self.mark_dirty(&mut st)?;
            }
            st.handles == 0
        };
        self.set_local_size(ino, size);
        if idle {
            if self.config.write_back.is_zero() {
                self.store_ino(ino, StoreAt::Close)?;
            } else {
                self.writes
                    .queue
                    .schedule(ino, Instant::now() + self.config.write_back);
            }
            self.settle(ino);
        }
        Ok(())
    }

    pub fn unlink(&self, parent: Ino, name: &OsStr) -> Result<(), FsError> {
        self.writable()?;
        let name = name_str(name)?;
        match self.resolve(parent, name)?.ok_or(FsError::NotFound)? {
            Target::Pending(ino) => self.unlink_pending(parent, name, ino),
            Target::Listed(e) => match &e.node {
                Node::File(f) => {
                    self.remove_remote_file(&f.file)?;
                    self.forget_listing(&self.folder_of(parent)?);
                    Ok(())
                }
                _ => Err(FsError::IsADirectory),
            },
        }
    }

    fn unlink_pending(&self, parent: Ino, name: &str, ino: Ino) -> Result<(), FsError> {
        let slot = self.writes.slot(ino);
        self.unlink_slot(slot, parent, name, ino)
    }

    /// [`Self::unlink_pending`] with the slot the name was resolved to. The kernel's
    /// asynchronous RELEASE may settle that slot meanwhile (its inode becomes the stored
    /// file); the stored file is then removed. Answering ENOENT instead would leave a file
    /// that `ls` shows.
    pub(super) fn unlink_slot(
        &self,
        slot: Option<Arc<Slot>>,
        parent: Ino,
        name: &str,
        ino: Ino,
    ) -> Result<(), FsError> {
        let Some(slot) = slot else {
            return self.unlink_settled(parent, ino);
        };
        let remote_copies = {
            let mut st = slot.lock_idle();
            if !self.still_pending(ino, &slot) {
                drop(st);
                return self.unlink_settled(parent, ino);
            }
            st.unlinked = true;
            stream::discard(&mut st);
            let mut copies: Vec<File> = std::mem::take(&mut st.obsolete);
            copies.extend(st.replaces.take());
            copies.extend(st.stored.take());
            copies
        };
        self.writes
            .overlay
            .lock()
            .remove(&(parent, name.to_string()));
        self.writes.queue.cancel(ino);
        self.writes.times.lock().remove(&ino);
        self.settle(ino);
        let removed = remote_copies
            .iter()
            .try_for_each(|f| self.remove_remote_file(f));
        self.forget_listing(&self.folder_of(parent)?);
        removed
    }

    /// An unlink of a pending inode whose slot settled after the name was resolved: the
    /// inode is the stored file now (an unlinked one is gone).
    fn unlink_settled(&self, parent: Ino, ino: Ino) -> Result<(), FsError> {
        let file = match self.inodes.lock().get(ino).map(|i| &i.node) {
            Some(Node::File(f)) => f.file.clone(),
            _ => return Err(FsError::NotFound),
        };
        let removed = self.remove_remote_file(&file);
        self.forget_listing(&self.folder_of(parent)?);
        removed
    }

    pub fn mkdir(&self, parent: Ino, name: &OsStr) -> Result<Entry, FsError> {
        self.writable()?;
        let name_s = name_str(name)?;
        let wanted = check_folder_name(name_s)?;
        let folder = self.folder_of(parent)?;
        if self.resolve(parent, name_s)?.is_some() {
            return Err(FsError::Exists);
        }
        let created = self.remote.create_folder(&folder, wanted)?;
        self.forget_listing(&folder);
        if created.name != name_s {
            log::info!(
                "{}: stored as {}",
                self.child_path(parent, name),
                created.name
            );
            self.writes.invalidate(parent, name_s);
        }
        let mut inodes = self.inodes.lock();
        let id = created.id.clone();
        let shown = created.name.clone();
        let ino = inodes.upsert(parent, &shown, Node::Folder(created), &id);
        inodes.add_lookups(ino, 1);
        self.entry_of(&inodes, ino)
    }

    /// Whether remote folder `id` (inode `ino`) has no entry, asked fresh from the server
    /// (the server deletes folders recursively, so a stale "empty" must not be trusted).
    fn folder_is_empty(&self, ino: Option<Ino>, id: &Id) -> Result<bool, FsError> {
        if let Some(ino) = ino
            && !self.writes.local_children(ino).is_empty()
        {
            return Ok(false);
        }
        let listing = dir::fetch(&*self.remote, &self.sizes, id)?;
        Ok(listing.entries.is_empty())
    }

    pub fn rmdir(&self, parent: Ino, name: &OsStr) -> Result<(), FsError> {
        self.writable()?;
        let name = name_str(name)?;
        let folder = match self.resolve(parent, name)?.ok_or(FsError::NotFound)? {
            Target::Listed(e) => match e.node {
                Node::Folder(f) => f,
                _ => return Err(FsError::NotADirectory),
            },
            Target::Pending(_) => return Err(FsError::NotADirectory),
        };
        let ino = self.inodes.lock().ino_of(&Key::Folder(folder.id.clone()));
        if !self.folder_is_empty(ino, &folder.id)? {
            return Err(FsError::NotEmpty);
        }
        self.remove_remote_folder(&folder.id)?;
        self.forget_listing(&self.folder_of(parent)?);
        self.forget_listing(&folder.id);
        Ok(())
    }

    pub fn rename(
        &self,
        parent: Ino,
        name: &OsStr,
        new_parent: Ino,
        new_name: &OsStr,
        flags: u32,
    ) -> Result<(), FsError> {
        self.writable()?;
        if flags & libc::RENAME_EXCHANGE != 0 {
            return Err(FsError::Invalid(
                "RENAME_EXCHANGE is not supported on Cloudify".into(),
            ));
        }
        let (name, new_name) = (name_str(name)?, name_str(new_name)?);
        if parent == new_parent && name == new_name {
            return Ok(());
        }
        let src = self.resolve(parent, name)?.ok_or(FsError::NotFound)?;
        let dst = self.resolve(new_parent, new_name)?;
        if flags & libc::RENAME_NOREPLACE != 0 && dst.is_some() {
            return Err(FsError::Exists);
        }
        if !matches!(&src, Target::Listed(e) if e.node.is_dir()) {
            self.check_new_name(new_name)?;
        }
        let to = (new_parent, new_name);
        match src {
            Target::Listed(e) if e.node.is_dir() => self.rename_dir(parent, &e, to, dst),
            Target::Pending(ino) => {
                let (replaces, backup) = self.displace(dst, ino)?;
                self.rename_pending(ino, (parent, name), to, replaces, backup)
            }
            Target::Listed(e) => {
                let Node::File(f) = &e.node else {
                    return Err(FsError::NotFound);
                };
                let (replaces, backup) = self.displace(dst, 0)?;
                self.rename_remote(parent, &f.file, to, replaces, backup)
            }
        }
    }

    /// What a file renamed onto `dst` replaces: the remote file that holds the name, and
    /// its held content. A pending destination is dropped (as by unlink, but the remote
    /// file it would replace is handed over instead of removed).
    fn displace(
        &self,
        dst: Option<Target>,
        src_ino: Ino,
    ) -> Result<(Option<File>, Option<Staged>), FsError> {
        match dst {
            None => Ok((None, None)),
            Some(Target::Listed(e)) => match e.node {
                Node::File(f) => Ok((Some(Arc::unwrap_or_clone(f.file)), None)),
                _ => Err(FsError::IsADirectory),
            },
            Some(Target::Pending(ino)) if ino == src_ino => Ok((None, None)),
            Some(Target::Pending(ino)) => {
                let slot = self.writes.slot(ino).ok_or(FsError::NotFound)?;
                let (held, backup, key) = {
                    let mut st = slot.lock_idle();
                    st.unlinked = true;
                    stream::discard(&mut st);
                    let held = st.replaces.take().or(st.stored.take());
                    let key = (st.manifest.folder.clone(), st.manifest.name.clone());
                    (held, st.backup.take(), key)
                };
                let _ = key;
                let parent = self
                    .inodes
                    .lock()
                    .get(ino)
                    .map(|i| (i.parent, i.name.clone()));
                if let Some(k) = parent {
                    self.writes.overlay.lock().remove(&k);
                }
                self.writes.queue.cancel(ino);
                self.settle(ino);
                Ok((held, backup))
            }
        }
    }

    /// A pending file is renamed locally; its content is stored under the new name at the
    /// next store, and the remote copies under the old name are removed then. Without
    /// `--write-back` that store is now, unless a program is still writing the file (its
    /// close stores): also when the file is closed but its handles are not released yet,
    /// as right after `cp` or a shell's redirection, since no close would follow to store
    /// it and the old name would stay on the server.
    fn rename_pending(
        &self,
        ino: Ino,
        from: (Ino, &str),
        to: (Ino, &str),
        replaces: Option<File>,
        backup: Option<Staged>,
    ) -> Result<(), FsError> {
        let slot = self.writes.slot(ino);
        self.rename_slot(slot, ino, from, to, replaces, backup)
    }

    /// [`Self::rename_pending`] with the slot the name was resolved to. The kernel's
    /// asynchronous RELEASE may settle that slot meanwhile (its inode becomes the stored
    /// file); the file is then renamed as a stored one. Renaming the settled slot instead
    /// would answer success while the old name stays on the server and in every listing.
    pub(super) fn rename_slot(
        &self,
        slot: Option<Arc<Slot>>,
        ino: Ino,
        from: (Ino, &str),
        to: (Ino, &str),
        replaces: Option<File>,
        backup: Option<Staged>,
    ) -> Result<(), FsError> {
        let Some(slot) = slot else {
            return self.rename_settled(ino, from.0, to, replaces, backup);
        };
        let folder = self.folder_of(to.0)?;
        let path = self.child_path(to.0, OsStr::new(to.1));
        let (idle, size) = {
            let mut st = slot.lock_idle();
            if !self.still_pending(ino, &slot) {
                drop(st);
                return self.rename_settled(ino, from.0, to, replaces, backup);
            }
            // Not uploaded while written under the old name: stored under the new one.
            stream::stop(&mut st)?;
            if let Some(old) = st.replaces.take() {
                st.obsolete.push(old);
            }
            if let Some(old) = st.stored.take() {
                st.obsolete.push(old);
            }
            if let Some(b) = st.backup.take()
                && let Ok(s) = self.writes.staging()
            {
                s.remove(&b);
            }
            st.replaces = replaces;
            st.backup = backup;
            st.manifest.folder = folder.as_str().to_string();
            st.manifest.name = to.1.to_string();
            st.manifest.path = path;
            st.dirty = true;
            self.save_manifest(&mut st)?;
            (st.handles == 0, st.size)
        };
        {
            let mut overlay = self.writes.overlay.lock();
            overlay.remove(&(from.0, from.1.to_string()));
            overlay.insert((to.0, to.1.to_string()), ino);
        }
        if let Some(inode) = self.inodes.lock().get_mut(ino) {
            inode.parent = to.0;
            inode.name = to.1.to_string();
        }
        let written = !idle && self.writes.being_written(ino);
        if !written
            && size > 0
            && self.config.write_back.is_zero()
            && let Some(e) = self.store_and_clean(ino, StoreAt::Close)?
        {
            // Stored under the new name, but the old name is still on the server: the
            // rename did not happen as asked.
            return Err(e);
        }
        if idle {
            // Also an empty file renamed over a stored one: the stored content stays.
            self.settle(ino);
        }
        Ok(())
    }

    /// Whether `slot` is still the pending slot of `ino` (settling removes it under its lock).
    fn still_pending(&self, ino: Ino, slot: &Arc<Slot>) -> bool {
        self.writes.slot(ino).is_some_and(|s| Arc::ptr_eq(&s, slot))
    }

    /// A rename of a pending inode whose slot settled after the name was resolved: the
    /// inode is the stored file now (an unlinked one is gone).
    fn rename_settled(
        &self,
        ino: Ino,
        parent: Ino,
        to: (Ino, &str),
        replaces: Option<File>,
        backup: Option<Staged>,
    ) -> Result<(), FsError> {
        let file = match self.inodes.lock().get(ino).map(|i| &i.node) {
            Some(Node::File(f)) => f.file.clone(),
            _ => return Err(FsError::NotFound),
        };
        self.rename_remote(parent, &file, to, replaces, backup)
    }

    /// A stored file is uploaded again under the new name (its content streamed from its
    /// URL into a staging file), then the old one is removed by `--delete-mode`.
    fn rename_remote(
        &self,
        parent: Ino,
        file: &File,
        to: (Ino, &str),
        replaces: Option<File>,
        backup: Option<Staged>,
    ) -> Result<(), FsError> {
        let staging = self.writable()?;
        self.check_upload_name(to.1)?;
        let folder = self.folder_of(to.0)?;
        let path = self.child_path(to.0, OsStr::new(to.1));
        let mut manifest = Manifest::new(&folder, to.1, &path);
        manifest.set_replaces(replaces.as_ref());
        let (staged, copy) = staging.download(&*self.remote, file, &manifest)?;
        let size = copy.metadata().map(|m| m.len()).unwrap_or(0);
        let job = Job {
            folder: folder.clone(),
            name: to.1.to_string(),
            staged: staged.clone(),
            path,
            replaces,
            backup,
        };
        let result = store::store(&*self.remote, staging, job).map_err(|f| f.error);
        staging.remove(&staged);
        // The old name is removed before the rename answers success: left on the server, it
        // would stay in every listing while the caller was told it is gone.
        let moved = result.and_then(|stored| match self.remove_remote_file(file) {
            Ok(()) => Ok(stored),
            Err(e) => {
                log::warn!(
                    "{}: copied to {} but removing the original failed, so the rename fails: \
                     {e}",
                    self.child_path(parent, OsStr::new(&shown_name(file))),
                    shown_name(&stored)
                );
                Err(e)
            }
        });
        // Forgotten after the removal: a listing fetched before it still holds the old name.
        self.forget_listing(&folder);
        self.forget_listing(&self.folder_of(parent)?);
        if moved.is_err() {
            // The kernel may still map either name to this file's inode; a failed rename
            // may have replaced the target already, so both are looked up again.
            self.writes.invalidate(parent, &shown_name(file));
            self.writes.invalidate(to.0, to.1);
        }
        let stored = moved?;

        let shown = shown_name(&stored);
        if shown != to.1 {
            log::info!(
                "{}: stored as {shown}",
                self.child_path(to.0, OsStr::new(to.1))
            );
            self.writes.invalidate(to.0, to.1);
        }
        let mut inodes = self.inodes.lock();
        if let Some(ino) = inodes.ino_of(&Key::File(file.id.clone())) {
            inodes.rekey(ino, Key::File(stored.id.clone()));
            if let Some(inode) = inodes.get_mut(ino) {
                inode.parent = to.0;
                inode.name = shown;
                let exact = (stored.extension() == file.extension()).then_some(size);
                inode.node = Node::File(RemoteFile {
                    file: stored.into(),
                    exact_size: exact,
                });
            }
            inodes.content_changed(ino);
        }
        Ok(())
    }

    /// An empty directory is renamed by creating the new folder and removing the old one; a
    /// directory with content answers EXDEV (`mv` then copies and deletes).
    fn rename_dir(
        &self,
        parent: Ino,
        src: &DirEntry,
        to: (Ino, &str),
        dst: Option<Target>,
    ) -> Result<(), FsError> {
        let Node::Folder(folder) = &src.node else {
            return Err(FsError::Invalid("the root cannot be renamed".into()));
        };
        let wanted = check_folder_name(to.1)?;
        let src_ino = self.inodes.lock().ino_of(&Key::Folder(folder.id.clone()));
        match dst {
            None => {}
            Some(Target::Listed(e)) if matches!(e.node, Node::Folder(_)) => {
                let Node::Folder(d) = e.node else {
                    return Err(FsError::NotADirectory);
                };
                let d_ino = self.inodes.lock().ino_of(&Key::Folder(d.id.clone()));
                if !self.folder_is_empty(d_ino, &d.id)? {
                    return Err(FsError::NotEmpty);
                }
                self.remove_remote_folder(&d.id)?;
            }
            Some(_) => return Err(FsError::NotADirectory),
        }
        if !self.folder_is_empty(src_ino, &folder.id)? {
            return Err(FsError::CrossDevice);
        }
        let new_folder = self.folder_of(to.0)?;
        let created = self.remote.create_folder(&new_folder, wanted)?;
        if let Err(e) = self.remove_remote_folder(&folder.id) {
            log::warn!(
                "{}: created {} but removing the old folder failed: {e}",
                folder.name,
                created.name
            );
        }
        self.forget_listing(&new_folder);
        self.forget_listing(&self.folder_of(parent)?);
        if created.name != to.1 {
            log::info!(
                "{}: stored as {}",
                self.child_path(to.0, OsStr::new(to.1)),
                created.name
            );
            self.writes.invalidate(to.0, to.1);
        }
        let mut inodes = self.inodes.lock();
        if let Some(ino) = src_ino {
            inodes.rekey(ino, Key::Folder(created.id.clone()));
            if let Some(inode) = inodes.get_mut(ino) {
                inode.parent = to.0;
                inode.name = created.name.clone();
                inode.node = Node::Folder(created);
            }
        }
        Ok(())
    }

    pub fn mknod(&self, _parent: Ino, _name: &OsStr, _mode: u32) -> Result<Entry, FsError> {
        self.writable()?;
        Err(FsError::NotPermitted)
    }

    pub fn symlink(&self, _parent: Ino, _name: &OsStr) -> Result<Entry, FsError> {
        self.writable()?;
        Err(FsError::NotPermitted)
    }

    pub fn link(&self, _ino: Ino, _new_parent: Ino, _new_name: &OsStr) -> Result<Entry, FsError> {
        self.writable()?;
        Err(FsError::NotPermitted)
    }

    pub fn setxattr(&self, _ino: Ino, _name: &OsStr) -> Result<(), FsError> {
        self.writable()?;
        Err(FsError::NotSupported)
    }

    pub fn removexattr(&self, _ino: Ino, _name: &OsStr) -> Result<(), FsError> {
        self.writable()?;
        Err(FsError::NotSupported)
    }

    /// Starts the write-back thread and the recovery of staged files a previous mount left.
    pub fn start_background(self: &Arc<Self>) {
        if !self.config.read_only && !self.config.write_back.is_zero() {
            self.writes.queue.start(Arc::downgrade(self));
        }
        if self.config.read_only {
            return;
        }
        // Listed now, before this mount stages anything of its own.
        let Ok(staging) = self.writes.staging() else {
            return;
        };
        let leftovers = staging.leftovers();
        if leftovers.is_empty() {
            return;
        }
        let fs = self.clone();
        let spawned = std::thread::Builder::new()
            .name("recover".into())
            .spawn(move || super::recover::recover(&fs, leftovers));
        if let Err(e) = spawned {
            log::warn!("cannot start the recovery of staged files: {e}");
        }
    }

    /// At unmount: every pending upload finishes or fails loudly.
    pub fn destroy(&self) {
        self.writes.queue.stop();
        let inos: Vec<Ino> = self.writes.pending.lock().keys().copied().collect();
        for ino in inos {
            let path = self.path_of(ino);
            let Some(slot) = self.writes.slot(ino) else {
                continue;
            };
            let (dirty, size, unlinked) = {
                let st = slot.lock_idle();
                (st.dirty, st.size, st.unlinked)
            };
            if !dirty || unlinked {
                continue;
            }
            if size == 0 {
                self.drop_empty_at_unmount(&slot, &path);
                continue;
            }
            match self.store_ino(ino, StoreAt::Sync) {
                Ok(()) => log::info!("{path}: stored at unmount"),
                Err(e) if e.is_permanent_refusal() => self.set_aside_refused(ino, &path, &e),
                Err(e) => log::error!("{path}: NOT STORED at unmount: {e}"),
            }
        }
    }
}

impl CloudifyFs {
    /// At unmount: an empty file ends with the mount; a stored file emptied and never given
    /// new content leaves its old content on the server.
    fn drop_empty_at_unmount(&self, slot: &Slot, path: &str) {
        let st = slot.state.lock();
        match &st.replaces {
            None => log::warn!(
                "{path}: empty file not stored (the server refuses empty files); it ends with \
                 the mount"
            ),
            Some(old) => log::warn!(
                "{path}: emptied and never given new content; the server keeps its old \
                 content as {} (it cannot store an empty file)",
                upload_name(old)
            ),
        }
        if let Ok(s) = self.writes.staging() {
            s.remove(&st.staged);
            if let Some(b) = &st.backup {
                s.remove(b);
            }
        }
    }

    /// At unmount: content the server refuses for good leaves the retry path of later
    /// mounts (see [`super::staging::Staging::set_aside`]).
    fn set_aside_refused(&self, ino: Ino, path: &str, error: &FsError) {
        let (Some(slot), Ok(staging)) = (self.writes.slot(ino), self.writes.staging()) else {
            return;
        };
        let st = slot.state.lock();
        if !st.unlinked {
            super::recover::set_aside(staging, &st.staged, path, error);
        }
    }
}

/// The exact size of `file`, stored from `staged` bytes: a numeric size from the server, or
/// the staged length when it agrees with the server's rounded size text (two decimals of
/// the largest unit of 1024 that fits: half a unit of the last decimal, plus one byte of
/// rounding). The server may re-encode what it stores (images); a length that does not
/// agree leaves the size unknown (asked of the storage when needed). A file without a size
/// (no known Cloudify answers so) is taken at its staged length: nothing contradicts it, and
/// callers check that the server kept the extension.
pub(crate) fn exact_stored_size(staged: u64, file: &File) -> Option<u64> {
    let Some(size) = file.size else {
        return Some(staged);
    };
    match size {
        SizeHint::Exact(n) => Some(n),
        SizeHint::Approx(shown) => {
            let unit = |n: u64| {
                let mut unit = 1u64;
                while unit < 1 << 40 && n >= unit * 1024 {
                    unit *= 1024;
                }
                unit
            };
            let unit = unit(staged).max(unit(shown));
            let tolerance = unit.div_ceil(200) + 1;
            (staged.abs_diff(shown) <= tolerance).then_some(staged)
        }
    }
}

/// Says once per content why a new file without an extension is not stored at close.
fn keep_unnamed(st: &mut Pending) {
    if std::mem::replace(&mut st.noted, true) {
        return;
    }
    log::info!(
        "{}: a new name without an extension, kept local (Cloudify would name it by its \
         content); it is stored when renamed to a name with an extension, at fsync, or when \
         the mount ends",
        st.manifest.path
    );
}

/// Says once per content why an empty file is not stored.
fn keep_empty(st: &mut Pending) {
    if std::mem::replace(&mut st.noted, true) {
        return;
    }
    if st.replaces.is_none() {
        log::info!(
            "{}: empty so far, kept in the mount until it has content (Cloudify refuses empty \
             files; if it is still empty when the mount ends, it is not stored)",
            st.manifest.path
        );
    } else {
        log::warn!(
            "{}: emptied to 0 bytes, which the server cannot store; the mount shows it empty \
             while the server keeps the old content until the file gets new content (if the \
             mount ends first, the old content stays)",
            st.manifest.path
        );
    }
}

fn io_error(what: &str, staged: &Staged, e: std::io::Error) -> FsError {
    FsError::Io {
        what: format!("{what} {}", staged.data.display()),
        source: Arc::new(e),
    }
}

impl CloudifyFs {
    /// How the core tells the kernel to forget a name (set once the session exists).
    pub fn set_invalidator(&self, f: super::Invalidator) {
        let _ = self.writes.invalidator.set(f);
    }
}
