//! TODO(mount helper): the FUSE adapter.
