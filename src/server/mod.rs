//! `cloudify-server`: a local server that speaks the Cloudify media API with the product's
//! quirks (see ../shared/cloudify-api.md), keeps metadata in SQLite and bytes in a blob
//! folder, and can misbehave on purpose for tests.
//!
//! Layout:
//! - [`config`]: the parsed configuration and the parsers of sizes, rates, keys;
//! - [`store`] (SQLite metadata), [`blobs`] (bytes on disk), [`names`] (name rules, slugs,
//!   suffixes), [`format`] (sizes as "1.000,00 KB", naive dates), [`sniff`] (content types);
//! - [`api`] (folder and file endpoints), [`upload`] (`POST /media/files`), [`storage`]
//!   (file bytes at `full_url`/`indirect_url`), [`control`] (`/_server/*` for tests);
//! - [`middleware`] (access log, counters, rate limit, faults, the `Accept` rule),
//!   [`faults`], [`stats`], [`conn`] (the listener whose connections faults can cut);
//! - [`import`]: loading a local tree at start through the upload path.

// Handlers return `Result<_, Response>` so that `?` answers early with the error response,
// the usual axum style; the large error type costs nothing measurable here.
#![allow(clippy::result_large_err)]

pub mod api;
pub mod blobs;
pub mod config;
pub mod conn;
pub mod control;
pub mod faults;
pub mod format;
pub mod import;
pub mod middleware;
pub mod names;
pub mod reply;
pub mod sniff;
pub mod stats;
pub mod storage;
pub mod store;
pub mod upload;

use std::io::Write;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::response::Response;
use axum::routing::{delete, get, patch, post};
use parking_lot::RwLock;

pub use config::ServerConfig;

use config::KeySpec;
use faults::{Faults, RateLimiter};
use stats::Stats;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot use data folder {path}: {source}")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the database: {0}")]
    Store(#[from] store::StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("import of {path} failed: {message}")]
    Import { path: String, message: String },
    #[error("server stopped: {0}")]
    Serve(std::io::Error),
}

/// Everything the handlers share.
pub struct AppState {
    pub cfg: ServerConfig,
    /// Origin of `full_url` and `indirect_url`, without a trailing "/".
    pub origin: String,
    pub store: store::Store,
    pub blobs: blobs::Blobs,
    /// Keys in use; `revoke_key` removes one at run time.
    pub keys: RwLock<Vec<KeySpec>>,
    pub stats: Stats,
    pub faults: Faults,
    pub rate: RateLimiter,
}

pub type Shared = Arc<AppState>;

impl AppState {
    /// Runs a store call on the blocking pool; a store failure becomes a 500 in the envelope.
    pub async fn db<T, F>(self: &Arc<Self>, f: F) -> Result<T, Response>
    where
        T: Send + 'static,
        F: FnOnce(&store::Store) -> Result<T, store::StoreError> + Send + 'static,
    {
        let state = self.clone();
        let joined = tokio::task::spawn_blocking(move || f(&state.store)).await;
        match joined {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                log::error!("{e}");
                Err(server_error(&e.to_string()))
            }
            Err(e) => {
                log::error!("store task failed: {e}");
                Err(server_error("Server Error"))
            }
        }
    }
}

fn server_error(message: &str) -> Response {
    reply::envelope_status(axum::http::StatusCode::INTERNAL_SERVER_ERROR, message)
}

/// The whole application: API under `/api/v1/media`, file bytes, and the test endpoints.
pub fn router(state: Shared) -> Router {
    let media = Router::new()
        .route("/folders", get(api::list_folders).post(api::create_folder))
        .route("/folders/deletes", post(api::bulk_delete_folders))
        .route(
            "/folders/{id}",
            get(api::get_folder).delete(api::delete_folder),
        )
        .route("/folders/{id}/trash", patch(api::trash_folder))
        .route("/files", get(api::list_files).post(upload::upload))
        .route("/files/deletes", post(api::bulk_delete_files))
        .route("/files/{id}", delete(api::delete_file))
        .route("/files/{id}/trash", patch(api::trash_file))
        .method_not_allowed_fallback(api::not_found)
        .fallback(api::not_found)
        .layer(DefaultBodyLimit::max(
            usize::try_from(state.cfg.max_body).unwrap_or(usize::MAX),
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::api_gate,
        ));
    Router::new()
        .nest("/api/v1/media", media)
        .route("/storage/{*path}", get(storage::by_url))
        .route("/media/files/{hash}/{id}", get(storage::indirect))
        .route("/_server/stats", get(control::stats))
        .route("/_server/stats/reset", post(control::reset_stats))
        .route("/_server/control", post(control::control))
        .fallback(api::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            middleware::access_log,
        ))
        .with_state(state)
}

/// Opens the data folder, imports if asked, binds, prints `listening on http://ADDR` on
/// standard output and serves until the process is stopped.
pub async fn run(cfg: ServerConfig) -> Result<(), ServerError> {
    let data_err = |source| ServerError::DataDir {
        path: cfg.data_dir.display().to_string(),
        source,
    };
    std::fs::create_dir_all(&cfg.data_dir).map_err(data_err)?;
    let store = store::Store::open(&cfg.data_dir.join("cloudify.sqlite3"))?;
    let blobs = blobs::Blobs::open(&cfg.data_dir).map_err(data_err)?;

    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .map_err(|source| ServerError::Listen {
            addr: cfg.listen.to_string(),
            source,
        })?;
    let local = listener.local_addr().map_err(ServerError::Serve)?;
    let origin = match &cfg.public_url {
        Some(u) => u.trim_end_matches('/').to_string(),
        None => format!("http://{local}"),
    };
    if cfg.keys.is_empty() {
        log::warn!("no API key configured: every API call will be refused");
    }
    let state = Arc::new(AppState {
        keys: RwLock::new(cfg.keys.clone()),
        faults: Faults::new(&cfg.faults),
        rate: RateLimiter::new(cfg.rate_limit),
        stats: Stats::default(),
        origin,
        store,
        blobs,
        cfg,
    });
    if let Some(tree) = state.cfg.import.clone() {
        import::import_tree(&state, &tree)
            .await
            .map_err(|message| ServerError::Import {
                path: tree.display().to_string(),
                message,
            })?;
    }

    log::info!(
        "cloudify-server on http://{local} (flavor {:?}, data {})",
        state.cfg.flavor,
        state.cfg.data_dir.display()
    );
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "listening on http://{local}");
    let _ = out.flush();
    drop(out);

    let app = router(state).into_make_service_with_connect_info::<conn::ConnMeta>();
    axum::serve(conn::KillableListener(listener), app)
        .await
        .map_err(ServerError::Serve)
}
