//! Real mounts of `cloudify-fs` against `cloudify-server` (both flavours) with an imported
//! tree: what `find`, `stat`, `cat`, `pread` and `ls -l` see, what they cost in requests,
//! and how the mount refuses what it cannot do.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::UNIX_EPOCH;

use cloudify_fs::api::{Client, ClientConfig, Id, Remote};
use cloudify_fs::fs::attr::server_time;
use cloudify_fs::fs::dir::DirListing;
use cloudify_fs::fs::inode::Node;
use common::files::{bytes, text_of_bytes};
use common::mount::{MountCommand, MountGuard};
use common::{ServerOptions, TEST_KEY, TestServer};
use sha2::{Digest, Sha256};

/// Files in the folder that `ls -l` is measured on.
const MANY: usize = 250;
const BIG_LEN: usize = 20 << 20;

/// The generated source tree, built once per test process.
fn source_tree() -> &'static Path {
    static TREE: OnceLock<tempfile::TempDir> = OnceLock::new();
    TREE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        let put = |rel: &str, data: Vec<u8>| {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, data).unwrap();
        };
        put("readme.txt", text_of_bytes(1, 1000));
        put("one.txt", b"x".to_vec());
        put("Docs/Reports/2026/q1.txt", text_of_bytes(2, 5000));
        put("Docs/Reports/summary.csv", b"a,b\n1,2\n".to_vec());
        put("Docs/notes.txt", text_of_bytes(3, 70_000));
        for i in 0..MANY {
            put(
                &format!("Many/file-{i:03}.txt"),
                text_of_bytes(100 + i as u64, 10 + i * 37),
            );
        }
        let mut big = b"PK\x03\x04".to_vec();
        big.extend(bytes(4, BIG_LEN - 4));
        put("Big/large.zip", big);
        put("Ünïcödé Ordner/日本語.txt", text_of_bytes(5, 300));
        put("Ünïcödé Ordner/Café crème.txt", text_of_bytes(6, 301));
        // Names the server makes unique with "-1", "-2" (equal ignoring case and extension).
        put("Dup/Report.txt", text_of_bytes(7, 10));
        put("Dup/report.txt", text_of_bytes(8, 11));
        put("Dup/report.csv", text_of_bytes(9, 12));
        dir
    })
    .path()
}

fn server(flavor: &str) -> TestServer {
    let tree = source_tree().to_str().unwrap().to_string();
    TestServer::start(ServerOptions::default().args(["--flavor", flavor, "--import", &tree]))
}

fn client(server: &TestServer) -> Client {
    let mut cfg = ClientConfig::new(&server.origin, TEST_KEY);
    cfg.rate_per_minute = None;
    Client::new(cfg).expect("client")
}

fn sha(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// What a walk shows: relative path -> (is_dir, size, mtime seconds).
type Tree = BTreeMap<String, (bool, u64, i64)>;

/// The tree as the mount shows it (`find` plus `stat`).
fn walk_mount(root: &Path) -> Tree {
    fn go(root: &Path, dir: &Path, out: &mut Tree) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let meta = std::fs::symlink_metadata(e.path()).unwrap();
            let rel = e
                .path()
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            out.insert(
                rel,
                (
                    meta.is_dir(),
                    if meta.is_dir() { 0 } else { meta.len() },
                    meta.mtime(),
                ),
            );
            if meta.is_dir() {
                go(root, &e.path(), out);
            }
        }
    }
    let mut out = Tree::new();
    go(root, root, &mut out);
    out
}

