//! Security of a real mount: the API key never shows in the log (at trace level), in `ps`,
//! in the cache folder or in error messages; staged content is private; other users cannot
//! enter a mount made without `--allow-other`; file URLs from the server cannot make the
//! mount read local files or send the key elsewhere; the server listens on loopback only
//! unless told otherwise.

mod common;
#[path = "common/reliability.rs"]
mod reliability;

use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::mount::{MountCommand, MountGuard};
use common::{TEST_KEY, TestServer, server_bin};
use reliability::{Reply, Scripted, errno, within, write_file};
use serde_json::json;

/// Whether `haystack` holds the key in any letter case (keys match case-insensitively).
fn holds_key(haystack: &[u8]) -> bool {
    let key = TEST_KEY.to_ascii_lowercase();
    haystack
        .to_ascii_lowercase()
        .windows(key.len())
        .any(|w| w == key.as_bytes())
}

/// Every regular file below `dir` whose bytes hold the key.
fn files_holding_key(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            found.extend(files_holding_key(&path));
        } else if meta.is_file() && std::fs::read(&path).is_ok_and(|b| holds_key(&b)) {
            found.push(path.display().to_string());
        }
    }
    found
}

fn run(cmd: &mut Command) -> std::process::Output {
    cmd.output().expect("run command")
}

#[test]
fn the_key_is_never_in_the_trace_log_ps_the_cache_or_error_messages() {
    let server = TestServer::default_server();
    let mut mount = MountCommand::new(&server.origin)
        .args(&["-vv", "--write-back", "0s", "--dir-cache-time", "1s"])
        .env("RUST_LOG", "trace")
        .mount();
    let root = mount.path().to_path_buf();

    // A bit of everything: folders, uploads, reads, renames, deletes, listings.
    std::fs::create_dir(root.join("Folder")).unwrap();
    write_file(&root.join("Folder/a.txt"), b"alpha\n").unwrap();
    write_file(&root.join("b.txt"), b"bravo\n").unwrap();
    assert_eq!(
        std::fs::read(root.join("Folder/a.txt")).unwrap(),
        b"alpha\n"
    );
    std::fs::rename(root.join("b.txt"), root.join("c.txt")).unwrap();
    std::fs::remove_file(root.join("c.txt")).unwrap();
    let _ = std::fs::read_dir(&root).unwrap().count();

    // The processes as other users see them: arguments, and (for root) the environment.
    // Test servers take their key on the command line; every other process must not show it.
    let ps = run(Command::new("ps").args(["-eww", "-o", "pid,args"]));
    let leaks: Vec<String> = String::from_utf8_lossy(&ps.stdout)
        .lines()
        .filter(|l| !l.contains("cloudify-server") && holds_key(l.as_bytes()))
        .map(str::to_string)
        .collect();
    assert!(leaks.is_empty(), "the key is in ps output: {leaks:?}");
    let pid = mount.pid().to_string();
    let ps_env = run(Command::new("ps").args(["eww", "-p", &pid]));
    assert!(
        !holds_key(&ps_env.stdout),
        "the key is in the mount's environment as ps shows it"
    );

    // Errors: the key revoked, then the same kinds of work fail; what the tools print and
    // what the mount logs must not quote the key.
    server.control(json!({"revoke_key": TEST_KEY}));
    std::thread::sleep(Duration::from_millis(1100)); // past the listing cache
    let ls = run(Command::new("ls").arg(root.join("Folder")));
    let cp = run(Command::new("cp")
        .arg("/etc/hostname")
        .arg(root.join("d.txt")));
    let mkdir = run(Command::new("mkdir").arg(root.join("Refused")));
    for (what, out) in [("ls", &ls), ("cp", &cp), ("mkdir", &mkdir)] {
        assert!(!out.status.success(), "{what} succeeded with a revoked key");
        assert!(!holds_key(&out.stderr), "{what}'s error holds the key");
    }

    mount.unmount();
    let log = mount.log();
    assert!(log.contains("TRACE"), "not a trace log:\n{log}");
    assert!(log.contains("key refused"), "{log}");
    assert!(!holds_key(log.as_bytes()), "the key is in the trace log");
    let in_cache = files_holding_key(&mount.dir().join("cache"));
    assert!(in_cache.is_empty(), "the key is in {in_cache:?}");
}

#[test]
fn staged_files_are_0600_in_a_0700_folder() {
    let server = TestServer::default_server();
    let mut mount = MountGuard::mount(&server, &["--write-back", "60s"]);
    write_file(&mount.path().join("staged.txt"), b"waits for its upload\n").unwrap();
    let staging = mount.dir().join("cache/staging");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&staging), 0o700, "{}", staging.display());
    let files: Vec<_> = std::fs::read_dir(&staging)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert!(!files.is_empty(), "nothing staged");
    for f in &files {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
    mount.unmount();
}

/// `ls MNT` as user `nobody`; `None` when the machine cannot run a command as another user.
fn ls_as_nobody(mount: &MountGuard) -> Option<std::process::Output> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: switching to `nobody` needs root");
        return None;
    }
    // The temporary folders are 0700; open the way to the mountpoint so only the mount's
    // own rule decides.
    std::fs::set_permissions(mount.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new("runuser")
        .args(["-u", "nobody", "--", "ls"])
        .arg(mount.path())
        .output()
        .ok()?;
    Some(out)
}

