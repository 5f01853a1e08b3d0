//! The write side driven without a kernel over the in-memory remote.

use std::ffi::OsStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::api::{Id, Remote};
use crate::fs::config::DeleteMode;
use crate::fs::sizes::SizeCache;
use crate::fs::testing::{MemRemote, StreamFault, Streams};
use crate::fs::write::ops::SetAttr;
use crate::fs::write::stream;
use crate::fs::{CloudifyFs, FsConfig, ROOT_INO};

struct Fixture {
    fs: Arc<CloudifyFs>,
    remote: Arc<MemRemote>,
    _dir: tempfile::TempDir,
}

fn fixture_with(remote: Arc<MemRemote>, edit: impl FnOnce(&mut FsConfig)) -> Fixture {
    fixture_over(remote.clone(), remote, edit)
}

/// A filesystem talking to `through` (`remote` itself, or a wrapper of it), with `remote`
/// kept for the assertions.
fn fixture_over(
    through: Arc<dyn Remote>,
    remote: Arc<MemRemote>,
    edit: impl FnOnce(&mut FsConfig),
) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut config = FsConfig::new(dir.path().to_path_buf());
    config.dir_cache_time = Duration::ZERO;
    edit(&mut config);
    let fs = Arc::new(CloudifyFs::with_size_cache(
        config,
        through,
        SizeCache::disabled(),
    ));
    fs.start_background();
    Fixture {
        fs,
        remote,
        _dir: dir,
    }
}

fn fixture() -> Fixture {
    fixture_with(Arc::new(MemRemote::new()), |_| {})
}

fn n(s: &str) -> &OsStr {
    OsStr::new(s)
}

/// create + write + close, as `cp` does.
fn put(fs: &CloudifyFs, parent: u64, name: &str, data: &[u8]) -> Result<u64, crate::fs::FsError> {
    let (entry, opened) = fs.create(parent, n(name), libc::O_WRONLY | libc::O_CREAT)?;
    fs.write(opened.fh, 0, data)?;
    let r = fs.flush(opened.fh);
    fs.release(opened.fh);
    r.map(|()| entry.attr.ino)
}

fn read_all(fs: &CloudifyFs, ino: u64) -> Vec<u8> {
    let o = fs.open(ino, libc::O_RDONLY).unwrap();
    let data = fs.read(o.fh, 0, 1 << 20).unwrap();
    fs.release(o.fh);
    data.to_vec()
}

#[test]
fn close_uploads_and_the_entry_takes_the_servers_name() {
    let f = fixture();
    f.remote
        .add_file(&Id::root(), "a", "pdf", b"%PDF old".to_vec());
    let (entry, o) = f.fs.create(ROOT_INO, n("a.txt"), libc::O_WRONLY).unwrap();
    f.fs.write(o.fh, 0, b"hello").unwrap();
    assert_eq!(
        &f.fs.read(o.fh, 0, 100).unwrap()[..],
        b"hello",
        "reads come from staging"
    );
    assert_eq!(f.remote.uploads(), 0);
    f.fs.flush(o.fh).unwrap();
    f.fs.release(o.fh);
    assert_eq!(f.remote.uploads(), 1);

    let files = f.remote.files_in(&Id::root());
    assert!(
        files
            .iter()
            .any(|(name, ext, b)| name == "a-1" && ext.as_deref() == Some("txt") && b == b"hello")
    );
    let e = f.fs.lookup(ROOT_INO, n("a-1.txt")).unwrap();
    assert_eq!(
        e.attr.ino, entry.attr.ino,
        "same inode under the server's name"
    );
    assert_eq!(e.attr.size, 5);
    assert_eq!(read_all(&f.fs, e.attr.ino), b"hello");
}

#[test]
fn an_empty_new_file_stays_local_and_visible() {
    let f = fixture();
    put(&f.fs, ROOT_INO, "empty.txt", b"").unwrap();
    assert_eq!(f.remote.uploads(), 0);
    let e = f.fs.lookup(ROOT_INO, n("empty.txt")).unwrap();
    assert_eq!(e.attr.size, 0);
    let fh = f.fs.opendir(ROOT_INO).unwrap().fh;
    let mut names = Vec::new();
    f.fs.readdir(ROOT_INO, fh, 0, false, |i| {
        names.push(i.name.to_string());
        false
    })
    .unwrap();
    assert!(names.contains(&"empty.txt".to_string()));
}

#[test]
fn a_failed_overwrite_puts_the_old_content_back_and_keeps_the_new_staged() {
    let f = fixture();
    f.remote
        .add_file(&Id::root(), "doc", "txt", b"old content".to_vec());
    let ino = f.fs.lookup(ROOT_INO, n("doc.txt")).unwrap().attr.ino;
    let o = f.fs.open(ino, libc::O_WRONLY | libc::O_TRUNC).unwrap();
    f.fs.write(o.fh, 0, b"new content").unwrap();
    f.remote.fail_next_uploads(1);
    let err = f.fs.flush(o.fh).unwrap_err();
    f.fs.release(o.fh);
    assert_eq!(err.errno(), libc::EIO);
    assert!(err.to_string().contains("staged at"), "{err}");

    let files = f.remote.files_in(&Id::root());
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].0, "doc", "the old content is back under its name");
    assert_eq!(files[0].2, b"old content");
    assert_eq!(
        read_all(&f.fs, ino),
        b"new content",
        "the mount keeps showing what was written"
    );

    // The next store succeeds and keeps the name.
    f.fs.destroy();
    let files = f.remote.files_in(&Id::root());
    assert_eq!(files.len(), 1);
    assert_eq!(
        (files[0].0.as_str(), files[0].2.as_slice()),
        ("doc", &b"new content"[..])
    );
}

