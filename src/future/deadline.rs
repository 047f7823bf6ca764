//! A future with an optional deadline on tokio's timer.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
#[cfg(feature = "tokio")]
use std::time::Duration;

use pin_project_lite::pin_project;

use super::finish::Timed;

pin_project! {
    /// A future with an optional deadline: without one it is the inner future as it is; with one
    /// ([`CallFuture::timeout`](super::CallFuture::timeout), feature `tokio`) it ends with
    /// [`Timed::Elapsed`] when the deadline passes first. Its shape is private, so enabling
    /// `tokio` changes nothing a caller can name.
    #[must_use = "futures do nothing unless polled"]
    pub struct Deadline<F> {
        #[pin]
        inner: Bound<F>,
    }
}

// Defined twice, with and without the tokio variant: pin-project-lite does not carry a `#[cfg]`
// on a variant over to the projection it generates.
#[cfg(feature = "tokio")]
pin_project! {
    #[project = DeadlineProj]
    enum Bound<F> {
        /// No deadline.
        Unbounded {
            #[pin]
            inner: F,
        },
        /// With a deadline, on tokio's timer.
        Bounded {
            #[pin]
            inner: tokio::time::Timeout<F>,
            after: Duration,
        },
    }
}

#[cfg(not(feature = "tokio"))]
pin_project! {
    #[project = DeadlineProj]
    enum Bound<F> {
        /// No deadline.
        Unbounded {
            #[pin]
            inner: F,
        },
    }
}

impl<F: Future> Deadline<F> {
    /// `inner`, with `timeout` as its deadline if given. With a deadline this must run inside a
    /// tokio runtime with its timer enabled (tokio's rule for `tokio::time::timeout`).
    #[cfg(feature = "tokio")]
    pub(crate) fn new(inner: F, timeout: Option<Duration>) -> Self {
        let inner = match timeout {
            None => Bound::Unbounded { inner },
            Some(after) => Bound::Bounded {
                inner: tokio::time::timeout(after, inner),
                after,
            },
        };
        Deadline { inner }
    }

    /// `inner` as it is.
    #[cfg(all(feature = "tower", not(feature = "tokio")))]
    pub(crate) fn unbounded(inner: F) -> Self {
        Deadline {
            inner: Bound::Unbounded { inner },
        }
    }
}

impl<F: Future> Future for Deadline<F> {
    type Output = Timed<F::Output>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().inner.project() {
            DeadlineProj::Unbounded { inner } => inner.poll(cx).map(Timed::Done),
            #[cfg(feature = "tokio")]
            DeadlineProj::Bounded { inner, after } => {
                let after = *after;
                inner.poll(cx).map(|r| match r {
                    Ok(output) => Timed::Done(output),
                    Err(_) => Timed::Elapsed(after),
                })
            }
        }
    }
}
