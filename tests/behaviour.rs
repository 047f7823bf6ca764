//! Behaviour beyond the SPEC scenarios: every configuration error, listener panics, count
//! windows, owned permits, error plumbing, and the breaker's size.

use std::error::Error as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hotbreaker::{Backoff, Breaker, Builder, Error, Outcome, State, Transition};

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);

fn mocked(builder: Builder) -> (Breaker, Arc<quanta::Mock>) {
    let (clock, mock) = quanta::Clock::mock();
    (builder.clock(clock).build().unwrap(), mock)
}

/// Every way to misconfigure, with the field it must name (README's table lists these).
#[test]
fn every_bad_setting_names_its_field_and_range() {
    let year_and_a_day = Duration::from_secs(366 * 24 * 3600);
    let cases: Vec<(Builder, &str, &str)> = vec![
        (
            Breaker::builder().consecutive_failures(0),
            "consecutive_failures",
            "1..=1000000",
        ),
        (
            Breaker::builder().consecutive_failures(u32::MAX),
            "consecutive_failures",
            "1..=1000000",
        ),
        (
            Breaker::builder().failure_rate(0.0),
            "failure_rate",
            "(0, 1]",
        ),
        (
            Breaker::builder().failure_rate(-0.5),
            "failure_rate",
            "(0, 1]",
        ),
        (
            Breaker::builder().failure_rate(1.0001),
            "failure_rate",
            "(0, 1]",
        ),
        (
            Breaker::builder().failure_rate(f64::NAN),
            "failure_rate",
            "(0, 1]",
        ),
        (
            Breaker::builder().failure_rate(f64::INFINITY),
            "failure_rate",
            "(0, 1]",
        ),
        (
            Breaker::builder().minimum_calls(0),
            "minimum_calls",
            "1..=1000000",
        ),
        (
            Breaker::builder().minimum_calls(u32::MAX),
            "minimum_calls",
            "1..=1000000",
        ),
        (
            Breaker::builder().time_window(Duration::ZERO, 10),
            "time_window",
            "(0, 365 days]",
        ),
        (
            Breaker::builder().time_window(year_and_a_day, 10),
            "time_window",
            "(0, 365 days]",
        ),
        (
            Breaker::builder().time_window(SEC, 0),
            "time_window.buckets",
            "1..=256",
        ),
        (
            Breaker::builder().time_window(SEC, 257),
            "time_window.buckets",
            "1..=256",
        ),
        (
            Breaker::builder().time_window(5 * MS, 10),
            "time_window",
            "at least 1 ms",
        ),
        (
            Breaker::builder().count_window(0),
            "count_window",
            "1..=65536",
        ),
        (
            Breaker::builder().count_window(u32::MAX),
            "count_window",
            "1..=65536",
        ),
        (
            Breaker::builder()
                .count_window(10)
                .failure_rate(0.5)
                .minimum_calls(11),
            "minimum_calls",
            "count window",
        ),
        (
            Breaker::builder().slow_calls(Duration::ZERO, 0.5),
            "slow_calls.duration",
            "(0, 365 days]",
        ),
        (
            Breaker::builder().slow_calls(year_and_a_day, 0.5),
            "slow_calls.duration",
            "(0, 365 days]",
        ),
        (
            Breaker::builder().slow_calls(SEC, 0.0),
            "slow_calls.rate",
            "(0, 1]",
        ),
        (
            Breaker::builder().slow_calls(SEC, f64::NAN),
            "slow_calls.rate",
            "(0, 1]",
        ),
        (
            Breaker::builder().open_timeout(Duration::ZERO),
            "open_timeout",
            "[1 ms, 365 days]",
        ),
        (
            Breaker::builder().open_timeout(year_and_a_day),
            "open_timeout",
            "[1 ms, 365 days]",
        ),
        (
            Breaker::builder().backoff(Backoff::exponential(Duration::ZERO, 2.0, SEC)),
            "backoff.base",
            "[1 ms, 365 days]",
        ),
        (
            Breaker::builder().backoff(Backoff::exponential(SEC, 0.5, SEC)),
            "backoff.multiplier",
            ">= 1",
        ),
        (
            Breaker::builder().backoff(Backoff::exponential(SEC, f64::NAN, SEC)),
            "backoff.multiplier",
            ">= 1",
        ),
        (
            Breaker::builder().backoff(Backoff::exponential(SEC, f64::INFINITY, SEC)),
            "backoff.multiplier",
            ">= 1",
        ),
        (
            Breaker::builder().backoff(Backoff::exponential(2 * SEC, 2.0, SEC)),
            "backoff.max",
            "at least backoff.base",
        ),
        (
            Breaker::builder().backoff(Backoff::exponential(SEC, 2.0, year_and_a_day)),
            "backoff.max",
            "[1 ms, 365 days]",
        ),
        (
            Breaker::builder().half_open_permits(0),
            "half_open_permits",
            "1..=1023",
        ),
        (
            Breaker::builder().half_open_permits(u32::MAX),
            "half_open_permits",
            "1..=1023",
        ),
        (
            Breaker::builder().half_open_successes(0),
            "half_open_successes",
            "1..=half_open_permits",
        ),
        (
            Breaker::builder()
                .half_open_permits(3)
                .half_open_successes(4),
            "half_open_successes",
            "1..=half_open_permits",
        ),
        (
            Breaker::builder().half_open_timeout(Duration::ZERO),
            "half_open_timeout",
            "[1 ms, 365 days]",
        ),
        (Breaker::builder().stripes(0), "stripes", "1..=256"),
        (Breaker::builder().stripes(u32::MAX), "stripes", "1..=256"),
    ];
    for (builder, field, range) in cases {
        let err = builder.build().expect_err(field);
        assert_eq!(err.field(), field, "{err}");
        let text = err.to_string();
        assert!(text.contains(field) && text.contains(range), "{text}");
    }
}

