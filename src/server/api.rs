//! The folder and file endpoints (all but the upload, see [`super::upload`]): validation
//! first, then the key and its ability, then the store. Resources are rendered here as the
//! product's `FolderResource`/`FileResource`.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::Response;
use serde::Serialize;
use serde_json::{Value, json};
use sha1::Digest;

use super::config::{AuthStatus, Flavor};
use super::reply::{self, Validation};
use super::store::{FileRow, FolderRow, ROOT, Window};
use super::{AppState, Shared, format, names, sniff};

const MSG_TRASHED: &str = "Moved selected item(s) to trash successfully!";
const MSG_DELETED: &str = "Deleted selected item(s) successfully!";
const MSG_TRASH_FAILED: &str = "Error when deleting selected item(s)";

type ApiResult = Result<Response, Response>;

/// Checks the `X-API-KEY` header against the keys (case-insensitively) and the ability.
pub fn authorize(state: &AppState, headers: &HeaderMap, ability: &str) -> Result<(), Response> {
    let token = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    let allowed =
        token.is_some_and(|t| {
            state.keys.read().iter().any(|k| {
                k.token.eq_ignore_ascii_case(t) && k.abilities.iter().any(|a| a == ability)
            })
        });
    if allowed {
        return Ok(());
    }
    let status = match state.cfg.auth_status {
        AuthStatus::Forbidden403 => StatusCode::FORBIDDEN,
        AuthStatus::Unauthorized401 => StatusCode::UNAUTHORIZED,
    };
    Err(reply::message_status(
        status,
        "This action is unauthorized.",
    ))
}

/// `sha1(id)` in hex, the first path segment of `indirect_url`.
pub fn id_hash(id: &str) -> String {
    hex::encode(sha1::Sha1::digest(id.as_bytes()))
}

/// `FolderResource`: no parent and no slug, as the product sends it.
#[derive(Serialize)]
pub struct FolderOut<'a> {
    id: &'a str,
    name: &'a str,
    color: Option<&'a str>,
    created_at: String,
    updated_at: String,
}

pub fn folder_out<'a>(state: &AppState, f: &'a FolderRow) -> FolderOut<'a> {
    let tz = state.cfg.time_zone;
    FolderOut {
        id: &f.id,
        name: &f.name,
        color: f.color.as_deref(),
        created_at: format::naive_date(f.created_at, tz),
        updated_at: format::naive_date(f.updated_at, tz),
    }
}

pub fn folder_json(state: &AppState, f: &FolderRow) -> Value {
    serde_json::to_value(folder_out(state, f)).unwrap_or(Value::Null)
}

const ICON: &str = "<svg class=\"icon svg-icon-ti-ti-file\" xmlns=\"http://www.w3.org/2000/svg\" \
width=\"24\" height=\"24\" viewBox=\"0 0 24 24\"><path d=\"M14 3v4a1 1 0 0 0 1 1h4\"/></svg>";

/// `FileResource`. `full_url` is null for private files; `thumb` is null because the server
/// makes no thumbnails. Serialised straight from the row: listings can hold many thousands.
#[derive(Serialize)]
pub struct FileOut<'a> {
    id: &'a str,
    name: &'a str,
    basename: &'a str,
    url: &'a str,
    full_url: Option<String>,
    #[serde(rename = "type")]
    kind: &'static str,
    icon: &'static str,
    thumb: Option<&'static str>,
    size: String,
    mime_type: &'a str,
    created_at: String,
    updated_at: String,
    options: Option<Value>,
    folder_id: &'a str,
    preview_url: Option<String>,
    preview_type: Option<&'static str>,
    indirect_url: String,
    alt: &'a str,
}

pub fn file_out<'a>(state: &AppState, f: &'a FileRow) -> FileOut<'a> {
    let tz = state.cfg.time_zone;
    let kind = sniff::media_type(&f.mime_type);
    let full_url = f
        .is_public
        .then(|| format!("{}/storage/{}", state.origin, f.url));
    let previewable = matches!(kind, "image" | "video" | "audio") || f.mime_type.ends_with("pdf");
    let preview_url = if previewable { full_url.clone() } else { None };
    FileOut {
        id: &f.id,
        name: &f.name,
        basename: &f.basename,
        url: &f.url,
        full_url,
        kind,
        icon: ICON,
        thumb: None,
        size: format::human_size(f.size),
        mime_type: &f.mime_type,
        created_at: format::naive_date(f.created_at, tz),
        updated_at: format::naive_date(f.updated_at, tz),
        options: f
            .options
            .as_deref()
            .and_then(|o| serde_json::from_str(o).ok()),
        folder_id: &f.folder_id,
        preview_type: preview_url.as_ref().map(|_| kind),
        preview_url,
        indirect_url: format!("{}/media/files/{}/{}", state.origin, id_hash(&f.id), f.id),
        alt: &f.name,
    }
}

