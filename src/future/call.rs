//! [`CallFuture`]: the permit, the classifier and the protected future in one future.

use std::future::Future;
use std::ops::Deref;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};
#[cfg(feature = "tokio")]
use std::time::Duration;

use pin_project_lite::pin_project;

#[cfg(feature = "tokio")]
use super::deadline::Deadline;
use super::finish::Finish;
use crate::breaker::Breaker;
use crate::classify::{Classify, Errors};
use crate::error::Error;
use crate::outcome::Outcome;
use crate::telemetry::{CallEnd, NoTelemetry, Telemetry, admit, end_quietly, judged_slow};
use crate::ticket::Ticket;

const POLLED_AFTER_DONE: &str = "CallFuture polled after it completed";

pin_project! {
    /// A protected call in flight; see the [module documentation](super).
    ///
    /// `B` is how the future reaches its breaker: `&Breaker` from [`Breaker::call_future`], or
    /// an `Arc<Breaker>` for a `'static` future from [`Breaker::call_owned`]. `C` classifies the
    /// result ([`Errors`] unless [`classify`](Self::classify) set one) and `T` is the call's
    /// telemetry ([`NoTelemetry`] unless [`telemetry`](Self::telemetry) set one).
    #[must_use = "futures do nothing unless polled"]
    pub struct CallFuture<B, F, C = Errors, T = NoTelemetry>
    where
        B: Deref<Target = Breaker>,
        T: Telemetry,
    {
        held: Held<B, T>,
        // Some until the future completes.
        classify: Option<C>,
        started: bool,
        #[pin]
        inner: F,
    }
}

/// The breaker's side of a call: dropped while it holds a permit (the call was cancelled), it
/// records nothing and gives the permit back. Its own type, so that [`CallFuture`] has no
/// destructor and its adapters can take it apart.
struct Held<B, T>
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
}

impl<B, T> Drop for Held<B, T>
where
    B: Deref<Target = Breaker>,
    T: Telemetry,
{
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.breaker.release_ticket(ticket);
            // After the breaker: whatever the telemetry does, the slot is back.
            end_quietly(
                &self.telemetry,
                &self.breaker,
                &self.call,
                CallEnd::Cancelled,
            );
        }
    }
}

