//! The blocking reqwest implementation of [`Remote`].
//!
//! Two HTTP clients, each shared by all threads so connections are kept alive and reused:
//!
//! - the API client sends `Accept: application/json` and the `X-API-KEY` header with every
//!   call and follows no redirect, so the key only ever goes to the configured API origin.
//!   Laravel answers a request that lost its `Accept` header with a 302, so a redirect from the
//!   API is reported as a protocol error rather than followed;
//! - the storage client fetches file bytes (`full_url`, `indirect_url`) with no key at all and
//!   follows redirects, since storage may live on a CDN or object store.
//!
//! Uploads go through a third, async client with the API client's settings, on a small tokio
//! runtime of the `Client`'s own: the blocking client hands a request body to its runtime
//! thread in 8 KiB pieces, a thread switch each, which made a large upload several times
//! slower than curl; the async client reads the staged file in 1 MiB chunks instead.
//!
//! Success is decided by the JSON `error` flag, not by the HTTP status: Cloudify refuses
//! uploads and some trashes with HTTP 200 and `error: true`; `response.rs` holds those rules.
//! Transient failures are retried (see `Client::with_retries`) and API calls are paced by a
//! [`RateBudget`].
//!
//! The key is never part of an error, a log line or `Debug` output; errors carry a context
//! such as `GET /media/folders?folder_id=X` (relative to the API base) or, for storage, the
//! URL without its query string.

use std::fs;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use reqwest::blocking::{RequestBuilder, Response};
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::multipart;
use reqwest::{Method, StatusCode, Url, redirect};
use serde_json::Value;
use tokio_util::io::ReaderStream;

use super::model::{Envelope, FolderPage, files_from_json};
use super::paging::{PER_PAGE, PageRule};
use super::response::{
    Attempt, ListingAnswer, Safety, answer_body, answer_head, api_answer, api_body_async,
    content_range, describe, download_from, header_u64, page_answer, protocol, range_header,
    send_failure, server_text, storage_status,
};
use super::retry::{Backoff, MAX_RETRY_AFTER, RateBudget};
use super::{ApiError, Download, File, Folder, Id, Listing, Remote, UploadStream};

/// Settings of the HTTP client.
#[derive(Clone)]
pub struct ClientConfig {
    /// The site origin (`https://media.example.com`) or the API base (`.../api/v1`).
    pub base_url: String,
    /// Sent as `X-API-KEY` to the API origin only.
    pub api_key: String,
    /// Per request: connecting, waiting for the answer, and each read of a download's body
    /// (a long download runs as long as data keeps coming). Default 30 s.
    pub timeout: Duration,
    /// How often a failed call is retried when retrying is safe. Default 5.
    pub retries: u32,
    /// API calls a minute (storage requests do not count); `None` for no pacing. Default 240,
    /// below Cloudify's default throttle of 300 a minute per IP.
    pub rate_per_minute: Option<u32>,
    pub user_agent: String,
    /// Listing pages fetched at most per folder, so a server that never stops paging cannot
    /// hang the mount. Default 1,000 (100,000 entries). A listing also stops after ten times
    /// `timeout` in all ([`LISTING_TIMEOUTS`]); either way the listing is cut with a warning.
    pub max_pages: u32,
}

/// A folder's listing, all pages, takes at most this many times the request timeout (5
/// minutes by default), so a server that pages forever ties up a folder for a bounded time.
pub const LISTING_TIMEOUTS: u32 = 10;

/// How long a call refused with 429 and no `Retry-After` keeps backing off, beyond its
/// retries: one throttle window of Cloudify (a minute) and a little more.
const THROTTLE_WINDOW: Duration = Duration::from_secs(65);

impl ClientConfig {
    /// A configuration with the defaults above.
    pub fn new(base_url: impl Into<String>, api_key: impl Into<String>) -> ClientConfig {
        ClientConfig {
            base_url: base_url.into(),
            api_key: api_key.into(),
            timeout: Duration::from_secs(30),
            retries: 5,
            rate_per_minute: Some(240),
            user_agent: format!("cloudify-fs/{}", env!("CARGO_PKG_VERSION")),
            max_pages: 1_000,
        }
    }
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientConfig")
            .field("base_url", &self.base_url)
            .field("api_key", &"<redacted>")
            .field("timeout", &self.timeout)
            .field("retries", &self.retries)
            .field("rate_per_minute", &self.rate_per_minute)
            .field("user_agent", &self.user_agent)
            .field("max_pages", &self.max_pages)
            .finish()
    }
}

/// The Cloudify HTTP client. Cheap to clone; clones share connections and the call budget.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    api: reqwest::blocking::Client,
    storage: reqwest::blocking::Client,
    uploads: Uploads,
    /// The API base, `.../api/v1` without a trailing slash.
    base: Url,
    /// The API key, kept to remove it from server messages (see `response::server_text`).
    key: String,
    timeout: Duration,
    retries: u32,
    max_pages: u32,
    backoff: Backoff,
    budget: Option<RateBudget>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.inner.base.as_str())
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

