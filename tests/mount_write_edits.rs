//! Changes to existing files through real mounts of `cloudify-fs` against `cloudify-server`:
//! appends and in-place edits come back intact through a fresh mount, renames upload once
//! and move what the server has, `rm` follows `--delete-mode` (a trashed name stays
//! reserved), and a file emptied stays empty in the mount until it gets new content.

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::process::Command;

use common::files::{names_in, text};
use common::library::{root_names, server_bytes, uploads};
use common::mount::{DEADLINE, MountGuard};
use common::{ServerOptions, TestServer, wait_until};

fn server(flavor: &str) -> TestServer {
    TestServer::start(ServerOptions::default().args(["--flavor", flavor]))
}

fn append_and_edit_in_place_come_back_intact(flavor: &str) {
    let server = server(flavor);
    let log = text(1, 5000);
    let table = text(2, 300_000);
    server.client().put_file(None, "log.txt", &log);
    server.client().put_file(None, "table.txt", &table);
    let mut mount = MountGuard::mount(&server, &[]);
    let root = mount.path().to_path_buf();

    let status = Command::new("sh")
        .arg("-c")
        .arg("printf 'one more line\\n' >> \"$1\"")
        .arg("sh")
        .arg(root.join("log.txt"))
        .status()
        .unwrap();
    assert!(status.success(), "append; log:\n{}", mount.log());
    let script = "import sys\n\
                  with open(sys.argv[1], 'r+b') as f:\n\
                  \x20   f.seek(1000)\n\
                  \x20   f.write(b'EDITED IN PLACE')\n\
                  \x20   f.seek(250000)\n\
                  \x20   f.write(b'second edit')\n";
    let status = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(root.join("table.txt"))
        .status()
        .unwrap();
    assert!(status.success(), "python3 r+b; log:\n{}", mount.log());

    let mut want_log = log.clone();
    want_log.extend_from_slice(b"one more line\n");
    let mut want_table = table.clone();
    want_table[1000..1015].copy_from_slice(b"EDITED IN PLACE");
    want_table[250_000..250_011].copy_from_slice(b"second edit");
    assert_eq!(std::fs::read(root.join("log.txt")).unwrap(), want_log);
    assert_eq!(std::fs::read(root.join("table.txt")).unwrap(), want_table);
    mount.unmount();

    let fresh = MountGuard::mount(&server, &[]);
    assert_eq!(
        std::fs::read(fresh.path().join("log.txt")).unwrap(),
        want_log
    );
    assert_eq!(
        std::fs::read(fresh.path().join("table.txt")).unwrap(),
        want_table
    );
    assert_eq!(
        names_in(fresh.path()),
        BTreeSet::from(["log.txt".into(), "table.txt".into()]),
        "an edit keeps the name and leaves no copy"
    );
}

#[test]
fn append_and_edit_in_place_come_back_intact_2026() {
    append_and_edit_in_place_come_back_intact("2026");
}

#[test]
fn append_and_edit_in_place_come_back_intact_128() {
    append_and_edit_in_place_come_back_intact("1.2.8");
}

fn renames_upload_once_and_move_stored_files(flavor: &str) {
    let server = server(flavor);
    let stored = text(3, 40_000);
    server.client().put_file(None, "stored.txt", &stored);
    let mut mount = MountGuard::mount(&server, &["--write-back", "2s"]);
    let root = mount.path().to_path_buf();
    server.reset_stats();

    // The write-a-temp-then-rename habit: one upload, under the final name.
    let fresh = text(4, 20_000);
    std::fs::write(root.join(".draft.part"), &fresh).unwrap();
    std::fs::rename(root.join(".draft.part"), root.join("final.txt")).unwrap();
    assert_eq!(std::fs::read(root.join("final.txt")).unwrap(), fresh);
    wait_until(
        "the write-back of final.txt",
        DEADLINE * 2,
        || mount.log(),
        || root_names(&server).contains("final"),
    );

    // A stored file moves: the old name is gone on the server, the new one has the bytes.
    std::fs::rename(root.join("stored.txt"), root.join("moved.txt")).unwrap();
    assert_eq!(std::fs::read(root.join("moved.txt")).unwrap(), stored);
    assert!(!root.join("stored.txt").exists());
    mount.unmount();

    assert_eq!(
        root_names(&server),
        BTreeSet::from(["final".into(), "moved".into()])
    );
    assert_eq!(server_bytes(&server, "final").unwrap(), fresh);
    assert_eq!(server_bytes(&server, "moved").unwrap(), stored);
    assert_eq!(
        uploads(&server),
        2,
        "one upload for the renamed temp file, one for the moved file"
    );
}

#[test]
fn renames_upload_once_and_move_stored_files_2026() {
    renames_upload_once_and_move_stored_files("2026");
}

#[test]
fn renames_upload_once_and_move_stored_files_128() {
    renames_upload_once_and_move_stored_files("1.2.8");
}

fn rm_then_write_again(flavor: &str, mode: &str) -> (MountGuard, TestServer) {
    let server = server(flavor);
    server
        .client()
        .put_file(None, "report.txt", b"first version\n");
    let mount = MountGuard::mount(&server, &["--delete-mode", mode]);
    let root = mount.path();
    assert_eq!(
        std::fs::read(root.join("report.txt")).unwrap(),
        b"first version\n"
    );
    let status = Command::new("rm")
        .arg(root.join("report.txt"))
        .status()
        .unwrap();
    assert!(status.success(), "rm; log:\n{}", mount.log());
    assert!(!root.join("report.txt").exists());
    assert!(root_names(&server).is_empty(), "rm removes the file");

    let mut f = std::fs::File::create(root.join("report.txt")).unwrap();
    f.write_all(b"second version\n").unwrap();
    drop(f);
    (mount, server)
}

