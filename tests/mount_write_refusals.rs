//! Files the library refuses, through real mounts: a name whose extension Cloudify does not
//! accept is refused when it is created (so `echo x > a.json` fails, which a refusal at close
//! could not make it do), except under a write-back delay, where temporary names live until
//! they are renamed; content the server refuses for good leaves nothing behind.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use common::files::names_in;
use common::library::{self, uploads};
use common::mount::{DEADLINE, MountGuard};
use common::{ServerOptions, TestServer, wait_until};

/// Upload names (name and extension) of the non-trashed files of the server's root.
fn server_names(server: &TestServer) -> BTreeSet<String> {
    library::root_entries(server)
        .iter()
        .map(|f| {
            let url = f["url"].as_str().unwrap_or_default();
            let ext = url.rsplit_once('.').map_or("", |(_, e)| e);
            format!("{}.{ext}", f["name"].as_str().unwrap_or_default())
        })
        .collect()
}

/// Runs `script` with `sh -c` in `dir`; returns (success, stderr).
fn sh(dir: &Path, script: &str) -> (bool, String) {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_refused_extension_fails_at_create_and_rename() {
    let server = TestServer::default_server();
    let mount = MountGuard::mount(&server, &[]);
    let root = mount.path();

    let (ok, stderr) = sh(root, "echo x > a.json");
    assert!(!ok, "the shell sees the refusal");
    assert!(stderr.contains("Operation not permitted"), "{stderr}");
    assert!(!root.join("a.json").exists());

    std::fs::write(root.join("ok.txt"), b"plain text\n").unwrap();
    let err = std::fs::rename(root.join("ok.txt"), root.join("ok.json")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EPERM));
    assert_eq!(names_in(root), BTreeSet::from(["ok.txt".to_string()]));
    assert_eq!(
        server_names(&server),
        BTreeSet::from(["ok.txt".to_string()])
    );
    assert_eq!(uploads(&server), 1, "nothing refused was sent");

    let log = mount.log();
    let rule = log
        .lines()
        .find(|l| l.contains("a.json"))
        .unwrap_or_else(|| panic!("{log}"));
    assert!(rule.contains(" WARN "), "{rule}");
    assert!(rule.contains("--allowed-extensions"), "{rule}");
    assert!(
        rule.contains("jpg, jpeg, png"),
        "the rule names the list: {rule}"
    );
}

#[test]
fn allowed_extensions_option_widens_and_narrows_the_check() {
    let server = TestServer::default_server();
    let mount = MountGuard::mount(&server, &["-o", "allowed_extensions=csv:pdf"]);
    let (ok, stderr) = sh(mount.path(), "echo x > a.txt");
    assert!(
        !ok && stderr.contains("Operation not permitted"),
        "{stderr}"
    );
    let (ok, stderr) = sh(mount.path(), "printf 'a,b\\n1,2\\n' > t.csv");
    assert!(ok, "{stderr}");
    assert_eq!(server_names(&server), BTreeSet::from(["t.csv".to_string()]));
}

#[test]
fn under_write_back_a_temporary_name_lives_until_it_is_renamed() {
    let server = TestServer::default_server();
    let mount = MountGuard::mount(&server, &["--write-back", "1s"]);
    let root = mount.path();

    // rsync's habit: write `.name.XXXXXX`, then rename it to the final name.
    std::fs::write(root.join(".report.txt.a1B2c3"), b"the report\n").unwrap();
    std::fs::rename(root.join(".report.txt.a1B2c3"), root.join("report.txt")).unwrap();
    wait_until(
        "the upload under the final name",
        DEADLINE * 2,
        || mount.log(),
        || server_names(&server).contains("report.txt"),
    );
    assert_eq!(uploads(&server), 1);

    // A refused name that stays: refused at upload, with the rule in the log.
    std::fs::write(root.join("left.json"), b"{}\n").unwrap();
    wait_until(
        "the refusal at upload",
        DEADLINE * 2,
        || mount.log(),
        || mount.log().contains("left.json") && mount.log().contains("--allowed-extensions"),
    );
    assert_eq!(uploads(&server), 1, "the refused name was not sent");
    assert_eq!(
        server_names(&server),
        BTreeSet::from(["report.txt".to_string()])
    );
}