#[test]
fn extreme_but_valid_settings_build() {
    for builder in [
        Breaker::builder().time_window(MS, 1),
        Breaker::builder().time_window(Duration::from_secs(256), 256),
        Breaker::builder()
            .count_window(1)
            .minimum_calls(1)
            .failure_rate(1.0),
        Breaker::builder()
            .half_open_permits(1023)
            .half_open_successes(1023),
        Breaker::builder().stripes(256),
        Breaker::builder().failure_rate(1e-300),
    ] {
        builder.build().expect("valid");
    }
}

#[test]
fn a_panicking_listener_leaves_the_breaker_consistent() {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&calls);
    let (b, mock) = mocked(
        Breaker::builder()
            .consecutive_failures(1)
            .open_timeout(SEC)
            .half_open_permits(1)
            .on_transition(|_| panic!("listener bug"))
            .on_transition(move |_| {
                seen.fetch_add(1, Ordering::Relaxed);
            }),
    );
    b.try_acquire().unwrap().failure();
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.try_acquire().unwrap_err().retry_after(), Some(SEC));
    mock.increment(SEC);
    b.try_acquire().unwrap().success();
    assert_eq!(b.state(), State::Closed);
    assert_eq!(
        calls.load(Ordering::Relaxed),
        3,
        "later listeners still run"
    );
    assert_eq!(b.metrics().times_opened, 1);
}

#[test]
fn a_listener_may_read_the_breaker() {
    // gobreaker calls its listener under its mutex, so this deadlocks there.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&seen);
    let slot: Arc<Mutex<Option<Arc<Breaker>>>> = Arc::new(Mutex::new(None));
    let reader = Arc::clone(&slot);
    let b = Arc::new(
        Breaker::builder()
            .consecutive_failures(1)
            .on_transition(move |t: &Transition| {
                if let Some(b) = reader.lock().unwrap().as_ref() {
                    sink.lock()
                        .unwrap()
                        .push((t.to, b.state(), b.metrics().times_opened));
                }
            })
            .build()
            .unwrap(),
    );
    *slot.lock().unwrap() = Some(Arc::clone(&b));
    b.try_acquire().unwrap().failure();
    assert_eq!(*seen.lock().unwrap(), [(State::Open, State::Open, 1)]);
    slot.lock().unwrap().take();
}

#[test]
fn count_window_trips_on_the_last_n_outcomes_only() {
    let (b, _) = mocked(
        Breaker::builder()
            .count_window(4)
            .failure_rate(0.5)
            .minimum_calls(4),
    );
    for o in [
        Outcome::Failure,
        Outcome::Success,
        Outcome::Success,
        Outcome::Success,
    ] {
        b.try_acquire().unwrap().record(o);
    }
    // The first failure falls out as the 5th outcome arrives: 1 failure in the last 4.
    b.try_acquire().unwrap().failure();
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.metrics().window.calls, 4);
    b.try_acquire().unwrap().failure();
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.metrics().failures, 3);
    assert_eq!(b.metrics().successes, 3);
}