fn rm_in_trash_mode_keeps_the_name_reserved(flavor: &str) {
    let (mount, server) = rm_then_write_again(flavor, "trash");
    assert_eq!(root_names(&server), BTreeSet::from(["report-1".into()]));
    assert_eq!(
        server_bytes(&server, "report-1").unwrap(),
        b"second version\n"
    );
    let root = mount.path();
    assert_eq!(
        names_in(root),
        BTreeSet::from(["report-1.txt".into()]),
        "the mount shows the name the server chose"
    );
    assert_eq!(
        std::fs::read(root.join("report-1.txt")).unwrap(),
        b"second version\n"
    );
    assert!(
        mount.log().contains("stored as report-1.txt"),
        "{}",
        mount.log()
    );
}

#[test]
fn rm_in_trash_mode_keeps_the_name_reserved_2026() {
    rm_in_trash_mode_keeps_the_name_reserved("2026");
}

#[test]
fn rm_in_trash_mode_keeps_the_name_reserved_128() {
    rm_in_trash_mode_keeps_the_name_reserved("1.2.8");
}

#[test]
fn rm_in_permanent_mode_frees_the_name() {
    let (mount, server) = rm_then_write_again("2026", "permanent");
    assert_eq!(root_names(&server), BTreeSet::from(["report".into()]));
    assert_eq!(
        server_bytes(&server, "report").unwrap(),
        b"second version\n"
    );
    assert_eq!(
        names_in(mount.path()),
        BTreeSet::from(["report.txt".into()])
    );
}

/// The server cannot store an empty file: a stored file truncated to 0 bytes keeps its old
/// content there (with a warning) but stays empty in the mount, so `truncate -s 0 f` then
/// `printf x >> f` stores exactly "x" under the same name.
#[test]
fn truncate_to_nothing_then_append_stores_only_the_appended_bytes() {
    let server = server("2026");
    server.client().put_file(None, "keep.txt", b"old content\n");
    let mut mount = MountGuard::mount(&server, &[]);
    let path = mount.path().join("keep.txt");
    assert_eq!(std::fs::read(&path).unwrap(), b"old content\n");

    let status = Command::new("truncate")
        .args(["-s", "0"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success(), "truncate; log:\n{}", mount.log());
    assert!(mount.log().contains("0 bytes"), "{}", mount.log());
    assert_eq!(std::fs::read(&path).unwrap(), b"", "empty in the mount");
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    assert_eq!(server_bytes(&server, "keep").unwrap(), b"old content\n");

    let status = Command::new("sh")
        .arg("-c")
        .arg("printf x >> \"$1\"")
        .arg("sh")
        .arg(&path)
        .status()
        .unwrap();
    assert!(status.success(), "append; log:\n{}", mount.log());
    assert_eq!(std::fs::read(&path).unwrap(), b"x");
    assert_eq!(server_bytes(&server, "keep").unwrap(), b"x");
    assert!(mount.unmount().success(), "log:\n{}", mount.log());

    let fresh = MountGuard::mount(&server, &[]);
    assert_eq!(std::fs::read(fresh.path().join("keep.txt")).unwrap(), b"x");
    assert_eq!(root_names(&server), BTreeSet::from(["keep".into()]));
}

/// A stored file emptied (by truncation, an O_TRUNC open closed without writing, or an empty
/// file renamed over it) and never given content shows empty for the life of the mount; the
/// server keeps the old content, which the next mount shows.
#[test]
fn a_file_emptied_until_unmount_keeps_its_old_content_on_the_server() {
    let server = server("2026");
    for name in ["a.txt", "b.txt", "c.txt"] {
        server.client().put_file(None, name, b"still here\n");
    }
    let mut mount = MountGuard::mount(&server, &[]);
    let m = mount.path().to_path_buf();
    server.reset_stats();

    let status = Command::new("truncate")
        .args(["-s", "0"])
        .arg(m.join("a.txt"))
        .status()
        .unwrap();
    assert!(status.success(), "truncate; log:\n{}", mount.log());
    std::fs::File::create(m.join("b.txt")).unwrap();
    std::fs::File::create(m.join("empty.txt")).unwrap();
    std::fs::rename(m.join("empty.txt"), m.join("c.txt")).unwrap();
    for name in ["a.txt", "b.txt", "c.txt"] {
        assert_eq!(std::fs::read(m.join(name)).unwrap(), b"", "{name}");
        assert_eq!(server_bytes(&server, &name[..1]).unwrap(), b"still here\n");
    }
    assert!(!m.join("empty.txt").exists());
    assert_eq!(uploads(&server), 0);

    assert!(mount.unmount().success(), "log:\n{}", mount.log());
    assert!(
        mount.log().contains("never given new content"),
        "{}",
        mount.log()
    );
    let fresh = MountGuard::mount(&server, &[]);
    for name in ["a.txt", "b.txt", "c.txt"] {
        assert_eq!(
            std::fs::read(fresh.path().join(name)).unwrap(),
            b"still here\n"
        );
    }
    assert_eq!(
        root_names(&server),
        BTreeSet::from(["a".into(), "b".into(), "c".into()])
    );
}
