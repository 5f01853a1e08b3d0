//! Desktop patterns on a mount of `cloudify-server`: a file manager's operations through
//! GLib's `gio` (copy, move, remove, trash, save), a thumbnailer's many concurrent `stat`s and
//! reads of the start of every file, and the ways editors save (a temporary file renamed over
//! the original; truncate and rewrite in place).
//!
//! GLib writes a replaced file as `.goutputstream-XXXXXX`, fsyncs it and renames it over the
//! original. Cloudify refuses that name, so on a default mount (upload at close, and at fsync)
//! such a save fails with EPERM and leaves the original as it was; with `--write-back` the
//! temporary file is renamed before its upload is due and the save costs one upload under the
//! final name. sed -i and Python's `tempfile` write `sedXXXXXX` or `tmpXXXXXXXX` without
//! fsync: a new name without an extension is not stored at close, so the rename that follows
//! stores the content once under the final name on a default mount too.

mod common;
mod tools_common;

use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::files::text_of_bytes;
use common::library::uploads;
use common::mount::MountGuard;
use common::{ServerOptions, TestServer};
use tools_common::*;

fn gio() -> Command {
    let mut c = Command::new("gio");
    // Local files only: no GVfs daemon or D-Bus session is needed or wanted.
    c.env("GIO_USE_VFS", "local");
    c
}

/// Paths of every name the server got that looks like a temporary or trash name.
fn junk(server: &TestServer) -> Vec<String> {
    all_names(server)
        .into_iter()
        .filter(|p| {
            let last = p.rsplit('/').next().unwrap_or(p);
            last.starts_with('.') || last.starts_with("sed") || last.contains("Trash")
        })
        .collect()
}

/// The server's content of the live file at `rel`, read through a fresh mount.
fn stored(server: &TestServer, rel: &str) -> Vec<u8> {
    let fresh = MountGuard::mount(server, &[]);
    std::fs::read(fresh.path().join(rel)).unwrap()
}

#[test]
fn gio_copy_move_and_remove_on_a_default_mount() {
    let src = sample_tree();
    let server = TestServer::default_server();
    let mount = MountGuard::mount(&server, &[]);
    let m = mount.path();
    std::fs::create_dir(m.join("Inbox")).unwrap();
    std::fs::create_dir(m.join("Done")).unwrap();

    run_ok(
        &mount,
        gio()
            .arg("copy")
            .arg(src.path().join("top.txt"))
            .arg(src.path().join("Docs/report.pdf"))
            .arg(m.join("Inbox")),
    );
    assert_same_file(&src.path().join("top.txt"), &m.join("Inbox/top.txt"));
    assert_same_file(
        &src.path().join("Docs/report.pdf"),
        &m.join("Inbox/report.pdf"),
    );

    // Within the mount (a rename: uploaded again, old one removed), into it from local disk,
    // and out of it.
    run_ok(
        &mount,
        gio()
            .arg("move")
            .arg(m.join("Inbox/top.txt"))
            .arg(m.join("Done")),
    );
    assert_same_file(&src.path().join("top.txt"), &m.join("Done/top.txt"));
    assert!(!m.join("Inbox/top.txt").exists());
    let (_local, local) = scratch("local");
    std::fs::create_dir(&local).unwrap();
    std::fs::copy(src.path().join("table.csv"), local.join("table.csv")).unwrap();
    run_ok(
        &mount,
        gio()
            .arg("move")
            .arg(local.join("table.csv"))
            .arg(m.join("Done")),
    );
    assert!(!local.join("table.csv").exists());
    assert_same_file(&src.path().join("table.csv"), &m.join("Done/table.csv"));
    run_ok(
        &mount,
        gio()
            .arg("move")
            .arg(m.join("Inbox/report.pdf"))
            .arg(&local),
    );
    assert_same_file(
        &src.path().join("Docs/report.pdf"),
        &local.join("report.pdf"),
    );
    assert!(!m.join("Inbox/report.pdf").exists());

    run_ok(&mount, gio().arg("remove").arg(m.join("Done/table.csv")));
    assert!(!m.join("Done/table.csv").exists());
    assert_eq!(live_files(&server), ["Done/top.txt"]);

    // Replacing an existing file goes through a temporary name the server refuses: the copy
    // fails with EPERM and the original stays.
    let out = output(
        gio()
            .arg("copy")
            .arg(src.path().join("Docs/notes.txt"))
            .arg(m.join("Done/top.txt")),
    );
    assert!(!out.status.success(), "gio copy over a file fails");
    assert!(
        stderr(&out).contains("Operation not permitted"),
        "{}",
        stderr(&out)
    );
    assert_same_file(&src.path().join("top.txt"), &m.join("Done/top.txt"));
    assert_eq!(live_files(&server), ["Done/top.txt"]);
    assert_eq!(junk(&server), Vec::<String>::new());
}

