//! TODO(api helper): the blocking reqwest implementation of [`super::Remote`].

/// Settings of the HTTP client.
#[derive(Clone, Debug)]
pub struct ClientConfig {}

/// The Cloudify HTTP client.
pub struct Client {}
