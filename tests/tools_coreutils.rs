//! The everyday tools on a mount of `cloudify-server`: `cp -a`, `cp -r`, `mv` between
//! folders and across the mount's edge, `mkdir -p`, `rm -r`, `find -newer`, `du`, `df`.
//! Each test runs the real program and checks what a user relies on: the bytes (`diff -r`,
//! also through a fresh mount, i.e. what the server stored), the names the server holds, and
//! that nothing is left behind.

mod common;
mod tools_common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use common::TestServer;
use common::files::text_of_bytes;
use common::mount::MountGuard;
use tools_common::*;

/// `find ROOT ARGS... -printf '%P\n'`, sorted.
fn find(mount: &MountGuard, root: &Path, args: &[&str]) -> Vec<String> {
    let out = run_ok(
        mount,
        Command::new("find")
            .arg(root)
            .args(args)
            .args(["-printf", "%P\\n"]),
    );
    let mut v: Vec<String> = stdout(&out).lines().map(str::to_string).collect();
    v.sort();
    v
}

#[test]
fn cp_a_into_the_mount_and_cp_r_out_are_byte_identical() {
    let src = sample_tree();
    let server = TestServer::default_server();
    let mut mount = MountGuard::mount(&server, &[]);
    let dest = mount.path().join("In");

    // `cp -a` preserves modes, owners and times; the mount accepts them (times are kept for
    // the life of the mount, the rest has no effect) and ENOTSUP for extended attributes is
    // not an error for cp.
    let out = run_ok(
        &mount,
        Command::new("cp").arg("-a").arg(src.path()).arg(&dest),
    );
    assert_eq!(stderr(&out), "", "cp -a prints no warning");
    assert_same_tree(src.path(), &dest);
    let src_meta = std::fs::metadata(src.path().join("Docs/notes.txt")).unwrap();
    let dest_meta = std::fs::metadata(dest.join("Docs/notes.txt")).unwrap();
    assert_eq!(
        (dest_meta.mtime(), dest_meta.mtime_nsec()),
        (src_meta.mtime(), src_meta.mtime_nsec()),
        "cp -a keeps the modification time within the mount"
    );
    assert_eq!(live_files(&server), sample_paths("In"));

    let (_out_dir, out_path) = scratch("out");
    run_ok(
        &mount,
        Command::new("cp").arg("-r").arg(&dest).arg(&out_path),
    );
    assert_same_tree(src.path(), &out_path);
    assert!(mount.unmount().success());

    let fresh = MountGuard::mount(&server, &[]);
    assert_same_tree(src.path(), &fresh.path().join("In"));
}

#[test]
fn mv_between_folders_and_across_the_mount_edge() {
    let src = sample_tree();
    let server = TestServer::default_server();
    let mut mount = MountGuard::mount(&server, &[]);
    let m = mount.path().to_path_buf();
    run_ok(
        &mount,
        Command::new("cp")
            .arg("-r")
            .arg(format!("{}/.", src.path().display()))
            .arg(&m),
    );
    let (local, local_path) = scratch("local");
    std::fs::create_dir(&local_path).unwrap();
    let top = std::fs::read(src.path().join("top.txt")).unwrap();

    // A file to another folder of the mount: uploaded again there, the original removed.
    run_ok(
        &mount,
        Command::new("mv")
            .arg(m.join("top.txt"))
            .arg(m.join("Docs")),
    );
    assert!(!m.join("top.txt").exists());
    assert_eq!(std::fs::read(m.join("Docs/top.txt")).unwrap(), top);

    // A local file into the mount, and a mount file out to local disk.
    let incoming = local_path.join("incoming.txt");
    std::fs::write(&incoming, text_of_bytes(40, 5_000)).unwrap();
    run_ok(
        &mount,
        Command::new("mv").arg(&incoming).arg(m.join("Media")),
    );
    assert!(!incoming.exists());
    assert_eq!(
        std::fs::read(m.join("Media/incoming.txt")).unwrap(),
        text_of_bytes(40, 5_000)
    );
    run_ok(
        &mount,
        Command::new("mv").arg(m.join("table.csv")).arg(&local_path),
    );
    assert!(!m.join("table.csv").exists());
    assert_eq!(
        std::fs::read(local_path.join("table.csv")).unwrap(),
        std::fs::read(src.path().join("table.csv")).unwrap()
    );

    // A folder with content: the mount answers EXDEV, mv copies and deletes.
    run_ok(
        &mount,
        Command::new("mv").arg(m.join("Docs")).arg(m.join("Media")),
    );
    assert!(!m.join("Docs").exists());
    assert_eq!(std::fs::read(m.join("Media/Docs/top.txt")).unwrap(), top);
    // And out of the mount.
    run_ok(
        &mount,
        Command::new("mv")
            .arg(m.join("Media/Docs"))
            .arg(local_path.join("Docs")),
    );
    assert!(!m.join("Media/Docs").exists());
    std::fs::remove_file(local_path.join("Docs/top.txt")).unwrap();
    assert_same_tree(&src.path().join("Docs"), &local_path.join("Docs"));

    let mut expected = vec![
        "Media/Ünïcödé Ordner/café.txt",
        "Media/clip.mp3",
        "Media/incoming.txt",
        "Media/tone.wav",
        "one.txt",
    ];
    expected.sort();
    assert_eq!(live_files(&server), expected);
    assert!(mount.unmount().success());
    let fresh = MountGuard::mount(&server, &[]);
    let seen = find(&fresh, fresh.path(), &["-type", "f"]);
    assert_eq!(seen, expected, "a fresh mount shows the same");
    drop(local);
}

