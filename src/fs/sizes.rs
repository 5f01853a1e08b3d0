//! Exact file sizes.
//!
//! Cloudify lists sizes only as rounded text ("1.000,00 KB"), but `stat`, `ls -l`, `tar` and
//! backup tools need the exact byte count, and the kernel cuts reads at the size it was told.
//! So a size is taken from, in order: a numeric `size` in the listing (exact by definition),
//! or one below 1 KiB, which Botble writes in whole bytes ("35,00 B"; not for raster images,
//! which the server may re-encode after it recorded their size, see [`crate::api::File`]),
//! this module's cache (sizes learnt in this mount, then SQLite under the cache folder, keyed
//! by remote id and `updated_at`, so a remount needs no HEADs), or a HEAD of the file's
//! content URL. Cloudify has no way to change a stored file's bytes in place (a new upload
//! gets a new id), so the key is safe.
//!
//! A listing is answered at once with what is known without HEADs ([`known_sizes`]): `ls -f`
//! and `find` cost only the listing's pages. A file whose exact size is not known yet is shown
//! with the listing's rounded size and an attribute timeout of zero, so the kernel asks again
//! (`getattr`) before it relies on the size, and a read past that size makes it ask too. The
//! first such question in a folder starts one batch of HEADs ([`Probes`]) for every file of
//! that folder whose size is unknown, [`HEAD_PARALLELISM`] at a time, with the asking file
//! first; each caller waits only for its own file, and so does a lookup of a file the batch
//! is asking for (so its answer is exact). So `ls -l` costs the pages and one parallel batch,
//! and no file is HEAD-ed twice while its HEAD runs.
//!
//! Some storage never tells a length: a private file is served only by `indirect_url`, a
//! streamed proxy that may answer without Content-Length and ignore Range. Such a file is
//! remembered as "length unknown" (by id and `updated_at`, for the life of the mount), so
//! neither a listing nor a `stat` asks again; it is read to the end of its body (the
//! filesystem opens it with direct I/O, so the kernel does not stop at the listing's rounded
//! size), and the length seen at the end of the body is recorded as its exact size.

use std::os::unix::fs::DirBuilderExt;
use std::path::Path;
use std::sync::Arc;

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use parking_lot::{Condvar, Mutex};
use rusqlite::{Connection, params};

use super::error::FsError;
use crate::api::{File, Id, Remote, SizeHint};

/// How many HEADs of one batch run at once.
pub const HEAD_PARALLELISM: usize = 16;

/// Files looked up in the disk cache with one query.
const LOOKUP_CHUNK: usize = 500;

/// Sizes learnt by a batch are written to disk in transactions of this many.
const SAVE_EVERY: usize = 256;

/// The on-disk size cache. Without a usable cache folder it works in memory only.
pub struct SizeCache {
    /// The SQLite connection; the lock is held for local disk work only, never across HTTP.
    db: Mutex<Option<Connection>>,
    /// Files whose storage told no length. Taken alone, never with `db`.
    unknown: Mutex<HashSet<Version>>,
    /// Lengths learnt at the end of a body, kept here too so they hold without a disk cache.
    /// Taken alone, never with `db`.
    learnt: Mutex<HashMap<Version, u64>>,
    /// Sizes learnt by HEADs in this mount, so listings and `getattr` find them without the
    /// disk. Taken alone, never with `db`.
    heads: Mutex<HashMap<Version, u64>>,
    /// Those of `heads` not yet written to disk ([`SizeCache::save`]). Taken alone.
    unsaved: Mutex<Vec<(Id, String, u64)>>,
}

/// A version of a file in memory: its id and its `updated_at`. Cheap to make, unlike its
/// [`stamp`]: a listing and every readdir entry ask the maps above.
type Version = (Id, Option<chrono::NaiveDateTime>);

fn version(file: &File) -> Version {
    (file.id.clone(), file.updated_at)
}

