//! What listings cost through a real mount: `ls -f`, `os.listdir` and `find` are answered
//! from the listing's pages alone (no HEAD), `ls -l` adds one HEAD per file of 1 KiB or more
//! (smaller sizes are listed exactly) in one batch and then shows exact sizes, and a file read
//! right after a listing gives all of its bytes even when the listing's rounded size is
//! smaller than the real one.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use cloudify_fs::api::{Client, ClientConfig, Id, Remote};
use common::files::text;
use common::mount::MountGuard;
use common::{ServerOptions, TestServer};
use sha2::{Digest, Sha256};

/// Files in the flat folder.
const MANY: usize = 250;
/// Folders of the nested tree: `Tree/dNN/sNN`, each with [`TREE_FILES`] files.
const TREE_DIRS: usize = 4;
const TREE_SUBDIRS: usize = 3;
const TREE_FILES: usize = 5;
/// Sizes the server rounds down ("1,00 KB" for 1,029 bytes, "2,86 MB" for 3,000,003), each
/// in a folder of its own (`Odd/N/roundedN.txt`), so that each is read with nothing known.
const ROUNDED_DOWN: [usize; 3] = [1029, 3_000_003, 1028];

/// The source tree: relative path -> bytes.
fn make_tree(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for i in 0..MANY {
        files.push((format!("Many/f{i:03}.txt"), text(i as u64, 10 + i * 41)));
    }
    for d in 0..TREE_DIRS {
        for s in 0..TREE_SUBDIRS {
            for f in 0..TREE_FILES {
                let seed = (1000 + d * 100 + s * 10 + f) as u64;
                files.push((format!("Tree/d{d}/s{s}/t{f}.txt"), text(seed, 100 + f)));
            }
        }
    }
    for (i, len) in ROUNDED_DOWN.iter().enumerate() {
        files.push((format!("Odd/{i}/rounded{i}.txt"), text(7 + i as u64, *len)));
    }
    for (rel, data) in &files {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
    files
}

fn server_of(tree: &Path) -> TestServer {
    let tree = tree.to_str().unwrap().to_string();
    TestServer::start(ServerOptions::default().args(["--import", &tree]))
}

fn heads(server: &TestServer) -> u64 {
    server.stats()["storage"]["head"].as_u64().unwrap()
}

fn listings(server: &TestServer) -> u64 {
    let s = server.stats();
    s["api"]["list_folders"].as_u64().unwrap() + s["api"]["list_files"].as_u64().unwrap()
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn ls_f_and_listdir_make_no_head_and_ls_l_then_one_per_file() {
    let src = tempfile::tempdir().unwrap();
    let files = make_tree(src.path());
    let server = server_of(src.path());
    let mount = MountGuard::mount(&server, &[]);
    let many = mount.path().join("Many");

    server.reset_stats();
    let names = run(Command::new("ls").arg("-f").arg(&many));
    assert_eq!(names.lines().count(), MANY + 2, "{names}");
    assert_eq!(heads(&server), 0, "ls -f asks for no size");
    assert!(listings(&server) >= 1);

    let listed = run(Command::new("python3")
        .arg("-c")
        .arg("import os, sys; print(len(os.listdir(sys.argv[1])))")
        .arg(&many));
    assert_eq!(listed.trim(), MANY.to_string());
    assert_eq!(heads(&server), 0, "neither does os.listdir");

    let long = run(Command::new("ls").arg("-l").arg(&many));
    assert_eq!(long.lines().count(), MANY + 1);
    // A size below 1 KiB is listed in whole bytes ("35,00 B"), which is exact.
    let asked = files
        .iter()
        .filter(|(rel, data)| rel.starts_with("Many/") && data.len() >= 1024)
        .count() as u64;
    assert!(asked > 0 && asked < MANY as u64);
    assert_eq!(
        heads(&server),
        asked,
        "ls -l: one HEAD per file of 1 KiB or more"
    );
    let sizes: std::collections::HashMap<String, u64> = long
        .lines()
        .skip(1)
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (cols[8].to_string(), cols[4].parse().unwrap())
        })
        .collect();
    for (rel, data) in files.iter().filter(|(rel, _)| rel.starts_with("Many/")) {
        let name = rel.trim_start_matches("Many/");
        assert_eq!(
            sizes.get(name),
            Some(&(data.len() as u64)),
            "ls -l of {name}"
        );
    }

    for (rel, data) in files.iter().filter(|(rel, _)| rel.starts_with("Many/")) {
        let meta = std::fs::metadata(mount.path().join(rel)).unwrap();
        assert_eq!(meta.len(), data.len() as u64, "stat of {rel}");
    }
    assert_eq!(heads(&server), asked, "no file is asked for twice");

    // No extended attributes: the mount tells the kernel so once (ENOSYS), and the kernel
    // answers ENOTSUP itself from then on instead of asking for every entry `ls -l` shows.
    let xattrs = run(Command::new("python3")
        .arg("-c")
        .arg(
            "import errno, os, sys\n\
             for name in ('user.a', 'security.selinux', 'user.a'):\n    \
             try: os.getxattr(sys.argv[1], name); print('a value')\n    \
             except OSError as e: print(errno.errorcode[e.errno])\n",
        )
        .arg(mount.path().join(&files[0].0)));
    assert_eq!(xattrs, "ENOTSUP\nENOTSUP\nENOTSUP\n");
}

