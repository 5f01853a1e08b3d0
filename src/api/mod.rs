//! The Cloudify client: what the filesystem asks of a Cloudify server, and the HTTP
//! implementation of it.
//!
//! The filesystem layer talks to the [`Remote`] trait only, so its tests can drive it with an
//! in-memory double and a failure-injecting wrapper; [`client::Client`] is the real thing,
//! built on blocking reqwest. The model in [`model`] is tolerant of everything the API page
//! (../shared/cloudify-api.md) says a server may send: ids as text or numbers, sizes as
//! localised text ("1.000,00 KB") or numbers, naive dates, envelope or bare data.

pub mod client;
pub mod model;
mod paging;
mod response;
pub mod retry;

use std::io::Read;
use std::path::Path;
use std::time::Duration;

pub use client::{Client, ClientConfig};
pub use model::{File, Folder, Id, Listing, SizeHint};

/// Everything that can go wrong talking to Cloudify, classified so that the filesystem can
/// pick the errno a program expects. Each variant carries the server's message (never the
/// key) so that the one log line at the FUSE edge says what happened.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The server could not be reached, the connection broke, or a request timed out,
    /// after the configured retries.
    #[error("{context}: network error: {message}")]
    Network { context: String, message: String },
    /// 401 or 403: the key is unknown, revoked or lacks the ability for this call.
    #[error("{context}: key refused (HTTP {status}): {message}")]
    Unauthorized {
        context: String,
        status: u16,
        message: String,
    },
    /// 404: the object (or route) does not exist.
    #[error("{context}: not found: {message}")]
    NotFound { context: String, message: String },
    /// 422: the server's validation refused the request (for example a folder name with a
    /// dot). `message` is Laravel's summary line.
    #[error("{context}: refused by validation: {message}")]
    Invalid { context: String, message: String },
    /// An upload refused because of its type or extension (HTTP 200 with `error: true`).
    #[error("{context}: file type not allowed: {message}")]
    TypeNotAllowed { context: String, message: String },
    /// An upload refused for its size (413, or HTTP 200 with "File is too big").
    #[error("{context}: too large: {message}")]
    TooLarge { context: String, message: String },
    /// Any other HTTP 200 with `error: true` (for example trashing a missing file).
    #[error("{context}: server refused: {message}")]
    Refused { context: String, message: String },
    /// 429 that did not clear within the retries (without `Retry-After`: within a minute).
    #[error("{context}: rate limited by the server")]
    RateLimited { context: String },
    /// 5xx after the configured retries.
    #[error("{context}: server error (HTTP {status}): {message}")]
    Server {
        context: String,
        status: u16,
        message: String,
    },
    /// Something that is not the Cloudify API answered: a redirect (the `Accept` header was
    /// lost or this is not the API base), HTML, JSON of an unexpected shape.
    #[error("{context}: unexpected response: {message}")]
    Protocol { context: String, message: String },
    /// A local file to upload could not be read.
    #[error("{context}: {source}")]
    Local {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl ApiError {
    /// Whether the failure may pass by itself (network, server error, rate limit), as
    /// opposed to an answer that will be the same next time.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ApiError::Network { .. } | ApiError::Server { .. } | ApiError::RateLimited { .. }
        )
    }

    /// What the failed call was, e.g. `GET /media/folders?folder_id=X`.
    pub fn context(&self) -> &str {
        match self {
            ApiError::Network { context, .. }
            | ApiError::Unauthorized { context, .. }
            | ApiError::NotFound { context, .. }
            | ApiError::Invalid { context, .. }
            | ApiError::TypeNotAllowed { context, .. }
            | ApiError::TooLarge { context, .. }
            | ApiError::Refused { context, .. }
            | ApiError::RateLimited { context }
            | ApiError::Server { context, .. }
            | ApiError::Protocol { context, .. }
            | ApiError::Local { context, .. } => context,
        }
    }
}

