//! The tower middleware (feature `tower`): outcomes, rejections with retry_after, fallbacks,
//! cancellation, panics, classification of HTTP responses, deadlines (tokio's paused clock).
#![cfg(feature = "tower")]

use std::future::{Future, Ready, ready};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use hotbreaker::service::BreakerLayer;
use hotbreaker::{Breaker, Error, Rejected, State};
use tower::{Layer, Service};

const SEC: Duration = Duration::from_secs(1);

fn poll_once<F: Future>(fut: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    fut.poll(&mut Context::from_waker(Waker::noop()))
}

fn now<F: Future>(fut: F) -> F::Output {
    match poll_once(pin!(fut)) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("expected a ready future"),
    }
}

/// An inner service that answers at once: `Ok(n)` for even n, `Err` for odd, counting calls.
#[derive(Clone, Default)]
struct Parity {
    calls: Arc<AtomicU32>,
}

impl Service<u32> for Parity {
    type Response = u32;
    type Error = &'static str;
    type Future = Ready<Result<u32, &'static str>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, n: u32) -> Self::Future {
        self.calls.fetch_add(1, Ordering::Relaxed);
        ready(if n.is_multiple_of(2) {
            Ok(n)
        } else {
            Err("odd")
        })
    }
}

fn breaker(permits: u32) -> (Arc<Breaker>, Arc<quanta::Mock>) {
    let (clock, mock) = quanta::Clock::mock();
    let b = Breaker::builder()
        .consecutive_failures(3)
        .open_timeout(10 * SEC)
        .half_open_permits(permits)
        .half_open_successes(permits)
        .clock(clock)
        .build()
        .unwrap();
    (Arc::new(b), mock)
}