#[test]
fn another_user_cannot_enter_a_mount_without_allow_other() {
    let server = TestServer::default_server();
    server
        .client()
        .put_file(None, "secret.txt", b"for the owner\n");
    let private = MountGuard::mount(&server, &[]);
    let Some(out) = ls_as_nobody(&private) else {
        return;
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "nobody listed the mount");
    assert!(stderr.contains("Permission denied"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("secret"));

    // The same command works with --allow-other, so the refusal above is the mount's.
    let shared = MountGuard::mount(&server, &["--allow-other"]);
    let out = ls_as_nobody(&shared).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "secret.txt");
}

fn file_json(id: &str, name: &str, full_url: Option<&str>, url: &str) -> serde_json::Value {
    json!({"id": id, "name": name, "basename": format!("{name}.txt"), "url": url,
           "full_url": full_url, "indirect_url": null, "size": "1,00 KB",
           "mime_type": "text/plain", "folder_id": "0",
           "created_at": "2026-02-04 15:26:17", "updated_at": "2026-02-04 15:26:17"})
}

#[test]
fn file_urls_from_the_server_cannot_read_local_files_or_carry_the_key_away() {
    // "Another host": a second origin that serves content and records what it was sent.
    let elsewhere = Scripted::start(|_| Reply::raw(200, "text/plain", b"content from elsewhere\n"));
    let elsewhere_url = format!("{}/x.txt", elsewhere.origin);
    let (to_file, to_elsewhere) = ("file:///etc/passwd".to_string(), elsewhere_url.clone());
    let api = Scripted::start(move |seen| {
        let path = seen.path();
        if path == "/redirect-to-file" {
            return Reply::raw(302, "text/plain", b"").header("Location", &to_file);
        }
        if path == "/redirect-elsewhere" {
            return Reply::raw(302, "text/plain", b"").header("Location", &to_elsewhere);
        }
        if !path.starts_with("/api/v1/media/folders") {
            return Reply::raw(404, "text/plain", b"not here");
        }
        let me = |p: &str| format!("http://{}{p}", seen.header("host").unwrap_or(""));
        Reply::ok(json!({"folders": [], "files": [
            file_json("1", "file-scheme", Some("file:///etc/passwd"), "/etc/passwd"),
            file_json("2", "absolute-path", Some("/etc/passwd"), "/etc/passwd"),
            file_json("3", "traversal", None, "../../../../../../etc/passwd"),
            file_json("4", "elsewhere", Some(&elsewhere_url), "x.txt"),
            file_json("5", "redirect-to-file", Some(&me("/redirect-to-file")), "r.txt"),
            file_json("6", "redirect-elsewhere", Some(&me("/redirect-elsewhere")), "r.txt"),
        ]}))
    });
    let mount = MountCommand::new(&api.origin)
        .args(&["--timeout", "5s", "--retries", "1"])
        .mount();
    let root = mount.path().to_path_buf();
    let passwd = std::fs::read("/etc/passwd").unwrap();

    let read = |name: &str| {
        let path = root.join(name);
        within(Duration::from_secs(120), move || std::fs::read(path))
            .unwrap_or_else(|| panic!("reading {name} hung"))
            .0
    };
    for name in [
        "file-scheme.txt",
        "absolute-path.txt",
        "traversal.txt",
        "redirect-to-file.txt",
    ] {
        match read(name) {
            Ok(bytes) => assert!(
                bytes != passwd && !bytes.starts_with(b"root:"),
                "{name}: the mount read a local file"
            ),
            Err(e) => assert!(
                [libc::EIO, libc::ENOENT].contains(&errno(&e)),
                "{name}: {e}"
            ),
        }
    }
    for name in ["elsewhere.txt", "redirect-elsewhere.txt"] {
        let got = read(name).unwrap_or_else(|e| panic!("{name}: {e}; log:\n{}", mount.log()));
        assert_eq!(got, b"content from elsewhere\n", "{name}");
    }

    let elsewhere_seen = elsewhere.seen();
    assert!(!elsewhere_seen.is_empty(), "the other host was never asked");
    for s in &elsewhere_seen {
        assert!(
            s.header("x-api-key").is_none() && !holds_key(format!("{s:?}").as_bytes()),
            "the key went to another host: {} {}",
            s.method,
            s.target
        );
    }
    // On the API's own origin the key goes to the API only, not to content paths.
    for s in api.seen() {
        if !s.path().starts_with("/api/") {
            assert!(
                s.header("x-api-key").is_none(),
                "the key went with a content request: {} {}",
                s.method,
                s.target
            );
        }
    }
    let log = mount.log();
    assert!(!log.contains("panicked"), "{log}");
    assert!(!holds_key(log.as_bytes()), "the key is in the log");
}

#[test]
fn the_server_listens_on_loopback_by_default() {
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(server_bin())
        .arg("--data")
        .arg(data.path())
        .arg("--key")
        .arg(TEST_KEY)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start cloudify-server");
    let stdout = child.stdout.take().unwrap();
    let first = within(Duration::from_secs(60), move || {
        BufReader::new(stdout).lines().next()
    })
    .map(|(line, _)| line);
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    match first {
        Some(Some(Ok(line))) => assert_eq!(line, "listening on http://127.0.0.1:8080"),
        // Another program holds port 8080: the error still names the address it tried.
        _ => assert!(stderr.contains("127.0.0.1:8080"), "{stderr}"),
    }
}
