//! What a [`BreakerService`](super::BreakerService) answers when the breaker rejects a request.

use std::future::{Future, Ready, ready};

use crate::error::{Error, Rejected};

/// Answers a request the breaker rejected: a static response, a stale cached value, a call to an
/// alternative service. Implemented for every `Fn(Rejected, Request) -> impl Future<Output =
/// Result<Response, Error<E>>>`; return `Err(Error::Rejected(rejected))` to pass the rejection on
/// (a cache miss, say).
pub trait Fallback<Req, Resp, E> {
    /// The answer in progress.
    type Future: Future<Output = Result<Resp, Error<E>>>;

    /// Answers `request`, which the breaker rejected with `rejected`.
    fn answer(&self, rejected: Rejected, request: Req) -> Self::Future;
}

/// No fallback: a rejected request gets [`Error::Rejected`].
#[derive(Clone, Copy, Debug, Default)]
pub struct NoFallback;

impl<Req, Resp, E> Fallback<Req, Resp, E> for NoFallback {
    type Future = Ready<Result<Resp, Error<E>>>;

    #[inline]
    fn answer(&self, rejected: Rejected, _request: Req) -> Self::Future {
        ready(Err(Error::Rejected(rejected)))
    }
}

impl<Req, Resp, E, F, Fut> Fallback<Req, Resp, E> for F
where
    F: Fn(Rejected, Req) -> Fut,
    Fut: Future<Output = Result<Resp, Error<E>>>,
{
    type Future = Fut;

    fn answer(&self, rejected: Rejected, request: Req) -> Fut {
        self(rejected, request)
    }
}