#[test]
fn find_over_a_nested_tree_makes_one_listing_per_folder_and_no_head() {
    let src = tempfile::tempdir().unwrap();
    let files = make_tree(src.path());
    let server = server_of(src.path());
    let mount = MountGuard::mount(&server, &[]);
    let tree = mount.path().join("Tree");
    assert!(tree.is_dir());

    server.reset_stats();
    let found = run(Command::new("find").arg(&tree));
    let folders = 1 + TREE_DIRS + TREE_DIRS * TREE_SUBDIRS;
    let tree_files = files.iter().filter(|(r, _)| r.starts_with("Tree/")).count();
    assert_eq!(found.lines().count(), folders + tree_files, "{found}");
    assert_eq!(heads(&server), 0, "find asks for no size");
    let s = server.stats();
    assert_eq!(
        listings(&server),
        folders as u64,
        "one listing per folder: {s}"
    );
    assert_eq!(s["api"]["total"].as_u64().unwrap(), folders as u64);
}

/// SHA-256 of the bytes the command printed, as hex.
fn sha_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

#[test]
fn a_file_read_right_after_ls_f_gives_all_its_bytes_past_the_rounded_size() {
    let src = tempfile::tempdir().unwrap();
    let files = make_tree(src.path());
    let server = server_of(src.path());
    let mount = MountGuard::mount(&server, &[]);
    let odd = mount.path().join("Odd");
    let sources: Vec<&(String, Vec<u8>)> = files
        .iter()
        .filter(|(r, _)| r.starts_with("Odd/"))
        .collect();
    assert_eq!(sources.len(), ROUNDED_DOWN.len());

    // The listing really is smaller than each file: what the kernel holds after `ls -f`.
    let mut cfg = ClientConfig::new(&server.origin, common::TEST_KEY);
    cfg.rate_per_minute = None;
    let client = Client::new(cfg).unwrap();
    let odd_id = client.list_folder(&Id::root()).unwrap().folders;
    let odd_id = &odd_id.iter().find(|f| f.name == "Odd").unwrap().id;
    for folder in client.list_folder(odd_id).unwrap().folders {
        let listed = client.list_folder(&folder.id).unwrap().files;
        let i: usize = folder.name.parse().unwrap();
        let hint = listed[0].size.expect("a size").bytes();
        assert!(
            hint < ROUNDED_DOWN[i] as u64,
            "{hint} for {}",
            ROUNDED_DOWN[i]
        );
    }

    // sha256sum (fstat, then reads), right after the listing.
    let (rel, data) = sources[0];
    run(Command::new("ls").arg("-f").arg(odd.join("0")));
    let sum = run(Command::new("sha256sum").arg(mount.path().join(rel)));
    assert_eq!(
        sum.split_whitespace().next(),
        Some(sha_hex(data).as_str()),
        "{rel}"
    );

    // Plain reads without a stat first: the kernel asks for the size again before it stops
    // at the rounded one.
    let script = "import os, sys\n\
        fd = os.open(sys.argv[1], os.O_RDONLY)\n\
        out = bytearray()\n\
        while True:\n    b = os.read(fd, 65536)\n    if not b: break\n    out += b\n\
        sys.stdout.buffer.write(out)\n";
    for (i, (rel, data)) in sources.iter().enumerate().skip(1) {
        run(Command::new("ls").arg("-f").arg(odd.join(i.to_string())));
        let out = Command::new("python3")
            .arg("-c")
            .arg(script)
            .arg(mount.path().join(rel))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout.len(), data.len(), "{rel}: every byte");
        assert!(out.stdout == *data, "{rel}: the same bytes");
        let meta = std::fs::metadata(mount.path().join(rel)).unwrap();
        let len = data.len() as u64;
        assert_eq!(
            (meta.len(), meta.blocks()),
            (len, len.div_ceil(512)),
            "{rel}"
        );
    }
}
