//! The FUSE adapter: converts kernel requests into calls of [`crate::fs::CloudifyFs`] and
//! replies. Nothing else lives here: every callback converts its arguments, calls the core
//! method of the same name and answers, and every failure is logged here, once (at warn,
//! ENOENT of a lookup at debug), with the operation, the path and the cause.
//!
//! Every callback answers its reply on every path; none can panic on input from the kernel
//! or the server (the core returns errors instead).

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use fuser::{
    BackgroundSession, Config, CopyFileRangeFlags, Errno, FileAttr, FileHandle, FileType,
    Filesystem, FopenFlags, Generation, INodeNo, InitFlags, IoctlFlags, KernelConfig, LockOwner,
    MountOption, OpenFlags, PollEvents, PollFlags, PollNotifier, RenameFlags, ReplyAttr,
    ReplyCreate, ReplyData, ReplyDirectory, ReplyDirectoryPlus, ReplyEmpty, ReplyEntry, ReplyIoctl,
    ReplyLseek, ReplyOpen, ReplyPoll, ReplyStatfs, ReplyWrite, ReplyXattr, Request, SessionACL,
    TimeOrNow, WriteFlags,
};

use crate::api::Remote;
use crate::fs::write::ops::SetAttr;
use crate::fs::{Attr, CloudifyFs, FsConfig, FsError, Kind, MountConfig};

/// Largest read and write the kernel sends in one request.
const MAX_IO: u32 = 1024 * 1024;
/// Kernel read-ahead per file; the mount's own window grows beyond it.
const MAX_READAHEAD: u32 = 1024 * 1024;
/// The filesystem type's second half: /proc/mounts shows `fuse.cloudify-fs`.
pub const SUBTYPE: &str = "cloudify-fs";

/// The `fuser::Filesystem` over the core.
struct FuseFs {
    fs: Arc<CloudifyFs>,
}

fn file_attr(a: &Attr) -> FileAttr {
    FileAttr {
        ino: INodeNo(a.ino),
        size: a.size,
        blocks: a.blocks,
        atime: a.atime,
        mtime: a.mtime,
        ctime: a.ctime,
        crtime: a.crtime,
        kind: file_type(a.kind),
        perm: a.perm,
        nlink: a.nlink,
        uid: a.uid,
        gid: a.gid,
        rdev: 0,
        blksize: a.blksize,
        flags: 0,
    }
}

fn file_type(k: Kind) -> FileType {
    match k {
        Kind::Directory => FileType::Directory,
        Kind::File => FileType::RegularFile,
    }
}

/// Answers an xattr request: the length when asked with size 0, else the bytes (ERANGE when
/// they do not fit).
fn xattr_reply(reply: ReplyXattr, size: u32, data: &[u8]) {
    let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
    if size == 0 {
        reply.size(len);
    } else if len <= size {
        reply.data(data);
    } else {
        reply.error(Errno::ERANGE);
    }
}

/// Logs a failed operation once and gives its errno.
fn failed(op: &str, path: &str, err: &FsError) -> Errno {
    let errno = err.errno();
    // Answers that programs expect and handle: "no such attribute" and "extended
    // attributes not supported" (`mv` and `cp -a` try to carry them over), and EXDEV for a
    // folder with content (`mv` then copies it).
    let expected = matches!(
        err,
        FsError::NoData | FsError::NoAttribute | FsError::NotSupported | FsError::CrossDevice
    );
    if (errno == libc::ENOENT && op == "lookup") || expected {
        log::debug!("{op} {path}: {err}");
    } else {
        log::warn!(
            "{op} {path}: {err} ({})",
            io::Error::from_raw_os_error(errno)
        );
    }
    Errno::from_i32(errno)
}

impl FuseFs {
    fn fail_ino(&self, op: &str, ino: INodeNo, err: &FsError) -> Errno {
        failed(op, &self.fs.path_of(ino.0), err)
    }

    fn fail_child(&self, op: &str, parent: INodeNo, name: &OsStr, err: &FsError) -> Errno {
        failed(op, &self.fs.child_path(parent.0, name), err)
    }
}