/// `https://site/` and `https://site/api/v1/` both become `https://site/api/v1`.
pub fn normalise_base(base_url: &str) -> Result<Url, ApiError> {
    let invalid = |message: String| ApiError::Local {
        context: format!("Cloudify URL {:?}", redact_url_text(base_url)),
        source: io::Error::new(io::ErrorKind::InvalidInput, message),
    };
    let trimmed = base_url.trim().trim_end_matches('/');
    let mut url = Url::parse(trimmed).map_err(|e| invalid(format!("not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(invalid("expected an http:// or https:// URL".to_string()));
    }
    url.set_query(None);
    url.set_fragment(None);
    let segments: Vec<&str> = url.path().split('/').filter(|s| !s.is_empty()).collect();
    let mut path = String::new();
    for segment in &segments {
        path.push('/');
        path.push_str(segment);
    }
    if !path.ends_with("/api/v1") {
        path.push_str("/api/v1");
    }
    url.set_path(&path);
    Ok(url)
}

/// A URL for messages: scheme, host, port and path, without credentials or query (a signed
/// storage URL carries its secret in the query).
fn redact_url(url: &Url) -> String {
    let mut shown = url.clone();
    let _ = shown.set_username("");
    let _ = shown.set_password(None);
    shown.set_query(None);
    shown.set_fragment(None);
    shown.to_string()
}

fn redact_url_text(text: &str) -> String {
    match Url::parse(text.trim()) {
        Ok(url) => redact_url(&url),
        Err(_) => text.split(['?', '#']).next().unwrap_or("").to_string(),
    }
}

impl Client {
    /// Builds the two HTTP clients. An unusable URL or key is an `ApiError::Local` that says
    /// what is wrong (without the key). Like every blocking reqwest client, it must be
    /// created, used and dropped outside an async runtime.
    pub fn new(config: ClientConfig) -> Result<Client, ApiError> {
        let base = normalise_base(&config.base_url)?;
        let build_error = |e: reqwest::Error| ApiError::Local {
            context: "HTTP client".to_string(),
            source: io::Error::other(describe(&e)),
        };

        let mut key =
            HeaderValue::from_str(config.api_key.trim()).map_err(|_| ApiError::Local {
                context: "API key".to_string(),
                source: io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "the key holds characters an HTTP header cannot carry",
                ),
            })?;
        key.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        headers.insert(
            "x-requested-with",
            HeaderValue::from_static("XMLHttpRequest"),
        );
        headers.insert("x-api-key", key);

        // reqwest's blocking `timeout` bounds the wait for the response head and then each
        // read of the body separately (it is not a total deadline), which is what a long
        // streaming download needs while a stall still fails. The connect timeout is shorter
        // so that a connect failure is reported as one: only then may an upload be retried.
        let connect_timeout = config.timeout.mul_f64(2.0 / 3.0);
        let uploads = Uploads::new(headers.clone(), &config, connect_timeout)?;
        let api = reqwest::blocking::Client::builder()
            .default_headers(headers)
            .redirect(redirect::Policy::none())
            .user_agent(config.user_agent.clone())
            .timeout(config.timeout)
            .connect_timeout(connect_timeout)
            .tcp_keepalive(Duration::from_secs(30))
            .build()
            .map_err(build_error)?;
        let storage = reqwest::blocking::Client::builder()
            .redirect(redirect::Policy::limited(10))
            .user_agent(config.user_agent.clone())
            .timeout(config.timeout)
            .connect_timeout(connect_timeout)
            .tcp_keepalive(Duration::from_secs(30))
            .build()
            .map_err(build_error)?;

        Ok(Client {
            inner: Arc::new(Inner {
                api,
                storage,
                uploads,
                base,
                key: config.api_key.trim().to_string(),
                timeout: config.timeout,
                retries: config.retries,
                max_pages: config.max_pages.max(1),
                backoff: Backoff::default(),
                budget: config.rate_per_minute.map(RateBudget::new),
            }),
        })
    }

    /// `data` that is not the expected object. serde's message quotes the server's text, so
    /// it goes through the same redaction as the server's own messages.
    fn shape_error(&self, context: String, what: &str, e: &serde_json::Error) -> ApiError {
        let message = server_text(&e.to_string(), &self.inner.key);
        protocol(context, format!("not a {what}: {message}"))
    }

    /// The normalised API base (`.../api/v1`).
    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }

    /// `base + path`, with `segments` appended percent-encoded (ids are opaque text) and the
    /// query pairs added. Returns the URL and the context for errors (the part after the
    /// base, e.g. `GET /media/folders?folder_id=X`).
    fn endpoint(
        &self,
        method: &Method,
        path: &str,
        segments: &[&str],
        query: &[(&str, &str)],
    ) -> (Url, String) {
        let mut url = self.inner.base.clone();
        if let Ok(mut parts) = url.path_segments_mut() {
            parts.pop_if_empty();
            parts.extend(path.split('/').filter(|s| !s.is_empty()));
            parts.extend(segments);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        let base_len = self.inner.base.path().len();
        let mut context = format!("{method} {}", &url.path()[base_len..]);
        if let Some(q) = url.query() {
            context.push('?');
            context.push_str(q);
        }
        (url, context)
    }

    /// Runs `attempt` until it is done, fails for good, or the retries are used up, waiting
    /// per `Retry-After` or the jittered backoff in between. `attempt` gets the attempt
    /// number (0 for the first).
    fn with_retries<T>(
        &self,
        context: &str,
        mut attempt: impl FnMut(u32) -> Attempt<T>,
    ) -> Result<T, ApiError> {
        let mut number = 0;
        let mut waited = Duration::ZERO;
        loop {
            let (error, after) = match attempt(number) {
                Attempt::Done(value) => return Ok(value),
                Attempt::Fail(error) => return Err(error),
                Attempt::Retry { error, after } => (error, after),
            };
            // Cloudify throttles in fixed one-minute windows and its 429 usually comes without
            // `Retry-After`: backing off only `retries` times (about 6 s by default) gives up
            // long before the window ends, so a throttled call keeps trying for a window.
            let throttled = matches!(error, ApiError::RateLimited { .. }) && after.is_none();
            let out_of_retries = number >= self.inner.retries
                && !(throttled && self.inner.retries > 0 && waited < THROTTLE_WINDOW);
            if out_of_retries {
                return Err(error);
            }
            let wait = match after {
                Some(wait) if wait > MAX_RETRY_AFTER => {
                    log::debug!("{context}: server asks to wait {wait:?}; giving up");
                    return Err(error);
                }
                Some(wait) => wait,
                None => self.inner.backoff.delay(number),
            };
            number += 1;
            waited += wait;
            log::debug!(
                "{context}: {error}; retry {number}/{} in {wait:?}",
                self.inner.retries
            );
            std::thread::sleep(wait);
        }
    }

    /// One API call with retries: returns the envelope of a successful answer.
    fn call(
        &self,
        context: &str,
        safety: Safety,
        build: impl Fn(&reqwest::blocking::Client, u32) -> Result<RequestBuilder, ApiError>,
    ) -> Result<Envelope, ApiError> {
        self.call_as(context, safety, build, api_answer)
    }

    /// [`Client::call`], with the answer read by `answer`.
    fn call_as<T>(
        &self,
        context: &str,
        safety: Safety,
        build: impl Fn(&reqwest::blocking::Client, u32) -> Result<RequestBuilder, ApiError>,
        answer: fn(Response, &str, Safety, &str) -> Attempt<T>,
    ) -> Result<T, ApiError> {
        self.with_retries(context, |attempt| {
            if let Some(budget) = &self.inner.budget {
                budget.acquire();
            }
            let request = match build(&self.inner.api, attempt) {
                Ok(request) => request,
                Err(error) => return Attempt::Fail(error),
            };
            match request.send() {
                Ok(response) => answer(response, context, safety, &self.inner.key),
                Err(error) => send_failure(error, context, safety),
            }
        })
    }

    /// A page of a folder listing (`GET /media/folders` with `query`) and the call's context.
    fn get_page(&self, query: &[(&str, &str)]) -> Result<(FolderPage, String), ApiError> {
        let (url, context) = self.endpoint(&Method::GET, "/media/folders", &[], query);
        let get = |api: &reqwest::blocking::Client, _| Ok(api.get(url.clone()));
        let page = match self.call_as(&context, Safety::Idempotent, get, page_answer)? {
            ListingAnswer::Page(page) => Some(page),
            ListingAnswer::Envelope(envelope) => match envelope.data {
                Some(data) => FolderPage::from_json(&data, &context),
                None => return Err(protocol(context, "the answer has no data".to_string())),
            },
        };
        match page {
            Some(page) => Ok((page, context)),
            None => Err(unexpected_shape(context, "folders")),
        }
    }

    /// A GET of the API returning `data` and the call's context.
    fn get_data(
        &self,
        path: &str,
        segments: &[&str],
        query: &[(&str, &str)],
    ) -> Result<(Value, String), ApiError> {
        let (url, context) = self.endpoint(&Method::GET, path, segments, query);
        let envelope = self.call(&context, Safety::Idempotent, |api, _| {
            Ok(api.get(url.clone()))
        })?;
        match envelope.data {
            Some(data) => Ok((data, context)),
            None => Err(protocol(context, "the answer has no data".to_string())),
        }
    }

    fn list_pages(&self, folder: &Id) -> Result<Listing, ApiError> {
        let mut listing = Listing::default();
        let mut rule = PageRule::default();
        let mut files_separately = false;
        let folder_query = folder_query(folder);
        let deadline = Instant::now() + self.inner.timeout * LISTING_TIMEOUTS;
        for page in 1..=self.inner.max_pages {
            let page_text = page.to_string();
            let mut query = folder_query.clone();
            query.extend([
                ("include_files", "true"),
                ("per_page", PER_PAGE_TEXT),
                ("page", &page_text),
            ]);
            let (page_listing, context) = self.get_page(&query)?;
            let page_listing = match page_listing {
                FolderPage::WithFiles(listing) => listing,
                FolderPage::FoldersOnly(folders) => {
                    files_separately = true;
                    Listing {
                        folders,
                        files: Vec::new(),
                    }
                }
            };
            if !rule.absorb(page_listing, &mut listing) {
                break;
            }
            if self.cut_listing(page, deadline, &listing, &context) {
                break;
            }
        }
        if files_separately {
            self.list_files(&folder_query, &mut rule, &mut listing, deadline)?;
        }
        Ok(listing)
    }

    /// `GET /media/files` for a server that lists no files with the folders.
    fn list_files(
        &self,
        folder_query: &[(&str, &str)],
        rule: &mut PageRule,
        listing: &mut Listing,
        deadline: Instant,
    ) -> Result<(), ApiError> {
        for page in 1..=self.inner.max_pages {
            let page_text = page.to_string();
            let mut query = folder_query.to_vec();
            query.extend([("per_page", PER_PAGE_TEXT), ("page", &page_text)]);
            let (data, context) = self.get_data("/media/files", &[], &query)?;
            let files = files_from_json(&data, &context)
                .ok_or_else(|| unexpected_shape(context.clone(), "files"))?;
            let page_listing = Listing {
                folders: Vec::new(),
                files,
            };
            if !rule.absorb(page_listing, listing) {
                break;
            }
            if self.cut_listing(page, deadline, listing, &context) {
                break;
            }
        }
        Ok(())
    }

    /// Whether a listing that still has pages to go stops here: after `max_pages` pages, or
    /// past its deadline. Says so at warn, since the folder then shows only part of itself.
    fn cut_listing(&self, page: u32, deadline: Instant, listing: &Listing, context: &str) -> bool {
        let limit = if page >= self.inner.max_pages {
            format!("the limit of {page} pages")
        } else if Instant::now() >= deadline {
            let total = self.inner.timeout * LISTING_TIMEOUTS;
            format!("the time limit of {total:?} ({page} pages)")
        } else {
            return false;
        };
        let entries = listing.folders.len() + listing.files.len();
        log::warn!(
            "{context}: the server still sends new entries after {limit}; the listing is cut \
             at {entries} entries, so the folder shows only part of its content (a server that \
             pages without end?)"
        );
        true
    }

    /// The storage request for a file's content, with a context naming the file.
    fn content_url(&self, file: &File, method: &Method) -> Result<(Url, String), ApiError> {
        let text = file.content_url().ok_or_else(|| ApiError::Protocol {
            context: format!("{method} content of file {}", file.id),
            message: "the file has neither full_url nor indirect_url".to_string(),
        })?;
        // A relative URL is taken as relative to the site (never seen, but cheap to allow).
        let url = Url::parse(text)
            .or_else(|_| self.inner.base.join(text))
            .map_err(|e| ApiError::Protocol {
                context: format!("{method} content of file {}", file.id),
                message: format!("bad content URL {:?}: {e}", redact_url_text(text)),
            })?;
        let context = format!("{method} {} (file {})", redact_url(&url), file.id);
        Ok((url, context))
    }

    /// A storage request with retries; `accept` turns a response into the result or an
    /// attempt outcome, after the generic statuses (errors, redirects) are handled.
    fn storage<T>(
        &self,
        context: &str,
        build: impl Fn(&reqwest::blocking::Client) -> RequestBuilder,
        accept: impl Fn(Response) -> Attempt<T>,
    ) -> Result<T, ApiError> {
        self.with_retries(context, |_| match build(&self.inner.storage).send() {
            Err(error) => send_failure(error, context, Safety::Idempotent),
            Ok(response) => match storage_status(&response, context) {
                Some(outcome) => outcome,
                None => accept(response),
            },
        })
    }

    fn head_length(&self, url: &Url, context: &str) -> Result<Option<u64>, ApiError> {
        self.storage(
            context,
            |storage| storage.head(url.clone()),
            |response| {
                Attempt::Done(if response.status().is_success() {
                    header_u64(&response, header::CONTENT_LENGTH)
                } else {
                    None
                })
            },
        )
    }

    /// The length from a one-byte range request, for storage that does not answer HEAD.
    fn ranged_length(&self, url: &Url, context: &str) -> Result<Option<u64>, ApiError> {
        self.storage(
            context,
            |storage| storage.get(url.clone()).header(header::RANGE, "bytes=0-0"),
            |response| {
                Attempt::Done(match response.status() {
                    StatusCode::OK => header_u64(&response, header::CONTENT_LENGTH),
                    StatusCode::PARTIAL_CONTENT | StatusCode::RANGE_NOT_SATISFIABLE => {
                        content_range(&response).and_then(|range| range.total)
                    }
                    _ => None,
                })
            },
        )
    }
}

const PER_PAGE_TEXT: &str = "100";
const _: () = assert!(PER_PAGE == 100);

/// `folder_id=X`, or nothing for the root (Cloudify's default is the root).
fn folder_query(folder: &Id) -> Vec<(&str, &str)> {
    if folder.is_root() {
        Vec::new()
    } else {
        vec![("folder_id", folder.as_str())]
    }
}

fn unexpected_shape(context: String, what: &str) -> ApiError {
    ApiError::Protocol {
        context,
        message: format!("data is not a list of {what}"),
    }
}

/// The MIME type for an upload's file name. The server sniffs the content anyway; this only
/// keeps the multipart part honest for the types Cloudify allows by default.
fn mime_for(name: &str) -> &'static str {
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("jpg" | "jpeg" | "jfif") => "image/jpeg",
        Some("png") => "image/png",
        Some("gif") => "image/gif",
        Some("bmp") => "image/bmp",
        Some("webp") => "image/webp",
        Some("avif") => "image/avif",
        Some("svg") => "image/svg+xml",
        Some("txt") => "text/plain",
        Some("csv") => "text/csv",
        Some("json") => "application/json",
        Some("pdf") => "application/pdf",
        Some("zip") => "application/zip",
        Some("rar" | "x-rar") => "application/vnd.rar",
        Some("doc") => "application/msword",
        Some("docx") => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        Some("xls") => "application/vnd.ms-excel",
        Some("xlsx") => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        Some("ppt") => "application/vnd.ms-powerpoint",
        Some("pptx") => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        Some("mp3" | "mpga") => "audio/mpeg",
        Some("wav") => "audio/wav",
        Some("mp4" | "m4v") => "video/mp4",
        Some("webm") => "video/webm",
        Some("mov") => "video/quicktime",
        _ => "application/octet-stream",
    }
}

