//! `POST /media/files`: the multipart body is streamed to a temporary file in the data folder
//! (never held whole in memory), then checked as the product checks it (form validation,
//! key, extension by name and by content, size) and moved into the blob folder.
//!
//! [`ingest`] is the part after the bytes are on disk; `--import` uses it too, so imported
//! files get exactly the names, slugs and suffixes an upload would.

use axum::body::Body;
use axum::extract::multipart::{Field, Multipart, MultipartRejection};
use axum::extract::{ConnectInfo, FromRequest, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::Value;
use tokio::io::AsyncWriteExt;

use super::conn::ConnMeta;
use super::faults::Pacer;
use super::reply::{self, Validation};
use super::store::{FileRow, NewFile, ROOT};
use super::{Shared, api, format, names, sniff};

/// How much of the start of an upload is kept in memory for content sniffing.
const HEAD_LEN: usize = 64 * 1024;
const WRITE_BUFFER: usize = 256 * 1024;
const MSG_TYPE: &str = "The file type is not allowed. Please upload a valid file format.";

/// An upload's bytes, on disk in a temporary file.
pub struct Incoming {
    pub temp: tempfile::NamedTempFile,
    /// The client's filename, as sent.
    pub filename: String,
    pub size: u64,
    /// The first bytes, for sniffing.
    pub head: Vec<u8>,
}

/// Where an upload goes and how it is shown.
pub struct Target {
    pub folder_id: String,
    pub is_public: bool,
}

/// Checks an upload's type and size and stores it. `Err` is the message of the product's
/// "soft" refusal (HTTP 200, `error: true`).
pub async fn ingest(state: &Shared, target: Target, inc: Incoming) -> Result<FileRow, String> {
    let allowed = &state.cfg.allowed_extensions;
    let client_name = names::client_basename(&inc.filename).to_string();
    let (stem, ext) = names::split_extension(&client_name);
    let sniffed = sniff::sniff(&inc.head, inc.size);
    let sniff_ok = sniffed.iter().any(|e| allowed.iter().any(|a| a == e));
    let extension = match ext {
        Some(e) => e.to_ascii_lowercase(),
        None => sniffed.first().map(|e| e.to_string()).unwrap_or_default(),
    };
    if !sniff_ok || !allowed.contains(&extension) {
        return Err(MSG_TYPE.to_string());
    }
    if inc.size > state.cfg.max_upload {
        let max = format::human_size(state.cfg.max_upload);
        return Err(format!("File is too big. Max file upload is {max}."));
    }

    let new = NewFile {
        folder_id: target.folder_id,
        stem: stem.to_string(),
        mime_type: sniff::mime_for_extension(&extension).to_string(),
        extension,
        size: inc.size,
        is_public: target.is_public,
    };
    if state.faults.take_upload_failure() {
        let url = format!("{}.{}", names::slug(&new.stem), new.extension);
        return Err(format!("Unable to write file at location: {url}."));
    }
    let st = state.clone();
    let stored = tokio::task::spawn_blocking(move || {
        let temp_path = inc.temp.path().to_path_buf();
        let result = st
            .store
            .insert_file(&new, |id| st.blobs.place(&temp_path, id));
        // Once placed the temporary path is gone; dropping the handle then removes nothing.
        drop(inc.temp);
        result
    })
    .await
    .map_err(|e| format!("upload task failed: {e}"))?;
    match stored {
        Ok(Ok(row)) => Ok(row),
        Ok(Err(io)) => Err(format!("Unable to write file: {io}")),
        Err(db) => Err(db.to_string()),
    }
}

/// The form of an upload request once the body has been read.
#[derive(Default)]
struct UploadForm {
    incoming: Option<Incoming>,
    file_is_text: bool,
    folder_id: Option<String>,
    folder_id_sent: bool,
    is_public: Option<String>,
    folder_slug: Option<String>,
    path: Option<String>,
}

impl UploadForm {
    fn validate(&self) -> Validation {
        let mut v = Validation::default();
        if self.file_is_text {
            v.add("file", "The file field must be a file.");
        } else if self.incoming.is_none() {
            v.add("file", "The file field is required.");
        }
        if let Some(p) = &self.is_public
            && !matches!(
                p.to_ascii_lowercase().as_str(),
                "0" | "1" | "true" | "false"
            )
        {
            v.add("is_public", "The is public field must be true or false.");
        }
        if self
            .folder_slug
            .as_ref()
            .is_some_and(|s| s.chars().count() > 191)
        {
            v.add(
                "folder_slug",
                "The folder slug field must not be greater than 191 characters.",
            );
        }
        v
    }
}

/// Per-request transfer state: pacing, and the point at which a drop fault cuts the line.
struct Transfer {
    pacer: Pacer,
    received: u64,
    drop_at: Option<u64>,
    /// When false (key refused) the bytes are counted and thrown away, never written.
    keep: bool,
    max_upload: u64,
}

/// Why reading the body stopped early.
enum ReadStop {
    Reply(Response),
    /// A drop fault fired: the connection is cut, nothing is answered.
    Cut,
}

async fn read_form(
    state: &Shared,
    mut multipart: Multipart,
    t: &mut Transfer,
    conn: &ConnMeta,
) -> Result<UploadForm, ReadStop> {
    let mut form = UploadForm::default();
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => return Ok(form),
            Err(e) => return Err(multipart_failure(e.status(), &e.body_text())),
        };
        let name = field.name().unwrap_or("").to_string();
        if name == "file" && field.file_name().is_some() && form.incoming.is_none() {
            form.incoming = Some(receive_file(state, field, t, conn).await?);
            continue;
        }
        let text = match field.text().await {
            Ok(s) => s,
            Err(e) => return Err(multipart_failure(e.status(), &e.body_text())),
        };
        let text = names::trim_input(&text);
        let value = (!text.is_empty()).then(|| text.to_string());
        match name.as_str() {
            "file" => form.file_is_text = form.incoming.is_none(),
            "folder_id" => {
                form.folder_id_sent = true;
                form.folder_id = value;
            }
            "is_public" => form.is_public = value,
            "folder_slug" => form.folder_slug = value,
            "path" => form.path = value,
            _ => {}
        }
    }
}