impl Filesystem for FuseFs {
    fn init(&mut self, _req: &Request, config: &mut KernelConfig) -> io::Result<()> {
        // Each wanted capability alone, so an old kernel without one still mounts.
        for cap in [
            InitFlags::FUSE_DO_READDIRPLUS,
            InitFlags::FUSE_PARALLEL_DIROPS,
            InitFlags::FUSE_ASYNC_READ,
            InitFlags::FUSE_BIG_WRITES,
            InitFlags::FUSE_MAX_PAGES,
            // O_TRUNC arrives with open, so truncating an existing file never downloads it.
            InitFlags::FUSE_ATOMIC_O_TRUNC,
        ] {
            if let Err(missing) = config.add_capabilities(cap) {
                log::debug!("kernel lacks FUSE capability {missing:?}");
            }
        }
        let _ = config
            .set_max_write(MAX_IO)
            .or_else(|max| config.set_max_write(max));
        let _ = config
            .set_max_readahead(MAX_READAHEAD)
            .or_else(|max| config.set_max_readahead(max));
        let _ = config.set_max_background(64);
        Ok(())
    }

    /// At unmount: pending uploads finish, or fail loudly in the log.
    fn destroy(&mut self) {
        self.fs.destroy();
    }

    fn lookup(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEntry) {
        match self.fs.lookup(parent.0, name) {
            Ok(e) => {
                reply.entry_with_ttls(&e.ttl, &e.entry_ttl, &file_attr(&e.attr), Generation(0))
            }
            Err(e) => reply.error(self.fail_child("lookup", parent, name, &e)),
        }
    }

    fn forget(&self, _req: &Request, ino: INodeNo, nlookup: u64) {
        self.fs.forget(ino.0, nlookup);
    }

    fn getattr(&self, _req: &Request, ino: INodeNo, _fh: Option<FileHandle>, reply: ReplyAttr) {
        match self.fs.getattr(ino.0) {
            Ok(e) => reply.attr(&e.ttl, &file_attr(&e.attr)),
            Err(e) => reply.error(self.fail_ino("getattr", ino, &e)),
        }
    }

