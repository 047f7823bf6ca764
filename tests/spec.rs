//! The behaviour scenarios behind the crate's guarantees, one test each, on a mock clock starting at t = 0.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hotbreaker::{Backoff, Breaker, Builder, Cause, Error, Outcome, State, Transition};
use quanta::Mock;

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);

/// A breaker on a mock clock, with every transition logged.
struct Rig {
    breaker: Breaker,
    mock: Arc<Mock>,
    log: Arc<Mutex<Vec<Transition>>>,
}

fn rig(builder: Builder) -> Rig {
    let (clock, mock) = quanta::Clock::mock();
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&log);
    let breaker = builder
        .clock(clock)
        .stripes(2)
        .on_transition(move |t| sink.lock().unwrap().push(*t))
        .build()
        .expect("valid config");
    Rig { breaker, mock, log }
}

impl Rig {
    fn advance(&self, d: Duration) {
        self.mock.increment(d);
    }

    /// Records `outcome` through a fresh permit; panics if none is granted.
    fn record(&self, outcome: Outcome) {
        self.breaker
            .try_acquire()
            .expect("a permit")
            .record(outcome);
    }

    fn fail(&self, n: usize) {
        (0..n).for_each(|_| self.record(Outcome::Failure));
    }

    fn succeed(&self, n: usize) {
        (0..n).for_each(|_| self.record(Outcome::Success));
    }

    fn state(&self) -> State {
        self.breaker.state()
    }

    fn last(&self) -> Transition {
        *self.log.lock().unwrap().last().expect("a transition")
    }

    fn causes(&self) -> Vec<Cause> {
        self.log.lock().unwrap().iter().map(|t| t.cause).collect()
    }

    fn retry_after(&self) -> Option<Duration> {
        self.breaker
            .try_acquire()
            .expect_err("rejected")
            .retry_after()
    }
}

fn scenario_1() -> Rig {
    let r = rig(Breaker::builder()
        .consecutive_failures(5)
        .open_timeout(60 * SEC));
    r.fail(4);
    assert_eq!(r.state(), State::Closed);
    r.succeed(1);
    r.fail(4);
    assert_eq!(r.state(), State::Closed);
    r.fail(1);
    assert_eq!(r.state(), State::Open);
    assert_eq!(r.last().cause, Cause::ConsecutiveFailures);
    assert_eq!((r.last().from, r.last().to), (State::Closed, State::Open));
    assert_eq!(r.retry_after(), Some(60 * SEC));
    r
}

#[test]
fn s01_consecutive_trip() {
    scenario_1();
}

#[test]
fn s02_inclusive_deadline() {
    let r = scenario_1();
    r.advance(59_999 * MS);
    assert_eq!(r.retry_after(), Some(MS));
    r.advance(MS);
    let p = r.breaker.try_acquire().expect("permitted at the deadline");
    assert_eq!(r.state(), State::HalfOpen);
    assert_eq!(p.state(), State::HalfOpen);
    assert_eq!(r.last().cause, Cause::OpenDeadlinePassed);
}

#[test]
fn s03_half_open_verdicts() {
    let r = rig(Breaker::builder()
        .consecutive_failures(1)
        .open_timeout(10 * SEC)
        .half_open_permits(3)
        .half_open_successes(3));
    r.fail(1);
    assert_eq!(r.state(), State::Open);
    r.advance(10 * SEC);
    let probes: Vec<_> = (0..3)
        .map(|_| r.breaker.try_acquire().expect("probe"))
        .collect();
    let fourth = r.breaker.try_acquire().expect_err("4th rejected");
    assert_eq!(fourth.state(), State::HalfOpen);
    let mut probes = probes.into_iter();
    probes.next().unwrap().success();
    probes.next().unwrap().success();
    assert_eq!(r.state(), State::HalfOpen);
    probes.next().unwrap().success();
    assert_eq!(r.state(), State::Closed);
    assert_eq!(r.last().cause, Cause::HalfOpenSuccesses);
    assert_eq!(
        r.breaker.metrics().window.calls,
        0,
        "window empty after closing"
    );
    r.fail(1);
    r.advance(10 * SEC);
    r.fail(1);
    assert_eq!(r.state(), State::Open);
    assert_eq!(r.last().cause, Cause::HalfOpenFailure);
}

