//! Directory listings: fetched on first use, cached for `dir_cache_time`, shared.
//!
//! A folder is listed with one [`Remote::list_folder`] call (all pages), with the exact sizes
//! of its files known without a request ([`super::sizes::known_sizes`]; the others are asked
//! for later, when a `getattr` needs them, see [`super::sizes`]); the result is named
//! ([`super::names`]) and kept as an immutable [`DirListing`] behind an `Arc`, so readers
//! never copy it and never hold a lock while they use it.
//!
//! Concurrent users of one folder share one fetch: the first caller marks the folder's slot
//! as loading and fetches without holding any lock; the others wait on the slot's condition
//! variable and take the same result (or the same error). This keeps `ls` in a big folder
//! with many kernel threads down to one listing request.
//!
//! A refresh that fails for a reason that may pass by itself (network, server error, rate
//! limit) serves the stale listing instead, with a warning, so a blip does not turn `ls` into
//! EIO; the next use tries again. A refusal that will not pass (not found, key refused) is
//! reported.
//!
//! At most [`MAX_LISTINGS`] folders are kept; beyond that the least recently used listing
//! that no caller is using or fetching is dropped (its folder is listed again when next used).

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lru::LruCache;
use parking_lot::{Condvar, Mutex};

use super::error::FsError;
use super::inode::{Node, RemoteFile};
use super::names::{Candidate, assign_names, display_name, fold};
use super::sizes::{self, SizeCache};
use crate::api::{File, Id, Listing, Remote};

/// One named entry of a listing.
#[derive(Clone, Debug)]
pub struct DirEntry {
    pub name: String,
    pub id: Id,
    pub node: Node,
}

/// A folder's content as last fetched, with display names assigned.
#[derive(Clone, Debug)]
pub struct DirListing {
    pub folder: Id,
    /// Folders first, then files, each in the server's order.
    pub entries: Vec<DirEntry>,
    /// Indexes of `entries` in the order of their names, for [`DirListing::find`]: a map by
    /// name would hold every name a second time.
    by_name: Vec<u32>,
    fetched: Instant,
    /// Different for every listing and every change of one ([`DirCache::amend`]).
    serial: u64,
}

/// The next [`DirListing::serial`].
fn next_serial() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl DirListing {
    /// Names the entries of `listing` (of folder `folder`) and attaches the exact sizes.
    pub fn build<S: BuildHasher>(
        folder: &Id,
        listing: Listing,
        sizes: &HashMap<Id, u64, S>,
    ) -> DirListing {
        let Listing { folders, files } = listing;
        let names = {
            let mut cands: Vec<Candidate<'_>> = folders.iter().map(Candidate::folder).collect();
            cands.extend(files.iter().map(|f| Candidate::file(f, folder)));
            assign_names(&cands)
        };

        let nodes = folders
            .into_iter()
            .map(|f| (f.id.clone(), Node::Folder(f)))
            .chain(files.into_iter().map(|mut f| {
                let exact_size = sizes.get(&f.id).copied();
                if f.folder_id.as_ref() == Some(folder) {
                    // One shared copy of the folder's id instead of one per file.
                    f.folder_id = Some(folder.clone());
                }
                (
                    f.id.clone(),
                    Node::File(RemoteFile {
                        file: Arc::new(f),
                        exact_size,
                    }),
                )
            }));
        let entries: Vec<DirEntry> = nodes
            .zip(names)
            .map(|((id, node), name)| DirEntry { name, id, node })
            .collect();
        let mut by_name: Vec<u32> = (0..entries.len() as u32).collect();
        by_name.sort_unstable_by(|&a, &b| entries[a as usize].name.cmp(&entries[b as usize].name));
        DirListing {
            folder: folder.clone(),
            entries,
            by_name,
            fetched: Instant::now(),
            serial: next_serial(),
        }
    }

    /// Tells this listing from every other, and from itself before a change.
    pub fn serial(&self) -> u64 {
        self.serial
    }

    pub fn find(&self, name: &str) -> Option<&DirEntry> {
        let at = self.name_position(name).ok()?;
        Some(&self.entries[self.by_name[at] as usize])
    }

    /// Where `name` is in `by_name` (`Err`: where it would go).
    fn name_position(&self, name: &str) -> Result<usize, usize> {
        self.by_name
            .binary_search_by(|&i| self.entries[i as usize].name.as_str().cmp(name))
    }

    /// Adds a file just stored in this folder under the name a fetch would give it, with
    /// its exact size if known. False (nothing added) when the file is listed already or its
    /// plain name is taken, folded as [`super::names`] compares names: only a fetch names
    /// such a file.
    pub fn add_file(&mut self, file: File, exact_size: Option<u64>) -> bool {
        let name = display_name(&file.name, file.extension().as_deref(), "");
        let folded = fold(&name);
        if self
            .entries
            .iter()
            .any(|e| e.id == file.id || fold(&e.name) == folded)
        {
            return false;
        }
        let Err(at) = self.name_position(&name) else {
            return false;
        };
        self.by_name.insert(at, self.entries.len() as u32);
        self.entries.push(DirEntry {
            name,
            id: file.id.clone(),
            node: Node::File(RemoteFile {
                file: Arc::new(file),
                exact_size,
            }),
        });
        true
    }
}