fn assert_same_file(a: &Path, b: &Path) {
    assert!(
        std::fs::read(a).unwrap() == std::fs::read(b).unwrap(),
        "{} and {} differ",
        a.display(),
        b.display()
    );
}

#[test]
fn gio_trash_fails_cleanly_and_creates_no_trash_folder() {
    let server = TestServer::default_server();
    server
        .client()
        .put_file(None, "photo.txt", &text_of_bytes(1, 3000));
    let mount = MountGuard::mount(&server, &[]);
    let before = held(&server);

    // GLib trashes into MOUNT/.Trash-UID; Cloudify folder names cannot hold a dot, so the
    // mkdir fails with EINVAL and gio reports that it has no trash folder.
    let out = output(gio().arg("trash").arg(mount.path().join("photo.txt")));
    assert!(!out.status.success(), "gio trash fails");
    assert!(
        stderr(&out).contains("trash directory"),
        "gio says why: {}",
        stderr(&out)
    );
    assert!(mount.path().join("photo.txt").exists(), "the file stays");
    assert_eq!(held(&server), before, "nothing created or trashed");

    // `gio remove` is the way to delete (by --delete-mode: Cloudify's own trash by default).
    run_ok(
        &mount,
        gio().arg("remove").arg(mount.path().join("photo.txt")),
    );
    let after = held(&server);
    assert!(after.iter().all(|h| h.trashed), "{after:?}");
}

#[test]
fn saves_through_a_temporary_name_on_a_write_back_mount() {
    let server = TestServer::default_server();
    let docs = server.client().mkdir("0", "Docs");
    let docs_id = docs["id"].to_string().trim_matches('"').to_string();
    server
        .client()
        .put_file(Some(&docs_id), "notes.txt", b"alpha beta\ngamma\n");
    server
        .client()
        .put_file(Some(&docs_id), "draft.txt", b"first draft\n");
    let mut mount = MountGuard::mount(&server, &["--write-back", "5s"]);
    let m = mount.path().to_path_buf();
    server.reset_stats();

    // GLib's replace: temporary file, fsync, rename over the original.
    let mut save = gio()
        .arg("save")
        .arg(m.join("Docs/notes.txt"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    save.stdin
        .take()
        .unwrap()
        .write_all(b"saved by gio\n")
        .unwrap();
    let out = save.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "gio save: {}\nlog:\n{}",
        stderr(&out),
        mount.log()
    );
    assert_eq!(
        std::fs::read(m.join("Docs/notes.txt")).unwrap(),
        b"saved by gio\n"
    );

    // sed -i: temporary file `sedXXXXXX` renamed over the original.
    run_ok(
        &mount,
        Command::new("sed")
            .args(["-i", "s/first/second/"])
            .arg(m.join("Docs/draft.txt")),
    );
    assert_eq!(
        std::fs::read(m.join("Docs/draft.txt")).unwrap(),
        b"second draft\n"
    );

    // An editor's own pattern: write `.name.swp`, fsync, rename.
    let tmp = m.join("Docs/.draft.txt.swp");
    let mut f = std::fs::File::create(&tmp).unwrap();
    f.write_all(b"third draft\n").unwrap();
    f.sync_all().unwrap();
    drop(f);
    std::fs::rename(&tmp, m.join("Docs/draft.txt")).unwrap();

    assert!(mount.unmount().success(), "log:\n{}", mount.log());
    assert_eq!(junk(&server), Vec::<String>::new());
    assert_eq!(live_files(&server), ["Docs/draft.txt", "Docs/notes.txt"]);
    assert_eq!(
        uploads(&server),
        2,
        "one upload a saved file: {}",
        server.stats()
    );
    assert_eq!(stored(&server, "Docs/notes.txt"), b"saved by gio\n");
    assert_eq!(stored(&server, "Docs/draft.txt"), b"third draft\n");
}

#[test]
fn gio_save_fails_cleanly_on_a_default_mount() {
    let server = TestServer::default_server();
    server
        .client()
        .put_file(None, "notes.txt", b"alpha beta\ngamma\n");
    let mount = MountGuard::mount(&server, &[]);
    let notes = mount.path().join("notes.txt");

    // `.goutputstream-XXXXXX` is refused at the fsync before the rename.
    let mut save = gio()
        .arg("save")
        .arg(&notes)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    save.stdin.take().unwrap().write_all(b"new\n").unwrap();
    let out = save.wait_with_output().unwrap();
    assert!(!out.status.success(), "gio save fails");
    assert!(
        stderr(&out).contains("Operation not permitted"),
        "{}",
        stderr(&out)
    );

    let kept = std::fs::read(&notes);
    assert!(
        matches!(&kept, Ok(b) if b == b"alpha beta\ngamma\n"),
        "the original stays: {kept:?}; log:\n{}",
        mount.log()
    );
    assert_eq!(live_files(&server), ["notes.txt"]);
    assert_eq!(junk(&server), Vec::<String>::new());
    let names: Vec<String> = std::fs::read_dir(mount.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        ["notes.txt"],
        "the tools removed their temporary files"
    );
}

#[test]
fn sed_i_on_a_default_mount_stores_once_under_the_final_name() {
    let server = TestServer::default_server();
    server
        .client()
        .put_file(None, "notes.txt", b"alpha beta\ngamma\n");
    let mut mount = MountGuard::mount(&server, &[]);
    let notes = mount.path().join("notes.txt");
    server.reset_stats();

    run_ok(
        &mount,
        Command::new("sed")
            .args(["-i", "s/alpha/omega/"])
            .arg(&notes),
    );
    assert_eq!(std::fs::read(&notes).unwrap(), b"omega beta\ngamma\n");
    assert_eq!(uploads(&server), 1, "one upload: {}", server.stats());
    assert_eq!(live_files(&server), ["notes.txt"]);
    assert_eq!(junk(&server), Vec::<String>::new());
    assert!(mount.unmount().success(), "log:\n{}", mount.log());
    assert_eq!(stored(&server, "notes.txt"), b"omega beta\ngamma\n");
    assert_eq!(live_files(&server), ["notes.txt"]);
}

#[test]
fn python_tempfile_then_os_replace_saves_on_a_default_mount() {
    let server = TestServer::default_server();
    server.client().put_file(None, "data.csv", b"a,b\n1,2\n");
    let mut mount = MountGuard::mount(&server, &[]);
    let m = mount.path().to_path_buf();
    server.reset_stats();

    // The usual atomic save of Python programs: NamedTemporaryFile beside the target
    // (tmpXXXXXXXX, no extension), close, os.replace.
    let script = "import os, sys, tempfile\n\
                  d = sys.argv[1]\n\
                  with tempfile.NamedTemporaryFile(dir=d, delete=False) as f:\n\
                  \x20   f.write(b'a,b\\n3,4\\n')\n\
                  os.replace(f.name, os.path.join(d, 'data.csv'))\n";
    run_ok(
        &mount,
        Command::new("python3").arg("-c").arg(script).arg(&m),
    );
    assert_eq!(std::fs::read(m.join("data.csv")).unwrap(), b"a,b\n3,4\n");
    let names: Vec<String> = std::fs::read_dir(&m)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["data.csv"], "no temporary file left");
    assert_eq!(uploads(&server), 1, "one upload: {}", server.stats());
    assert_eq!(all_names(&server), ["data.csv"], "no junk on the server");
    assert!(mount.unmount().success(), "log:\n{}", mount.log());
    assert_eq!(stored(&server, "data.csv"), b"a,b\n3,4\n");
}

