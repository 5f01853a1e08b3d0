//! The write side: staged files, upload on close, and the overwrite, rename and unlink
//! rules of ../shared/DESIGN.md.
//!
//! - Content being written lives in the staging store ([`staging`]); the server gets it by
//!   [`store::store`], at close (`flush`), at `fsync`, or with `--write-back DUR` from the
//!   write-back thread ([`queue`]) DUR after the last close. A new file whose name has no
//!   extension is not stored at close but at its rename, `fsync` or unmount
//!   ([`ops::StoreAt`]).
//! - An inode whose content is local is *pending*: it has a [`Slot`] in `pending`, its key in
//!   the inode table is `Key::Local`, its node is `Node::Local` (size and mtime of the staged
//!   bytes), and its name is in `overlay`, which lookups and listings consult before the
//!   server's listing (a pending name hides a listed entry of the same name: the file it is
//!   about to replace). Once stored and closed, the inode takes the server's key and node.
//! - The operations themselves are `impl CloudifyFs` blocks in [`ops`].
//!
//! Locks (parking_lot), in the order they may be nested: a slot's `state`, then the core's
//! `inodes`, then one of `pending`, `overlay`, `handles`, `times` (each taken alone, for a
//! map operation). No lock is held across an HTTP call: a store marks its slot `busy` and
//! releases the lock; writers and truncations of that one file wait on the slot's `idle`
//! condition until the upload answered, so the bytes being uploaded never change under it.

pub mod ops;
pub mod queue;
mod recover;
pub mod staging;
pub mod store;
pub mod stream;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::fs;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use parking_lot::{Condvar, Mutex};

use super::error::FsError;
use super::inode::Ino;
use crate::api::File;
use staging::{Manifest, Staged, Staging};

/// The content of a pending inode.
pub struct Pending {
    pub staged: Staged,
    pub file: fs::File,
    pub manifest: Manifest,
    /// Byte count of the staged content.
    pub size: u64,
    /// The staged content differs from what the server has.
    pub dirty: bool,
    /// The remote file that holds the name now and is replaced at the next store.
    pub replaces: Option<File>,
    /// The old content of `replaces`, held locally (see [`store`]).
    pub backup: Option<Staged>,
    /// Remote files to remove (by `--delete-mode`) once the content is stored: the source of
    /// a rename.
    pub obsolete: Vec<File>,
    /// The server's file after the last successful store.
    pub stored: Option<File>,
    /// Open handles that may write.
    pub writers: u32,
    /// All open handles.
    pub handles: u32,
    /// An upload of this content is running.
    pub busy: bool,
    /// Unlinked while open: never stored; dropped at the last close.
    pub unlinked: bool,
    /// The failure of the last write-back store, reported by `fsync` and at unmount.
    pub error: Option<FsError>,
    /// Why this content is not stored yet (empty, or a new name without an extension) was
    /// logged already.
    pub noted: bool,
    /// Whether the content is uploaded while written ([`stream`]).
    pub stream: stream::Streaming,
}

/// One pending inode: its state and the condition writers wait on while it uploads.
pub struct Slot {
    pub state: Mutex<Pending>,
    pub idle: Condvar,
}

impl Slot {
    fn new(p: Pending) -> Arc<Slot> {
        Arc::new(Slot {
            state: Mutex::new(p),
            idle: Condvar::new(),
        })
    }

    /// The state, once no upload runs.
    pub fn lock_idle(&self) -> parking_lot::MutexGuard<'_, Pending> {
        let mut st = self.state.lock();
        while st.busy {
            self.idle.wait(&mut st);
        }
        st
    }
}

/// An open handle of the write side.
#[derive(Clone, Copy, Debug)]
pub struct Handle {
    pub ino: Ino,
    pub writable: bool,
    /// Written through since its last close (`flush`): the program is still writing.
    pub wrote: bool,
}

/// Called with (parent, name) to drop the kernel's cached entry of a name.
pub type Invalidator = Arc<dyn Fn(Ino, &str) + Send + Sync>;

/// Times set by `utimensat` and friends, kept for the life of the mount.
#[derive(Clone, Copy, Debug, Default)]
pub struct Times {
    pub atime: Option<SystemTime>,
    pub mtime: Option<SystemTime>,
}