/// A listing of at least this many entries returns the memory its pages took to the system.
const TRIM_AFTER: usize = 1000;

/// Lists `folder`, with the exact sizes known without a request. Blocks on HTTP; call
/// without locks.
pub fn fetch(remote: &dyn Remote, sizes: &SizeCache, folder: &Id) -> Result<DirListing, FsError> {
    let listing = remote.list_folder(folder)?;
    let exact = sizes::known_sizes(sizes, &listing.files);
    let listing = DirListing::build(folder, listing, &exact);
    if listing.entries.len() >= TRIM_AFTER {
        trim_heap();
    }
    Ok(listing)
}

/// Hands the allocator's free memory back to the system. After a big listing the pages'
/// JSON is freed, spread over glibc's per-thread arenas, which keep it: 10 folders of 10,000
/// files left some 12 MB more resident without this. It takes a millisecond or two.
fn trim_heap() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only releases free memory of the allocator; it touches no live
    // allocation.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[derive(Default)]
struct SlotState {
    listing: Option<Arc<DirListing>>,
    /// A fetch is running; waiters sleep on `Slot::ready`.
    loading: bool,
    /// Counts finished fetches, so a waiter knows when the one it waited for is done.
    generation: u64,
    /// The error of the fetch that finished as `generation`.
    error: Option<(u64, FsError)>,
    /// The listing may be out of date (see [`DirCache::expire`]): fetch it again at the next
    /// use, but keep it to serve while the server cannot be reached.
    expired: bool,
    /// Counts changes made through this mount ([`DirCache::invalidate`], `expire`, `amend`
    /// during a fetch). A fetch that was running when one happened may have read the folder
    /// before it, so its result is not trusted as fresh.
    version: u64,
    /// `version` when the running (or last) fetch started.
    fetch_version: u64,
}

#[derive(Default)]
struct Slot {
    state: Mutex<SlotState>,
    ready: Condvar,
}

/// Folders whose listings are kept; a listing of 100 entries takes some 50 KB.
pub const MAX_LISTINGS: usize = 1024;

/// Cached listings by folder id.
///
/// Locks: `slots` guards the map only and is held for a lookup, insert or eviction; each
/// slot's `state` guards that folder's listing and fetch state. `slots` is never taken while
/// a slot is held, and no lock is held across a fetch.
///
/// A slot that a caller holds (a fetch running, waiters on it) is never evicted, so
/// concurrent users of one folder always find the same slot and share one fetch.
pub struct DirCache {
    slots: Mutex<LruCache<Id, Arc<Slot>>>,
    ttl: Duration,
    capacity: usize,
}

/// Clears `loading` and wakes waiters even if the fetch unwinds.
struct LoadingGuard<'a> {
    slot: &'a Slot,
    result: Option<Result<Arc<DirListing>, FsError>>,
    /// The result is a new fetch, not the stale listing served after a failed one.
    fresh: bool,
}