    fn setattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        mode: Option<u32>,
        uid: Option<u32>,
        gid: Option<u32>,
        size: Option<u64>,
        atime: Option<TimeOrNow>,
        mtime: Option<TimeOrNow>,
        _ctime: Option<SystemTime>,
        _fh: Option<FileHandle>,
        _crtime: Option<SystemTime>,
        _chgtime: Option<SystemTime>,
        _bkuptime: Option<SystemTime>,
        _flags: Option<fuser::BsdFileFlags>,
        reply: ReplyAttr,
    ) {
        let time = |t: TimeOrNow| match t {
            TimeOrNow::SpecificTime(t) => t,
            TimeOrNow::Now => SystemTime::now(),
        };
        let set = SetAttr {
            size,
            atime: atime.map(time),
            mtime: mtime.map(time),
            owner_or_mode: mode.is_some() || uid.is_some() || gid.is_some(),
        };
        match self.fs.setattr(ino.0, set) {
            Ok(e) => reply.attr(&e.ttl, &file_attr(&e.attr)),
            Err(e) => reply.error(self.fail_ino("setattr", ino, &e)),
        }
    }

    fn mknod(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        mode: u32,
        _umask: u32,
        _rdev: u32,
        reply: ReplyEntry,
    ) {
        match self.fs.mknod(parent.0, name, mode) {
            Ok(e) => reply.entry(&e.ttl, &file_attr(&e.attr), Generation(0)),
            Err(e) => reply.error(self.fail_child("mknod", parent, name, &e)),
        }
    }

    fn mkdir(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        reply: ReplyEntry,
    ) {
        match self.fs.mkdir(parent.0, name) {
            Ok(e) => reply.entry(&e.ttl, &file_attr(&e.attr), Generation(0)),
            Err(e) => reply.error(self.fail_child("mkdir", parent, name, &e)),
        }
    }

    fn unlink(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.fs.unlink(parent.0, name) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(self.fail_child("unlink", parent, name, &e)),
        }
    }

    fn rmdir(&self, _req: &Request, parent: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.fs.rmdir(parent.0, name) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(self.fail_child("rmdir", parent, name, &e)),
        }
    }

    fn symlink(
        &self,
        _req: &Request,
        parent: INodeNo,
        link_name: &OsStr,
        _target: &Path,
        reply: ReplyEntry,
    ) {
        match self.fs.symlink(parent.0, link_name) {
            Ok(e) => reply.entry(&e.ttl, &file_attr(&e.attr), Generation(0)),
            Err(e) => reply.error(self.fail_child("symlink", parent, link_name, &e)),
        }
    }

    fn rename(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        newparent: INodeNo,
        newname: &OsStr,
        flags: RenameFlags,
        reply: ReplyEmpty,
    ) {
        match self
            .fs
            .rename(parent.0, name, newparent.0, newname, flags.bits())
        {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(self.fail_child("rename", parent, name, &e)),
        }
    }

    fn link(
        &self,
        _req: &Request,
        ino: INodeNo,
        newparent: INodeNo,
        newname: &OsStr,
        reply: ReplyEntry,
    ) {
        match self.fs.link(ino.0, newparent.0, newname) {
            Ok(e) => reply.entry(&e.ttl, &file_attr(&e.attr), Generation(0)),
            Err(e) => reply.error(self.fail_child("link", newparent, newname, &e)),
        }
    }

    fn open(&self, _req: &Request, ino: INodeNo, flags: OpenFlags, reply: ReplyOpen) {
        match self.fs.open(ino.0, flags.0) {
            Ok(o) => {
                let mut f = FopenFlags::empty();
                if o.keep_cache {
                    f |= FopenFlags::FOPEN_KEEP_CACHE;
                }
                if o.direct_io {
                    f |= FopenFlags::FOPEN_DIRECT_IO;
                }
                reply.opened(FileHandle(o.fh), f);
            }
            Err(e) => reply.error(self.fail_ino("open", ino, &e)),
        }
    }

    fn read(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        size: u32,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyData,
    ) {
        match self.fs.read(fh.0, offset, size) {
            Ok(data) => reply.data(&data),
            Err(e) => reply.error(self.fail_ino("read", ino, &e)),
        }
    }

    fn write(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        data: &[u8],
        _write_flags: WriteFlags,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        reply: ReplyWrite,
    ) {
        match self.fs.write(fh.0, offset, data) {
            Ok(n) => reply.written(n),
            Err(e) => reply.error(self.fail_ino("write", ino, &e)),
        }
    }

    fn flush(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        _lock_owner: LockOwner,
        reply: ReplyEmpty,
    ) {
        match self.fs.flush(fh.0) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(self.fail_ino("flush", ino, &e)),
        }
    }

    fn release(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        _lock_owner: Option<LockOwner>,
        _flush: bool,
        reply: ReplyEmpty,
    ) {
        self.fs.release(fh.0);
        reply.ok();
    }

    fn fsync(&self, _req: &Request, ino: INodeNo, fh: FileHandle, _ds: bool, reply: ReplyEmpty) {
        match self.fs.fsync(fh.0) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(self.fail_ino("fsync", ino, &e)),
        }
    }

    fn opendir(&self, _req: &Request, ino: INodeNo, _flags: OpenFlags, reply: ReplyOpen) {
        match self.fs.opendir(ino.0) {
            Ok(o) => {
                let mut f = FopenFlags::empty();
                if o.cache {
                    f |= FopenFlags::FOPEN_CACHE_DIR;
                }
                if o.keep_cache {
                    f |= FopenFlags::FOPEN_KEEP_CACHE;
                }
                reply.opened(FileHandle(o.fh), f);
            }
            Err(e) => reply.error(self.fail_ino("opendir", ino, &e)),
        }
    }

    fn readdir(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectory,
    ) {
        let result = self.fs.readdir(ino.0, fh.0, offset, false, |item| {
            reply.add(
                INodeNo(item.ino),
                item.next_offset,
                file_type(item.kind),
                item.name,
            )
        });
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(self.fail_ino("readdir", ino, &e)),
        }
    }

    fn readdirplus(
        &self,
        _req: &Request,
        ino: INodeNo,
        fh: FileHandle,
        offset: u64,
        mut reply: ReplyDirectoryPlus,
    ) {
        let result = self.fs.readdir(ino.0, fh.0, offset, true, |item| {
            let attr = file_attr(&item.entry.attr);
            reply.add(
                INodeNo(item.ino),
                item.next_offset,
                item.name,
                &item.entry.ttl,
                &attr,
                Generation(0),
            )
        });
        match result {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(self.fail_ino("readdirplus", ino, &e)),
        }
    }

    fn releasedir(
        &self,
        _req: &Request,
        _ino: INodeNo,
        fh: FileHandle,
        _flags: OpenFlags,
        reply: ReplyEmpty,
    ) {
        self.fs.releasedir(fh.0);
        reply.ok();
    }

    fn statfs(&self, _req: &Request, _ino: INodeNo, reply: ReplyStatfs) {
        let s = self.fs.statfs();
        reply.statfs(
            s.blocks, s.bfree, s.bavail, s.files, s.ffree, s.bsize, s.namelen, s.frsize,
        );
    }

    fn setxattr(
        &self,
        _req: &Request,
        ino: INodeNo,
        name: &OsStr,
        _value: &[u8],
        _flags: i32,
        _position: u32,
        reply: ReplyEmpty,
    ) {
        match self.fs.setxattr(ino.0, name) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(self.fail_ino("setxattr", ino, &e)),
        }
    }

    /// The mount has no extended attributes. ENOSYS instead of ENODATA makes the kernel stop
    /// asking for the rest of the mount: it then answers EOPNOTSUPP itself (no POSIX ACL for
    /// `system.posix_acl_*`), which `ls`, `cp -a` and `mv` take as "none". `ls -l` asks two
    /// or three per entry (SELinux label, ACLs): 20,000 round trips for 10,000 files.
    fn getxattr(&self, _req: &Request, ino: INodeNo, _name: &OsStr, size: u32, reply: ReplyXattr) {
        match self.fs.getxattr(ino.0) {
            Ok(value) => xattr_reply(reply, size, &value),
            Err(FsError::NoAttribute) => {
                log::debug!("getxattr {}: none, not offered", self.fs.path_of(ino.0));
                reply.error(Errno::ENOSYS);
            }
            Err(e) => reply.error(self.fail_ino("getxattr", ino, &e)),
        }
    }

    fn listxattr(&self, _req: &Request, ino: INodeNo, size: u32, reply: ReplyXattr) {
        match self.fs.listxattr(ino.0) {
            Ok(names) => xattr_reply(reply, size, &names),
            Err(e) => reply.error(self.fail_ino("listxattr", ino, &e)),
        }
    }

    fn lseek(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        offset: i64,
        whence: i32,
        reply: ReplyLseek,
    ) {
        match self.fs.lseek(ino.0, offset, whence) {
            Ok(o) => reply.offset(o),
            Err(e) => reply.error(self.fail_ino("lseek", ino, &e)),
        }
    }

    fn removexattr(&self, _req: &Request, ino: INodeNo, name: &OsStr, reply: ReplyEmpty) {
        match self.fs.removexattr(ino.0, name) {
            Ok(()) => reply.ok(),
            Err(e) => reply.error(self.fail_ino("removexattr", ino, &e)),
        }
    }

    /// Not offered: ENOSYS makes the kernel stop asking and copy through read and write,
    /// which is what `cp` inside the mount then does (the staged copy is uploaded at close).
    fn copy_file_range(
        &self,
        _req: &Request,
        ino_in: INodeNo,
        _fh_in: FileHandle,
        _offset_in: u64,
        ino_out: INodeNo,
        _fh_out: FileHandle,
        _offset_out: u64,
        _len: u64,
        _flags: CopyFileRangeFlags,
        reply: ReplyWrite,
    ) {
        log::debug!(
            "copy_file_range {} -> {}: not offered, the kernel copies by read and write",
            self.fs.path_of(ino_in.0),
            self.fs.path_of(ino_out.0)
        );
        reply.error(Errno::ENOSYS);
    }

    /// No ioctl applies to a file here: ENOTTY is what a regular file answers, and what
    /// `isatty` (Python's `open`, sed and others ask TCGETS) expects. The kernel asks again
    /// for every call whatever the answer, so it is logged at debug only.
    fn ioctl(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _flags: IoctlFlags,
        cmd: u32,
        _in_data: &[u8],
        _out_size: u32,
        reply: ReplyIoctl,
    ) {
        log::debug!("ioctl {} cmd {cmd:#x}: ENOTTY", self.fs.path_of(ino.0));
        reply.error(Errno::ENOTTY);
    }

    /// Not offered: ENOSYS makes the kernel stop asking for the rest of the mount and report
    /// every file as always ready for reading and writing, as a local file is.
    fn poll(
        &self,
        _req: &Request,
        ino: INodeNo,
        _fh: FileHandle,
        _ph: PollNotifier,
        _events: PollEvents,
        _flags: PollFlags,
        reply: ReplyPoll,
    ) {
        log::debug!(
            "poll {}: not offered, files are always ready",
            self.fs.path_of(ino.0)
        );
        reply.error(Errno::ENOSYS);
    }

    fn create(
        &self,
        _req: &Request,
        parent: INodeNo,
        name: &OsStr,
        _mode: u32,
        _umask: u32,
        flags: i32,
        reply: ReplyCreate,
    ) {
        match self.fs.create(parent.0, name, flags) {
            Ok((e, o)) => {
                let attr = file_attr(&e.attr);
                let mut f = FopenFlags::empty();
                if o.direct_io {
                    f |= FopenFlags::FOPEN_DIRECT_IO;
                }
                reply.created(&e.ttl, &attr, Generation(0), FileHandle(o.fh), f);
            }
            Err(e) => reply.error(self.fail_child("create", parent, name, &e)),
        }
    }
}

