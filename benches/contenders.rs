//! The breakers compared, behind one small trait so every scenario runs the same code for each.
//!
//! Each is configured to trip on 5 consecutive failures, or the closest thing it has:
//! - hotbreaker: `consecutive_failures(5)` (which replaces the default rate rule).
//! - failsafe 1.3: `failure_policy::consecutive_failures(5, backoff::constant(..))`.
//! - recloser 1.4: no consecutive rule; `error_rate(1.0)` over a ring of 4 calls
//!   (`closed_len(4)`). recloser computes a rate only once its ring has filled, so this trips on
//!   the 5th failure in a row, like the others.
//! - circuitbreaker-rs 0.1.1: `consecutive_failures(5)`, with its rate rule disabled
//!   (`min_throughput(u64::MAX)`).
//! - tower-resilience 0.13: `consecutive_failures(5)`, driven as a `tower::Service` around a ready
//!   inner service, polled with a no-op waker (no runtime).
//! - hotbreaker's tower path (`hotbreaker-tower`): `BreakerLayer` around the same ready inner
//!   service, same breaker settings as hotbreaker, driven the same way as tower-resilience.
//! - gobreaker-style baseline (written here): one `std::sync::Mutex` around state, generation and
//!   the consecutive-failure count, `before_request`/`after_request`, as gobreaker does.

#![allow(dead_code)] // each bench binary uses a different subset

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use tower::{Layer, Service};

/// The error every protected call returns when it fails.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Boom;

impl std::fmt::Display for Boom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("boom")
    }
}

impl std::error::Error for Boom {}

/// What happened to one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    Ran,
    Rejected,
}

pub(crate) trait Contender: Send + Sync {
    const NAME: &'static str;
    /// A breaker that trips on 5 consecutive failures and, once open, stays open for `open`.
    fn new(open: Duration) -> Self;
    /// One protected call that succeeds (`ok`) or fails.
    fn call(&self, ok: bool) -> Verdict;
}

const LONG: Duration = Duration::from_secs(3600);

/// Builds a contender and trips it open (5 failures), checking that it did.
pub(crate) fn opened<C: Contender>() -> C {
    let c = C::new(LONG);
    for _ in 0..5 {
        assert_eq!(c.call(false), Verdict::Ran, "{}", C::NAME);
    }
    assert_eq!(
        c.call(true),
        Verdict::Rejected,
        "{} did not open after 5 failures",
        C::NAME
    );
    c
}

pub(crate) fn closed<C: Contender>() -> C {
    C::new(LONG)
}

// ---- hotbreaker -----------------------------------------------------------------------------

pub(crate) struct Hot(pub hotbreaker::Breaker);

impl Contender for Hot {
    const NAME: &'static str = "hotbreaker";
    fn new(open: Duration) -> Self {
        Hot(hotbreaker::Breaker::builder()
            .consecutive_failures(5)
            .open_timeout(open.max(Duration::from_millis(1)))
            .half_open_permits(1)
            .build()
            .unwrap())
    }
    #[inline]
    fn call(&self, ok: bool) -> Verdict {
        match self.0.call(|| if ok { Ok(()) } else { Err(Boom) }) {
            Err(hotbreaker::Error::Rejected(_)) => Verdict::Rejected,
            _ => Verdict::Ran,
        }
    }
}

// ---- failsafe -------------------------------------------------------------------------------

type FailsafeBreaker = failsafe::StateMachine<
    failsafe::failure_policy::ConsecutiveFailures<failsafe::backoff::Constant>,
    (),
>;

pub(crate) struct Failsafe(FailsafeBreaker);

impl Contender for Failsafe {
    const NAME: &'static str = "failsafe";
    fn new(open: Duration) -> Self {
        let policy =
            failsafe::failure_policy::consecutive_failures(5, failsafe::backoff::constant(open));
        Failsafe(failsafe::Config::new().failure_policy(policy).build())
    }
    #[inline]
    fn call(&self, ok: bool) -> Verdict {
        use failsafe::CircuitBreaker;
        match self.0.call(|| if ok { Ok(()) } else { Err(Boom) }) {
            Err(failsafe::Error::Rejected) => Verdict::Rejected,
            _ => Verdict::Ran,
        }
    }
}