fn mkdir_p_and_rm_r(delete_mode: &str) {
    let server = TestServer::default_server();
    let mount = MountGuard::mount(&server, &["--delete-mode", delete_mode]);
    let m = mount.path();
    run_ok(
        &mount,
        Command::new("mkdir").arg("-p").arg(m.join("A/B b/C")),
    );
    assert!(m.join("A/B b/C").is_dir());
    let folders: Vec<String> = held(&server)
        .into_iter()
        .filter(|h| h.folder && !h.trashed)
        .map(|h| h.path)
        .collect();
    assert_eq!(folders, ["A", "A/B b", "A/B b/C"]);

    write_files(
        m,
        &[
            ("A/x.txt", text_of_bytes(1, 100)),
            ("A/B b/y.csv", b"a,b\n".to_vec()),
            ("A/B b/C/z.pdf", with_magic(b"%PDF-1.4\n", 2, 10_000)),
        ],
    );
    assert_eq!(
        live_files(&server),
        ["A/B b/C/z.pdf", "A/B b/y.csv", "A/x.txt"]
    );

    let bad = output(Command::new("mkdir").arg("-p").arg(m.join("A/v1.2/deep")));
    assert!(!bad.status.success(), "a folder name with a dot is refused");
    assert!(
        stderr(&bad).contains("Invalid argument"),
        "{}",
        stderr(&bad)
    );

    run_ok(&mount, Command::new("rm").arg("-r").arg(m.join("A")));
    assert!(!m.join("A").exists());
    let left = held(&server);
    assert!(
        left.iter().all(|h| h.trashed),
        "nothing live is left: {left:?}"
    );
    match delete_mode {
        "permanent" => assert_eq!(left, [], "permanent deletes leave nothing"),
        _ => assert!(!left.is_empty(), "trash keeps the items recoverable"),
    }
}

#[test]
fn mkdir_p_and_rm_r_trash() {
    mkdir_p_and_rm_r("trash");
}

#[test]
fn mkdir_p_and_rm_r_permanent() {
    mkdir_p_and_rm_r("permanent");
}

#[test]
fn find_newer_du_and_df() {
    let src = sample_tree();
    // Old times on every file, newer ones on two.
    for (rel, _) in sample_files() {
        let stamp = match rel {
            "Docs/notes.txt" | "Media/clip.mp3" => "2023-06-01 12:00:00",
            _ => "2021-01-01 12:00:00",
        };
        let status = Command::new("touch")
            .args(["-m", "-d", stamp])
            .arg(src.path().join(rel))
            .status()
            .unwrap();
        assert!(status.success());
    }
    let server = TestServer::default_server();
    let mount = MountGuard::mount(&server, &[]);
    let m = mount.path();
    run_ok(
        &mount,
        Command::new("cp")
            .arg("-a")
            .arg(format!("{}/.", src.path().display()))
            .arg(m),
    );

    assert_eq!(
        find(
            &mount,
            m,
            &["-type", "f", "-newer", &m.join("top.txt").to_string_lossy()]
        ),
        ["Docs/notes.txt", "Media/clip.mp3"],
        "find -newer compares the times cp -a set"
    );
    let (_ref_dir, reference) = scratch("reference");
    std::fs::write(&reference, b"now").unwrap();
    assert_eq!(
        find(
            &mount,
            m,
            &["-type", "f", "-newer", &reference.to_string_lossy()]
        ),
        Vec::<String>::new()
    );
    assert_eq!(find(&mount, m, &["-type", "f"]), sample_paths(""));

    // du: apparent sizes are exact (folders count 4096), block counts cover the content.
    let dirs = find(&mount, m, &["-type", "d"]).len() as u64;
    let out = run_ok(&mount, Command::new("du").arg("-sb").arg(m));
    let apparent: u64 = stdout(&out)
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(apparent, sample_bytes() + 4096 * dirs, "du -sb");
    let out = run_ok(&mount, Command::new("du").arg("-sk").arg(m));
    let kib: u64 = stdout(&out)
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        kib >= sample_bytes() / 1024,
        "du -sk counts the content ({kib} KiB)"
    );

    // df: no quota is known; the mount reports room to write.
    let out = run_ok(
        &mount,
        Command::new("df")
            .args(["-B1", "--output=fstype,avail"])
            .arg(m),
    );
    let text = stdout(&out);
    let line = text.lines().nth(1).expect("df prints the mount");
    let mut fields = line.split_whitespace();
    assert!(
        fields.next().is_some_and(|t| t.starts_with("fuse")),
        "a FUSE filesystem: {text}"
    );
    let avail: u64 = fields.next().unwrap().parse().unwrap();
    assert!(avail >= 1 << 40, "df shows room: {text}");
}
