//! The staging store: written content on local disk until the server has it.
//!
//! Every staged file is two files in `<cache-dir>/staging` (mode 0700): `<id>.data` (0600),
//! the bytes, and `<id>.json`, a small [`Manifest`] saying where the bytes belong (the
//! parent folder's id, the file name, the remote file they replace). The manifest exists
//! while the content is not stored, so the staged files of a mount that crashed are found at
//! the next start ([`Staging::leftovers`]) and uploaded, or reported with their paths.
//! Manifests are replaced atomically (written aside, then renamed). Content the server
//! refuses for good (its type or size) is moved with its manifest to `staging/refused/`
//! ([`Staging::set_aside`]), reported once, and never retried.

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::api::{File, Id, Remote};
use crate::fs::error::FsError;

/// The folder of `staging/` that holds content the server refuses for good.
pub const REFUSED_DIR: &str = "refused";

/// Where staged bytes belong.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Remote id of the folder the file is uploaded into.
    pub folder: String,
    /// The file name sent with the upload (stem and extension).
    pub name: String,
    /// The path in the mount, for log lines.
    pub path: String,
    /// The remote file this content replaces (deleted permanently just before the upload),
    /// as the JSON the API sends.
    #[serde(default)]
    pub replaces: Option<Value>,
    /// Set when these bytes are the held old content of a file being overwritten: the id of
    /// the remote file they were downloaded from.
    #[serde(default)]
    pub backup_of: Option<String>,
    /// The staged id of the held old content of `replaces`, if any.
    #[serde(default)]
    pub backup: Option<String>,
    /// Remote files to remove by `--delete-mode` once these bytes are stored: the copies
    /// under the old name of a renamed file. Recorded so that a crash between the rename
    /// and the store does not leave the old copy behind.
    #[serde(default)]
    pub obsolete: Vec<Value>,
}

impl Manifest {
    pub fn new(folder: &Id, name: &str, path: &str) -> Manifest {
        Manifest {
            folder: folder.as_str().to_string(),
            name: name.to_string(),
            path: path.to_string(),
            ..Manifest::default()
        }
    }

    pub fn folder_id(&self) -> Id {
        Id::new(self.folder.clone())
    }

    pub fn replaced_file(&self) -> Option<File> {
        self.replaces
            .as_ref()
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }

    pub fn set_replaces(&mut self, file: Option<&File>) {
        self.replaces = file.map(file_json);
    }

    pub fn obsolete_files(&self) -> Vec<File> {
        self.obsolete
            .iter()
            .filter_map(|v| serde_json::from_value(v.clone()).ok())
            .collect()
    }

    pub fn set_obsolete(&mut self, files: &[File]) {
        self.obsolete = files.iter().map(file_json).collect();
    }
}

/// A file as the API would send it, so that [`File`]'s tolerant parser reads it back.
fn file_json(f: &File) -> Value {
    json!({
        "id": f.id.as_str(),
        "name": f.name,
        "basename": f.basename,
        "url": f.url,
        "full_url": f.full_url,
        "indirect_url": f.indirect_url,
        "folder_id": f.folder_id.as_ref().map(Id::as_str),
    })
}

/// The upload name of a remote file: its name and the extension of its stored object.
pub fn upload_name(f: &File) -> String {
    match f.extension() {
        Some(ext) => format!("{}.{ext}", f.name),
        None => f.name.clone(),
    }
}

/// One staged file: its id in the store and its data path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Staged {
    pub id: String,
    pub data: PathBuf,
}

/// The staging folder.
pub struct Staging {
    dir: PathBuf,
    /// Tests pretend the disk has only this many bytes free.
    free_override: Mutex<Option<u64>>,
}

fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> FsError {
    let what = what.into();
    move |e| FsError::Io {
        what,
        source: std::sync::Arc::new(e),
    }
}

