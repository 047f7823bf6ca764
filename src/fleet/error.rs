//! Why a fleet link could not be set up: [`FleetError`].

use super::*;

/// Why a fleet link could not be set up. Redis being unreachable is not one of them: the link
/// starts anyway and connects when Redis answers.
#[derive(Debug)]
#[non_exhaustive]
pub enum FleetError {
    /// The Redis URL does not parse (the Redis client's error, boxed so that its type is not
    /// part of this crate's API).
    Url(Box<dyn std::error::Error + Send + Sync>),
    /// The Redis client could not be set up on this runtime.
    Client(Box<dyn std::error::Error + Send + Sync>),
    /// The key prefix is empty or holds `{`, `}`, `|` or whitespace.
    Prefix(String),
    /// The instance name is not 1 to 55 of `A-Z a-z 0-9 _ . -`.
    InstanceId(String),
    /// [`Fleet::start`] was given a registry that another fleet link already serves, or one
    /// that this link's [`watch`](Fleet::watch) did not return: its transitions would reach
    /// the other link's publisher, or none.
    Registry(&'static str),
    /// [`Fleet::start`] was called outside a tokio runtime.
    NoRuntime,
    /// A `rediss://` URL without the `redis-tls` feature, certificates for a URL that is not
    /// `rediss://`, or certificates that do not parse.
    Tls(String),
    /// A signing key shorter than 32 bytes, an accepted key without a signing key, or a key
    /// missing from the environment.
    Key(String),
}

impl fmt::Display for FleetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FleetError::Url(e) => write!(f, "fleet: invalid Redis URL: {e}"),
            FleetError::Client(e) => write!(f, "fleet: the Redis client could not be set up: {e}"),
            FleetError::Prefix(p) => write!(
                f,
                "fleet: invalid key prefix {p:?}: expected a non-empty prefix without braces, `|` or whitespace"
            ),
            FleetError::InstanceId(id) => write!(
                f,
                "fleet: invalid instance name {id:?}: expected 1 to 55 of A-Z a-z 0-9 _ . -"
            ),
            FleetError::Registry(why) => write!(f, "fleet: {why}"),
            FleetError::NoRuntime => f.write_str("fleet: start() needs a tokio runtime"),
            FleetError::Key(why) => write!(f, "fleet: signing key: {why}"),
            FleetError::Tls(why) => write!(f, "fleet: TLS: {why}"),
        }
    }
}

impl std::error::Error for FleetError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FleetError::Url(e) | FleetError::Client(e) => Some(&**e),
            _ => None,
        }
    }
}
