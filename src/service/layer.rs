//! [`BreakerLayer`] and the service it makes.

use std::ops::Deref;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tower_layer::Layer;
use tower_service::Service;

use super::fallback::{Fallback, NoFallback};
use super::response::ResponseFuture;
use crate::breaker::Breaker;
use crate::classify::{Classify, Errors};
use crate::error::Error;
use crate::future::{CallFuture, Deadline, TicketGuard};
use crate::telemetry::{NoTelemetry, Telemetry, admit};

/// A tower [`Layer`] that puts a breaker in front of a service.
///
/// Every service it makes shares the one breaker `B` (an `Arc<Breaker>` by default; any
/// `Clone + Deref<Target = Breaker>` works, a `&'static Breaker` too, which saves the reference
/// count's increment per call).
///
/// # Examples
/// ```
/// use std::{sync::Arc, time::Duration};
/// use hotbreaker::{Breaker, Outcome, service::BreakerLayer};
///
/// let breaker = Arc::new(Breaker::builder().consecutive_failures(5).build().unwrap());
/// let layer = BreakerLayer::new(breaker)
///     // Which results count against the dependency.
///     .classify(|r: &Result<u16, std::io::Error>| match r {
///         Ok(status) if *status >= 500 => Outcome::Failure,
///         Ok(_) => Outcome::Success,
///         Err(_) => Outcome::Failure,
///     });
/// # let _ = layer;
/// ```
#[derive(Clone, Debug)]
pub struct BreakerLayer<B = Arc<Breaker>, C = Errors, A = NoFallback, T = NoTelemetry> {
    breaker: B,
    classify: C,
    fallback: A,
    timeout: Option<Duration>,
    telemetry: T,
}

impl<B> BreakerLayer<B>
where
    B: Clone + Deref<Target = Breaker>,
{
    /// A layer around `breaker`, with the default classifier (`Err` is a Failure), no fallback
    /// and no deadline.
    pub fn new(breaker: B) -> Self {
        BreakerLayer {
            breaker,
            classify: Errors,
            fallback: NoFallback,
            timeout: None,
            telemetry: NoTelemetry,
        }
    }
}

impl<B, C, A, T> BreakerLayer<B, C, A, T> {
    /// Classifies each completed call (see [`Classify`]; a closure over
    /// `&Result<Response, Error>` will do, or the `http` feature's
    /// [`HttpClassifier`](crate::http::HttpClassifier)).
    pub fn classify<C2>(self, classify: C2) -> BreakerLayer<B, C2, A, T> {
        BreakerLayer {
            breaker: self.breaker,
            classify,
            fallback: self.fallback,
            timeout: self.timeout,
            telemetry: self.telemetry,
        }
    }

    /// Answers rejected requests with `fallback` instead of [`Error::Rejected`].
    pub fn fallback<A2>(self, fallback: A2) -> BreakerLayer<B, C, A2, T> {
        BreakerLayer {
            breaker: self.breaker,
            classify: self.classify,
            fallback,
            timeout: self.timeout,
            telemetry: self.telemetry,
        }
    }

    /// Per-call [telemetry](crate::telemetry) (features `tracing`, `metrics`): a span per call
    /// with the breaker's name, the state at admission, the outcome, rejected or throttled,
    /// slow; with `metrics` a duration histogram and a timeouts counter. Off by default, and
    /// free while off.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(feature = "tracing")] {
    /// use std::sync::Arc;
    /// use hotbreaker::{Breaker, service::BreakerLayer, telemetry::CallTelemetry};
    ///
    /// let breaker = Arc::new(Breaker::builder().build().unwrap());
    /// let layer = BreakerLayer::new(breaker).telemetry(CallTelemetry::new("inventory"));
    /// # let _ = layer;
    /// # }
    /// ```
    pub fn telemetry<T2: Telemetry + Clone>(self, telemetry: T2) -> BreakerLayer<B, C, A, T2> {
        BreakerLayer {
            breaker: self.breaker,
            classify: self.classify,
            fallback: self.fallback,
            timeout: self.timeout,
            telemetry,
        }
    }

