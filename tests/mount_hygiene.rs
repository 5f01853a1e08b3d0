//! What a user sees around a mount rather than in it: how /proc/mounts names it, the
//! permissions of the cache folder it creates, and a log free of alarming lines for things
//! that work (an outside unmount, `mv` of a folder, `cp` inside the mount).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::TestServer;
use common::mount::MountGuard;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
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