/// A mounted filesystem, served by background threads until it is unmounted.
pub struct Mounted {
    session: BackgroundSession,
    mountpoint: PathBuf,
}

impl Mounted {
    /// The directory the filesystem is mounted on.
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// Blocks until the filesystem is unmounted from outside (`fusermount3 -u`).
    ///
    /// Only the session's thread is joined; the session itself is never dropped. Dropping it
    /// unmounts again, and fuser 0.18 takes the /dev/fuse descriptor's POLLERR (connection
    /// gone) for "still mounted": the second unmount fails with EINVAL, logged as a warning,
    /// or unmounts whatever was mounted at the same path meanwhile. What stays behind (the
    /// descriptor, a channel) goes with the process.
    pub fn wait(self) {
        let session = std::mem::ManuallyDrop::new(self.session);
        // SAFETY: the handle is read out of `session` exactly once, and `session` is never
        // used or dropped afterwards, so the handle keeps a single owner.
        let guard = unsafe { std::ptr::read(&session.guard) };
        let result = guard
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the FUSE session thread panicked")));
        if let Err(e) = result {
            log::warn!(
                "FUSE session of {} ended with an error: {e}",
                self.mountpoint.display()
            );
        }
    }

    /// Unmounts and waits for the worker threads to finish.
    pub fn unmount(self) -> io::Result<()> {
        self.session.umount_and_join()
    }
}

