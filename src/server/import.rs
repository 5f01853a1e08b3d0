//! `--import TREE`: loads a local directory tree into an empty library at start, through the
//! upload path, so names, slugs and "-N" suffixes come out as an upload would make them. A
//! library that already holds anything (trashed items included) is left as it is, so a
//! restart never imports twice.

use std::io::Read;
use std::path::Path;

use super::store::ROOT;
use super::upload::{Incoming, Target, ingest};
use super::{Shared, names};

/// Imports `tree`; files or folders the server refuses are skipped with a warning.
pub async fn import_tree(state: &Shared, tree: &Path) -> Result<(), String> {
    if !tree.is_dir() {
        return Err("not a directory".to_string());
    }
    let empty = state.store.is_empty().map_err(|e| e.to_string())?;
    if !empty {
        log::info!("library is not empty: --import {} skipped", tree.display());
        return Ok(());
    }
    let mut counts = (0u64, 0u64);
    import_dir(state, tree, ROOT.to_string(), &mut counts).await?;
    log::info!(
        "imported {} folders and {} files from {}",
        counts.0,
        counts.1,
        tree.display()
    );
    Ok(())
}

fn sorted_entries(dir: &Path) -> Result<Vec<std::fs::DirEntry>, String> {
    let read = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut entries: Vec<_> = read.filter_map(Result::ok).collect();
    entries.sort_by_key(|e| e.file_name());
    Ok(entries)
}

async fn import_dir(
    state: &Shared,
    dir: &Path,
    folder_id: String,
    counts: &mut (u64, u64),
) -> Result<(), String> {
    for entry in sorted_entries(dir)? {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        let Ok(meta) = std::fs::metadata(&path) else {
            log::warn!("import: skipping unreadable {}", path.display());
            continue;
        };
        if meta.is_dir() {
            let folder_name = names::trim_input(&name).to_string();
            if !names::folder_name_is_valid(&folder_name) {
                log::warn!(
                    "import: skipping {}: the server refuses this folder name",
                    path.display()
                );
                continue;
            }
            let folder = state
                .store
                .create_folder(&folder_id, &folder_name, None)
                .map_err(|e| e.to_string())?;
            counts.0 += 1;
            Box::pin(import_dir(state, &path, folder.id, counts)).await?;
        } else if meta.is_file() {
            match import_file(state, &path, &name, &folder_id).await {
                Ok(()) => counts.1 += 1,
                Err(msg) => log::warn!("import: skipping {}: {msg}", path.display()),
            }
        }
    }
    Ok(())
}

async fn import_file(
    state: &Shared,
    path: &Path,
    name: &str,
    folder_id: &str,
) -> Result<(), String> {
    let temp = state.blobs.temp_file().map_err(|e| e.to_string())?;
    let size = std::fs::copy(path, temp.path()).map_err(|e| e.to_string())?;
    let mut head = Vec::new();
    std::fs::File::open(temp.path())
        .and_then(|f| f.take(64 * 1024).read_to_end(&mut head))
        .map_err(|e| e.to_string())?;
    let incoming = Incoming {
        temp,
        filename: name.to_string(),
        size,
        head,
    };
    let target = Target {
        folder_id: folder_id.to_string(),
        is_public: true,
    };
    ingest(state, target, incoming).await.map(|_| ())
}
