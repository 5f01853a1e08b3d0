//! The life of a `cloudify-fs mount` process around a real FUSE mount: it logs when it is
//! ready, ends cleanly on SIGTERM, SIGINT or an outside `fusermount3 -u`, returns at once
//! with `--daemon`, and never shows the key.

mod common;

use std::time::{Duration, Instant};

use common::mount::{DEADLINE, MountCommand, MountGuard, is_fuse_mount};
use common::{TEST_KEY, TestServer};

/// Polls `condition` until it holds; panics with `what` after the deadline.
fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigterm_unmounts_and_exits_zero() {
    let server = TestServer::default_server();
    let mut mount = MountGuard::mount(&server, &[]);
    std::fs::read_dir(mount.path()).expect("list the mount root");
    let expected = format!("mounted {} at {}", server.origin, mount.path().display());
    assert!(mount.log().contains(&expected), "{}", mount.log());

    mount.signal(libc::SIGTERM);
    let status = mount.wait_exit();
    assert!(status.success(), "{status}; log:\n{}", mount.log());
    assert!(!mount.is_mounted());
    assert!(mount.log().contains("unmounted"), "{}", mount.log());
}

#[test]
fn sigint_unmounts_and_exits_zero() {
    let server = TestServer::default_server();
    let mut mount = MountGuard::mount(&server, &[]);
    mount.signal(libc::SIGINT);
    assert!(mount.wait_exit().success(), "{}", mount.log());
    assert!(!mount.is_mounted());
}

#[test]
fn outside_unmount_ends_the_process_with_status_zero() {
    let server = TestServer::default_server();
    let mut mount = MountGuard::mount(&server, &[]);
    let status = mount.unmount();
    assert!(status.success(), "{status}; log:\n{}", mount.log());
}

#[test]
fn busy_mount_stays_on_first_signal_and_detaches_on_the_second() {
    let server = TestServer::default_server();
    let mut mount = MountGuard::mount(&server, &[]);
    let busy = std::fs::File::open(mount.path()).expect("open the mount root");

    mount.signal(libc::SIGTERM);
    wait_until("the busy warning", || {
        mount.log().contains("cannot unmount")
    });
    assert!(
        mount.is_mounted(),
        "a busy mount must stay: {}",
        mount.log()
    );

    mount.signal(libc::SIGTERM);
    wait_until("the lazy detach", || !mount.is_mounted());
    drop(busy);
    let status = mount.wait_exit();
    assert!(status.success(), "{status}; log:\n{}", mount.log());
}

#[test]
fn daemon_returns_once_the_mount_is_live() {
    let server = TestServer::default_server();
    let dir = tempfile::tempdir().unwrap();
    let log_file = dir.path().join("daemon.log");
    let log_arg = format!("--log-file={}", log_file.display());
    let mut mount = MountCommand::new(&server.origin)
        .args(&["--daemon", &log_arg])
        .start();

    let status = mount.wait_exit();
    assert!(status.success(), "{status}; output:\n{}", mount.log());
    // The guarantee of --daemon: when it returns 0, the mount is there.
    assert!(
        is_fuse_mount(mount.path()),
        "not mounted after --daemon returned"
    );
    std::fs::read_dir(mount.path()).expect("list the mount root");

    let daemon_log = || std::fs::read_to_string(&log_file).unwrap_or_default();
    assert!(daemon_log().contains("mounted"), "{}", daemon_log());
    let output = std::process::Command::new("fusermount3")
        .arg("-u")
        .arg(mount.path())
        .output()
        .expect("fusermount3");
    assert!(output.status.success());
    wait_until("the daemon to log its unmount", || {
        daemon_log().contains("unmounted")
    });
}

#[test]
fn key_never_appears_in_the_log_of_a_working_mount() {
    let server = TestServer::default_server();
    let mut mount = MountCommand::new(&server.origin)
        .args(&["-vv"])
        .env("RUST_LOG", "trace")
        .mount();
    for entry in std::fs::read_dir(mount.path()).expect("list the mount root") {
        let _ = entry.map(|e| e.metadata());
    }
    assert!(mount.unmount().success());
    let log = mount.log();
    assert!(log.contains("mounted"), "{log}");
    assert!(
        !log.to_uppercase().contains(TEST_KEY),
        "the key leaked into the log"
    );
}

/// Runs `cloudify-fs mount` on `mountpoint` in the foreground and returns its exit code and
/// standard error; for mounts expected to be refused.
fn refused_mount_on(server: &TestServer, mountpoint: &std::path::Path) -> (Option<i32>, String) {
    let output = std::process::Command::new(common::mount::fs_bin())
        .arg("mount")
        .arg(&server.origin)
        .arg(mountpoint)
        .env("CLOUDIFY_API_KEY", TEST_KEY)
        .output()
        .expect("run cloudify-fs");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn allow_non_empty_mounts_over_files_and_gives_them_back_at_unmount() {
    let server = TestServer::default_server();
    server.client().put_file(None, "remote.txt", b"remote\n");
    let dir = tempfile::tempdir().unwrap();
    let mountpoint = dir.path().join("mnt");
    std::fs::create_dir(&mountpoint).unwrap();
    std::fs::write(mountpoint.join("local.txt"), "local\n").unwrap();

    let (code, stderr) = refused_mount_on(&server, &mountpoint);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("not empty"), "{stderr}");

    let mut mount = MountCommand::new(&server.origin)
        .at(&mountpoint)
        .args(&["--allow-non-empty"])
        .mount();
    assert!(mountpoint.join("remote.txt").is_file());
    assert!(
        !mountpoint.join("local.txt").exists(),
        "hidden while mounted"
    );
    assert!(mount.unmount().success(), "{}", mount.log());
    let local = std::fs::read_to_string(mountpoint.join("local.txt")).unwrap();
    assert_eq!(local, "local\n");
}

#[test]
fn mounting_on_a_live_mount_is_refused() {
    let server = TestServer::default_server();
    let mount = MountGuard::mount(&server, &[]);
    let (code, stderr) = refused_mount_on(&server, mount.path());
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("already a mount point"), "{stderr}");
    assert!(mount.is_mounted());
}

#[test]
fn a_dead_mount_is_reported_with_the_way_to_clear_it() {
    let server = TestServer::default_server();
    let mut mount = MountGuard::mount(&server, &[]);
    mount.signal(libc::SIGKILL);
    mount.wait_exit();
    assert!(mount.is_mounted(), "the kernel keeps a dead FUSE mount");

    let (code, stderr) = refused_mount_on(&server, mount.path());
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("Transport endpoint is not connected"),
        "{stderr}"
    );
    assert!(stderr.contains("fusermount3 -uz"), "{stderr}");
    // The guard clears the dead mount when it drops.
}
