//! The HTTP client against `cloudify-server`, in both flavours: listings with paging (2026)
//! and without (1.2.8), downloads, exact lengths, writes and refusals.

mod common;

use std::io::Read;
use std::path::Path;

use cloudify_fs::api::{ApiError, Client, ClientConfig, File, Id, Listing, Remote};
use common::{ServerOptions, TEST_KEY, TestServer};
use serde_json::Value;

/// The library every test imports: nested folders, 250 files in one folder, a 1-byte file,
/// a 2 MiB file and a Unicode folder name.
fn make_tree(root: &Path) -> Vec<u8> {
    let mkdir = |p: &Path| std::fs::create_dir_all(p).expect("mkdir");
    let write = |p: &Path, bytes: &[u8]| std::fs::write(p, bytes).expect("write");
    mkdir(&root.join("Docs/Sub"));
    write(&root.join("Docs/Sub/note.txt"), b"a note\n");
    mkdir(&root.join("Many"));
    for i in 0..250 {
        write(
            &root.join(format!("Many/file-{i:03}.txt")),
            format!("file {i}\n").as_bytes(),
        );
    }
    mkdir(&root.join("Ünïcödé Ordner"));
    write(&root.join("one.txt"), b"x");
    let big: Vec<u8> = (0..2 * 1024 * 1024 / 32)
        .flat_map(|i| format!("line {i:>10} of the big file\n").into_bytes())
        .collect();
    write(&root.join("big.txt"), &big);
    big
}

struct Library {
    server: TestServer,
    client: Client,
    big: Vec<u8>,
    _tree: tempfile::TempDir,
}

fn library(flavor: &str) -> Library {
    let tree = tempfile::tempdir().expect("temp dir");
    let big = make_tree(tree.path());
    let server = TestServer::start(
        ServerOptions::default()
            .args(["--flavor", flavor, "--import"])
            .arg(tree.path().to_string_lossy()),
    );
    let client = client_with_key(&server, TEST_KEY);
    Library {
        server,
        client,
        big,
        _tree: tree,
    }
}

fn client_with_key(server: &TestServer, key: &str) -> Client {
    let mut config = ClientConfig::new(server.origin.clone(), key);
    config.rate_per_minute = None;
    Client::new(config).expect("client")
}

fn folder_named(listing: &Listing, name: &str) -> Id {
    listing
        .folders
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no folder {name:?} in {listing:?}"))
        .id
        .clone()
}

fn file_named<'a>(listing: &'a Listing, name: &str) -> &'a File {
    listing
        .files
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("no file {name:?} in {listing:?}"))
}

fn list_calls(server: &TestServer) -> (u64, u64) {
    let stats = server.stats();
    let count = |key: &str| stats["api"][key].as_u64().unwrap_or(0);
    (count("list_folders"), count("list_files"))
}

fn read_all(client: &Client, file: &File, offset: u64, end: Option<u64>) -> (u64, Vec<u8>) {
    let mut download = client.download(file, offset, end).expect("download");
    let mut bytes = Vec::new();
    download.body.read_to_end(&mut bytes).expect("body");
    (download.start, bytes)
}

fn check_listings_and_reads(flavor: &str, expected_list_calls: (u64, u64)) {
    let lib = library(flavor);
    let root = lib.client.list_folder(&Id::root()).expect("root listing");
    let mut folder_names: Vec<&str> = root.folders.iter().map(|f| f.name.as_str()).collect();
    folder_names.sort();
    assert_eq!(folder_names, ["Docs", "Many", "Ünïcödé Ordner"]);
    let one = file_named(&root, "one");
    assert_eq!(one.extension().as_deref(), Some("txt"));

    let docs = lib
        .client
        .list_folder(&folder_named(&root, "Docs"))
        .expect("Docs");
    let sub = lib
        .client
        .list_folder(&folder_named(&docs, "Sub"))
        .expect("Sub");
    assert_eq!(sub.files.len(), 1);
    assert_eq!(read_all(&lib.client, &sub.files[0], 0, None).1, b"a note\n");

    let many_id = folder_named(&root, "Many");
    let before = list_calls(&lib.server);
    let many = lib.client.list_folder(&many_id).expect("Many");
    let after = list_calls(&lib.server);
    assert_eq!(many.files.len(), 250);
    let mut names: Vec<&str> = many.files.iter().map(|f| f.name.as_str()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), 250, "no file listed twice");
    assert_eq!(
        (after.0 - before.0, after.1 - before.1),
        expected_list_calls,
        "listing requests (folders, files) for 250 files"
    );

    // Bytes: whole, from an offset, a bounded range, and the exact length.
    let big = file_named(&root, "big");
    let len = lib.big.len() as u64;
    assert_eq!(lib.client.content_length(big).expect("length"), Some(len));
    assert_eq!(lib.client.content_length(one).expect("length"), Some(1));
    assert_eq!(read_all(&lib.client, big, 0, None).1, lib.big);
    let (start, tail) = read_all(&lib.client, big, 1_000_001, None);
    assert_eq!(lib.big[start as usize..], tail[..]);
    let (start, window) = read_all(&lib.client, big, 12_345, Some(12_345 + 4096));
    let skip = (12_345 - start) as usize;
    assert_eq!(window[skip..skip + 4096], lib.big[12_345..12_345 + 4096]);
    let (_, past_end) = read_all(&lib.client, one, 1, None);
    assert!(past_end.is_empty() || past_end == b"x", "{past_end:?}");
}