/// A new file without an extension that is never renamed is stored at unmount under the
/// name the server gives it by its content.
#[test]
fn a_new_name_without_an_extension_is_stored_at_unmount() {
    let server = TestServer::default_server();
    let mut mount = MountGuard::mount(&server, &[]);
    std::fs::write(mount.path().join("README"), b"plain text\n").unwrap();
    assert_eq!(uploads(&server), 0, "not stored at close");
    assert_eq!(
        std::fs::read(mount.path().join("README")).unwrap(),
        b"plain text\n"
    );
    assert!(mount.unmount().success(), "log:\n{}", mount.log());
    assert!(
        mount.log().contains("stored as README.txt"),
        "{}",
        mount.log()
    );
    assert_eq!(live_files(&server), ["README.txt"]);
    assert_eq!(stored(&server, "README.txt"), b"plain text\n");
}

#[test]
fn truncate_to_empty_then_append_holds_only_the_appended_line() {
    let server = TestServer::default_server();
    server
        .client()
        .put_file(None, "b.txt", &text_of_bytes(2, 8_000));
    let mount = MountGuard::mount(&server, &[]);
    let b = mount.path().join("b.txt");
    run_ok(
        &mount,
        Command::new("sh").arg("-c").arg(format!(
            "truncate -s 0 '{0}' && printf 'appended line\\n' >> '{0}'",
            b.display()
        )),
    );
    assert_eq!(std::fs::read(&b).unwrap(), b"appended line\n");
    assert_eq!(stored(&server, "b.txt"), b"appended line\n");
    assert_eq!(live_files(&server), ["b.txt"]);
}

