//! Tests of the filesystem core, driven without a kernel over the in-memory remote.

use std::ffi::OsStr;
use std::sync::Arc;
use std::time::Duration;

use super::testing::{Faulty, MemRemote};
use super::*;
use crate::api::ApiError;

fn config() -> FsConfig {
    let mut c = FsConfig::new(std::env::temp_dir().join("cloudify-fs-unit-unused"));
    c.uid = 1000;
    c.gid = 1000;
    c
}

fn fs_over(remote: Arc<dyn Remote>) -> CloudifyFs {
    CloudifyFs::with_size_cache(config(), remote, SizeCache::disabled())
}

/// `readdir` of a whole directory: (name, ino, attr) of every entry after "." and "..".
fn list(fs: &CloudifyFs, ino: Ino, plus: bool) -> Vec<(String, Ino, Attr)> {
    let fh = fs.opendir(ino).unwrap().fh;
    let mut out = Vec::new();
    fs.readdir(ino, fh, 0, plus, |item| {
        out.push((item.name.to_string(), item.ino, item.entry.attr));
        false
    })
    .unwrap();
    fs.releasedir(fh);
    out.drain(..2);
    out
}

fn library() -> (Arc<MemRemote>, Id) {
    let remote = Arc::new(MemRemote::new());
    let docs = remote.add_folder(&Id::root(), "Docs");
    remote.add_file(&Id::root(), "readme", "txt", b"hello\n".to_vec());
    remote.add_file(&docs, "Report", "pdf", vec![9; 3000]);
    remote.add_file(&docs, "report", "pdf", vec![8; 10]);
    (remote, docs)
}

#[test]
fn lookup_answers_at_once_and_getattr_learns_the_exact_size() {
    let (remote, _) = library();
    let fs = fs_over(remote.clone());
    let docs = fs.lookup(ROOT_INO, OsStr::new("Docs")).unwrap();
    assert_eq!(docs.attr.kind, Kind::Directory);
    assert_eq!(docs.attr.perm, 0o755);
    let listed = fs.lookup(ROOT_INO, OsStr::new("readme.txt")).unwrap();
    assert_eq!(
        listed.attr.size, 1024,
        "the listing's rounded size, at once"
    );
    assert_eq!(
        listed.ttl,
        Duration::ZERO,
        "which the kernel must ask again"
    );
    assert!(
        listed.entry_ttl > Duration::from_secs(1),
        "the name is kept"
    );
    assert_eq!(remote.heads(), 0);

    let readme = fs.getattr(listed.attr.ino).unwrap();
    assert_eq!(readme.attr.size, 6, "exact, not the rounded listing size");
    assert_eq!(readme.attr.blocks, 1);
    assert_eq!(
        (readme.attr.uid, readme.attr.gid, readme.attr.perm),
        (1000, 1000, 0o644)
    );
    let listing_time = config().dir_cache_time;
    assert!(
        readme.ttl > Duration::from_secs(1) && readme.ttl <= listing_time,
        "kept while the listing stays fresh: {:?}",
        readme.ttl
    );
    assert_eq!(remote.heads(), 1);
    let again = fs.lookup(ROOT_INO, OsStr::new("readme.txt")).unwrap();
    assert_eq!(again.attr, readme.attr, "a lookup keeps the learnt size");
    assert!(again.ttl > Duration::from_secs(1) && again.ttl <= readme.ttl);
    assert_eq!(remote.heads(), 1);
    assert_eq!(remote.lists(), 1);

    let err = fs.lookup(ROOT_INO, OsStr::new("missing")).unwrap_err();
    assert_eq!(err.errno(), libc::ENOENT);
}

