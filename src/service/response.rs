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
use crate::telemetry::{NoTelemetry, Telemetry};

pin_project! {
    /// The response of a [`BreakerService`](super::BreakerService): the inner call in flight,
    /// or the fallback's answer to a rejected request.
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<B, F, C, A, T = NoTelemetry>
    where
        B: Deref<Target = Breaker>,
        T: Telemetry,
    {
        #[pin]
        inner: Response<B, F, C, A, T>,
    }
}

impl<B: Deref<Target = Breaker>, F, C, A, T: Telemetry> ResponseFuture<B, F, C, A, T> {
    pub(crate) fn called(call: CallFuture<B, Deadline<F>, C, T>) -> Self {
        ResponseFuture {
            inner: Response::Called { call },
        }
    }

    pub(crate) fn fallback(answer: A) -> Self {
        ResponseFuture {
            inner: Response::Fallback { answer },
        }
    }
}

pin_project! {
    #[project = ResponseProj]
    enum Response<B, F, C, A, T>
    where
        B: Deref<Target = Breaker>,
        T: Telemetry,
    {
        // Let through: the inner service's future, holding the permit.
        Called {
            #[pin]
            call: CallFuture<B, Deadline<F>, C, T>,
        },
        // Rejected: the fallback's answer.
        Fallback {
            #[pin]
            answer: A,
        },
    }
}

impl<B, F, C, A, T, R, E> Future for ResponseFuture<B, F, C, A, T>
where
    B: Deref<Target = Breaker>,
    T: Telemetry,
    F: Future<Output = Result<R, E>>,
    C: Classify<R, E>,
    A: Future<Output = Result<R, Error<E>>>,
{
    type Output = Result<R, Error<E>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().inner.project() {
            ResponseProj::Called { call } => call.poll(cx),
            ResponseProj::Fallback { answer } => answer.poll(cx),
        }
    }
}
