//! `Breaker::reconfigure`: what changes, what is kept, what is refused, and callers racing it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use hotbreaker::{Breaker, Builder, Config, State, TimeWindow};

const SEC: Duration = Duration::from_secs(1);

fn mocked(builder: Builder) -> (Breaker, Arc<quanta::Mock>) {
    let (clock, mock) = quanta::Clock::mock();
    (builder.clock(clock).build().unwrap(), mock)
}

#[test]
fn a_lower_threshold_applies_at_the_next_failure_and_the_run_is_kept() {
    let (b, _mock) = mocked(Breaker::builder().consecutive_failures(5));
    for _ in 0..3 {
        b.try_acquire().unwrap().failure();
    }
    b.reconfigure(Config {
        consecutive_failures: Some(4),
        ..Config::default()
    })
    .unwrap();
    assert_eq!(b.state(), State::Closed, "no evaluation without an outcome");
    assert_eq!(b.metrics().failures, 3);
    b.try_acquire().unwrap().failure();
    assert_eq!(b.state(), State::Open, "the 4th failure in a row trips");
}

#[test]
fn the_state_and_its_deadline_are_kept_and_the_new_backoff_applies_to_the_next_opening() {
    let (b, mock) = mocked(
        Breaker::builder()
            .consecutive_failures(1)
            .open_timeout(10 * SEC)
            .half_open_permits(1),
    );
    b.try_acquire().unwrap().failure();
    let generation = b.metrics().generation;
    b.reconfigure(Config {
        consecutive_failures: Some(1),
        open_timeout: Some(3 * SEC),
        half_open_permits: Some(2),
        half_open_successes: Some(2),
        ..Config::default()
    })
    .unwrap();
    let m = b.metrics();
    assert_eq!((m.state, m.generation), (State::Open, generation));
    assert_eq!(
        m.retry_after,
        Some(10 * SEC),
        "the deadline in force stands"
    );
    mock.increment(10 * SEC);
    // Half-open with the new size: two probes.
    let p1 = b.try_acquire().unwrap();
    let p2 = b.try_acquire().unwrap();
    assert!(b.try_acquire().is_err());
    p1.failure();
    drop(p2);
    assert_eq!(
        b.metrics().retry_after,
        Some(3 * SEC),
        "the next opening uses the new backoff"
    );
}

#[test]
fn the_window_keeps_its_counts() {
    let (b, _mock) = mocked(
        Breaker::builder()
            .failure_rate(0.9)
            .minimum_calls(10)
            .time_window(10 * SEC, 10),
    );
    for i in 0..10 {
        let p = b.try_acquire().unwrap();
        if i < 4 { p.failure() } else { p.success() }
    }
    assert_eq!(b.state(), State::Closed);
    // Window settings left out: the shape is kept. 4 of 10 already failed; 0.4 trips at the
    // next failure (5/11 ≥ 0.4).
    b.reconfigure(Config {
        failure_rate: Some(0.4),
        minimum_calls: Some(10),
        ..Config::default()
    })
    .unwrap();
    assert_eq!(b.metrics().window.calls, 10);
    b.try_acquire().unwrap().failure();
    assert_eq!(b.state(), State::Open);
}

#[test]
fn shape_changes_and_bad_values_are_refused_by_name_and_change_nothing() {
    let (b, _mock) = mocked(
        Breaker::builder()
            .consecutive_failures(3)
            .time_window(10 * SEC, 10)
            .stripes(2),
    );
    let before = b.config();
    let cases = [
        (
            Config {
                time_window: Some(TimeWindow {
                    window: 20 * SEC,
                    buckets: 10,
                }),
                ..Config::default()
            },
            "time_window",
        ),
        (
            Config {
                count_window: Some(100),
                ..Config::default()
            },
            "count_window",
        ),
        (
            Config {
                stripes: Some(8),
                ..Config::default()
            },
            "stripes",
        ),
        (
            Config {
                failure_rate: Some(f64::NAN),
                ..Config::default()
            },
            "failure_rate",
        ),
        (
            Config {
                half_open_permits: Some(2),
                half_open_successes: Some(3),
                ..Config::default()
            },
            "half_open_successes",
        ),
        (
            Config {
                open_timeout: Some(SEC),
                backoff: Some(hotbreaker::Backoff::fixed(SEC)),
                ..Config::default()
            },
            "open_timeout",
        ),
    ];
    for (config, field) in cases {
        let err = b.reconfigure(config).unwrap_err();
        assert_eq!(err.field(), field, "{err}");
        assert_eq!(b.config(), before, "a refused config changes nothing");
    }
    // The same shape spelled out is fine.
    b.reconfigure(Config {
        time_window: Some(TimeWindow {
            window: 10 * SEC,
            buckets: 10,
        }),
        stripes: Some(2),
        consecutive_failures: Some(9),
        ..Config::default()
    })
    .unwrap();
    assert_eq!(b.config().consecutive_failures, Some(9));
}

