//! Filesystem semantics over a [`crate::api::Remote`]: inodes, listings, names, reads and
//! writes ([`write`]). No FUSE types below this module; [`crate::fuse`] adapts it to the kernel.
//!
//! [`CloudifyFs`] has one method per FUSE operation, of the same name, returning plain
//! reply-shaped values ([`Entry`], [`attr::Attr`], [`Opened`], [`StatFs`]) or an [`FsError`],
//! so that tests drive it without a kernel.
//!
//! Locks of [`CloudifyFs`], all parking_lot, none ever held across an HTTP call:
//! - `inodes` guards the inode table; taken alone, for table work only;
//! - `dir_handles` and `file_handles` guard the maps of open handles; taken alone, for a
//!   lookup, insert or removal;
//! - each file handle's own mutex guards its stream. It is held while that handle reads
//!   from its download, which serialises reads of one open file (they share one stream)
//!   and never blocks another file or any metadata operation.
//! - [`dir::DirCache`], [`sizes::SizeCache`] and [`sizes::Probes`] document their own locks;
//!   none of the locks above is held while calling into them, except the size cache's
//!   memory maps, which are taken under `inodes` (they never take another lock).

pub mod attr;
pub mod config;
pub mod dir;
pub mod error;
pub mod inode;
pub mod names;
pub mod read;
pub mod sizes;
#[cfg(test)]
pub(crate) mod testing;
pub mod write;

use std::collections::HashMap;
use std::ffi::OsStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;

pub use attr::{Attr, Kind};
pub use config::{DeleteMode, FsConfig, MountConfig};
pub use error::FsError;
pub use inode::{Ino, ROOT_INO};

use crate::api::{Id, Remote};
use dir::{DirCache, DirListing};
use inode::{InodeTable, Node};
use read::FileReader;
use sizes::{Probes, SizeCache};

/// An entry for the kernel: attributes and how long it may cache them and the name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    pub attr: Attr,
    /// How long the kernel may keep the attributes (see [`ttls`]).
    pub ttl: Duration,
    /// How long the kernel may keep the name (a `lookup` answer; elsewhere `ttl` is used
    /// for both).
    pub entry_ttl: Duration,
}

/// How long the kernel may keep an entry's name and its attributes, `(entry, attr)`.
///
/// `set` is `--attr-timeout` when given. Otherwise an entry answered from a folder's
/// listing is kept for as long as that listing stays fresh (`listed_for`): until then the
/// mount would answer the same from it, and changes made through the mount drop the kernel's
/// entries themselves. Any other entry, or one whose listing has changed since, is kept for
/// [`config::DEFAULT_ATTR_TIMEOUT`].
///
/// The attributes of a file whose exact size is not known yet (`size_known` false) are not
/// kept at all: the next `stat`, and a read past the listing's rounded size, ask again and
/// `getattr` learns the exact size. Its name is.
pub fn ttls(
    set: Option<Duration>,
    listed_for: Option<Duration>,
    size_known: bool,
) -> (Duration, Duration) {
    let entry = set.or(listed_for).unwrap_or(config::DEFAULT_ATTR_TIMEOUT);
    let attr = if size_known { entry } else { Duration::ZERO };
    (entry, attr)
}

/// An opened file or directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Opened {
    pub fh: u64,
    /// The kernel may keep the pages it cached at an earlier open (content unchanged).
    pub keep_cache: bool,
    /// Reads bypass the page cache and are not cut at the file's size (FOPEN_DIRECT_IO): the
    /// size is only the listing's rounded one, and the body's end is the file's end.
    pub direct_io: bool,
}

/// An opened directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenedDir {
    pub fh: u64,
    /// The kernel may cache the entries it reads (FOPEN_CACHE_DIR): they come from a fresh
    /// listing only, with no file being written among them.
    pub cache: bool,
    /// The kernel may keep the entries it cached at the previous opendir (FOPEN_KEEP_CACHE):
    /// they came from the same listing, unchanged since.
    pub keep_cache: bool,
}

/// `statfs` values (see [`CloudifyFs::statfs`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatFs {
    pub blocks: u64,
    pub bfree: u64,
    pub bavail: u64,
    pub files: u64,
    pub ffree: u64,
    pub bsize: u32,
    pub namelen: u32,
    pub frsize: u32,
}

