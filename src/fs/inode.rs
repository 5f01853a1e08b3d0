//! The inode table: which inode number stands for which remote object, its parent and name
//! as the kernel sees them, and how long the entry is kept.
//!
//! - One inode per remote object: listings and lookups go through [`InodeTable::upsert`],
//!   which returns the number already given to that object, or a new one. An object is its
//!   kind and its id together: a BIGINT install numbers folders and files independently, so
//!   folder 7 and file 7 are two objects with two inodes.
//! - A remote object's number is derived from its kind and id ([`derived_ino`]), so it is
//!   the same in every mount: backup tools (restic) that compare inode numbers with those
//!   of their last run see unchanged files as unchanged. Derived numbers have bit 62 set;
//!   the root, local entries and a remote object whose derived number another live entry
//!   holds (a hash collision) take the next number of a counter below that, which never
//!   repeats. So a number is never given to another object while an entry holds it, that is
//!   while the kernel may hold it (entries the kernel references are never dropped), and
//!   the FUSE generation is always 0.
//! - Cloudify's folders carry no parent id, so the parent and the display name are those of
//!   the listing an entry was last seen in.
//! - The kernel's references are counted: `lookup`, `create` and every `readdirplus` entry
//!   add one, `forget` removes them. Open handles pin an entry too. An entry with neither
//!   goes into an LRU of at most `capacity` entries; the oldest one beyond that is dropped.
//!   The root is never dropped.
//! - Entries are keyed by [`Key`]: a remote folder or file id, or a local number for objects
//!   that exist only
//!   in the mount (a staged file without a remote id yet, an empty file the server cannot
//!   store). The write side creates the latter with [`InodeTable::insert_local`] and turns
//!   them into remote entries with [`InodeTable::rekey`] once the server has them.

use std::sync::Arc;

use foldhash::{HashMap, HashMapExt};
use lru::LruCache;

use crate::api::{File, Folder, Id};

/// An inode number as the kernel sees it.
pub type Ino = u64;

/// The mount's root, Cloudify's root folder.
pub const ROOT_INO: Ino = 1;

/// Set in every derived number ([`derived_ino`]) and in no counter number. Bit 62, not 63:
/// the numbers stay positive for programs that keep them as signed 64-bit integers.
const DERIVED: Ino = 1 << 62;

/// The number of a remote object in every mount: 62 bits of SHA-256 of its kind and id,
/// with [`DERIVED`] set (so never 0, 1 or a counter number). `None` for a local key.
pub fn derived_ino(key: &Key) -> Option<Ino> {
    use sha2::Digest;
    let (kind, id) = match key {
        Key::Folder(id) => ("folder", id),
        Key::File(id) => ("file", id),
        Key::Local(_) => return None,
    };
    let digest = sha2::Sha256::new()
        .chain_update(kind)
        .chain_update([0])
        .chain_update(id.as_str())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    Some((u64::from_be_bytes(first) & (DERIVED - 1)) | DERIVED)
}

/// What an inode stands for.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Key {
    /// A folder the server has (the root is `Folder(Id::root())`).
    Folder(Id),
    /// A file the server has. Its id may equal a folder's (BIGINT installs).
    File(Id),
    /// An object that exists only in the mount, numbered by its inode.
    Local(Ino),
}

impl Key {
    /// The key of the remote object `node` with id `id`.
    pub fn remote(node: &Node, id: &Id) -> Key {
        match node {
            Node::Root | Node::Folder(_) => Key::Folder(id.clone()),
            Node::File(_) | Node::Local(_) => Key::File(id.clone()),
        }
    }
}

/// A file as the server lists it, with its exact size once known.
#[derive(Clone, Debug, PartialEq)]
pub struct RemoteFile {
    /// Shared with the listing the file came from: a folder of 10,000 files is held once,
    /// not once by the listing and again by the inodes the kernel asked for.
    pub file: Arc<File>,
    /// The exact byte count: a numeric size of the listing, the size cache, or a HEAD.
    /// `None` until one of them answered.
    pub exact_size: Option<u64>,
}

impl RemoteFile {
    /// The best size known: the exact one, else the listing's approximate one.
    pub fn size(&self) -> u64 {
        self.exact_size
            .or_else(|| self.file.size.map(|s| s.bytes()))
            .unwrap_or(0)
    }
}

/// A local-only file (the write side fills this in).
#[derive(Clone, Debug, PartialEq)]
pub struct LocalFile {
    pub size: u64,
    pub mtime: std::time::SystemTime,
}