/// An open download of a file's bytes.
pub struct Download {
    /// Offset of the first byte `body` yields. Equals the requested offset when the server
    /// honoured the Range header; 0 when it ignored it and sent the whole file (the caller
    /// then skips ahead).
    pub start: u64,
    /// The whole file's length when the server said so (Content-Range or Content-Length of
    /// a full response).
    pub total_len: Option<u64>,
    /// The response body. Reads fail with an `io::Error` when the connection breaks or
    /// stalls past the client's timeout.
    pub body: Box<dyn Read + Send>,
}

/// An upload whose content is sent while it is being written ([`Remote::start_upload`]).
/// Dropped before [`UploadStream::finish`], the request is cut off before its body is whole,
/// so the server stores nothing.
pub trait UploadStream: Send {
    /// Appends `data` to the file's content. Waits while the bytes not sent yet fill the
    /// upload's buffer (a few MiB), so a writer goes at the pace of the network, but at most
    /// the client's timeout; an error means this upload is lost (drop it).
    fn send(&mut self, data: bytes::Bytes) -> Result<(), ApiError>;

    /// Ends the content and waits for the server's answer: the stored file, which may carry
    /// another name ("-1" suffix) than asked for.
    fn finish(self: Box<Self>) -> Result<File, ApiError>;
}

/// The Cloudify operations the filesystem uses. Implementations must be safe to call from
/// several FUSE worker threads at once; every method blocks until the server answered (with
/// retries inside) and never holds a lock of the caller.
pub trait Remote: Send + Sync {
    /// Lists a folder's direct subfolders and live files, all pages. `Id::root()` lists the
    /// root (which, on Cloudify, also shows files whose folder is trashed or missing).
    fn list_folder(&self, folder: &Id) -> Result<Listing, ApiError>;

    /// `GET /media/folders/{id}`: whether a folder exists (and its metadata).
    fn get_folder(&self, id: &Id) -> Result<Folder, ApiError>;

    /// Creates a folder; the returned name may carry a "-N" suffix chosen by the server.
    fn create_folder(&self, parent: &Id, name: &str) -> Result<Folder, ApiError>;

    /// Moves a folder and everything below it to Cloudify's trash (names stay reserved).
    fn trash_folder(&self, id: &Id) -> Result<(), ApiError>;

    /// Deletes a folder and everything below it permanently.
    fn delete_folder(&self, id: &Id) -> Result<(), ApiError>;

    /// Uploads the local file at `path` into `folder` under the file name `name`, streaming
    /// it. The returned file may carry another name ("-1" suffix) than asked for.
    fn upload_file(&self, folder: &Id, name: &str, path: &Path) -> Result<File, ApiError>;

    /// Starts an upload into `folder` under the file name `name` whose content is sent as
    /// it comes ([`UploadStream`]); `None` when this remote does not upload so (the caller
    /// then uploads the whole content with [`Remote::upload_file`]). Not retried: a failed
    /// streamed upload is for the caller to send again from its own copy.
    fn start_upload(&self, folder: &Id, name: &str) -> Option<Box<dyn UploadStream>> {
        let _ = (folder, name);
        None
    }

    /// Moves a file to Cloudify's trash (its name stays reserved).
    fn trash_file(&self, id: &Id) -> Result<(), ApiError>;

    /// Deletes a file permanently.
    fn delete_file(&self, id: &Id) -> Result<(), ApiError>;

    /// The exact length of a file's content (HEAD of its content URL), `None` when the
    /// storage did not say.
    fn content_length(&self, file: &File) -> Result<Option<u64>, ApiError>;

    /// Starts a download of a file's content at `offset`, up to `end` (exclusive) or to the
    /// end of the file. The key is never sent with it.
    fn download(&self, file: &File, offset: u64, end: Option<u64>) -> Result<Download, ApiError>;

    /// The per-request timeout, so callers can bound their own waits by it.
    fn timeout(&self) -> Duration;
}