impl<B, F> CallFuture<B, F>
where
    B: Deref<Target = Breaker>,
{
    /// A call of `inner` through `breaker`; the permit is asked for when it is first polled.
    pub(crate) fn new(breaker: B, inner: F) -> Self {
        CallFuture {
            held: Held {
                breaker,
                telemetry: NoTelemetry,
                call: (),
                ticket: None,
            },
            classify: Some(Errors),
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
    /// The call, with `classify` deciding its outcome (a closure
    /// `Fn(&Result<T, E>) -> Outcome` or a [`Classify`]), including that of a timeout
    /// ([`Classify::timed_out`]).
    ///
    /// # Examples
    /// ```
    /// use hotbreaker::{Breaker, Error, Outcome};
    ///
    /// let breaker = Breaker::builder().build().unwrap();
    /// let busy_is_fine = |r: &Result<(), u16>| match r {
    ///     Err(429) => Outcome::Ignored,
    ///     Err(_) => Outcome::Failure,
    ///     Ok(()) => Outcome::Success,
    /// };
    /// let call = breaker.call_future(async { Err(429) }).classify(busy_is_fine);
    /// # let mut call = std::pin::pin!(call);
    /// # let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// # let std::task::Poll::Ready(result) = call.as_mut().poll(&mut cx) else { panic!() };
    /// assert!(matches!(result, Err(Error::Inner(429))));
    /// assert_eq!(breaker.metrics().ignored, 1);
    /// ```
    pub fn classify<K>(self, classify: K) -> CallFuture<B, F, K, T> {
        let CallFuture {
            held,
            classify: before,
            started,
            inner,
        } = self;
        CallFuture {
            held,
            // A future that already completed (or was rejected) stays completed.
            classify: before.map(|_| classify),
            started,
            inner,
        }
    }

    /// The call, with a deadline `after` from now: if the protected future has not finished by
    /// then, it is dropped, the classifier's [`timed_out`](Classify::timed_out) is recorded (a
    /// Failure by default) and the caller gets [`Error::Timeout`]. Must be called inside a
    /// tokio runtime with its timer enabled.
    ///
    /// # Examples
    /// ```
    /// use std::{sync::Arc, time::Duration};
    /// use hotbreaker::{Breaker, Error};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let breaker = Arc::new(Breaker::builder().build().unwrap());
    /// let hung = std::future::pending::<Result<(), std::io::Error>>();
    /// let call = breaker.call_owned(hung).timeout(Duration::from_millis(10));
    /// assert!(matches!(tokio::spawn(call).await.unwrap(), Err(Error::Timeout(_))));
    /// assert_eq!(breaker.metrics().failures, 1);
    /// # }
    /// ```
    #[cfg(feature = "tokio")]
    pub fn timeout(self, after: Duration) -> CallFuture<B, Deadline<F>, C, T>
    where
        F: Future,
    {
        let CallFuture {
            held,
            classify,
            started,
            inner,
        } = self;
        CallFuture {
            held,
            classify,
            started,
            inner: Deadline::new(inner, Some(after)),
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
            held: Held {
                breaker,
                telemetry,
                call,
                ticket: Some(ticket),
            },
            classify: Some(classify),
            started: true,
            inner,
        }
    }
}

impl<B, F, C> CallFuture<B, F, C>
where
    B: Deref<Target = Breaker> + Clone,
{
    /// The call, with per-call [telemetry](crate::telemetry): a span, and with `metrics` a
    /// duration histogram. Pass a `&CallTelemetry` to avoid a clone per call.
    ///
    /// # Examples
    /// ```
    /// # #[cfg(feature = "tracing")] {
    /// use hotbreaker::{Breaker, telemetry::CallTelemetry};
    ///
    /// let breaker = Breaker::builder().build().unwrap();
    /// let telemetry = CallTelemetry::new("inventory");
    /// let call = breaker.call_future(async { Ok::<u8, ()>(7) }).telemetry(&telemetry);
    /// # let mut call = std::pin::pin!(call);
    /// # let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    /// # assert_eq!(call.as_mut().poll(&mut cx), std::task::Poll::Ready(Ok(7)));
    /// # }
    /// ```
    pub fn telemetry<T: Telemetry>(self, telemetry: T) -> CallFuture<B, F, C, T> {
        let CallFuture {
            held,
            classify,
            started,
            inner,
        } = self;
        // `held` has a destructor, so its breaker is cloned rather than moved out (a reference,
        // or one reference-count increment), and its permit, if an already polled future holds
        // one, moves over: dropping it then gives nothing back.
        let mut held = held;
        let ticket = held.ticket.take();
        let breaker = held.breaker.clone();
        drop(held);
        // A call already admitted starts its telemetry now (giving the permit back if the
        // telemetry panics).
        let call = match ticket {
            Some(ticket) => admit(&telemetry, &breaker, ticket),
            None => T::Call::default(),
        };
        CallFuture {
            held: Held {
                breaker,
                telemetry,
                call,
                ticket,
            },
            classify,
            started,
            inner,
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
        let held = this.held;
        if !*this.started {
            *this.started = true;
            match held.breaker.acquire() {
                Ok(ticket) => {
                    held.ticket = Some(ticket);
                    if T::ON {
                        held.call = held.telemetry.admitted(&held.breaker, ticket.state());
                    }
                }
                Err(rejected) => {
                    this.classify.take().expect(POLLED_AFTER_DONE);
                    held.telemetry.rejected(&held.breaker, &rejected);
                    return Poll::Ready(Err(Error::Rejected(rejected)));
                }
            }
        }
        assert!(this.classify.is_some(), "{POLLED_AFTER_DONE}");
        let _entered = T::enter(&held.call);
        let output = match catch_unwind(AssertUnwindSafe(|| this.inner.as_mut().poll(cx))) {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(output)) => output,
            Err(panic) => {
                fail(
                    &held.breaker,
                    held.ticket.take(),
                    &held.telemetry,
                    &held.call,
                );
                resume_unwind(panic)
            }
        };
        let classify = this.classify.take().expect(POLLED_AFTER_DONE);
        match catch_unwind(AssertUnwindSafe(|| output.finish(&classify))) {
            Ok((outcome, result)) => {
                if let Some(ticket) = held.ticket.take() {
                    let slow = judged_slow::<T>(&held.breaker, ticket, outcome);
                    held.breaker.record_ticket(ticket, outcome);
                    // After the breaker: a panicking subscriber cannot lose the outcome.
                    if T::ON {
                        let end = CallEnd::Done {
                            outcome,
                            slow,
                            timed_out: matches!(result, Err(Error::Timeout(_))),
                        };
                        held.telemetry.ended(&held.breaker, &held.call, end);
                    }
                }
                Poll::Ready(result)
            }
            Err(panic) => {
                fail(
                    &held.breaker,
                    held.ticket.take(),
                    &held.telemetry,
                    &held.call,
                );
                resume_unwind(panic)
            }
        }
    }
}

/// Records a Failure for a call that panicked (or whose setup did) while holding `ticket`.
#[cold]
pub(super) fn fail<T: Telemetry>(
    breaker: &Breaker,
    ticket: Option<Ticket>,
    telemetry: &T,
    call: &T::Call,
) {
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