/// The object behind an inode.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    Root,
    Folder(Folder),
    File(RemoteFile),
    Local(LocalFile),
}

impl Node {
    pub fn is_dir(&self) -> bool {
        matches!(self, Node::Root | Node::Folder(_))
    }

    /// The remote folder id this node lists, when it is a directory.
    pub fn folder_id(&self) -> Option<Id> {
        match self {
            Node::Root => Some(Id::root()),
            Node::Folder(f) => Some(f.id.clone()),
            Node::File(_) | Node::Local(_) => None,
        }
    }

    /// Whether `other` may have other content than `self` (a changed date or size).
    fn content_differs(&self, other: &Node) -> bool {
        match (self, other) {
            (Node::File(a), Node::File(b)) => {
                a.file.updated_at != b.file.updated_at
                    || a.file.id != b.file.id
                    || (a.exact_size.is_some()
                        && b.exact_size.is_some()
                        && a.exact_size != b.exact_size)
            }
            _ => false,
        }
    }
}

/// One entry of the table.
#[derive(Clone, Debug)]
pub struct Inode {
    pub ino: Ino,
    pub parent: Ino,
    /// The display name in the parent.
    pub name: String,
    pub key: Key,
    pub node: Node,
    /// References the kernel holds (lookups not yet forgotten).
    lookups: u64,
    /// Open handles on this entry.
    pins: u32,
    /// Bumped whenever the content may have changed; see [`InodeTable::open_keep_cache`].
    content_version: u64,
    /// The content version the kernel's page cache holds, set at open; of a folder, the
    /// listing whose entries the kernel caches ([`InodeTable::opendir_keep_cache`]).
    cached_version: Option<u64>,
}

/// The table itself. Not synchronised: the filesystem keeps it behind one mutex.
pub struct InodeTable {
    next_ino: Ino,
    /// Boxed: a map grows by doubling and holds its empty slots inline too, so with an
    /// entry of some 340 bytes inline, 100,000 entries took up to 45 MB (twice that while
    /// growing).
    by_ino: HashMap<Ino, Box<Inode>>,
    by_key: HashMap<Key, Ino>,
    /// Entries neither the kernel nor a handle references, least recently used first.
    unreferenced: LruCache<Ino, ()>,
    capacity: usize,
}

impl InodeTable {
    pub fn new(capacity: usize) -> InodeTable {
        let root = Inode {
            ino: ROOT_INO,
            parent: ROOT_INO,
            name: String::new(),
            key: Key::Folder(Id::root()),
            node: Node::Root,
            lookups: 1,
            pins: 0,
            content_version: 0,
            cached_version: None,
        };
        let mut table = InodeTable {
            next_ino: ROOT_INO + 1,
            by_ino: HashMap::new(),
            by_key: HashMap::new(),
            unreferenced: LruCache::unbounded(),
            capacity,
        };
        table.by_key.insert(root.key.clone(), ROOT_INO);
        table.by_ino.insert(ROOT_INO, Box::new(root));
        table
    }

    pub fn get(&self, ino: Ino) -> Option<&Inode> {
        self.by_ino.get(&ino).map(|i| &**i)
    }

    pub fn get_mut(&mut self, ino: Ino) -> Option<&mut Inode> {
        self.by_ino.get_mut(&ino).map(|i| &mut **i)
    }

    pub fn ino_of(&self, key: &Key) -> Option<Ino> {
        self.by_key.get(key).copied()
    }

    /// The number of entries held (referenced or not), root included.
    pub fn len(&self) -> usize {
        self.by_ino.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_ino.is_empty()
    }

    /// The inode of a remote object seen under `name` in `parent`: the existing one of that
    /// kind and id (with its parent, name and metadata refreshed) or a new, unreferenced one.
    pub fn upsert(&mut self, parent: Ino, name: &str, node: Node, id: &Id) -> Ino {
        let key = Key::remote(&node, id);
        if let Some(&ino) = self.by_key.get(&key)
            && let Some(inode) = self.by_ino.get_mut(&ino)
        {
            if inode.node.content_differs(&node) {
                inode.content_version += 1;
            }
            if inode.ino != ROOT_INO {
                inode.parent = parent;
                inode.name.clear();
                inode.name.push_str(name);
                // A listing made before the exact size was learnt does not forget it.
                let learnt = match (&inode.node, &node) {
                    (Node::File(old), Node::File(new))
                        if new.exact_size.is_none()
                            && old.file.id == new.file.id
                            && old.file.updated_at == new.file.updated_at =>
                    {
                        old.exact_size
                    }
                    _ => None,
                };
                inode.node = node;
                if let (Some(n), Node::File(f)) = (learnt, &mut inode.node) {
                    f.exact_size = Some(n);
                }
            }
            self.unreferenced.promote(&ino);
            return ino;
        }
        self.insert(parent, name, key, node)
    }