    /// Gives each call a deadline: a call still running `timeout` after it started is dropped,
    /// recorded as the classifier's [`timed_out`](Classify::timed_out) (a Failure by default)
    /// and answered with [`Error::Timeout`]. Needs a tokio runtime with its timer.
    #[cfg(feature = "tokio")]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }
}

impl<S, B, C, A, T> Layer<S> for BreakerLayer<B, C, A, T>
where
    B: Clone,
    C: Clone,
    A: Clone,
    T: Clone,
{
    type Service = BreakerService<S, B, C, A, T>;

    fn layer(&self, inner: S) -> Self::Service {
        BreakerService {
            inner,
            breaker: self.breaker.clone(),
            classify: self.classify.clone(),
            fallback: self.fallback.clone(),
            timeout: self.timeout,
            telemetry: self.telemetry.clone(),
        }
    }
}

/// A service behind a breaker; made by [`BreakerLayer`]. Clones share the breaker.
#[derive(Clone, Debug)]
pub struct BreakerService<S, B = Arc<Breaker>, C = Errors, A = NoFallback, T = NoTelemetry> {
    inner: S,
    breaker: B,
    classify: C,
    fallback: A,
    timeout: Option<Duration>,
    telemetry: T,
}

impl<S, B, C, A, T> BreakerService<S, B, C, A, T> {
    /// The breaker.
    pub fn breaker(&self) -> &B {
        &self.breaker
    }
}

impl<S, B, C, A, T, Req> Service<Req> for BreakerService<S, B, C, A, T>
where
    S: Service<Req>,
    B: Clone + Deref<Target = Breaker>,
    C: Classify<S::Response, S::Error> + Clone,
    A: Fallback<Req, S::Response, S::Error>,
    T: Telemetry + Clone,
{
    type Response = S::Response;
    type Error = Error<S::Error>;
    type Future = ResponseFuture<B, S::Future, C, A::Future, T>;

    /// Ready when the inner service is: tower lets `call` run only after `poll_ready`, and a
    /// call the breaker lets through goes straight to the inner service. The breaker is asked in
    /// `call`, so a rejection costs no inner capacity, but while Open a caller still waits for
    /// the inner service to be ready first. Clients whose readiness does not wait on the
    /// dependency (a connection pool, `reqwest::Client`, a tonic `Channel` with its buffer) are
    /// ready at once and rejections stay immediate; in front of one whose readiness does, add a
    /// readiness timeout or load shedding of your own.
    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(Error::Inner)
    }

    #[inline]
    fn call(&mut self, request: Req) -> Self::Future {
        match self.breaker.acquire() {
            Ok(ticket) => {
                let call = admit(&self.telemetry, &self.breaker, ticket);
                let entered = T::enter(&call);
                // A panic in the inner service's `call` is a Failure (and unwinds on).
                let guard = TicketGuard {
                    breaker: &self.breaker,
                    ticket: Some(ticket),
                    telemetry: &self.telemetry,
                    call: &call,
                };
                let inner = deadline(self.inner.call(request), self.timeout);
                // Before the guard lets go: a panic here (a classifier's `Clone`, a deadline
                // outside a tokio runtime) is a Failure too, and the permit is not lost.
                let (breaker, classify) = (self.breaker.clone(), self.classify.clone());
                let telemetry = self.telemetry.clone();
                let ticket = guard.disarm();
                drop(entered);
                ResponseFuture::called(CallFuture::acquired(
                    breaker, ticket, classify, inner, telemetry, call,
                ))
            }
            Err(rejected) => {
                self.telemetry.rejected(&self.breaker, &rejected);
                ResponseFuture::fallback(self.fallback.answer(rejected, request))
            }
        }
    }
}

#[cfg(feature = "tokio")]
#[inline]
fn deadline<F: std::future::Future>(inner: F, timeout: Option<Duration>) -> Deadline<F> {
    Deadline::new(inner, timeout)
}

#[cfg(not(feature = "tokio"))]
#[inline]
fn deadline<F: std::future::Future>(inner: F, _timeout: Option<Duration>) -> Deadline<F> {
    Deadline::unbounded(inner)
}
