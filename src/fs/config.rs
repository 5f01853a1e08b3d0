//! Settings of the filesystem layer, with their defaults. Built by `cli.rs` from the command
//! line; nothing here knows about clap.

use std::path::PathBuf;
use std::time::Duration;

/// What `unlink` and `rmdir` do on the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteMode {
    /// `PATCH .../trash`: recoverable from Cloudify's admin; the name stays reserved.
    Trash,
    /// `DELETE ...`: gone for good; the name is free again.
    Permanent,
}

/// Settings of the filesystem core.
#[derive(Clone, Debug)]
pub struct FsConfig {
    /// Refuse every change with EROFS.
    pub read_only: bool,
    /// Owner and group shown for every entry (default: the mounting user).
    pub uid: u32,
    pub gid: u32,
    /// Permission bits removed from 0666 (files) and 0777 (directories); default 0o022.
    pub umask: u32,
    /// How long a folder listing is trusted before it is fetched again (default 60 s).
    pub dir_cache_time: Duration,
    /// Kernel entry and attribute timeout when set (`--attr-timeout`). By default
    /// ([`None`]) an entry the mount answers from a folder's listing is kept as long as that
    /// listing stays fresh, any other for [`DEFAULT_ATTR_TIMEOUT`].
    pub attr_timeout: Option<Duration>,
    /// Where the size cache and staged writes live (0700).
    pub cache_dir: PathBuf,
    /// Zone of the server's naive `Y-m-d H:i:s` dates (default UTC).
    pub server_timezone: chrono_tz::Tz,
    /// How many inodes the kernel no longer references are kept (LRU) before they are
    /// dropped.
    pub inode_cache_capacity: usize,
    /// What deleting does on the server (write side).
    pub delete_mode: DeleteMode,
    /// Delay between the last close of a written file and its upload; zero uploads at close.
    pub write_back: Duration,
    /// File name extensions (lower case, without the dot) the library accepts; `None`
    /// leaves the decision to the server. Default: [`CLOUDIFY_EXTENSIONS`].
    pub allowed_extensions: Option<Vec<String>>,
}

/// How long the kernel keeps an entry that no fresh listing answers for (a file being
/// written, a listing changed through the mount), unless `--attr-timeout` says otherwise.
pub const DEFAULT_ATTR_TIMEOUT: Duration = Duration::from_secs(1);

/// The extensions Cloudify 1.2.8 accepts as shipped (`CLOUDIFY_MEDIA_ALLOWED_EXTENSIONS`).
pub const CLOUDIFY_EXTENSIONS: &[&str] = &[
    "jpg", "jpeg", "png", "gif", "txt", "docx", "zip", "mp3", "bmp", "csv", "xls", "xlsx", "ppt",
    "pptx", "pdf", "mp4", "m4v", "doc", "mpga", "wav", "webp", "webm", "mov", "jfif", "avif",
    "rar", "x-rar",
];

impl FsConfig {
    /// Defaults for a mount with its cache under `cache_dir`.
    pub fn new(cache_dir: PathBuf) -> FsConfig {
        // SAFETY: getuid/getgid cannot fail and touch no memory.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        FsConfig {
            read_only: false,
            uid,
            gid,
            umask: 0o022,
            dir_cache_time: Duration::from_secs(60),
            attr_timeout: None,
            cache_dir,
            server_timezone: chrono_tz::UTC,
            inode_cache_capacity: 100_000,
            delete_mode: DeleteMode::Trash,
            write_back: Duration::ZERO,
            allowed_extensions: Some(CLOUDIFY_EXTENSIONS.iter().map(|e| e.to_string()).collect()),
        }
    }
}

/// How the filesystem is attached to the kernel.
#[derive(Clone, Debug)]
pub struct MountConfig {
    pub mountpoint: PathBuf,
    /// Let other users enter the mount (needs `user_allow_other` in /etc/fuse.conf for
    /// non-root users).
    pub allow_other: bool,
    /// FUSE worker threads.
    pub max_threads: usize,
    /// Shown as the source in /proc/mounts and `df` (the site URL, without credentials).
    pub fs_name: String,
}