/// The mount options the kernel gets.
fn session_config(fs: &FsConfig, mount: &MountConfig) -> Config {
    let mut options = vec![
        MountOption::FSName(mount.fs_name.clone()),
        // /proc/mounts then shows the type `fuse.cloudify-fs`, as an fstab line names it.
        // fuser passes `Subtype` only to fusermount3, not to the mount(2) it makes itself
        // as root, while the kernel's own `subtype=` option serves both ways.
        MountOption::CUSTOM(format!("subtype={SUBTYPE}")),
        MountOption::DefaultPermissions,
        MountOption::NoDev,
        MountOption::NoSuid,
    ];
    if fs.read_only {
        options.push(MountOption::RO);
    }
    let mut config = Config::default();
    config.mount_options = options;
    config.acl = if mount.allow_other {
        SessionACL::All
    } else {
        SessionACL::Owner
    };
    config.n_threads = Some(mount.max_threads.max(1));
    config.clone_fd = true;
    config
}

/// Mounts the library served by `remote` at `mount.mountpoint`; returns once the kernel
/// has accepted the mount.
pub fn mount(fs: FsConfig, mount: MountConfig, remote: Arc<dyn Remote>) -> io::Result<Mounted> {
    let config = session_config(&fs, &mount);
    let core = Arc::new(CloudifyFs::new(fs, remote));
    core.start_background();
    let session = fuser::spawn_mount(FuseFs { fs: core.clone() }, &mount.mountpoint, &config)?;
    let notifier = session.notifier();
    core.set_invalidator(Arc::new(move |parent, name: &str| {
        if let Err(e) = notifier.inval_entry(INodeNo(parent), OsStr::new(name)) {
            log::debug!("invalidating {name} in directory {parent}: {e}");
        }
    }));
    raise_read_ahead(&mount.mountpoint);
    Ok(Mounted {
        session,
        mountpoint: mount.mountpoint,
    })
}

