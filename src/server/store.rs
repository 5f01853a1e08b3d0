//! The library's metadata in SQLite (`DATA/cloudify.sqlite3`, WAL mode): folders and files,
//! soft-deleted rows kept with `deleted_at` set, because trashed names stay reserved.
//!
//! Every method takes the one connection lock for its whole duration, so the read-then-write
//! steps of naming (find the taken names, pick a free suffix, insert) are atomic. Names are
//! compared through `name_key` (see [`names::fold_key`]); listings are ordered by it.

use std::collections::HashSet;
use std::path::Path;

use parking_lot::Mutex;
use rusqlite::{Connection, OptionalExtension, params};

use super::format::now_unix;
use super::names;

/// Root's id in `parent_id`/`folder_id`, as the product stores it.
pub const ROOT: &str = "0";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS folders (
    id TEXT PRIMARY KEY,
    parent_id TEXT NOT NULL,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    slug TEXT NOT NULL,
    color TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    deleted_at INTEGER
);
CREATE INDEX IF NOT EXISTS folders_by_parent ON folders(parent_id, name_key);
CREATE INDEX IF NOT EXISTS folders_by_slug ON folders(parent_id, slug);
CREATE TABLE IF NOT EXISTS files (
    id TEXT PRIMARY KEY,
    folder_id TEXT NOT NULL,
    name TEXT NOT NULL,
    name_key TEXT NOT NULL,
    basename TEXT NOT NULL,
    url TEXT NOT NULL UNIQUE,
    mime_type TEXT NOT NULL,
    size INTEGER NOT NULL,
    is_public INTEGER NOT NULL,
    options TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    deleted_at INTEGER
);
CREATE INDEX IF NOT EXISTS files_by_folder ON files(folder_id, name_key);
";

const FOLDER_COLS: &str = "id, parent_id, name, slug, color, created_at, updated_at";
const FILE_COLS: &str = "id, folder_id, name, basename, url, mime_type, size, is_public, \
                         options, created_at, updated_at";

/// A folder row as the API shows it (plus what the server needs to place files).
#[derive(Debug, Clone)]
pub struct FolderRow {
    pub id: String,
    pub parent_id: String,
    pub name: String,
    pub slug: String,
    pub color: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A file row; its bytes are the blob named by `id`.
#[derive(Debug, Clone)]
pub struct FileRow {
    pub id: String,
    pub folder_id: String,
    pub name: String,
    pub basename: String,
    pub url: String,
    pub mime_type: String,
    pub size: u64,
    pub is_public: bool,
    pub options: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// What an upload adds, before the store has picked its name and path.
#[derive(Debug, Clone)]
pub struct NewFile {
    pub folder_id: String,
    /// The client's filename without its extension.
    pub stem: String,
    /// Lowercased extension of the stored object.
    pub extension: String,
    pub mime_type: String,
    pub size: u64,
    pub is_public: bool,
}

/// A window of a listing: skip `offset` rows, return at most `limit`.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub offset: u64,
    pub limit: u64,
}

/// Failure of the metadata store (the SQL message, as the product would show it).
#[derive(Debug, thiserror::Error)]
#[error("database error: {0}")]
pub struct StoreError(#[from] rusqlite::Error);

pub struct Store {
    conn: Mutex<Connection>,
}

fn folder_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<FolderRow> {
    Ok(FolderRow {
        id: r.get(0)?,
        parent_id: r.get(1)?,
        name: r.get(2)?,
        slug: r.get(3)?,
        color: r.get(4)?,
        created_at: r.get(5)?,
        updated_at: r.get(6)?,
    })
}

fn file_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<FileRow> {
    Ok(FileRow {
        id: r.get(0)?,
        folder_id: r.get(1)?,
        name: r.get(2)?,
        basename: r.get(3)?,
        url: r.get(4)?,
        mime_type: r.get(5)?,
        size: r.get::<_, i64>(6)?.max(0) as u64,
        is_public: r.get(7)?,
        options: r.get(8)?,
        created_at: r.get(9)?,
        updated_at: r.get(10)?,
    })
}

/// `LIMIT ? OFFSET ?` values of an optional window (-1 = no limit in SQLite).
fn limit_offset(w: Option<Window>) -> (i64, i64) {
    match w {
        Some(w) => (
            w.limit.min(i64::MAX as u64) as i64,
            w.offset.min(i64::MAX as u64) as i64,
        ),
        None => (-1, 0),
    }
}

/// Ids of a folder and all its descendants, trashed or not.
const SUBTREE: &str = "WITH RECURSIVE sub(id) AS (
    SELECT id FROM folders WHERE id = ?1
    UNION SELECT f.id FROM folders f JOIN sub ON f.parent_id = sub.id)";

/// The name keys under `parent` that could collide with `name` or its "-N" variants: the key
/// itself and the keys that start with it and "-" (an index range: "-" sorts just before ".").
fn taken_names(
    tx: &Connection,
    table: &str,
    parent_col: &str,
    parent: &str,
    name: &str,
) -> Result<HashSet<String>, StoreError> {
    let key = names::fold_key(name);
    let mut stmt = tx.prepare_cached(&format!(
        "SELECT name_key FROM {table} WHERE {parent_col} = ?1
         AND (name_key = ?2 OR (name_key >= ?2 || '-' AND name_key < ?2 || '.'))"
    ))?;
    let keys = stmt.query_map(params![parent, key], |r| r.get(0))?;
    Ok(keys.collect::<Result<_, _>>()?)
}

impl Store {
    /// Opens (or creates) the database at `path`.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        let conn = Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(SCHEMA)?;
        Ok(Store {
            conn: Mutex::new(conn),
        })
    }

