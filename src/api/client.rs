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
//! Success is decided by the JSON `error` flag, not by the HTTP status: Cloudify refuses
//! uploads and some trashes with HTTP 200 and `error: true`. Transient failures are retried
//! (see [`Client::with_retries`]) and API calls are paced by a [`RateBudget`].
//!
//! The key is never part of an error, a log line or `Debug` output; errors carry a context
//! such as `GET /media/folders?folder_id=X` (relative to the API base) or, for storage, the
//! URL without its query string.

use std::fs;
use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use reqwest::blocking::{RequestBuilder, Response, multipart};
use reqwest::header::{self, HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url, redirect};
use serde_json::Value;

use super::model::{Envelope, FolderPage, files_from_json};
use super::paging::{PER_PAGE, PageRule};
use super::retry::{Backoff, MAX_RETRY_AFTER, RateBudget, parse_retry_after};
use super::{ApiError, Download, File, Folder, Id, Listing, Remote};

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
    /// hang the mount. Default 10,000 (a million entries).
    pub max_pages: u32,
}

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
            max_pages: 10_000,
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

/// Whether a call may be sent again after a failure whose effect on the server is unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Safety {
    /// GET, HEAD, DELETE, PATCH trash: repeating them changes nothing more.
    Idempotent,
    /// Upload and folder create: a repeat after a lost answer would create a duplicate
    /// ("name-1"), so they are retried only when the request certainly was not processed.
    Once,
}

/// What one attempt of a call came to.
enum Attempt<T> {
    Done(T),
    /// Worth another try, after `after` if the server said (`Retry-After`).
    Retry {
        error: ApiError,
        after: Option<Duration>,
    },
    Fail(ApiError),
}

