//! Futures (feature `future`): a call whose permit lives inside the future that makes it.
//!
//! [`Breaker::call_future`] (or [`Breaker::call_owned`] for a `'static` future) gives a
//! [`CallFuture`]: it asks for a permit when first polled, polls the protected future, classifies
//! its result and records the outcome, without a `Box` or a lock. Dropping it before it completes
//! (a cancelled request, a `select!` that went the other way, an aborted task) records nothing
//! and gives a half-open probe slot back. A panic in the protected future or in the classifier is
//! recorded as a Failure and resumed. Adapters set the rest before the first poll:
//! [`classify`](CallFuture::classify), [`timeout`](CallFuture::timeout) (feature `tokio`) and
//! [`telemetry`](CallFuture::telemetry).
//!
//! ```
//! # #[cfg(feature = "tokio")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use std::{sync::Arc, time::Duration};
//! use hotbreaker::{Breaker, Error, Outcome};
//!
//! let breaker = Arc::new(Breaker::builder().build().unwrap());
//! // A 404 is the caller's mistake, not the dependency's: not counted.
//! let not_found_is_fine = |r: &Result<u32, u16>| match r {
//!     Ok(_) => Outcome::Success,
//!     Err(404) => Outcome::Ignored,
//!     Err(_) => Outcome::Failure,
//! };
//! let call = breaker
//!     .call_owned(async { Err::<u32, u16>(404) })
//!     .classify(not_found_is_fine)
//!     .timeout(Duration::from_millis(500));
//! // 'static: it can be spawned.
//! assert!(matches!(tokio::spawn(call).await.unwrap(), Err(Error::Inner(404))));
//! assert_eq!(breaker.metrics().ignored, 1);
//! # }
//! # #[cfg(not(feature = "tokio"))]
//! # fn main() {}
//! ```
//!
//! Holding a permit across `.await` in your own code works the same way with an
//! [`OwnedPermit`](crate::OwnedPermit) from [`Breaker::try_acquire_owned`].

mod call;
mod deadline;
mod finish;
#[cfg(feature = "tower")]
mod ticket_guard;

pub use call::CallFuture;
pub use deadline::Deadline;
pub use finish::{Finish, Timed};
#[cfg(feature = "tower")]
pub(crate) use ticket_guard::TicketGuard;

use std::future::Future;
use std::sync::Arc;

use crate::breaker::Breaker;

impl Breaker {
    /// Makes the call `fut` through the breaker: the permit is asked for when the returned future
    /// is first polled, `Ok` is recorded as a Success and `Err` as a Failure (change that with
    /// [`CallFuture::classify`]; add a deadline with [`CallFuture::timeout`]). Dropping the future
    /// before it completes records nothing (see [`future`](crate::future)).
    ///
    /// # Errors
    /// [`Error::Rejected`](crate::Error::Rejected) if the breaker did not let the call through,
    /// [`Error::Inner`](crate::Error::Inner) with `fut`'s error.
    ///
    /// # Examples
    /// ```
    /// use hotbreaker::Breaker;
    ///
    /// # async fn run() {
    /// let breaker = Breaker::builder().build().unwrap();
    /// let answer = breaker.call_future(async { Ok::<_, std::io::Error>(42) }).await;
    /// assert_eq!(answer.unwrap(), 42);
    /// # }
    /// ```
    pub fn call_future<F, T, E>(&self, fut: F) -> CallFuture<&Breaker, F>
    where
        F: Future<Output = Result<T, E>>,
    {
        CallFuture::new(self, fut)
    }

    /// As [`call_future`](Breaker::call_future), holding the breaker by `Arc`: the returned
    /// future is `'static` when `fut` (and the classifier, if one is set) are, so it can be
    /// spawned or kept in a struct, and its type can be written out. No allocation: the `Arc` is
    /// cloned, not boxed.
    ///
    /// # Errors
    /// As [`call_future`](Breaker::call_future).
    ///
    /// # Examples
    /// ```
    /// use std::sync::Arc;
    /// use hotbreaker::Breaker;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let breaker = Arc::new(Breaker::builder().build().unwrap());
    /// let call = breaker.call_owned(async { Ok::<_, std::io::Error>(42) });
    /// assert_eq!(tokio::spawn(call).await.unwrap().unwrap(), 42);
    /// # }
    /// ```
    pub fn call_owned<F, T, E>(self: &Arc<Self>, fut: F) -> CallFuture<Arc<Breaker>, F>
    where
        F: Future<Output = Result<T, E>>,
    {
        CallFuture::new(Arc::clone(self), fut)
    }
}