#[test]
fn s04_dropped_and_ignored_permits_give_slots_back() {
    let r = rig(Breaker::builder()
        .consecutive_failures(1)
        .open_timeout(SEC)
        .half_open_permits(2));
    r.fail(1);
    r.advance(SEC);
    let p1 = r.breaker.try_acquire().unwrap();
    let p2 = r.breaker.try_acquire().unwrap();
    assert!(r.breaker.try_acquire().is_err());
    drop(p1);
    let p3 = r.breaker.try_acquire().expect("p1's slot came back");
    p2.ignore();
    let p4 = r.breaker.try_acquire().expect("p2's slot came back");
    assert!(r.breaker.try_acquire().is_err());
    assert_eq!(r.state(), State::HalfOpen);
    drop((p3, p4));
}

#[test]
fn s05_failure_rate_needs_a_failure_to_trip() {
    let r = rig(Breaker::builder()
        .failure_rate(0.5)
        .minimum_calls(5)
        .time_window(20 * SEC, 20));
    r.fail(3);
    assert_eq!(r.state(), State::Closed);
    r.succeed(2);
    assert_eq!(r.state(), State::Closed, "60 % but only successes since");
    r.fail(1);
    assert_eq!(r.state(), State::Open);
    assert_eq!(r.causes(), [Cause::FailureRate]);
}

#[test]
fn s06_inclusive_rate() {
    let r = rig(Breaker::builder().failure_rate(0.5).minimum_calls(4));
    r.succeed(2);
    r.fail(1);
    assert_eq!(r.state(), State::Closed);
    r.fail(1);
    assert_eq!(r.state(), State::Open);
}

#[test]
fn s07_window_slides() {
    let r = rig(Breaker::builder()
        .failure_rate(0.5)
        .minimum_calls(4)
        .time_window(10 * SEC, 10));
    r.advance(500 * MS);
    r.fail(3);
    r.advance(10_500 * MS); // t = 11 s
    r.fail(1);
    assert_eq!(r.state(), State::Closed);
    assert_eq!(
        r.breaker.metrics().window.calls,
        1,
        "first bucket left the window"
    );
    r.fail(2);
    assert_eq!(r.state(), State::Closed);
    r.fail(1);
    assert_eq!(r.state(), State::Open);
}

#[test]
fn s08_slow_calls() {
    let builder = || {
        Breaker::builder()
            .slow_calls(SEC, 0.5)
            .minimum_calls(4)
            .time_window(60 * SEC, 60)
    };
    let r = rig(builder());
    let p = r.breaker.try_acquire().unwrap();
    r.advance(2 * SEC);
    p.success();
    r.succeed(2);
    let p = r.breaker.try_acquire().unwrap();
    r.advance(1_500 * MS);
    p.success();
    assert_eq!(r.state(), State::Open);
    assert_eq!(r.causes(), [Cause::SlowCallRate]);
    assert_eq!(r.breaker.metrics().slow, 2);

    let r = rig(builder());
    let p = r.breaker.try_acquire().unwrap();
    r.advance(SEC);
    p.success();
    assert_eq!(r.breaker.metrics().slow, 0, "exactly 1 s is not slow");
}

#[test]
fn s09_late_outcome_dropped() {
    let r = rig(Breaker::builder()
        .consecutive_failures(3)
        .open_timeout(10 * SEC)
        .half_open_permits(1));
    let a = r.breaker.try_acquire().unwrap();
    r.fail(3);
    assert_eq!(r.state(), State::Open);
    r.advance(10 * SEC);
    let b = r.breaker.try_acquire().unwrap();
    assert_eq!(r.state(), State::HalfOpen);
    a.success();
    assert_eq!(r.state(), State::HalfOpen, "A is late");
    b.success();
    assert_eq!(r.state(), State::Closed);
    assert_eq!(r.breaker.metrics().successes, 2);
}

#[test]
fn s10_exponential_backoff() {
    let r = rig(Breaker::builder()
        .consecutive_failures(1)
        .half_open_permits(1)
        .backoff(Backoff::exponential(SEC, 2.0, 5 * SEC).without_jitter()));
    r.fail(1);
    assert_eq!(r.retry_after(), Some(SEC));
    for (wait, next) in [(1, 2), (2, 4), (4, 5)] {
        r.advance(wait * SEC);
        r.fail(1);
        assert_eq!(r.retry_after(), Some(next * SEC), "after waiting {wait} s");
    }
    r.advance(5 * SEC);
    r.succeed(1);
    assert_eq!(r.state(), State::Closed);
    r.fail(1);
    assert_eq!(
        r.retry_after(),
        Some(SEC),
        "closing cleared the attempt count"
    );
}

