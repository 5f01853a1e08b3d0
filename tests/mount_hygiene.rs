//! What a user sees around a mount rather than in it: how /proc/mounts names it, the
//! permissions of the cache folder it creates, and a log free of alarming lines for things
//! that work (an outside unmount, `mv` of a folder, `cp` inside the mount, Python and sed
//! reading a file).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::TestServer;
use common::mount::{MountCommand, MountGuard};

/// The /proc/mounts line of `mountpoint`, as (source, type).
fn proc_mounts_entry(mountpoint: &Path) -> Option<(String, String)> {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap();
    let wanted = mountpoint.to_string_lossy().replace(' ', "\\040");
    mounts.lines().find_map(|line| {
        let f: Vec<&str> = line.split(' ').collect();
        (f.get(1) == Some(&wanted.as_str())).then(|| (f[0].to_string(), f[2].to_string()))
    })
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn proc_mounts_names_the_type_and_the_site_without_credentials() {
    let server = TestServer::default_server();
    let with_credentials = server.origin.replacen("://", "://someone:secret@", 1);
    let mount = MountCommand::new(with_credentials).mount();
    let (source, fs_type) = proc_mounts_entry(mount.path()).expect("a /proc/mounts line");
    assert_eq!(fs_type, "fuse.cloudify-fs");
    assert_eq!(source, server.origin);
    assert!(!source.contains("secret"));
}

#[test]
fn a_missing_cache_folder_and_its_parents_are_created_private() {
    let server = TestServer::default_server();
    let base = tempfile::tempdir().unwrap();
    let cache = base.path().join("made/for/cache");
    let arg = format!("--cache-dir={}", cache.display());
    let mut mount = MountGuard::mount(&server, &[arg.as_str()]);
    std::fs::write(mount.path().join("a.txt"), b"staged first\n").unwrap();
    for dir in [
        base.path().join("made"),
        base.path().join("made/for"),
        cache.clone(),
        cache.join("staging"),
    ] {
        assert_eq!(mode(&dir), 0o700, "{}", dir.display());
    }
    mount.unmount();
}

#[test]
fn expected_refusals_and_an_outside_unmount_log_no_warning() {
    let server = TestServer::default_server();
    let mut mount = MountGuard::mount(&server, &[]);
    let root = mount.path().to_path_buf();
    std::fs::create_dir(root.join("Folder")).unwrap();
    std::fs::write(root.join("Folder/inside.txt"), b"inside\n").unwrap();
    std::fs::write(root.join("a.txt"), b"alpha\n").unwrap();

    // A folder with content: rename gives EXDEV, mv copies (trying to carry extended
    // attributes over, which the mount does not support) and deletes.
    let mv = Command::new("mv")
        .arg(root.join("Folder"))
        .arg(root.join("Moved"))
        .output()
        .unwrap();
    assert!(
        mv.status.success(),
        "{}",
        String::from_utf8_lossy(&mv.stderr)
    );
    // cp inside the mount asks for copy_file_range first.
    let cp = Command::new("cp")
        .arg(root.join("a.txt"))
        .arg(root.join("b.txt"))
        .output()
        .unwrap();
    assert!(
        cp.status.success(),
        "{}",
        String::from_utf8_lossy(&cp.stderr)
    );
    assert_eq!(std::fs::read(root.join("b.txt")).unwrap(), b"alpha\n");
    assert_eq!(
        std::fs::read(root.join("Moved/inside.txt")).unwrap(),
        b"inside\n"
    );
    // Python's open() asks whether the file is a terminal (ioctl TCGETS); sed reads a line.
    let file = root.join("a.txt");
    let python = Command::new("python3")
        .args(["-c", "import sys; print(open(sys.argv[1]).read(), end='')"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(python.stdout, b"alpha\n", "{python:?}");
    let sed = Command::new("sed")
        .arg("-n")
        .arg("1p")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(sed.stdout, b"alpha\n", "{sed:?}");

    let status = mount.unmount();
    assert!(status.success());
    let log = mount.log();
    assert!(log.contains("unmounted"), "{log}");
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" WARN ") || l.contains(" ERROR "))
        .collect();
    assert!(
        warnings.is_empty(),
        "warnings for things that worked:\n{log}"
    );
}

#[test]
fn a_real_failure_still_logs_a_warning() {
    let server = TestServer::default_server();
    let mount = MountGuard::mount(&server, &[]);
    let err = std::fs::create_dir(mount.path().join("v1.2")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EINVAL));
    assert!(
        mount
            .log()
            .lines()
            .any(|l| l.contains(" WARN ") && l.contains("v1.2")),
        "{}",
        mount.log()
    );
}
