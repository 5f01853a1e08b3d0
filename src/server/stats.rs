//! Request counters for tests (`GET /_server/stats`): API calls by endpoint, counted as they
//! arrive (before any fault or refusal), and storage GETs, HEADs and body bytes sent.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::{Value, json};

/// The API endpoints, in the order the stats JSON lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    ListFolders,
    ListFiles,
    GetFolder,
    CreateFolder,
    TrashFolder,
    DeleteFolder,
    BulkDeleteFolders,
    Upload,
    TrashFile,
    DeleteFile,
    BulkDeleteFiles,
}

const ENDPOINTS: [(Endpoint, &str); 11] = [
    (Endpoint::ListFolders, "list_folders"),
    (Endpoint::ListFiles, "list_files"),
    (Endpoint::GetFolder, "get_folder"),
    (Endpoint::CreateFolder, "create_folder"),
    (Endpoint::TrashFolder, "trash_folder"),
    (Endpoint::DeleteFolder, "delete_folder"),
    (Endpoint::BulkDeleteFolders, "bulk_delete_folders"),
    (Endpoint::Upload, "upload"),
    (Endpoint::TrashFile, "trash_file"),
    (Endpoint::DeleteFile, "delete_file"),
    (Endpoint::BulkDeleteFiles, "bulk_delete_files"),
];

impl Endpoint {
    /// The endpoint a request under `/api/v1/media` is for (`rest` is the path after it).
    pub fn classify(method: &axum::http::Method, rest: &str) -> Option<Endpoint> {
        use axum::http::Method;
        let parts: Vec<&str> = rest.trim_matches('/').split('/').collect();
        let m = method.clone();
        let get = m == Method::GET || m == Method::HEAD;
        Some(match (parts.as_slice(), m) {
            (["folders"], _) if get => Endpoint::ListFolders,
            (["folders"], Method::POST) => Endpoint::CreateFolder,
            (["folders", "deletes"], Method::POST) => Endpoint::BulkDeleteFolders,
            (["folders", _], _) if get => Endpoint::GetFolder,
            (["folders", _], Method::DELETE) => Endpoint::DeleteFolder,
            (["folders", _, "trash"], Method::PATCH) => Endpoint::TrashFolder,
            (["files"], _) if get => Endpoint::ListFiles,
            (["files"], Method::POST) => Endpoint::Upload,
            (["files", "deletes"], Method::POST) => Endpoint::BulkDeleteFiles,
            (["files", _], Method::DELETE) => Endpoint::DeleteFile,
            (["files", _, "trash"], Method::PATCH) => Endpoint::TrashFile,
            _ => return None,
        })
    }
}

#[derive(Default)]
pub struct Stats {
    total: AtomicU64,
    by_endpoint: [AtomicU64; 11],
    storage_get: AtomicU64,
    storage_head: AtomicU64,
    bytes_sent: AtomicU64,
}

impl Stats {
    /// One API request arrived (`endpoint` is `None` for paths that route nowhere).
    pub fn api(&self, endpoint: Option<Endpoint>) {
        self.total.fetch_add(1, Ordering::Relaxed);
        if let Some(e) = endpoint {
            let i = ENDPOINTS.iter().position(|(x, _)| *x == e).unwrap_or(0);
            self.by_endpoint[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn storage_request(&self, head: bool) {
        let counter = if head {
            &self.storage_head
        } else {
            &self.storage_get
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn sent(&self, bytes: u64) {
        self.bytes_sent.fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn to_json(&self) -> Value {
        let mut api = serde_json::Map::new();
        api.insert("total".into(), self.total.load(Ordering::Relaxed).into());
        for (i, (_, name)) in ENDPOINTS.iter().enumerate() {
            api.insert(
                (*name).into(),
                self.by_endpoint[i].load(Ordering::Relaxed).into(),
            );
        }
        json!({
            "api": api,
            "storage": {
                "get": self.storage_get.load(Ordering::Relaxed),
                "head": self.storage_head.load(Ordering::Relaxed),
                "bytes_sent": self.bytes_sent.load(Ordering::Relaxed),
            }
        })
    }

    pub fn reset(&self) {
        self.total.store(0, Ordering::Relaxed);
        for c in &self.by_endpoint {
            c.store(0, Ordering::Relaxed);
        }
        self.storage_get.store(0, Ordering::Relaxed);
        self.storage_head.store(0, Ordering::Relaxed);
        self.bytes_sent.store(0, Ordering::Relaxed);
    }
}