/// State of the write side, owned by the core.
pub struct WriteState {
    /// `None` when the staging folder cannot be used; every change then fails with the
    /// reason.
    pub staging: Result<Staging, String>,
    pub pending: Mutex<HashMap<Ino, Arc<Slot>>>,
    /// (parent inode, name) -> pending inode.
    pub overlay: Mutex<HashMap<(Ino, String), Ino>>,
    pub handles: Mutex<HashMap<u64, Handle>>,
    pub times: Mutex<HashMap<Ino, Times>>,
    pub queue: queue::Queue,
    pub invalidator: OnceLock<Invalidator>,
    /// Uploads running while their files are written ([`stream`]).
    pub streams: Arc<AtomicUsize>,
}

impl WriteState {
    pub fn new(cache_dir: &std::path::Path) -> WriteState {
        let staging = Staging::open(cache_dir)
            .map_err(|e| format!("staging folder under {}: {e}", cache_dir.display()));
        if let Err(e) = &staging {
            log::warn!("{e}; changes to the mount will fail");
        }
        WriteState {
            staging,
            pending: Mutex::new(HashMap::new()),
            overlay: Mutex::new(HashMap::new()),
            handles: Mutex::new(HashMap::new()),
            times: Mutex::new(HashMap::new()),
            queue: queue::Queue::new(),
            invalidator: OnceLock::new(),
            streams: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub fn staging(&self) -> Result<&Staging, FsError> {
        self.staging.as_ref().map_err(|e| FsError::Io {
            what: e.clone(),
            source: Arc::new(std::io::Error::from_raw_os_error(libc::EIO)),
        })
    }

    pub fn slot(&self, ino: Ino) -> Option<Arc<Slot>> {
        self.pending.lock().get(&ino).cloned()
    }

    pub fn overlay_get(&self, parent: Ino, name: &str) -> Option<Ino> {
        self.overlay
            .lock()
            .get(&(parent, name.to_string()))
            .copied()
    }

    /// Pending entries of directory `parent`, by name.
    pub fn local_children(&self, parent: Ino) -> HashMap<String, Ino> {
        self.overlay
            .lock()
            .iter()
            .filter(|((p, _), _)| *p == parent)
            .map(|((_, name), ino)| (name.clone(), *ino))
            .collect()
    }

    pub fn handle(&self, fh: u64) -> Option<Handle> {
        self.handles.lock().get(&fh).copied()
    }

    /// Records whether handle `fh` was written through since its last close.
    pub fn set_wrote(&self, fh: u64, wrote: bool) {
        if let Some(h) = self.handles.lock().get_mut(&fh) {
            h.wrote = wrote;
        }
    }

    /// Whether a program is still writing `ino`: a handle of it was written through and not
    /// closed since. A handle closed by its program but not released yet (the kernel sends
    /// RELEASE after close(2) returned) is not writing.
    pub fn being_written(&self, ino: Ino) -> bool {
        self.handles
            .lock()
            .values()
            .any(|h| h.ino == ino && h.wrote)
    }

    /// Overrides the times of `attr` with those a program set.
    pub fn apply_times(&self, attr: &mut super::attr::Attr) {
        if let Some(t) = self.times.lock().get(&attr.ino) {
            if let Some(m) = t.mtime {
                attr.mtime = m;
                attr.ctime = m;
            }
            if let Some(a) = t.atime {
                attr.atime = a;
            }
        }
    }

    /// Drops the kernel's entry of `name` in `parent`, from another thread: the kernel may
    /// hold the directory's lock in the request that caused the change (rename does), and
    /// the notification waits for that lock.
    pub fn invalidate(&self, parent: Ino, name: &str) {
        let Some(f) = self.invalidator.get().cloned() else {
            return;
        };
        let name = name.to_string();
        let spawned = std::thread::Builder::new()
            .name("inval".into())
            .spawn(move || f(parent, &name));
        if let Err(e) = spawned {
            log::debug!("cannot start a thread to invalidate a kernel entry: {e}");
        }
    }
}
