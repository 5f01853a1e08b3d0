//! Storing staged content on the server, including the safe overwrite.
//!
//! Cloudify has no overwrite and keeps a name reserved while any file holds it, trashed
//! ones included. The only way to keep a name is to delete the old file permanently and then
//! upload the new content. [`store`] does that without risk of losing both versions:
//!
//! 1. hold the old content locally (the backup: downloaded into the staging folder unless
//!    it is there already);
//! 2. delete the old file permanently;
//! 3. upload the new content;
//! 4. if the upload failed, upload the backup again under the old name and folder. The
//!    failure is returned; the new content stays staged. Should the restore fail too, the
//!    backup stays staged (with its manifest, so the next start uploads it) and both paths
//!    are in the error.
//!
//! Every step blocks on HTTP; callers hold no lock.

use std::sync::Arc;

use crate::api::{ApiError, File, Id, Remote};
use crate::fs::error::FsError;

use super::staging::{Manifest, Staged, Staging, upload_name};
use super::stream::ForStore;

/// What to store.
pub struct Job {
    pub folder: Id,
    /// Upload file name (stem and extension).
    pub name: String,
    pub staged: Staged,
    /// The path in the mount, for messages.
    pub path: String,
    /// The remote file that holds the name now.
    pub replaces: Option<File>,
    /// Old content already held locally.
    pub backup: Option<Staged>,
}

/// A store that did not happen; the fields say what the caller holds now.
pub struct Failure {
    pub error: FsError,
    /// The remote file that holds the name after the failure (the old one, or its restored
    /// copy), to be replaced by the next attempt.
    pub replaces: Option<File>,
    /// Old content still held locally.
    pub backup: Option<Staged>,
}

fn not_stored(cause: ApiError, message: String) -> FsError {
    FsError::NotStored {
        message,
        cause: Arc::new(cause),
    }
}

/// Uploads `job`, replacing `job.replaces` by the protocol above.
pub fn store(remote: &dyn Remote, staging: &Staging, job: Job) -> Result<File, Box<Failure>> {
    let staged_at = job.staged.data.display().to_string();
    let mut backup = job.backup;
    if let Some(old) = &job.replaces {
        if backup.is_none() {
            backup = hold(remote, staging, old, &job.path).map_err(|error| {
                Box::new(Failure {
                    error,
                    replaces: job.replaces.clone(),
                    backup: None,
                })
            })?;
        }
        match remote.delete_file(&old.id) {
            Ok(()) | Err(ApiError::NotFound { .. }) => {}
            Err(e) => {
                let message = format!(
                    "cannot delete the old {} to replace it; nothing changed on the server, \
                     the new content stays staged at {staged_at}",
                    job.path
                );
                return Err(Box::new(Failure {
                    error: not_stored(e, message),
                    replaces: job.replaces.clone(),
                    backup,
                }));
            }
        }
    }

    match remote.upload_file(&job.folder, &job.name, &job.staged.data) {
        Ok(file) => {
            if let Some(b) = &backup {
                staging.remove(b);
            }
            Ok(file)
        }
        Err(e) => Err(Box::new(restore(
            remote, staging, e, backup, &job.path, &staged_at,
        ))),
    }
}

/// Stores `job` by ending its streamed upload when there is one (a new file, so nothing is
/// replaced), else by [`store`]. A streamed upload that failed is sent again from the
/// staged file by [`store`] (with its retries), unless the server refused the content for
/// good (its type or size), which another upload of the same bytes cannot change.
pub fn store_or_finish(
    remote: &dyn Remote,
    staging: &Staging,
    job: Job,
    streamed: Option<ForStore>,
) -> Result<File, Box<Failure>> {
    let Some(upload) = streamed.and_then(ForStore::upload) else {
        return store(remote, staging, job);
    };
    match upload.finish() {
        Ok(file) => Ok(file),
        Err(e)
            if matches!(
                e,
                ApiError::TypeNotAllowed { .. } | ApiError::TooLarge { .. }
            ) =>
        {
            let message = format!(
                "the new content stays staged at {}",
                job.staged.data.display()
            );
            Err(Box::new(Failure {
                error: not_stored(e, message),
                replaces: job.replaces,
                backup: job.backup,
            }))
        }
        Err(e) => {
            log::info!(
                "{}: the upload while writing failed ({e}); uploading the staged copy",
                job.path
            );
            store(remote, staging, job)
        }
    }
}

/// Downloads the old content into the staging folder; `None` when the old file is gone
/// already (nothing to protect).
fn hold(
    remote: &dyn Remote,
    staging: &Staging,
    old: &File,
    path: &str,
) -> Result<Option<Staged>, FsError> {
    let folder = old.folder_id.clone().unwrap_or_else(Id::root);
    let mut manifest = Manifest::new(&folder, &upload_name(old), path);
    manifest.backup_of = Some(old.id.as_str().to_string());
    match staging.download(remote, old, &manifest) {
        Ok((staged, _)) => Ok(Some(staged)),
        Err(FsError::Remote(e)) if matches!(*e, ApiError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// After a failed upload: puts the held old content back under its name.
fn restore(
    remote: &dyn Remote,
    staging: &Staging,
    cause: ApiError,
    backup: Option<Staged>,
    path: &str,
    staged_at: &str,
) -> Failure {
    let Some(b) = backup else {
        let message = format!("the new content stays staged at {staged_at}");
        return Failure {
            error: not_stored(cause, message),
            replaces: None,
            backup: None,
        };
    };
    let manifest = read_manifest(staging, &b);
    match remote.upload_file(&manifest.folder_id(), &manifest.name, &b.data) {
        Ok(restored) => {
            staging.remove(&b);
            let message = format!(
                "the old content is back on the server as {}; the new content stays staged \
                 at {staged_at}",
                upload_name(&restored)
            );
            Failure {
                error: not_stored(cause, message),
                replaces: Some(restored),
                backup: None,
            }
        }
        Err(again) => {
            let message = format!(
                "putting the old content of {path} back failed too ({again}); both are kept \
                 locally: the old at {}, the new at {staged_at}",
                b.data.display()
            );
            Failure {
                error: not_stored(cause, message),
                replaces: None,
                backup: Some(b),
            }
        }
    }
}

fn read_manifest(staging: &Staging, b: &Staged) -> Manifest {
    let path = staging.dir().join(format!("{}.json", b.id));
    std::fs::read(&path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default()
}
