//! The command line and the checks `cloudify-fs mount` makes before mounting: help text, key
//! handling, unreachable servers, bad mountpoints. None of these needs a server.

mod common;

use std::process::{Command, Output};

use common::mount::{MountCommand, fs_bin};

fn run(args: &[&str]) -> Output {
    Command::new(fs_bin())
        .args(args)
        .env_remove("CLOUDIFY_API_KEY")
        .output()
        .expect("run cloudify-fs")
}

/// `http://127.0.0.1:PORT` where nothing listens: the port was bound, then released.
fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    format!("http://127.0.0.1:{port}")
}

#[test]
fn help_lists_every_option_under_its_heading() {
    let output = run(&["mount", "--help"]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for option in [
        "--read-only",
        "--allow-other",
        "--uid",
        "--gid",
        "--umask",
        "--dir-cache-time",
        "--attr-timeout",
        "--cache-dir",
        "--inode-cache",
        "--timeout",
        "--retries",
        "--rate-limit",
        "--server-timezone",
        "--max-threads",
        "--delete-mode",
        "--write-back",
        "--api-key-file",
        "--daemon",
        "--debug",
        "-v",
        "--log-file",
        "--allow-non-empty",
        "-o <OPTIONS>",
        "CLOUDIFY_API_KEY",
    ] {
        assert!(help.contains(option), "--help lacks {option}:\n{help}");
    }
    for heading in ["Access:", "Caching:", "Network:", "Writing:", "Logging:"] {
        assert!(
            help.contains(heading),
            "--help lacks the heading {heading}:\n{help}"
        );
    }
    for default in [
        "[default: 60s]",
        "[default: as long as the folder's listing stays fresh, 1s for files being written]",
        "[default: 30s]",
        "[default: trash]",
    ] {
        assert!(help.contains(default), "--help lacks {default}:\n{help}");
    }
}

#[test]
fn top_level_help_names_the_mount_command() {
    let output = run(&["--help"]);
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).contains("mount"));
}

#[test]
fn missing_key_is_a_clear_error() {
    let mut mount = MountCommand::new(closed_port_url()).key(None).start();
    let status = mount.wait_exit();
    assert!(!status.success());
    let log = mount.log();
    assert!(log.contains("no API key"), "{log}");
    assert!(log.contains("CLOUDIFY_API_KEY"), "{log}");
}

#[test]
fn empty_key_file_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, "\n").unwrap();
    let key_arg = format!("--api-key-file={}", key_file.display());
    let mut mount = MountCommand::new(closed_port_url())
        .key(None)
        .args(&[key_arg])
        .start();
    assert!(!mount.wait_exit().success());
    assert!(mount.log().contains("is empty"), "{}", mount.log());
}

#[test]
fn unreachable_server_is_reported_as_unreachable() {
    let mut mount = MountCommand::new(closed_port_url())
        .args(&["--retries=1"])
        .start();
    let status = mount.wait_exit();
    assert_eq!(status.code(), Some(1), "log:\n{}", mount.log());
    assert!(mount.log().contains("unreachable"), "{}", mount.log());
    assert!(!mount.is_mounted());
}

#[test]
fn unknown_o_option_is_a_usage_error() {
    let output = run(&[
        "mount",
        "http://127.0.0.1:9",
        "/tmp",
        "-o",
        "ro,frobnicate=1",
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unknown mount option \"frobnicate\""),
        "{stderr}"
    );
}

#[test]
fn a_key_on_the_command_line_is_refused() {
    let output = run(&[
        "mount",
        "http://127.0.0.1:9",
        "/tmp",
        "-o",
        "api_key=SEKRIT99",
    ]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("CLOUDIFY_API_KEY"), "{stderr}");
    assert!(!stderr.contains("SEKRIT99"), "{stderr}");
}

#[test]
fn mountpoint_must_be_an_existing_directory() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    let file = dir.path().join("file");
    std::fs::write(&file, "x").unwrap();
    for (path, expected) in [(&missing, "does not exist"), (&file, "not a directory")] {
        let output = Command::new(fs_bin())
            .arg("mount")
            .arg(closed_port_url())
            .arg(path)
            .env("CLOUDIFY_API_KEY", common::TEST_KEY)
            .output()
            .expect("run cloudify-fs");
        assert_eq!(output.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{stderr}");
    }
}