impl Drop for LoadingGuard<'_> {
    fn drop(&mut self) {
        let mut st = self.slot.state.lock();
        st.loading = false;
        st.generation += 1;
        let generation = st.generation;
        match self.result.take() {
            Some(Ok(listing)) => {
                st.listing = Some(listing);
                st.error = None;
                let changed_meanwhile = st.version != st.fetch_version;
                st.expired = changed_meanwhile || (st.expired && !self.fresh);
            }
            Some(Err(e)) => st.error = Some((generation, e)),
            None => {
                st.error = Some((
                    generation,
                    FsError::Download {
                        what: "listing".into(),
                        offset: 0,
                        message: "fetch aborted".into(),
                    },
                ))
            }
        }
        self.slot.ready.notify_all();
    }
}

impl DirCache {
    pub fn new(ttl: Duration) -> DirCache {
        DirCache::with_capacity(ttl, MAX_LISTINGS)
    }

    /// A cache of at most `capacity` idle listings.
    pub fn with_capacity(ttl: Duration, capacity: usize) -> DirCache {
        DirCache {
            slots: Mutex::new(LruCache::unbounded()),
            ttl,
            capacity,
        }
    }

    fn slot(&self, folder: &Id) -> Arc<Slot> {
        let mut slots = self.slots.lock();
        if let Some(slot) = slots.get(folder) {
            return slot.clone();
        }
        let slot = Arc::new(Slot::default());
        slots.put(folder.clone(), slot.clone());
        if slots.len() > self.capacity {
            // Idle slots only: the map's reference is their only one.
            let idle: Vec<Id> = slots
                .iter()
                .rev()
                .filter(|(_, s)| Arc::strong_count(s) == 1)
                .map(|(id, _)| id.clone())
                .take(slots.len() - self.capacity)
                .collect();
            for id in idle {
                slots.pop(&id);
            }
        }
        slot
    }

    /// How many listings (fetched or being fetched) are kept.
    pub fn len(&self) -> usize {
        self.slots.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.lock().is_empty()
    }

    /// The listing of `folder`: the cached one while fresh, else the result of `fetch`
    /// (run by one caller; concurrent callers wait for it).
    pub fn get(
        &self,
        folder: &Id,
        fetch: impl FnOnce() -> Result<DirListing, FsError>,
    ) -> Result<Arc<DirListing>, FsError> {
        let slot = self.slot(folder);
        let mut st = slot.state.lock();
        loop {
            if let Some(listing) = &st.listing
                && !st.expired
                && listing.fetched.elapsed() < self.ttl
            {
                return Ok(listing.clone());
            }
            if !st.loading {
                break;
            }
            let waited_for = st.generation + 1;
            let joined_version = st.fetch_version;
            while st.loading && st.generation < waited_for {
                slot.ready.wait(&mut st);
            }
            if st.version != joined_version {
                // The folder changed through this mount after that fetch started: its
                // result may predate the change, so look again (and fetch anew).
                continue;
            }
            if let Some((generation, e)) = &st.error
                && *generation == waited_for
            {
                return Err(e.clone());
            }
            if let Some(listing) = &st.listing
                && st.generation == waited_for
            {
                return Ok(listing.clone());
            }
        }
        st.loading = true;
        st.fetch_version = st.version;
        drop(st);

        let mut guard = LoadingGuard {
            slot: &slot,
            result: None,
            fresh: false,
        };
        let result = match fetch() {
            Ok(listing) => {
                guard.fresh = true;
                Ok(Arc::new(listing))
            }
            Err(e) => Self::stale_instead(&slot, folder, e),
        };
        guard.result = Some(result.clone());
        drop(guard);
        result
    }

    /// After a failed refresh: the stale listing when the failure may pass by itself and the
    /// slot still has one (it has none after [`DirCache::invalidate`]), else the error.
    fn stale_instead(slot: &Slot, folder: &Id, e: FsError) -> Result<Arc<DirListing>, FsError> {
        let transient = matches!(&e, FsError::Remote(api) if api.is_transient());
        let stale = slot.state.lock().listing.clone();
        match stale {
            Some(listing) if transient => {
                log::warn!(
                    "listing of folder {folder} failed ({e}); showing the listing of {:?} ago",
                    listing.fetched.elapsed()
                );
                Ok(listing)
            }
            _ => Err(e),
        }
    }

