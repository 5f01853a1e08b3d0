//! rsync into and out of a mount of `cloudify-server`.
//!
//! rsync writes each file under a temporary name (`.name.XXXXXX`) and renames it at the end.
//! Cloudify refuses those names (their extension is not an allowed type), so:
//! - `--inplace` writes the final names directly and works on a default mount;
//! - without it, a mount with `--write-back` works: the temporary file is renamed before its
//!   upload is due, so only the final name is ever uploaded;
//! - without either, the first close fails with EPERM and rsync stops with an error naming
//!   the file; nothing is stored under a temporary name.

mod common;
mod tools_common;

use std::process::Command;

use common::TestServer;
use common::library::uploads;
use common::mount::MountGuard;
use tools_common::*;

/// The lines of `--itemize-changes` output that describe a transfer or a change (not the
/// `--stats` block).
fn itemized(out: &str) -> Vec<&str> {
    out.lines()
        .filter(|l| {
            let b = l.as_bytes();
            b.len() > 12
                && b"<>ch.*".contains(&b[0])
                && b"fdLDS".contains(&b[1])
                && l.as_bytes()[11] == b' '
        })
        .collect()
}

/// The number after `label` in rsync's `--stats` output (`Number of ...: 1,234`).
fn stat(out: &str, label: &str) -> u64 {
    let line = out
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no {label:?} in rsync's output:\n{out}"));
    line[label.len()..]
        .trim_start_matches(':')
        .split_whitespace()
        .next()
        .unwrap()
        .replace(',', "")
        .parse()
        .unwrap()
}

#[test]
fn rsync_inplace_into_a_default_mount_then_nothing_to_do_then_back_out() {
    let src = sample_tree();
    let server = TestServer::default_server();
    let mount = MountGuard::mount(&server, &[]);
    let dest = mount.path().join("Backup");
    let from = format!("{}/", src.path().display());

    run_ok(
        &mount,
        Command::new("rsync")
            .args(["-a", "--inplace"])
            .arg(&from)
            .arg(&dest),
    );
    assert_same_tree(src.path(), &dest);
    assert_eq!(live_files(&server), sample_paths("Backup"));
    assert_eq!(
        uploads(&server),
        sample_files().len() as u64,
        "one upload a file"
    );

    // Sizes are exact: a second run finds nothing to send.
    let out = run_ok(
        &mount,
        Command::new("rsync")
            .args(["-a", "--size-only", "--itemize-changes", "--stats"])
            .arg(&from)
            .arg(&dest),
    );
    let text = stdout(&out);
    assert_eq!(itemized(&text), Vec::<&str>::new(), "{text}");
    assert_eq!(
        stat(&text, "Number of regular files transferred"),
        0,
        "{text}"
    );
    assert_eq!(uploads(&server), sample_files().len() as u64);

    // Within the mount's life the times rsync set are kept too, so a plain `rsync -a` (size
    // and time) has nothing to do either.
    let out = run_ok(
        &mount,
        Command::new("rsync")
            .args(["-a", "--itemize-changes", "--stats"])
            .arg(&from)
            .arg(&dest),
    );
    assert_eq!(
        stat(&stdout(&out), "Number of regular files transferred"),
        0,
        "{}",
        stdout(&out)
    );

    // From the mount to local disk: byte-identical.
    let (_out, local) = scratch("restored");
    run_ok(
        &mount,
        Command::new("rsync")
            .arg("-a")
            .arg(format!("{}/", dest.display()))
            .arg(&local),
    );
    assert_same_tree(src.path(), &local);
}

#[test]
fn rsync_without_inplace_on_a_write_back_mount_uploads_final_names_only() {
    let src = sample_tree();
    let server = TestServer::default_server();
    let mut mount = MountGuard::mount(&server, &["--write-back", "5s"]);
    let dest = mount.path().join("Backup");
    let from = format!("{}/", src.path().display());

    run_ok(
        &mount,
        Command::new("rsync").arg("-a").arg(&from).arg(&dest),
    );
    assert_same_tree(src.path(), &dest);
    let out = run_ok(
        &mount,
        Command::new("rsync")
            .args(["-a", "--size-only", "--itemize-changes", "--stats"])
            .arg(&from)
            .arg(&dest),
    );
    let text = stdout(&out);
    assert_eq!(itemized(&text), Vec::<&str>::new(), "{text}");
    assert_eq!(
        stat(&text, "Number of regular files transferred"),
        0,
        "{text}"
    );

    // Unmounting stores whatever is still waiting for its delay.
    assert!(mount.unmount().success(), "log:\n{}", mount.log());
    assert_eq!(
        all_names(&server)
            .into_iter()
            .filter(|p| p.contains("/."))
            .collect::<Vec<_>>(),
        Vec::<String>::new(),
        "no temporary name reached the server, not even the trash"
    );
    assert_eq!(live_files(&server), sample_paths("Backup"));
    assert_eq!(
        uploads(&server),
        sample_files().len() as u64,
        "one upload a file"
    );
    let fresh = MountGuard::mount(&server, &[]);
    assert_same_tree(src.path(), &fresh.path().join("Backup"));
}

#[test]
fn rsync_without_inplace_on_a_default_mount_fails_clearly_and_stores_no_temporary_name() {
    let src = sample_tree();
    let server = TestServer::default_server();
    let mount = MountGuard::mount(&server, &[]);
    let dest = mount.path().join("Backup");

    let out = output(
        Command::new("rsync")
            .arg("-a")
            .arg(format!("{}/", src.path().display()))
            .arg(&dest),
    );
    let err = stderr(&out);
    assert!(!out.status.success(), "rsync reports the failure");
    assert!(
        err.contains("Operation not permitted"),
        "rsync names the refusal: {err}"
    );
    let names = all_names(&server);
    assert!(
        names.iter().all(|p| !p.contains("/.")),
        "no temporary name stored or trashed: {names:?}"
    );
    assert_eq!(live_files(&server), Vec::<String>::new());
    let leftovers: Vec<_> = walkdir_names(&dest);
    assert!(
        leftovers.iter().all(|n| !n.starts_with('.')),
        "rsync removed its temporary files: {leftovers:?}"
    );
}

/// Names of every entry below `root`, as the mount shows them.
fn walkdir_names(root: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            out.push(e.file_name().to_string_lossy().into_owned());
            if e.path().is_dir() {
                stack.push(e.path());
            }
        }
    }
    out
}