pub fn file_json(state: &AppState, f: &FileRow) -> Value {
    serde_json::to_value(file_out(state, f)).unwrap_or(Value::Null)
}

/// Query parameters after Laravel's normalisation: trimmed, empty strings become null.
struct Params(HashMap<String, Option<String>>);

impl Params {
    fn from_query(q: Result<Query<Vec<(String, String)>>, impl std::fmt::Debug>) -> Params {
        let pairs = q.map(|Query(p)| p).unwrap_or_default();
        let map = pairs
            .into_iter()
            .map(|(k, v)| {
                let v = names::trim_input(&v);
                (k, (!v.is_empty()).then(|| v.to_string()))
            })
            .collect();
        Params(map)
    }

    /// The listed folder: root when absent, nothing (`None`) when present but empty.
    fn folder_id(&self) -> Option<String> {
        match self.0.get("folder_id") {
            None => Some(ROOT.to_string()),
            Some(v) => v.clone(),
        }
    }

    /// PHP's `filter_var(..., FILTER_VALIDATE_BOOLEAN)`, as `$request->boolean()` uses.
    fn boolean(&self, key: &str) -> bool {
        let v = self.0.get(key).cloned().flatten().unwrap_or_default();
        matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "on" | "yes")
    }

    /// `page`/`per_page` of the 2026 reference (default 1 and 40, `per_page` clamped to 100);
    /// `None` for 1.2.8, which returns everything.
    fn window(&self, flavor: Flavor, v: &mut Validation) -> Option<Window> {
        if flavor == Flavor::V128 {
            return None;
        }
        let mut int = |key: &str, label: &str, default: u64| -> u64 {
            match self.0.get(key).cloned().flatten() {
                None => default,
                Some(s) => match s.parse::<i64>() {
                    Ok(n) if n >= 1 => n as u64,
                    Ok(_) => {
                        v.add(key, format!("The {label} field must be at least 1."));
                        default
                    }
                    Err(_) => {
                        v.add(key, format!("The {label} field must be an integer."));
                        default
                    }
                },
            }
        };
        let page = int("page", "page", 1);
        let per_page = int("per_page", "per page", 40).min(100);
        Some(Window {
            offset: (page - 1).saturating_mul(per_page),
            limit: per_page,
        })
    }
}

/// `data` of GET /media/folders with `include_files=true`.
#[derive(Serialize)]
struct FoldersAndFiles<'a> {
    folders: Vec<FolderOut<'a>>,
    files: Vec<FileOut<'a>>,
}

/// `data` of GET /media/folders/{id}.
#[derive(Serialize)]
struct FolderWithFiles<'a> {
    #[serde(flatten)]
    folder: FolderOut<'a>,
    files: Vec<FileOut<'a>>,
}

/// Which part of a combined (folders, then files) window falls on files.
fn files_part(window: Window, folder_count: u64) -> Option<Window> {
    let end = window.offset.saturating_add(window.limit);
    if end <= folder_count {
        return None;
    }
    let offset = window.offset.saturating_sub(folder_count);
    let taken_by_folders = folder_count.saturating_sub(window.offset);
    Some(Window {
        offset,
        limit: window.limit - taken_by_folders.min(window.limit),
    })
}

/// GET /media/folders: child folders of `folder_id`; with `include_files=true` (2026) the
/// files too, as `{folders, files}`, one window over folders-then-files.
pub async fn list_folders(
    State(state): State<Shared>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let params = Params::from_query(query);
    let mut v = Validation::default();
    let window = params.window(state.cfg.flavor, &mut v);
    v.finish()?;
    authorize(&state, &headers, "list_media_folders")?;

    let include_files = state.cfg.flavor == Flavor::V2026 && params.boolean("include_files");
    let Some(folder) = params.folder_id() else {
        let data = if include_files {
            json!({"folders": [], "files": []})
        } else {
            json!([])
        };
        return Ok(reply::ok(data, None));
    };
    let st = state.clone();
    let (folders, files) = state
        .db(move |s| {
            let folders = s.list_folders(&folder, window)?;
            if !include_files {
                return Ok((folders, Vec::new()));
            }
            let files = match window {
                None => s.list_files(&folder, None)?,
                Some(w) => match files_part(w, s.count_folders(&folder)?) {
                    None => Vec::new(),
                    Some(fw) => s.list_files(&folder, Some(fw))?,
                },
            };
            Ok((folders, files))
        })
        .await?;
    let folders: Vec<FolderOut> = folders.iter().map(|f| folder_out(&st, f)).collect();
    if include_files {
        let files: Vec<FileOut> = files.iter().map(|f| file_out(&st, f)).collect();
        return Ok(reply::ok_ser(&FoldersAndFiles { folders, files }, None));
    }
    Ok(reply::ok_ser(&folders, None))
}