#[test]
fn readdirplus_counts_lookups_and_names_collisions() {
    let (remote, _) = library();
    let fs = fs_over(remote.clone());
    let docs = fs.lookup(ROOT_INO, OsStr::new("Docs")).unwrap().attr.ino;
    let entries = list(&fs, docs, true);
    let names: Vec<&str> = entries.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(names.len(), 2);
    assert_eq!(names[0], "Report.pdf");
    assert!(
        names[1].starts_with("report~") && names[1].ends_with(".pdf"),
        "{names:?}"
    );
    assert_eq!(
        entries[0].2.size, 3072,
        "rounded: the listing asks for no size"
    );
    assert_eq!(entries[1].2.size, 1024);
    assert_eq!(remote.heads(), 0);
    for (_, ino, _) in &entries {
        assert_eq!(fs.inodes.lock().lookups(*ino), 1);
    }
    assert_eq!(fs.getattr(entries[0].1).unwrap().attr.size, 3000);
    assert_eq!(fs.getattr(entries[1].1).unwrap().attr.size, 10);
    assert_eq!(remote.heads(), 2, "one HEAD per file, in one batch");
    let sizes: Vec<u64> = list(&fs, docs, false).iter().map(|e| e.2.size).collect();
    assert_eq!(sizes, [3000, 10], "and the next listing shows them");
    assert_eq!(remote.heads(), 2);
    // Plain readdir hands out numbers without references.
    let again = list(&fs, docs, false);
    assert_eq!(again[0].1, entries[0].1, "one inode per remote id");
    assert_eq!(fs.inodes.lock().lookups(entries[0].1), 1);
    assert_eq!(remote.lists(), 2, "root and Docs, each listed once");
}

#[test]
fn readdir_stops_when_the_buffer_is_full_and_resumes_at_the_offset() {
    let remote = Arc::new(MemRemote::new());
    for i in 0..10 {
        remote.add_file(&Id::root(), &format!("f{i}"), "txt", vec![1]);
    }
    let fs = fs_over(remote);
    let fh = fs.opendir(ROOT_INO).unwrap().fh;
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let mut batch = 0;
        let mut next = offset;
        fs.readdir(ROOT_INO, fh, offset, true, |item| {
            if batch == 3 {
                return true;
            }
            batch += 1;
            next = item.next_offset;
            seen.push((item.name.to_string(), item.ino));
            false
        })
        .unwrap();
        if batch == 0 {
            break;
        }
        offset = next;
    }
    assert_eq!(seen.len(), 12);
    let lookups: u64 = seen[2..]
        .iter()
        .map(|(_, ino)| fs.inodes.lock().lookups(*ino))
        .sum();
    assert_eq!(lookups, 10, "only entries the kernel received count");
}

#[test]
fn forgotten_entries_keep_their_number_while_cached() {
    let (remote, _) = library();
    let fs = fs_over(remote);
    let a = fs
        .lookup(ROOT_INO, OsStr::new("readme.txt"))
        .unwrap()
        .attr
        .ino;
    fs.forget(a, 1);
    let b = fs
        .lookup(ROOT_INO, OsStr::new("readme.txt"))
        .unwrap()
        .attr
        .ino;
    assert_eq!(a, b);
}

#[test]
fn open_and_read_return_the_bytes() {
    let (remote, _) = library();
    let fs = fs_over(remote);
    let ino = fs
        .lookup(ROOT_INO, OsStr::new("readme.txt"))
        .unwrap()
        .attr
        .ino;
    let o = fs.open(ino, libc::O_RDONLY).unwrap();
    assert!(!o.keep_cache);
    assert_eq!(&fs.read(o.fh, 0, 4096).unwrap()[..], b"hello\n");
    assert_eq!(&fs.read(o.fh, 6, 4096).unwrap()[..], b"");
    fs.release(o.fh);
    let o2 = fs.open(ino, libc::O_RDONLY).unwrap();
    assert!(o2.keep_cache, "unchanged content keeps the page cache");
    fs.release(o2.fh);
    assert_eq!(fs.read(o.fh, 0, 1).unwrap_err().errno(), libc::EBADF);
}

