//! Exact file sizes.
//!
//! Cloudify lists sizes only as rounded text ("1.000,00 KB"), but `stat`, `ls -l`, `tar` and
//! backup tools need the exact byte count, and the kernel cuts reads at the size it was told.
//! So a size is taken from, in order: a numeric `size` in the listing (exact by definition),
//! this module's on-disk cache, or a HEAD of the file's content URL. HEADs run in parallel
//! ([`HEAD_PARALLELISM`] at a time) right after a listing, before the listing is answered, so
//! `ls -l` never shows a rounded size. Results are kept in SQLite under the cache folder,
//! keyed by remote id and `updated_at`, so a remount needs no HEADs. Cloudify has no way to
//! change a stored file's bytes in place (a new upload gets a new id), so the key is safe.
//!
//! Some storage never tells a length: a private file is served only by `indirect_url`, a
//! streamed proxy that may answer without Content-Length and ignore Range. Such a file is
//! remembered as "length unknown" (by id and `updated_at`, for the life of the mount), so
//! neither a listing nor a `stat` asks again; it is read to the end of its body (the
//! filesystem opens it with direct I/O, so the kernel does not stop at the listing's rounded
//! size), and the length seen at the end of the body is recorded as its exact size.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::Mutex;
use rusqlite::{Connection, params};

use crate::api::{File, Id, Remote, SizeHint};

/// How many HEADs run at once after a listing.
pub const HEAD_PARALLELISM: usize = 16;

/// The on-disk size cache. Without a usable cache folder it works in memory only.
pub struct SizeCache {
    /// The SQLite connection; the lock is held for local disk work only, never across HTTP.
    db: Mutex<Option<Connection>>,
    /// Files (id, stamp) whose storage told no length. Taken alone, never with `db`.
    unknown: Mutex<HashSet<(Id, String)>>,
    /// Lengths learnt at the end of a body, kept here too so they hold without a disk cache.
    /// Taken alone, never with `db`.
    learnt: Mutex<HashMap<(Id, String), u64>>,
}

/// The cache key of a file: its id and its `updated_at` as text ("" when missing).
fn stamp(file: &File) -> String {
    file.updated_at
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

impl SizeCache {
    /// Opens (or creates) `sizes.sqlite3` in `dir`. Failure is logged and the cache then
    /// lives in memory only: sizes still come from HEADs, only the remount is slower.
    pub fn open(dir: &Path) -> SizeCache {
        let db = match Self::try_open(dir) {
            Ok(c) => Some(c),
            Err(e) => {
                log::warn!(
                    "size cache in {} unusable, sizes are fetched again on every mount: {e}",
                    dir.display()
                );
                None
            }
        };
        SizeCache::with_db(db)
    }

    /// A cache that keeps nothing on disk (tests).
    pub fn disabled() -> SizeCache {
        SizeCache::with_db(None)
    }

    fn with_db(db: Option<Connection>) -> SizeCache {
        SizeCache {
            db: Mutex::new(db),
            unknown: Mutex::new(HashSet::new()),
            learnt: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the storage of `file` (this version of it) was found to tell no length.
    pub fn length_unknown(&self, file: &File) -> bool {
        self.unknown
            .lock()
            .contains(&(file.id.clone(), stamp(file)))
    }

    fn mark_length_unknown(&self, file: &File) {
        log::debug!("file {}: storage tells no length; read to the end", file.id);
        self.unknown.lock().insert((file.id.clone(), stamp(file)));
    }

    /// Whether the size of `file` was learnt at the end of its body in this mount (the
    /// kernel may still hold the rounded size for a while).
    pub fn learnt_from_body(&self, file: &File) -> bool {
        self.learnt
            .lock()
            .contains_key(&(file.id.clone(), stamp(file)))
    }

    /// Records the length of `file` seen at the end of its body, as its exact size.
    pub fn learn_from_body(&self, file: &File, size: u64) {
        let key = (file.id.clone(), stamp(file));
        self.unknown.lock().remove(&key);
        self.learnt.lock().insert(key, size);
        self.put_many(&[(file, size)]);
    }

    fn try_open(dir: &Path) -> Result<Connection, Box<dyn std::error::Error>> {
        // The cache folder and the parents created for it are private (0700): staged
        // content of the library lives there too.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let conn = Connection::open(dir.join("sizes.sqlite3"))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS sizes (
                 id TEXT NOT NULL,
                 updated_at TEXT NOT NULL,
                 size INTEGER NOT NULL,
                 PRIMARY KEY (id, updated_at)
             );",
        )?;
        Ok(conn)
    }

    /// The cached sizes of those of `files` the cache knows.
    pub fn get_many(&self, files: &[&File]) -> HashMap<Id, u64> {
        let mut found: HashMap<Id, u64> = {
            let learnt = self.learnt.lock();
            files
                .iter()
                .filter_map(|f| Some((f.id.clone(), *learnt.get(&(f.id.clone(), stamp(f)))?)))
                .collect()
        };
        let guard = self.db.lock();
        let Some(conn) = guard.as_ref() else {
            return found;
        };
        let Ok(mut stmt) =
            conn.prepare_cached("SELECT size FROM sizes WHERE id = ?1 AND updated_at = ?2")
        else {
            return found;
        };
        for file in files {
            let size: Option<i64> = stmt
                .query_row(params![file.id.as_str(), stamp(file)], |r| r.get(0))
                .ok();
            if let Some(size) = size.and_then(|s| u64::try_from(s).ok()) {
                found.insert(file.id.clone(), size);
            }
        }
        found
    }

    /// Remembers sizes learnt from HEADs.
    pub fn put_many(&self, sizes: &[(&File, u64)]) {
        if sizes.is_empty() {
            return;
        }
        let mut guard = self.db.lock();
        let Some(conn) = guard.as_mut() else {
            return;
        };
        let result = (|| -> rusqlite::Result<()> {
            let tx = conn.transaction()?;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT OR REPLACE INTO sizes (id, updated_at, size) VALUES (?1, ?2, ?3)",
                )?;
                for (file, size) in sizes {
                    let size = i64::try_from(*size).unwrap_or(i64::MAX);
                    stmt.execute(params![file.id.as_str(), stamp(file), size])?;
                }
            }
            tx.commit()
        })();
        if let Err(e) = result {
            log::debug!("size cache: could not store {} sizes: {e}", sizes.len());
        }
    }
}