/// Callers race a thread that flips the configuration between A and B 20 000 times. Every
/// Open rejection's `retry_after` (the clock is frozen, so it is exactly the backoff chosen when
/// the breaker opened) is A's or B's, every `config()` read is A or B whole, and no outcome is
/// lost: the lifetime totals equal what the callers recorded.
#[test]
fn callers_racing_reconfigure_see_the_old_or_the_new_config_and_lose_nothing() {
    let a = Config {
        consecutive_failures: Some(2),
        open_timeout: Some(7 * SEC),
        half_open_permits: Some(1),
        ..Config::default()
    };
    let b_config = Config {
        consecutive_failures: Some(3),
        open_timeout: Some(11 * SEC),
        half_open_permits: Some(2),
        half_open_successes: Some(1),
        ..Config::default()
    };
    let (breaker, _mock) = mocked(Breaker::builder().config(a.clone()));
    let breaker = Arc::new(breaker);
    let done = Arc::new(AtomicBool::new(false));
    let recorded = Arc::new(AtomicU64::new(0));
    let threads = 4;
    let start = Arc::new(Barrier::new(threads + 2));
    let mut handles = Vec::new();
    for t in 0..threads as u64 {
        let (breaker, done, recorded, start) = (
            breaker.clone(),
            done.clone(),
            recorded.clone(),
            start.clone(),
        );
        handles.push(std::thread::spawn(move || {
            start.wait();
            let mut x = t.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let mut rejections = 0u64;
            while !done.load(Ordering::Relaxed) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                match breaker.try_acquire() {
                    Ok(p) => {
                        if x % 3 == 0 {
                            p.success()
                        } else {
                            p.failure()
                        }
                        recorded.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(r) => {
                        if r.state() == State::Open {
                            let after = r.retry_after().unwrap();
                            assert!(after == 7 * SEC || after == 11 * SEC, "{after:?}");
                            rejections += 1;
                        }
                        if x % 8 == 0 {
                            breaker.reset();
                        }
                    }
                }
            }
            rejections
        }));
    }
    let reads = Arc::new(AtomicU64::new(0));
    let reader = {
        let (breaker, done, start, reads) =
            (breaker.clone(), done.clone(), start.clone(), reads.clone());
        let (a, b_config) = (a.clone(), b_config.clone());
        std::thread::spawn(move || {
            start.wait();
            while !done.load(Ordering::Relaxed) {
                let c = breaker.config();
                assert!(c == a || c == b_config, "a mixed config: {c:?}");
                reads.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    start.wait();
    // 20 000 reconfigurations, and on until the callers have taken the breaker through Open and
    // the reader has read the config during them (reconfiguring takes about a microsecond: the
    // other threads may not have been scheduled yet).
    let raced = || {
        let m = breaker.metrics();
        m.times_opened > 0 && m.rejected > 0 && reads.load(Ordering::Relaxed) > 0
    };
    let mut i = 0u64;
    while i < 20_000 || (!raced() && i < 100_000_000) {
        let next = if i.is_multiple_of(2) { &b_config } else { &a };
        breaker.reconfigure(next.clone()).unwrap();
        i += 1;
    }
    done.store(true, Ordering::Relaxed);
    let rejections: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    reader.join().unwrap();
    assert!(reads.load(Ordering::Relaxed) > 0);
    let m = breaker.metrics();
    assert_eq!(m.successes + m.failures, recorded.load(Ordering::Relaxed));
    assert!(
        m.times_opened > 0 && rejections > 0,
        "the run went through Open"
    );
}