/// One directory entry handed to a `readdir` sink.
pub struct DirItem<'a> {
    pub ino: Ino,
    /// The offset of the entry after this one (what the kernel passes to continue).
    pub next_offset: u64,
    pub name: &'a str,
    pub kind: Kind,
    /// With `readdirplus`: the entry's attributes and cache time.
    pub entry: Entry,
}

/// An open directory: the listing it was opened on, so offsets stay valid while it is read
/// even if the listing is refreshed meanwhile.
struct DirHandle {
    ino: Ino,
    parent: Ino,
    listing: Arc<DirListing>,
    /// Pending (local) entries whose names hide a listed entry, and those listed after
    /// the listing (see [`write`]).
    shadow: HashMap<String, Ino>,
    extra: Vec<(String, Ino)>,
}

/// An open file.
struct FileHandle {
    ino: Ino,
    /// The stored file `reader` reads.
    file_id: Id,
    reader: Arc<Mutex<FileReader>>,
    /// The file, when it was opened without a known length: its length is learnt at the end
    /// of its body.
    unsized_file: Option<Arc<crate::api::File>>,
}

/// The filesystem core.
pub struct CloudifyFs {
    config: FsConfig,
    remote: Arc<dyn Remote>,
    inodes: Mutex<InodeTable>,
    dirs: DirCache,
    sizes: Arc<SizeCache>,
    /// Batches of HEADs for sizes a listing did not know ([`sizes::Probes`]).
    probes: Arc<Probes>,
    dir_handles: Mutex<HashMap<u64, DirHandle>>,
    file_handles: Mutex<HashMap<u64, FileHandle>>,
    next_fh: AtomicU64,
    mounted_at: SystemTime,
    writes: write::WriteState,
}

impl CloudifyFs {
    /// A filesystem over `remote`, with its size cache under `config.cache_dir`.
    pub fn new(config: FsConfig, remote: Arc<dyn Remote>) -> CloudifyFs {
        let sizes = SizeCache::open(&config.cache_dir);
        CloudifyFs::with_size_cache(config, remote, sizes)
    }

    fn with_size_cache(config: FsConfig, remote: Arc<dyn Remote>, sizes: SizeCache) -> Self {
        let sizes = Arc::new(sizes);
        CloudifyFs {
            inodes: Mutex::new(InodeTable::new(config.inode_cache_capacity)),
            dirs: DirCache::new(config.dir_cache_time),
            probes: Probes::new(remote.clone(), sizes.clone()),
            sizes,
            dir_handles: Mutex::new(HashMap::new()),
            file_handles: Mutex::new(HashMap::new()),
            next_fh: AtomicU64::new(1),
            mounted_at: SystemTime::now(),
            writes: write::WriteState::new(&config.cache_dir),
            config,
            remote,
        }
    }

    pub fn config(&self) -> &FsConfig {
        &self.config
    }

    /// The path of an inode, for log lines.
    pub fn path_of(&self, ino: Ino) -> String {
        self.inodes.lock().path_of(ino)
    }

    /// The path of `name` in `parent`, for log lines.
    pub fn child_path(&self, parent: Ino, name: &OsStr) -> String {
        let dir = self.path_of(parent);
        let sep = if dir.ends_with('/') { "" } else { "/" };
        format!("{dir}{sep}{}", name.to_string_lossy())
    }

    fn node_of(&self, ino: Ino) -> Result<Node, FsError> {
        let inodes = self.inodes.lock();
        let inode = inodes.get(ino).ok_or(FsError::StaleInode(ino))?;
        Ok(inode.node.clone())
    }

    /// The listing of directory `ino` (fetched if missing or stale).
    fn listing(&self, ino: Ino) -> Result<Arc<DirListing>, FsError> {
        let folder = self
            .node_of(ino)?
            .folder_id()
            .ok_or(FsError::NotADirectory)?;
        self.dirs
            .get(&folder, || dir::fetch(&*self.remote, &self.sizes, &folder))
    }

    fn entry_of(&self, inodes: &InodeTable, ino: Ino) -> Result<Entry, FsError> {
        self.listed_entry(inodes, ino, None)
    }