// ---- recloser -------------------------------------------------------------------------------

pub(crate) struct Recloser(recloser::Recloser);

impl Contender for Recloser {
    const NAME: &'static str = "recloser";
    fn new(open: Duration) -> Self {
        Recloser(
            recloser::Recloser::custom()
                .error_rate(1.0)
                .closed_len(4)
                .half_open_len(1)
                .open_wait(open)
                .build(),
        )
    }
    #[inline]
    fn call(&self, ok: bool) -> Verdict {
        match self.0.call(|| if ok { Ok(()) } else { Err(Boom) }) {
            Err(recloser::Error::Rejected) => Verdict::Rejected,
            _ => Verdict::Ran,
        }
    }
}

// ---- circuitbreaker-rs ----------------------------------------------------------------------

pub(crate) struct CbRs(circuitbreaker_rs::CircuitBreaker<circuitbreaker_rs::DefaultPolicy, Boom>);

impl Contender for CbRs {
    const NAME: &'static str = "circuitbreaker-rs";
    fn new(open: Duration) -> Self {
        CbRs(
            circuitbreaker_rs::CircuitBreaker::<circuitbreaker_rs::DefaultPolicy, Boom>::builder()
                .consecutive_failures(5)
                .min_throughput(u64::MAX)
                .failure_threshold(1.0)
                .cooldown(open)
                .probe_interval(1)
                .consecutive_successes(1)
                .build(),
        )
    }
    #[inline]
    fn call(&self, ok: bool) -> Verdict {
        match self.0.call(|| if ok { Ok(()) } else { Err(Boom) }) {
            Err(circuitbreaker_rs::BreakerError::Open) => Verdict::Rejected,
            _ => Verdict::Ran,
        }
    }
}

// ---- tower-resilience -----------------------------------------------------------------------

/// The inner service: answers at once, Ok or Err as the request says.
#[derive(Clone, Copy)]
pub(crate) struct Ready;

impl Service<bool> for Ready {
    type Response = ();
    type Error = Boom;
    type Future = std::future::Ready<Result<(), Boom>>;
    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Boom>> {
        Poll::Ready(Ok(()))
    }
    fn call(&mut self, ok: bool) -> Self::Future {
        std::future::ready(if ok { Ok(()) } else { Err(Boom) })
    }
}

pub(crate) type TowerCb = tower_resilience::circuitbreaker::CircuitBreaker<
    Ready,
    tower_resilience::circuitbreaker::DefaultClassifier,
>;

/// tower-resilience's breaker around [`Ready`]. A `Service` is driven through `&mut self`, so it
/// takes part in the single-thread scenarios only (each thread would need its own clone, and
/// under contention its gate falls back to a tokio timer, which needs a runtime).
pub(crate) fn tower(open: Duration) -> TowerCb {
    let layer = tower_resilience::circuitbreaker::CircuitBreakerLayer::builder()
        .consecutive_failures(5)
        .wait_duration_in_open(open)
        .permitted_calls_in_half_open(1)
        .build()
        .unwrap();
    layer.layer(Ready)
}

pub(crate) const TOWER: &str = "tower-resilience";

/// hotbreaker's tower middleware around [`Ready`], configured as [`Hot`].
pub(crate) type HotTower = hotbreaker::service::BreakerService<Ready>;

pub(crate) fn hot_tower(open: Duration) -> HotTower {
    hot_tower_with(open, hotbreaker::telemetry::NoTelemetry)
}

/// [`hot_tower`] with per-call telemetry `T`.
#[allow(dead_code)] // the instruction counts' binary only
pub(crate) fn hot_tower_with<T: hotbreaker::telemetry::Telemetry + Clone>(
    open: Duration,
    telemetry: T,
) -> hotbreaker::service::BreakerService<
    Ready,
    std::sync::Arc<hotbreaker::Breaker>,
    hotbreaker::classify::Errors,
    hotbreaker::service::NoFallback,
    T,