/// The tree as the API lists it, named by the mount's rules, sized by HEAD.
fn walk_api(c: &Client) -> Tree {
    fn go(c: &Client, folder: &Id, prefix: &str, out: &mut Tree) {
        let listing = c.list_folder(folder).unwrap();
        let named = DirListing::build(folder, listing, &HashMap::new());
        for e in &named.entries {
            let rel = format!("{prefix}{}", e.name);
            match &e.node {
                Node::Folder(f) => {
                    let t = server_time(f.updated_at, chrono_tz::UTC, UNIX_EPOCH);
                    out.insert(rel.clone(), (true, 0, secs(t)));
                    go(c, &f.id, &format!("{rel}/"), out);
                }
                Node::File(f) => {
                    let size = c.content_length(&f.file).unwrap().unwrap();
                    let t = server_time(f.file.updated_at, chrono_tz::UTC, UNIX_EPOCH);
                    out.insert(rel, (false, size, secs(t)));
                }
                other => panic!("unexpected node {other:?}"),
            }
        }
    }
    let mut out = Tree::new();
    go(c, &Id::root(), "", &mut out);
    out
}

fn secs(t: std::time::SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// Source files by relative path, with their hashes.
fn source_files() -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let root = source_tree();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, sha(&std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

fn tree_and_bytes_match_the_server_and_the_source(flavor: &str) {
    let server = server(flavor);
    let mount = MountGuard::mount(&server, &[]);
    let root = mount.path();

    let seen = walk_mount(root);
    let listed = walk_api(&client(&server));
    assert_eq!(
        seen, listed,
        "find/stat of the mount equals the API's listing"
    );

    // Every file's bytes equal the source: by path, except where the server renamed.
    let source = source_files();
    let mut mounted: BTreeMap<String, String> = BTreeMap::new();
    for (rel, (is_dir, size, _)) in &seen {
        if !is_dir {
            let data = std::fs::read(root.join(rel)).unwrap();
            assert_eq!(data.len() as u64, *size, "{rel}: size read equals stat");
            mounted.insert(rel.clone(), sha(&data));
        }
    }
    for (rel, hash) in &source {
        if !rel.starts_with("Dup/") {
            assert_eq!(mounted.get(rel), Some(hash), "{rel}");
        }
    }
    let dup_hashes = |m: &BTreeMap<String, String>| {
        let mut v: Vec<String> = m
            .iter()
            .filter(|(k, _)| k.starts_with("Dup/"))
            .map(|(_, h)| h.clone())
            .collect();
        v.sort();
        v
    };
    assert_eq!(dup_hashes(&mounted), dup_hashes(&source));
    assert_eq!(mounted.len(), source.len());

    // Random-offset reads of the big file equal the source.
    let big = std::fs::read(source_tree().join("Big/large.zip")).unwrap();
    let f = std::fs::File::open(root.join("Big/large.zip")).unwrap();
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    for _ in 0..300 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let off = (x % BIG_LEN as u64) as usize;
        let len = ((x >> 40) % 300_000) as usize + 1;
        let mut buf = vec![0u8; len];
        let n = f.read_at(&mut buf, off as u64).unwrap();
        let end = (off + len).min(BIG_LEN);
        assert_eq!(n, end - off, "short read at {off}+{len}");
        assert!(buf[..n] == big[off..end], "bytes differ at {off}+{len}");
    }
}

fn api_listings(stats: &serde_json::Value) -> u64 {
    stats["api"]["list_folders"].as_u64().unwrap() + stats["api"]["list_files"].as_u64().unwrap()
}

fn ls_l(dir: &Path) -> usize {
    let out = Command::new("ls").arg("-l").arg(dir).output().expect("ls");
    assert!(
        out.status.success(),
        "ls -l: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).lines().count()
}

fn ls_l_costs_one_listing_and_no_request_per_entry(flavor: &str) {
    let server = server(flavor);
    let c = client(&server);
    let root_listing = c.list_folder(&Id::root()).unwrap();
    let many = root_listing
        .folders
        .iter()
        .find(|f| f.name == "Many")
        .unwrap()
        .id
        .clone();
    server.reset_stats();
    assert_eq!(c.list_folder(&many).unwrap().files.len(), MANY);
    let one_listing = api_listings(&server.stats());
    assert!(one_listing >= 1);

    let cache = tempfile::tempdir().unwrap();
    let cache_arg = format!("--cache-dir={}", cache.path().display());
    let mut mount = MountCommand::new(&server.origin)
        .args(&[&cache_arg])
        .mount();
    let dir: PathBuf = mount.path().join("Many");
    assert!(dir.is_dir());

    server.reset_stats();
    assert_eq!(ls_l(&dir), MANY + 1);
    let s = server.stats();
    assert_eq!(
        api_listings(&s),
        one_listing,
        "one listing (all pages) of the folder"
    );
    assert_eq!(
        s["api"]["total"].as_u64().unwrap(),
        one_listing,
        "no API request per entry"
    );
    // Sizes below 1 KiB are listed in whole bytes ("35,00 B"), which is exact.
    let sized = (0..MANY).filter(|i| 10 + i * 37 >= 1024).count() as u64;
    assert_eq!(
        s["storage"]["head"].as_u64().unwrap(),
        sized,
        "one HEAD per file of 1 KiB or more"
    );

    server.reset_stats();
    assert_eq!(ls_l(&dir), MANY + 1);
    let s = server.stats();
    assert_eq!(
        s["api"]["total"].as_u64().unwrap(),
        0,
        "a second listing within the TTL"
    );
    assert_eq!(s["storage"]["head"].as_u64().unwrap(), 0);
    assert!(mount.unmount().success());

    // A remount with the same cache knows every size: no HEAD at all.
    let mount = MountCommand::new(&server.origin)
        .args(&[&cache_arg])
        .mount();
    let dir = mount.path().join("Many");
    assert!(dir.is_dir());
    server.reset_stats();
    assert_eq!(ls_l(&dir), MANY + 1);
    let s = server.stats();
    assert_eq!(api_listings(&s), one_listing);
    assert_eq!(
        s["storage"]["head"].as_u64().unwrap(),
        0,
        "sizes come from the cache"
    );
}

fn a_key_without_rights_gives_eacces(flavor: &str) {
    let server = server(flavor);
    let mount = MountGuard::mount(&server, &[]);
    server.control(serde_json::json!({ "revoke_key": TEST_KEY }));
    let err = std::fs::read_dir(mount.path().join("Docs")).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::EACCES), "{err}");
}