#[test]
fn append_to_an_existing_file_downloads_it_first() {
    let f = fixture();
    f.remote
        .add_file(&Id::root(), "log", "txt", b"line1\n".to_vec());
    let ino = f.fs.lookup(ROOT_INO, n("log.txt")).unwrap().attr.ino;
    let o = f.fs.open(ino, libc::O_WRONLY | libc::O_APPEND).unwrap();
    f.fs.write(o.fh, 6, b"line2\n").unwrap();
    f.fs.flush(o.fh).unwrap();
    f.fs.release(o.fh);
    let files = f.remote.files_in(&Id::root());
    assert_eq!(files.len(), 1);
    assert_eq!(
        (files[0].0.as_str(), files[0].2.as_slice()),
        ("log", &b"line1\nline2\n"[..])
    );
}

/// `tail -f` of a file appended to with `>>`: a handle opened for reading before the appends
/// reads what the file holds now, while it is staged and after it is stored anew. Reading on
/// in the version it opened ended where that version ended, which the kernel takes as the
/// file's end: the next append, placed there, overwrote what was appended before.
#[test]
fn a_reader_opened_before_appends_reads_them() {
    let f = fixture();
    f.remote
        .add_file(&Id::root(), "log", "txt", b"line1\n".to_vec());
    let ino = f.fs.lookup(ROOT_INO, n("log.txt")).unwrap().attr.ino;
    let reader = f.fs.open(ino, libc::O_RDONLY).unwrap();
    assert_eq!(&f.fs.read(reader.fh, 0, 4096).unwrap()[..], b"line1\n");
    assert!(f.fs.read(reader.fh, 6, 4096).unwrap().is_empty());

    let mut end = 6;
    for line in [&b"line2\n"[..], b"line3\n"] {
        let o = f.fs.open(ino, libc::O_WRONLY | libc::O_APPEND).unwrap();
        f.fs.write(o.fh, end, line).unwrap();
        assert_eq!(
            &f.fs.read(reader.fh, end, 4096).unwrap()[..],
            line,
            "staged, not stored yet"
        );
        f.fs.flush(o.fh).unwrap();
        f.fs.release(o.fh);
        assert_eq!(
            &f.fs.read(reader.fh, end, 4096).unwrap()[..],
            line,
            "stored"
        );
        end += line.len() as u64;
    }
    assert_eq!(
        &f.fs.read(reader.fh, 0, 4096).unwrap()[..],
        b"line1\nline2\nline3\n"
    );
    f.fs.release(reader.fh);
    let files = f.remote.files_in(&Id::root());
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].2, b"line1\nline2\nline3\n");
}

#[test]
fn a_stored_file_emptied_stays_empty_until_it_gets_content() {
    let f = fixture();
    f.remote
        .add_file(&Id::root(), "b", "txt", b"old content".to_vec());
    let ino = f.fs.lookup(ROOT_INO, n("b.txt")).unwrap().attr.ino;
    let empty = crate::fs::write::ops::SetAttr {
        size: Some(0),
        ..Default::default()
    };
    f.fs.setattr(ino, empty).unwrap();
    assert_eq!(f.fs.lookup(ROOT_INO, n("b.txt")).unwrap().attr.size, 0);
    assert_eq!(read_all(&f.fs, ino), b"", "empty in the mount after close");
    assert_eq!(f.remote.files_in(&Id::root())[0].2, b"old content");
    assert_eq!(f.remote.uploads(), 0);

    // `>>`: the append lands on the empty file and replaces the old content by name.
    let o = f.fs.open(ino, libc::O_WRONLY | libc::O_APPEND).unwrap();
    f.fs.write(o.fh, 0, b"x").unwrap();
    f.fs.flush(o.fh).unwrap();
    f.fs.release(o.fh);
    let files = f.remote.files_in(&Id::root());
    assert_eq!(files.len(), 1);
    assert_eq!(
        (files[0].0.as_str(), files[0].2.as_slice()),
        ("b", &b"x"[..])
    );
    assert_eq!(read_all(&f.fs, ino), b"x");
}

#[test]
fn a_stored_file_emptied_until_unmount_keeps_its_old_content() {
    let f = fixture();
    f.remote
        .add_file(&Id::root(), "b", "txt", b"old content".to_vec());
    let ino = f.fs.lookup(ROOT_INO, n("b.txt")).unwrap().attr.ino;
    let o = f.fs.open(ino, libc::O_WRONLY | libc::O_TRUNC).unwrap();
    f.fs.flush(o.fh).unwrap();
    f.fs.release(o.fh);
    assert_eq!(read_all(&f.fs, ino), b"");
    f.fs.destroy();
    let files = f.remote.files_in(&Id::root());
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].2, b"old content");
    assert_eq!(f.remote.uploads(), 0);
}

