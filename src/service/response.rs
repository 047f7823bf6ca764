//! The response future of a [`BreakerService`](super::BreakerService).

use std::future::Future;
use std::ops::Deref;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::breaker::Breaker;
use crate::classify::Classify;
use crate::error::Error;
use crate::future::{CallFuture, Deadline};

pin_project! {
    /// The response of a [`BreakerService`](super::BreakerService): the inner call in flight,
    /// or the fallback's answer to a rejected request.
    #[project = ResponseProj]
    #[allow(missing_docs)] // variant fields: pin-project-lite takes no attributes there
    #[must_use = "futures do nothing unless polled"]
    pub enum ResponseFuture<B, F, C, A>
    where
        B: Deref<Target = Breaker>,
    {
        /// Let through: the inner service's future, holding the permit.
        Called {
            #[pin]
            call: CallFuture<B, Deadline<F>, C>,
        },
        /// Rejected: the fallback's answer.
        Fallback {
            #[pin]
            answer: A,
        },
    }
}

impl<B, F, C, A, T, E> Future for ResponseFuture<B, F, C, A>
where
    B: Deref<Target = Breaker>,
    F: Future<Output = Result<T, E>>,
    C: Classify<T, E>,
    A: Future<Output = Result<T, Error<E>>>,
{
    type Output = Result<T, Error<E>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            ResponseProj::Called { call } => call.poll(cx),
            ResponseProj::Fallback { answer } => answer.poll(cx),
        }
    }
}
