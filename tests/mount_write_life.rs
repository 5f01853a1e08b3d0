//! The write side over the life of a real `cloudify-fs` mount process against
//! `cloudify-server`: memory stays bounded while a large file is written, SIGTERM during a
//! copy leaves no half-stored file, and what a killed mount staged is stored by the next
//! mount with the same cache folder.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::{Command, Stdio};

use common::library::{root_files, root_names, server_bytes};
use common::mount::{DEADLINE, MountCommand, MountGuard};
use common::{ServerOptions, TestServer, wait_until};

/// `len` bytes of a zip-looking file (the server sniffs content); `seed` varies the body.
fn zip(seed: u8, len: usize) -> Vec<u8> {
    let mut z = b"PK\x03\x04".to_vec();
    z.extend((4..len).map(|i| b'a' + ((i * 7 + seed as usize) % 26) as u8));
    z
}

fn server(flavor: &str, extra: &[&str]) -> TestServer {
    TestServer::start(
        ServerOptions::default()
            .args(["--flavor", flavor])
            .args(extra.iter().copied()),
    )
}

/// Peak resident memory of process `pid` in bytes (`VmHWM` of /proc/PID/status).
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM line");
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .expect("VmHWM value");
    kb * 1024
}

fn memory_stays_bounded(flavor: &str, len: usize) {
    let server = server(flavor, &[]);
    let mut mount = MountGuard::mount(&server, &[]);
    let before = peak_rss(mount.pid());

    // Written 1 MiB at a time, like cp does; each chunk differs so nothing dedups.
    let path = mount.path().join("big.zip");
    let mut f = std::fs::File::create(&path).unwrap();
    let mut chunk = zip(0, 1 << 20);
    for i in 0..len >> 20 {
        chunk[8..16].copy_from_slice(&(i as u64).to_le_bytes());
        std::io::Write::write_all(&mut f, &chunk).unwrap();
    }
    drop(f);
    let after = peak_rss(mount.pid());
    assert_eq!(std::fs::metadata(&path).unwrap().len(), len as u64);
    mount.unmount();

    let grew = after.saturating_sub(before);
    eprintln!(
        "{flavor}: {} MiB written; peak RSS {} -> {} KiB (+{} KiB)",
        len >> 20,
        before / 1024,
        after / 1024,
        grew / 1024
    );
    assert!(
        grew < 64 << 20,
        "peak memory grew by {} KiB while writing {} MiB",
        grew / 1024,
        len >> 20
    );
    let (_, url) = root_files(&server)
        .into_iter()
        .find(|(n, _)| n == "big")
        .expect("big.zip stored");
    let head = reqwest::blocking::Client::new().head(url).send().unwrap();
    let stored_len = head.headers()["content-length"]
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(stored_len, len.to_string());
}

#[test]
fn memory_stays_bounded_while_64_mib_are_written_2026() {
    memory_stays_bounded("2026", 64 << 20);
}

#[test]
fn memory_stays_bounded_while_64_mib_are_written_128() {
    memory_stays_bounded("1.2.8", 64 << 20);
}

/// The size, behind `CLOUDIFY_LONG_TESTS=1` (it takes a while on a small machine).
#[test]
fn memory_stays_bounded_while_200_mib_are_written() {
    if std::env::var("CLOUDIFY_LONG_TESTS").as_deref() != Ok("1") {
        eprintln!("skipped; set CLOUDIFY_LONG_TESTS=1 to run");
        return;
    }
    memory_stays_bounded("2026", 200 << 20);
}