    /// How much longer `listing` is served as fresh: `None` unless it is the cached listing
    /// of its folder (not replaced, changed, invalidated or marked out of date since) and not
    /// older than the cache time.
    pub fn fresh_for(&self, listing: &Arc<DirListing>) -> Option<Duration> {
        let slot = self.slots.lock().peek(&listing.folder).cloned()?;
        let st = slot.state.lock();
        let current = st.listing.as_ref()?;
        if !Arc::ptr_eq(current, listing) || st.expired {
            return None;
        }
        self.ttl.checked_sub(listing.fetched.elapsed())
    }

    /// The cached listing of `folder` even when stale, without fetching.
    pub fn peek(&self, folder: &Id) -> Option<Arc<DirListing>> {
        let slot = self.slots.lock().peek(folder).cloned()?;
        let st = slot.state.lock();
        st.listing.clone()
    }

    /// Applies a change made through this mount to the cached listing of `folder` (fresh
    /// or stale; its age is kept), so the next use needs no fetch. When `change` answers
    /// false the listing is forgotten instead, as by [`DirCache::invalidate`]; so it is while
    /// a fetch of the folder runs. Nothing happens while the folder is not cached.
    pub fn amend(&self, folder: &Id, change: impl FnOnce(&mut DirListing) -> bool) {
        let slot = self.slots.lock().peek(folder).cloned();
        let Some(slot) = slot else { return };
        let mut st = slot.state.lock();
        if st.loading {
            // The running fetch may not see the change: its result is installed as out of
            // date, so the next use fetches again.
            st.listing = None;
            st.version += 1;
            return;
        }
        let Some(listing) = st.listing.as_mut() else {
            return;
        };
        let listing = Arc::make_mut(listing);
        if change(listing) {
            listing.serial = next_serial();
        } else {
            st.listing = None;
        }
    }

    /// Marks the listing of `folder` as possibly out of date: the next use fetches it again,
    /// but while that fetch fails for a reason that may pass (server down, throttled) the
    /// old listing is still served. For changes that may or may not have reached the server,
    /// such as an upload that failed.
    pub fn expire(&self, folder: &Id) {
        let slot = self.slots.lock().peek(folder).cloned();
        if let Some(slot) = slot {
            let mut st = slot.state.lock();
            st.expired = true;
            st.version += 1;
        }
    }

