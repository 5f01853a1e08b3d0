//! The response shapes of the API, each exactly as the product sends it: Botble's envelope
//! (`{error, data, message}`, also for the "soft" errors that keep HTTP 200), Laravel's
//! validation body (`{message, errors}`), and Laravel's bare `{message}` for 403, 404, 413.

use axum::Json;
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Success: HTTP 200, `error: false`.
pub fn ok(data: Value, message: Option<&str>) -> Response {
    Json(json!({"error": false, "data": data, "message": message})).into_response()
}

/// Success with `data` serialised straight from `T` (no intermediate JSON tree).
pub fn ok_ser<T: serde::Serialize>(data: &T, message: Option<&str>) -> Response {
    #[derive(serde::Serialize)]
    struct Envelope<'a, T> {
        error: bool,
        data: &'a T,
        message: Option<&'a str>,
    }
    let envelope = Envelope {
        error: false,
        data,
        message,
    };
    match serde_json::to_vec(&envelope) {
        Ok(body) => ([(CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => envelope_status(StatusCode::INTERNAL_SERVER_ERROR, &e.to_string()),
    }
}

/// A failure the product reports inside a 200 answer (upload refused, file trash failed).
pub fn soft_error(message: &str) -> Response {
    Json(json!({"error": true, "data": null, "message": message})).into_response()
}

/// The envelope with an error status (429, 500, 503).
pub fn envelope_status(status: StatusCode, message: &str) -> Response {
    let body = json!({"error": true, "data": null, "message": message});
    (status, Json(body)).into_response()
}

/// Laravel's bare `{message}` body with `status`.
pub fn message_status(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({ "message": message }))).into_response()
}

/// 404 for a missing model, worded as Laravel words it.
pub fn model_not_found(model: &str, id: &str) -> Response {
    let msg = format!("No query results for model [Botble\\Media\\Models\\{model}] {id}");
    message_status(StatusCode::NOT_FOUND, &msg)
}

/// 404 for a path or method the API does not route.
pub fn route_not_found(path: &str) -> Response {
    let msg = format!(
        "The route {} could not be found.",
        path.trim_start_matches('/')
    );
    message_status(StatusCode::NOT_FOUND, &msg)
}

/// 413 when the request body is over the hard cap (PHP's `post_max_size`).
pub fn too_large() -> Response {
    message_status(StatusCode::PAYLOAD_TOO_LARGE, "The POST data is too large.")
}

/// The failures that a form request collects, field by field, before the controller runs.
#[derive(Debug, Default)]
pub struct Validation {
    errors: Vec<(String, String)>,
}

impl Validation {
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push((field.into(), message.into()));
    }

    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// `Ok` when nothing failed, else the 422 answer.
    pub fn finish(self) -> Result<(), Response> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(self.into_response())
        }
    }
}

impl IntoResponse for Validation {
    /// 422 `{"message": "<first>[ (and N more error(s))]", "errors": {field: [..]}}`.
    fn into_response(self) -> Response {
        let mut message = self.errors.first().map(|e| e.1.clone()).unwrap_or_default();
        match self.errors.len() {
            0 | 1 => {}
            2 => message.push_str(" (and 1 more error)"),
            n => message.push_str(&format!(" (and {} more errors)", n - 1)),
        }
        let mut errors = serde_json::Map::new();
        for (field, msg) in self.errors {
            let entry = errors
                .entry(field)
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(list) = entry {
                list.push(Value::String(msg));
            }
        }
        let body = json!({"message": message, "errors": errors});
        (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response()
    }
}