> {
    let breaker = hotbreaker::Breaker::builder()
        .consecutive_failures(5)
        .open_timeout(open)
        .half_open_permits(1)
        .build()
        .unwrap();
    hotbreaker::service::BreakerLayer::new(std::sync::Arc::new(breaker))
        .telemetry(telemetry)
        .layer(Ready)
}

pub(crate) const HOT_TOWER: &str = "hotbreaker-tower";

/// Tells a middleware's rejection from the inner service's error, without formatting.
pub(crate) trait Rejection {
    fn is_rejection(&self) -> bool;
}

impl Rejection for tower_resilience::circuitbreaker::CircuitBreakerError<Boom> {
    fn is_rejection(&self) -> bool {
        matches!(self, Self::OpenCircuit)
    }
}

impl Rejection for hotbreaker::Error<Boom> {
    fn is_rejection(&self) -> bool {
        matches!(self, Self::Rejected(_))
    }
}

/// Drives a `tower::Service` once with a no-op waker: `poll_ready`, `call`, poll the future.
pub(crate) fn tower_call<S>(svc: &mut S, ok: bool) -> Verdict
where
    S: Service<bool, Response = ()>,
    S::Error: Rejection + std::fmt::Debug,
{
    let mut cx = Context::from_waker(Waker::noop());
    let ready = svc.poll_ready(&mut cx);
    assert!(
        matches!(ready, Poll::Ready(_)),
        "not ready without a runtime"
    );
    let mut fut = std::pin::pin!(svc.call(ok));
    match Pin::new(&mut fut).poll(&mut cx) {
        Poll::Ready(Ok(())) => Verdict::Ran,
        Poll::Ready(Err(e)) if e.is_rejection() => Verdict::Rejected,
        Poll::Ready(Err(_)) => Verdict::Ran,
        Poll::Pending => panic!("tower future pending without a runtime"),
    }
}

// ---- gobreaker-style baseline ---------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum GoState {
    Closed,
    Open,
    HalfOpen,
}

struct GoInner {
    state: GoState,
    generation: u64,
    consecutive_failures: u32,
    expiry: Option<Instant>,
}

/// gobreaker's design in Rust: every call takes the mutex twice (before and after the request).
pub(crate) struct GoStyle {
    inner: Mutex<GoInner>,
    timeout: Duration,
}

impl GoStyle {
    fn current(&self, s: &mut GoInner, now: Instant) {
        if s.state == GoState::Open && s.expiry.is_some_and(|e| now >= e) {
            s.state = GoState::HalfOpen;
            s.generation += 1;
            s.consecutive_failures = 0;
            s.expiry = None;
        }
    }

    fn before_request(&self) -> Option<u64> {
        let mut s = self.inner.lock().unwrap();
        self.current(&mut s, Instant::now());
        (s.state != GoState::Open).then_some(s.generation)
    }

    fn after_request(&self, generation: u64, ok: bool) {
        let mut s = self.inner.lock().unwrap();
        let now = Instant::now();
        self.current(&mut s, now);
        if s.generation != generation {
            return;
        }
        if ok {
            s.consecutive_failures = 0;
            if s.state == GoState::HalfOpen {
                s.state = GoState::Closed;
                s.generation += 1;
            }
        } else {
            s.consecutive_failures += 1;
            if s.state == GoState::HalfOpen || s.consecutive_failures >= 5 {
                s.state = GoState::Open;
                s.generation += 1;
                s.consecutive_failures = 0;
                s.expiry = Some(now + self.timeout);
            }
        }
    }
}

impl Contender for GoStyle {
    const NAME: &'static str = "gobreaker-style mutex";
    fn new(open: Duration) -> Self {
        GoStyle {
            inner: Mutex::new(GoInner {
                state: GoState::Closed,
                generation: 0,
                consecutive_failures: 0,
                expiry: None,
            }),
            timeout: open,
        }
    }
    #[inline]
    fn call(&self, ok: bool) -> Verdict {
        match self.before_request() {
            None => Verdict::Rejected,
            Some(generation) => {
                let result: Result<(), Boom> = if ok { Ok(()) } else { Err(Boom) };
                self.after_request(generation, result.is_ok());
                Verdict::Ran
            }
        }
    }
}