/// GET /media/files: files of `folder_id` (root also lists files whose folder is gone).
pub async fn list_files(
    State(state): State<Shared>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let params = Params::from_query(query);
    let mut v = Validation::default();
    let window = params.window(state.cfg.flavor, &mut v);
    v.finish()?;
    authorize(&state, &headers, "list_media_files")?;

    let Some(folder) = params.folder_id() else {
        return Ok(reply::ok(json!([]), None));
    };
    let files = state.db(move |s| s.list_files(&folder, window)).await?;
    let data: Vec<FileOut> = files.iter().map(|f| file_out(&state, f)).collect();
    Ok(reply::ok_ser(&data, None))
}

/// GET /media/folders/{id}: the folder and its files (a window of them in 2026).
pub async fn get_folder(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, axum::extract::rejection::QueryRejection>,
) -> ApiResult {
    let params = Params::from_query(query);
    let mut v = Validation::default();
    let window = params.window(state.cfg.flavor, &mut v);
    v.finish()?;
    authorize(&state, &headers, "view_media_folder")?;

    let lookup = id.clone();
    let found = state
        .db(move |s| match s.get_folder(&lookup)? {
            None => Ok(None),
            Some(f) => {
                let files = s.list_files(&f.id, window)?;
                Ok(Some((f, files)))
            }
        })
        .await?;
    let Some((folder, files)) = found else {
        return Err(reply::model_not_found("MediaFolder", &id));
    };
    let data = FolderWithFiles {
        folder: folder_out(&state, &folder),
        files: files.iter().map(|f| file_out(&state, f)).collect(),
    };
    Ok(reply::ok_ser(&data, None))
}

/// A request body as a map of fields: JSON object, or a urlencoded form.
fn body_fields(headers: &HeaderMap, body: &[u8]) -> serde_json::Map<String, Value> {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    if content_type.contains("application/x-www-form-urlencoded") {
        let pairs: Vec<(String, String)> = serde_urlencoded_pairs(body);
        return pairs
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    }
}

/// Decodes `a=1&b=x+y` without another dependency: axum's `Query` parser does the work.
fn serde_urlencoded_pairs(body: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(body);
    let uri: Result<Uri, _> = format!("/?{text}").parse();
    match uri {
        Ok(uri) => Query::<Vec<(String, String)>>::try_from_uri(&uri)
            .map(|Query(p)| p)
            .unwrap_or_default(),
        Err(_) => Vec::new(),
    }
}

/// A scalar input as Laravel sees it after trimming: strings trimmed, empty -> absent,
/// numbers as their text.
fn scalar(v: Option<&Value>) -> Result<Option<String>, ()> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => {
            let t = names::trim_input(s);
            Ok((!t.is_empty()).then(|| t.to_string()))
        }
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(Value::Bool(b)) => Ok(Some(if *b { "1" } else { "0" }.to_string())),
        Some(_) => Err(()),
    }
}

fn is_hex_color(s: &str) -> bool {
    let Some(hex) = s.strip_prefix('#') else {
        return false;
    };
    matches!(hex.len(), 3 | 4 | 6 | 8) && hex.chars().all(|c| c.is_ascii_hexdigit())
}

/// POST /media/folders: `name` (required, the folder-name rule), `parent_id` (not checked),
/// `color` (optional hex). The answer carries the name actually given ("-1" suffixes).
pub async fn create_folder(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let fields = body_fields(&headers, &body);
    let mut v = Validation::default();
    let name = match scalar(fields.get("name")) {
        Ok(None) => {
            v.add("name", "The name field is required.");
            None
        }
        Ok(Some(n)) if names::folder_name_is_valid(&n) => Some(n),
        _ => {
            v.add("name", "The folder name has invalid character(s).");
            None
        }
    };
    let color = match scalar(fields.get("color")) {
        Ok(None) => None,
        Ok(Some(c)) if is_hex_color(&c) => Some(c),
        _ => {
            v.add(
                "color",
                "The color field must be a valid hexadecimal color.",
            );
            None
        }
    };
    v.finish()?;
    authorize(&state, &headers, "create_media_folder")?;

    let name = name.unwrap_or_default();
    let parent = scalar(fields.get("parent_id"))
        .ok()
        .flatten()
        .unwrap_or_else(|| ROOT.to_string());
    let folder = state
        .db(move |s| s.create_folder(&parent, &name, color.as_deref()))
        .await?;
    log::debug!("created folder {} {:?}", folder.id, folder.name);
    Ok(reply::ok(
        folder_json(&state, &folder),
        Some("Folder created successfully!"),
    ))
}