#[test]
fn count_window_of_one() {
    let (b, _) = mocked(
        Breaker::builder()
            .count_window(1)
            .failure_rate(1.0)
            .minimum_calls(1),
    );
    b.try_acquire().unwrap().success();
    b.try_acquire().unwrap().success();
    assert_eq!(b.metrics().window.calls, 1);
    b.try_acquire().unwrap().failure();
    assert_eq!(b.state(), State::Open);
}

#[test]
fn window_of_one_millisecond_and_many_buckets_still_slide() {
    let (b, mock) = mocked(
        Breaker::builder()
            .time_window(MS, 1)
            .failure_rate(0.5)
            .minimum_calls(2),
    );
    b.try_acquire().unwrap().failure();
    mock.increment(MS);
    b.try_acquire().unwrap().failure();
    assert_eq!(
        b.state(),
        State::Closed,
        "the first failure left the 1 ms window"
    );
    b.try_acquire().unwrap().success();
    b.try_acquire().unwrap().failure();
    assert_eq!(b.state(), State::Open);

    let (b, mock) = mocked(
        Breaker::builder()
            .time_window(Duration::from_millis(1024), 256)
            .failure_rate(0.5)
            .minimum_calls(3),
    );
    for _ in 0..2 {
        b.try_acquire().unwrap().failure();
        mock.increment(600 * MS);
    }
    // t = 1.2 s: the failure at 0 s has left, the one at 0.6 s has not.
    assert_eq!(b.metrics().window.calls, 1);
    b.try_acquire().unwrap().success();
    b.try_acquire().unwrap().failure();
    assert_eq!(b.state(), State::Open);
}

#[test]
fn custom_rule_trips() {
    let (b, _) = mocked(Breaker::builder().trip_when(|w| w.failures >= 2 && w.successes() == 0));
    b.try_acquire().unwrap().failure();
    assert_eq!(b.state(), State::Closed);
    b.try_acquire().unwrap().failure();
    assert_eq!(b.state(), State::Open);
}

#[test]
fn configuring_one_rule_replaces_the_default_rules() {
    let (b, _) = mocked(Breaker::builder().failure_rate(0.9).minimum_calls(100));
    for _ in 0..50 {
        b.try_acquire().unwrap().failure();
    }
    assert_eq!(b.state(), State::Closed, "no default 5-consecutive rule");
    let (b, _) = mocked(Breaker::builder());
    for _ in 0..5 {
        b.try_acquire().unwrap().failure();
    }
    assert_eq!(b.state(), State::Open, "default: 5 consecutive failures");
}

#[test]
fn default_rate_rule_needs_twenty_calls() {
    let (b, _) = mocked(Breaker::builder());
    for i in 0..20 {
        assert_eq!(b.state(), State::Closed, "{i} calls are too few");
        let o = if i % 2 == 1 {
            Outcome::Failure
        } else {
            Outcome::Success
        };
        b.try_acquire().unwrap().record(o);
    }
    assert_eq!(b.state(), State::Open, "10 failures in 20 calls");
    assert_eq!(b.metrics().window.calls, 20);
}

#[test]
fn default_backoff_is_jittered_exponential_from_five_seconds() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&log);
    let (b, mock) = mocked(
        Breaker::builder()
            .consecutive_failures(1)
            .half_open_permits(1)
            .on_transition(move |t| sink.lock().unwrap().push(t.cause)),
    );
    b.try_acquire().unwrap().failure();
    let first = b.try_acquire().unwrap_err().retry_after().unwrap();
    assert!((2500 * MS..=5 * SEC).contains(&first), "{first:?}");
    mock.increment(first);
    b.try_acquire().unwrap().failure();
    let second = b.try_acquire().unwrap_err().retry_after().unwrap();
    assert!((5 * SEC..=10 * SEC).contains(&second), "{second:?}");
}