#[test]
fn changes_answer_erofs_on_a_read_only_mount() {
    let (remote, _) = library();
    let mut c = config();
    c.read_only = true;
    let fs = CloudifyFs::with_size_cache(c, remote, SizeCache::disabled());
    let ino = fs
        .lookup(ROOT_INO, OsStr::new("readme.txt"))
        .unwrap()
        .attr
        .ino;
    for flags in [libc::O_WRONLY, libc::O_RDWR, libc::O_RDONLY | libc::O_TRUNC] {
        assert_eq!(fs.open(ino, flags).unwrap_err().errno(), libc::EROFS);
    }
    let name = OsStr::new("x");
    assert_eq!(fs.mkdir(ROOT_INO, name).unwrap_err().errno(), libc::EROFS);
    assert_eq!(
        fs.create(ROOT_INO, name, 0).unwrap_err().errno(),
        libc::EROFS
    );
    assert_eq!(fs.unlink(ROOT_INO, name).unwrap_err().errno(), libc::EROFS);
    assert_eq!(fs.rmdir(ROOT_INO, name).unwrap_err().errno(), libc::EROFS);
    assert_eq!(
        fs.rename(ROOT_INO, name, ROOT_INO, name, 0)
            .unwrap_err()
            .errno(),
        libc::EROFS
    );
    let truncate = write::ops::SetAttr {
        size: Some(0),
        ..Default::default()
    };
    assert_eq!(fs.setattr(ino, truncate).unwrap_err().errno(), libc::EROFS);
    assert_eq!(
        fs.open(ROOT_INO, libc::O_RDONLY).unwrap_err().errno(),
        libc::EISDIR
    );
}

#[test]
fn a_refused_key_gives_eacces() {
    let remote = Arc::new(Faulty::new(MemRemote::new()));
    remote.fail_next_list(ApiError::Unauthorized {
        context: "GET /media/folders".into(),
        status: 403,
        message: "This action is unauthorized.".into(),
    });
    let fs = fs_over(remote);
    assert_eq!(fs.opendir(ROOT_INO).unwrap_err().errno(), libc::EACCES);
    assert!(fs.opendir(ROOT_INO).is_ok(), "errors are not cached");
}

#[test]
fn statfs_reports_plenty_of_room() {
    let fs = fs_over(Arc::new(MemRemote::new()));
    let s = fs.statfs();
    assert_eq!(s.bsize, 4096);
    assert_eq!(s.namelen, 255);
    assert!(s.bavail * u64::from(s.bsize) >= 1 << 50);
    assert!(s.ffree > 1_000_000);
}

#[test]
fn lseek_finds_data_everywhere_and_the_hole_at_the_end() {
    let (remote, _) = library();
    let fs = fs_over(remote);
    let ino = fs
        .lookup(ROOT_INO, OsStr::new("readme.txt"))
        .unwrap()
        .attr
        .ino;
    assert_eq!(fs.lseek(ino, 2, libc::SEEK_DATA).unwrap(), 2);
    assert_eq!(fs.lseek(ino, 2, libc::SEEK_HOLE).unwrap(), 6);
    assert_eq!(
        fs.lseek(ino, 6, libc::SEEK_DATA).unwrap_err().errno(),
        libc::ENXIO
    );
    assert_eq!(fs.getxattr(ino).unwrap_err().errno(), libc::ENODATA);
    assert!(fs.listxattr(ino).unwrap().is_empty());
}