fn read_only_refuses_changes_with_erofs(flavor: &str) {
    let server = server(flavor);
    let mount = MountGuard::mount(&server, &["--read-only"]);
    let root = mount.path();
    let erofs = |r: std::io::Result<()>, what: &str| {
        let err = r.expect_err(what);
        assert_eq!(err.raw_os_error(), Some(libc::EROFS), "{what}: {err}");
    };
    erofs(std::fs::write(root.join("new.txt"), b"x"), "create");
    erofs(
        std::fs::OpenOptions::new()
            .append(true)
            .open(root.join("readme.txt"))
            .map(drop),
        "open for writing",
    );
    erofs(std::fs::create_dir(root.join("NewFolder")), "mkdir");
    erofs(std::fs::remove_file(root.join("readme.txt")), "unlink");
    erofs(std::fs::remove_dir(root.join("Dup")), "rmdir");
    erofs(
        std::fs::rename(root.join("readme.txt"), root.join("r.txt")),
        "rename",
    );
    assert_eq!(
        std::fs::read(root.join("one.txt")).unwrap(),
        b"x",
        "reads still work"
    );
}

macro_rules! both_flavours {
    ($($name:ident),* $(,)?) => {
        mod flavor_2026 {
            $(#[test] fn $name() { super::$name("2026") })*
        }
        mod flavor_1_2_8 {
            $(#[test] fn $name() { super::$name("1.2.8") })*
        }
    };
}

both_flavours!(
    tree_and_bytes_match_the_server_and_the_source,
    ls_l_costs_one_listing_and_no_request_per_entry,
    a_key_without_rights_gives_eacces,
    read_only_refuses_changes_with_erofs,
);