    /// [`CloudifyFs::entry_of`] for an entry answered from a listing that stays fresh for
    /// `listed_for` (see [`ttls`]).
    fn listed_entry(
        &self,
        inodes: &InodeTable,
        ino: Ino,
        listed_for: Option<Duration>,
    ) -> Result<Entry, FsError> {
        let inode = inodes.get(ino).ok_or(FsError::StaleInode(ino))?;
        let mut attr = attr::attr_of(inode, &self.config, self.mounted_at);
        self.writes.apply_times(&mut attr);
        // A file whose exact size is unknown (not asked for yet, or its HEAD failed) shows
        // the listing's rounded size. Not so a file whose storage was found to tell no length
        // at all, which asking would not change.
        let size_known = match &inode.node {
            Node::File(f) => f.exact_size.is_some() || self.sizes.length_unknown(&f.file),
            Node::Root | Node::Folder(_) => true,
            Node::Local(_) => true,
        };
        let listed_for = match inode.node {
            Node::Folder(_) | Node::File(_) => listed_for,
            Node::Root | Node::Local(_) => None,
        };
        let (entry_ttl, ttl) = ttls(self.config.attr_timeout, listed_for, size_known);
        Ok(Entry {
            attr,
            ttl,
            entry_ttl,
        })
    }

    /// How much longer the listing of `ino`'s folder answers for `ino`: `None` unless that
    /// listing is fresh and lists `ino` under its name.
    fn listed_for(&self, ino: Ino) -> Option<Duration> {
        let (parent, name, key) = {
            let inodes = self.inodes.lock();
            let inode = inodes.get(ino)?;
            let parent = inodes.get(inode.parent)?.node.folder_id()?;
            (parent, inode.name.clone(), inode.key.clone())
        };
        let listing = self.dirs.peek(&parent)?;
        let found = listing.find(&name)?;
        (inode::Key::remote(&found.node, &found.id) == key)
            .then(|| self.dirs.fresh_for(&listing))
            .flatten()
    }

    pub fn lookup(&self, parent: Ino, name: &OsStr) -> Result<Entry, FsError> {
        let name = name.to_str().ok_or(FsError::NotFound)?;
        if let Some(ino) = self.writes.overlay_get(parent, name) {
            let mut inodes = self.inodes.lock();
            inodes.add_lookups(ino, 1);
            return self.entry_of(&inodes, ino);
        }
        let listing = self.listing(parent)?;
        let found = listing.find(name).ok_or(FsError::NotFound)?;
        let node = self.with_known_size(&found.node);
        let listed_for = self.dirs.fresh_for(&listing);
        let ino = {
            let mut inodes = self.inodes.lock();
            let ino = inodes.upsert(parent, &found.name, node.clone(), &found.id);
            inodes.add_lookups(ino, 1);
            ino
        };
        // A file whose size a batch is asking for already (`ls -l` started one with its
        // first `stat`) waits for it here, so the answer is exact and kept, and the `stat`
        // that follows needs no `getattr`. Other lookups (an `rm`, an `mv`) start no batch.
        if let Node::File(f) = &node
            && f.exact_size.is_none()
            && self.probes.asking(&f.file)
            && let Err(e) = self.learn_size(ino, &f.file)
        {
            log::debug!("lookup {name}: size not learnt ({e}); the rounded one for now");
        }
        self.listed_entry(&self.inodes.lock(), ino, listed_for)
    }

    pub fn forget(&self, ino: Ino, nlookup: u64) {
        self.inodes.lock().forget(ino, nlookup);
    }

    pub fn getattr(&self, ino: Ino) -> Result<Entry, FsError> {
        if let Node::File(f) = self.node_of(ino)?
            && f.exact_size.is_none()
        {
            self.learn_size(ino, &f.file)?;
        }
        let listed_for = self.listed_for(ino);
        self.listed_entry(&self.inodes.lock(), ino, listed_for)
    }

    /// A listed node, with the exact size this mount learnt since the listing (from memory:
    /// a listing is answered without waiting for sizes).
    fn with_known_size(&self, node: &Node) -> Node {
        let mut node = node.clone();
        if let Node::File(f) = &mut node
            && f.exact_size.is_none()
        {
            f.exact_size = self.sizes.known(&f.file);
        }
        node
    }

