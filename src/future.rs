//! Futures (feature `future`): a call whose permit lives inside the future that makes it.
//!
//! [`CallFuture`] asks for a permit when first polled, polls the protected future, classifies
//! its result and records the outcome, all without a `Box` or a lock. Dropping it before it
//! completes (a cancelled request, a `select!` that went the other way, an aborted task) records
//! nothing and gives a half-open probe slot back, so cancellation never wedges the
//! breaker. A panic while polling the protected future, or inside the classifier, is recorded as
//! a Failure and resumed.
//!
//! Holding a permit across `.await` in your own code works the same way with an
//! [`OwnedPermit`](crate::OwnedPermit):
//!
//! ```
//! use std::sync::Arc;
//! use hotbreaker::{Breaker, Error};
//!
//! async fn fetch(breaker: Arc<Breaker>) -> Result<String, Error<std::io::Error>> {
//!     let permit = breaker.try_acquire_owned().map_err(Error::Rejected)?;
//!     // If this task is cancelled at an .await below, `permit` is dropped: nothing is recorded
//!     // and a half-open slot goes back.
//!     let body = async { Ok::<_, std::io::Error>("hello".to_string()) }.await;
//!     match &body {
//!         Ok(_) => permit.success(),
//!         Err(_) => permit.failure(),
//!     }
//!     body.map_err(Error::Inner)
//! }
//! # let breaker = Arc::new(Breaker::builder().build().unwrap());
//! # let mut fut = std::pin::pin!(fetch(breaker.clone()));
//! # let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
//! # assert!(fut.as_mut().poll(&mut cx).is_ready());
//! # assert_eq!(breaker.metrics().successes, 1);
//! ```

use std::future::Future;
use std::ops::Deref;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use pin_project_lite::pin_project;

use crate::breaker::Breaker;
use crate::classify::{Classify, Errors};
use crate::error::Error;
use crate::outcome::Outcome;
use crate::telemetry::{CallEnd, NoTelemetry, Telemetry, end_quietly, judged_slow};
use crate::ticket::Ticket;

const POLLED_AFTER_DONE: &str = "CallFuture polled after it completed";

pin_project! {
    /// A protected call in flight; see the [module documentation](self).
    ///
    /// `B` is how the future reaches its breaker: `&Breaker` from
    /// [`Breaker::call_future`], or an `Arc<Breaker>` for a `'static` future (from
    /// [`Breaker::call_owned`], [`Breaker::call_owned_timeout`] or [`CallFuture::new`]).
    #[must_use = "futures do nothing unless polled"]
    pub struct CallFuture<B, F, C, T = NoTelemetry>
    where
        B: Deref<Target = Breaker>,
        T: Telemetry,
    {
        breaker: B,
        telemetry: T,
        // The call's telemetry from admission on.
        call: T::Call,
        // Some while this future holds a permit.
        ticket: Option<Ticket>,
        // Some until the future completes.
        classify: Option<C>,
        started: bool,
        #[pin]
        inner: F,
    }

    impl<B, F, C, T> PinnedDrop for CallFuture<B, F, C, T>
    where
        B: Deref<Target = Breaker>,
        T: Telemetry,
    {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            // Dropped before completing: cancelled. Record nothing, give the slot back.
            if let Some(ticket) = this.ticket.take() {
                this.breaker.release_ticket(ticket);
                // After the breaker: whatever the telemetry does, the slot is back.
                end_quietly(&*this.telemetry, this.breaker, this.call, CallEnd::Cancelled);
            }
        }
    }
}

impl<B, F, C> CallFuture<B, F, C>
where
    B: Deref<Target = Breaker>,
{
    /// A call of `inner` through `breaker`, classified by `classify`. The permit is asked for
    /// when the future is first polled.
    ///
    /// # Examples
    /// ```
    /// use std::sync::Arc;
    /// use hotbreaker::{Breaker, classify::Errors, future::CallFuture};
    ///
    /// let breaker = Arc::new(Breaker::builder().build().unwrap());
    /// // 'static: can be spawned on a runtime.
    /// let call = CallFuture::new(breaker.clone(), Errors, async { Ok::<u8, ()>(7) });
    /// # let mut call = std::pin::pin!(call);
    /// # let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// # assert_eq!(call.as_mut().poll(&mut cx), std::task::Poll::Ready(Ok(7)));
    /// ```
    pub fn new(breaker: B, classify: C, inner: F) -> Self {
        CallFuture {
            breaker,
            telemetry: NoTelemetry,
            call: (),
            ticket: None,
            classify: Some(classify),
            started: false,
            inner,
        }
    }
}

