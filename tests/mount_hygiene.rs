//! What a user sees around a mount rather than in it: how /proc/mounts names it, the
//! permissions of the cache folder it creates, and a log free of alarming lines for things
//! that work (an outside unmount, `mv` of a folder, `cp` inside the mount).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

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
