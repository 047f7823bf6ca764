//! `Breaker::call_future`, `call_owned` and their adapters (feature `future`; timeouts with
//! `tokio`): outcomes,
//! rejection, cancellation, panics, lazy acquisition. Time comes from mock clocks: quanta's for
//! the breaker, tokio's paused clock for deadlines.
#![cfg(feature = "future")]

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use hotbreaker::future::CallFuture;
use hotbreaker::{Breaker, Builder, Error, Outcome, State};

const SEC: Duration = Duration::from_secs(1);

fn mocked(builder: Builder) -> (Breaker, Arc<quanta::Mock>) {
    let (clock, mock) = quanta::Clock::mock();
    (builder.clock(clock).build().unwrap(), mock)
}

fn poll_once<F: Future>(fut: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

/// Trips `b` (consecutive_failures(1)) and moves the clock to its deadline, so that the next
/// acquire half-opens it.
fn trip_and_wait(b: &Breaker, mock: &quanta::Mock) {
    b.try_acquire().unwrap().failure();
    assert_eq!(b.state(), State::Open);
    mock.increment(10 * SEC);
}

fn half_open_breaker(permits: u32) -> (Breaker, Arc<quanta::Mock>) {
    mocked(
        Breaker::builder()
            .consecutive_failures(1)
            .open_timeout(10 * SEC)
            .half_open_permits(permits)
            .half_open_successes(permits),
    )
}

#[test]
fn outcomes_are_recorded_when_the_future_completes() {
    let b = Breaker::builder().build().unwrap();
    let mut ok = pin!(b.call_future(async { Ok::<_, &str>(1) }));
    assert_eq!(poll_once(ok.as_mut()), Poll::Ready(Ok(1)));
    let mut err = pin!(b.call_future(async { Err::<u8, _>("down") }));
    assert_eq!(
        poll_once(err.as_mut()),
        Poll::Ready(Err(Error::Inner("down")))
    );
    let m = b.metrics();
    assert_eq!((m.successes, m.failures), (1, 1));
}

#[test]
fn the_classifier_decides_the_outcome() {
    let b = Breaker::builder().consecutive_failures(1).build().unwrap();
    let not_found_is_fine = |r: &Result<u8, u16>| match r {
        Err(404) => Outcome::Ignored,
        Err(_) => Outcome::Failure,
        Ok(_) => Outcome::Success,
    };
    let mut call = pin!(
        b.call_future(async { Err::<u8, _>(404u16) })
            .classify(not_found_is_fine)
    );
    assert_eq!(
        poll_once(call.as_mut()),
        Poll::Ready(Err(Error::Inner(404)))
    );
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.metrics().ignored, 1);
    let mut call = pin!(
        b.call_future(async { Err::<u8, _>(500u16) })
            .classify(not_found_is_fine)
    );
    assert_eq!(
        poll_once(call.as_mut()),
        Poll::Ready(Err(Error::Inner(500)))
    );
    assert_eq!(b.state(), State::Open);
}