impl<B, F, C, T> CallFuture<B, F, C, T>
where
    B: Deref<Target = Breaker>,
    T: Telemetry,
{
    /// A call of `inner` through `breaker`, classified by `classify`, with per-call
    /// [telemetry](crate::telemetry): a span, and with `metrics` a duration histogram. Pass a
    /// `&CallTelemetry` to avoid a clone per call.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(feature = "tracing")] {
    /// use hotbreaker::{Breaker, classify::Errors, future::CallFuture, telemetry::CallTelemetry};
    ///
    /// let breaker = Breaker::builder().build().unwrap();
    /// let telemetry = CallTelemetry::new("inventory");
    /// let call = CallFuture::with_telemetry(&breaker, Errors, async { Ok::<u8, ()>(7) }, &telemetry);
    /// # let mut call = std::pin::pin!(call);
    /// # let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// # assert_eq!(call.as_mut().poll(&mut cx), std::task::Poll::Ready(Ok(7)));
    /// # }
    /// ```
    pub fn with_telemetry(breaker: B, classify: C, inner: F, telemetry: T) -> Self {
        CallFuture {
            breaker,
            telemetry,
            call: T::Call::default(),
            ticket: None,
            classify: Some(classify),
            started: false,
            inner,
        }
    }

    /// A call that already holds `ticket` (the tower service acquires in `call`), with its
    /// telemetry already started.
    #[cfg(feature = "tower")]
    pub(crate) fn acquired(
        breaker: B,
        ticket: Ticket,
        classify: C,
        inner: F,
        telemetry: T,
        call: T::Call,
    ) -> Self {
        CallFuture {
            breaker,
            telemetry,
            call,
            ticket: Some(ticket),
            classify: Some(classify),
            started: true,
            inner,
        }
    }
}

mod sealed {
    /// Keeps [`Finish`](super::Finish) to the crate's own output types.
    pub trait Sealed {}
}

/// What a finished inner future gives: a result, or "ran past its deadline". Implemented for
/// `Result<T, E>` and [`Timed`]; sealed.
pub trait Finish: sealed::Sealed {
    /// The call's value.
    type Ok;
    /// The call's error.
    type Err;
    /// The outcome to record, and the caller's result.
    fn finish<C: Classify<Self::Ok, Self::Err>>(
        self,
        classify: &C,
    ) -> (Outcome, Result<Self::Ok, Error<Self::Err>>);
}

impl<T, E> sealed::Sealed for Result<T, E> {}

impl<T, E> Finish for Result<T, E> {
    type Ok = T;
    type Err = E;
    #[inline]
    fn finish<C: Classify<T, E>>(self, classify: &C) -> (Outcome, Result<T, Error<E>>) {
        (classify.classify(&self), self.map_err(Error::Inner))
    }
}

/// The output of a [`Deadline`] future.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timed<O> {
    /// The inner future finished in time with this output.
    Done(O),
    /// The deadline, this long after the start, passed first.
    Elapsed(Duration),
}

impl<T, E> sealed::Sealed for Timed<Result<T, E>> {}

impl<T, E> Finish for Timed<Result<T, E>> {
    type Ok = T;
    type Err = E;
    #[inline]
    fn finish<C: Classify<T, E>>(self, classify: &C) -> (Outcome, Result<T, Error<E>>) {
        match self {
            Timed::Done(result) => result.finish(classify),
            Timed::Elapsed(after) => (classify.timed_out(), Err(Error::Timeout(after))),
        }
    }
}