    /// Creates an entry for an object that exists only in the mount.
    pub fn insert_local(&mut self, parent: Ino, name: &str, node: Node) -> Ino {
        let ino = self.next_counter();
        self.insert_at(ino, parent, name, Key::Local(ino), node)
    }

    fn next_counter(&mut self) -> Ino {
        let ino = self.next_ino;
        self.next_ino += 1;
        ino
    }

    /// Gives an entry a new key (a local file the server now stores under `id`).
    pub fn rekey(&mut self, ino: Ino, key: Key) {
        let Some(inode) = self.by_ino.get_mut(&ino) else {
            return;
        };
        if self.by_key.get(&inode.key) == Some(&ino) {
            self.by_key.remove(&inode.key);
        }
        inode.key = key.clone();
        self.by_key.insert(key, ino);
    }

    /// A new entry for a remote object: its derived number, or the counter's next one when
    /// another entry holds that number.
    fn insert(&mut self, parent: Ino, name: &str, key: Key, node: Node) -> Ino {
        let ino = match derived_ino(&key) {
            Some(n) if !self.by_ino.contains_key(&n) => n,
            Some(n) => {
                log::debug!("inode {n} of {key:?} is taken; numbered from the counter");
                self.next_counter()
            }
            None => self.next_counter(),
        };
        self.insert_at(ino, parent, name, key, node)
    }

    fn insert_at(&mut self, ino: Ino, parent: Ino, name: &str, key: Key, node: Node) -> Ino {
        let inode = Inode {
            ino,
            parent,
            name: name.to_string(),
            key: key.clone(),
            node,
            lookups: 0,
            pins: 0,
            content_version: 0,
            cached_version: None,
        };
        self.by_key.insert(key, ino);
        self.by_ino.insert(ino, Box::new(inode));
        self.release_if_unreferenced(ino);
        ino
    }

    /// The kernel took `n` more references (lookup, readdirplus entry, create).
    pub fn add_lookups(&mut self, ino: Ino, n: u64) {
        if let Some(inode) = self.by_ino.get_mut(&ino) {
            inode.lookups += n;
            self.unreferenced.pop(&ino);
        }
    }

    /// The kernel dropped `n` references.
    pub fn forget(&mut self, ino: Ino, n: u64) {
        if let Some(inode) = self.by_ino.get_mut(&ino) {
            inode.lookups = inode.lookups.saturating_sub(n);
            self.release_if_unreferenced(ino);
        }
    }

    /// An open handle holds the entry.
    pub fn pin(&mut self, ino: Ino) {
        if let Some(inode) = self.by_ino.get_mut(&ino) {
            inode.pins += 1;
            self.unreferenced.pop(&ino);
        }
    }

    pub fn unpin(&mut self, ino: Ino) {
        if let Some(inode) = self.by_ino.get_mut(&ino) {
            inode.pins = inode.pins.saturating_sub(1);
            self.release_if_unreferenced(ino);
        }
    }

    /// At open: whether the kernel may keep the pages it cached of this file (FOPEN_KEEP_CACHE),
    /// that is whether the content is unchanged since the previous open.
    pub fn open_keep_cache(&mut self, ino: Ino) -> bool {
        let Some(inode) = self.by_ino.get_mut(&ino) else {
            return false;
        };
        let keep = inode.cached_version == Some(inode.content_version);
        inode.cached_version = Some(inode.content_version);
        keep
    }

    /// At opendir: whether the kernel may keep the entries it cached of this folder at the
    /// previous opendir (FOPEN_KEEP_CACHE), that is whether it was given the same listing
    /// (`serial`) then. `None`: what is read now is not to be cached.
    pub fn opendir_keep_cache(&mut self, ino: Ino, serial: Option<u64>) -> bool {
        let Some(inode) = self.by_ino.get_mut(&ino) else {
            return false;
        };
        let keep = serial.is_some() && inode.cached_version == serial;
        inode.cached_version = serial;
        keep
    }

