//! Folders, files and ids as the Cloudify API sends them.
//!
//! TODO(api helper): tolerant deserialisation (see ../shared/cloudify-api.md §4 and §10).
//! The public shapes below are the contract the filesystem codes against; extend them, but
//! keep these fields and meanings.

use chrono::NaiveDateTime;

/// A remote object id. Cloudify uses UUID strings, a BIGINT install uses numbers; both are
/// kept as text. The root folder is "0".
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id(String);

impl Id {
    pub fn new(id: impl Into<String>) -> Id {
        Id(id.into())
    }

    pub fn root() -> Id {
        Id("0".to_string())
    }

    pub fn is_root(&self) -> bool {
        self.0 == "0" || self.0.is_empty()
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Id {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What the listing says of a file's size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SizeHint {
    /// A numeric `size`: taken as the exact byte count.
    Exact(u64),
    /// The localised text ("1.000,00 KB") converted to bytes: only approximate.
    Approx(u64),
}

/// A folder as listed. Cloudify sends no `parent_id`: the parent is the folder whose listing
/// it came from.
#[derive(Clone, Debug, PartialEq)]
pub struct Folder {
    pub id: Id,
    pub name: String,
    pub created_at: Option<NaiveDateTime>,
    pub updated_at: Option<NaiveDateTime>,
}

/// A file as listed.
#[derive(Clone, Debug, PartialEq)]
pub struct File {
    pub id: Id,
    /// The original name without its extension, possibly with a "-N" suffix.
    pub name: String,
    /// The stored object's basename (slugged, lowercased, with extension).
    pub basename: Option<String>,
    /// Relative storage path, e.g. `documents/sub/image.jpg`.
    pub url: Option<String>,
    /// Absolute public URL of the bytes; `None` for private files.
    pub full_url: Option<String>,
    /// Absolute URL that serves the bytes without auth, also for private files.
    pub indirect_url: Option<String>,
    pub size: Option<SizeHint>,
    pub mime_type: Option<String>,
    pub folder_id: Option<Id>,
    pub created_at: Option<NaiveDateTime>,
    pub updated_at: Option<NaiveDateTime>,
}

/// One folder's content: subfolders and files, in the server's order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Listing {
    pub folders: Vec<Folder>,
    pub files: Vec<File>,
}