#[test]
fn a_folder_and_a_file_of_the_same_id_get_their_own_inodes() {
    let remote = Arc::new(MemRemote::new());
    remote.set_bigint_ids();
    let photos = remote.add_folder(&Id::root(), "Photos");
    let notes = remote.add_file(&Id::root(), "notes", "txt", b"hello".to_vec());
    remote.add_file(&photos, "inside", "txt", b"x".to_vec());
    assert_eq!(photos, notes, "the BIGINT numbering gives both id 1");
    let fs = fs_over(remote);

    let listed = list(&fs, ROOT_INO, true);
    let names: Vec<&str> = listed.iter().map(|e| e.0.as_str()).collect();
    assert_eq!(names, ["Photos", "notes.txt"]);
    assert_ne!(listed[0].1, listed[1].1, "one inode each");
    assert_eq!(listed[0].2.kind, Kind::Directory);
    assert_eq!(listed[1].2.kind, Kind::File);

    let dir = fs.lookup(ROOT_INO, OsStr::new("Photos")).unwrap().attr;
    let file = fs.lookup(ROOT_INO, OsStr::new("notes.txt")).unwrap().attr;
    let file = fs.getattr(file.ino).unwrap().attr;
    assert_eq!((dir.ino, dir.kind), (listed[0].1, Kind::Directory));
    assert_eq!(
        (file.ino, file.kind, file.size),
        (listed[1].1, Kind::File, 5)
    );
    assert_eq!(fs.getattr(dir.ino).unwrap().attr.kind, Kind::Directory);
    let inside: Vec<String> = list(&fs, dir.ino, false).into_iter().map(|e| e.0).collect();
    assert_eq!(inside, ["inside.txt"]);
    let o = fs.open(file.ino, libc::O_RDONLY).unwrap();
    assert_eq!(&fs.read(o.fh, 0, 4096).unwrap()[..], b"hello");
    fs.release(o.fh);
}

#[test]
fn a_file_without_a_length_is_probed_once_and_read_to_the_end_of_its_body() {
    let remote = Arc::new(MemRemote::new());
    remote.set_no_length(true);
    let body: Vec<u8> = (0..1500u32).map(|i| (i * 7 % 251) as u8).collect();
    remote.add_file(&Id::root(), "priv", "txt", body.clone());
    let mut config = config();
    config.dir_cache_time = Duration::ZERO; // every lookup lists the folder again
    let fs = CloudifyFs::with_size_cache(config, remote.clone(), SizeCache::disabled());

    let entry = fs.lookup(ROOT_INO, OsStr::new("priv.txt")).unwrap();
    assert_eq!(
        entry.attr.size, 1024,
        "only the listing's rounded size is known"
    );
    assert_eq!(entry.ttl, Duration::ZERO, "not asked for yet");
    assert_eq!(remote.heads(), 0);
    let ino = entry.attr.ino;
    let probed = fs.getattr(ino).unwrap();
    assert_eq!(remote.heads(), 1);
    assert_eq!(probed.attr.size, 1024);
    assert_eq!(
        probed.ttl,
        Duration::from_secs(1),
        "no point in asking again at once"
    );
    fs.lookup(ROOT_INO, OsStr::new("priv.txt")).unwrap();
    assert_eq!(
        remote.heads(),
        1,
        "the missing length is remembered, not probed again"
    );

    let o = fs.open(ino, libc::O_RDONLY).unwrap();
    assert!(
        o.direct_io,
        "the kernel must not cut reads at the rounded size"
    );
    let mut read = Vec::new();
    loop {
        let got = fs.read(o.fh, read.len() as u64, 1000).unwrap();
        if got.is_empty() {
            break;
        }
        read.extend(got);
    }
    assert_eq!(
        read, body,
        "read to the end of the body, past the rounded size"
    );
    fs.release(o.fh);

    let after = fs.getattr(ino).unwrap();
    assert_eq!(
        after.attr.size, 1500,
        "the body's end is recorded as the exact size"
    );
    let relisted = fs.lookup(ROOT_INO, OsStr::new("priv.txt")).unwrap();
    assert_eq!(
        relisted.attr.size, 1500,
        "and kept when the folder is listed again"
    );
    assert_eq!(remote.heads(), 1);
}

