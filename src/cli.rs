//! TODO(mount helper): the command line of cloudify-fs.
