//! Backup tools reading a mount of `cloudify-server`: `tar` (plain and `--sparse`) and
//! `restic` (init, backup, check, restore, and a second backup that reads nothing again).
//! What they rely on: exact sizes, times and inode numbers that stay put while nothing
//! changes, in one mount and from one mount to the next, and reads that return every byte.

mod common;
mod tools_common;

use std::process::Command;

use common::files::bytes;
use common::mount::{MountCommand, MountGuard};
use common::{ServerOptions, TestServer};
use tools_common::*;

/// The sample tree plus a file with a long run of zeros (what sparse detection looks for),
/// imported into a new server.
fn library() -> (tempfile::TempDir, TestServer) {
    let src = sample_tree();
    let mut holey = b"PK\x03\x04".to_vec();
    holey.extend(vec![0u8; 1 << 20]);
    holey.extend(bytes(9, 100_000));
    write_files(src.path(), &[("Docs/holey.zip", holey)]);
    let server = TestServer::start(
        ServerOptions::default().args(["--import", src.path().to_str().unwrap()]),
    );
    (src, server)
}

fn tar_round_trip(extra: &[&str]) {
    let (src, server) = library();
    let mount = MountGuard::mount(&server, &[]);
    let (_work, dir) = scratch("work");
    std::fs::create_dir(&dir).unwrap();
    let archive = dir.join("library.tar");

    let out = run_ok(
        &mount,
        Command::new("tar")
            .arg("-c")
            .args(extra)
            .arg("-f")
            .arg(&archive)
            .arg("-C")
            .arg(mount.path())
            .arg("."),
    );
    let err = stderr(&out);
    for complaint in [
        "changed as we read it",
        "shrank",
        "file is unchanged; not dumped",
    ] {
        assert!(!err.contains(complaint), "tar: {err}");
    }
    assert_eq!(err, "", "tar prints nothing on stderr");

    let extracted = dir.join("x");
    std::fs::create_dir(&extracted).unwrap();
    run_ok(
        &mount,
        Command::new("tar")
            .arg("-x")
            .arg("-f")
            .arg(&archive)
            .arg("-C")
            .arg(&extracted),
    );
    assert_same_tree(src.path(), &extracted);
}

#[test]
fn tar_of_the_mount_extracts_identical() {
    tar_round_trip(&[]);
}

#[test]
fn tar_sparse_of_the_mount_extracts_identical() {
    tar_round_trip(&["--sparse"]);
}

/// The summary line of `restic backup --json`.
fn backup_summary(
    mount: &MountGuard,
    restic: &dyn Fn() -> Command,
    extra: &[&str],
) -> serde_json::Value {
    let out = run_ok(
        mount,
        restic()
            .args(["backup", "--json"])
            .args(extra)
            .arg(mount.path()),
    );
    let text = stdout(&out);
    text.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|v| v["message_type"] == "summary")
        .unwrap_or_else(|| panic!("no summary in restic's output:\n{text}"))
}

#[test]
fn restic_backup_check_restore_and_an_unchanged_second_backup() {
    let (src, server) = library();
    let mount = MountGuard::mount(&server, &[]);
    let (_work, dir) = scratch("work");
    std::fs::create_dir(&dir).unwrap();
    let repo = dir.join("repo");
    let cache = dir.join("cache");
    let restic = || {
        let mut c = Command::new("restic");
        c.env("RESTIC_PASSWORD", "test password")
            .env("RESTIC_REPOSITORY", &repo)
            .env("RESTIC_CACHE_DIR", &cache)
            .env_remove("RESTIC_PASSWORD_FILE")
            .env_remove("RESTIC_PASSWORD_COMMAND");
        c
    };
    run_ok(&mount, restic().args(["init", "--quiet"]));

    let first = backup_summary(&mount, &restic, &[]);
    let files = sample_files().len() as u64 + 1;
    assert_eq!(first["files_new"], files, "{first}");
    run_ok(&mount, restic().arg("check"));

    let target = dir.join("restored");
    run_ok(
        &mount,
        restic()
            .args(["restore", "latest", "--target"])
            .arg(&target),
    );
    let restored = target.join(mount.path().strip_prefix("/").unwrap());
    assert_same_tree(src.path(), &restored);

    // Nothing changed: restic trusts size, times and inode numbers and reads no file.
    server.reset_stats();
    let second = backup_summary(&mount, &restic, &[]);
    assert_eq!(second["files_new"], 0, "{second}");
    assert_eq!(second["files_changed"], 0, "{second}");
    assert_eq!(second["files_unmodified"], files, "{second}");
    assert!(
        second["data_added"].as_u64().unwrap() < 64 * 1024,
        "only metadata is added: {second}"
    );
    let stats = server.stats();
    assert_eq!(
        stats["storage"]["get"], 0,
        "the second backup downloads nothing: {stats}"
    );
}

