//! TODO(server helper): cloudify-server.