/// The cache key of a file on disk: its id and its `updated_at` as text ("" when missing).
fn stamp(file: &File) -> String {
    use chrono::{Datelike, Timelike};
    match file.updated_at {
        // As `format("%Y-%m-%d %H:%M:%S")`, which parses its pattern on every call: a
        // listing asks this for every file.
        Some(t) if (0..=9999).contains(&t.year()) => format!(
            "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Some(t) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
        None => String::new(),
    }
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
            heads: Mutex::new(HashMap::new()),
            unsaved: Mutex::new(Vec::new()),
        }
    }

    /// The exact size of `file` if this mount learnt it already (memory only, no disk).
    pub fn known(&self, file: &File) -> Option<u64> {
        let key = version(file);
        let head = self.heads.lock().get(&key).copied();
        head.or_else(|| {
            let learnt = self.learnt.lock();
            (!learnt.is_empty()).then(|| learnt.get(&key).copied())?
        })
    }

    /// Records the size a HEAD gave; it reaches the disk at the next [`SizeCache::save`].
    fn remember(&self, file: &File, size: u64) {
        self.heads.lock().insert(version(file), size);
    }

    /// Queues a size [`SizeCache::remember`]ed for the next [`SizeCache::save`].
    fn to_save(&self, file: &File, size: u64) {
        self.unsaved
            .lock()
            .push((file.id.clone(), stamp(file), size));
    }

    /// Writes the sizes remembered since the last call to disk, in one transaction.
    fn save(&self) {
        let unsaved = std::mem::take(&mut *self.unsaved.lock());
        self.put_keys(&unsaved);
    }

    /// Whether the storage of `file` (this version of it) was found to tell no length.
    pub fn length_unknown(&self, file: &File) -> bool {
        let unknown = self.unknown.lock();
        !unknown.is_empty() && unknown.contains(&version(file))
    }

    fn mark_length_unknown(&self, file: &File) {
        log::debug!("file {}: storage tells no length; read to the end", file.id);
        self.unknown.lock().insert(version(file));
    }

    /// Whether the size of `file` was learnt at the end of its body in this mount (the
    /// kernel may still hold the rounded size for a while).
    pub fn learnt_from_body(&self, file: &File) -> bool {
        self.learnt.lock().contains_key(&version(file))
    }

    /// Records the length of `file` seen at the end of its body, as its exact size.
    pub fn learn_from_body(&self, file: &File, size: u64) {
        let key = version(file);
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
        let mut found: HashMap<Id, u64> = files
            .iter()
            .filter_map(|f| Some((f.id.clone(), self.known(f)?)))
            .collect();
        let guard = self.db.lock();
        let Some(conn) = guard.as_ref() else {
            return found;
        };
        let asked: Vec<&File> = files
            .iter()
            .filter(|f| !found.contains_key(&f.id))
            .copied()
            .collect();
        // One read transaction, and a query per some hundred files: on its own every query
        // locks and checks the database file (two system calls each), which was a quarter
        // of the mount's work to list 10,000 files. Dropped at the end, it ends without
        // writing.
        let Ok(tx) = conn.unchecked_transaction() else {
            return found;
        };
        for chunk in asked.chunks(LOOKUP_CHUNK) {
            let by_id: HashMap<&str, &File> = chunk.iter().map(|f| (f.id.as_str(), *f)).collect();
            let marks = vec!["?"; chunk.len()].join(",");
            let sql = format!("SELECT id, updated_at, size FROM sizes WHERE id IN ({marks})");
            let Ok(mut stmt) = tx.prepare_cached(&sql) else {
                return found;
            };
            let ids = rusqlite::params_from_iter(chunk.iter().map(|f| f.id.as_str()));
            let Ok(mut rows) = stmt.query(ids) else {
                return found;
            };
            while let Ok(Some(row)) = rows.next() {
                let (Ok(id), Ok(updated), Ok(size)) = (
                    row.get_ref(0).and_then(|v| Ok(v.as_str()?)),
                    row.get_ref(1).and_then(|v| Ok(v.as_str()?)),
                    row.get::<_, i64>(2),
                ) else {
                    continue;
                };
                if let Some(file) = by_id.get(id)
                    && stamp(file) == updated
                    && let Ok(size) = u64::try_from(size)
                {
                    found.insert(file.id.clone(), size);
                }
            }
        }
        found
    }

    /// Writes sizes to disk.
    pub fn put_many(&self, sizes: &[(&File, u64)]) {
        let keys: Vec<(Id, String, u64)> = sizes
            .iter()
            .map(|(f, n)| (f.id.clone(), stamp(f), *n))
            .collect();
        self.put_keys(&keys);
    }

    fn put_keys(&self, sizes: &[(Id, String, u64)]) {
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
                for (id, stamp, size) in sizes {
                    let size = i64::try_from(*size).unwrap_or(i64::MAX);
                    stmt.execute(params![id.as_str(), stamp, size])?;
                }
            }
            tx.commit()
        })();
        if let Err(e) = result {
            log::debug!("size cache: could not store {} sizes: {e}", sizes.len());
        }
    }
}