impl<B, F, C, T> Future for CallFuture<B, F, C, T>
where
    B: Deref<Target = Breaker>,
    T: Telemetry,
    F: Future,
    F::Output: Finish,
    C: Classify<<F::Output as Finish>::Ok, <F::Output as Finish>::Err>,
{
    type Output = Result<<F::Output as Finish>::Ok, Error<<F::Output as Finish>::Err>>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if !*this.started {
            *this.started = true;
            match this.breaker.acquire() {
                Ok(ticket) => {
                    *this.ticket = Some(ticket);
                    if T::ON {
                        *this.call = this.telemetry.admitted(this.breaker, ticket.state());
                    }
                }
                Err(rejected) => {
                    this.classify.take().expect(POLLED_AFTER_DONE);
                    this.telemetry.rejected(this.breaker, &rejected);
                    return Poll::Ready(Err(Error::Rejected(rejected)));
                }
            }
        }
        assert!(this.classify.is_some(), "{POLLED_AFTER_DONE}");
        let _entered = T::enter(this.call);
        let output = match catch_unwind(AssertUnwindSafe(|| this.inner.as_mut().poll(cx))) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(output)) => output,
            Err(panic) => {
                fail(
                    this.breaker,
                    this.ticket.take(),
                    &*this.telemetry,
                    this.call,
                );
                resume_unwind(panic)
            }
        };
        let classify = this.classify.take().expect(POLLED_AFTER_DONE);
        match catch_unwind(AssertUnwindSafe(|| output.finish(&classify))) {
            Ok((outcome, result)) => {
                if let Some(ticket) = this.ticket.take() {
                    let slow = judged_slow::<T>(this.breaker, ticket, outcome);
                    this.breaker.record_ticket(ticket, outcome);
                    // After the breaker: a panicking subscriber cannot lose the outcome.
                    if T::ON {
                        let end = CallEnd::Done {
                            outcome,
                            slow,
                            timed_out: matches!(result, Err(Error::Timeout(_))),
                        };
                        this.telemetry.ended(this.breaker, this.call, end);
                    }
                }
                Poll::Ready(result)
            }
            Err(panic) => {
                fail(
                    this.breaker,
                    this.ticket.take(),
                    &*this.telemetry,
                    this.call,
                );
                resume_unwind(panic)
            }
        }
    }
}

#[cold]
fn fail<T: Telemetry>(breaker: &Breaker, ticket: Option<Ticket>, telemetry: &T, call: &T::Call) {
    if let Some(ticket) = ticket {
        let end = CallEnd::Done {
            outcome: Outcome::Failure,
            slow: judged_slow::<T>(breaker, ticket, Outcome::Failure),
            timed_out: false,
        };
        breaker.record_ticket(ticket, Outcome::Failure);
        end_quietly(telemetry, breaker, call, end);
    }
}