/// Files (not folders) below `dir`, recursively, by path relative to it.
fn files_under(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(read) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in read {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
                out.insert(rel);
            }
        }
    }
    out
}

fn cp(from: &Path, to: &Path) -> (bool, String) {
    let out = Command::new("cp").arg(from).arg(to).output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_new_file_refused_for_good_vanishes_like_a_failed_copy() {
    let server = TestServer::start(ServerOptions::default().args(["--max-upload", "1Ki"]));
    let mount = MountGuard::mount(&server, &["--allowed-extensions", "any"]);
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("data.json"), b"{\"a\": 1}\n").unwrap();
    std::fs::write(src.path().join("big.txt"), vec![b'x'; 4096]).unwrap();

    let (ok, stderr) = cp(
        &src.path().join("data.json"),
        &mount.path().join("data.json"),
    );
    assert!(
        !ok && stderr.contains("Operation not permitted"),
        "{stderr}"
    );
    let (ok, stderr) = cp(&src.path().join("big.txt"), &mount.path().join("big.txt"));
    assert!(!ok && stderr.contains("File too large"), "{stderr}");

    assert!(
        names_in(mount.path()).is_empty(),
        "{:?}",
        names_in(mount.path())
    );
    assert!(!mount.path().join("big.txt").exists());
    let staging = mount.dir().join("cache/staging");
    assert!(
        files_under(&staging).is_empty(),
        "{:?}",
        files_under(&staging)
    );
    assert!(server_names(&server).is_empty());
    assert!(
        mount.log().contains("removed from the mount"),
        "{}",
        mount.log()
    );
}

#[test]
fn refused_content_kept_for_an_overwrite_or_write_back_is_reported_once() {
    let server = TestServer::start(ServerOptions::default().args(["--max-upload", "1Ki"]));
    server.client().put_file(None, "keep.txt", b"old content\n");
    let cache = tempfile::tempdir().unwrap();
    let cache_arg = format!("--cache-dir={}", cache.path().display());

    // An overwrite refused at close: the old content stays, the new one is kept.
    let mut mount = MountGuard::mount(&server, &[cache_arg.as_str()]);
    let src = tempfile::tempdir().unwrap();
    std::fs::write(src.path().join("big.txt"), vec![b'y'; 4096]).unwrap();
    let (ok, stderr) = cp(&src.path().join("big.txt"), &mount.path().join("keep.txt"));
    assert!(!ok && stderr.contains("File too large"), "{stderr}");
    mount.unmount();

    // A new file under write-back: refused at its upload, visible until the unmount.
    let mut mount = MountGuard::mount(&server, &[cache_arg.as_str(), "--write-back", "1s"]);
    std::fs::write(mount.path().join("later.txt"), vec![b'z'; 4096]).unwrap();
    wait_until(
        "the refused write-back",
        DEADLINE * 2,
        || mount.log(),
        || mount.log().contains("write-back of /later.txt"),
    );
    assert!(mount.path().join("later.txt").exists());
    mount.unmount();
    let log = mount.log();
    assert!(log.contains("not retried"), "{log}");

    let refused = cache.path().join("staging/refused");
    let kept: Vec<String> = files_under(&refused)
        .into_iter()
        .filter(|f| f.ends_with(".data"))
        .collect();
    assert_eq!(kept.len(), 2, "{:?}", files_under(cache.path()));
    let uploads_before = uploads(&server);

    // The next mount does not try again.
    let mut mount = MountGuard::mount(&server, &[cache_arg.as_str()]);
    assert_eq!(
        std::fs::read(mount.path().join("keep.txt")).unwrap(),
        b"old content\n"
    );
    mount.unmount();
    assert_eq!(uploads(&server), uploads_before);
    assert!(!mount.log().contains("earlier mount"), "{}", mount.log());
    assert_eq!(
        server_names(&server),
        BTreeSet::from(["keep.txt".to_string()])
    );
}