/// Runs `cloudify-fs mount <closed port> MOUNTPOINT ARGS`; returns the exit code and stderr.
fn mount_on(mountpoint: &std::path::Path, args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(fs_bin())
        .arg("mount")
        .arg(closed_port_url())
        .arg(mountpoint)
        .args(args)
        .env("CLOUDIFY_API_KEY", common::TEST_KEY)
        .output()
        .expect("run cloudify-fs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code(), stderr)
}

#[test]
fn a_non_empty_mountpoint_is_refused_before_anything_else() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".hidden"), "x").unwrap();
    let (code, stderr) = mount_on(dir.path(), &["--retries=0"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("is not empty"), "{stderr}");
    assert!(stderr.contains(".hidden"), "{stderr}");
    assert!(stderr.contains("--allow-non-empty"), "{stderr}");
    assert!(
        !stderr.contains("unreachable"),
        "checked before the server: {stderr}"
    );
}

#[test]
fn allow_non_empty_and_o_nonempty_pass_the_mountpoint_check() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("local.txt"), "x").unwrap();
    for args in [
        &["--allow-non-empty", "--retries=0"][..],
        &["-o", "nonempty,retries=0"][..],
        &["-o", "allow_non_empty", "--retries=0"][..],
    ] {
        let (code, stderr) = mount_on(dir.path(), args);
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        // The next check, the server's, is reached.
        assert!(stderr.contains("unreachable"), "{args:?}: {stderr}");
    }
}

#[test]
fn daemon_reports_a_failed_preflight_through_its_exit_status() {
    let mut mount = MountCommand::new(closed_port_url())
        .args(&["--daemon", "--retries=0"])
        .start();
    assert_eq!(mount.wait_exit().code(), Some(1));
    let log = mount.log();
    assert!(log.contains("unreachable"), "{log}");
    assert_eq!(
        log.matches("unreachable").count(),
        1,
        "reported once:\n{log}"
    );
}

#[test]
fn mount_helper_convention_runs_the_same_checks() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(fs_bin())
        .arg(closed_port_url())
        .arg(dir.path())
        .args(["-o", "rw,_netdev,retries=0"])
        .env("CLOUDIFY_API_KEY", common::TEST_KEY)
        .output()
        .expect("run cloudify-fs");
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("unreachable"));
}

#[test]
fn key_never_appears_in_output_of_failures() {
    let key = "KNOWNKEY5550123ABCDEF";
    let mut mount = MountCommand::new(closed_port_url())
        .key(Some(key))
        .args(&["-vv", "--retries=1"])
        .env("RUST_LOG", "trace")
        .start();
    assert!(!mount.wait_exit().success());
    let log = mount.log();
    assert!(log.contains("unreachable"), "{log}");
    assert!(!log.to_uppercase().contains(key), "the key leaked:\n{log}");
}

#[test]
fn called_as_mount_helper_it_accepts_the_mount8_convention() {
    let dir = tempfile::tempdir().unwrap();
    let helper = dir.path().join("mount.cloudify-fs");
    std::os::unix::fs::symlink(fs_bin(), &helper).unwrap();
    let mountpoint = dir.path().join("mnt");
    std::fs::create_dir(&mountpoint).unwrap();
    let output = Command::new(&helper)
        .arg(closed_port_url())
        .arg(&mountpoint)
        .args([
            "-n",
            "-o",
            "rw,nofail,_netdev,retries=0",
            "-t",
            "fuse.cloudify-fs",
        ])
        .env("CLOUDIFY_API_KEY", common::TEST_KEY)
        .output()
        .expect("run mount.cloudify-fs");
    // The helper runs in the background by default; the parent reports the child's error.
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unreachable"), "{stderr}");
}

#[test]
fn key_file_readable_by_others_gives_a_warning() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("key");
    std::fs::write(&key_file, format!("{}\n", common::TEST_KEY)).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let key_arg = format!("--api-key-file={}", key_file.display());
    let mut mount = MountCommand::new(closed_port_url())
        .key(None)
        .args(&[key_arg.as_str(), "--retries=0"])
        .start();
    assert!(!mount.wait_exit().success());
    let log = mount.log();
    assert!(log.contains("readable by other users"), "{log}");
    assert!(
        log.contains("unreachable"),
        "the key was read and used: {log}"
    );
    assert!(!log.contains(common::TEST_KEY), "{log}");
}
