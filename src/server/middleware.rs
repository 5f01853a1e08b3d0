//! What wraps the handlers: the access log (one line per request, written when its body is
//! done), and the API gate (counters, rate limit, latency and failure faults, and the rule
//! that a request not asking for JSON gets the redirect or HTML page Laravel gives).

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body::Frame;

use super::conn::ConnMeta;
use super::stats::Endpoint;
use super::{Shared, reply, upload};

/// Logs `access: METHOD PATH?QUERY STATUS BYTESB MSms` once the body is sent (or dropped).
pub async fn access_log(State(state): State<Shared>, req: Request, next: Next) -> Response {
    if !state.cfg.access_log {
        return next.run(req).await;
    }
    let start = Instant::now();
    let method = req.method().to_string();
    let target = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.uri().path().to_string(), |p| p.as_str().to_string());
    let response = next.run(req).await;
    let status = response.status().as_u16();
    let (parts, body) = response.into_parts();
    let logged = LoggedBody {
        inner: body,
        bytes: 0,
        line: Some((method, target, status, start)),
    };
    Response::from_parts(parts, Body::new(logged))
}

/// A response body that counts what passes through it and writes the access line at its end.
struct LoggedBody {
    inner: Body,
    bytes: u64,
    line: Option<(String, String, u16, Instant)>,
}

impl LoggedBody {
    fn write_line(&mut self) {
        if let Some((method, target, status, start)) = self.line.take() {
            let ms = start.elapsed().as_millis();
            log::info!("access: {method} {target} {status} {}B {ms}ms", self.bytes);
        }
    }
}

impl http_body::Body for LoggedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    self.bytes += data.len() as u64;
                }
            }
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => self.write_line(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        self.write_line();
    }
}

/// Laravel's `expectsJson()`: an `Accept` asking for JSON first, or an XHR that accepts
/// anything.
fn expects_json(headers: &HeaderMap) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let first = accept.split(',').next().unwrap_or("").trim();
    let wants_json = first.contains("/json") || first.contains("+json");
    let ajax = headers
        .get("x-requested-with")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("XMLHttpRequest"));
    let any = first.is_empty() || first.starts_with("*/*") || first == "*";
    wants_json || (ajax && any)
}

/// Counters, rate limit, faults, then the handler; the `Accept` rule on the way out.
pub async fn api_gate(
    State(state): State<Shared>,
    ConnectInfo(conn): ConnectInfo<ConnMeta>,
    req: Request,
    next: Next,
) -> Response {
    state
        .stats
        .api(Endpoint::classify(req.method(), req.uri().path()));
    let json = expects_json(req.headers());
    let back = req
        .headers()
        .get(header::REFERER)
        .and_then(|v| v.to_str().ok())
        .map_or_else(|| format!("{}/", state.origin), str::to_string);

    // PHP receives a whole request before Laravel runs, so even a request the throttle or a
    // fault refuses has its body read first: a client still sending an upload reads the
    // answer instead of a broken pipe that would leave it unsure whether the file was stored.
    let drain_limit = state.cfg.max_body.saturating_mul(4);
    let rate = state.rate.check(conn.peer.ip());
    let mut response = if rate.as_ref().is_some_and(|r| !r.allowed) {
        upload::drain(req.into_body(), drain_limit).await;
        reply::envelope_status(StatusCode::TOO_MANY_REQUESTS, "Too Many Attempts.")
    } else {
        state.faults.delay().await;
        match state.faults.roll_failure() {
            Some(status) => {
                upload::drain(req.into_body(), drain_limit).await;
                let msg = status.canonical_reason().unwrap_or("Server Error");
                reply::envelope_status(status, msg)
            }
            None => next.run(req).await,
        }
    };
    if let Some(r) = rate.filter(|r| r.allowed) {
        let h = response.headers_mut();
        h.insert("x-ratelimit-limit", HeaderValue::from(r.limit));
        h.insert("x-ratelimit-remaining", HeaderValue::from(r.remaining));
    }
    if json {
        response
    } else {
        as_web_page(response, &back)
    }
}

/// What a browser-style request gets: success and validation failures redirect back (302);
/// other errors become an HTML page with the same status.
fn as_web_page(response: Response, back: &str) -> Response {
    let status = response.status();
    if status == StatusCode::OK || status == StatusCode::UNPROCESSABLE_ENTITY {
        let location =
            HeaderValue::from_str(back).unwrap_or_else(|_| HeaderValue::from_static("/"));
        let page = format!(
            "<!DOCTYPE html>\n<html><head><meta http-equiv=\"refresh\" content=\"0;url='{back}'\" />\
             <title>Redirecting to {back}</title></head><body>Redirecting to {back}.</body></html>"
        );
        let mut r = (
            StatusCode::FOUND,
            [(header::CONTENT_TYPE, "text/html; charset=UTF-8")],
            page,
        )
            .into_response();
        r.headers_mut().insert(header::LOCATION, location);
        return r;
    }
    let reason = status.canonical_reason().unwrap_or("Error");
    let page = format!(
        "<!DOCTYPE html>\n<html><head><title>{reason}</title></head>\
         <body><h1>{} | {reason}</h1></body></html>",
        status.as_u16()
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=UTF-8")],
        page,
    )
        .into_response()
}