#[test]
fn owned_permits_release_on_drop() {
    let (b, mock) = mocked(
        Breaker::builder()
            .consecutive_failures(1)
            .open_timeout(SEC)
            .half_open_permits(1),
    );
    let b = Arc::new(b);
    b.try_acquire_owned().unwrap().failure();
    mock.increment(SEC);
    let probe = b.try_acquire_owned().unwrap();
    assert_eq!(probe.state(), State::HalfOpen);
    assert!(b.try_acquire_owned().is_err());
    drop(probe);
    b.try_acquire_owned().unwrap().success();
    assert_eq!(b.state(), State::Closed);
    assert_eq!(Arc::strong_count(&b), 1, "no Arc leaked by permits");
}

#[test]
fn errors_carry_state_retry_after_and_source() {
    let (b, _) = mocked(
        Breaker::builder()
            .consecutive_failures(1)
            .open_timeout(30 * SEC),
    );
    let inner = b.call(|| Err::<(), _>(std::io::Error::other("disk on fire")));
    let err = inner.unwrap_err();
    assert_eq!(err.source().unwrap().to_string(), "disk on fire");
    let rejected = b.call(|| Ok::<(), std::io::Error>(())).unwrap_err();
    match &rejected {
        Error::Rejected(r) => {
            assert_eq!(r.state(), State::Open);
            assert_eq!(r.retry_after(), Some(30 * SEC));
        }
        _ => panic!("expected a rejection"),
    }
    assert_eq!(
        rejected.to_string(),
        "circuit breaker is open; retry after 30s"
    );
    // Each message once: the rejection's text is the error's own, with no source to repeat it;
    // the call's own error is the source of `Inner`, not part of its text.
    assert!(rejected.source().is_none());
    assert_eq!(err.to_string(), "the protected call failed");
    assert_eq!(b.metrics().rejected, 1);
}

#[test]
fn metrics_show_retry_after_and_the_tripping_window_while_open() {
    let (b, mock) = mocked(
        Breaker::builder()
            .consecutive_failures(3)
            .open_timeout(10 * SEC),
    );
    b.try_acquire().unwrap().success();
    for _ in 0..3 {
        b.try_acquire().unwrap().failure();
    }
    mock.increment(4 * SEC);
    let m = b.metrics();
    assert_eq!(m.state, State::Open);
    assert_eq!(m.retry_after, Some(6 * SEC));
    assert_eq!((m.window.calls, m.window.failures), (4, 3));
    assert_eq!(m.failure_rate(), 0.75);
    assert_eq!(m.times_opened, 1);
}

#[test]
fn a_disabled_breaker_never_trips_and_reset_closes_it() {
    let (b, _) = mocked(Breaker::builder().consecutive_failures(1));
    b.disable();
    for _ in 0..10 {
        b.try_acquire().unwrap().failure();
    }
    assert_eq!(b.state(), State::Disabled);
    b.reset();
    b.try_acquire().unwrap().failure();
    assert_eq!(b.state(), State::Open);
}

#[test]
fn late_closed_permits_after_reset_touch_no_window() {
    let (b, _) = mocked(Breaker::builder().failure_rate(0.5).minimum_calls(2));
    let late: Vec<_> = (0..5).map(|_| b.try_acquire().unwrap()).collect();
    b.reset();
    late.into_iter().for_each(|p| p.failure());
    let m = b.metrics();
    assert_eq!(m.window.calls, 0);
    assert_eq!(m.failures, 5, "still counted for life");
    assert_eq!(m.state, State::Closed);
}

#[test]
fn breaker_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Breaker>();
    check::<hotbreaker::OwnedPermit>();
}

/// Prints the numbers the README quotes; asserts the 9 KiB budget.
#[test]
fn size_of_a_default_breaker() {
    let b = Breaker::builder().stripes(8).build().unwrap();
    let inline = std::mem::size_of::<Breaker>();
    let heap = b.heap_bytes();
    println!("size_of::<Breaker>() = {inline} B, heap (8 stripes, 10 buckets) = {heap} B");
    assert!(inline + heap <= 9216, "{inline} + {heap}");
    let small = Breaker::builder().stripes(1).build().unwrap();
    println!("with stripes(1): heap = {} B", small.heap_bytes());
    assert_eq!(small.stripes(), 1);
    assert_eq!(Breaker::builder().stripes(3).build().unwrap().stripes(), 4);
}