#[test]
fn a_new_name_without_an_extension_waits_for_its_rename() {
    let f = fixture();
    f.remote
        .add_file(&Id::root(), "notes", "txt", b"old".to_vec());
    let tmp = put(&f.fs, ROOT_INO, "sedAbC123", b"new content").unwrap();
    assert_eq!(f.remote.uploads(), 0, "not stored at close");
    let e = f.fs.lookup(ROOT_INO, n("sedAbC123")).unwrap();
    assert_eq!((e.attr.ino, e.attr.size), (tmp, 11), "visible in the mount");

    f.fs.rename(ROOT_INO, n("sedAbC123"), ROOT_INO, n("notes.txt"), 0)
        .unwrap();
    assert_eq!(f.remote.uploads(), 1, "stored once, under the final name");
    let files = f.remote.files_in(&Id::root());
    assert_eq!(files.len(), 1);
    assert_eq!(
        (files[0].0.as_str(), files[0].2.as_slice()),
        ("notes", &b"new content"[..])
    );
    assert!(f.fs.lookup(ROOT_INO, n("sedAbC123")).is_err());
}

#[test]
fn a_new_name_without_an_extension_is_stored_at_fsync_or_unmount() {
    let f = fixture();
    let (_, o) = f.fs.create(ROOT_INO, n("synced"), libc::O_WRONLY).unwrap();
    f.fs.write(o.fh, 0, b"synced").unwrap();
    f.fs.fsync(o.fh).unwrap();
    f.fs.release(o.fh);
    assert_eq!(f.remote.uploads(), 1, "fsync stores");

    put(&f.fs, ROOT_INO, "later", b"later").unwrap();
    assert_eq!(f.remote.uploads(), 1);
    f.fs.destroy();
    assert_eq!(f.remote.uploads(), 2, "the unmount stores");
    let mut names: Vec<String> = f
        .remote
        .files_in(&Id::root())
        .into_iter()
        .map(|(name, _, _)| name)
        .collect();
    names.sort();
    assert_eq!(names, ["later", "synced"]);
}

#[test]
fn with_write_back_a_rename_within_the_delay_costs_one_upload() {
    let f = fixture_with(Arc::new(MemRemote::new()), |c| {
        c.write_back = Duration::from_millis(300)
    });
    put(&f.fs, ROOT_INO, ".tmp-x.txt", b"content").unwrap();
    f.fs.rename(ROOT_INO, n(".tmp-x.txt"), ROOT_INO, n("final.txt"), 0)
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while f.remote.uploads() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    f.fs.destroy();
    assert_eq!(f.remote.uploads(), 1);
    let files = f.remote.files_in(&Id::root());
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].0, "final");
}

#[test]
fn writing_past_the_free_space_fails_with_enospc() {
    let f = fixture();
    let (_, o) = f.fs.create(ROOT_INO, n("big.txt"), libc::O_WRONLY).unwrap();
    f.fs.writes.staging().unwrap().pretend_free(Some(8));
    f.fs.write(o.fh, 0, b"12345").unwrap();
    let err = f.fs.write(o.fh, 5, b"1234567890").unwrap_err();
    assert_eq!(err.errno(), libc::ENOSPC);
    f.fs.writes.staging().unwrap().pretend_free(None);
    f.fs.release(o.fh);
}

#[test]
fn mkdir_refuses_dotted_names_before_any_request_and_takes_the_returned_name() {
    let f = fixture();
    let err = f.fs.mkdir(ROOT_INO, n("v1.2")).unwrap_err();
    assert_eq!(err.errno(), libc::EINVAL);
    assert!(err.to_string().contains("rule"));
    assert!(f.remote.folders_in(&Id::root()).is_empty());
    f.fs.mkdir(ROOT_INO, n("Docs")).unwrap();
    f.fs.rmdir(ROOT_INO, n("Docs")).unwrap();
    let e = f.fs.mkdir(ROOT_INO, n("Docs")).unwrap();
    assert_eq!(
        f.remote.folders_in(&Id::root()),
        ["Docs-1"],
        "trashed names stay reserved"
    );
    assert_eq!(
        f.fs.lookup(ROOT_INO, n("Docs-1")).unwrap().attr.ino,
        e.attr.ino
    );
}

#[test]
fn rmdir_of_a_folder_with_content_is_enotempty() {
    let f = fixture();
    let d = f.remote.add_folder(&Id::root(), "Full");
    f.remote.add_file(&d, "x", "txt", b"x".to_vec());
    assert_eq!(
        f.fs.rmdir(ROOT_INO, n("Full")).unwrap_err().errno(),
        libc::ENOTEMPTY
    );
    assert_eq!(
        f.fs.rename(ROOT_INO, n("Full"), ROOT_INO, n("Other"), 0)
            .unwrap_err()
            .errno(),
        libc::EXDEV
    );
}

#[test]
fn rename_of_a_stored_file_moves_it_and_unlink_follows_the_delete_mode() {
    let f = fixture_with(Arc::new(MemRemote::new()), |c| {
        c.delete_mode = DeleteMode::Permanent
    });
    let sub = f.remote.add_folder(&Id::root(), "Sub");
    f.remote
        .add_file(&Id::root(), "a", "txt", b"alpha".to_vec());
    f.fs.lookup(ROOT_INO, n("Sub")).unwrap();
    let sub_ino = f.fs.lookup(ROOT_INO, n("Sub")).unwrap().attr.ino;
    f.fs.rename(ROOT_INO, n("a.txt"), sub_ino, n("b.txt"), 0)
        .unwrap();
    assert!(f.remote.files_in(&Id::root()).is_empty());
    let moved = f.remote.files_in(&sub);
    assert_eq!(
        (moved[0].0.as_str(), moved[0].2.as_slice()),
        ("b", &b"alpha"[..])
    );
    let e = f.fs.lookup(sub_ino, n("b.txt")).unwrap();
    assert_eq!(read_all(&f.fs, e.attr.ino), b"alpha");

    f.fs.unlink(sub_ino, n("b.txt")).unwrap();
    put(&f.fs, sub_ino, "b.txt", b"again").unwrap();
    assert_eq!(
        f.remote.files_in(&sub)[0].0,
        "b",
        "a permanent delete frees the name"
    );
    let err =
        f.fs.rename(ROOT_INO, n("Sub"), ROOT_INO, n("X"), libc::RENAME_EXCHANGE)
            .unwrap_err();
    assert_eq!(err.errno(), libc::EINVAL);
}

