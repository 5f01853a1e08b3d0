//! Writes through real mounts of `cloudify-fs` against `cloudify-server` (both flavours):
//! copies come back byte-identical through a fresh mount, a failed overwrite keeps the old
//! file, what the server refuses reaches the writer with the errno programs expect, and a
//! reader sees at once what a write-only handle (past the page cache) writes.

mod common;

use std::collections::BTreeMap;
use std::io::Write;
use std::os::fd::IntoRawFd;
use std::path::Path;
use std::process::Command;

use common::files::text;
use common::mount::MountGuard;
use common::{ServerOptions, TestServer};

fn zip(len: usize) -> Vec<u8> {
    let mut z = b"PK\x03\x04".to_vec();
    z.extend(text(99, len - 4));
    z
}

fn server(flavor: &str) -> TestServer {
    TestServer::start(ServerOptions::default().args(["--flavor", flavor]))
}

/// Relative path -> bytes of every file below `root`.
fn files_below(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn copied_tree_comes_back_identical(flavor: &str) {
    let src = tempfile::tempdir().unwrap();
    let put = |rel: &str, data: Vec<u8>| {
        let p = src.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    };
    put("one.txt", b"x".to_vec());
    put("Docs/notes.txt", text(1, 70_000));
    put("Docs/Deep Folder/table.csv", b"a,b\n1,2\n".to_vec());
    put("Big/large.zip", zip(24 << 20));
    let server = server(flavor);
    let mut mount = MountGuard::mount(&server, &[]);
    let status = Command::new("cp")
        .arg("-r")
        .arg(format!("{}/.", src.path().display()))
        .arg(mount.path())
        .status()
        .unwrap();
    assert!(status.success(), "cp -r; log:\n{}", mount.log());
    mount.unmount();

    let fresh = MountGuard::mount(&server, &[]);
    assert_eq!(files_below(fresh.path()), files_below(src.path()));
}

#[test]
fn copied_tree_comes_back_identical_2026() {
    copied_tree_comes_back_identical("2026");
}

#[test]
fn copied_tree_comes_back_identical_128() {
    copied_tree_comes_back_identical("1.2.8");
}

fn failed_overwrite_keeps_the_old_file(flavor: &str) {
    let server = server(flavor);
    server.client().put_file(None, "keep.txt", b"old content\n");
    let mount = MountGuard::mount(&server, &[]);
    let path = mount.path().join("keep.txt");
    assert_eq!(std::fs::read(&path).unwrap(), b"old content\n");

    server.control(serde_json::json!({"fail_next_uploads": 1}));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(&path)
        .unwrap();
    f.write_all(b"new content\n").unwrap();
    let fd = f.into_raw_fd();
    // SAFETY: `fd` is an open descriptor this test owns and closes once.
    let rc = unsafe { libc::close(fd) };
    let err = std::io::Error::last_os_error();
    assert_eq!(rc, -1, "close reports the failed upload");
    assert_eq!(err.raw_os_error(), Some(libc::EIO), "{err}");

    let (_, body) = server.client().get("/files");
    let files = body["data"].as_array().cloned().unwrap_or_default();
    let names: Vec<&str> = files.iter().filter_map(|f| f["name"].as_str()).collect();
    assert_eq!(
        names,
        ["keep"],
        "the old file is back under its name: {body}"
    );
    let url = files[0]["full_url"].as_str().unwrap();
    let old = reqwest::blocking::get(url).unwrap().bytes().unwrap();
    assert_eq!(&old[..], b"old content\n");
    assert!(
        mount.log().contains("staged at"),
        "the log says where the new content is"
    );
}

#[test]
fn failed_overwrite_keeps_the_old_file_2026() {
    failed_overwrite_keeps_the_old_file("2026");
}

#[test]
fn failed_overwrite_keeps_the_old_file_128() {
    failed_overwrite_keeps_the_old_file("1.2.8");
}

#[test]
fn refusals_reach_the_writer_with_the_right_errno() {
    let server = server("2026");
    let mount = MountGuard::mount(&server, &[]);
    let root = mount.path();

    let out = Command::new("cp")
        .arg("/proc/self/exe")
        .arg(root.join("tool.exe"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("Operation not permitted"), "{stderr}");

    let err = std::fs::create_dir(root.join("v1.2")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
    assert!(mount.log().contains("rule"), "{}", mount.log());

    std::fs::create_dir(root.join("Full")).unwrap();
    std::fs::write(root.join("Full/a.txt"), b"content\n").unwrap();
    let err = std::fs::remove_dir(root.join("Full")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOTEMPTY));

    let mv = Command::new("mv")
        .arg(root.join("Full"))
        .arg(root.join("Moved"))
        .status()
        .unwrap();
    assert!(mv.success(), "mv falls back to copy and delete on EXDEV");
    assert_eq!(
        std::fs::read(root.join("Moved/a.txt")).unwrap(),
        b"content\n"
    );
    assert!(!root.join("Full").exists());

    let touch = Command::new("touch")
        .arg(root.join("empty.txt"))
        .status()
        .unwrap();
    assert!(touch.success());
    assert_eq!(std::fs::metadata(root.join("empty.txt")).unwrap().len(), 0);
}

/// `tail -f` of a log appended to with `>>`: the reader sees every line, and every line is
/// stored. (A reader that read on in the version it opened got a short read where that
/// version ended; the kernel took it as the file's end and placed the next append there,
/// over the lines before.)
#[test]
fn appends_under_an_open_reader_are_read_and_all_stored() {
    use std::io::Read;

    let server = server("2026");
    let mount = MountGuard::mount(&server, &[]);
    let path = mount.path().join("app.txt");
    std::fs::write(&path, "line 0\n").unwrap();
    let mut reader = std::fs::File::open(&path).unwrap();
    let mut seen = Vec::new();
    reader.read_to_end(&mut seen).unwrap();
    let mut expected = b"line 0\n".to_vec();
    for i in 1..=4 {
        let line = format!("line {i}\n");
        let mut appender = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        appender.write_all(line.as_bytes()).unwrap();
        drop(appender);
        expected.extend_from_slice(line.as_bytes());
        reader.read_to_end(&mut seen).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&seen),
            String::from_utf8_lossy(&expected),
            "what the open reader read after append {i}; log:\n{}",
            mount.log()
        );
    }
    drop(reader);
    drop(mount);
    let fresh = MountGuard::mount(&server, &[]);
    assert_eq!(
        std::fs::read(fresh.path().join("app.txt")).unwrap(),
        expected
    );
}

/// A handle opened for writing only writes past the page cache; a reader of the same file
/// still sees every change at once, the kernel dropping the pages it cached that a write
/// changed.
#[test]
fn a_reader_sees_what_a_write_only_handle_writes() {
    use std::os::unix::fs::FileExt;

    let server = server("2026");
    let mount = MountGuard::mount(&server, &[]);
    let path = mount.path().join("log.txt");
    let writer = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .unwrap();
    writer.write_all_at(&[b'a'; 100], 0).unwrap();
    let reader = std::fs::File::open(&path).unwrap();
    let mut buf = [0; 4096];
    assert_eq!(reader.read_at(&mut buf, 0).unwrap(), 100);

    // Into the page the reader has cached, past the size it saw.
    writer.write_all_at(&[b'b'; 100], 100).unwrap();
    let n = reader.read_at(&mut buf, 0).unwrap();
    assert_eq!(&buf[..n], [[b'a'; 100], [b'b'; 100]].concat());
    writer.write_all_at(b"cc", 10).unwrap();
    reader.read_at(&mut buf, 0).unwrap();
    assert_eq!(&buf[8..14], b"aaccaa");
    drop(writer);
    drop(reader);
    assert_eq!(std::fs::read(&path).unwrap().len(), 200);
}