#[test]
fn ttl_rules() {
    let (s, ms) = (Duration::from_secs, Duration::from_millis);
    // Kept while the listing stays fresh, however little is left of that.
    assert_eq!(ttls(None, Some(s(42)), true), (s(42), s(42)));
    assert_eq!(ttls(None, Some(ms(10)), true), (ms(10), ms(10)));
    // A size not known yet: the name is kept, the attributes are not.
    assert_eq!(ttls(None, Some(s(42)), false), (s(42), Duration::ZERO));
    // No fresh listing answers for the entry.
    assert_eq!(ttls(None, None, true), (s(1), s(1)));
    assert_eq!(ttls(None, None, false), (s(1), Duration::ZERO));
    // --attr-timeout, when given, decides.
    assert_eq!(ttls(Some(s(5)), Some(s(42)), true), (s(5), s(5)));
    assert_eq!(ttls(Some(s(5)), None, false), (s(5), Duration::ZERO));
}

/// Every readdirplus entry of `ino` with its cache time.
fn listed_ttls(fs: &CloudifyFs, ino: Ino) -> Vec<(String, Duration)> {
    let fh = fs.opendir(ino).unwrap().fh;
    let mut out = Vec::new();
    fs.readdir(ino, fh, 2, true, |item| {
        out.push((item.name.to_string(), item.entry.ttl));
        false
    })
    .unwrap();
    fs.releasedir(fh);
    out
}

#[test]
fn entries_are_kept_as_long_as_their_listing_stays_fresh() {
    let remote = Arc::new(MemRemote::new());
    remote.add_folder(&Id::root(), "Sub");
    remote.add_file(&Id::root(), "sized", "txt", vec![1; 10]);
    let mut c = config();
    c.dir_cache_time = Duration::from_secs(3600);
    let fs = CloudifyFs::with_size_cache(c, remote.clone(), SizeCache::disabled());
    let long = Duration::from_secs(1800);

    // Rounded sizes only: the folder is kept, the file's attributes are not.
    let listed = listed_ttls(&fs, ROOT_INO);
    assert_eq!(listed.len(), 2);
    assert!(listed[0].1 > long, "{listed:?}");
    assert_eq!(listed[1].1, Duration::ZERO, "{listed:?}");
    let sized = fs.lookup(ROOT_INO, OsStr::new("sized.txt")).unwrap();
    assert!(sized.entry_ttl > long && sized.ttl.is_zero(), "{sized:?}");
    let sized = fs.getattr(sized.attr.ino).unwrap();
    assert!(sized.ttl > long && sized.ttl <= Duration::from_secs(3600));
    assert!(
        listed_ttls(&fs, ROOT_INO)
            .iter()
            .all(|(_, ttl)| *ttl > long)
    );

    // A change through the mount drops the listing: what the kernel is told from then on
    // until the folder is listed again is kept briefly only.
    fs.dirs.invalidate(&Id::root());
    assert_eq!(
        fs.getattr(sized.attr.ino).unwrap().ttl,
        Duration::from_secs(1)
    );
    let open = fs.opendir(ROOT_INO).unwrap().fh;
    assert_eq!(remote.lists(), 2, "listed again");
    fs.dirs.expire(&Id::root());
    let mut from_old = Vec::new();
    fs.readdir(ROOT_INO, open, 2, true, |item| {
        from_old.push(item.entry.ttl);
        false
    })
    .unwrap();
    fs.releasedir(open);
    assert_eq!(
        from_old,
        [Duration::from_secs(1); 2],
        "a listing marked out of date"
    );
    let again = fs.lookup(ROOT_INO, OsStr::new("sized.txt")).unwrap();
    assert_eq!(remote.lists(), 3);
    assert!(
        again.ttl > long && again.entry_ttl > long,
        "fresh again: {again:?}"
    );
}