    /// Marks the content of an entry changed (the write side, after an upload).
    pub fn content_changed(&mut self, ino: Ino) {
        if let Some(inode) = self.by_ino.get_mut(&ino) {
            inode.content_version += 1;
        }
    }

    /// The path of an entry from the mount's root, for log lines ("?" for missing links).
    pub fn path_of(&self, ino: Ino) -> String {
        let mut parts = Vec::new();
        let mut cur = ino;
        while cur != ROOT_INO && parts.len() < 256 {
            match self.by_ino.get(&cur) {
                Some(inode) => {
                    parts.push(inode.name.as_str());
                    cur = inode.parent;
                }
                None => {
                    parts.push("?");
                    break;
                }
            }
        }
        parts.reverse();
        format!("/{}", parts.join("/"))
    }

    fn release_if_unreferenced(&mut self, ino: Ino) {
        let Some(inode) = self.by_ino.get(&ino) else {
            return;
        };
        if ino == ROOT_INO || inode.lookups > 0 || inode.pins > 0 {
            return;
        }
        self.unreferenced.put(ino, ());
        // The entry just released stays even beyond the capacity: its caller may be about to
        // hand its number to the kernel.
        while self.unreferenced.len() > self.capacity {
            match self.unreferenced.peek_lru() {
                Some((&old, ())) if old != ino => {}
                _ => break,
            }
            let Some((old, ())) = self.unreferenced.pop_lru() else {
                break;
            };
            if let Some(gone) = self.by_ino.remove(&old)
                && self.by_key.get(&gone.key) == Some(&old)
            {
                self.by_key.remove(&gone.key);
            }
        }
    }