fn multipart_failure(status: StatusCode, text: &str) -> ReadStop {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ReadStop::Reply(reply::too_large())
    } else {
        log::debug!("bad multipart body: {text}");
        ReadStop::Reply(reply::message_status(StatusCode::BAD_REQUEST, text))
    }
}

/// Streams the file part to a temporary file, keeping the first bytes for sniffing. Past
/// `--max-upload` the rest is counted but not written.
async fn receive_file(
    state: &Shared,
    mut field: Field<'_>,
    t: &mut Transfer,
    conn: &ConnMeta,
) -> Result<Incoming, ReadStop> {
    let io_failure = |e: std::io::Error| {
        log::error!("cannot write an upload to the data folder: {e}");
        ReadStop::Reply(reply::soft_error(&format!("Unable to write file: {e}")))
    };
    let filename = field.file_name().unwrap_or("").to_string();
    let temp = state.blobs.temp_file().map_err(io_failure)?;
    let file = tokio::fs::File::from_std(temp.reopen().map_err(io_failure)?);
    let mut out = tokio::io::BufWriter::with_capacity(WRITE_BUFFER, file);
    let mut head = Vec::new();
    let mut size: u64 = 0;
    loop {
        let chunk = match field.chunk().await {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => return Err(multipart_failure(e.status(), &e.body_text())),
        };
        size += chunk.len() as u64;
        t.received += chunk.len() as u64;
        if head.len() < HEAD_LEN {
            let take = (HEAD_LEN - head.len()).min(chunk.len());
            head.extend_from_slice(&chunk[..take]);
        }
        if t.keep && size <= t.max_upload {
            out.write_all(&chunk).await.map_err(io_failure)?;
        }
        if t.drop_at.is_some_and(|at| t.received >= at) {
            log::info!(
                "fault: cutting the connection of an upload after {} bytes",
                t.received
            );
            conn.kill();
            return Err(ReadStop::Cut);
        }
        t.pacer.after(chunk.len() as u64).await;
    }
    out.flush().await.map_err(io_failure)?;
    Ok(Incoming {
        temp,
        filename,
        size,
        head,
    })
}