/// The exact sizes of `files`: numeric listing sizes, then the cache, then HEADs in
/// parallel. A file whose HEAD failed or gave no length is missing from the result.
pub fn resolve(remote: &dyn Remote, cache: &SizeCache, files: &[File]) -> HashMap<Id, u64> {
    let mut sizes: HashMap<Id, u64> = HashMap::new();
    for f in files {
        if let Some(SizeHint::Exact(n)) = f.size {
            sizes.insert(f.id.clone(), n);
        }
    }
    let unknown: Vec<&File> = files
        .iter()
        .filter(|f| !sizes.contains_key(&f.id))
        .collect();
    sizes.extend(cache.get_many(&unknown));

    let missing: Vec<&File> = unknown
        .into_iter()
        .filter(|f| !sizes.contains_key(&f.id) && !cache.length_unknown(f))
        .collect();
    let fetched = head_all(remote, cache, &missing);
    cache.put_many(&fetched);
    sizes.extend(fetched.into_iter().map(|(f, n)| (f.id.clone(), n)));
    sizes
}

/// HEADs every file, [`HEAD_PARALLELISM`] at a time; failures are logged at debug and left
/// out (the entry then answers with a short attribute timeout, and `getattr` tries again).
/// Files whose storage answered without a length are marked so in `cache`.
fn head_all<'a>(
    remote: &dyn Remote,
    cache: &SizeCache,
    files: &[&'a File],
) -> Vec<(&'a File, u64)> {
    if files.is_empty() {
        return Vec::new();
    }
    let next = AtomicUsize::new(0);
    let found = Mutex::new(Vec::with_capacity(files.len()));
    let workers = HEAD_PARALLELISM.min(files.len());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(file) = files.get(i) else { break };
                    match remote.content_length(file) {
                        Ok(Some(n)) => found.lock().push((*file, n)),
                        Ok(None) => cache.mark_length_unknown(file),
                        Err(e) => log::debug!("HEAD of file {} failed: {e}", file.id),
                    }
                }
            });
        }
    });
    found.into_inner()
}

/// The size of one file, by the same rules (used when a listing's HEAD failed).
pub fn resolve_one(
    remote: &dyn Remote,
    cache: &SizeCache,
    file: &File,
) -> Result<Option<u64>, crate::api::ApiError> {
    if let Some(SizeHint::Exact(n)) = file.size {
        return Ok(Some(n));
    }
    if let Some(&n) = cache.get_many(&[file]).get(&file.id) {
        return Ok(Some(n));
    }
    if cache.length_unknown(file) {
        return Ok(None);
    }
    let n = remote.content_length(file)?;
    match n {
        Some(n) => cache.put_many(&[(file, n)]),
        None => cache.mark_length_unknown(file),
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::testing::MemRemote;

    #[test]
    fn sizes_come_from_the_cache_on_a_second_mount() {
        let dir = tempfile::tempdir().unwrap();
        let remote = MemRemote::new();
        let a = remote.add_file(&Id::root(), "a", "txt", vec![7; 1234]);
        let b = remote.add_file(&Id::root(), "b", "txt", vec![7; 5]);
        let files = remote.list_folder_now(&Id::root()).files;

        let cache = SizeCache::open(dir.path());
        let sizes = resolve(&remote, &cache, &files);
        assert_eq!(sizes[&a], 1234);
        assert_eq!(sizes[&b], 5);
        assert_eq!(remote.heads(), 2);
        drop(cache);

        let cache = SizeCache::open(dir.path());
        let sizes = resolve(&remote, &cache, &files);
        assert_eq!(sizes[&a], 1234);
        assert_eq!(remote.heads(), 2, "no HEAD after a remount");
    }

    #[test]
    fn numeric_sizes_need_no_head() {
        let remote = MemRemote::new();
        remote.set_numeric_sizes(true);
        let a = remote.add_file(&Id::root(), "a", "txt", vec![1; 10]);
        let files = remote.list_folder_now(&Id::root()).files;
        let sizes = resolve(&remote, &SizeCache::disabled(), &files);
        assert_eq!(sizes[&a], 10);
        assert_eq!(remote.heads(), 0);
    }
}
