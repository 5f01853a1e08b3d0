//! File bytes, without a key: `GET|HEAD /storage/<url>` (the `full_url` of public files; a
//! trashed file is still served there, as the product leaves the object in place) and
//! `GET|HEAD /media/files/<sha1(id)>/<id>` (the `indirect_url`, live files only, private
//! ones too). Bodies are streamed from the blob file in big chunks with `Content-Length`,
//! `Accept-Ranges: bytes` and single Range requests (206, suffix ranges, 416).
//!
//! Download faults apply here: latency before the answer, a stall and a cut in the middle of
//! the body, and the bandwidth cap.

use std::io;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use tokio::io::AsyncReadExt;

use super::conn::ConnMeta;
use super::faults::Pacer;
use super::store::FileRow;
use super::{Shared, api, sniff};

const CHUNK: usize = 256 * 1024;

/// What a `Range` header asks of a body of `len` bytes.
#[derive(Debug, PartialEq, Eq)]
pub enum RangeRequest {
    /// No usable range: send everything with 200 (also for multiple ranges and bad syntax).
    Full,
    /// Bytes `start..=end`.
    Partial { start: u64, end: u64 },
    /// 416: the range starts past the end (or asks for a zero-length suffix).
    Unsatisfiable,
}

pub fn parse_range(header: Option<&str>, len: u64) -> RangeRequest {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else {
        return RangeRequest::Full;
    };
    if spec.contains(',') {
        return RangeRequest::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeRequest::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    if a.is_empty() {
        let Ok(n) = b.parse::<u64>() else {
            return RangeRequest::Full;
        };
        if n == 0 || len == 0 {
            return RangeRequest::Unsatisfiable;
        }
        return RangeRequest::Partial {
            start: len - n.min(len),
            end: len - 1,
        };
    }
    let Ok(start) = a.parse::<u64>() else {
        return RangeRequest::Full;
    };
    let end = match b {
        "" => u64::MAX,
        _ => match b.parse::<u64>() {
            Ok(e) if e >= start => e,
            _ => return RangeRequest::Full,
        },
    };
    if start >= len {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Partial {
        start,
        end: end.min(len - 1),
    }
}

/// GET|HEAD /storage/{*path}: a public file by its `url`.
pub async fn by_url(
    State(state): State<Shared>,
    ConnectInfo(conn): ConnectInfo<ConnMeta>,
    method: Method,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Response {
    state.stats.storage_request(method == Method::HEAD);
    let lookup = path.clone();
    let found = match state.db(move |s| s.file_by_url(&lookup)).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    match found.filter(|f| f.is_public) {
        Some(file) => serve(&state, &conn, &method, &file, &headers).await,
        None => not_found(),
    }
}

/// GET|HEAD /media/files/{hash}/{id}: a live file by id, public or private.
pub async fn indirect(
    State(state): State<Shared>,
    ConnectInfo(conn): ConnectInfo<ConnMeta>,
    method: Method,
    Path((hash, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    state.stats.storage_request(method == Method::HEAD);
    if !hash.eq_ignore_ascii_case(&api::id_hash(&id)) {
        return not_found();
    }
    let found = match state.db(move |s| s.live_file(&id)).await {
        Ok(f) => f,
        Err(r) => return r,
    };
    match found {
        Some(file) => serve(&state, &conn, &method, &file, &headers).await,
        None => not_found(),
    }
}

fn not_found() -> Response {
    (StatusCode::NOT_FOUND, "Not Found").into_response()
}

fn http_date(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .unwrap_or_default()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

async fn serve(
    state: &Shared,
    conn: &ConnMeta,
    method: &Method,
    file: &FileRow,
    headers: &HeaderMap,
) -> Response {
    state.faults.delay().await;
    let path = state.blobs.path(&file.id);
    let blob = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) => {
            log::error!(
                "file {}: cannot open its bytes at {}: {e}",
                file.id,
                path.display()
            );
            return not_found();
        }
    };
    let len = match blob.metadata().await {
        Ok(m) => m.len(),
        Err(e) => {
            log::error!("file {}: cannot stat its bytes: {e}", file.id);
            return not_found();
        }
    };

    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    let (status, start, count) = match parse_range(range, len) {
        RangeRequest::Full => (StatusCode::OK, 0, len),
        RangeRequest::Partial { start, end } => {
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
        RangeRequest::Unsatisfiable => {
            let mut r = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            let cr = format!("bytes */{len}");
            r.headers_mut()
                .insert(header::CONTENT_RANGE, header_value(&cr));
            r.headers_mut()
                .insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
            return r;
        }
    };

    let ext = file.url.rsplit_once('.').map_or("", |(_, e)| e);
    let mut builder = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, sniff::mime_for_extension(ext))
        .header(header::CONTENT_LENGTH, count)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::LAST_MODIFIED, http_date(file.updated_at));
    if status == StatusCode::PARTIAL_CONTENT {
        let cr = format!("bytes {start}-{}/{len}", start + count - 1);
        builder = builder.header(header::CONTENT_RANGE, cr);
    }
    let body = if *method == Method::HEAD || count == 0 {
        Body::empty()
    } else {
        match body_stream(state, conn, blob, start, count).await {
            Ok(b) => b,
            Err(e) => {
                log::error!("file {}: cannot read its bytes: {e}", file.id);
                return not_found();
            }
        }
    };
    builder.body(body).unwrap_or_else(|e| {
        log::error!("cannot build a download answer: {e}");
        StatusCode::INTERNAL_SERVER_ERROR.into_response()
    })
}

fn header_value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// The state of one download body as it is produced.
struct Sender {
    state: Shared,
    conn: ConnMeta,
    file: tokio::fs::File,
    remaining: u64,
    sent: u64,
    /// Where in the body a stall or a cut happens.
    middle: u64,
    cut: bool,
    stall: Option<Duration>,
    pacer: Pacer,
}

impl Sender {
    async fn next_chunk(mut self) -> Option<(io::Result<Bytes>, Sender)> {
        if self.remaining == 0 {
            return None;
        }
        if self.sent >= self.middle {
            if self.cut {
                log::info!("fault: cutting a download after {} bytes", self.sent);
                self.conn.kill();
                self.remaining = 0;
                return Some((Err(io::Error::other("connection cut by a fault")), self));
            }
            if let Some(pause) = self.stall.take() {
                log::info!("fault: stalling a download for {pause:?}");
                tokio::time::sleep(pause).await;
            }
        }
        let mut want = self.remaining.min(CHUNK as u64);
        if (self.cut || self.stall.is_some()) && self.sent < self.middle {
            want = want.min(self.middle - self.sent);
        }
        let mut buf = BytesMut::with_capacity(want as usize);
        while (buf.len() as u64) < want {
            match self.file.read_buf(&mut buf).await {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    self.remaining = 0;
                    return Some((Err(e), self));
                }
            }
        }
        if buf.is_empty() {
            self.remaining = 0;
            return Some((Err(io::Error::other("file shorter than expected")), self));
        }
        let n = buf.len() as u64;
        self.remaining -= n;
        self.sent += n;
        self.state.stats.sent(n);
        self.pacer.after(n).await;
        Some((Ok(buf.freeze()), self))
    }
}

async fn body_stream(
    state: &Shared,
    conn: &ConnMeta,
    mut file: tokio::fs::File,
    start: u64,
    count: u64,
) -> io::Result<Body> {
    use tokio::io::AsyncSeekExt;
    if start > 0 {
        file.seek(io::SeekFrom::Start(start)).await?;
    }
    let stall = state.faults.stall();
    let sender = Sender {
        state: state.clone(),
        conn: conn.clone(),
        file,
        remaining: count,
        sent: 0,
        middle: count / 2,
        cut: state.faults.roll_drop(),
        stall: (!stall.is_zero()).then_some(stall),
        pacer: Pacer::new(state.faults.bandwidth()),
    };
    let stream = futures_util::stream::unfold(sender, Sender::next_chunk);
    Ok(Body::from_stream(stream))
}

#[cfg(test)]
mod tests {
    use super::RangeRequest::*;
    use super::*;

    #[test]
    fn ranges_follow_rfc_9110() {
        assert_eq!(parse_range(None, 10), Full);
        assert_eq!(
            parse_range(Some("bytes=0-4"), 10),
            Partial { start: 0, end: 4 }
        );
        assert_eq!(
            parse_range(Some("bytes=5-"), 10),
            Partial { start: 5, end: 9 }
        );
        assert_eq!(
            parse_range(Some("bytes=5-100"), 10),
            Partial { start: 5, end: 9 }
        );
        assert_eq!(
            parse_range(Some("bytes=-3"), 10),
            Partial { start: 7, end: 9 }
        );
        assert_eq!(
            parse_range(Some("bytes=-30"), 10),
            Partial { start: 0, end: 9 }
        );
        assert_eq!(parse_range(Some("bytes=10-"), 10), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=-0"), 10), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=0-"), 0), Unsatisfiable);
        assert_eq!(parse_range(Some("bytes=4-2"), 10), Full);
        assert_eq!(parse_range(Some("bytes=0-1,4-5"), 10), Full);
        assert_eq!(parse_range(Some("items=0-1"), 10), Full);
    }
}