    /// True when the library holds no folder and no file, trashed ones included.
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        let conn = self.conn.lock();
        let n: i64 = conn.query_row(
            "SELECT (SELECT COUNT(*) FROM folders) + (SELECT COUNT(*) FROM files)",
            [],
            |r| r.get(0),
        )?;
        Ok(n == 0)
    }

    /// Live folders whose parent is `parent`, in name order.
    pub fn list_folders(
        &self,
        parent: &str,
        window: Option<Window>,
    ) -> Result<Vec<FolderRow>, StoreError> {
        let (limit, offset) = limit_offset(window);
        let conn = self.conn.lock();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {FOLDER_COLS} FROM folders WHERE parent_id = ?1 AND deleted_at IS NULL
             ORDER BY name_key, id LIMIT ?2 OFFSET ?3"
        ))?;
        let rows = stmt.query_map(params![parent, limit, offset], folder_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    pub fn count_folders(&self, parent: &str) -> Result<u64, StoreError> {
        let conn = self.conn.lock();
        let n: i64 = conn.query_row(
            "SELECT COUNT(*) FROM folders WHERE parent_id = ?1 AND deleted_at IS NULL",
            [parent],
            |r| r.get(0),
        )?;
        Ok(n as u64)
    }

    /// Live files of `folder`, in name order. Root also shows the live files whose folder is
    /// trashed or gone, as the product's listing query does.
    pub fn list_files(
        &self,
        folder: &str,
        window: Option<Window>,
    ) -> Result<Vec<FileRow>, StoreError> {
        let (limit, offset) = limit_offset(window);
        let conn = self.conn.lock();
        let sql = if folder == ROOT {
            format!(
                "SELECT {FILE_COLS} FROM files f WHERE f.deleted_at IS NULL AND (f.folder_id = ?1
                   OR NOT EXISTS (SELECT 1 FROM folders d
                                  WHERE d.id = f.folder_id AND d.deleted_at IS NULL))
                 ORDER BY name_key, id LIMIT ?2 OFFSET ?3"
            )
        } else {
            format!(
                "SELECT {FILE_COLS} FROM files WHERE folder_id = ?1 AND deleted_at IS NULL
                 ORDER BY name_key, id LIMIT ?2 OFFSET ?3"
            )
        };
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![folder, limit, offset], file_from_row)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// A live folder.
    pub fn get_folder(&self, id: &str) -> Result<Option<FolderRow>, StoreError> {
        let conn = self.conn.lock();
        Ok(conn
            .query_row(
                &format!("SELECT {FOLDER_COLS} FROM folders WHERE id = ?1 AND deleted_at IS NULL"),
                [id],
                folder_from_row,
            )
            .optional()?)
    }

    /// Creates a folder under `parent` (not checked: a missing parent makes a dangling
    /// folder, as in the product). Name and slug get "-N" suffixes when a sibling, live or
    /// trashed, already holds them.
    pub fn create_folder(
        &self,
        parent: &str,
        name: &str,
        color: Option<&str>,
    ) -> Result<FolderRow, StoreError> {
        let mut conn = self.conn.lock();
        let tx = conn.transaction()?;
        let names_taken = taken_names(&tx, "folders", "parent_id", parent, name)?;
        let name = names::unique_name(name, &names_taken, names::fold_key);
        let base_slug = names::slug(&name);
        let slugs_taken: HashSet<String> = {
            let mut stmt = tx.prepare_cached(
                "SELECT slug FROM folders WHERE parent_id = ?1
                 AND (slug = ?2 OR (slug >= ?2 || '-' AND slug < ?2 || '.'))",
            )?;
            stmt.query_map(params![parent, base_slug], |r| r.get(0))?
                .collect::<Result<_, _>>()?
        };
        let slug = names::unique_name(&base_slug, &slugs_taken, str::to_string);
        let now = now_unix();
        let row = FolderRow {
            id: uuid::Uuid::now_v7().to_string(),
            parent_id: parent.to_string(),
            name,
            slug,
            color: color.map(str::to_string),
            created_at: now,
            updated_at: now,
        };
        tx.execute(
            "INSERT INTO folders (id, parent_id, name, name_key, slug, color, created_at,
                                  updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7)",
            params![
                row.id,
                row.parent_id,
                row.name,
                names::fold_key(&row.name),
                row.slug,
                row.color,
                now
            ],
        )?;
        tx.commit()?;
        Ok(row)
    }

    /// Live folder with exactly this name key under `parent` (for imports and `path`).
    pub fn find_folder_by_name(
        &self,
        parent: &str,
        name: &str,
    ) -> Result<Option<FolderRow>, StoreError> {
        let conn = self.conn.lock();
        Ok(conn
            .query_row(
                &format!(
                    "SELECT {FOLDER_COLS} FROM folders WHERE parent_id = ?1 AND name_key = ?2
                     AND deleted_at IS NULL ORDER BY id LIMIT 1"
                ),
                params![parent, names::fold_key(name)],
                folder_from_row,
            )
            .optional()?)
    }

    /// The storage path of a folder: its chain of slugs from root, joined by "/". Empty for
    /// root and for an id that names no folder (objects then land at the disk root).
    fn folder_path(tx: &Connection, folder_id: &str) -> Result<String, StoreError> {
        let mut parts = Vec::new();
        let mut seen = HashSet::new();
        let mut current = folder_id.to_string();
        while current != ROOT && seen.insert(current.clone()) {
            let row: Option<(String, String)> = tx
                .query_row(
                    "SELECT parent_id, slug FROM folders WHERE id = ?1",
                    [&current],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((parent, slug)) = row else { break };
            parts.push(slug);
            current = parent;
        }
        parts.reverse();
        Ok(parts.join("/"))
    }

    /// Adds a file row: the name is the stem made unique among the folder's files (live and
    /// trashed, extension ignored); the stored path is the folder's slug chain plus the
    /// slugged stem (at most 100 characters, "-N" when the path is taken) and the extension.
    /// `place_blob` runs inside the transaction with the new id; the row is kept only if it
    /// succeeds.
    pub fn insert_file(
        &self,
        new: &NewFile,
        place_blob: impl FnOnce(&str) -> std::io::Result<()>,
    ) -> Result<Result<FileRow, std::io::Error>, StoreError> {
        let mut conn = self.conn.lock();
        let tx = conn.transaction()?;
        let names_taken = taken_names(&tx, "files", "folder_id", &new.folder_id, &new.stem)?;
        let name = names::unique_name(&new.stem, &names_taken, names::fold_key);
        let url = Self::free_url(&tx, &new.folder_id, &new.stem, &new.extension)?;
        let basename = url.rsplit('/').next().unwrap_or(&url).to_string();
        let now = now_unix();
        let row = FileRow {
            id: uuid::Uuid::now_v7().to_string(),
            folder_id: new.folder_id.clone(),
            name,
            basename,
            url,
            mime_type: new.mime_type.clone(),
            size: new.size,
            is_public: new.is_public,
            options: None,
            created_at: now,
            updated_at: now,
        };
        tx.execute(
            "INSERT INTO files (id, folder_id, name, name_key, basename, url, mime_type, size,
                                is_public, options, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, NULL, ?10, ?10)",
            params![
                row.id,
                row.folder_id,
                row.name,
                names::fold_key(&row.name),
                row.basename,
                row.url,
                row.mime_type,
                row.size as i64,
                row.is_public,
                now
            ],
        )?;
        if let Err(e) = place_blob(&row.id) {
            return Ok(Err(e));
        }
        tx.commit()?;
        Ok(Ok(row))
    }

    /// `folder/slug.ext`, with "-1", "-2" on the slug while another object holds the path.
    fn free_url(
        tx: &Connection,
        folder_id: &str,
        stem: &str,
        ext: &str,
    ) -> Result<String, StoreError> {
        let dir = Self::folder_path(tx, folder_id)?;
        let mut base = names::cut_chars(&names::slug(stem), 100).to_string();
        if base.is_empty() {
            base = now_unix().to_string();
        }
        let mut stmt = tx.prepare_cached("SELECT 1 FROM files WHERE url = ?1")?;
        for i in 0u64.. {
            let slug = if i == 0 {
                base.clone()
            } else {
                format!("{base}-{i}")
            };
            let file = if ext.is_empty() {
                slug
            } else {
                format!("{slug}.{ext}")
            };
            let url = if dir.is_empty() {
                file
            } else {
                format!("{dir}/{file}")
            };
            if !stmt.exists([&url])? {
                return Ok(url);
            }
        }
        unreachable!("an unbounded counter always finds a free path")
    }

    /// Soft-deletes a folder, its descendants and their files. Unknown ids change nothing.
    pub fn trash_folder(&self, id: &str) -> Result<(), StoreError> {
        let mut conn = self.conn.lock();
        let tx = conn.transaction()?;
        let now = now_unix();
        tx.execute(
            &format!(
                "{SUBTREE} UPDATE folders SET deleted_at = ?2
                 WHERE id IN (SELECT id FROM sub) AND deleted_at IS NULL"
            ),
            params![id, now],
        )?;
        tx.execute(
            &format!(
                "{SUBTREE} UPDATE files SET deleted_at = ?2
                 WHERE folder_id IN (SELECT id FROM sub) AND deleted_at IS NULL"
            ),
            params![id, now],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Removes a folder, all its descendants and their files for good; returns the ids of
    /// the removed files so their blobs can be deleted.
    pub fn delete_folder(&self, id: &str) -> Result<Vec<String>, StoreError> {
        let mut conn = self.conn.lock();
        let tx = conn.transaction()?;
        let file_ids: Vec<String> = {
            let mut stmt = tx.prepare_cached(&format!(
                "{SUBTREE} SELECT id FROM files WHERE folder_id IN (SELECT id FROM sub)"
            ))?;
            stmt.query_map([id], |r| r.get(0))?
                .collect::<Result<_, _>>()?
        };
        tx.execute(
            &format!("{SUBTREE} DELETE FROM files WHERE folder_id IN (SELECT id FROM sub)"),
            [id],
        )?;
        tx.execute(
            &format!("{SUBTREE} DELETE FROM folders WHERE id IN (SELECT id FROM sub)"),
            [id],
        )?;
        tx.commit()?;
        Ok(file_ids)
    }

    /// Soft-deletes a live file; false when it is unknown or already trashed.
    pub fn trash_file(&self, id: &str) -> Result<bool, StoreError> {
        let conn = self.conn.lock();
        let n = conn.execute(
            "UPDATE files SET deleted_at = ?2 WHERE id = ?1 AND deleted_at IS NULL",
            params![id, now_unix()],
        )?;
        Ok(n > 0)
    }

    /// Removes a file row for good; true when there was one.
    pub fn delete_file(&self, id: &str) -> Result<bool, StoreError> {
        let conn = self.conn.lock();
        Ok(conn.execute("DELETE FROM files WHERE id = ?1", [id])? > 0)
    }

    /// The file stored at `url` (live or trashed: a soft delete leaves the object in place).
    pub fn file_by_url(&self, url: &str) -> Result<Option<FileRow>, StoreError> {
        let conn = self.conn.lock();
        Ok(conn
            .query_row(
                &format!("SELECT {FILE_COLS} FROM files WHERE url = ?1"),
                [url],
                file_from_row,
            )
            .optional()?)
    }

    /// A live file by id.
    pub fn live_file(&self, id: &str) -> Result<Option<FileRow>, StoreError> {
        let conn = self.conn.lock();
        Ok(conn
            .query_row(
                &format!("SELECT {FILE_COLS} FROM files WHERE id = ?1 AND deleted_at IS NULL"),
                [id],
                file_from_row,
            )
            .optional()?)
    }
}
