//! cloudify-fs: a Cloudify media library as a local directory tree.
//!
//! The crate holds three parts that the two binaries share:
//! - [`api`]: the Cloudify REST client (blocking reqwest) and the tolerant data model;
//! - [`fs`] and [`fuse`]: the filesystem semantics and the thin FUSE adapter over them;
//! - [`server`]: `cloudify-server`, a local server that speaks the same API with the
//!   real product's quirks, used by the quick start and by every test.

pub mod api;
pub mod cli;
pub mod fs;
pub mod fuse;
pub mod server;
