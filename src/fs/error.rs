//! Errors of the filesystem layer and their one mapping to an errno.
//!
//! Every operation of [`crate::fs`] returns [`FsError`]; the FUSE adapter logs it once and
//! answers [`FsError::errno`]. The mapping is an exhaustive match (no catch-all arm), so a new
//! variant cannot silently become EIO.

use std::sync::Arc;

use crate::api::ApiError;

/// What went wrong in a filesystem operation.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FsError {
    /// No entry of that name (or the object vanished on the server).
    #[error("no such file or directory")]
    NotFound,
    /// The kernel used an inode number the table no longer knows.
    #[error("unknown inode {0}")]
    StaleInode(u64),
    /// The kernel used a file handle that is not open.
    #[error("unknown file handle {0}")]
    BadHandle(u64),
    #[error("not a directory")]
    NotADirectory,
    #[error("is a directory")]
    IsADirectory,
    /// A change on a read-only mount (or one the mount does not support yet).
    #[error("read-only file system")]
    ReadOnly,
    /// The operation is not supported on this filesystem (symlinks, hard links, ...).
    #[error("operation not permitted")]
    NotPermitted,
    /// `lseek` beyond the end for data or a hole (ENXIO).
    #[error("no data or hole at that offset")]
    NoData,
    /// No such extended attribute.
    #[error("no such attribute")]
    NoAttribute,
    /// The server answered with an error (the chain says which request and why).
    #[error(transparent)]
    Remote(Arc<ApiError>),
    /// A download ended or broke before the expected bytes arrived, also after resuming.
    #[error("download of {what} failed at byte {offset}: {message}")]
    Download {
        what: String,
        offset: u64,
        message: String,
    },
    /// Written content did not reach the server; `message` says where the data is now.
    #[error("not stored: {cause}; {message}")]
    NotStored {
        message: String,
        cause: Arc<ApiError>,
    },
    /// A local file operation of the staging store failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: Arc<std::io::Error>,
    },
    /// The staging disk cannot take the bytes about to be written.
    #[error("staging folder {dir} has {free} bytes free, {needed} needed")]
    NoSpace { dir: String, needed: u64, free: u64 },
    #[error("directory not empty")]
    NotEmpty,
    /// A directory with content cannot be renamed (no rename API; `mv` copies instead).
    #[error("a directory with content cannot be renamed on Cloudify (EXDEV: mv copies it)")]
    CrossDevice,
    #[error("file exists")]
    Exists,
    /// A request the mount refuses before asking the server (the message names the rule).
    #[error("{0}")]
    Invalid(String),
    /// Not supported at all by this filesystem (extended attributes).
    #[error("not supported")]
    NotSupported,
    /// A file name whose extension the library does not accept (`--allowed-extensions`);
    /// the message names the rule.
    #[error("{0}")]
    ExtensionRefused(String),
}

impl From<ApiError> for FsError {
    fn from(e: ApiError) -> FsError {
        FsError::Remote(Arc::new(e))
    }
}

impl FsError {
    /// The errno a program gets for this error.
    pub fn errno(&self) -> i32 {
        match self {
            FsError::NotFound => libc::ENOENT,
            FsError::StaleInode(_) => libc::ESTALE,
            FsError::BadHandle(_) => libc::EBADF,
            FsError::NotADirectory => libc::ENOTDIR,
            FsError::IsADirectory => libc::EISDIR,
            FsError::ReadOnly => libc::EROFS,
            FsError::NotPermitted => libc::EPERM,
            FsError::NoData => libc::ENXIO,
            FsError::NoAttribute => libc::ENODATA,
            FsError::Remote(e) => api_errno(e),
            FsError::Download { .. } => libc::EIO,
            FsError::NotStored { cause, .. } => api_errno(cause),
            FsError::Io { source, .. } => source.raw_os_error().unwrap_or(libc::EIO),
            FsError::NoSpace { .. } => libc::ENOSPC,
            FsError::NotEmpty => libc::ENOTEMPTY,
            FsError::CrossDevice => libc::EXDEV,
            FsError::Exists => libc::EEXIST,
            FsError::Invalid(_) => libc::EINVAL,
            FsError::NotSupported => libc::ENOTSUP,
            FsError::ExtensionRefused(_) => libc::EPERM,
        }
    }
}

impl FsError {
    /// The server (or the mount, by the server's rule) refuses this content for good: its
    /// type or its size. Trying again cannot help, unlike after a network or server error.
    pub fn is_permanent_refusal(&self) -> bool {
        let refused = |e: &ApiError| {
            matches!(
                e,
                ApiError::TypeNotAllowed { .. } | ApiError::TooLarge { .. }
            )
        };
        match self {
            FsError::ExtensionRefused(_) => true,
            FsError::Remote(e) | FsError::NotStored { cause: e, .. } => refused(e),
            _ => false,
        }
    }
}

fn api_errno(e: &ApiError) -> i32 {
    match e {
        ApiError::NotFound { .. } => libc::ENOENT,
        ApiError::Unauthorized { .. } => libc::EACCES,
        ApiError::Invalid { .. } => libc::EINVAL,
        ApiError::TypeNotAllowed { .. } => libc::EPERM,
        ApiError::TooLarge { .. } => libc::EFBIG,
        ApiError::Local { source, .. } => source.raw_os_error().unwrap_or(libc::EIO),
        ApiError::Network { .. }
        | ApiError::Refused { .. }
        | ApiError::RateLimited { .. }
        | ApiError::Server { .. }
        | ApiError::Protocol { .. } => libc::EIO,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> String {
        "GET /media/folders".to_string()
    }

    #[test]
    fn api_errors_map_to_the_errno_programs_expect() {
        let m = String::new;
        let cases = [
            (
                ApiError::NotFound {
                    context: ctx(),
                    message: m(),
                },
                libc::ENOENT,
            ),
            (
                ApiError::Unauthorized {
                    context: ctx(),
                    status: 403,
                    message: m(),
                },
                libc::EACCES,
            ),
            (
                ApiError::Invalid {
                    context: ctx(),
                    message: m(),
                },
                libc::EINVAL,
            ),
            (
                ApiError::TypeNotAllowed {
                    context: ctx(),
                    message: m(),
                },
                libc::EPERM,
            ),
            (
                ApiError::TooLarge {
                    context: ctx(),
                    message: m(),
                },
                libc::EFBIG,
            ),
            (
                ApiError::Network {
                    context: ctx(),
                    message: m(),
                },
                libc::EIO,
            ),
            (ApiError::RateLimited { context: ctx() }, libc::EIO),
            (
                ApiError::Server {
                    context: ctx(),
                    status: 503,
                    message: m(),
                },
                libc::EIO,
            ),
            (
                ApiError::Protocol {
                    context: ctx(),
                    message: m(),
                },
                libc::EIO,
            ),
        ];
        for (e, errno) in cases {
            assert_eq!(FsError::from(e).errno(), errno);
        }
        assert_eq!(FsError::ReadOnly.errno(), libc::EROFS);
    }
}