    #[cfg(test)]
    pub fn lookups(&self, ino: Ino) -> u64 {
        self.by_ino.get(&ino).map_or(0, |i| i.lookups)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(id: &str) -> Node {
        Node::Folder(Folder {
            id: Id::new(id),
            name: id.to_string(),
            created_at: None,
            updated_at: None,
        })
    }

    #[test]
    fn one_inode_per_remote_id() {
        let mut t = InodeTable::new(10);
        let a = t.upsert(ROOT_INO, "a", folder("A"), &Id::new("A"));
        let again = t.upsert(ROOT_INO, "a-renamed", folder("A"), &Id::new("A"));
        assert_eq!(a, again);
        assert_eq!(t.get(a).unwrap().name, "a-renamed");
        let b = t.upsert(a, "b", folder("B"), &Id::new("B"));
        assert_ne!(a, b);
        assert_eq!(t.path_of(b), "/a-renamed/b");
    }

    fn file(id: &str) -> Node {
        Node::File(RemoteFile {
            file: Arc::new(
                serde_json::from_value(serde_json::json!({"id": id, "name": id})).unwrap(),
            ),
            exact_size: Some(1),
        })
    }

    #[test]
    fn remote_objects_get_the_same_number_in_every_table() {
        let mut first = InodeTable::new(10);
        let mut second = InodeTable::new(10);
        let a = first.upsert(ROOT_INO, "a", folder("7"), &Id::new("7"));
        let f = first.upsert(a, "f.txt", file("7"), &Id::new("7"));
        first.insert_local(
            a,
            "new.txt",
            Node::Local(LocalFile {
                size: 0,
                mtime: std::time::SystemTime::UNIX_EPOCH,
            }),
        );
        // Another order, other names, other parents: the numbers follow the objects.
        let f2 = second.upsert(ROOT_INO, "renamed.txt", file("7"), &Id::new("7"));
        let a2 = second.upsert(ROOT_INO, "b", folder("7"), &Id::new("7"));
        assert_eq!((a, f), (a2, f2));
        assert_ne!(a, f, "a folder and a file of one id");
        for ino in [a, f] {
            assert!(ino > ROOT_INO && ino & DERIVED != 0, "{ino:#x}");
            assert!(i64::try_from(ino).is_ok(), "positive as a signed number");
        }
        assert_eq!(derived_ino(&Key::File(Id::new("7"))), Some(f));
        assert_eq!(derived_ino(&Key::Local(5)), None);
    }

    #[test]
    fn a_taken_derived_number_falls_back_to_the_counter() {
        let mut t = InodeTable::new(10);
        let id = Id::new("F");
        let f = t.upsert(ROOT_INO, "f.txt", file("F"), &id);
        t.add_lookups(f, 1);
        // The write side makes the entry local while its new content is staged; the listing
        // still shows the stored file, which must not take the number the kernel holds.
        t.rekey(f, Key::Local(f));
        let listed = t.upsert(ROOT_INO, "f.txt", file("F"), &id);
        assert_ne!(listed, f);
        assert!(listed > ROOT_INO && listed & DERIVED == 0, "{listed:#x}");
        assert_eq!(t.get(f).unwrap().key, Key::Local(f));
        assert_eq!(t.ino_of(&Key::File(id)), Some(listed));
    }

    #[test]
    fn a_folder_and_a_file_of_one_id_are_two_entries() {
        let mut t = InodeTable::new(10);
        let id = Id::new("7");
        let dir = t.upsert(ROOT_INO, "Photos", folder("7"), &id);
        let file = RemoteFile {
            file: Arc::new(
                serde_json::from_value(serde_json::json!({"id": 7, "name": "notes"})).unwrap(),
            ),
            exact_size: Some(5),
        };
        let f = t.upsert(ROOT_INO, "notes.txt", Node::File(file), &id);
        assert_ne!(dir, f);
        assert!(t.get(dir).unwrap().node.is_dir());
        assert!(!t.get(f).unwrap().node.is_dir());
        assert_eq!(t.ino_of(&Key::Folder(id.clone())), Some(dir));
        assert_eq!(t.ino_of(&Key::File(id)), Some(f));
    }

    #[test]
    fn referenced_entries_are_never_dropped_and_numbers_never_reused() {
        let mut t = InodeTable::new(2);
        let kept = t.upsert(ROOT_INO, "kept", folder("K"), &Id::new("K"));
        t.add_lookups(kept, 1);
        let mut seen = vec![kept];
        for i in 0..10 {
            let id = Id::new(format!("X{i}"));
            seen.push(t.upsert(ROOT_INO, "x", folder(id.as_str()), &id));
        }
        assert!(t.get(kept).is_some());
        assert_eq!(
            t.len(),
            1 + 1 + 2,
            "root, the referenced entry and an LRU of 2"
        );
        let mut sorted = seen.clone();
        sorted.dedup();
        assert_eq!(sorted.len(), seen.len());

        t.forget(kept, 1);
        for i in 10..13 {
            let id = Id::new(format!("X{i}"));
            let ino = t.upsert(ROOT_INO, "x", folder(id.as_str()), &id);
            assert!(!seen.contains(&ino));
        }
        assert!(
            t.get(kept).is_none(),
            "forgotten entries age out of the LRU"
        );
    }

    #[test]
    fn pinned_entries_stay_and_new_entries_survive_until_referenced() {
        let mut t = InodeTable::new(0);
        let a = t.upsert(ROOT_INO, "a", folder("A"), &Id::new("A"));
        assert!(
            t.get(a).is_some(),
            "the newest entry survives until its caller takes it"
        );
        t.pin(a);
        let b = t.upsert(ROOT_INO, "b", folder("B"), &Id::new("B"));
        let c = t.upsert(ROOT_INO, "c", folder("C"), &Id::new("C"));
        assert!(t.get(a).is_some(), "pinned");
        assert!(t.get(b).is_none(), "unreferenced and older than the newest");
        assert!(t.get(c).is_some());
        t.unpin(a);
        t.upsert(ROOT_INO, "d", folder("D"), &Id::new("D"));
        assert!(t.get(a).is_none());
    }

    #[test]
    fn keep_cache_only_while_the_content_is_unchanged() {
        let mut t = InodeTable::new(10);
        let mut rf = RemoteFile {
            file: Arc::new(File {
                id: Id::new("F"),
                name: "f".into(),
                basename: None,
                url: None,
                full_url: None,
                indirect_url: None,
                size: None,
                mime_type: None,
                folder_id: None,
                created_at: None,
                updated_at: None,
            }),
            exact_size: Some(10),
        };
        let f = t.upsert(ROOT_INO, "f", Node::File(rf.clone()), &Id::new("F"));
        t.add_lookups(f, 1);
        assert!(!t.open_keep_cache(f), "first open: nothing cached yet");
        assert!(t.open_keep_cache(f));
        rf.exact_size = Some(11);
        t.upsert(ROOT_INO, "f", Node::File(rf), &Id::new("F"));
        assert!(!t.open_keep_cache(f));
        assert!(t.open_keep_cache(f));
    }
}