    /// The exact size of file `ino`, which its listing did not know: asked for in one batch
    /// with the other files of its folder whose sizes are unknown (see [`sizes`]), waiting
    /// for this file only. Recorded in the inode.
    fn learn_size(&self, ino: Ino, file: &crate::api::File) -> Result<Option<u64>, FsError> {
        let siblings = || {
            let parent = self.inodes.lock().get(ino).map(|i| i.parent);
            let folder = parent.and_then(|p| self.node_of(p).ok()?.folder_id());
            let listing = folder.and_then(|id| self.dirs.peek(&id));
            let unknown = listing.iter().flat_map(|l| l.entries.iter());
            unknown
                .filter_map(|e| match &e.node {
                    Node::File(f) if f.exact_size.is_none() => Some(f.file.clone()),
                    _ => None,
                })
                .collect()
        };
        let size = self.probes.size_of(file, siblings)?;
        if let Some(n) = size {
            let mut inodes = self.inodes.lock();
            if let Some(inode) = inodes.get_mut(ino)
                && let Node::File(f) = &mut inode.node
                && f.file.id == file.id
            {
                f.exact_size = Some(n);
            }
        }
        Ok(size)
    }

    /// Opens a directory on its listing. While that listing stays fresh and holds no file
    /// being written, the kernel may cache what it reads and serve the next `ls` itself.
    pub fn opendir(&self, ino: Ino) -> Result<OpenedDir, FsError> {
        let listing = self.listing(ino)?;
        let parent = self.inodes.lock().get(ino).map_or(ROOT_INO, |i| i.parent);
        let mut shadow = self.writes.local_children(ino);
        let mut extra: Vec<(String, Ino)> = shadow
            .iter()
            .filter(|(name, _)| listing.find(name).is_none())
            .map(|(name, ino)| (name.clone(), *ino))
            .collect();
        extra.sort();
        shadow.retain(|name, _| listing.find(name).is_some());
        let cache =
            shadow.is_empty() && extra.is_empty() && self.dirs.fresh_for(&listing).is_some();
        let keep_cache = {
            let serial = cache.then(|| listing.serial());
            self.inodes.lock().opendir_keep_cache(ino, serial)
        };
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        self.dir_handles.lock().insert(
            fh,
            DirHandle {
                ino,
                parent,
                listing,
                shadow,
                extra,
            },
        );
        Ok(OpenedDir {
            fh,
            cache,
            keep_cache,
        })
    }

    pub fn releasedir(&self, fh: u64) {
        self.dir_handles.lock().remove(&fh);
    }