#[test]
fn staged_files_of_an_earlier_mount_are_uploaded_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let remote = Arc::new(MemRemote::new());
    {
        let staging = super::staging::Staging::open(dir.path()).unwrap();
        let m = super::staging::Manifest::new(&Id::root(), "left.txt", "/left.txt");
        let (_, mut file) = staging.create(&m).unwrap();
        std::io::Write::write_all(&mut file, b"left behind").unwrap();
    }
    let mut config = FsConfig::new(dir.path().to_path_buf());
    config.dir_cache_time = Duration::ZERO;
    let fs = Arc::new(CloudifyFs::with_size_cache(
        config,
        remote.clone(),
        SizeCache::disabled(),
    ));
    fs.start_background();
    let deadline = Instant::now() + Duration::from_secs(30);
    while remote.files_in(&Id::root()).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let files = remote.files_in(&Id::root());
    assert_eq!(
        (files[0].0.as_str(), files[0].2.as_slice()),
        ("left", &b"left behind"[..])
    );
    // The staged copy is removed right after the upload answered: wait for that too.
    let staged = || {
        std::fs::read_dir(dir.path().join("staging"))
            .unwrap()
            .count()
    };
    while staged() > 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(staged(), 0);
}

#[test]
fn a_stored_size_is_exact_only_when_it_agrees_with_the_server() {
    use super::ops::exact_stored_size;
    use crate::api::model::parse_size;
    use crate::api::{File, SizeHint};
    let file = |size: Option<SizeHint>| File {
        id: Id::new("1"),
        name: "a".into(),
        basename: Some("a.txt".into()),
        url: None,
        full_url: None,
        indirect_url: None,
        size,
        mime_type: None,
        folder_id: None,
        created_at: None,
        updated_at: None,
    };
    let text = |t: &str| file(parse_size(t).map(SizeHint::Approx));
    assert_eq!(exact_stored_size(4096, &text("4,00 KB")), Some(4096));
    assert_eq!(exact_stored_size(1234, &text("1,21 KB")), Some(1234));
    assert_eq!(exact_stored_size(1000, &text("1.000,00 B")), Some(1000));
    let mib = 1 << 20;
    assert_eq!(
        exact_stored_size(mib + 5000, &text("1,00 MB")),
        Some(mib + 5000)
    );
    // Re-encoded by the server: unknown.
    assert_eq!(exact_stored_size(4096, &text("3,50 KB")), None);
    assert_eq!(exact_stored_size(mib + 20_000, &text("1,00 MB")), None);
    // No size at all: nothing contradicts the staged length.
    assert_eq!(exact_stored_size(4096, &file(None)), Some(4096));
    // A numeric size is the server's exact count.
    assert_eq!(
        exact_stored_size(4096, &file(Some(SizeHint::Exact(4000)))),
        Some(4000)
    );
}

/// Names `readdir` shows in directory `ino`.
fn names_in(fs: &CloudifyFs, ino: u64) -> Vec<String> {
    let fh = fs.opendir(ino).unwrap().fh;
    let mut names = Vec::new();
    fs.readdir(ino, fh, 0, false, |i| {
        names.push(i.name.to_string());
        false
    })
    .unwrap();
    fs.releasedir(fh);
    names
}

/// The kernel sends RELEASE after close(2) has returned, so a program's next call (a rename
/// or an unlink of the file it just wrote) may arrive while the file still has its handle.
#[test]
fn a_rename_right_after_the_close_moves_the_stored_file_before_the_release() {
    let f = fixture_with(Arc::new(MemRemote::new()), |c| {
        c.delete_mode = DeleteMode::Permanent;
        c.dir_cache_time = Duration::from_secs(3600);
    });
    let sub = f.remote.add_folder(&Id::root(), "Sub");
    let sub_ino = f.fs.lookup(ROOT_INO, n("Sub")).unwrap().attr.ino;
    for (to_dir, to_folder) in [(ROOT_INO, Id::root()), (sub_ino, sub.clone())] {
        let (_, o) = f.fs.create(ROOT_INO, n("w.txt"), libc::O_WRONLY).unwrap();
        f.fs.write(o.fh, 0, b"written").unwrap();
        f.fs.flush(o.fh).unwrap();
        assert!(names_in(&f.fs, ROOT_INO).contains(&"w.txt".to_string()));

        f.fs.rename(ROOT_INO, n("w.txt"), to_dir, n("r.txt"), 0)
            .unwrap();
        let root_names = names_in(&f.fs, ROOT_INO);
        assert!(!root_names.contains(&"w.txt".to_string()), "{root_names:?}");
        assert!(names_in(&f.fs, to_dir).contains(&"r.txt".to_string()));
        let stored: Vec<_> = f.remote.files_in(&Id::root());
        assert!(stored.iter().all(|(name, _, _)| name != "w"), "{stored:?}");
        let moved = f.remote.files_in(&to_folder);
        assert!(
            moved
                .iter()
                .any(|(name, _, b)| name == "r" && b == b"written"),
            "stored under the new name before the release: {moved:?}"
        );

        f.fs.release(o.fh);
        assert!(!names_in(&f.fs, ROOT_INO).contains(&"w.txt".to_string()));
        let e = f.fs.lookup(to_dir, n("r.txt")).unwrap();
        assert_eq!(read_all(&f.fs, e.attr.ino), b"written");
        f.fs.unlink(to_dir, n("r.txt")).unwrap();
    }
}