    /// Forgets the listing of `folder`, so the next use fetches it again (after a change).
    pub fn invalidate(&self, folder: &Id) {
        let slot = self.slots.lock().peek(folder).cloned();
        if let Some(slot) = slot {
            let mut st = slot.state.lock();
            st.listing = None;
            st.version += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::testing::MemRemote;

    #[test]
    fn concurrent_users_share_one_fetch() {
        let remote = Arc::new(MemRemote::new());
        for i in 0..20 {
            remote.add_file(&Id::root(), &format!("f{i}"), "txt", vec![1; i]);
        }
        remote.set_list_delay(Duration::from_millis(200));
        let cache = Arc::new(DirCache::new(Duration::from_secs(60)));
        let sizes = Arc::new(SizeCache::disabled());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (remote, cache, sizes) = (remote.clone(), cache.clone(), sizes.clone());
                std::thread::spawn(move || {
                    let l = cache.get(&Id::root(), || fetch(&*remote, &sizes, &Id::root()));
                    l.map(|l| l.entries.len())
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().unwrap().unwrap(), 20);
        }
        assert_eq!(remote.lists(), 1);
        assert_eq!(remote.heads(), 0, "a listing asks for no size");
    }

    #[test]
    fn a_fetch_that_was_running_when_the_folder_changed_is_not_trusted() {
        let remote = Arc::new(MemRemote::new());
        let gone = remote.add_file(&Id::root(), "gone", "txt", vec![1; 3]);
        let cache = Arc::new(DirCache::new(Duration::from_secs(3600)));
        let sizes = Arc::new(SizeCache::disabled());
        let (started_tx, started_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();

        // A fetch reads the folder while "gone.txt" is still there, then is held.
        let slow = {
            let (remote, cache, sizes) = (remote.clone(), cache.clone(), sizes.clone());
            std::thread::spawn(move || {
                cache.get(&Id::root(), || {
                    let listing = fetch(&*remote, &sizes, &Id::root());
                    started_tx.send(()).unwrap();
                    go_rx.recv().unwrap();
                    listing
                })
            })
        };
        started_rx.recv().unwrap();
        // Meanwhile the file is removed through the mount, which invalidates the folder.
        crate::api::Remote::delete_file(&*remote, &gone).unwrap();
        cache.invalidate(&Id::root());
        // A user arriving now must not get the held fetch's result.
        let fresh_user = {
            let (remote, cache, sizes) = (remote.clone(), cache.clone(), sizes.clone());
            std::thread::spawn(move || {
                cache.get(&Id::root(), || fetch(&*remote, &sizes, &Id::root()))
            })
        };
        go_tx.send(()).unwrap();
        assert_eq!(slow.join().unwrap().unwrap().entries.len(), 1);
        let seen = fresh_user.join().unwrap().unwrap();
        assert!(seen.entries.is_empty(), "a listing from before the removal");
        let later = cache
            .get(&Id::root(), || fetch(&*remote, &sizes, &Id::root()))
            .unwrap();
        assert!(
            later.entries.is_empty(),
            "the pre-removal listing was kept as fresh"
        );
    }

    #[test]
    fn the_cache_keeps_a_bounded_number_of_listings_but_never_one_in_use() {
        let remote = Arc::new(MemRemote::new());
        let folders: Vec<Id> = (0..10)
            .map(|i| remote.add_folder(&Id::root(), &format!("d{i}")))
            .collect();
        let sizes = Arc::new(SizeCache::disabled());
        let cache = Arc::new(DirCache::with_capacity(Duration::from_secs(60), 3));
        for f in &folders {
            cache.get(f, || fetch(&*remote, &sizes, f)).unwrap();
        }
        assert_eq!(cache.len(), 3);
        assert!(cache.peek(&folders[9]).is_some(), "the newest are kept");
        assert!(cache.peek(&folders[0]).is_none(), "the oldest are dropped");

        // A fetch in flight, and its waiters, survive any number of other folders, so the
        // four users of the root share one fetch.
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let release = Arc::new(AtomicBool::new(false));
        let fetches = Arc::new(AtomicUsize::new(0));
        let root = Id::root();
        let users: Vec<_> = (0..4)
            .map(|_| {
                let (remote, cache, sizes) = (remote.clone(), cache.clone(), sizes.clone());
                let (release, fetches, root) = (release.clone(), fetches.clone(), root.clone());
                std::thread::spawn(move || {
                    let slow_fetch = || {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        while !release.load(Ordering::SeqCst) {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        fetch(&*remote, &sizes, &root)
                    };
                    cache.get(&root, slow_fetch).map(|l| l.entries.len())
                })
            })
            .collect();
        let holders = || {
            let slots = cache.slots.lock();
            slots.peek(&root).map_or(0, Arc::strong_count)
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while holders() < 5 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(
            holders(),
            5,
            "the map and the four users hold the root's slot"
        );
        for f in &folders {
            cache.get(f, || fetch(&*remote, &sizes, f)).unwrap();
        }
        assert_eq!(
            holders(),
            5,
            "still in the map: a later user joins the same fetch"
        );
        release.store(true, Ordering::SeqCst);
        for u in users {
            assert_eq!(u.join().unwrap().unwrap(), 10);
        }
        assert_eq!(
            fetches.load(Ordering::SeqCst),
            1,
            "one fetch for four users"
        );
        assert!(cache.len() <= 3);
    }

    #[test]
    fn a_stale_listing_is_fetched_again() {
        let remote = MemRemote::new();
        let cache = DirCache::new(Duration::ZERO);
        let sizes = SizeCache::disabled();
        for _ in 0..2 {
            cache
                .get(&Id::root(), || fetch(&remote, &sizes, &Id::root()))
                .unwrap();
        }
        assert_eq!(remote.lists(), 2);
    }

    #[test]
    fn a_refresh_that_fails_for_a_while_serves_the_stale_listing() {
        let remote = crate::fs::testing::Faulty::new(MemRemote::new());
        remote.inner.add_file(&Id::root(), "a", "txt", vec![1; 10]);
        let cache = DirCache::new(Duration::ZERO);
        let sizes = SizeCache::disabled();
        let get = || cache.get(&Id::root(), || fetch(&remote, &sizes, &Id::root()));
        assert_eq!(get().unwrap().entries.len(), 1);

        remote.fail_next_list(crate::api::ApiError::Network {
            context: "GET /media/folders".into(),
            message: "connection reset".into(),
        });
        let stale = get().expect("a network blip serves the stale listing");
        assert_eq!(stale.entries[0].name, "a.txt");

        remote.fail_next_list(crate::api::ApiError::NotFound {
            context: "GET /media/folders".into(),
            message: "gone".into(),
        });
        assert_eq!(get().unwrap_err().errno(), libc::ENOENT);
        remote.fail_next_list(crate::api::ApiError::Unauthorized {
            context: "GET /media/folders".into(),
            status: 403,
            message: "This action is unauthorized.".into(),
        });
        assert_eq!(get().unwrap_err().errno(), libc::EACCES);

        cache.invalidate(&Id::root());
        remote.fail_next_list(crate::api::ApiError::Server {
            context: "GET /media/folders".into(),
            status: 502,
            message: "Bad Gateway".into(),
        });
        assert_eq!(
            get().unwrap_err().errno(),
            libc::EIO,
            "nothing stale to serve after a local change"
        );
    }

    #[test]
    fn an_expired_listing_is_fetched_again_but_served_while_the_server_is_down() {
        let remote = crate::fs::testing::Faulty::new(MemRemote::new());
        remote.inner.add_file(&Id::root(), "a", "txt", vec![1; 10]);
        let cache = DirCache::new(Duration::from_secs(3600));
        let sizes = SizeCache::disabled();
        let get = || cache.get(&Id::root(), || fetch(&remote, &sizes, &Id::root()));
        assert_eq!(get().unwrap().entries.len(), 1);

        cache.expire(&Id::root());
        remote.fail_next_list(crate::api::ApiError::Network {
            context: "GET /media/folders".into(),
            message: "connection refused".into(),
        });
        let stale = get().expect("the server being down serves the expired listing");
        assert_eq!(stale.entries[0].name, "a.txt");

        remote.inner.add_file(&Id::root(), "b", "txt", vec![2; 10]);
        assert_eq!(
            get().unwrap().entries.len(),
            2,
            "still expired: the next use fetches again"
        );
        remote.inner.add_file(&Id::root(), "c", "txt", vec![3; 10]);
        assert_eq!(get().unwrap().entries.len(), 2, "fresh again after a fetch");
    }

    #[test]
    fn a_failed_fetch_is_reported_and_not_cached() {
        let remote = crate::fs::testing::Faulty::new(MemRemote::new());
        remote.fail_next_list(crate::api::ApiError::Unauthorized {
            context: "GET /media/folders".into(),
            status: 403,
            message: "This action is unauthorized.".into(),
        });
        let cache = DirCache::new(Duration::from_secs(60));
        let sizes = SizeCache::disabled();
        let err = cache
            .get(&Id::root(), || fetch(&remote, &sizes, &Id::root()))
            .unwrap_err();
        assert_eq!(err.errno(), libc::EACCES);
        cache
            .get(&Id::root(), || fetch(&remote, &sizes, &Id::root()))
            .unwrap();
    }

    #[test]
    fn names_are_found_exactly_also_after_a_file_is_added() {
        let remote = MemRemote::new();
        for name in ["b", "a", "c", "B2", "a b"] {
            remote.add_file(&Id::root(), name, "txt", vec![1]);
        }
        remote.add_folder(&Id::root(), "Zeta");
        let mut listing = fetch(&remote, &SizeCache::disabled(), &Id::root()).unwrap();
        for name in ["b.txt", "a.txt", "c.txt", "B2.txt", "a b.txt", "Zeta"] {
            assert_eq!(listing.find(name).map(|e| e.name.as_str()), Some(name));
        }
        assert!(listing.find("A.txt").is_none() && listing.find("zeta").is_none());

        let new = remote.add_file(&Id::root(), "aa", "txt", vec![1]);
        let file = remote.list_folder_now(&Id::root()).files;
        let file = file.into_iter().find(|f| f.id == new).unwrap();
        assert!(listing.add_file(file.clone(), Some(1)));
        assert!(!listing.add_file(file, Some(1)), "listed already");
        assert_eq!(listing.find("aa.txt").map(|e| &e.id), Some(&new));
        assert_eq!(
            listing.find("b.txt").map(|e| e.name.as_str()),
            Some("b.txt")
        );
    }
}