#[test]
fn truncate_and_rewrite_in_place() {
    let server = TestServer::default_server();
    let c = server.client();
    c.put_file(None, "a.txt", &text_of_bytes(1, 50_000));
    c.put_file(None, "b.txt", &text_of_bytes(2, 8_000));
    c.put_file(None, "c.txt", &text_of_bytes(3, 8_000));
    let mount = MountGuard::mount(&server, &[]);
    let m = mount.path();
    let (_local, local) = scratch("new.txt");
    std::fs::write(&local, text_of_bytes(4, 1_234)).unwrap();

    // cp onto an existing file: open(O_TRUNC), write, close (also vim with backupcopy=yes).
    run_ok(&mount, Command::new("cp").arg(&local).arg(m.join("a.txt")));
    // Open without O_TRUNC, ftruncate to nothing, write the new content on the same
    // descriptor.
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .open(m.join("b.txt"))
        .unwrap();
    f.set_len(0).unwrap();
    f.write_all(b"appended line\n").unwrap();
    drop(f);
    // A write into the middle without truncation (read, modify, write back).
    run_ok(
        &mount,
        Command::new("dd")
            .arg(format!("of={}", m.join("c.txt").display()))
            .args(["bs=1", "seek=100", "conv=notrunc", "status=none"])
            .stdin(std::fs::File::open(&local).unwrap()),
    );
    let mut c_expected = text_of_bytes(3, 8_000);
    c_expected.splice(100..1_334, text_of_bytes(4, 1_234));

    assert_eq!(
        std::fs::read(m.join("a.txt")).unwrap(),
        text_of_bytes(4, 1_234)
    );
    assert_eq!(std::fs::read(m.join("b.txt")).unwrap(), b"appended line\n");
    assert_eq!(std::fs::read(m.join("c.txt")).unwrap(), c_expected);
    assert_eq!(
        live_files(&server),
        ["a.txt", "b.txt", "c.txt"],
        "each name kept, no -1 copies"
    );
    assert_eq!(stored(&server, "a.txt"), text_of_bytes(4, 1_234));
    assert_eq!(stored(&server, "b.txt"), b"appended line\n");
    assert_eq!(stored(&server, "c.txt"), c_expected);
}

/// Files of the thumbnailer test and their size.
const THUMB_FILES: usize = 24;
const THUMB_LEN: usize = 1 << 20;
const HEAD: usize = 64 * 1024;

#[test]
fn thumbnailer_reads_only_the_start_of_each_file() {
    let src = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for i in 0..THUMB_FILES {
        let rel = format!("Photos/Set {}/img{i:02}.zip", i % 3);
        let data = with_magic(b"PK\x03\x04", 100 + i as u64, THUMB_LEN);
        files.push((rel, data));
    }
    let refs: Vec<(&str, Vec<u8>)> = files.iter().map(|(r, d)| (r.as_str(), d.clone())).collect();
    write_files(src.path(), &refs);
    let server = TestServer::start(
        ServerOptions::default().args(["--import", src.path().to_str().unwrap()]),
    );
    let mount = MountGuard::mount(&server, &[]);
    let root: PathBuf = mount.path().to_path_buf();
    server.reset_stats();

    // Eight workers, each: stat, open, read the first 64 KiB, close.
    let next = std::sync::atomic::AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let Some((rel, data)) = files.get(i) else {
                        break;
                    };
                    let path = root.join(rel);
                    let meta = std::fs::metadata(&path).unwrap();
                    assert_eq!(meta.len(), THUMB_LEN as u64, "{rel}");
                    let mut head = vec![0u8; HEAD];
                    let f = std::fs::File::open(&path).unwrap();
                    let mut got = 0;
                    while got < HEAD {
                        let n = f.read_at(&mut head[got..], got as u64).unwrap();
                        assert!(n > 0, "{rel}: early end at {got}");
                        got += n;
                    }
                    assert!(head == data[..HEAD], "{rel}: first 64 KiB differ");
                }
            });
        }
    });

    // And `head -c`, as a shell script would do it.
    let out = run_ok(
        &mount,
        Command::new("head")
            .args(["-c", &HEAD.to_string()])
            .arg(root.join(&files[0].0)),
    );
    assert!(out.stdout == files[0].1[..HEAD]);

    let stats = server.stats();
    let sent = stats["storage"]["bytes_sent"].as_u64().unwrap();
    let total = (THUMB_FILES * THUMB_LEN) as u64;
    eprintln!("thumbnailer: {sent} of {total} bytes fetched");
    assert!(
        sent <= total / 4,
        "fetched {sent} bytes of {total} for {THUMB_FILES} heads of {HEAD}: {stats}"
    );
}