#[test]
fn outcomes_trip_and_rejections_carry_retry_after() {
    let (b, mock) = breaker(1);
    let inner = Parity::default();
    let mut svc = BreakerLayer::new(b.clone()).layer(inner.clone());
    assert_eq!(now(svc.call(2)), Ok(2));
    for _ in 0..3 {
        assert_eq!(now(svc.call(1)), Err(Error::Inner("odd")));
    }
    assert_eq!(b.state(), State::Open);
    mock.increment(4 * SEC);
    match now(svc.call(2)) {
        Err(Error::Rejected(r)) => assert_eq!(r.retry_after(), Some(6 * SEC)),
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert_eq!(
        inner.calls.load(Ordering::Relaxed),
        4,
        "rejected calls never reach it"
    );
    // Clones share the breaker.
    let mut clone = svc.clone();
    assert!(matches!(now(clone.call(2)), Err(Error::Rejected(_))));
    mock.increment(6 * SEC);
    assert_eq!(now(clone.call(4)), Ok(4));
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn a_fallback_answers_rejected_requests() {
    let (b, _mock) = breaker(1);
    let mut svc = BreakerLayer::new(b.clone())
        .fallback(|rejected: Rejected, n: u32| {
            // "Stale cache": only even requests have a cached answer.
            ready(if n.is_multiple_of(2) {
                Ok(n + 1000)
            } else {
                Err(Error::Rejected(rejected))
            })
        })
        .layer(Parity::default());
    assert_eq!(now(svc.call(2)), Ok(2), "closed: the real answer");
    b.isolate();
    assert_eq!(
        now(svc.call(2)),
        Ok(1002),
        "rejected: the fallback's answer"
    );
    match now(svc.call(3)) {
        Err(Error::Rejected(r)) => assert_eq!(r.state(), State::Isolated),
        other => panic!("a miss passes the rejection on, got {other:?}"),
    }
}

/// A cancelled request (its response future dropped) records nothing and frees its slot.
#[test]
fn dropping_the_response_future_releases_the_half_open_slot() {
    let (b, mock) = breaker(2);
    let pending = tower::service_fn(|_: u32| std::future::pending::<Result<u32, ()>>());
    let mut svc = BreakerLayer::new(b.clone()).layer(pending);
    // The pending service cannot fail; trip the breaker through permits.
    for _ in 0..3 {
        b.try_acquire().unwrap().failure();
    }
    assert_eq!(b.state(), State::Open);
    mock.increment(10 * SEC);
    for _ in 0..1_000 {
        let mut a = Box::pin(svc.call(1));
        let mut c = Box::pin(svc.call(1));
        assert!(poll_once(a.as_mut()).is_pending());
        assert!(poll_once(c.as_mut()).is_pending());
        assert!(matches!(now(svc.call(1)), Err(Error::Rejected(_))));
        drop((a, c));
    }
    let m = b.metrics();
    assert_eq!((m.successes, m.failures), (0, 3));
    let (p, q) = (b.try_acquire().unwrap(), b.try_acquire().unwrap());
    p.success();
    q.success();
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn a_panic_in_the_inner_call_is_a_failure() {
    let (b, _mock) = breaker(1);
    let mut svc = BreakerLayer::new(b.clone()).layer(tower::service_fn(|n: u32| {
        assert!(n != 13, "unlucky");
        ready(Ok::<_, ()>(n))
    }));
    assert!(catch_unwind(AssertUnwindSafe(|| svc.call(13))).is_err());
    assert_eq!(b.metrics().failures, 1);
    // The permit was recorded, not leaked: two more failures trip it.
    for _ in 0..2 {
        assert!(catch_unwind(AssertUnwindSafe(|| svc.call(13))).is_err());
    }
    assert_eq!(b.state(), State::Open);
}

#[cfg(feature = "http")]
#[test]
fn http_responses_5xx_trip_4xx_do_not() {
    use hotbreaker::http::HttpClassifier;
    use http::{Response, StatusCode};
    let (b, _mock) = breaker(1);
    let mut svc = BreakerLayer::new(b.clone())
        .classify(HttpClassifier::new())
        .layer(tower::service_fn(|status: u16| {
            let status = StatusCode::from_u16(status).unwrap();
            ready(Ok::<_, ()>(
                Response::builder().status(status).body(()).unwrap(),
            ))
        }));
    for _ in 0..50 {
        assert_eq!(now(svc.call(404)).unwrap().status(), 404);
    }
    assert_eq!(b.state(), State::Closed, "4xx are not failures");
    assert_eq!(b.metrics().successes, 50);
    for _ in 0..3 {
        assert_eq!(now(svc.call(503)).unwrap().status(), 503);
    }
    assert_eq!(b.state(), State::Open, "5xx are");
}

#[cfg(feature = "tokio")]
#[tokio::test(start_paused = true)]
async fn a_hung_inner_service_times_out_as_a_failure() {
    use tower::ServiceExt;
    let (b, _mock) = breaker(1);
    let mut svc = BreakerLayer::new(b.clone())
        .timeout(SEC)
        .layer(tower::service_fn(|n: u32| async move {
            if n == 0 {
                std::future::pending::<()>().await;
            }
            Ok::<_, ()>(n)
        }));
    assert_eq!(svc.ready().await.unwrap().call(7).await, Ok(7));
    for _ in 0..3 {
        assert_eq!(
            svc.ready().await.unwrap().call(0).await,
            Err(Error::Timeout(SEC))
        );
    }
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.metrics().failures, 3);
}

/// A panic in `call` after the permit was taken and the inner service called (here: the
/// classifier's `Clone`) is a Failure, and the half-open permit is not lost.
#[test]
fn a_panic_while_building_the_response_future_gives_the_permit_back() {
    use std::sync::atomic::AtomicBool;
    static ARMED: AtomicBool = AtomicBool::new(false);
    struct Clumsy;
    impl Clone for Clumsy {
        fn clone(&self) -> Self {
            if ARMED.load(Ordering::Relaxed) {
                panic!("clone");
            }
            Clumsy
        }
    }
    impl hotbreaker::classify::Classify<u32, ()> for Clumsy {
        fn classify(&self, _: &Result<u32, ()>) -> hotbreaker::Outcome {
            hotbreaker::Outcome::Success
        }
    }
    let (b, mock) = breaker(1);
    for _ in 0..3 {
        b.try_acquire().unwrap().failure();
    }
    mock.increment(10 * SEC);
    let mut svc = BreakerLayer::new(b.clone())
        .classify(Clumsy)
        .layer(tower::service_fn(|n: u32| ready(Ok::<u32, ()>(n))));
    ARMED.store(true, Ordering::Relaxed);
    assert!(catch_unwind(AssertUnwindSafe(|| drop(svc.call(0)))).is_err());
    ARMED.store(false, Ordering::Relaxed);
    assert_eq!(b.state(), State::Open, "the probe's panic is a Failure");
    mock.increment(10 * SEC);
    assert!(b.try_acquire().is_ok(), "the next probe is let in");
}

/// The same with a deadline made outside a tokio runtime (tokio's timer panics): the permit
/// comes back as a Failure, not stuck in HalfOpen.
#[cfg(feature = "tokio")]
#[test]
fn a_deadline_outside_a_runtime_gives_the_permit_back() {
    let (b, mock) = breaker(1);
    for _ in 0..3 {
        b.try_acquire().unwrap().failure();
    }
    mock.increment(10 * SEC);
    let mut svc = BreakerLayer::new(b.clone())
        .timeout(SEC)
        .layer(tower::service_fn(|n: u32| ready(Ok::<u32, ()>(n))));
    assert!(catch_unwind(AssertUnwindSafe(|| drop(svc.call(0)))).is_err());
    assert_eq!(b.state(), State::Open);
    mock.increment(10 * SEC);
    assert!(b.try_acquire().is_ok(), "the next probe is let in");
}
