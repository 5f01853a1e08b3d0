//! The mount(8) helper `scripts/mount.cloudify-fs`, called exactly as mount(8) calls it for an
//! /etc/fstab line of type `cloudify-fs`: `mount.cloudify-fs SOURCE DIR -o OPTIONS`. It must
//! return only once the mount is live (mount(8) and systemd take its exit as the verdict),
//! honour fstab-style options (the key from `api_key_file=`, generic ones such as `_netdev`
//! ignored), and fail with a status and a message when the mount cannot be made.
//!
//! The mount runs as a daemon, so the guard finds its process through /proc to make sure
//! nothing is left behind. One test goes through mount(8) itself (`mount -t cloudify-fs`),
//! in a private mount namespace where the helper is bind-mounted over /sbin, so the system's
//! own /sbin is never touched.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::mount::{DEADLINE, fs_bin, is_fuse_mount};
use common::{ServerOptions, TEST_KEY, TestServer};

const HELLO: &str = "hello from an fstab mount\n";

fn helper() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/mount.cloudify-fs")
}

/// A server whose library holds `hello.txt` and `Docs/notes.txt`.
fn server_with_library(tmp: &Path) -> TestServer {
    let tree = tmp.join("tree");
    std::fs::create_dir_all(tree.join("Docs")).unwrap();
    std::fs::write(tree.join("hello.txt"), HELLO).unwrap();
    std::fs::write(tree.join("Docs/notes.txt"), "notes\n").unwrap();
    let options = ServerOptions::default().args(["--import", tree.to_str().unwrap()]);
    TestServer::start(options)
}