#[test]
fn an_unlink_right_after_the_close_removes_the_stored_file_before_the_release() {
    let f = fixture_with(Arc::new(MemRemote::new()), |c| {
        c.dir_cache_time = Duration::from_secs(3600);
    });
    let (_, o) = f.fs.create(ROOT_INO, n("w.txt"), libc::O_WRONLY).unwrap();
    f.fs.write(o.fh, 0, b"written").unwrap();
    f.fs.flush(o.fh).unwrap();
    assert!(names_in(&f.fs, ROOT_INO).contains(&"w.txt".to_string()));
    f.fs.unlink(ROOT_INO, n("w.txt")).unwrap();
    assert!(!names_in(&f.fs, ROOT_INO).contains(&"w.txt".to_string()));
    f.fs.release(o.fh);
    assert!(!names_in(&f.fs, ROOT_INO).contains(&"w.txt".to_string()));
    assert!(f.remote.files_in(&Id::root()).is_empty());
    assert_eq!(
        f.fs.lookup(ROOT_INO, n("w.txt")).unwrap_err().errno(),
        libc::ENOENT
    );
}

/// `sed -i` closes its temporary file (a name without an extension, kept local) and renames
/// it over the original at once: the rename stores it, released or not.
#[test]
fn a_temporary_name_renamed_right_after_the_close_is_stored_by_the_rename() {
    let f = fixture();
    let (_, o) =
        f.fs.create(ROOT_INO, n("sedAbC123"), libc::O_WRONLY)
            .unwrap();
    f.fs.write(o.fh, 0, b"edited").unwrap();
    f.fs.flush(o.fh).unwrap();
    assert_eq!(f.remote.uploads(), 0, "kept local at the close");
    f.fs.rename(ROOT_INO, n("sedAbC123"), ROOT_INO, n("doc.txt"), 0)
        .unwrap();
    let files = f.remote.files_in(&Id::root());
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(
        (files[0].0.as_str(), files[0].2.as_slice()),
        ("doc", &b"edited"[..])
    );
    f.fs.release(o.fh);
    assert_eq!(f.remote.uploads(), 1);
}

/// A rename resolves the name to the pending file, then the kernel's RELEASE settles it
/// (the inode becomes the stored file) before the rename takes the file's slot.
#[test]
fn a_rename_that_the_release_overtakes_moves_the_stored_file() {
    let f = fixture_with(Arc::new(MemRemote::new()), |c| {
        c.delete_mode = DeleteMode::Permanent;
        c.dir_cache_time = Duration::from_secs(3600);
    });
    let (e, o) = f.fs.create(ROOT_INO, n("w.txt"), libc::O_WRONLY).unwrap();
    let ino = e.attr.ino;
    f.fs.write(o.fh, 0, b"written").unwrap();
    f.fs.flush(o.fh).unwrap();
    let resolved = f.fs.writes.slot(ino);
    assert!(resolved.is_some());
    f.fs.release(o.fh);
    assert!(
        f.fs.writes.slot(ino).is_none(),
        "the release settles the file"
    );

    for slot in [resolved, None] {
        let (from, to) = if slot.is_some() {
            ("w.txt", "r.txt")
        } else {
            ("r.txt", "s.txt")
        };
        f.fs.rename_slot(slot, ino, (ROOT_INO, from), (ROOT_INO, to), None, None)
            .unwrap();
        let names = names_in(&f.fs, ROOT_INO);
        assert_eq!(names, [".", "..", to], "listed after renaming {from}");
        let stored = f.remote.files_in(&Id::root());
        assert_eq!(stored.len(), 1, "{stored:?}");
        assert_eq!(format!("{}.txt", stored[0].0), to);
        assert_eq!(stored[0].2, b"written");
    }
}

/// An unlink resolves the name to the pending file, then the kernel's RELEASE settles it
/// (the inode becomes the stored file) before the unlink takes the file's slot: the stored
/// file is removed, not answered ENOENT and left listed.
#[test]
fn an_unlink_that_the_release_overtakes_removes_the_stored_file() {
    let f = fixture_with(Arc::new(MemRemote::new()), |c| {
        c.delete_mode = DeleteMode::Permanent;
        c.dir_cache_time = Duration::from_secs(3600);
    });
    // The slot resolved before the release settled it, and none left to find.
    for resolved in [true, false] {
        let (e, o) = f.fs.create(ROOT_INO, n("w.txt"), libc::O_WRONLY).unwrap();
        let ino = e.attr.ino;
        f.fs.write(o.fh, 0, b"written").unwrap();
        f.fs.flush(o.fh).unwrap();
        let slot = f.fs.writes.slot(ino).filter(|_| resolved);
        f.fs.release(o.fh);
        assert!(
            f.fs.writes.slot(ino).is_none(),
            "the release settles the file"
        );

        f.fs.unlink_slot(slot, ROOT_INO, "w.txt", ino).unwrap();
        assert_eq!(
            names_in(&f.fs, ROOT_INO),
            [".", ".."],
            "resolved: {resolved}"
        );
        let stored = f.remote.files_in(&Id::root());
        assert!(stored.is_empty(), "{stored:?}");
        assert_eq!(
            f.fs.lookup(ROOT_INO, n("w.txt")).unwrap_err().errno(),
            libc::ENOENT
        );
    }
}