#[test]
fn s11_ignored_does_not_count() {
    let r = rig(Breaker::builder().consecutive_failures(2));
    r.fail(1);
    r.record(Outcome::Ignored);
    r.fail(1);
    assert_eq!(r.state(), State::Open);

    let r = rig(Breaker::builder().failure_rate(0.5).minimum_calls(2));
    (0..10).for_each(|_| r.record(Outcome::Ignored));
    r.succeed(1);
    assert_eq!(r.state(), State::Closed);
    r.fail(1);
    assert_eq!(r.state(), State::Open);
    assert_eq!(r.breaker.metrics().ignored, 10);
}

#[test]
fn s12_manual_controls() {
    let r = rig(Breaker::builder());
    r.breaker.isolate();
    assert_eq!(r.retry_after(), None);
    r.advance(Duration::from_secs(3600));
    let rej = r.breaker.try_acquire().expect_err("still isolated");
    assert_eq!(rej.state(), State::Isolated);
    r.breaker.reset();
    assert_eq!(r.state(), State::Closed);

    r.breaker.disable();
    for _ in 0..100 {
        let p = r
            .breaker
            .try_acquire()
            .expect("disabled lets every call through");
        p.failure();
        assert_eq!(r.state(), State::Disabled);
    }
    let m = r.breaker.metrics();
    assert_eq!((m.failures, m.window.failures), (100, 100));
    r.breaker.reset();
    let m = r.breaker.metrics();
    assert_eq!(m.state, State::Closed);
    assert_eq!(m.window.calls, 0, "empty window after reset");
    assert_eq!(m.failures, 100, "lifetime totals survive");
    assert!(r.causes().iter().all(|c| *c == Cause::Manual));
}

#[test]
fn s13_panic_is_recorded_then_resumed() {
    let r = rig(Breaker::builder().consecutive_failures(1));
    let caught = catch_unwind(AssertUnwindSafe(|| {
        let _: Result<(), Error<()>> = r.breaker.call(|| panic!("boom"));
    }));
    let payload = caught.expect_err("the panic was resumed");
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"boom"));
    assert_eq!(r.state(), State::Open);
    assert_eq!(r.breaker.metrics().failures, 1);
}

#[test]
fn s14_listener_exactly_once() {
    let r = rig(Breaker::builder()
        .consecutive_failures(10)
        .open_timeout(Duration::from_secs(3600)));
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                for _ in 0..100 {
                    let _ = r.breaker.call(|| Err::<(), _>("down"));
                }
            });
        }
    });
    let log = r.log.lock().unwrap().clone();
    assert_eq!(log.len(), 1, "{log:?}");
    assert_eq!((log[0].from, log[0].to), (State::Closed, State::Open));
    let m = r.breaker.metrics();
    assert_eq!(m.failures + m.rejected, 800);
    assert!(m.failures >= 10);
}

#[test]
fn s15_half_open_timeout() {
    let r = rig(Breaker::builder()
        .consecutive_failures(1)
        .open_timeout(SEC)
        .half_open_permits(1)
        .half_open_timeout(5 * SEC));
    r.fail(1);
    r.advance(SEC);
    let probe = r.breaker.try_acquire().unwrap();
    r.advance(5 * SEC);
    let rej = r.breaker.try_acquire().expect_err("timed out");
    assert_eq!(rej.state(), State::Open);
    assert_eq!(r.state(), State::Open);
    assert_eq!(r.last().cause, Cause::HalfOpenTimeout);
    probe.success();
    assert_eq!(r.state(), State::Open, "the held probe is late");
}

#[test]
fn s16_bad_configuration() {
    let cases: Vec<(Builder, &str)> = vec![
        (Breaker::builder().failure_rate(0.0), "failure_rate"),
        (Breaker::builder().failure_rate(1.5), "failure_rate"),
        (Breaker::builder().failure_rate(f64::NAN), "failure_rate"),
        (Breaker::builder().minimum_calls(0), "minimum_calls"),
        (
            Breaker::builder()
                .half_open_permits(3)
                .half_open_successes(4),
            "half_open_successes",
        ),
        (
            Breaker::builder().time_window(Duration::ZERO, 10),
            "time_window",
        ),
        (Breaker::builder().time_window(5 * MS, 10), "time_window"),
    ];
    for (builder, field) in cases {
        let err = builder.build().expect_err(field);
        assert_eq!(err.field(), field);
        assert!(err.to_string().contains(field), "{err}");
    }
}