/// POST /media/files (multipart `file`, `folder_id`, `is_public`; also `path`).
pub async fn upload(
    State(state): State<Shared>,
    ConnectInfo(conn): ConnectInfo<ConnMeta>,
    req: Request,
) -> Response {
    let headers = req.headers().clone();
    let declared = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > state.cfg.max_body) {
        drain(req.into_body(), state.cfg.max_body.saturating_mul(4)).await;
        return reply::too_large();
    }
    let authorized = api::authorize(&state, &headers, "create_media_file");
    let multipart: Result<Multipart, MultipartRejection> =
        Multipart::from_request(req, &state).await;
    let Ok(multipart) = multipart else {
        let mut v = Validation::default();
        v.add("file", "The file field is required.");
        return reply_of(v.finish());
    };
    let drop_at = state
        .faults
        .roll_drop()
        .then(|| declared.map_or(1, |n| (n / 2).max(1)));
    let mut transfer = Transfer {
        pacer: Pacer::new(state.faults.bandwidth()),
        received: 0,
        drop_at,
        keep: authorized.is_ok(),
        max_upload: state.cfg.max_upload,
    };
    let form = match read_form(&state, multipart, &mut transfer, &conn).await {
        Ok(f) => f,
        Err(ReadStop::Reply(r)) => return r,
        Err(ReadStop::Cut) => return reply::envelope_status(StatusCode::BAD_GATEWAY, "cut"),
    };
    if let Err(r) = form.validate().finish() {
        return r;
    }
    if let Err(r) = authorized {
        return r;
    }
    store_upload(&state, form).await
}

/// Reads and discards a refused body (up to `limit` bytes), so that the client, still
/// sending, gets to read the answer instead of a broken pipe.
pub(crate) async fn drain(body: Body, limit: u64) {
    use futures_util::StreamExt;
    let mut stream = body.into_data_stream();
    let mut seen: u64 = 0;
    while let Some(Ok(chunk)) = stream.next().await {
        seen += chunk.len() as u64;
        if seen > limit {
            break;
        }
    }
}

fn reply_of(r: Result<(), Response>) -> Response {
    match r {
        Ok(()) => reply::ok(Value::Null, None),
        Err(r) => r,
    }
}

async fn store_upload(state: &Shared, mut form: UploadForm) -> Response {
    let Some(incoming) = form.incoming.take() else {
        return reply::soft_error("The file field is required.");
    };
    let mut folder_id = form.folder_id.clone().unwrap_or_else(|| ROOT.to_string());
    if let Some(path) = form.path.as_deref().filter(|p| p.contains('/')) {
        match ensure_path(state, &folder_id, path).await {
            Ok(id) => folder_id = id,
            Err(r) => return r,
        }
    }
    let target = Target {
        folder_id,
        is_public: form
            .is_public
            .as_deref()
            .is_none_or(|p| matches!(p.to_ascii_lowercase().as_str(), "1" | "true")),
    };
    match ingest(state, target, incoming).await {
        Ok(row) => {
            log::debug!("stored file {} as {}", row.id, row.url);
            let mut data = api::file_json(state, &row);
            // The product answers with the request's default when no folder was sent: the
            // number 0, where listings show the string "0".
            if !form.folder_id_sent && form.path.is_none() {
                data["folder_id"] = Value::from(0);
            }
            reply::ok(data, None)
        }
        Err(message) => reply::soft_error(&message),
    }
}

/// The undocumented `path` field: every segment but the last is a folder, found by name or
/// created; the file lands in the innermost one.
async fn ensure_path(state: &Shared, start: &str, path: &str) -> Result<String, Response> {
    let segments: Vec<String> = path
        .split('/')
        .map(|s| names::trim_input(s).to_string())
        .collect();
    let dirs = segments[..segments.len() - 1].to_vec();
    let start = start.to_string();
    state
        .db(move |s| {
            let mut current = start;
            for name in dirs.iter().filter(|d| !d.is_empty()) {
                current = match s.find_folder_by_name(&current, name)? {
                    Some(f) => f.id,
                    None => s.create_folder(&current, name, None)?.id,
                };
            }
            Ok(current)
        })
        .await
}