#[test]
fn attr_timeout_when_given_decides_and_a_listing_not_kept_gives_a_second() {
    for (set, listing_time, expected) in [
        (
            Some(Duration::from_secs(7)),
            Duration::from_secs(3600),
            Duration::from_secs(7),
        ),
        (None, Duration::ZERO, Duration::from_secs(1)),
    ] {
        let remote = Arc::new(MemRemote::new());
        remote.set_numeric_sizes(true);
        remote.add_folder(&Id::root(), "Sub");
        remote.add_file(&Id::root(), "sized", "txt", vec![1; 10]);
        let mut c = config();
        c.attr_timeout = set;
        c.dir_cache_time = listing_time;
        let fs = CloudifyFs::with_size_cache(c, remote, SizeCache::disabled());
        let listed = listed_ttls(&fs, ROOT_INO);
        assert!(listed.iter().all(|(_, ttl)| *ttl == expected), "{listed:?}");
        let entry = fs.lookup(ROOT_INO, OsStr::new("sized.txt")).unwrap();
        assert_eq!((entry.entry_ttl, entry.ttl), (expected, expected));
        assert_eq!(fs.getattr(entry.attr.ino).unwrap().ttl, expected);
    }
}

#[test]
fn the_kernel_may_keep_a_folders_entries_while_its_listing_is_unchanged() {
    let remote = Arc::new(MemRemote::new());
    remote.add_file(&Id::root(), "a", "txt", vec![1; 10]);
    let mut c = config();
    c.dir_cache_time = Duration::from_secs(3600);
    let staging = tempfile::tempdir().unwrap();
    c.cache_dir = staging.path().to_path_buf();
    let fs = CloudifyFs::with_size_cache(c, remote.clone(), SizeCache::disabled());
    let open = |fs: &CloudifyFs| {
        let o = fs.opendir(ROOT_INO).unwrap();
        fs.releasedir(o.fh);
        (o.cache, o.keep_cache)
    };
    assert_eq!(open(&fs), (true, false), "cached from the first read on");
    assert_eq!(open(&fs), (true, true), "the same listing");
    fs.dirs.invalidate(&Id::root());
    assert_eq!(open(&fs), (true, false), "listed again");
    assert_eq!(open(&fs), (true, true));

    // A file being written is not cached with the rest, nor is what follows its upload.
    let (_, o) = fs
        .create(ROOT_INO, OsStr::new("new.txt"), libc::O_WRONLY)
        .unwrap();
    assert_eq!(open(&fs), (false, false));
    fs.write(o.fh, 0, b"new").unwrap();
    fs.flush(o.fh).unwrap();
    fs.release(o.fh);
    assert_eq!(remote.uploads(), 1);
    assert_eq!(open(&fs), (true, false), "the listing changed");
    assert_eq!(open(&fs), (true, true));

    // A listing not kept is not cached.
    let mut c = config();
    c.dir_cache_time = Duration::ZERO;
    let fs = CloudifyFs::with_size_cache(c, remote, SizeCache::disabled());
    assert_eq!(open(&fs), (false, false));
    assert_eq!(open(&fs), (false, false));
}

#[test]
fn a_lookup_waits_for_a_size_only_while_a_batch_asks_for_it() {
    let remote = Arc::new(MemRemote::new());
    for i in 0..2 {
        remote.add_file(&Id::root(), &format!("f{i}"), "txt", vec![1; 2000 + i]);
    }
    let fs = fs_over(remote.clone());
    let alone = fs.lookup(ROOT_INO, OsStr::new("f0.txt")).unwrap();
    assert_eq!((alone.attr.size, alone.ttl), (2048, Duration::ZERO));
    assert_eq!(remote.heads(), 0, "a lookup alone starts no batch (rm, mv)");

    // `ls -l`: its first stat started a batch for the folder, which has yet to reach this
    // file; the lookup waits for the size (here, asks for it itself) and answers exactly.
    let listing = fs.cached_listing(&Id::root()).unwrap();
    let Node::File(f1) = &listing.find("f1.txt").unwrap().node else {
        panic!("a file");
    };
    fs.probes.queue(&f1.file);
    let waited = fs.lookup(ROOT_INO, OsStr::new("f1.txt")).unwrap();
    assert_eq!(waited.attr.size, 2001);
    assert!(waited.ttl > Duration::from_secs(1), "kept: {waited:?}");
    assert_eq!(remote.heads(), 1);
}