/// The exact sizes of those of `files` known without a request: numeric listing sizes, then
/// the cache. The others are left to [`Probes`].
pub fn known_sizes(cache: &SizeCache, files: &[File]) -> HashMap<Id, u64> {
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
    sizes
}

/// The size of one file without a request, if known: `Some(Some(n))` exact, `Some(None)`
/// when its storage tells no length, `None` when only a HEAD can tell.
fn known_one(cache: &SizeCache, file: &File) -> Option<Option<u64>> {
    if let Some(SizeHint::Exact(n)) = file.size {
        return Some(Some(n));
    }
    if let Some(n) = cache.known(file) {
        return Some(Some(n));
    }
    if cache.length_unknown(file) {
        return Some(None);
    }
    None
}

/// A file of a batch, by id and `updated_at`.
type ProbeKey = Version;

fn key_of(file: &File) -> ProbeKey {
    version(file)
}

/// Where a file of a batch is. A file leaves the map when its HEAD answered: its size is
/// then in the [`SizeCache`], or its failure goes to the callers that waited for it.
enum Probe {
    /// Waiting for a worker of its batch; a caller that finds it so takes it over.
    Queued,
    /// A HEAD is running, and `waiters` other callers wait for it.
    Running { waiters: u32 },
    /// The HEAD failed; the `waiters` callers that waited for it have yet to take the error.
    Failed { error: FsError, waiters: u32 },
}

/// Batches of HEADs for the files of a folder whose exact size is unknown (see the module
/// documentation).
///
/// Locks: `state` guards the map only and is never held across a HEAD nor while the
/// [`SizeCache`]'s disk lock is taken; the cache's memory maps may be taken under it.
pub struct Probes {
    remote: Arc<dyn Remote>,
    cache: Arc<SizeCache>,
    state: Mutex<HashMap<ProbeKey, Probe>>,
    /// Notified whenever a file leaves `Running`.
    changed: Condvar,
}

impl Probes {
    pub fn new(remote: Arc<dyn Remote>, cache: Arc<SizeCache>) -> Arc<Probes> {
        Arc::new(Probes {
            remote,
            cache,
            state: Mutex::new(HashMap::new()),
            changed: Condvar::new(),
        })
    }

    /// Queues `file` as a batch would, without starting one (tests).
    #[cfg(test)]
    pub(crate) fn queue(&self, file: &File) {
        self.state.lock().insert(key_of(file), Probe::Queued);
    }

    /// Whether a batch is asking for the size of `file` (queued or running).
    pub fn asking(&self, file: &File) -> bool {
        matches!(
            self.state.lock().get(&key_of(file)),
            Some(Probe::Queued | Probe::Running { .. })
        )
    }

