//! Attributes as `stat` shows them: sizes, times, owner and modes of an inode.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{NaiveDateTime, TimeZone};

use super::config::FsConfig;
use super::inode::{Ino, Inode, Node};

/// The two kinds of entries the mount has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Directory,
    File,
}

/// What `stat` returns for an entry (the FUSE adapter converts it to `fuser::FileAttr`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Attr {
    pub ino: Ino,
    pub size: u64,
    /// 512-byte blocks: `ceil(size / 512)`.
    pub blocks: u64,
    pub atime: SystemTime,
    pub mtime: SystemTime,
    pub ctime: SystemTime,
    pub crtime: SystemTime,
    pub kind: Kind,
    pub perm: u16,
    pub nlink: u32,
    pub uid: u32,
    pub gid: u32,
    pub blksize: u32,
}

/// Preferred I/O size reported to programs (`st_blksize`): large, since every request is a
/// network round trip, and as large as the mount's FUSE writes (1 MiB), so that `cp` writes
/// in 1 MiB pieces instead of 128 KiB ones (a FUSE write is one round trip through the kernel).
const BLKSIZE: u32 = 1024 * 1024;

/// A naive server date in the server's zone, as a system time.
pub fn server_time(
    t: Option<NaiveDateTime>,
    tz: chrono_tz::Tz,
    fallback: SystemTime,
) -> SystemTime {
    let Some(t) = t else { return fallback };
    let utc = match tz.from_local_datetime(&t) {
        chrono::LocalResult::Single(d) => d.to_utc(),
        chrono::LocalResult::Ambiguous(early, _) => early.to_utc(),
        // A time that does not exist in the zone (skipped by a DST change): read it as UTC.
        chrono::LocalResult::None => t.and_utc(),
    };
    let secs = utc.timestamp();
    let nanos = utc.timestamp_subsec_nanos();
    if secs >= 0 {
        UNIX_EPOCH + Duration::new(secs.unsigned_abs(), nanos)
    } else {
        UNIX_EPOCH
            .checked_sub(Duration::new(secs.unsigned_abs(), 0))
            .unwrap_or(UNIX_EPOCH)
    }
}

/// The attributes of `inode`; `mounted_at` stands in for dates the server does not give.
pub fn attr_of(inode: &Inode, cfg: &FsConfig, mounted_at: SystemTime) -> Attr {
    let tz = cfg.server_timezone;
    let (kind, size, created, updated) = match &inode.node {
        Node::Root => (Kind::Directory, 0, None, None),
        Node::Folder(f) => (Kind::Directory, 0, f.created_at, f.updated_at),
        Node::File(f) => (Kind::File, f.size(), f.file.created_at, f.file.updated_at),
        Node::Local(l) => {
            let t = l.mtime;
            return finish(inode.ino, Kind::File, l.size, t, t, cfg);
        }
    };
    let crtime = server_time(created, tz, mounted_at);
    let mtime = server_time(updated.or(created), tz, mounted_at);
    finish(inode.ino, kind, size, crtime, mtime, cfg)
}

fn finish(
    ino: Ino,
    kind: Kind,
    size: u64,
    crtime: SystemTime,
    mtime: SystemTime,
    cfg: &FsConfig,
) -> Attr {
    let (perm, nlink, size) = match kind {
        Kind::Directory => (0o777 & !cfg.umask, 2, 4096),
        Kind::File => (0o666 & !cfg.umask, 1, size),
    };
    Attr {
        ino,
        size,
        blocks: size.div_ceil(512),
        atime: mtime,
        mtime,
        ctime: mtime,
        crtime,
        kind,
        perm: perm as u16,
        nlink,
        uid: cfg.uid,
        gid: cfg.gid,
        blksize: BLKSIZE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_dates_follow_the_configured_zone() {
        let t = NaiveDateTime::parse_from_str("2026-02-04 15:26:17", "%Y-%m-%d %H:%M:%S").ok();
        let utc = server_time(t, chrono_tz::UTC, UNIX_EPOCH);
        let berlin = server_time(t, chrono_tz::Europe::Berlin, UNIX_EPOCH);
        assert_eq!(
            utc.duration_since(UNIX_EPOCH).unwrap().as_secs(),
            1_770_218_777
        );
        assert_eq!(
            utc.duration_since(berlin).unwrap(),
            Duration::from_secs(3600)
        );
        assert_eq!(server_time(None, chrono_tz::UTC, UNIX_EPOCH), UNIX_EPOCH);
    }
}
