//! Filesystem semantics over a [`crate::api::Remote`]: inodes, listings, names, reads and
//! (later) writes. No FUSE types below this module; `crate::fuse` adapts it to the kernel.

pub mod config;

pub use config::{DeleteMode, FsConfig, MountConfig};
