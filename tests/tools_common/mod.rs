//! Shared pieces of the end-to-end tool tests (`tests/tools_*.rs`): a small sample tree of
//! files the server accepts, running a tool with its output kept for the failure message,
//! and what the server holds (live and trashed names, read from its SQLite file), so a test
//! can say that a tool left no temporary names behind.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::common::TestServer;
use super::common::files::{bytes, text_of_bytes};
use super::common::mount::MountGuard;

/// `magic` followed by binary bytes up to `len`.
pub fn with_magic(magic: &[u8], seed: u64, len: usize) -> Vec<u8> {
    let mut out = magic.to_vec();
    out.extend(bytes(seed, len - magic.len()));
    out
}

/// The sample tree: (relative path, content). Stems are unique within each folder, so the
/// server keeps every name as it is; folder names follow Cloudify's rule (no dots).
pub fn sample_files() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("top.txt", text_of_bytes(1, 2_000)),
        ("table.csv", b"name,count\nalpha,1\nbeta,2\n".to_vec()),
        ("one.txt", b"x".to_vec()),
        ("Docs/report.pdf", with_magic(b"%PDF-1.4\n", 2, 300_000)),
        ("Docs/notes.txt", text_of_bytes(3, 70_000)),
        (
            "Docs/Deep Folder/archive.zip",
            with_magic(b"PK\x03\x04", 4, 2 << 20),
        ),
        ("Docs/Deep Folder/list.txt", text_of_bytes(5, 500)),
        (
            "Media/tone.wav",
            with_magic(b"RIFF\0\0\0\0WAVEfmt ", 6, 1 << 20),
        ),
        ("Media/clip.mp3", with_magic(b"ID3\x03\0", 7, 300_000)),
        ("Media/Ünïcödé Ordner/café.txt", text_of_bytes(8, 4_000)),
    ]
}

/// Total bytes of [`sample_files`].
pub fn sample_bytes() -> u64 {
    sample_files().iter().map(|(_, d)| d.len() as u64).sum()
}

/// Writes the sample tree below a new temporary folder and returns it.
pub fn sample_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    write_files(dir.path(), &sample_files());
    dir
}

pub fn write_files(root: &Path, files: &[(&str, Vec<u8>)]) {
    for (rel, data) in files {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, data).unwrap();
    }
}

/// Runs `cmd` and returns its output (the command panics only when it cannot start).
pub fn output(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Like [`output`], and asserts success; the panic message holds the command, its output
/// and the mount's log.
pub fn run_ok(mount: &MountGuard, cmd: &mut Command) -> Output {
    let out = output(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout:\n{}\nstderr:\n{}\nmount log:\n{}",
        out.status,
        stdout(&out),
        stderr(&out),
        mount.log()
    );
    out
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts `diff -r a b` finds no difference.
pub fn assert_same_tree(a: &Path, b: &Path) {
    let out = output(Command::new("diff").arg("-r").arg(a).arg(b));
    assert!(
        out.status.success(),
        "diff -r {} {}:\n{}{}",
        a.display(),
        b.display(),
        stdout(&out),
        stderr(&out)
    );
}

/// One entry the server holds, live or trashed.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Held {
    /// Path of names from the root: folder names, and a file's `name` + "." + extension of
    /// its `basename`.
    pub path: String,
    pub folder: bool,
    pub trashed: bool,
}

/// Every folder and file the server holds, trashed ones included, read from its SQLite file
/// (the API cannot list the trash).
pub fn held(server: &TestServer) -> Vec<Held> {
    let db = server.data_dir.join("cloudify.sqlite3");
    let conn =
        rusqlite::Connection::open_with_flags(&db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open the server's database");
    let mut folders = std::collections::HashMap::new();
    let mut stmt = conn
        .prepare("SELECT id, parent_id, name, deleted_at IS NOT NULL FROM folders")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, bool>(3)?,
            ))
        })
        .unwrap();
    for row in rows {
        let (id, parent, name, trashed) = row.unwrap();
        folders.insert(id, (parent, name, trashed));
    }
    let path_of = |mut id: String| {
        let mut parts = Vec::new();
        while let Some((parent, name, _)) = folders.get(&id) {
            parts.push(name.clone());
            id = parent.clone();
        }
        parts.reverse();
        parts
    };
    let mut out = Vec::new();
    for (id, (_, _, trashed)) in &folders {
        out.push(Held {
            path: path_of(id.clone()).join("/"),
            folder: true,
            trashed: *trashed,
        });
    }
    let mut stmt = conn
        .prepare("SELECT folder_id, name, basename, deleted_at IS NOT NULL FROM files")
        .unwrap();
    let rows = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, bool>(3)?,
            ))
        })
        .unwrap();
    for row in rows {
        let (folder, name, basename, trashed) = row.unwrap();
        let mut parts = path_of(folder);
        let ext = basename
            .rsplit_once('.')
            .map(|(_, e)| format!(".{e}"))
            .unwrap_or_default();
        parts.push(format!("{name}{ext}"));
        out.push(Held {
            path: parts.join("/"),
            folder: false,
            trashed,
        });
    }
    out.sort();
    out
}

/// Paths of the live files the server holds.
pub fn live_files(server: &TestServer) -> Vec<String> {
    held(server)
        .into_iter()
        .filter(|h| !h.folder && !h.trashed)
        .map(|h| h.path)
        .collect()
}

/// Paths of every name the server ever got (live or trashed), files and folders.
pub fn all_names(server: &TestServer) -> Vec<String> {
    held(server).into_iter().map(|h| h.path).collect()
}

/// The relative file paths of [`sample_files`] below `prefix` ("" for the root), sorted.
pub fn sample_paths(prefix: &str) -> Vec<String> {
    let mut v: Vec<String> = sample_files()
        .iter()
        .map(|(p, _)| {
            if prefix.is_empty() {
                p.to_string()
            } else {
                format!("{prefix}/{p}")
            }
        })
        .collect();
    v.sort();
    v
}

/// A fresh temporary folder's path joined with `name` (the folder lives as long as the
/// returned guard).
pub fn scratch(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let p = dir.path().join(name);
    (dir, p)
}