/// A rename stores the file under the new name and then removes the old one; when that
/// removal fails (after the client's retries) the old name is still on the server, so the
/// rename fails instead of answering success for a name `ls` keeps showing.
#[test]
fn a_rename_whose_old_copy_cannot_be_removed_fails() {
    let f = fixture_with(Arc::new(MemRemote::new()), |c| {
        c.delete_mode = DeleteMode::Permanent;
        c.dir_cache_time = Duration::from_secs(3600);
    });
    let sorted = |mut names: Vec<String>| {
        names.sort();
        names
    };

    // A stored file, renamed as a remote one.
    f.remote
        .add_file(&Id::root(), "a", "txt", b"alpha".to_vec());
    f.fs.lookup(ROOT_INO, n("a.txt")).unwrap();
    f.remote.fail_next_removals(1);
    let err =
        f.fs.rename(ROOT_INO, n("a.txt"), ROOT_INO, n("b.txt"), 0)
            .unwrap_err();
    assert_eq!(err.errno(), libc::EIO);
    assert_eq!(
        sorted(names_in(&f.fs, ROOT_INO)),
        [".", "..", "a.txt", "b.txt"]
    );
    assert_eq!(f.remote.files_in(&Id::root()).len(), 2);
    let a = f.fs.lookup(ROOT_INO, n("a.txt")).unwrap().attr.ino;
    assert_eq!(read_all(&f.fs, a), b"alpha");

    // A file just written and closed, renamed before the kernel's RELEASE: stored by the
    // rename under the new name.
    let (_, o) = f.fs.create(ROOT_INO, n("w.txt"), libc::O_WRONLY).unwrap();
    f.fs.write(o.fh, 0, b"written").unwrap();
    f.fs.flush(o.fh).unwrap();
    f.remote.fail_next_removals(1);
    let err =
        f.fs.rename(ROOT_INO, n("w.txt"), ROOT_INO, n("r.txt"), 0)
            .unwrap_err();
    assert_eq!(err.errno(), libc::EIO);
    f.fs.release(o.fh);
    assert_eq!(
        sorted(names_in(&f.fs, ROOT_INO)),
        [".", "..", "a.txt", "b.txt", "r.txt", "w.txt"]
    );
    for name in ["w.txt", "r.txt"] {
        let ino = f.fs.lookup(ROOT_INO, n(name)).unwrap().attr.ino;
        assert_eq!(read_all(&f.fs, ino), b"written", "{name}");
    }
    assert_eq!(f.remote.files_in(&Id::root()).len(), 4);
}

// --- uploads while written (stream.rs) -----------------------------------------------------

fn streams_fixture(edit: impl FnOnce(&mut FsConfig)) -> (Fixture, Arc<Streams>) {
    let remote = Arc::new(MemRemote::new());
    let streams = Arc::new(Streams::new(remote.clone()));
    (fixture_over(streams.clone(), remote, edit), streams)
}

/// Bytes that differ from one MiB to the next, so a piece sent twice or out of place shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i % 251) as u8 ^ (i >> 20) as u8)
        .collect()
}

const MIB: usize = 1 << 20;

/// Writes `data` from `at` in pieces of 1 MiB, as `cp` does.
fn write_on(fs: &CloudifyFs, fh: u64, at: u64, data: &[u8]) {
    for (i, piece) in data.chunks(MIB).enumerate() {
        fs.write(fh, at + (i * MIB) as u64, piece).unwrap();
    }
}

