//! Reads through a real mount while `cloudify-server` misbehaves: download bodies that stall
//! or break are resumed with new ranged GETs, and a read never returns wrong bytes (it fails
//! with EIO when resuming does not help).

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::mount::MountGuard;
use common::{ServerOptions, TestServer};

fn pseudo_random(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// A tree of one 3 MiB zip and 20 small text files; returns (relative path, bytes).
fn make_tree(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    let mut big = b"PK\x03\x04".to_vec();
    big.extend(pseudo_random(11, (3 << 20) - 4));
    files.push(("big.zip".to_string(), big));
    for i in 0..20u64 {
        let text: Vec<u8> = pseudo_random(100 + i, 20_000 + 1000 * i as usize)
            .iter()
            .map(|b| b'a' + b % 26)
            .collect();
        files.push((format!("Small/t{i:02}.txt"), text));
    }
    for (rel, data) in &files {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
    files
}

fn server_with(tree: &Path, faults: &[&str]) -> TestServer {
    let mut args = vec!["--import".to_string(), tree.to_str().unwrap().to_string()];
    args.extend(faults.iter().map(|s| s.to_string()));
    TestServer::start(ServerOptions::default().args(args))
}

#[test]
fn a_stalled_download_fails_or_resumes_without_waiting_for_the_stall() {
    let tree = tempfile::tempdir().unwrap();
    let files = make_tree(tree.path());
    // Every body (also every resumed one) stops halfway for far longer than the mount waits:
    // each resume brings half of what is left, so the read ends in EIO after its resumes.
    let server = server_with(tree.path(), &["--stall", "600s"]);
    let mount = MountGuard::mount(&server, &["--timeout", "2s", "--retries", "1"]);

    let started = Instant::now();
    let (rel, data) = &files[1];
    match std::fs::read(mount.path().join(rel)) {
        Ok(got) => assert!(got == *data, "{rel}: bytes differ"),
        Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EIO), "{rel}: {e}"),
    }
    // A deadline far below the stall: the read gave up on the stalled bodies by itself.
    assert!(
        started.elapsed() < Duration::from_secs(300),
        "the read waited for the stall"
    );
    assert!(
        mount.log().contains("failed at byte"),
        "the failure is logged with its cause"
    );
}

#[test]
fn broken_downloads_never_give_wrong_bytes() {
    let tree = tempfile::tempdir().unwrap();
    let files = make_tree(tree.path());
    let server = server_with(tree.path(), &["--drop-rate", "0.3", "--fault-seed", "7"]);
    let mount = MountGuard::mount(&server, &[]);

    let mut ok = 0;
    for (rel, data) in &files {
        match std::fs::read(mount.path().join(rel)) {
            Ok(got) => {
                assert!(got == *data, "{rel}: wrong bytes after broken downloads");
                ok += 1;
            }
            Err(e) => assert_eq!(e.raw_os_error(), Some(libc::EIO), "{rel}: {e}"),
        }
    }
    assert!(
        ok > files.len() / 2,
        "resuming should save most reads ({ok} of {})",
        files.len()
    );
}