/// The Cloudify HTTP client. Cheap to clone; clones share connections and the call budget.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    api: reqwest::blocking::Client,
    storage: reqwest::blocking::Client,
    /// The API base, `.../api/v1` without a trailing slash.
    base: Url,
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
                base,
                timeout: config.timeout,
                retries: config.retries,
                max_pages: config.max_pages.max(1),
                backoff: Backoff::default(),
                budget: config.rate_per_minute.map(RateBudget::new),
            }),
        })
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
        loop {
            let (error, after) = match attempt(number) {
                Attempt::Done(value) => return Ok(value),
                Attempt::Fail(error) => return Err(error),
                Attempt::Retry { error, after } => (error, after),
            };
            if number >= self.inner.retries {
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
        self.with_retries(context, |attempt| {
            if let Some(budget) = &self.inner.budget {
                budget.acquire();
            }
            let request = match build(&self.inner.api, attempt) {
                Ok(request) => request,
                Err(error) => return Attempt::Fail(error),
            };
            match request.send() {
                Ok(response) => api_answer(response, context, safety),
                Err(error) => send_failure(error, context, safety),
            }
        })
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
        for page in 1..=self.inner.max_pages {
            let page_text = page.to_string();
            let mut query = folder_query.clone();
            query.extend([
                ("include_files", "true"),
                ("per_page", PER_PAGE_TEXT),
                ("page", &page_text),
            ]);
            let (data, context) = self.get_data("/media/folders", &[], &query)?;
            let page_listing = match FolderPage::from_json(&data, &context) {
                Some(FolderPage::WithFiles(listing)) => listing,
                Some(FolderPage::FoldersOnly(folders)) => {
                    files_separately = true;
                    Listing {
                        folders,
                        files: Vec::new(),
                    }
                }
                None => return Err(unexpected_shape(context, "folders")),
            };
            if !rule.absorb(page_listing, &mut listing) {
                break;
            }
            self.warn_if_last_page(page, &context);
        }
        if files_separately {
            self.list_files(&folder_query, &mut rule, &mut listing)?;
        }
        Ok(listing)
    }

    /// `GET /media/files` for a server that lists no files with the folders.
    fn list_files(
        &self,
        folder_query: &[(&str, &str)],
        rule: &mut PageRule,
        listing: &mut Listing,
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
            self.warn_if_last_page(page, &context);
        }
        Ok(())
    }

    fn warn_if_last_page(&self, page: u32, context: &str) {
        if page == self.inner.max_pages {
            log::warn!(
                "{context}: still more entries after {page} pages; the listing is cut there"
            );
        }
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

/// The text of a reqwest error without its URL, with its causes.
fn describe(error: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = if error.is_timeout() {
        "timed out".to_string()
    } else if error.is_connect() {
        "could not connect".to_string()
    } else {
        error.to_string()
    };
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// A request that got no answer. Connect errors are always worth a retry (nothing reached
/// the server); anything later (a timeout, a connection reset mid-way) is retried only for
/// idempotent calls: the server may have processed an upload or folder create whose answer
/// was lost, and a blind repeat would leave a "name-1" duplicate. The caller gets a
/// `Network` error then and decides (for example by listing the folder).
fn send_failure<T>(error: reqwest::Error, context: &str, safety: Safety) -> Attempt<T> {
    let error = error.without_url();
    let mut message = describe(&error);
    if error.is_connect() || safety == Safety::Idempotent {
        return Attempt::Retry {
            error: ApiError::Network {
                context: context.to_string(),
                message,
            },
            after: None,
        };
    }
    message.push_str(" (the server may have processed the request; not repeated)");
    Attempt::Fail(ApiError::Network {
        context: context.to_string(),
        message,
    })
}

fn retry_after(response: &Response) -> Option<Duration> {
    let value = response.headers().get(header::RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, SystemTime::now())
}

fn header_u64(response: &Response, name: header::HeaderName) -> Option<u64> {
    response
        .headers()
        .get(name)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The message of an error body when it is JSON, else a short note of what came.
fn error_message(body: &[u8], status: StatusCode) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(Envelope::from_json)
        .and_then(|e| e.message)
        .unwrap_or_else(|| format!("HTTP {status} without a JSON message"))
}

/// Turns an API response into the envelope of a success or a classified error.
fn api_answer(response: Response, context: &str, safety: Safety) -> Attempt<Envelope> {
    let status = response.status();
    let after = retry_after(&response);
    log::debug!("{context} -> {status}");
    let err = |make: fn(String, String) -> ApiError, message: String| {
        Attempt::Fail(make(context.to_string(), message))
    };

    if status.is_redirection() {
        return err(
            protocol,
            format!(
                "the server redirected (HTTP {status}): the Accept header was lost on the way or \
             the URL is not the Cloudify API base"
            ),
        );
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        let error = ApiError::RateLimited {
            context: context.to_string(),
        };
        return Attempt::Retry { error, after };
    }

    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("no content type")
        .to_string();
    let body = match response.bytes() {
        Ok(body) => body,
        Err(error) => return send_failure(error, context, safety),
    };

    if status.is_server_error() {
        let error = ApiError::Server {
            context: context.to_string(),
            status: status.as_u16(),
            message: error_message(&body, status),
        };
        // 503 is what Laravel's maintenance mode and overloaded proxies answer before the
        // application ran, so even a create may be repeated; other 5xx may come after the
        // work was done.
        if safety == Safety::Idempotent || status == StatusCode::SERVICE_UNAVAILABLE {
            return Attempt::Retry { error, after };
        }
        return Attempt::Fail(error);
    }
    if !status.is_success() {
        return client_error(status, error_message(&body, status), context);
    }

    if status == StatusCode::NO_CONTENT || body.trim_ascii().is_empty() {
        // Not Cloudify's habit, but a bodiless success of a DELETE means what it says.
        return Attempt::Done(Envelope::default());
    }
    let Some(envelope) = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(Envelope::from_json)
    else {
        return err(
            protocol,
            format!("the answer is not JSON ({content_type}): is the URL the Cloudify API base?"),
        );
    };
    match envelope.error {
        Some(true) => Attempt::Fail(soft_error(context, envelope.message)),
        Some(false) => Attempt::Done(envelope),
        None if envelope.data.is_some() => Attempt::Done(envelope),
        None => err(protocol, "JSON without `error` or `data`".to_string()),
    }
}

fn protocol(context: String, message: String) -> ApiError {
    ApiError::Protocol { context, message }
}

/// A 4xx other than 429.
fn client_error<T>(status: StatusCode, message: String, context: &str) -> Attempt<T> {
    let context = context.to_string();
    Attempt::Fail(match status.as_u16() {
        401 | 403 => ApiError::Unauthorized {
            context,
            status: status.as_u16(),
            message,
        },
        // Laravel answers a wrong method on an existing path with 404 too.
        404 | 405 | 410 => ApiError::NotFound { context, message },
        400 | 422 => ApiError::Invalid { context, message },
        413 => ApiError::TooLarge { context, message },
        _ => ApiError::Protocol {
            context,
            message: format!("unexpected HTTP {status}: {message}"),
        },
    })
}

/// HTTP 200 with `error: true`: an upload refused for its type or size, or another refusal.
fn soft_error(context: &str, message: Option<String>) -> ApiError {
    let context = context.to_string();
    let message = message.unwrap_or_else(|| "refused without a message".to_string());
    let lower = message.to_lowercase();
    if lower.contains("too big") || lower.contains("too large") {
        ApiError::TooLarge { context, message }
    } else if lower.contains("file type") || lower.contains("not allowed") {
        ApiError::TypeNotAllowed { context, message }
    } else {
        ApiError::Refused { context, message }
    }
}

/// The outcome of a storage response with an error or redirect status; `None` when the
/// response is to be looked at by the caller (2xx, 416, and 405/501 which say that the
/// method, for example HEAD, is not supported).
fn storage_status<T>(response: &Response, context: &str) -> Option<Attempt<T>> {
    let status = response.status();
    log::debug!("{context} -> {status}");
    if status.is_success() || matches!(status.as_u16(), 405 | 416 | 501) {
        return None;
    }
    let message = format!("storage answered HTTP {status}");
    let after = retry_after(response);
    Some(match status.as_u16() {
        429 => Attempt::Retry {
            error: ApiError::RateLimited {
                context: context.to_string(),
            },
            after,
        },
        408 => Attempt::Retry {
            error: ApiError::Network {
                context: context.to_string(),
                message,
            },
            after,
        },
        500..=599 => Attempt::Retry {
            error: ApiError::Server {
                context: context.to_string(),
                status: status.as_u16(),
                message,
            },
            after,
        },
        300..=399 => Attempt::Fail(protocol(
            context.to_string(),
            format!("{message}: too many or unusable redirects"),
        )),
        _ => client_error(status, message, context),
    })
}

/// `Content-Range: bytes START-END/TOTAL` or `bytes */TOTAL`.
#[derive(Debug, PartialEq, Eq)]
struct ContentRange {
    start: Option<u64>,
    total: Option<u64>,
}

fn parse_content_range(value: &str) -> Option<ContentRange> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    let start = match range.trim() {
        "*" => None,
        r => Some(r.split_once('-')?.0.trim().parse().ok()?),
    };
    Some(ContentRange { start, total })
}

fn content_range(response: &Response) -> Option<ContentRange> {
    parse_content_range(
        response
            .headers()
            .get(header::CONTENT_RANGE)?
            .to_str()
            .ok()?,
    )
}

/// The `Range` header for `offset..end`.
fn range_header(offset: u64, end: Option<u64>) -> String {
    match end {
        Some(end) if end > offset => format!("bytes={offset}-{}", end - 1),
        _ => format!("bytes={offset}-"),
    }
}

/// Turns a successful download response into a [`Download`].
fn download_from(response: Response, offset: u64, context: &str) -> Attempt<Download> {
    match response.status() {
        StatusCode::PARTIAL_CONTENT => {
            let range = content_range(&response);
            let start = range.as_ref().and_then(|r| r.start).unwrap_or(offset);
            if start > offset {
                return Attempt::Fail(protocol(
                    context.to_string(),
                    format!("asked for bytes from {offset}, storage sent from {start}"),
                ));
            }
            Attempt::Done(Download {
                start,
                total_len: range.and_then(|r| r.total),
                body: Box::new(response),
            })
        }
        // Nothing left at this offset: the file ends before it.
        StatusCode::RANGE_NOT_SATISFIABLE => Attempt::Done(Download {
            start: offset,
            total_len: content_range(&response).and_then(|r| r.total),
            body: Box::new(io::empty()),
        }),
        // The storage ignored Range and sends the whole file; the caller skips ahead.
        status if status.is_success() => Attempt::Done(Download {
            start: 0,
            total_len: header_u64(&response, header::CONTENT_LENGTH),
            body: Box::new(response),
        }),
        status => Attempt::Fail(protocol(
            context.to_string(),
            format!("storage answered HTTP {status}"),
        )),
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
/// blocking client's timeout covers sending the body and waiting for the answer together.
const MIN_UPLOAD_BYTES_PER_SECOND: u64 = 32 * 1024;

impl Remote for Client {
    fn list_folder(&self, folder: &Id) -> Result<Listing, ApiError> {
        self.list_pages(folder)
    }

    fn get_folder(&self, id: &Id) -> Result<Folder, ApiError> {
        let (data, context) = self.get_data("/media/folders", &[id.as_str()], &[])?;
        serde_json::from_value(data).map_err(|e| protocol(context, format!("not a folder: {e}")))
    }

    fn create_folder(&self, parent: &Id, name: &str) -> Result<Folder, ApiError> {
        let (url, context) = self.endpoint(&Method::POST, "/media/folders", &[], &[]);
        let body = serde_json::json!({ "name": name, "parent_id": parent.as_str() });
        let envelope = self.call(&context, Safety::Once, |api, _| {
            Ok(api.post(url.clone()).json(&body))
        })?;
        let data = envelope.data.unwrap_or(Value::Null);
        serde_json::from_value(data).map_err(|e| protocol(context, format!("not a folder: {e}")))
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
        let envelope = self.call(&context, Safety::Once, |api, _| {
            let file = fs::File::open(path).map_err(local)?;
            let part = multipart::Part::reader_with_length(file, len)
                .file_name(name.to_string())
                .mime_str(mime_for(name))
                .map_err(|e| local(io::Error::other(describe(&e))))?;
            let form = multipart::Form::new()
                .text("folder_id", folder.as_str().to_string())
                .part("file", part);
            Ok(api.post(url.clone()).multipart(form).timeout(deadline))
        })?;
        let data = envelope.data.unwrap_or(Value::Null);
        serde_json::from_value(data).map_err(|e| protocol(context, format!("not a file: {e}")))
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
    fn content_ranges() {
        let parse = parse_content_range;
        assert_eq!(
            parse("bytes 10-19/100"),
            Some(ContentRange {
                start: Some(10),
                total: Some(100)
            })
        );
        assert_eq!(
            parse("bytes 0-0/*"),
            Some(ContentRange {
                start: Some(0),
                total: None
            })
        );
        assert_eq!(
            parse("bytes */42"),
            Some(ContentRange {
                start: None,
                total: Some(42)
            })
        );
        assert_eq!(parse("items 1-2/3"), None);
        assert_eq!(parse("bytes x-y/z"), None);
    }

    #[test]
    fn range_headers() {
        assert_eq!(range_header(0, None), "bytes=0-");
        assert_eq!(range_header(5, Some(10)), "bytes=5-9");
        assert_eq!(range_header(5, Some(5)), "bytes=5-");
    }

    #[test]
    fn soft_errors_are_classified_by_message() {
        let kind = |m: &str| match soft_error("c", Some(m.to_string())) {
            ApiError::TooLarge { .. } => "large",
            ApiError::TypeNotAllowed { .. } => "type",
            ApiError::Refused { .. } => "refused",
            _ => "other",
        };
        assert_eq!(kind("File is too big. Max file upload is 2MB"), "large");
        assert_eq!(kind("The POST data is too large."), "large");
        assert_eq!(
            kind("The file type is not allowed. Please upload a valid file format."),
            "type"
        );
        assert_eq!(kind("Error when deleting selected item(s)"), "refused");
        assert!(matches!(soft_error("c", None), ApiError::Refused { .. }));
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