pin_project! {
    /// A future with an optional deadline: without one it is `inner` as it is; with one (the
    /// `tokio` feature) it ends with [`Timed::Elapsed`] when the deadline passes first. Its
    /// shape is private, so enabling `tokio` changes nothing a caller can name.
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
    pub fn new(inner: F, timeout: Option<Duration>) -> Self {
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
    pub fn unbounded(inner: F) -> Self {
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

impl Breaker {
    /// Makes the call `fut` through the breaker: the permit is asked for when the returned future
    /// is first polled, `Ok` is recorded as a Success and `Err` as a Failure. Dropping the future
    /// before it completes records nothing (see [`future`](crate::future)).
    ///
    /// # Errors
    /// [`Error::Rejected`] if the breaker did not let the call through, [`Error::Inner`] with
    /// `fut`'s error.
    ///
    /// # Examples
    /// ```
    /// use hotbreaker::{Breaker, Error};
    ///
    /// # async fn run() {
    /// let breaker = Breaker::builder().build().unwrap();
    /// let answer = breaker.call_future(async { Ok::<_, std::io::Error>(42) }).await;
    /// assert_eq!(answer.unwrap(), 42);
    /// # }
    /// ```
    pub fn call_future<F, T, E>(&self, fut: F) -> CallFuture<&Breaker, F, Errors>
    where
        F: Future<Output = Result<T, E>>,
    {
        CallFuture::new(self, Errors, fut)
    }

    /// As [`call_future`](Breaker::call_future), with `classify` deciding the outcome.
    ///
    /// # Errors
    /// As [`call_future`](Breaker::call_future).
    pub fn call_future_with<F, T, E, C>(&self, classify: C, fut: F) -> CallFuture<&Breaker, F, C>
    where
        F: Future<Output = Result<T, E>>,
        C: Classify<T, E>,
    {
        CallFuture::new(self, classify, fut)
    }

    /// As [`call_future`](Breaker::call_future), with a deadline: if `fut` has not finished
    /// `timeout` after this call, it is dropped, a Failure is recorded and the caller gets
    /// [`Error::Timeout`]. Must be called inside a tokio runtime with its timer enabled.
    ///
    /// # Errors
    /// As [`call_future`](Breaker::call_future), plus [`Error::Timeout`].
    #[cfg(feature = "tokio")]
    pub fn call_future_timeout<F, T, E>(
        &self,
        timeout: Duration,
        fut: F,
    ) -> CallFuture<&Breaker, Deadline<F>, Errors>
    where
        F: Future<Output = Result<T, E>>,
    {
        CallFuture::new(self, Errors, Deadline::new(fut, Some(timeout)))
    }

    /// As [`call_future_timeout`](Breaker::call_future_timeout), with `classify` deciding the
    /// outcome, including that of a timeout ([`Classify::timed_out`]).
    ///
    /// # Errors
    /// As [`call_future_timeout`](Breaker::call_future_timeout).
    #[cfg(feature = "tokio")]
    pub fn call_future_timeout_with<F, T, E, C>(
        &self,
        timeout: Duration,
        classify: C,
        fut: F,
    ) -> CallFuture<&Breaker, Deadline<F>, C>
    where
        F: Future<Output = Result<T, E>>,
        C: Classify<T, E>,
    {
        CallFuture::new(self, classify, Deadline::new(fut, Some(timeout)))
    }
}

impl Breaker {
    /// As [`call_future_with`](Breaker::call_future_with), holding the breaker by `Arc`: the
    /// returned future is `'static` when `fut` and `classify` are, so it can be spawned or kept
    /// in a struct, and its type can be written out. No allocation: the `Arc` is cloned, not
    /// boxed. Pass [`Errors`] as `classify` for the default (`Ok` succeeds, `Err` fails).
    ///
    /// # Errors
    /// As [`call_future`](Breaker::call_future).
    ///
    /// # Examples
    /// ```
    /// use std::sync::Arc;
    /// use hotbreaker::{Breaker, classify::Errors};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let breaker = Arc::new(Breaker::builder().build().unwrap());
    /// let call = breaker.call_owned(Errors, async { Ok::<_, std::io::Error>(42) });
    /// assert_eq!(tokio::spawn(call).await.unwrap().unwrap(), 42);
    /// # }
    /// ```
    pub fn call_owned<F, T, E, C>(
        self: &Arc<Self>,
        classify: C,
        fut: F,
    ) -> CallFuture<Arc<Breaker>, F, C>
    where
        F: Future<Output = Result<T, E>>,
        C: Classify<T, E>,
    {
        CallFuture::new(Arc::clone(self), classify, fut)
    }

    /// As [`call_owned`](Breaker::call_owned), with a deadline: if `fut` has not finished
    /// `timeout` after this call, it is dropped, the classifier's
    /// [`timed_out`](Classify::timed_out) is recorded (a Failure by default) and the caller gets
    /// [`Error::Timeout`]. The future is `'static` when `fut` and `classify` are, and allocates
    /// nothing of its own. Must be called inside a tokio runtime with its timer enabled.
    ///
    /// # Errors
    /// As [`call_future_timeout`](Breaker::call_future_timeout).
    ///
    /// # Examples
    /// ```
    /// use std::{sync::Arc, time::Duration};
    /// use hotbreaker::{Breaker, Error, classify::Errors};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let breaker = Arc::new(Breaker::builder().build().unwrap());
    /// let hung = std::future::pending::<Result<(), std::io::Error>>();
    /// let call = breaker.call_owned_timeout(Duration::from_millis(10), Errors, hung);
    /// assert!(matches!(tokio::spawn(call).await.unwrap(), Err(Error::Timeout(_))));
    /// assert_eq!(breaker.metrics().failures, 1);
    /// # }
    /// ```
    #[cfg(feature = "tokio")]
    pub fn call_owned_timeout<F, T, E, C>(
        self: &Arc<Self>,
        timeout: Duration,
        classify: C,
        fut: F,
    ) -> CallFuture<Arc<Breaker>, Deadline<F>, C>
    where
        F: Future<Output = Result<T, E>>,
        C: Classify<T, E>,
    {
        CallFuture::new(
            Arc::clone(self),
            classify,
            Deadline::new(fut, Some(timeout)),
        )
    }
}

/// A half-acquired call: records a Failure if dropped before [`disarm`](Self::disarm) (a panic
/// between acquiring and building the future).
#[cfg(feature = "tower")]
pub(crate) struct TicketGuard<'a, T: Telemetry> {
    pub(crate) breaker: &'a Breaker,
    pub(crate) ticket: Option<Ticket>,
    pub(crate) telemetry: &'a T,
    pub(crate) call: &'a T::Call,
}

#[cfg(feature = "tower")]
impl<T: Telemetry> TicketGuard<'_, T> {
    #[inline]
    pub(crate) fn disarm(mut self) -> Ticket {
        self.ticket.take().expect("armed")
    }
}

#[cfg(feature = "tower")]
impl<T: Telemetry> Drop for TicketGuard<'_, T> {
    fn drop(&mut self) {
        fail(self.breaker, self.ticket.take(), self.telemetry, self.call);
    }
}