    /// The exact size of `file` (`None`: its storage tells no length). Unless it is known
    /// already, or a batch is asking for it, a batch starts for `file` and those of
    /// `siblings()` (the other files of its folder) whose size is unknown; this call waits
    /// for `file` only. Blocks on HTTP; call without locks.
    pub fn size_of(
        self: &Arc<Self>,
        file: &File,
        siblings: impl FnOnce() -> Vec<Arc<File>>,
    ) -> Result<Option<u64>, FsError> {
        if let Some(known) = known_one(&self.cache, file) {
            return Ok(known);
        }
        let key = key_of(file);
        if !self.state.lock().contains_key(&key) {
            // From the disk, a remount's sizes: no batch for a folder the cache knows.
            if let Some(&n) = self.cache.get_many(&[file]).get(&file.id) {
                return Ok(Some(n));
            }
            let batch: Vec<Arc<File>> = siblings()
                .into_iter()
                .filter(|f| f.id != file.id && known_one(&self.cache, f).is_none())
                .collect();
            if self.start(file, batch) {
                // The caller's own file first, in its own thread, while the batch runs.
                return self.head(file);
            }
        }
        self.wait_for(file, &key)
    }

    /// Takes `own` for the caller (true unless someone has it or it is known by now), and
    /// HEADs the files of `batch` that nobody has in the background.
    fn start(self: &Arc<Self>, own: &File, mut batch: Vec<Arc<File>>) -> bool {
        let own_taken = {
            let mut state = self.state.lock();
            // A file that finished meanwhile is in the cache; check under the lock, since a
            // HEAD records its size before it leaves the map.
            let mut take = |f: &File, probe: Probe| {
                let key = key_of(f);
                let free = !state.contains_key(&key) && known_one(&self.cache, f).is_none();
                if free {
                    state.insert(key, probe);
                }
                free
            };
            let own_taken = take(own, Probe::Running { waiters: 0 });
            batch.retain(|f| take(f, Probe::Queued));
            own_taken
        };
        if batch.is_empty() {
            return own_taken;
        }
        log::debug!("asking for the exact sizes of {} files", batch.len());
        let keys: Vec<ProbeKey> = batch.iter().map(|f| key_of(f)).collect();
        let probes = self.clone();
        let spawned = std::thread::Builder::new()
            .name("size-batch".into())
            .spawn(move || probes.run(&batch));
        if let Err(e) = spawned {
            // Each caller asks for its own file; the others are asked for when needed.
            log::warn!("could not start a batch of HEADs: {e}");
            let mut state = self.state.lock();
            for key in keys {
                if matches!(state.get(&key), Some(Probe::Queued)) {
                    state.remove(&key);
                }
            }
        }
        own_taken
    }