fn sigterm_during_a_copy_stores_all_or_nothing(flavor: &str) {
    // 32 MiB at 4 MiB/s: the upload runs for about 8 s, long enough to signal into it.
    let server = server(flavor, &["--bandwidth", "4Mi"]);
    let mut mount = MountGuard::mount(&server, &[]);
    let src = tempfile::tempdir().unwrap();
    let data = zip(1, 32 << 20);
    std::fs::write(src.path().join("big.zip"), &data).unwrap();

    let cp = Command::new("cp")
        .arg(src.path().join("big.zip"))
        .arg(mount.path())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(
        "the upload to start",
        DEADLINE,
        || mount.log(),
        || server.stats()["api"]["upload"].as_u64() >= Some(1),
    );
    mount.signal(libc::SIGTERM);

    wait_until(
        "the unmount after SIGTERM",
        DEADLINE * 4,
        || mount.log(),
        || !mount.is_mounted(),
    );
    let status = mount.wait_exit();
    let cp_out = cp.wait_with_output().unwrap();
    let log = mount.log();
    assert!(status.success(), "{status}; log:\n{log}");
    assert!(log.contains("SIGTERM received"), "{log}");

    // Whole or nothing under that name, never a truncated file.
    match server_bytes(&server, "big") {
        Some(stored) => {
            assert!(
                stored == data,
                "stored {} of {} bytes",
                stored.len(),
                data.len()
            );
            assert!(
                cp_out.status.success(),
                "cp saw an error though the file is stored"
            );
            assert!(log.contains("/big.zip: stored (33554432 bytes)"), "{log}");
        }
        None => {
            assert!(
                !cp_out.status.success(),
                "cp succeeded but nothing is stored; log:\n{log}"
            );
            assert!(
                log.contains("NOT STORED") || log.contains("staged at"),
                "{log}"
            );
        }
    }
    assert!(
        root_names(&server).iter().all(|n| n == "big"),
        "no other copy: {:?}",
        root_names(&server)
    );
}

#[test]
fn sigterm_during_a_copy_stores_all_or_nothing_2026() {
    sigterm_during_a_copy_stores_all_or_nothing("2026");
}

#[test]
fn sigterm_during_a_copy_stores_all_or_nothing_128() {
    sigterm_during_a_copy_stores_all_or_nothing("1.2.8");
}

/// Staging manifests (`*.json`) in a cache folder: content not stored yet.
fn manifests(cache: &Path) -> usize {
    std::fs::read_dir(cache.join("staging"))
        .map(|d| {
            d.flatten()
                .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                .count()
        })
        .unwrap_or(0)
}

/// Kills a `--write-back 60s` mount while it holds staged changes, then mounts again with the
/// same cache folder and waits until the server has what was staged.
fn killed_mount_is_recovered(flavor: &str) {
    let server = server(flavor, &[]);
    server
        .client()
        .put_file(None, "old-name.txt", b"content of the renamed file\n");
    let cache = tempfile::tempdir().unwrap();
    let cache_arg = format!("--cache-dir={}", cache.path().display());
    let args = ["--write-back", "60s", cache_arg.as_str()];

    let mut first = MountGuard::mount(&server, &args);
    let root = first.path().to_path_buf();
    std::fs::write(root.join("late.txt"), b"written just before the crash\n").unwrap();
    // A stored file edited and renamed: the old copy must go once the new one is stored.
    let status = Command::new("sh")
        .arg("-c")
        .arg("printf 'edited\\n' >> \"$1\" && mv \"$1\" \"$2\"")
        .arg("sh")
        .arg(root.join("old-name.txt"))
        .arg(root.join("new-name.txt"))
        .status()
        .unwrap();
    assert!(status.success(), "edit and rename; log:\n{}", first.log());
    assert_eq!(manifests(cache.path()), 2, "{}", first.log());
    assert_eq!(root_names(&server), BTreeSet::from(["old-name".into()]));

    first.signal(libc::SIGKILL);
    first.wait_exit();
    drop(first);

    let second = MountCommand::new(&server.origin).args(&args).mount();
    wait_until(
        "the recovered uploads",
        DEADLINE * 2,
        || second.log(),
        || root_names(&server) == BTreeSet::from(["late".into(), "new-name".into()]),
    );
    assert_eq!(
        server_bytes(&server, "late").unwrap(),
        b"written just before the crash\n"
    );
    assert_eq!(
        server_bytes(&server, "new-name").unwrap(),
        b"content of the renamed file\nedited\n"
    );
    let log = second.log();
    assert!(log.contains("staged by an earlier mount"), "{log}");
    wait_until(
        "the staging folder to empty",
        DEADLINE,
        || second.log(),
        || manifests(cache.path()) == 0,
    );
    assert_eq!(
        std::fs::read(second.path().join("late.txt")).unwrap(),
        b"written just before the crash\n"
    );
}

#[test]
fn killed_mount_is_recovered_by_the_next_2026() {
    killed_mount_is_recovered("2026");
}

#[test]
fn killed_mount_is_recovered_by_the_next_128() {
    killed_mount_is_recovered("1.2.8");
}