impl Staging {
    /// Opens (creating) `<cache_dir>/staging` with mode 0700.
    pub fn open(cache_dir: &Path) -> io::Result<Staging> {
        let dir = cache_dir.join("staging");
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700))?;
        Ok(Staging {
            dir,
            free_override: Mutex::new(None),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn manifest_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.json"))
    }

    /// A new, empty staged file described by `manifest`, opened for reading and writing.
    pub fn create(&self, manifest: &Manifest) -> Result<(Staged, fs::File), FsError> {
        let id = uuid::Uuid::now_v7().simple().to_string();
        let data = self.dir.join(format!("{id}.data"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&data)
            .map_err(io_err(format!("creating {}", data.display())))?;
        let staged = Staged { id, data };
        self.write_manifest(&staged, manifest)?;
        Ok((staged, file))
    }

    /// Replaces the manifest of `staged` atomically.
    pub fn write_manifest(&self, staged: &Staged, manifest: &Manifest) -> Result<(), FsError> {
        let path = self.manifest_path(&staged.id);
        let tmp = self.dir.join(format!("{}.json.tmp", staged.id));
        let text = serde_json::to_vec_pretty(manifest).unwrap_or_default();
        let write = || -> io::Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            io::Write::write_all(&mut f, &text)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)
        };
        write().map_err(io_err(format!("writing {}", path.display())))
    }

    /// Removes the manifest only: the bytes stay (as a cache) but are no longer pending.
    pub fn forget_manifest(&self, staged: &Staged) {
        remove_quietly(&self.manifest_path(&staged.id));
    }

    /// Removes a staged file and its manifest.
    pub fn remove(&self, staged: &Staged) {
        remove_quietly(&self.manifest_path(&staged.id));
        remove_quietly(&staged.data);
    }

    /// Moves a staged file the server refuses for good (type, size), with its manifest,
    /// to `refused/` inside the staging folder, where no later mount retries it;
    /// returns where its bytes are now.
    pub fn set_aside(&self, staged: &Staged) -> Result<PathBuf, FsError> {
        let dir = self.dir.join(REFUSED_DIR);
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(io_err(format!("creating {}", dir.display())))?;
        let data = dir.join(format!("{}.data", staged.id));
        let manifest = dir.join(format!("{}.json", staged.id));
        fs::rename(self.manifest_path(&staged.id), &manifest)
            .map_err(io_err(format!("moving a manifest to {}", dir.display())))?;
        fs::rename(&staged.data, &data).map_err(io_err(format!(
            "moving {} to {}",
            staged.data.display(),
            dir.display()
        )))?;
        Ok(data)
    }

    /// Staged files with a manifest: content a previous mount did not store. Data files
    /// without a manifest (stored content kept as a cache) are removed.
    pub fn leftovers(&self) -> Vec<(Staged, Manifest)> {
        let Ok(read) = fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        let mut found = Vec::new();
        for entry in read.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(id) = name.strip_suffix(".data") {
                if !self.manifest_path(id).exists() {
                    remove_quietly(&path);
                }
                continue;
            }
            let Some(id) = name.strip_suffix(".json") else {
                if name.ends_with(".json.tmp") {
                    remove_quietly(&path);
                }
                continue;
            };
            let staged = Staged {
                id: id.to_string(),
                data: self.dir.join(format!("{id}.data")),
            };
            match fs::read(&path).map(|b| serde_json::from_slice::<Manifest>(&b)) {
                Ok(Ok(m)) if staged.data.exists() => found.push((staged, m)),
                Ok(Ok(_)) => remove_quietly(&path),
                Ok(Err(e)) => log::warn!("{}: unreadable staging manifest: {e}", path.display()),
                Err(e) => log::warn!("{}: {e}", path.display()),
            }
        }
        found.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        found
    }

    /// ENOSPC unless the staging disk has `grow` more bytes free.
    pub fn check_space(&self, grow: u64) -> Result<(), FsError> {
        if grow == 0 {
            return Ok(());
        }
        let free = match *self.free_override.lock() {
            Some(n) => n,
            None => {
                free_bytes(&self.dir).map_err(io_err(format!("statvfs {}", self.dir.display())))?
            }
        };
        if grow > free {
            return Err(FsError::NoSpace {
                dir: self.dir.display().to_string(),
                needed: grow,
                free,
            });
        }
        Ok(())
    }

    #[cfg(test)]
    pub fn pretend_free(&self, bytes: Option<u64>) {
        *self.free_override.lock() = bytes;
    }

    /// Downloads the whole content of `file` into a new staged file (streamed, never in
    /// memory). Blocks on HTTP: call without locks.
    pub fn download(
        &self,
        remote: &dyn Remote,
        file: &File,
        manifest: &Manifest,
    ) -> Result<(Staged, fs::File), FsError> {
        let mut download = remote.download(file, 0, None)?;
        if let Some(len) = download.total_len {
            self.check_space(len)?;
        }
        let (staged, mut out) = self.create(manifest)?;
        let result = copy_body(&mut download, &mut out, &staged, file);
        match result {
            Ok(()) => Ok((staged, out)),
            Err(e) => {
                self.remove(&staged);
                Err(e)
            }
        }
    }
}

fn copy_body(
    download: &mut crate::api::Download,
    out: &mut fs::File,
    staged: &Staged,
    file: &File,
) -> Result<(), FsError> {
    let what = format!("{} ({})", upload_name(file), file.id);
    if download.start != 0 {
        return Err(FsError::Download {
            what,
            offset: 0,
            message: format!("server sent bytes from {}", download.start),
        });
    }
    let copied = io::copy(&mut download.body, out).map_err(|e| FsError::Download {
        what: what.clone(),
        offset: 0,
        message: e.to_string(),
    })?;
    if let Some(len) = download.total_len
        && copied != len
    {
        return Err(FsError::Download {
            what,
            offset: copied,
            message: format!("ended after {copied} of {len} bytes"),
        });
    }
    out.sync_data()
        .map_err(io_err(format!("writing {}", staged.data.display())))
}

fn free_bytes(dir: &Path) -> io::Result<u64> {
    let c = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in path"))?;
    // SAFETY: an all-zero statvfs is a valid value for the call to fill in.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is NUL-terminated and outlives the call; `st` is a valid out pointer.
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(st.f_bavail * st.f_frsize)
}

fn remove_quietly(path: &Path) {
    if let Err(e) = fs::remove_file(path)
        && e.kind() != io::ErrorKind::NotFound
    {
        log::warn!("cannot remove {}: {e}", path.display());
    }
}