/// The slowest upload rate still considered alive, for the deadline of a whole upload: the
/// request's timeout covers sending the body and waiting for the answer together.
const MIN_UPLOAD_BYTES_PER_SECOND: u64 = 32 * 1024;

/// The piece of a staged file read and handed to the connection at a time.
const UPLOAD_CHUNK: usize = 1024 * 1024;

/// The async client that sends uploads, and the runtime it runs on.
///
/// The runtime has one worker thread, which drives the connections (and reads the staged
/// files through tokio's blocking pool); each upload is awaited with `block_on` on the thread
/// that asked, so any number of FUSE threads can upload at once. Shut down without waiting
/// when the `Client` goes, so dropping one never blocks or panics in an async context.
struct Uploads {
    client: reqwest::Client,
    runtime: Option<tokio::runtime::Runtime>,
    /// The server answered a streamed upload with 411 Length Required: uploads are no
    /// longer streamed (they wait for the whole content and say its length).
    no_streaming: Arc<AtomicBool>,
}

impl Uploads {
    fn new(
        headers: HeaderMap,
        config: &ClientConfig,
        connect_timeout: Duration,
    ) -> Result<Uploads, ApiError> {
        let local = |source: io::Error| ApiError::Local {
            context: "HTTP client for uploads".to_string(),
            source,
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("cloudify-upload")
            .enable_all()
            .build()
            .map_err(local)?;
        let client = reqwest::Client::builder()
            .default_headers(headers)
            .redirect(redirect::Policy::none())
            .user_agent(config.user_agent.clone())
            .timeout(config.timeout)
            .connect_timeout(connect_timeout)
            .tcp_keepalive(Duration::from_secs(30))
            .build()
            .map_err(|e| local(io::Error::other(describe(&e))))?;
        Ok(Uploads {
            client,
            runtime: Some(runtime),
            no_streaming: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The runtime, unless it cannot be used from here: the `Client` is being dropped, or
    /// this is async code, where `block_on` would panic (the blocking API, like reqwest's
    /// blocking client, is not for async code).
    fn runtime(&self) -> Result<&tokio::runtime::Runtime, &'static str> {
        let Some(runtime) = &self.runtime else {
            return Err("the HTTP client is shut down");
        };
        if tokio::runtime::Handle::try_current().is_ok() {
            return Err("an upload cannot be sent from inside an async runtime");
        }
        Ok(runtime)
    }

    /// Sends one upload attempt, a POST of the multipart `form` that must be answered
    /// within `deadline`, and classifies the answer like any API call's.
    fn send(
        &self,
        url: &Url,
        deadline: Duration,
        form: multipart::Form,
        context: &str,
        key: &str,
    ) -> Attempt<Envelope> {
        let runtime = match self.runtime() {
            Ok(runtime) => runtime,
            Err(message) => {
                return Attempt::Fail(ApiError::Local {
                    context: context.to_string(),
                    source: io::Error::other(message),
                });
            }
        };
        let request = self.client.post(url.clone()).timeout(deadline);
        runtime.block_on(exchange(request.multipart(form), context, key, None))
    }
}

/// Sends an upload request and classifies the answer like any API call's. `no_streaming`
/// is set when the server wants the length of the body first (411).
async fn exchange(
    request: reqwest::RequestBuilder,
    context: &str,
    key: &str,
    no_streaming: Option<&AtomicBool>,
) -> Attempt<Envelope> {
    let response = match request.send().await {
        Ok(response) => response,
        Err(error) => return send_failure(error, context, Safety::Once),
    };
    if response.status() == StatusCode::LENGTH_REQUIRED
        && let Some(flag) = no_streaming
        && !flag.swap(true, Ordering::Relaxed)
    {
        log::info!(
            "the server refuses uploads of unknown length (HTTP 411): files are uploaded \
             once they are closed from now on, not while they are written"
        );
    }
    let head = match answer_head(response.status(), response.headers(), context, key) {
        Ok(head) => head,
        Err(outcome) => return outcome,
    };
    match api_body_async(response, context, Safety::Once).await {
        Ok(body) => answer_body(head, &body, context, Safety::Once, key),
        Err(outcome) => outcome,
    }
}

/// Bytes gathered from small writes before they go to the connection as one piece.
const STREAM_PIECE: usize = 256 * 1024;

/// Pieces a streamed upload holds before its writer waits: with the piece on its way and
/// the socket's buffers, a few MiB of the file in memory (pieces of 1 MiB when written so).
const STREAM_PIECES: usize = 2;

/// The most a streamed upload may still hold when its content ends, for the deadline of
/// the answer.
const STREAM_HELD: u64 = (STREAM_PIECES as u64 + 1) * 2 * 1024 * 1024;

/// What a streamed upload's body is fed with.
enum Piece {
    Data(Bytes),
    /// The content is whole: the body ends (with the form's closing boundary).
    End,
}

/// The body of a streamed upload: the pieces as they come. Should the feeding side go
/// away without [`Piece::End`], the body fails instead of ending, so the request is cut
/// off and the form never completes: the server stores nothing.
fn stream_body(
    rx: tokio::sync::mpsc::Receiver<Piece>,
) -> impl futures_util::Stream<Item = Result<Bytes, io::Error>> + Send + 'static {
    futures_util::stream::unfold(rx, |mut rx| async move {
        let item = match rx.recv().await {
            Some(Piece::Data(bytes)) => Ok(bytes),
            Some(Piece::End) => return None,
            None => Err(io::Error::other("the upload was abandoned")),
        };
        Some((item, rx))
    })
}

/// [`UploadStream`] of the [`Client`]: the request runs on the upload runtime, fed
/// through a bounded channel by the writing thread.
struct StreamedUpload {
    client: Client,
    context: String,
    tx: Option<tokio::sync::mpsc::Sender<Piece>>,
    task: Option<tokio::task::JoinHandle<Attempt<Envelope>>>,
    gathered: BytesMut,
}

impl StreamedUpload {
    fn network(&self, message: String) -> ApiError {
        ApiError::Network {
            context: self.context.clone(),
            message,
        }
    }

    /// Hands a piece to the request, waiting for room at most the client's timeout.
    fn put(&mut self, piece: Piece) -> Result<(), ApiError> {
        let wait = self.client.inner.timeout;
        let (Some(tx), Ok(runtime)) = (&self.tx, self.client.inner.uploads.runtime()) else {
            return Err(self.network("the upload was abandoned".to_string()));
        };
        match runtime.block_on(async { tokio::time::timeout(wait, tx.send(piece)).await }) {
            Ok(Ok(())) => Ok(()),
            // The request is over before its body: its outcome says why.
            Ok(Err(_)) => Err(match self.outcome(wait) {
                Err(error) => error,
                Ok(_) => protocol(
                    self.context.clone(),
                    "the server answered before the whole file was sent".to_string(),
                ),
            }),
            Err(_) => Err(self.network(format!(
                "the server took no data for {wait:?} (stalled upload)"
            ))),
        }
    }

    /// The request's outcome, waiting at most `deadline`.
    fn outcome(&mut self, deadline: Duration) -> Result<Envelope, ApiError> {
        let (Some(mut task), Ok(runtime)) = (self.task.take(), self.client.inner.uploads.runtime())
        else {
            return Err(self.network("the upload was abandoned".to_string()));
        };
        let waited = runtime.block_on(async { tokio::time::timeout(deadline, &mut task).await });
        let attempt = match waited {
            Ok(Ok(attempt)) => attempt,
            Ok(Err(e)) => return Err(self.network(format!("the upload task failed: {e}"))),
            Err(_) => {
                task.abort();
                return Err(self.network(format!("no answer within {deadline:?}")));
            }
        };
        match attempt {
            Attempt::Done(envelope) => Ok(envelope),
            Attempt::Retry { error, .. } | Attempt::Fail(error) => Err(error),
        }
    }
}

impl UploadStream for StreamedUpload {
    fn send(&mut self, data: Bytes) -> Result<(), ApiError> {
        if self.gathered.is_empty() && data.len() >= STREAM_PIECE {
            return self.put(Piece::Data(data));
        }
        self.gathered.extend_from_slice(&data);
        if self.gathered.len() < STREAM_PIECE {
            return Ok(());
        }
        let piece = self.gathered.split().freeze();
        self.put(Piece::Data(piece))
    }

    fn finish(mut self: Box<Self>) -> Result<File, ApiError> {
        if !self.gathered.is_empty() {
            let piece = self.gathered.split().freeze();
            self.put(Piece::Data(piece))?;
        }
        self.put(Piece::End)?;
        self.tx = None;
        let deadline = self.client.inner.timeout
            + Duration::from_secs(STREAM_HELD / MIN_UPLOAD_BYTES_PER_SECOND);
        let envelope = self.outcome(deadline)?;
        let data = envelope.data.unwrap_or(Value::Null);
        serde_json::from_value(data)
            .map_err(|e| self.client.shape_error(self.context.clone(), "file", &e))
    }
}

impl Drop for StreamedUpload {
    fn drop(&mut self) {
        // Unfinished: the request is cut off wherever it is (also when the server stopped
        // reading, which a failing body alone would not end).
        self.tx = None;
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Drop for Uploads {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

impl Remote for Client {
    fn list_folder(&self, folder: &Id) -> Result<Listing, ApiError> {
        self.list_pages(folder)
    }

    fn get_folder(&self, id: &Id) -> Result<Folder, ApiError> {
        let (data, context) = self.get_data("/media/folders", &[id.as_str()], &[])?;
        serde_json::from_value(data).map_err(|e| self.shape_error(context, "folder", &e))
    }

    fn create_folder(&self, parent: &Id, name: &str) -> Result<Folder, ApiError> {
        let (url, context) = self.endpoint(&Method::POST, "/media/folders", &[], &[]);
        let body = serde_json::json!({ "name": name, "parent_id": parent.as_str() });
        let envelope = self.call(&context, Safety::Once, |api, _| {
            Ok(api.post(url.clone()).json(&body))
        })?;
        let data = envelope.data.unwrap_or(Value::Null);
        serde_json::from_value(data).map_err(|e| self.shape_error(context, "folder", &e))
    }

    fn trash_folder(&self, id: &Id) -> Result<(), ApiError> {
        self.simple(Method::PATCH, "/media/folders", id, true)
    }

    fn delete_folder(&self, id: &Id) -> Result<(), ApiError> {
        self.simple(Method::DELETE, "/media/folders", id, false)
    }

    fn upload_file(&self, folder: &Id, name: &str, path: &Path) -> Result<File, ApiError> {
        let (url, context) = self.endpoint(&Method::POST, "/media/files", &[], &[]);
        let local = |source: io::Error| ApiError::Local {
            context: format!("{context}: reading {}", path.display()),
            source,
        };
        let len = fs::metadata(path).map_err(local)?.len();
        let deadline = self.inner.timeout + Duration::from_secs(len / MIN_UPLOAD_BYTES_PER_SECOND);
        let form = || -> Result<multipart::Form, ApiError> {
            let file = tokio::fs::File::from_std(fs::File::open(path).map_err(local)?);
            let chunks = ReaderStream::with_capacity(file, UPLOAD_CHUNK);
            let part = multipart::Part::stream_with_length(reqwest::Body::wrap_stream(chunks), len)
                .file_name(name.to_string())
                .mime_str(mime_for(name))
                .map_err(|e| local(io::Error::other(describe(&e))))?;
            Ok(multipart::Form::new()
                .text("folder_id", folder.as_str().to_string())
                .part("file", part))
        };
        // As `call`, with the request sent by the async client.
        let envelope = self.with_retries(&context, |_| {
            if let Some(budget) = &self.inner.budget {
                budget.acquire();
            }
            let form = match form() {
                Ok(form) => form,
                Err(error) => return Attempt::Fail(error),
            };
            let uploads = &self.inner.uploads;
            uploads.send(&url, deadline, form, &context, &self.inner.key)
        })?;
        let data = envelope.data.unwrap_or(Value::Null);
        serde_json::from_value(data).map_err(|e| self.shape_error(context, "file", &e))
    }

    fn start_upload(&self, folder: &Id, name: &str) -> Option<Box<dyn UploadStream>> {
        let uploads = &self.inner.uploads;
        if uploads.no_streaming.load(Ordering::Relaxed) {
            return None;
        }
        let runtime = uploads.runtime().ok()?;
        let (url, context) = self.endpoint(&Method::POST, "/media/files", &[], &[]);
        let (tx, rx) = tokio::sync::mpsc::channel(STREAM_PIECES);
        let part = multipart::Part::stream(reqwest::Body::wrap_stream(stream_body(rx)))
            .file_name(name.to_string())
            .mime_str(mime_for(name))
            .ok()?;
        let form = multipart::Form::new()
            .text("folder_id", folder.as_str().to_string())
            .part("file", part);
        // No deadline for the whole request: it lasts as long as the file is written. A
        // server that stops taking data fails the writer's `send`, which drops the upload.
        let request = uploads
            .client
            .post(url)
            .timeout(Duration::from_secs(7 * 24 * 3600))
            .multipart(form);
        if let Some(budget) = &self.inner.budget {
            budget.acquire();
        }
        let (task_context, key) = (context.clone(), self.inner.key.clone());
        let no_streaming = uploads.no_streaming.clone();
        let task = runtime.spawn(async move {
            exchange(request, &task_context, &key, Some(&no_streaming)).await
        });
        Some(Box::new(StreamedUpload {
            client: self.clone(),
            context,
            tx: Some(tx),
            task: Some(task),
            gathered: BytesMut::new(),
        }))
    }

    fn trash_file(&self, id: &Id) -> Result<(), ApiError> {
        self.simple(Method::PATCH, "/media/files", id, true)
    }

    fn delete_file(&self, id: &Id) -> Result<(), ApiError> {
        self.simple(Method::DELETE, "/media/files", id, false)
    }

    fn content_length(&self, file: &File) -> Result<Option<u64>, ApiError> {
        let (url, context) = self.content_url(file, &Method::HEAD)?;
        match self.head_length(&url, &context)? {
            Some(len) => Ok(Some(len)),
            // Storage that refuses HEAD or leaves out the length: ask for one byte instead.
            None => self.ranged_length(&url, &context.replacen("HEAD", "GET", 1)),
        }
    }

    fn download(&self, file: &File, offset: u64, end: Option<u64>) -> Result<Download, ApiError> {
        let (url, context) = self.content_url(file, &Method::GET)?;
        let range = range_header(offset, end);
        self.storage(
            &context,
            |storage| {
                storage
                    .get(url.clone())
                    .header(header::RANGE, range.as_str())
            },
            |response| download_from(response, offset, &context),
        )
    }

    fn timeout(&self) -> Duration {
        self.inner.timeout
    }
}

impl Client {
    /// A PATCH `{path}/{id}/trash` or DELETE `{path}/{id}`. Both are safe to repeat; a trash
    /// repeated after a lost answer finds the file already trashed, which Cloudify refuses
    /// with "Error when deleting": after a retry that refusal is taken as success (the file
    /// is in the trash or gone either way).
    fn simple(&self, method: Method, path: &str, id: &Id, trash: bool) -> Result<(), ApiError> {
        let segments: &[&str] = if trash {
            &[id.as_str(), "trash"]
        } else {
            &[id.as_str()]
        };
        let (url, context) = self.endpoint(&method, path, segments, &[]);
        let retried = std::cell::Cell::new(false);
        let result = self.call(&context, Safety::Idempotent, |api, attempt| {
            retried.set(attempt > 0);
            Ok(api.request(method.clone(), url.clone()))
        });
        match result {
            Ok(_) => Ok(()),
            Err(ApiError::Refused { .. }) if trash && retried.get() => Ok(()),
            Err(error) => Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_normalised() {
        for (given, expected) in [
            (
                "https://media.example.com",
                "https://media.example.com/api/v1",
            ),
            (
                "https://media.example.com/",
                "https://media.example.com/api/v1",
            ),
            (
                "https://media.example.com/api/v1",
                "https://media.example.com/api/v1",
            ),
            (
                "https://media.example.com/api/v1/",
                "https://media.example.com/api/v1",
            ),
            (
                "http://127.0.0.1:8080/sub",
                "http://127.0.0.1:8080/sub/api/v1",
            ),
            (" https://x.test//api/v1// ", "https://x.test/api/v1"),
        ] {
            let url = normalise_base(given).expect(given);
            assert_eq!(url.as_str(), expected, "{given}");
        }
    }

    #[test]
    fn bad_base_urls_are_clear_errors() {
        for given in [
            "",
            "media.example.com",
            "ftp://x.test",
            "https://",
            "mailto:a@b.c",
        ] {
            let error = normalise_base(given).expect_err(given).to_string();
            assert!(error.contains("URL"), "{given}: {error}");
        }
    }

    #[test]
    fn a_key_that_is_no_header_value_is_refused_without_showing_it() {
        let error = Client::new(ClientConfig::new("http://127.0.0.1:1", "SECRET\nKEY"))
            .expect_err("newline in key");
        assert!(!error.to_string().contains("SECRET"), "{error}");
    }

    #[test]
    fn debug_output_hides_the_key() {
        let config = ClientConfig::new("http://127.0.0.1:1", "TOPSECRETKEY");
        assert!(!format!("{config:?}").contains("TOPSECRETKEY"));
        let client = Client::new(config).expect("client");
        assert!(!format!("{client:?}").contains("TOPSECRETKEY"));
    }

    #[test]
    fn endpoint_context_is_relative_and_ids_are_encoded() {
        let client = Client::new(ClientConfig::new("http://h.test/", "K")).expect("client");
        let (url, context) =
            client.endpoint(&Method::GET, "/media/folders", &["a/b c"], &[("page", "2")]);
        assert_eq!(
            url.as_str(),
            "http://h.test/api/v1/media/folders/a%2Fb%20c?page=2"
        );
        assert_eq!(context, "GET /media/folders/a%2Fb%20c?page=2");
    }

    #[test]
    fn mime_types_from_names() {
        assert_eq!(mime_for("a.PDF"), "application/pdf");
        assert_eq!(mime_for("photo.jpeg"), "image/jpeg");
        assert_eq!(mime_for("noext"), "application/octet-stream");
    }

    #[test]
    fn urls_in_messages_lose_query_and_credentials() {
        let url = Url::parse("https://u:p@cdn.test/a/b.pdf?X-Amz-Signature=s3cr3t#f").expect("url");
        assert_eq!(redact_url(&url), "https://cdn.test/a/b.pdf");
        assert_eq!(redact_url_text("not a url?token=1"), "not a url");
    }
}
