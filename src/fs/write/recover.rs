//! At start: staged files a previous mount did not store (it crashed, or the server
//! refused) are uploaded, or reported with their paths. None is dropped, except empty files,
//! which the server cannot store; content the server refuses for good is moved to
//! `staging/refused/` and reported once.

use std::collections::HashMap;

use super::staging::{Manifest, Staged, Staging};
use super::store::{self, Job};
use crate::api::Id;
use crate::fs::{CloudifyFs, FsError};

/// Stores `leftovers` (from [`Staging::leftovers`], listed before the mount staged anything).
pub fn recover(fs: &CloudifyFs, leftovers: Vec<(Staged, Manifest)>) {
    let Ok(staging) = fs.writes.staging() else {
        return;
    };
    log::info!(
        "{} staged file(s) of an earlier mount found in {}",
        leftovers.len(),
        staging.dir().display()
    );
    let mut backups: HashMap<String, (Staged, Manifest)> = HashMap::new();
    let mut contents = Vec::new();
    for (staged, m) in leftovers {
        if m.backup_of.is_some() {
            backups.insert(staged.id.clone(), (staged, m));
        } else {
            contents.push((staged, m));
        }
    }
    for (staged, m) in contents {
        let backup = m
            .backup
            .as_ref()
            .and_then(|id| backups.remove(id))
            .map(|(b, _)| b);
        recover_one(fs, staging, staged, m, backup);
    }
    for (staged, m) in backups.into_values() {
        recover_backup(fs, staging, staged, m);
    }
}

fn recover_one(
    fs: &CloudifyFs,
    staging: &Staging,
    staged: Staged,
    mut m: Manifest,
    backup: Option<Staged>,
) {
    let len = std::fs::metadata(&staged.data)
        .map(|d| d.len())
        .unwrap_or(0);
    if len == 0 {
        log::info!(
            "{}: empty file of an earlier mount dropped (the server refuses empty files)",
            m.path
        );
        staging.remove(&staged);
        return;
    }
    let job = Job {
        folder: m.folder_id(),
        name: m.name.clone(),
        staged: staged.clone(),
        path: m.path.clone(),
        replaces: m.replaced_file(),
        backup,
    };
    match store::store(&*fs.remote, staging, job) {
        Ok(file) => {
            log::info!(
                "{}: staged by an earlier mount, now stored as {}",
                m.path,
                super::staging::upload_name(&file)
            );
            staging.remove(&staged);
            fs.dirs.invalidate(&m.folder_id());
            for old in m.obsolete_files() {
                if let Some(folder) = &old.folder_id {
                    fs.dirs.invalidate(folder);
                }
                match fs.remove_remote_file(&old) {
                    Ok(()) => log::info!(
                        "{}: removed the copy under the old name {}",
                        m.path,
                        super::staging::upload_name(&old)
                    ),
                    Err(e) => log::warn!(
                        "{}: stored, but removing the copy under the old name {} failed: {e}",
                        m.path,
                        super::staging::upload_name(&old)
                    ),
                }
            }
        }
        Err(f) => {
            m.set_replaces(f.replaces.as_ref());
            m.backup = f.backup.as_ref().map(|b| b.id.clone());
            let _ = staging.write_manifest(&staged, &m);
            if f.error.is_permanent_refusal() {
                set_aside(staging, &staged, &m.path, &f.error);
                return;
            }
            log::warn!(
                "{}: staged by an earlier mount and still not stored ({}); the content is at {}",
                m.path,
                f.error,
                staged.data.display()
            );
        }
    }
}

/// Moves content the server refuses for good out of the retry path, and says where it is.
pub fn set_aside(staging: &Staging, staged: &Staged, path: &str, error: &FsError) {
    match staging.set_aside(staged) {
        Ok(kept) => log::warn!(
            "{path}: refused by the server for good ({error}); not retried, the content is \
             kept at {}",
            kept.display()
        ),
        Err(e) => log::warn!(
            "{path}: refused by the server for good ({error}); the content stays at {} ({e})",
            staged.data.display()
        ),
    }
}

/// Held old content whose overwrite did not finish: needed only when the old file is gone.
fn recover_backup(fs: &CloudifyFs, staging: &Staging, staged: Staged, m: Manifest) {
    let folder = m.folder_id();
    let Some(old_id) = m.backup_of.clone().map(Id::new) else {
        return;
    };
    let still_there = match fs.remote.list_folder(&folder) {
        Ok(listing) => listing.files.iter().any(|f| f.id == old_id),
        Err(e) => {
            log::warn!(
                "{}: cannot check the held old content at {}: {e}",
                m.path,
                staged.data.display()
            );
            return;
        }
    };
    if still_there {
        staging.remove(&staged);
        return;
    }
    match fs.remote.upload_file(&folder, &m.name, &staged.data) {
        Ok(file) => {
            log::info!(
                "{}: old content put back as {}",
                m.path,
                super::staging::upload_name(&file)
            );
            staging.remove(&staged);
        }
        Err(e) => log::warn!(
            "{}: old content not put back ({e}); it is at {}",
            m.path,
            staged.data.display()
        ),
    }
}