/// `stat` of every entry below the mount: inode number, mtime, ctime, size and path.
fn stat_all(mount: &MountGuard) -> String {
    let out = run_ok(
        mount,
        Command::new("find")
            .args([
                ".",
                "-mindepth",
                "1",
                "-exec",
                "stat",
                "-c",
                "%i %Y %Z %s %n",
                "{}",
                "+",
            ])
            .current_dir(mount.path()),
    );
    let text = stdout(&out);
    let mut lines: Vec<&str> = text.lines().collect();
    lines.sort_by_key(|l| l.splitn(5, ' ').nth(4).unwrap_or_default().to_string());
    lines.join("\n")
}

#[test]
fn two_mounts_of_one_library_show_the_same_inode_numbers_times_and_sizes() {
    let (_src, server) = library();
    let first = MountGuard::mount(&server, &[]);
    let second = MountGuard::mount(&server, &[]);
    // Visit the second in another order, so numbers cannot follow the order of discovery.
    run_ok(
        &second,
        Command::new("stat").arg(second.path().join("Media/tone.wav")),
    );
    let a = stat_all(&first);
    let b = stat_all(&second);
    assert_eq!(a.lines().count(), sample_files().len() + 1 + 4, "{a}");
    assert_eq!(a, b, "inode, mtime, ctime, size and path per entry");
}

#[test]
fn restic_after_a_remount_reads_no_file_again() {
    let (_src, server) = library();
    let (_work, dir) = scratch("work");
    let mountpoint = dir.join("mnt");
    std::fs::create_dir_all(&mountpoint).unwrap();
    let repo = dir.join("repo");
    let cache = dir.join("cache");
    let restic = || {
        let mut c = Command::new("restic");
        c.env("RESTIC_PASSWORD", "test password")
            .env("RESTIC_REPOSITORY", &repo)
            .env("RESTIC_CACHE_DIR", &cache)
            .env_remove("RESTIC_PASSWORD_FILE")
            .env_remove("RESTIC_PASSWORD_COMMAND");
        c
    };
    let mount_at = || MountCommand::new(&server.origin).at(&mountpoint).mount();

    let mut mount = mount_at();
    run_ok(&mount, restic().args(["init", "--quiet"]));
    let first = backup_summary(&mount, &restic, &[]);
    let files = sample_files().len() as u64 + 1;
    assert_eq!(first["files_new"], files, "{first}");
    assert!(mount.unmount().success(), "log:\n{}", mount.log());

    // A new mount process on the same path: restic takes the first snapshot as parent and
    // trusts size, times and inode numbers, so it reads no file.
    let mount = mount_at();
    // Entries met in another order than restic's walk met them in the first mount.
    for rel in ["Media/tone.wav", "Docs/Deep Folder/archive.zip", "top.txt"] {
        std::fs::metadata(mount.path().join(rel)).unwrap();
    }
    server.reset_stats();
    let second = backup_summary(&mount, &restic, &[]);
    assert_eq!(second["files_new"], 0, "{second}");
    assert_eq!(second["files_changed"], 0, "{second}");
    assert_eq!(second["files_unmodified"], files, "{second}");
    let stats = server.stats();
    assert_eq!(
        stats["storage"]["get"], 0,
        "the backup after the remount downloads nothing: {stats}"
    );
}
