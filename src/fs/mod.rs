//! TODO(mount helper): filesystem semantics.