    /// HEADs the queued files of `batch`, [`HEAD_PARALLELISM`] at a time.
    fn run(&self, batch: &[Arc<File>]) {
        let next = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..HEAD_PARALLELISM.min(batch.len()) {
                s.spawn(|| {
                    let mut done = 0;
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(file) = batch.get(i) else { break };
                        if self.claim(&key_of(file)) {
                            // A failure goes to its waiters; a later `getattr` asks again.
                            let _ = self.head(file);
                            done += 1;
                            if done % SAVE_EVERY == 0 {
                                self.cache.save();
                            }
                        }
                    }
                });
            }
        });
        self.cache.save();
    }

    /// Takes a queued file for a HEAD; false when someone else has it.
    fn claim(&self, key: &ProbeKey) -> bool {
        let mut state = self.state.lock();
        match state.get_mut(key) {
            Some(p @ Probe::Queued) => {
                *p = Probe::Running { waiters: 0 };
                true
            }
            _ => false,
        }
    }

    /// One HEAD of a claimed file; its result is recorded and handed to its waiters.
    fn head(&self, file: &File) -> Result<Option<u64>, FsError> {
        let result = self.remote.content_length(file).map_err(|e| {
            log::debug!("HEAD of file {} failed: {e}", file.id);
            FsError::from(e)
        });
        let key = key_of(file);
        let mut state = self.state.lock();
        // Recorded as the file leaves the map, under its lock: once it is gone from there,
        // its size is known.
        match result {
            Ok(Some(n)) => self.cache.remember(file, n),
            Ok(None) => self.cache.mark_length_unknown(file),
            Err(_) => {}
        }
        let waiters = match state.remove(&key) {
            Some(Probe::Running { waiters }) => waiters,
            _ => 0,
        };
        if let Err(error) = &result
            && waiters > 0
        {
            let error = error.clone();
            state.insert(key, Probe::Failed { error, waiters });
        }
        self.changed.notify_all();
        drop(state);
        if let Ok(Some(n)) = result {
            self.cache.to_save(file, n);
        }
        result
    }

    /// Waits for the HEAD of `file` (taking it over while it is still queued).
    fn wait_for(&self, file: &File, key: &ProbeKey) -> Result<Option<u64>, FsError> {
        let mut state = self.state.lock();
        let mut waiting = false;
        loop {
            match state.get_mut(key) {
                None => break,
                Some(p @ Probe::Queued) => {
                    *p = Probe::Running { waiters: 0 };
                    drop(state);
                    return self.head(file);
                }
                Some(Probe::Running { waiters }) => {
                    if !waiting {
                        *waiters += 1;
                        waiting = true;
                    }
                    self.changed.wait(&mut state);
                }
                Some(Probe::Failed { error, waiters }) => {
                    let error = error.clone();
                    if waiting {
                        *waiters -= 1;
                        if *waiters == 0 {
                            state.remove(key);
                        }
                    }
                    return Err(error);
                }
            }
        }
        drop(state);
        if let Some(known) = known_one(&self.cache, file) {
            return Ok(known);
        }
        // Asked for by nobody after all (a race with the end of a HEAD): ask alone.
        let n = self.remote.content_length(file)?;
        match n {
            Some(n) => {
                self.cache.remember(file, n);
                self.cache.to_save(file, n);
                self.cache.save();
            }
            None => self.cache.mark_length_unknown(file),
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::testing::MemRemote;

    #[test]
    fn sizes_come_from_the_cache_on_a_second_mount() {
        let dir = tempfile::tempdir().unwrap();
        let remote = Arc::new(MemRemote::new());
        let a = remote.add_file(&Id::root(), "a", "txt", vec![7; 1234]);
        let b = remote.add_file(&Id::root(), "b", "txt", vec![7; 5]);
        let files = remote.list_folder_now(&Id::root()).files;
        let shared: Vec<Arc<File>> = files.iter().cloned().map(Arc::new).collect();

        let cache = Arc::new(SizeCache::open(dir.path()));
        assert!(known_sizes(&cache, &files).is_empty(), "nothing asked yet");
        let probes = Probes::new(remote.clone(), cache.clone());
        let size_of = |f: &File| probes.size_of(f, || shared.clone()).unwrap();
        assert_eq!(size_of(&files[0]), Some(1234));
        assert_eq!(size_of(&files[1]), Some(5));
        assert_eq!(remote.heads(), 2);
        drop(probes);
        drop(cache);

        // The batch writes to disk when it ends, which may be after its callers returned.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let sizes = loop {
            let sizes = known_sizes(&SizeCache::open(dir.path()), &files);
            if sizes.len() == 2 || std::time::Instant::now() > deadline {
                break sizes;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        assert_eq!((sizes.get(&a), sizes.get(&b)), (Some(&1234), Some(&5)));
        assert_eq!(remote.heads(), 2, "no HEAD after a remount");
    }

    #[test]
    fn the_cache_key_is_the_date_as_the_server_writes_it() {
        let mut file: File = serde_json::from_value(serde_json::json!({"id": "a"})).unwrap();
        assert_eq!(stamp(&file), "");
        for text in [
            "2026-02-04 05:06:07",
            "0987-12-31 23:59:59",
            "2024-02-29 00:00:00",
        ] {
            file.updated_at = crate::api::model::parse_date(text);
            assert_eq!(stamp(&file), text);
        }
        file.updated_at =
            chrono::NaiveDate::from_ymd_opt(12345, 1, 2).and_then(|d| d.and_hms_opt(3, 4, 5));
        let long = file
            .updated_at
            .unwrap()
            .format("%Y-%m-%d %H:%M:%S")
            .to_string();
        assert_eq!(stamp(&file), long);
    }

    #[test]
    fn the_disk_cache_finds_many_files_by_id_and_date() {
        let dir = tempfile::tempdir().unwrap();
        let cache = SizeCache::open(dir.path());
        let file = |i: usize, day: u32| -> File {
            let date = format!("2026-01-{day:02} 10:00:00");
            serde_json::from_value(serde_json::json!({"id": format!("f{i}"), "updated_at": date}))
                .unwrap()
        };
        let stored: Vec<File> = (0..1200).map(|i| file(i, 1)).collect();
        let sizes: Vec<(&File, u64)> = stored.iter().map(|f| (f, 7)).collect();
        cache.put_many(&sizes);
        // Some changed since (another date), some never stored.
        let asked: Vec<File> = (0..1300)
            .map(|i| file(i, if i % 7 == 0 { 2 } else { 1 }))
            .collect();
        let found = cache.get_many(&asked.iter().collect::<Vec<_>>());
        let expected = (0..1200).filter(|i: &usize| !i.is_multiple_of(7)).count();
        assert_eq!(found.len(), expected);
        for (id, &n) in &found {
            let i: usize = id.as_str()[1..].parse().unwrap();
            assert!(n == 7 && i < 1200 && !i.is_multiple_of(7), "{id}");
        }
    }

    #[test]
    fn numeric_sizes_need_no_head() {
        let remote = MemRemote::new();
        remote.set_numeric_sizes(true);
        let a = remote.add_file(&Id::root(), "a", "txt", vec![1; 10]);
        let files = remote.list_folder_now(&Id::root()).files;
        let sizes = known_sizes(&SizeCache::disabled(), &files);
        assert_eq!(sizes[&a], 10);
        assert_eq!(remote.heads(), 0);
    }

    #[test]
    fn one_batch_asks_for_a_folder_and_no_file_twice() {
        let remote = Arc::new(MemRemote::new());
        for i in 0..40 {
            remote.add_file(&Id::root(), &format!("f{i}"), "txt", vec![1; 100 + i]);
        }
        let files = remote.list_folder_now(&Id::root()).files;
        let shared: Vec<Arc<File>> = files.iter().cloned().map(Arc::new).collect();
        let probes = Probes::new(remote.clone(), Arc::new(SizeCache::disabled()));
        let siblings_asked = std::sync::atomic::AtomicUsize::new(0);
        // Callers for every file at once, in reverse order, as `ls -l` with many threads.
        std::thread::scope(|s| {
            for f in files.iter().rev() {
                let (probes, shared, asked) = (&probes, &shared, &siblings_asked);
                s.spawn(move || {
                    let size = probes.size_of(f, || {
                        asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        shared.clone()
                    });
                    let expected = remote_len(f);
                    assert_eq!(size.unwrap(), Some(expected), "{}", f.name);
                });
            }
        });
        assert_eq!(remote.heads(), 40, "one HEAD per file");
        assert!(siblings_asked.load(std::sync::atomic::Ordering::SeqCst) >= 1);
        for f in &files {
            assert_eq!(probes.size_of(f, Vec::new).unwrap(), Some(remote_len(f)));
        }
        assert_eq!(remote.heads(), 40, "sizes are remembered");
        assert!(probes.state.lock().is_empty(), "nothing left in flight");
    }

    /// The length of a file made by the test above: 100 plus the number in its name.
    fn remote_len(f: &File) -> u64 {
        100 + f.name[1..].parse::<u64>().unwrap()
    }

    #[test]
    fn a_failed_head_is_reported_to_its_caller_and_asked_again_later() {
        let remote = Arc::new(crate::fs::testing::Faulty::new(MemRemote::new()));
        remote.inner.add_file(&Id::root(), "a", "txt", vec![1; 10]);
        let files = remote.inner.list_folder_now(&Id::root()).files;
        let probes = Probes::new(remote.clone(), Arc::new(SizeCache::disabled()));
        remote.fail_next_heads(1);
        let err = probes.size_of(&files[0], Vec::new).unwrap_err();
        assert_eq!(err.errno(), libc::EIO);
        assert_eq!(probes.size_of(&files[0], Vec::new).unwrap(), Some(10));
        assert_eq!(remote.inner.heads(), 1, "asked again after the failure");
    }
}
