//! What writes cost on the wire, through real mounts: a copy of many small files into a new
//! folder makes one upload per file and a few other calls for the whole copy (no listing per
//! file, no HEAD), and the copied files then show their exact sizes without any request,
//! in this mount and after a remount (the size cache).

mod common;

use std::path::Path;
use std::process::Command;

use common::TestServer;
use common::files::text;
use common::mount::MountGuard;

const FILES: usize = 20;

fn api(stats: &serde_json::Value, key: &str) -> u64 {
    stats["api"][key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} in {stats}"))
}

fn heads(stats: &serde_json::Value) -> u64 {
    stats["storage"]["head"].as_u64().expect("storage.head")
}

/// `FILES` text files of 1 to 4 KiB (sizes not multiples of 1 KiB, so the listing's rounded
/// text is not the exact size) in `dir/small`.
fn small_files(dir: &Path) -> Vec<(String, usize)> {
    let small = dir.join("small");
    std::fs::create_dir(&small).unwrap();
    (0..FILES)
        .map(|i| {
            let name = format!("note{i:02}.txt");
            let len = 1000 + 157 * i;
            std::fs::write(small.join(&name), text(i as u64, len)).unwrap();
            (name, len)
        })
        .collect()
}

/// The sizes `stat` shows for `files` in `dir`, checked against the expected ones.
fn assert_exact_sizes(dir: &Path, files: &[(String, usize)], mount: &MountGuard) {
    for (name, len) in files {
        let meta = std::fs::metadata(dir.join(name))
            .unwrap_or_else(|e| panic!("stat {name}: {e}; log:\n{}", mount.log()));
        assert_eq!(meta.len(), *len as u64, "size of {name}");
    }
}

#[test]
fn cp_r_of_small_files_makes_one_upload_each_and_no_head() {
    let src = tempfile::tempdir().unwrap();
    let files = small_files(src.path());
    let server = TestServer::default_server();
    let cache = tempfile::tempdir().unwrap();
    let cache_arg = format!("--cache-dir={}", cache.path().join("c").display());
    let mut mount = MountGuard::mount(&server, &[cache_arg.as_str()]);

    server.reset_stats();
    let status = Command::new("cp")
        .arg("-r")
        .arg(src.path().join("small"))
        .arg(mount.path())
        .status()
        .unwrap();
    assert!(status.success(), "cp -r; log:\n{}", mount.log());
    let stats = server.stats();
    assert_eq!(
        api(&stats, "upload"),
        FILES as u64,
        "one upload per file: {stats}"
    );
    assert_eq!(heads(&stats), 0, "no HEAD while copying: {stats}");
    let others = api(&stats, "total") - api(&stats, "upload");
    // The root's listing (before and after the mkdir), the mkdir, the new folder's listing.
    assert!(
        others <= 5,
        "{others} calls besides the uploads, for the whole copy (not per file): {stats}"
    );

    // The copied files show their exact sizes at once: from the uploads, not from HEADs.
    server.reset_stats();
    assert_exact_sizes(&mount.path().join("small"), &files, &mount);
    let stats = server.stats();
    assert_eq!(heads(&stats), 0, "no HEAD for sizes the copy knew: {stats}");
    assert!(
        api(&stats, "total") <= 1,
        "at most a listing for the sizes: {stats}"
    );
    mount.unmount();

    // After a remount the sizes come from the size cache: still no HEAD.
    let fresh = MountGuard::mount(&server, &[cache_arg.as_str()]);
    server.reset_stats();
    assert_exact_sizes(&fresh.path().join("small"), &files, &fresh);
    let stats = server.stats();
    assert_eq!(
        heads(&stats),
        0,
        "sizes from the size cache after a remount: {stats}"
    );
    for (name, len) in &files {
        let back = std::fs::read(fresh.path().join("small").join(name)).unwrap();
        assert_eq!(
            back,
            text(
                files.iter().position(|f| &f.0 == name).unwrap() as u64,
                *len
            )
        );
    }
}

#[test]
fn a_copy_into_a_folder_lists_it_once() {
    // A folder that holds files already: each new file's lookup and create are answered
    // from its listing, which every upload updates instead of fetching it again.
    let src = tempfile::tempdir().unwrap();
    let files = small_files(src.path());
    let server = TestServer::default_server();
    let client = server.client();
    let folder = client.mkdir("0", "Existing");
    let folder_id = folder["id"].as_str().expect("folder id").to_string();
    for i in 0..3 {
        client.put_file(
            Some(&folder_id),
            &format!("old{i}.txt"),
            &text(100 + i, 500),
        );
    }
    let mut mount = MountGuard::mount(&server, &[]);
    let dest = mount.path().join("Existing");
    assert_eq!(std::fs::read_dir(&dest).unwrap().count(), 3);

    server.reset_stats();
    for (name, _) in &files {
        let status = Command::new("cp")
            .arg(src.path().join("small").join(name))
            .arg(dest.join(name))
            .status()
            .unwrap();
        assert!(status.success(), "cp {name}; log:\n{}", mount.log());
    }
    let stats = server.stats();
    assert_eq!(api(&stats, "upload"), FILES as u64, "{stats}");
    assert_eq!(heads(&stats), 0, "{stats}");
    assert!(
        api(&stats, "total") - api(&stats, "upload") <= 2,
        "the folder is not listed again per file: {stats}"
    );
    assert_eq!(std::fs::read_dir(&dest).unwrap().count(), 3 + FILES);
    assert_exact_sizes(&dest, &files, &mount);
    mount.unmount();
}
