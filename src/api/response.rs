//! What the client makes of an answer: the classification of API responses and of storage
//! responses into results, retries and [`ApiError`]s, and the byte-range bookkeeping of
//! downloads. Kept apart from the request side in `client.rs` so that the rules read in one
//! place.

use std::io::{self, Read};
use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::blocking::Response;
use reqwest::header;
use serde_json::Value;

use super::model::{Envelope, FolderPage};
use super::retry::parse_retry_after;
use super::{ApiError, Download};

/// Whether a call may be sent again after a failure whose effect on the server is unknown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Safety {
    /// GET, HEAD, DELETE, PATCH trash: repeating them changes nothing more.
    Idempotent,
    /// Upload and folder create: a repeat after a lost answer would create a duplicate
    /// ("name-1"), so they are retried only when the request certainly was not processed.
    Once,
}

/// What one attempt of a call came to.
pub(super) enum Attempt<T> {
    Done(T),
    /// Worth another try, after `after` if the server said (`Retry-After`).
    Retry {
        error: ApiError,
        after: Option<Duration>,
    },
    Fail(ApiError),
}

/// The text of a reqwest error without its URL, with its causes.
pub(super) fn describe(error: &reqwest::Error) -> String {
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
pub(super) fn send_failure<T>(error: reqwest::Error, context: &str, safety: Safety) -> Attempt<T> {
    let error = error.without_url();
    network_failure(describe(&error), error.is_connect(), context, safety)
}

/// A call whose answer did not arrive whole, by the rule of [`send_failure`]; `connect` when
/// nothing reached the server.
pub(super) fn network_failure<T>(
    mut message: String,
    connect: bool,
    context: &str,
    safety: Safety,
) -> Attempt<T> {
    if connect || safety == Safety::Idempotent {
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

pub(super) fn retry_after(response: &Response) -> Option<Duration> {
    retry_after_in(response.headers())
}

fn retry_after_in(headers: &header::HeaderMap) -> Option<Duration> {
    let value = headers.get(header::RETRY_AFTER)?.to_str().ok()?;
    parse_retry_after(value, SystemTime::now())
}

pub(super) fn header_u64(response: &Response, name: header::HeaderName) -> Option<u64> {
    response
        .headers()
        .get(name)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Largest API answer read. A page of 100 entries is about 100 KB, and a 1.2.8 server's
/// unpaged listing of 100,000 entries about 60 MB; anything larger is not the API.
pub(super) const MAX_API_BODY: u64 = 64 * 1024 * 1024;

/// Reads at most `limit` bytes of `body`; `Ok(None)` when there are more, or `declared`
/// (the Content-Length) already says so, without reading them.
pub(super) fn read_capped(
    body: impl Read,
    declared: Option<u64>,
    limit: u64,
) -> io::Result<Option<Vec<u8>>> {
    if declared.is_some_and(|n| n > limit) {
        return Ok(None);
    }
    // Sized from the declared length, so a page of some 70 KB is not copied four times as
    // the buffer grows.
    let mut out = Vec::with_capacity(declared.unwrap_or(0).min(limit + 1) as usize);
    body.take(limit + 1).read_to_end(&mut out)?;
    Ok((out.len() as u64 <= limit).then_some(out))
}

/// The body of an API answer, at most [`MAX_API_BODY`] bytes.
fn api_body<T>(
    mut response: Response,
    context: &str,
    safety: Safety,
) -> Result<Vec<u8>, Attempt<T>> {
    let declared = response.content_length();
    match read_capped(&mut response, declared, MAX_API_BODY) {
        Ok(Some(body)) => Ok(body),
        Ok(None) => Err(too_large_answer(context)),
        Err(e) => {
            let message = match e.get_ref().and_then(|e| e.downcast_ref::<reqwest::Error>()) {
                Some(e) => describe(e),
                None => e.to_string(),
            };
            Err(network_failure(message, false, context, safety))
        }
    }
}

/// [`api_body`] for an answer of reqwest's async client.
pub(super) async fn api_body_async<T>(
    mut response: reqwest::Response,
    context: &str,
    safety: Safety,
) -> Result<Vec<u8>, Attempt<T>> {
    if response.content_length().is_some_and(|n| n > MAX_API_BODY) {
        return Err(too_large_answer(context));
    }
    let mut out = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                out.extend_from_slice(&chunk);
                if out.len() as u64 > MAX_API_BODY {
                    return Err(too_large_answer(context));
                }
            }
            Ok(None) => return Ok(out),
            Err(e) => {
                let message = describe(&e.without_url());
                return Err(network_failure(message, false, context, safety));
            }
        }
    }
}

fn too_large_answer<T>(context: &str) -> Attempt<T> {
    Attempt::Fail(protocol(
        context.to_string(),
        format!(
            "the answer is larger than {} MiB, more than any Cloudify answer; not read",
            MAX_API_BODY >> 20
        ),
    ))
}

/// Longest text taken from a server's answer into an error, in bytes.
pub(super) const MAX_MESSAGE_BYTES: usize = 500;

/// Text from a server made fit for an error and a log line: every occurrence of the key
/// replaced (Laravel's debug messages quote the SQL of the key lookup, key included; the
/// match is case-insensitive, as Cloudify's token lookup is), then cut to
/// [`MAX_MESSAGE_BYTES`] at a character boundary.
pub(super) fn server_text(text: &str, key: &str) -> String {
    let key = key.trim().to_ascii_lowercase();
    let mut out = String::with_capacity(text.len().min(MAX_MESSAGE_BYTES));
    if key.is_empty() {
        out.push_str(text);
    } else {
        // ASCII lowercasing keeps byte offsets, and a match of the ASCII key starts and ends
        // on character boundaries of `text`.
        let lower = text.to_ascii_lowercase();
        let mut rest = 0;
        while let Some(at) = lower[rest..].find(&key) {
            out.push_str(&text[rest..rest + at]);
            out.push_str("<key>");
            rest += at + key.len();
        }
        out.push_str(&text[rest..]);
    }
    if out.len() > MAX_MESSAGE_BYTES {
        let mut end = MAX_MESSAGE_BYTES - '…'.len_utf8();
        while !out.is_char_boundary(end) {
            end -= 1;
        }
        out.truncate(end);
        out.push('…');
    }
    out
}

/// The message of an error body when it is JSON, else a short note of what came.
pub(super) fn error_message(body: &[u8], status: StatusCode, key: &str) -> String {
    serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(Envelope::from_json)
        .and_then(|e| e.message)
        .map(|m| server_text(&m, key))
        .unwrap_or_else(|| format!("HTTP {status} without a JSON message"))
}

/// Turns an API response into the envelope of a success or a classified error. `key` is
/// the API key, removed from any text of the server that goes into an error.
pub(super) fn api_answer(
    response: Response,
    context: &str,
    safety: Safety,
    key: &str,
) -> Attempt<Envelope> {
    let head = match answer_head(response.status(), response.headers(), context, key) {
        Ok(head) => head,
        Err(outcome) => return outcome,
    };
    match api_body(response, context, safety) {
        Ok(body) => answer_body(head, &body, context, safety, key),
        Err(outcome) => outcome,
    }
}

/// What the answer to a listing page came to (see [`page_answer`]).
pub(super) enum ListingAnswer {
    /// The page, read straight from the body.
    Page(FolderPage),
    /// Any other answer, as [`api_answer`] reads it.
    Envelope(Envelope),
}

/// [`api_answer`] for a page of a folder listing: a success of the usual shape is read
/// straight into folders and files ([`FolderPage::from_answer`]), anything else as every
/// answer is, so that it fails or succeeds as it always did.
pub(super) fn page_answer(
    response: Response,
    context: &str,
    safety: Safety,
    key: &str,
) -> Attempt<ListingAnswer> {
    let head = match answer_head(response.status(), response.headers(), context, key) {
        Ok(head) => head,
        Err(outcome) => return outcome,
    };
    let body = match api_body(response, context, safety) {
        Ok(body) => body,
        Err(outcome) => return outcome,
    };
    if head.status.is_success()
        && head.status != StatusCode::NO_CONTENT
        && let Some(page) = FolderPage::from_answer(&body, context)
    {
        return Attempt::Done(ListingAnswer::Page(page));
    }
    match answer_body(head, &body, context, safety, key) {
        Attempt::Done(envelope) => Attempt::Done(ListingAnswer::Envelope(envelope)),
        Attempt::Retry { error, after } => Attempt::Retry { error, after },
        Attempt::Fail(error) => Attempt::Fail(error),
    }
}

/// What an API answer's status and headers tell before its body is read.
pub(super) struct AnswerHead {
    status: StatusCode,
    after: Option<Duration>,
    content_type: String,
}

/// The first half of [`api_answer`], shared with uploads sent by the async client: a
/// redirect or a 429 is decided here, without reading the body; anything else needs the
/// body, given to [`answer_body`] with the head returned.
pub(super) fn answer_head<T>(
    status: StatusCode,
    headers: &header::HeaderMap,
    context: &str,
    key: &str,
) -> Result<AnswerHead, Attempt<T>> {
    let after = retry_after_in(headers);
    log::debug!("{context} -> {status}");
    if status.is_redirection() {
        return Err(Attempt::Fail(protocol(
            context.to_string(),
            format!(
                "the server redirected (HTTP {status}): the Accept header was lost on the way or \
             the URL is not the Cloudify API base"
            ),
        )));
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        let error = ApiError::RateLimited {
            context: context.to_string(),
        };
        return Err(Attempt::Retry { error, after });
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map_or_else(|| "no content type".to_string(), |t| server_text(t, key));
    Ok(AnswerHead {
        status,
        after,
        content_type,
    })
}

/// The second half of [`api_answer`]: the answer's body read whole.
pub(super) fn answer_body(
    head: AnswerHead,
    body: &[u8],
    context: &str,
    safety: Safety,
    key: &str,
) -> Attempt<Envelope> {
    let AnswerHead {
        status,
        after,
        content_type,
    } = head;
    let err = |make: fn(String, String) -> ApiError, message: String| {
        Attempt::Fail(make(context.to_string(), message))
    };

    // 408: the server or a proxy gave up waiting for the request; as passing as a 5xx.
    if status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
        let error = ApiError::Server {
            context: context.to_string(),
            status: status.as_u16(),
            message: error_message(body, status, key),
        };
        // 503 is what Laravel's maintenance mode and overloaded proxies answer before the
        // application ran, and 408 comes before the request was whole, so even a create may
        // be repeated; other 5xx may come after the work was done.
        let unprocessed = matches!(
            status,
            StatusCode::SERVICE_UNAVAILABLE | StatusCode::REQUEST_TIMEOUT
        );
        if safety == Safety::Idempotent || unprocessed {
            return Attempt::Retry { error, after };
        }
        return Attempt::Fail(error);
    }
    if !status.is_success() {
        return client_error(status, error_message(body, status, key), context);
    }

    if status == StatusCode::NO_CONTENT || body.trim_ascii().is_empty() {
        // Not Cloudify's habit, but a bodiless success of a DELETE means what it says.
        return Attempt::Done(Envelope::default());
    }
    let Some(envelope) = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(Envelope::from_json)
    else {
        return err(
            protocol,
            format!("the answer is not JSON ({content_type}): is the URL the Cloudify API base?"),
        );
    };
    match envelope.error {
        Some(true) => {
            let message = envelope.message.map(|m| server_text(&m, key));
            Attempt::Fail(soft_error(context, message))
        }
        Some(false) => Attempt::Done(envelope),
        None if envelope.data.is_some() => Attempt::Done(envelope),
        None => err(protocol, "JSON without `error` or `data`".to_string()),
    }
}

pub(super) fn protocol(context: String, message: String) -> ApiError {
    ApiError::Protocol { context, message }
}

/// A 4xx other than 429.
pub(super) fn client_error<T>(status: StatusCode, message: String, context: &str) -> Attempt<T> {
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

/// HTTP 200 with `error: true`: an upload refused for its type or size, a key refused (a
/// server or proxy that sends Laravel's authorisation message with status 200), or another
/// refusal.
pub(super) fn soft_error(context: &str, message: Option<String>) -> ApiError {
    let context = context.to_string();
    let message = message.unwrap_or_else(|| "refused without a message".to_string());
    let lower = message.to_lowercase();
    if lower.contains("unauthorized") || lower.contains("unauthenticated") {
        ApiError::Unauthorized {
            context,
            status: 200,
            message,
        }
    } else if lower.contains("too big") || lower.contains("too large") {
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
pub(super) fn storage_status<T>(response: &Response, context: &str) -> Option<Attempt<T>> {
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
pub(super) struct ContentRange {
    pub start: Option<u64>,
    pub total: Option<u64>,
}

pub(super) fn parse_content_range(value: &str) -> Option<ContentRange> {
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

pub(super) fn content_range(response: &Response) -> Option<ContentRange> {
    parse_content_range(
        response
            .headers()
            .get(header::CONTENT_RANGE)?
            .to_str()
            .ok()?,
    )
}

/// The `Range` header for `offset..end`.
pub(super) fn range_header(offset: u64, end: Option<u64>) -> String {
    match end {
        Some(end) if end > offset => format!("bytes={offset}-{}", end - 1),
        _ => format!("bytes={offset}-"),
    }
}

/// Turns a successful download response into a [`Download`].
pub(super) fn download_from(response: Response, offset: u64, context: &str) -> Attempt<Download> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
    fn api_bodies_are_read_up_to_the_cap_only() {
        let read = |len: u64, declared: Option<u64>| {
            read_capped(io::repeat(b'x').take(len), declared, 1000).unwrap()
        };
        assert_eq!(read(1000, Some(1000)).map(|b| b.len()), Some(1000));
        assert_eq!(read(1000, None).map(|b| b.len()), Some(1000));
        assert_eq!(read(1001, None), None, "one byte over");
        assert_eq!(read(10, Some(5000)), None, "refused by its declared length");
        let mut endless = io::repeat(b'x');
        assert_eq!(read_capped(&mut endless, None, 1000).unwrap(), None);
    }

    #[test]
    fn server_text_hides_the_key_in_any_case_and_is_bounded() {
        let key = "AbCdEf0123456789";
        let text = format!(
            "where `token` = {key} or {} and {}!",
            key.to_lowercase(),
            key
        );
        let shown = server_text(&text, key);
        assert_eq!(shown, "where `token` = <key> or <key> and <key>!");
        assert_eq!(server_text("no secret here", key), "no secret here");

        let long = format!("é{}", "ß".repeat(600));
        let shown = server_text(&long, key);
        assert!(shown.len() <= MAX_MESSAGE_BYTES, "{}", shown.len());
        assert!(shown.ends_with('…'));
        let cut_key = format!("{}{key}", "x".repeat(495));
        assert!(
            !server_text(&cut_key, key).contains("AbCd"),
            "redacted before the cut"
        );
    }

    #[test]
    fn soft_errors_are_classified_by_message() {
        let kind = |m: &str| match soft_error("c", Some(m.to_string())) {
            ApiError::TooLarge { .. } => "large",
            ApiError::TypeNotAllowed { .. } => "type",
            ApiError::Refused { .. } => "refused",
            ApiError::Unauthorized { status: 200, .. } => "unauthorized",
            _ => "other",
        };
        assert_eq!(kind("File is too big. Max file upload is 2MB"), "large");
        assert_eq!(kind("The POST data is too large."), "large");
        assert_eq!(
            kind("The file type is not allowed. Please upload a valid file format."),
            "type"
        );
        assert_eq!(kind("Error when deleting selected item(s)"), "refused");
        assert_eq!(kind("This action is unauthorized."), "unauthorized");
        assert_eq!(kind("Unauthenticated."), "unauthorized");
        assert!(matches!(soft_error("c", None), ApiError::Refused { .. }));
    }
}