/// PATCH /media/folders/{id}/trash: soft delete of the subtree; success even for unknown ids.
pub async fn trash_folder(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    authorize(&state, &headers, "trash_media_folder")?;
    state.db(move |s| s.trash_folder(&id)).await?;
    Ok(reply::ok(Value::Null, Some(MSG_TRASHED)))
}

/// Deletes folders for good (rows and bytes), subtrees included.
async fn purge_folders(state: &Shared, ids: Vec<String>) -> Result<(), Response> {
    let file_ids = state
        .db(move |s| {
            let mut all = Vec::new();
            for id in &ids {
                all.extend(s.delete_folder(id)?);
            }
            Ok(all)
        })
        .await?;
    remove_blobs(state, file_ids).await;
    Ok(())
}

async fn remove_blobs(state: &Shared, ids: Vec<String>) {
    let st = state.clone();
    let _ = tokio::task::spawn_blocking(move || {
        for id in ids {
            if let Err(e) = st.blobs.remove(&id) {
                log::warn!("cannot remove the bytes of file {id}: {e}");
            }
        }
    })
    .await;
}

/// DELETE /media/folders/{id}: permanent and recursive; success even for unknown ids.
pub async fn delete_folder(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    authorize(&state, &headers, "delete_media_folder")?;
    purge_folders(&state, vec![id]).await?;
    Ok(reply::ok(Value::Null, Some(MSG_DELETED)))
}

/// The `{"<field>": ["id", ...]}` body of the bulk deletes: a required array of strings.
fn id_list(headers: &HeaderMap, body: &[u8], field: &str) -> Result<Vec<String>, Response> {
    let fields = body_fields(headers, body);
    let mut v = Validation::default();
    let mut ids = Vec::new();
    match fields.get(field) {
        None | Some(Value::Null) => v.add(field, format!("The {field} field is required.")),
        Some(Value::Array(items)) if items.is_empty() => {
            v.add(field, format!("The {field} field is required."))
        }
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                match item {
                    Value::String(s) => ids.push(names::trim_input(s).to_string()),
                    _ => v.add(
                        format!("{field}.{i}"),
                        format!("The {field}.{i} field must be a string."),
                    ),
                }
            }
        }
        Some(_) => v.add(field, format!("The {field} field must be an array.")),
    }
    v.finish()?;
    Ok(ids)
}

/// POST /media/folders/deletes `{"folders": [ids]}`.
pub async fn bulk_delete_folders(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let ids = id_list(&headers, &body, "folders")?;
    authorize(&state, &headers, "delete_media_folder")?;
    purge_folders(&state, ids).await?;
    Ok(reply::ok(Value::Null, Some(MSG_DELETED)))
}

/// PATCH /media/files/{id}/trash: an unknown or already trashed id is a soft error.
pub async fn trash_file(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    authorize(&state, &headers, "trash_media_file")?;
    if state.db(move |s| s.trash_file(&id)).await? {
        Ok(reply::ok(Value::Null, Some(MSG_TRASHED)))
    } else {
        Ok(reply::soft_error(MSG_TRASH_FAILED))
    }
}

async fn purge_files(state: &Shared, ids: Vec<String>) -> Result<(), Response> {
    let removed = state
        .db(move |s| {
            let mut removed = Vec::new();
            for id in ids {
                if s.delete_file(&id)? {
                    removed.push(id);
                }
            }
            Ok(removed)
        })
        .await?;
    remove_blobs(state, removed).await;
    Ok(())
}

/// DELETE /media/files/{id}: permanent; success even for unknown ids.
pub async fn delete_file(
    State(state): State<Shared>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult {
    authorize(&state, &headers, "delete_media_file")?;
    purge_files(&state, vec![id]).await?;
    Ok(reply::ok(Value::Null, Some(MSG_DELETED)))
}

/// POST /media/files/deletes `{"files": [ids]}`.
pub async fn bulk_delete_files(
    State(state): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let ids = id_list(&headers, &body, "files")?;
    authorize(&state, &headers, "delete_media_file")?;
    purge_files(&state, ids).await?;
    Ok(reply::ok(Value::Null, Some(MSG_DELETED)))
}

/// Unknown paths and methods: Laravel's 404 (a wrong method on a known path is a 404 too).
pub async fn not_found(uri: Uri) -> Response {
    reply::route_not_found(uri.path())
}