/// Lets the kernel read ahead as far as the mount offered ([`MAX_READAHEAD`]). The kernel
/// caps a FUSE mount's read-ahead at its device's default (128 KiB), so a sequential reader
/// gets 128 KiB requests, each a round trip through the mount; 1 MiB ones cost a quarter of
/// the round trips. Only root may raise it (in sysfs); anyone else keeps the default.
fn raise_read_ahead(mountpoint: &std::path::Path) {
    use std::os::unix::fs::MetadataExt;
    let dev = match std::fs::metadata(mountpoint) {
        Ok(m) => m.dev(),
        Err(e) => {
            log::debug!("read-ahead left as it is: cannot stat the mount point: {e}");
            return;
        }
    };
    let path = format!(
        "/sys/class/bdi/{}:{}/read_ahead_kb",
        libc::major(dev),
        libc::minor(dev)
    );
    match std::fs::write(&path, format!("{}\n", MAX_READAHEAD / 1024)) {
        Ok(()) => log::debug!("kernel read-ahead set to {} KiB", MAX_READAHEAD / 1024),
        Err(e) => log::debug!("read-ahead left at the kernel's default ({path}: {e})"),
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::*;
    use crate::api::Id;
    use crate::fs::testing::MemRemote;

    /// Unmounts when dropped, also when the test fails.
    struct Guard(Option<Mounted>, tempfile::TempDir);

    impl Drop for Guard {
        fn drop(&mut self) {
            if let Some(m) = self.0.take() {
                let path = m.mountpoint().to_path_buf();
                if m.unmount().is_err() {
                    let _ = std::process::Command::new("fusermount3")
                        .arg("-uz")
                        .arg(&path)
                        .status();
                }
            }
        }
    }

    fn mount_mem(remote: Arc<MemRemote>) -> Guard {
        let dir = tempfile::tempdir().unwrap();
        let mountpoint = dir.path().join("mnt");
        std::fs::create_dir(&mountpoint).unwrap();
        let mut fs = FsConfig::new(dir.path().join("cache"));
        fs.umask = 0o022;
        let mount = MountConfig {
            mountpoint,
            allow_other: false,
            max_threads: 4,
            fs_name: "cloudify-test".into(),
        };
        let mounted = super::mount(fs, mount, remote).expect("mount");
        Guard(Some(mounted), dir)
    }

    #[test]
    fn an_in_memory_library_mounts_lists_and_reads() {
        if !Path::new("/dev/fuse").exists() {
            eprintln!("skipped: no /dev/fuse");
            return;
        }
        let remote = Arc::new(MemRemote::new());
        let sub = remote.add_folder(&Id::root(), "Sub");
        remote.add_file(&Id::root(), "a", "txt", b"alpha".to_vec());
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        remote.add_file(&sub, "big", "bin", big.clone());
        let guard = mount_mem(remote.clone());
        let root = guard.0.as_ref().unwrap().mountpoint().to_path_buf();

        let mut names: Vec<String> = std::fs::read_dir(&root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["Sub", "a.txt"]);
        let meta = std::fs::metadata(root.join("Sub/big.bin")).unwrap();
        assert_eq!(meta.len(), big.len() as u64);
        assert_eq!(meta.mode() & 0o777, 0o644);
        assert_eq!(std::fs::read(root.join("a.txt")).unwrap(), b"alpha");
        assert_eq!(std::fs::read(root.join("Sub/big.bin")).unwrap(), big);
        let out = guard.1.path().join("copy.bin");
        let mut cp = std::process::Command::new("cp");
        cp.arg(root.join("Sub/big.bin")).arg(&out);
        assert!(cp.output().unwrap().status.success());
        assert_eq!(
            std::fs::read(&out).unwrap(),
            big,
            "cp (lseek, copy_file_range) works"
        );
        std::fs::write(root.join("new.txt"), b"x").unwrap();
        assert_eq!(remote.uploads(), 1, "a written file is stored at close");
        assert_eq!(remote.lists(), 2);
    }
}