    /// Entries of the open directory `fh` from `offset` on ("." and ".." first), handed to
    /// `sink` until it answers `true` (its buffer is full). With `plus`, every entry the sink
    /// accepted counts as a kernel lookup (READDIRPLUS semantics; "." and ".." excepted).
    pub fn readdir(
        &self,
        ino: Ino,
        fh: u64,
        offset: u64,
        plus: bool,
        mut sink: impl FnMut(DirItem<'_>) -> bool,
    ) -> Result<(), FsError> {
        let (dir_ino, parent, listing, shadow, extra) = {
            let handles = self.dir_handles.lock();
            let h = handles.get(&fh).ok_or(FsError::BadHandle(fh))?;
            let locals = (h.shadow.clone(), h.extra.clone());
            (h.ino, h.parent, h.listing.clone(), locals.0, locals.1)
        };
        if dir_ino != ino {
            return Err(FsError::BadHandle(fh));
        }
        let listed_for = self.dirs.fresh_for(&listing);
        let mut inodes = self.inodes.lock();
        let dots = [(".", dir_ino), ("..", parent)];
        let listed = listing.entries.len() as u64;
        let total = 2 + listed + extra.len() as u64;
        for off in offset..total {
            // `fresh`: how long the entry is answered from the listing (see `ttls`).
            let (name, ino, counted, fresh) = match off {
                0 | 1 => (dots[off as usize].0, dots[off as usize].1, false, None),
                _ if off < 2 + listed => {
                    let e = &listing.entries[(off - 2) as usize];
                    let (ino, fresh) = match shadow.get(&e.name) {
                        Some(&local) => (local, None),
                        None => {
                            let node = self.with_known_size(&e.node);
                            (inodes.upsert(dir_ino, &e.name, node, &e.id), listed_for)
                        }
                    };
                    (e.name.as_str(), ino, plus, fresh)
                }
                _ => {
                    let (name, ino) = &extra[(off - 2 - listed) as usize];
                    (name.as_str(), *ino, plus, None)
                }
            };
            let entry = match self.listed_entry(&inodes, ino, fresh) {
                Ok(entry) => entry,
                Err(_) => self.entry_of(&inodes, dir_ino)?, // ".." of an evicted parent
            };
            let item = DirItem {
                ino: entry.attr.ino,
                next_offset: off + 1,
                name,
                kind: entry.attr.kind,
                entry,
            };
            if sink(item) {
                break;
            }
            if counted {
                inodes.add_lookups(ino, 1);
            }
        }
        Ok(())
    }

    pub fn open(&self, ino: Ino, flags: i32) -> Result<Opened, FsError> {
        if flags & libc::O_ACCMODE != libc::O_RDONLY || flags & libc::O_TRUNC != 0 {
            return self.open_staged(ino, flags);
        }
        let file = match self.node_of(ino)? {
            Node::File(f) => f,
            Node::Root | Node::Folder(_) => return Err(FsError::IsADirectory),
            Node::Local(_) => return self.open_staged(ino, flags),
        };
        let size = match file.exact_size {
            Some(n) => Some(n),
            None => self.learn_size(ino, &file.file)?,
        };
        let unsized_file = size.is_none().then(|| file.file.clone());
        // A size learnt at the end of a body in this mount may not have reached the kernel's
        // cached attributes yet: those files stay on direct I/O too.
        let direct_io = size.is_none() || self.sizes.learnt_from_body(&file.file);
        let file_id = file.file.id.clone();
        let reader = FileReader::new(self.remote.clone(), Arc::unwrap_or_clone(file.file), size);
        let keep_cache = {
            let mut inodes = self.inodes.lock();
            inodes.pin(ino);
            inodes.open_keep_cache(ino)
        };
        let fh = self.next_fh.fetch_add(1, Ordering::Relaxed);
        let reader = Arc::new(Mutex::new(reader));
        let handle = FileHandle {
            ino,
            file_id,
            reader,
            unsized_file,
        };
        self.file_handles.lock().insert(fh, handle);
        Ok(Opened {
            fh,
            keep_cache: keep_cache && !direct_io,
            direct_io,
        })
    }

    pub fn read(&self, fh: u64, offset: u64, size: u32) -> Result<bytes::Bytes, FsError> {
        if let Some(staged) = self.read_staged(fh, offset, size) {
            return staged.map(bytes::Bytes::from);
        }
        let (ino, file_id, reader) = {
            let handles = self.file_handles.lock();
            let h = handles.get(&fh).ok_or(FsError::BadHandle(fh))?;
            (h.ino, h.file_id.clone(), h.reader.clone())
        };
        // Once the file is changed through this mount, a handle opened before reads what the
        // file holds now, as on a local disk (`tail -f` of a log appended to). Reading on in
        // the old version would also be wrong for the writers: its end comes before the size
        // the kernel has from their writes, the kernel takes a short read as the file's new
        // end, and the next append (placed by the kernel at that end) would overwrite.
        if let Some(pending) = self.read_pending(ino, offset, size) {
            return pending.map(bytes::Bytes::from);
        }
        let reader = match self.node_of(ino) {
            Ok(Node::File(now)) if now.file.id != file_id => self.move_reader(fh, ino, now),
            // Made pending after the look above (its slot comes first): read that.
            Ok(Node::Local(_)) => match self.read_pending(ino, offset, size) {
                Some(pending) => return pending.map(bytes::Bytes::from),
                // Unlinked and settled meanwhile: read on in what was opened.
                None => reader,
            },
            _ => reader,
        };
        let data = reader.lock().read(offset, size)?;
        // A read ends short only at the end of the body; an empty one past offset 0 may be a
        // read beyond the end, which tells nothing of where the end is.
        if data.len() < size as usize && (offset == 0 || !data.is_empty()) {
            let handles = self.file_handles.lock();
            let unsized_file = handles.get(&fh).and_then(|h| h.unsized_file.clone());
            drop(handles);
            if let Some(file) = unsized_file {
                self.learn_size_from_body(ino, &file, offset + data.len() as u64);
            }
        }
        Ok(data)
    }

    /// Moves read handle `fh` on to `now`, the file its inode was stored as through this
    /// mount since the handle was opened (see [`Self::read`]), and returns its reader.
    fn move_reader(&self, fh: u64, ino: Ino, now: inode::RemoteFile) -> Arc<Mutex<FileReader>> {
        // Without a length the reader reads to the end of the body.
        let size = match now.exact_size {
            Some(n) => Some(n),
            None => self.learn_size(ino, &now.file).unwrap_or_else(|e| {
                log::debug!(
                    "file {}: length unknown ({e}); read to its end",
                    now.file.id
                );
                None
            }),
        };
        let unsized_file = size.is_none().then(|| now.file.clone());
        let file_id = now.file.id.clone();
        let fresh = Arc::new(Mutex::new(FileReader::new(
            self.remote.clone(),
            Arc::unwrap_or_clone(now.file),
            size,
        )));
        let mut handles = self.file_handles.lock();
        let Some(h) = handles.get_mut(&fh) else {
            return fresh;
        };
        // Another read of this handle (the kernel reads ahead in parallel) may have moved it.
        if h.file_id == file_id {
            return h.reader.clone();
        }
        log::debug!("file {file_id}: an open reader moves on to its new content");
        h.file_id = file_id;
        h.unsized_file = unsized_file;
        let old = std::mem::replace(&mut h.reader, fresh.clone());
        drop(handles);
        drop(old);
        fresh
    }

    /// Records the length of a file read to the end of its body as its exact size.
    fn learn_size_from_body(&self, ino: Ino, file: &crate::api::File, size: u64) {
        let mut inodes = self.inodes.lock();
        if let Some(inode) = inodes.get_mut(ino)
            && let Node::File(f) = &mut inode.node
            && f.file.id == file.id
            && f.exact_size.is_none()
        {
            log::debug!(
                "file {}: {size} bytes, learnt at the end of the body",
                file.id
            );
            f.exact_size = Some(size);
            drop(inodes);
            self.sizes.learn_from_body(file, size);
        }
    }

    /// `SEEK_DATA` and `SEEK_HOLE`: remote files have no holes, so data is everywhere before
    /// the end and the only hole is the end.
    pub fn lseek(&self, ino: Ino, offset: i64, whence: i32) -> Result<i64, FsError> {
        let size = self.getattr(ino)?.attr.size;
        let size = i64::try_from(size).unwrap_or(i64::MAX);
        match whence {
            libc::SEEK_DATA if offset < size => Ok(offset.max(0)),
            libc::SEEK_HOLE if offset < size => Ok(size),
            libc::SEEK_DATA | libc::SEEK_HOLE => Err(FsError::NoData),
            _ => Ok(offset),
        }
    }

    /// Extended attributes: the mount has none (ENODATA here; the FUSE layer answers ENOSYS so
    /// the kernel stops asking and answers ENOTSUP itself).
    pub fn getxattr(&self, ino: Ino) -> Result<Vec<u8>, FsError> {
        self.node_of(ino)?;
        Err(FsError::NoAttribute)
    }

    /// The names of an entry's extended attributes: none.
    pub fn listxattr(&self, ino: Ino) -> Result<Vec<u8>, FsError> {
        self.node_of(ino)?;
        Ok(Vec::new())
    }

    pub fn release(&self, fh: u64) {
        if self.release_staged(fh) {
            return;
        }
        let handle = self.file_handles.lock().remove(&fh);
        if let Some(h) = handle {
            self.inodes.lock().unpin(h.ino);
        }
    }

    /// Sane, large values: Cloudify reports no quota, and file managers and `cp` refuse to
    /// write to a filesystem that looks full. 1 PiB in 4 KiB blocks, 1e9 inodes.
    pub fn statfs(&self) -> StatFs {
        const BSIZE: u64 = 4096;
        let blocks = (1u64 << 50) / BSIZE;
        let files = 1_000_000_000;
        StatFs {
            blocks,
            bfree: blocks,
            bavail: blocks,
            files,
            ffree: files - self.inodes.lock().len() as u64,
            bsize: BSIZE as u32,
            namelen: names::NAME_MAX as u32,
            frsize: BSIZE as u32,
        }
    }

    /// The listing of folder `id` if it is cached (tests and the write side).
    pub fn cached_listing(&self, id: &Id) -> Option<Arc<DirListing>> {
        self.dirs.peek(id)
    }
}

#[cfg(test)]
mod tests;