#[test]
fn an_open_breaker_rejects_without_polling_the_call() {
    let (b, _mock) = half_open_breaker(1);
    b.try_acquire().unwrap().failure();
    let polled = std::cell::Cell::new(false);
    let mut call = pin!(b.call_future(async {
        polled.set(true);
        Ok::<(), ()>(())
    }));
    match poll_once(call.as_mut()) {
        Poll::Ready(Err(Error::Rejected(r))) => {
            assert_eq!(r.state(), State::Open);
            assert_eq!(r.retry_after(), Some(10 * SEC));
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(!polled.get());
    assert_eq!(b.metrics().rejected, 1);
}

#[test]
fn the_permit_is_taken_at_the_first_poll_not_at_creation() {
    let (b, mock) = half_open_breaker(1);
    trip_and_wait(&b, &mock);
    let call = b.call_future(std::future::pending::<Result<(), ()>>());
    // Not polled yet: the one probe slot is still free.
    let probe = b
        .try_acquire()
        .expect("slot free before the future is polled");
    assert_eq!(probe.state(), State::HalfOpen);
    drop(probe);
    let mut call = pin!(call);
    assert!(poll_once(call.as_mut()).is_pending());
    assert!(b.try_acquire().is_err(), "the polled future holds the slot");
}

/// A cancelled call records nothing and gives its half-open slot back.
#[test]
fn dropping_an_unfinished_future_releases_the_slot_and_records_nothing() {
    let (b, mock) = half_open_breaker(2);
    trip_and_wait(&b, &mock);
    let before = b.metrics();
    for _ in 0..1_000 {
        let mut first = Box::pin(b.call_future(std::future::pending::<Result<(), ()>>()));
        let mut second = Box::pin(b.call_future(std::future::pending::<Result<(), ()>>()));
        assert!(poll_once(first.as_mut()).is_pending());
        assert!(poll_once(second.as_mut()).is_pending());
        assert!(b.try_acquire().is_err(), "both slots taken");
        drop(first);
        drop(second);
    }
    let after = b.metrics();
    assert_eq!(b.state(), State::HalfOpen);
    assert_eq!(
        (after.successes, after.failures, after.ignored),
        (before.successes, before.failures, before.ignored)
    );
    // No slot leaked: two probes pass and close the breaker.
    let p1 = b.try_acquire().unwrap();
    let p2 = b.try_acquire().unwrap();
    p1.success();
    p2.success();
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn a_panic_inside_the_call_is_a_failure_and_unwinds() {
    let b = Breaker::builder().consecutive_failures(1).build().unwrap();
    let caught = catch_unwind(AssertUnwindSafe(|| {
        let mut call = pin!(b.call_future(async {
            panic!("handler bug");
            #[allow(unreachable_code)]
            Ok::<(), ()>(())
        }));
        let _ = poll_once(call.as_mut());
    }));
    assert!(caught.is_err());
    assert_eq!(b.metrics().failures, 1);
    assert_eq!(b.state(), State::Open);
}

#[test]
fn a_panicking_classifier_is_a_failure_and_unwinds() {
    let b = Breaker::builder().consecutive_failures(1).build().unwrap();
    let caught = catch_unwind(AssertUnwindSafe(|| {
        let classify = |_: &Result<(), ()>| -> Outcome { panic!("classifier bug") };
        let mut call = pin!(b.call_future(async { Ok::<(), ()>(()) }).classify(classify));
        let _ = poll_once(call.as_mut());
    }));
    assert!(caught.is_err());
    assert_eq!(b.metrics().failures, 1);
    assert_eq!(b.state(), State::Open);
}

#[test]
fn an_arc_breaker_makes_a_static_future() {
    let b = Arc::new(Breaker::builder().build().unwrap());
    fn assert_static<T: 'static + Send>(_: &T) {}
    let call = b.call_owned(async { Ok::<_, ()>("ok") });
    assert_static(&call);
    let mut call = pin!(call);
    assert_eq!(poll_once(call.as_mut()), Poll::Ready(Ok("ok")));
    assert_eq!(b.metrics().successes, 1);
}

/// An `Unpin` inner future: Pending until `done` is set, then `Err(500)`.
fn gated(done: &std::cell::Cell<bool>) -> impl Future<Output = Result<u8, u16>> + Unpin + '_ {
    std::future::poll_fn(move |_| {
        if done.get() {
            Poll::Ready(Err(500))
        } else {
            Poll::Pending
        }
    })
}

/// An adapter applied to a future already polled (possible when the inner future is `Unpin`)
/// keeps its permit: no second probe is let in, and the outcome is recorded once.
#[test]
fn an_adapter_after_the_first_poll_keeps_the_permit() {
    let (b, mock) = half_open_breaker(1);
    trip_and_wait(&b, &mock);
    let done = std::cell::Cell::new(false);
    let mut call = b.call_future(gated(&done));
    assert!(poll_once(std::pin::Pin::new(&mut call)).is_pending());
    assert!(b.try_acquire().is_err(), "the probe is in flight");
    let mut call =
        call.telemetry(hotbreaker::telemetry::NoTelemetry)
            .classify(|r: &Result<u8, u16>| {
                if r.is_ok() {
                    Outcome::Success
                } else {
                    Outcome::Failure
                }
            });
    assert!(
        b.try_acquire().is_err(),
        "still in flight after the adapters"
    );
    done.set(true);
    assert_eq!(
        poll_once(std::pin::Pin::new(&mut call)),
        Poll::Ready(Err(Error::Inner(500)))
    );
    assert_eq!(b.metrics().failures, 2, "the trip's and the probe's");
    assert_eq!(b.state(), State::Open);
}

/// A classifier set on a future that already finished (here: rejected) does not make it
/// runnable again: polling it is still "polled after it completed", and the call never runs.
#[test]
fn a_classifier_set_after_a_rejection_does_not_run_the_call() {
    let (b, _mock) = half_open_breaker(1);
    b.try_acquire().unwrap().failure();
    let ran = std::cell::Cell::new(false);
    let mut call = b.call_future(std::future::poll_fn(|_| {
        ran.set(true);
        Poll::Ready(Ok::<u8, u16>(1))
    }));
    assert!(matches!(
        poll_once(std::pin::Pin::new(&mut call)),
        Poll::Ready(Err(Error::Rejected(_)))
    ));
    let mut call = call.classify(|_: &Result<u8, u16>| Outcome::Success);
    let again = catch_unwind(AssertUnwindSafe(|| {
        poll_once(std::pin::Pin::new(&mut call))
    }));
    assert!(again.is_err(), "polled after it completed");
    assert!(!ran.get(), "the rejected call never runs");
}

/// The future's type can be written out, so it can live in a struct: the default classifier
/// and telemetry need not be named.
#[test]
fn an_owned_call_has_a_type_that_can_be_named() {
    struct Pending {
        call: CallFuture<Arc<Breaker>, std::future::Ready<Result<u8, ()>>>,
    }
    let b = Arc::new(Breaker::builder().build().unwrap());
    let pending = Pending {
        call: b.call_owned(std::future::ready(Ok(3))),
    };
    let mut call = pin!(pending.call);
    assert_eq!(poll_once(call.as_mut()), Poll::Ready(Ok(3)));
}

#[cfg(feature = "tokio")]
mod deadlines {
    use super::*;
    use hotbreaker::classify::Classify;

    /// A hung dependency: the deadline passes first; a Failure is recorded.
    #[tokio::test(start_paused = true)]
    async fn a_call_past_its_deadline_is_a_failure() {
        let b = Breaker::builder().consecutive_failures(2).build().unwrap();
        for _ in 0..2 {
            let hung = tokio::time::sleep(Duration::from_secs(3600));
            let r = b
                .call_future(async {
                    hung.await;
                    Ok::<(), ()>(())
                })
                .timeout(SEC)
                .await;
            assert_eq!(r, Err(Error::Timeout(SEC)));
        }
        assert_eq!(b.metrics().failures, 2);
        assert_eq!(b.state(), State::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_within_its_deadline_is_classified_as_usual() {
        let b = Breaker::builder().build().unwrap();
        let r = b
            .call_future(async {
                tokio::time::sleep(Duration::from_millis(999)).await;
                Ok::<_, ()>(5)
            })
            .timeout(SEC)
            .await;
        assert_eq!(r, Ok(5));
        assert_eq!(b.metrics().successes, 1);
    }

    /// The classifier sees the timeout and may call it something else.
    #[tokio::test(start_paused = true)]
    async fn the_classifier_decides_what_a_timeout_is() {
        struct TimeoutsAreFine;
        impl Classify<(), ()> for TimeoutsAreFine {
            fn classify(&self, r: &Result<(), ()>) -> Outcome {
                if r.is_ok() {
                    Outcome::Success
                } else {
                    Outcome::Failure
                }
            }
            fn timed_out(&self) -> Outcome {
                Outcome::Ignored
            }
        }
        let b = Breaker::builder().consecutive_failures(1).build().unwrap();
        let r = b
            .call_future(std::future::pending())
            .classify(TimeoutsAreFine)
            .timeout(SEC)
            .await;
        assert_eq!(r, Err(Error::Timeout(SEC)));
        assert_eq!(b.metrics().ignored, 1);
        assert_eq!(b.state(), State::Closed);
        // The adapters apply in either order.
        let r = b
            .call_future(std::future::pending())
            .timeout(SEC)
            .classify(TimeoutsAreFine)
            .await;
        assert_eq!(r, Err(Error::Timeout(SEC)));
        assert_eq!(b.metrics().ignored, 2);
        assert_eq!(b.state(), State::Closed);
    }

    /// The deadline runs from the `timeout` call, not from the first poll (as
    /// `tokio::time::timeout` does).
    #[tokio::test(start_paused = true)]
    async fn the_deadline_runs_from_the_timeout_call() {
        let b = Breaker::builder().build().unwrap();
        let call = b
            .call_future(async {
                tokio::time::sleep(Duration::from_millis(600)).await;
                Ok::<_, ()>(5)
            })
            .timeout(SEC);
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(call.await, Err(Error::Timeout(SEC)));
        assert_eq!(b.metrics().failures, 1);
    }

    /// An owned permit held across `.await` in a spawned task, cancelled by abort: nothing is
    /// recorded and the slot comes back.
    #[tokio::test(start_paused = true)]
    async fn an_aborted_task_holding_an_owned_permit_releases_it() {
        let (clock, mock) = quanta::Clock::mock();
        let b = Arc::new(
            Breaker::builder()
                .consecutive_failures(1)
                .open_timeout(10 * SEC)
                .half_open_permits(1)
                .half_open_successes(1)
                .clock(clock)
                .build()
                .unwrap(),
        );
        trip_and_wait(&b, &mock);
        let task = tokio::spawn({
            let b = b.clone();
            async move {
                let permit = b.try_acquire_owned().unwrap();
                std::future::pending::<()>().await;
                permit.success();
            }
        });
        tokio::task::yield_now().await;
        assert!(b.try_acquire().is_err(), "the task holds the only slot");
        task.abort();
        assert!(task.await.unwrap_err().is_cancelled());
        b.try_acquire().expect("slot released").success();
        assert_eq!(b.state(), State::Closed);
    }
}