fn write_key(path: &Path, key: &str) {
    std::fs::write(path, format!("{key}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// A mountpoint used by the helper; dropping it unmounts and ends the daemon.
struct HelperMount {
    mountpoint: PathBuf,
}

impl HelperMount {
    fn new(tmp: &Path) -> HelperMount {
        let mountpoint = tmp.join("mnt");
        std::fs::create_dir(&mountpoint).unwrap();
        HelperMount {
            mountpoint: std::fs::canonicalize(mountpoint).unwrap(),
        }
    }

    /// Runs the helper the way mount(8) does: `mount.cloudify-fs SOURCE DIR -o OPTIONS`.
    fn run_helper(&self, source: &str, options: &str) -> Output {
        let mut child = Command::new(helper())
            .arg(source)
            .arg(&self.mountpoint)
            .arg("-o")
            .arg(options)
            .env("CLOUDIFY_FS", fs_bin())
            .env_remove("CLOUDIFY_API_KEY")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run mount.cloudify-fs");
        let start = Instant::now();
        while child.try_wait().expect("wait for the helper").is_none() {
            if start.elapsed() > DEADLINE {
                let _ = child.kill();
                panic!("mount.cloudify-fs did not return within {DEADLINE:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        child.wait_with_output().expect("helper output")
    }

    fn is_mounted(&self) -> bool {
        is_fuse_mount(&self.mountpoint)
    }

    /// Live cloudify-fs processes serving this mountpoint (zombies excluded).
    fn daemons(&self) -> Vec<libc::pid_t> {
        let wanted = self.mountpoint.as_os_str().as_encoded_bytes();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<libc::pid_t>().ok())
            .filter(|pid| {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                let running = stat
                    .rsplit(") ")
                    .next()
                    .is_some_and(|s| !s.starts_with('Z'));
                running && cmdline.split(|b| *b == 0).any(|arg| arg == wanted)
            })
            .collect()
    }

    fn unmount(&self) {
        let status = Command::new("fusermount3")
            .arg("-u")
            .arg(&self.mountpoint)
            .status()
            .expect("run fusermount3");
        assert!(status.success(), "fusermount3 -u failed");
    }

    /// Waits until no process serves the mountpoint; false after the deadline.
    fn wait_daemon_gone(&self) -> bool {
        let start = Instant::now();
        while !self.daemons().is_empty() {
            if start.elapsed() > DEADLINE {
                return false;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        true
    }
}

impl Drop for HelperMount {
    fn drop(&mut self) {
        for flag in ["-u", "-uz"] {
            if self.is_mounted() {
                let _ = Command::new("fusermount3")
                    .arg(flag)
                    .arg(&self.mountpoint)
                    .stderr(Stdio::null())
                    .status();
            }
        }
        if !self.wait_daemon_gone() {
            for pid in self.daemons() {
                // SAFETY: kill takes plain integers; the pid serves our own mountpoint.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

#[test]
fn helper_mounts_an_fstab_line_and_returns_when_ready() {
    let tmp = tempfile::tempdir().unwrap();
    let server = server_with_library(tmp.path());
    let key_file = tmp.path().join("cloudify.key");
    write_key(&key_file, TEST_KEY);
    let mount = HelperMount::new(tmp.path());
    let options = format!(
        "rw,_netdev,nofail,x-systemd.automount,api_key_file={},cache_dir={},dir_cache_time=5s",
        key_file.display(),
        tmp.path().join("cache").display()
    );

    let output = mount.run_helper(&server.origin, &options);

    assert!(
        output.status.success(),
        "helper failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // No waiting: mount(8) and systemd treat the helper's exit as "mounted".
    assert!(
        mount.is_mounted(),
        "the helper returned before the mount was live"
    );
    let mut names: Vec<String> = std::fs::read_dir(&mount.mountpoint)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["Docs", "hello.txt"]);
    let hello = std::fs::read_to_string(mount.mountpoint.join("hello.txt")).unwrap();
    assert_eq!(hello, HELLO);
    let notes = std::fs::read_to_string(mount.mountpoint.join("Docs/notes.txt")).unwrap();
    assert_eq!(notes, "notes\n");
    assert!(
        !mount.daemons().is_empty(),
        "no background process serves the mount"
    );

    mount.unmount();
    assert!(
        mount.wait_daemon_gone(),
        "the background process kept running after the unmount"
    );
}

#[test]
fn helper_passes_the_api_base_url_and_read_only_option() {
    let tmp = tempfile::tempdir().unwrap();
    let server = server_with_library(tmp.path());
    let key_file = tmp.path().join("cloudify.key");
    write_key(&key_file, TEST_KEY);
    let mount = HelperMount::new(tmp.path());
    let options = format!(
        "ro,api_key_file={},cache_dir={}",
        key_file.display(),
        tmp.path().join("cache").display()
    );

    let output = mount.run_helper(&server.api, &options);

    assert!(
        output.status.success(),
        "helper failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(mount.mountpoint.join("hello.txt").is_file());
    let error = std::fs::write(mount.mountpoint.join("new.txt"), "x").unwrap_err();
    assert_eq!(error.raw_os_error(), Some(libc::EROFS), "{error}");
}

#[test]
fn helper_fails_with_a_message_when_the_key_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let server = server_with_library(tmp.path());
    let key_file = tmp.path().join("wrong.key");
    write_key(&key_file, "NOT-THE-KEY-0000");
    let mount = HelperMount::new(tmp.path());
    let options = format!(
        "api_key_file={},cache_dir={}",
        key_file.display(),
        tmp.path().join("cache").display()
    );

    let output = mount.run_helper(&server.origin, &options);

    assert!(
        !output.status.success(),
        "a refused key must fail the mount"
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("refused"), "unclear message: {stderr}");
    assert!(
        !stderr.contains("NOT-THE-KEY"),
        "the key was printed: {stderr}"
    );
    assert!(!mount.is_mounted());
    assert!(mount.wait_daemon_gone(), "a process stayed behind");
}

#[test]
fn helper_fails_without_a_source_and_mountpoint() {
    let output = Command::new(helper())
        .arg("https://media.example.com")
        .env("CLOUDIFY_FS", fs_bin())
        .output()
        .expect("run mount.cloudify-fs");

    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("usage"), "no usage line: {stderr}");
}

/// Whether this process may create a mount namespace (root, with `unshare` installed).
fn can_unshare() -> bool {
    // SAFETY: geteuid cannot fail and touches no memory.
    let root = unsafe { libc::geteuid() } == 0;
    root && Command::new("unshare")
        .args(["-m", "true"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn mount_t_cloudify_fs_runs_the_helper() {
    if !can_unshare() {
        eprintln!("skipped: needs root and unshare(1) for a private mount namespace");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let server = server_with_library(tmp.path());
    let key_file = tmp.path().join("cloudify.key");
    write_key(&key_file, TEST_KEY);
    let mount = HelperMount::new(tmp.path());
    let sbin = tmp.path().join("sbin");
    std::fs::create_dir(&sbin).unwrap();
    std::os::unix::fs::symlink(helper(), sbin.join("mount.cloudify-fs")).unwrap();
    let options = format!(
        "_netdev,api_key_file={},cache_dir={}",
        key_file.display(),
        tmp.path().join("cache").display()
    );
    // Everything happens inside the namespace; the trap unmounts there even when a step
    // fails, which also ends the daemon.
    let script = r#"
        set -eu
        mount --bind "$SBIN" /sbin
        trap 'umount "$MNT" 2>/dev/null || fusermount3 -uz "$MNT" 2>/dev/null || true' EXIT
        mount -t cloudify-fs "$URL" "$MNT" -o "$OPTIONS"
        ls "$MNT"
        cat "$MNT/hello.txt"
        umount "$MNT"
        trap - EXIT
        echo unmounted
    "#;

    let output = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", script])
        .env("SBIN", &sbin)
        .env("MNT", &mount.mountpoint)
        .env("URL", &server.origin)
        .env("OPTIONS", &options)
        .env("CLOUDIFY_FS", fs_bin())
        .env_remove("CLOUDIFY_API_KEY")
        .stdin(Stdio::null())
        .output()
        .expect("run unshare");

    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "mount -t cloudify-fs failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout, format!("Docs\nhello.txt\n{HELLO}unmounted\n"));
    assert!(mount.wait_daemon_gone(), "the daemon outlived umount");
}
