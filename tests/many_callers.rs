//! Many callers on one breaker, more threads than cores: 16 and 32 threads on whatever this
//! machine has (2 cores in CI). The consecutive-failure rule must mean what it says however the
//! threads interleave: no trip at 1 % Failures, and an outage opens within the bound stated in
//! `docs/internals.md`, "Design notes", `consecutive.rs` (at most `3 × threads + k` Failures
//! counted before the trip).
//!
//! Counts, not time: each thread makes a fixed number of calls.

use std::sync::Barrier;
use std::time::Duration;

use hotbreaker::{Breaker, State};

const MONTH: Duration = Duration::from_secs(30 * 24 * 3600);

/// Calls per configuration, all threads together: 10^8 over the four configurations below,
/// `MANY_CALLERS_CALLS` to change it.
fn calls_per_configuration() -> u64 {
    std::env::var("MANY_CALLERS_CALLS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(25_000_000)
}

/// `threads` threads share one breaker with `consecutive_failures(k)`; each fails every 100th
/// call, out of phase with the others. Returns how many times it opened.
fn one_percent(threads: u64, k: u32) -> u64 {
    let b = Breaker::builder()
        .consecutive_failures(k)
        .open_timeout(Duration::from_secs(3600))
        .build()
        .unwrap();
    let per_thread = calls_per_configuration() / threads;
    let start = Barrier::new(threads as usize);
    std::thread::scope(|s| {
        for t in 0..threads {
            let (b, start) = (&b, &start);
            s.spawn(move || {
                start.wait();
                for i in 0..per_thread {
                    let Ok(p) = b.try_acquire() else { continue };
                    if (i + 7 * t) % 100 == 0 {
                        p.failure();
                    } else {
                        p.success();
                    }
                }
            });
        }
    });
    let m = b.metrics();
    assert_eq!(
        m.successes + m.failures + m.rejected,
        per_thread * threads,
        "every call accounted for"
    );
    m.times_opened
}

#[test]
fn one_percent_failures_never_trip_consecutive_3_or_5_over_16_or_32_threads() {
    for threads in [16, 32] {
        for k in [3, 5] {
            let opened = one_percent(threads, k);
            assert_eq!(
                opened, 0,
                "consecutive_failures({k}) opened {opened} times at 1 % over {threads} threads"
            );
        }
    }
}

/// Every thread succeeds for a while, all wait at a barrier, then every call fails: the
/// breaker opens, and the Failures it let through are at most the bound (`3 × threads + k`
/// counted before the trip) plus one call in flight per other thread.
#[test]
fn an_outage_opens_within_the_bound_over_16_and_32_threads() {
    for threads in [16u64, 32] {
        for k in [3u32, 5] {
            for _ in 0..5 {
                let b = Breaker::builder()
                    .consecutive_failures(k)
                    .open_timeout(Duration::from_secs(3600))
                    .build()
                    .unwrap();
                let outage = Barrier::new(threads as usize);
                std::thread::scope(|s| {
                    for _ in 0..threads {
                        let (b, outage) = (&b, &outage);
                        s.spawn(move || {
                            for _ in 0..2_000 {
                                b.try_acquire().unwrap().success();
                            }
                            outage.wait();
                            while let Ok(p) = b.try_acquire() {
                                p.failure();
                            }
                        });
                    }
                });
                let m = b.metrics();
                assert_eq!(m.state, State::Open);
                assert_eq!(m.times_opened, 1);
                let bound = 3 * threads + u64::from(k) + (threads - 1);
                assert!(
                    m.failures <= bound,
                    "{threads} threads, k {k}: {} Failures before the breaker opened (bound {bound})",
                    m.failures
                );
            }
        }
    }
}

/// One thread: the rule is exact (the k-th Failure in a row opens it), whatever the stripes.
#[test]
fn one_thread_opens_at_exactly_the_kth_failure() {
    for stripes in [1, 4, 64] {
        for k in 2..8u32 {
            let b = Breaker::builder()
                .consecutive_failures(k)
                .stripes(stripes)
                .build()
                .unwrap();
            for round in 0..3 {
                for _ in 0..round {
                    b.try_acquire().unwrap().success();
                }
                // k − 1 Failures, a Success, k − 1 again: still Closed; one more opens it.
                for _ in 0..2 {
                    for _ in 1..k {
                        b.try_acquire().unwrap().failure();
                        assert_eq!(b.state(), State::Closed, "stripes {stripes}, k {k}");
                    }
                    b.try_acquire().unwrap().success();
                }
                for _ in 1..k {
                    b.try_acquire().unwrap().failure();
                }
                assert_eq!(b.state(), State::Closed, "stripes {stripes}, k {k}");
                b.try_acquire().unwrap().failure();
                assert_eq!(
                    b.state(),
                    State::Open,
                    "stripes {stripes}, k {k}, round {round}"
                );
                b.reset();
            }
        }
    }
}

/// Another thread's Successes at an earlier instant of the recent time (a millisecond or a
/// month earlier), then one thread's Failures: they open the breaker at exactly the `k`-th,
/// their stamps order them after every Success. With the clock stopped (the same instant)
/// nothing orders them, and the rule may open later (by the bound above).
#[test]
fn failures_after_another_threads_earlier_successes_open_at_exactly_the_kth() {
    for k in 2..8u32 {
        for gap in [Some(Duration::from_millis(1)), Some(MONTH), None] {
            let (clock, mock) = quanta::Clock::mock();
            mock.increment(Duration::from_secs(1));
            let b = Breaker::builder()
                .consecutive_failures(k)
                .open_timeout(Duration::from_secs(3600))
                // The other tests' threads, running meanwhile, hold thread numbers, and their
                // breakers take from the reserve of the default block size: as many stripes as
                // the pool has numbers, and a block size of its own, so the other thread counts
                // on a stripe of its own (a thread on the shared stripe leaves no stamps, and the
                // rule then opens by the bound above).
                .stripes(256)
                .time_window(Duration::from_secs(37), 37)
                .clock(clock)
                .build()
                .unwrap();
            // This thread first, so that the other's stripe is another one.
            b.try_acquire().unwrap().success();
            std::thread::scope(|s| {
                s.spawn(|| {
                    for _ in 0..3 {
                        b.try_acquire().unwrap().success();
                    }
                });
            });
            if let Some(gap) = gap {
                mock.increment(gap);
            }
            let mut failures = 0;
            while b.state() == State::Closed {
                b.try_acquire().unwrap().failure();
                failures += 1;
            }
            if gap.is_some() {
                assert_eq!(failures, k, "k {k}, {gap:?}");
            } else {
                assert!(failures >= k && failures <= 3 * 2 + k, "k {k}: {failures}");
            }
        }
    }
}
