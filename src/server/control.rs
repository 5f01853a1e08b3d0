//! Endpoints for tests, outside the API and never faulted: request counters
//! (`GET /_server/stats`, `POST /_server/stats/reset`) and, with `--test-control`, run-time
//! switches (`POST /_server/control`).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::Shared;

pub async fn stats(State(state): State<Shared>) -> Json<serde_json::Value> {
    Json(state.stats.to_json())
}

pub async fn reset_stats(State(state): State<Shared>) -> Json<serde_json::Value> {
    state.stats.reset();
    Json(json!({"ok": true}))
}

/// The switches of `POST /_server/control`; any subset may be sent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Control {
    /// Every upload fails with a storage error (HTTP 200, `error: true`).
    fail_uploads: Option<bool>,
    /// The next N uploads fail that way.
    fail_next_uploads: Option<u64>,
    /// The key stops being accepted.
    revoke_key: Option<String>,
    /// Share of API calls answered 500/503.
    fail_rate: Option<f64>,
    /// Delay before each API answer and download.
    latency_ms: Option<u64>,
}

pub async fn control(State(state): State<Shared>, body: Bytes) -> Response {
    if !state.cfg.test_control {
        let msg = "test control is off (start the server with --test-control)";
        return (StatusCode::NOT_FOUND, Json(json!({ "message": msg }))).into_response();
    }
    let c: Control = match serde_json::from_slice(&body) {
        Ok(c) => c,
        Err(e) => {
            let msg = format!("bad control request: {e}");
            return (StatusCode::BAD_REQUEST, Json(json!({ "message": msg }))).into_response();
        }
    };
    if let Some(on) = c.fail_uploads {
        state.faults.set_fail_uploads(on);
    }
    if let Some(n) = c.fail_next_uploads {
        state.faults.set_fail_next_uploads(n);
    }
    if let Some(key) = c.revoke_key {
        state
            .keys
            .write()
            .retain(|k| !k.token.eq_ignore_ascii_case(&key));
    }
    if let Some(p) = c.fail_rate {
        state.faults.set_fail_rate(p);
    }
    if let Some(ms) = c.latency_ms {
        state.faults.set_latency(ms);
    }
    log::info!("test control applied");
    Json(json!({"ok": true})).into_response()
}
