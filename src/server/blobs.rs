//! File bytes on disk: `DATA/blobs/<xx>/<file id>` (spread over 256 folders by the id's last
//! two hex digits), and `DATA/tmp/` where uploads are streamed before they are accepted.

use std::io;
use std::path::{Path, PathBuf};

pub struct Blobs {
    root: PathBuf,
    tmp: PathBuf,
}

impl Blobs {
    /// Opens the blob folder under `data_dir`, creating it, and clears uploads that a previous
    /// run left unfinished.
    pub fn open(data_dir: &Path) -> io::Result<Blobs> {
        let root = data_dir.join("blobs");
        let tmp = data_dir.join("tmp");
        std::fs::create_dir_all(&root)?;
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp)?;
        }
        std::fs::create_dir_all(&tmp)?;
        Ok(Blobs { root, tmp })
    }

    /// Where the bytes of file `id` live.
    pub fn path(&self, id: &str) -> PathBuf {
        let shard = id.get(id.len().saturating_sub(2)..).unwrap_or("00");
        self.root.join(shard).join(id)
    }

    /// A new temporary file for an incoming upload; removed when the handle drops unless it
    /// was placed.
    pub fn temp_file(&self) -> io::Result<tempfile::NamedTempFile> {
        tempfile::NamedTempFile::new_in(&self.tmp)
    }

    /// Moves an accepted upload into place as file `id`.
    pub fn place(&self, temp: &Path, id: &str) -> io::Result<()> {
        let dest = self.path(id);
        if let Some(dir) = dest.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::rename(temp, dest)
    }

    /// Deletes the bytes of file `id`; a blob already gone is not an error.
    pub fn remove(&self, id: &str) -> io::Result<()> {
        match std::fs::remove_file(self.path(id)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}
