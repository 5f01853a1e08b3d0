//! Files the library refuses, through real mounts: a name whose extension Cloudify does not
//! accept is refused when it is created (so `echo x > a.json` fails, which a refusal at close
//! could not make it do), except under a write-back delay, where temporary names live until
//! they are renamed; content the server refuses for good leaves nothing behind.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::TestServer;
use common::mount::{DEADLINE, MountGuard};

/// Polls `cond` until it holds; panics with `what` after a generous deadline.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < DEADLINE * 2,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Upload names (name and extension) of the non-trashed files of the server's root.
fn server_names(server: &TestServer) -> BTreeSet<String> {
    let (_, body) = server.client().get("/files");
    body["data"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|f| {
            let url = f["url"].as_str().unwrap_or_default();
            let ext = url.rsplit_once('.').map_or("", |(_, e)| e);
            format!("{}.{ext}", f["name"].as_str().unwrap_or_default())
        })
        .collect()
}

fn uploads(server: &TestServer) -> u64 {
    server.stats()["api"]["upload"].as_u64().unwrap_or(0)
}

fn names_in(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
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
    wait_until("the upload under the final name", || {
        server_names(&server).contains("report.txt")
    });
    assert_eq!(uploads(&server), 1);

    // A refused name that stays: refused at upload, with the rule in the log.
    std::fs::write(root.join("left.json"), b"{}\n").unwrap();
    wait_until("the refusal at upload", || {
        mount.log().contains("left.json") && mount.log().contains("--allowed-extensions")
    });
    assert_eq!(uploads(&server), 1, "the refused name was not sent");
    assert_eq!(
        server_names(&server),
        BTreeSet::from(["report.txt".to_string()])
    );
}
