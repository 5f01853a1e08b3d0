//! The FUSE adapter: converts kernel requests into calls of [`crate::fs`] and replies.
//!
//! TODO(fs helper): implement `fuser::Filesystem` and `mount`.

use std::io;
use std::sync::Arc;

use crate::api::Remote;
use crate::fs::{FsConfig, MountConfig};

/// A mounted filesystem, served by background threads until it is unmounted.
pub struct Mounted {}

impl Mounted {
    /// Blocks until the filesystem is unmounted from outside (`fusermount3 -u`).
    pub fn wait(self) {}

    /// Unmounts and waits for pending work (uploads) to finish.
    pub fn unmount(self) -> io::Result<()> {
        Ok(())
    }
}

/// Mounts the library served by `remote` at `mount.mountpoint`.
pub fn mount(fs: FsConfig, mount: MountConfig, remote: Arc<dyn Remote>) -> io::Result<Mounted> {
    let _ = (fs, mount, remote);
    Err(io::Error::other("not implemented yet"))
}