#[test]
fn flavour_2026_lists_with_include_files_and_pages() {
    // 250 files at 100 a page: pages 1, 2 and the short page 3, no /media/files.
    check_listings_and_reads("2026", (3, 0));
}

#[test]
fn flavour_1_2_8_lists_folders_and_files_separately() {
    // Page 1 of folders is short (none); page 2 of files repeats page 1 and ends it.
    check_listings_and_reads("1.2.8", (1, 2));
}

#[test]
fn writes_and_refusals() {
    let lib = library("2026");
    let client = &lib.client;

    let folder = client
        .create_folder(&Id::root(), "Reports")
        .expect("create");
    assert_eq!(folder.name, "Reports");
    let again = client
        .create_folder(&Id::root(), "reports")
        .expect("create again");
    assert_ne!(again.id, folder.id);
    assert!(
        again.name.ends_with("-1"),
        "server renames equal names: {}",
        again.name
    );
    assert_eq!(client.get_folder(&folder.id).expect("get").name, "Reports");
    let error = client
        .create_folder(&Id::root(), "bad.name")
        .expect_err("dot");
    assert!(matches!(error, ApiError::Invalid { .. }), "{error}");

    let staged = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(staged.path(), b"quarterly numbers\n").expect("write");
    let uploaded = client
        .upload_file(&folder.id, "Q1 summary.txt", staged.path())
        .expect("upload");
    assert_eq!(uploaded.name, "Q1 summary");
    assert_eq!(uploaded.extension().as_deref(), Some("txt"));
    let listing = client.list_folder(&folder.id).expect("listing");
    assert_eq!(listing.files.len(), 1);
    assert_eq!(
        read_all(client, &listing.files[0], 0, None).1,
        b"quarterly numbers\n"
    );

    let error = client
        .upload_file(&folder.id, "tool.exe", staged.path())
        .expect_err("type");
    assert!(matches!(error, ApiError::TypeNotAllowed { .. }), "{error}");
    let empty = tempfile::NamedTempFile::new().expect("temp file");
    let error = client
        .upload_file(&folder.id, "empty.txt", empty.path())
        .expect_err("empty");
    assert!(
        matches!(
            error,
            ApiError::TypeNotAllowed { .. } | ApiError::Refused { .. }
        ),
        "{error}"
    );

    client.trash_file(&uploaded.id).expect("trash");
    assert!(
        client
            .list_folder(&folder.id)
            .expect("listing")
            .files
            .is_empty()
    );
    let error = client
        .trash_file(&uploaded.id)
        .expect_err("already trashed");
    assert!(matches!(error, ApiError::Refused { .. }), "{error}");

    client.delete_folder(&folder.id).expect("delete");
    let error = client.get_folder(&folder.id).expect_err("gone");
    assert!(matches!(error, ApiError::NotFound { .. }), "{error}");
    client.trash_folder(&again.id).expect("trash folder");
}

#[test]
fn a_wrong_key_is_refused_and_never_echoed() {
    let server = TestServer::default_server();
    let client = client_with_key(&server, "WRONGKEY1234");
    let error = client.list_folder(&Id::root()).expect_err("refused");
    assert!(matches!(error, ApiError::Unauthorized { .. }), "{error}");
    assert!(!error.to_string().contains("WRONGKEY1234"));
    let stats: Value = server.stats();
    assert_eq!(
        stats["api"]["total"].as_u64(),
        Some(1),
        "auth refusals are not retried"
    );
}