/// Waits until `n` streamed uploads were dropped unfinished: a file's worker drops its
/// upload after the piece it is sending.
fn abandoned(streams: &Streams, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while streams.abandoned() < n {
        assert!(
            Instant::now() < deadline,
            "{} of {n} dropped",
            streams.abandoned()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(streams.abandoned(), n);
}

fn stored_bytes(f: &Fixture, name: &str) -> Vec<u8> {
    let files = f.remote.files_in(&Id::root());
    let mut found = files.into_iter().filter(|(stem, _, _)| stem == name);
    let (_, _, bytes) = found
        .next()
        .unwrap_or_else(|| panic!("{name} is not stored"));
    assert!(found.next().is_none(), "{name} is stored twice");
    bytes
}

#[test]
fn a_large_new_file_is_uploaded_while_written() {
    let (f, streams) = streams_fixture(|_| {});
    let data = pattern(6 * MIB + 12345);
    let (_, o) = f.fs.create(ROOT_INO, n("big.zip"), libc::O_WRONLY).unwrap();
    write_on(&f.fs, o.fh, 0, &data[..3 * MIB]);
    assert_eq!(
        streams.started(),
        0,
        "not below {} bytes",
        stream::STREAM_FROM
    );
    write_on(&f.fs, o.fh, 3 * MIB as u64, &data[3 * MIB..]);
    assert_eq!(streams.started(), 1);
    assert_eq!(f.remote.uploads(), 0, "nothing stored before the close");
    // A read meanwhile sees every byte written (the worker writes the staged file).
    let ino = f.fs.lookup(ROOT_INO, n("big.zip")).unwrap().attr.ino;
    let r = f.fs.open(ino, libc::O_RDONLY).unwrap();
    let tail = f.fs.read(r.fh, 6 * MIB as u64, 1 << 20).unwrap();
    assert!(
        tail[..] == data[6 * MIB..],
        "the staged copy lacks written bytes"
    );
    f.fs.release(r.fh);
    f.fs.flush(o.fh).unwrap();
    f.fs.release(o.fh);
    assert_eq!((streams.stored(), streams.abandoned()), (1, 0));
    assert_eq!(f.remote.uploads(), 1, "the streamed upload is the only one");
    assert!(stored_bytes(&f, "big") == data, "stored bytes differ");
    let e = f.fs.lookup(ROOT_INO, n("big.zip")).unwrap();
    assert_eq!(e.attr.size, data.len() as u64);

    // A small file is uploaded at close only.
    put(&f.fs, ROOT_INO, "small.txt", b"small").unwrap();
    assert_eq!(streams.started(), 1);
    assert_eq!(stored_bytes(&f, "small"), b"small");
}

/// Every way the streamed upload cannot hold the content the close stores: the upload is
/// dropped (its request cut off, nothing stored by it) and the staged copy is uploaded.
#[test]
fn writes_other_than_appending_fall_back_to_the_staged_upload() {
    type Change = fn(&CloudifyFs, u64, u64, &mut Vec<u8>);
    let seek_back: Change = |fs, _, fh, data| {
        fs.write(fh, 10, b"rewritten").unwrap();
        data[10..19].copy_from_slice(b"rewritten");
    };
    let gap: Change = |fs, _, fh, data| {
        let at = data.len() + 100;
        fs.write(fh, at as u64, b"after a hole").unwrap();
        data.resize(at, 0);
        data.extend_from_slice(b"after a hole");
    };
    let truncate: Change = |fs, ino, _, data| {
        let set = SetAttr {
            size: Some(MIB as u64),
            ..SetAttr::default()
        };
        fs.setattr(ino, set).unwrap();
        data.truncate(MIB);
    };
    for (what, change) in [
        ("seek back", seek_back),
        ("gap", gap),
        ("truncate", truncate),
    ] {
        let (f, streams) = streams_fixture(|_| {});
        let mut data = pattern(5 * MIB);
        let (e, o) = f.fs.create(ROOT_INO, n("f.zip"), libc::O_WRONLY).unwrap();
        write_on(&f.fs, o.fh, 0, &data);
        assert_eq!(streams.started(), 1, "{what}");
        change(&f.fs, e.attr.ino, o.fh, &mut data);
        abandoned(&streams, 1);
        // Appending again does not start another upload.
        let more = pattern(5 * MIB);
        write_on(&f.fs, o.fh, data.len() as u64, &more);
        data.extend_from_slice(&more);
        f.fs.flush(o.fh).unwrap();
        f.fs.release(o.fh);
        assert_eq!((streams.started(), streams.stored()), (1, 0), "{what}");
        assert_eq!(f.remote.uploads(), 1, "{what}: the staged copy only");
        assert!(stored_bytes(&f, "f") == data, "{what}: stored bytes differ");
    }
}

#[test]
fn a_rename_before_the_close_stores_the_staged_copy_under_the_new_name() {
    let (f, streams) = streams_fixture(|_| {});
    let data = pattern(5 * MIB);
    let (_, o) = f.fs.create(ROOT_INO, n("tmp.zip"), libc::O_WRONLY).unwrap();
    write_on(&f.fs, o.fh, 0, &data);
    f.fs.rename(ROOT_INO, n("tmp.zip"), ROOT_INO, n("final.zip"), 0)
        .unwrap();
    abandoned(&streams, 1);
    f.fs.flush(o.fh).unwrap();
    f.fs.release(o.fh);
    assert_eq!(streams.stored(), 0);
    let names: Vec<String> = f
        .remote
        .files_in(&Id::root())
        .into_iter()
        .map(|(stem, _, _)| stem)
        .collect();
    assert_eq!(names, ["final"]);
    assert!(stored_bytes(&f, "final") == data);
}

#[test]
fn an_unlinked_file_being_written_stores_nothing() {
    let (f, streams) = streams_fixture(|_| {});
    let (_, o) =
        f.fs.create(ROOT_INO, n("gone.zip"), libc::O_WRONLY)
            .unwrap();
    write_on(&f.fs, o.fh, 0, &pattern(5 * MIB));
    f.fs.unlink(ROOT_INO, n("gone.zip")).unwrap();
    write_on(&f.fs, o.fh, 5 * MIB as u64, &pattern(MIB));
    f.fs.flush(o.fh).unwrap();
    f.fs.release(o.fh);
    assert_eq!(streams.started(), 1);
    abandoned(&streams, 1);
    assert_eq!(f.remote.uploads(), 0);
    assert!(f.remote.files_in(&Id::root()).is_empty());
}

#[test]
fn a_failed_streamed_upload_is_sent_again_from_the_staged_copy() {
    for fault in [
        StreamFault::SendAfter(2 * MIB as u64 + 7),
        StreamFault::FinishServerError,
    ] {
        let (f, streams) = streams_fixture(|_| {});
        streams.break_next_stream(fault);
        let data = pattern(7 * MIB + 3);
        let (_, o) = f.fs.create(ROOT_INO, n("big.zip"), libc::O_WRONLY).unwrap();
        write_on(&f.fs, o.fh, 0, &data);
        f.fs.flush(o.fh).unwrap();
        f.fs.release(o.fh);
        assert_eq!((streams.started(), streams.stored()), (1, 0), "{fault:?}");
        assert_eq!(f.remote.uploads(), 1, "{fault:?}: the staged copy");
        assert!(
            stored_bytes(&f, "big") == data,
            "{fault:?}: stored bytes differ"
        );
    }
}

/// The worker of a streamed file ends unexpectedly (here a panic while sending): the bytes
/// it was handed and did not write reach the staged file anyway, and the close uploads it.
#[test]
fn a_worker_that_ends_leaves_a_whole_staged_copy() {
    let (f, streams) = streams_fixture(|_| {});
    streams.break_next_stream(StreamFault::SendPanics(5 * MIB as u64));
    let data = pattern(9 * MIB + 5);
    let (_, o) = f.fs.create(ROOT_INO, n("big.zip"), libc::O_WRONLY).unwrap();
    write_on(&f.fs, o.fh, 0, &data);
    f.fs.flush(o.fh).unwrap();
    f.fs.release(o.fh);
    assert_eq!((streams.started(), streams.stored()), (1, 0));
    assert_eq!(f.remote.uploads(), 1, "the staged copy");
    assert!(stored_bytes(&f, "big") == data, "stored bytes differ");
}

#[test]
fn a_failed_streamed_upload_fails_the_close_when_the_staged_copy_fails_too() {
    let (f, streams) = streams_fixture(|_| {});
    streams.break_next_stream(StreamFault::FinishServerError);
    f.remote.fail_next_uploads(1);
    let data = pattern(5 * MIB);
    let (e, o) = f.fs.create(ROOT_INO, n("big.zip"), libc::O_WRONLY).unwrap();
    write_on(&f.fs, o.fh, 0, &data);
    assert!(f.fs.flush(o.fh).is_err(), "the close reports the failure");
    assert!(f.remote.files_in(&Id::root()).is_empty());
    // The content stays staged: fsync stores it.
    f.fs.fsync(o.fh).unwrap();
    f.fs.release(o.fh);
    assert!(stored_bytes(&f, "big") == data);
    assert_eq!(
        f.fs.getattr(e.attr.ino).unwrap().attr.size,
        data.len() as u64
    );
}

#[test]
fn a_streamed_upload_refused_for_its_type_is_not_sent_again() {
    let (f, streams) = streams_fixture(|_| {});
    streams.break_next_stream(StreamFault::FinishTypeRefused);
    let (_, o) = f.fs.create(ROOT_INO, n("big.zip"), libc::O_WRONLY).unwrap();
    write_on(&f.fs, o.fh, 0, &pattern(5 * MIB));
    let err = f.fs.flush(o.fh).unwrap_err();
    f.fs.release(o.fh);
    assert_eq!(err.errno(), libc::EPERM, "{err}");
    assert_eq!(streams.failed(), 1);
    assert_eq!(f.remote.uploads(), 0, "no second upload of refused bytes");
    assert!(f.remote.files_in(&Id::root()).is_empty());
}

/// Content that replaces a file on the server (the safe overwrite deletes the old one
/// first), a name that waits for a better one, and --write-back are uploaded at the store
/// only.
#[test]
fn overwrites_unnamed_files_and_write_back_are_not_streamed() {
    let (f, streams) = streams_fixture(|_| {});
    f.remote
        .add_file(&Id::root(), "old", "zip", b"old".to_vec());
    let ino = f.fs.lookup(ROOT_INO, n("old.zip")).unwrap().attr.ino;
    let o = f.fs.open(ino, libc::O_WRONLY | libc::O_TRUNC).unwrap();
    let data = pattern(5 * MIB);
    write_on(&f.fs, o.fh, 0, &data);
    f.fs.flush(o.fh).unwrap();
    f.fs.release(o.fh);
    assert!(stored_bytes(&f, "old") == data);

    let (_, o) = f.fs.create(ROOT_INO, n("noext"), libc::O_WRONLY).unwrap();
    write_on(&f.fs, o.fh, 0, &data);
    f.fs.flush(o.fh).unwrap();
    f.fs.release(o.fh);
    assert_eq!(streams.started(), 0);

    let (f, streams) = streams_fixture(|c| c.write_back = Duration::from_secs(3600));
    let (_, o) =
        f.fs.create(ROOT_INO, n("later.zip"), libc::O_WRONLY)
            .unwrap();
    write_on(&f.fs, o.fh, 0, &data);
    f.fs.flush(o.fh).unwrap();
    f.fs.release(o.fh);
    assert_eq!(streams.started(), 0);
}

#[test]
fn at_most_a_few_files_are_streamed_at_once() {
    let (f, streams) = streams_fixture(|_| {});
    let data = pattern(5 * MIB);
    let mut open = Vec::new();
    for i in 0..stream::MAX_STREAMS + 2 {
        let (_, o) =
            f.fs.create(ROOT_INO, n(&format!("f{i}.zip")), libc::O_WRONLY)
                .unwrap();
        write_on(&f.fs, o.fh, 0, &data);
        open.push(o.fh);
    }
    assert_eq!(streams.started(), stream::MAX_STREAMS);
    for fh in open {
        f.fs.flush(fh).unwrap();
        f.fs.release(fh);
    }
    assert_eq!(streams.stored(), stream::MAX_STREAMS);
    assert_eq!(f.remote.uploads(), stream::MAX_STREAMS + 2);
    // The count is given back: the next large file streams again.
    let (_, o) =
        f.fs.create(ROOT_INO, n("next.zip"), libc::O_WRONLY)
            .unwrap();
    write_on(&f.fs, o.fh, 0, &data);
    f.fs.flush(o.fh).unwrap();
    f.fs.release(o.fh);
    assert_eq!(streams.stored(), stream::MAX_STREAMS + 1);
}
