//! Arbitrary values for every builder method: `build()` never panics, and every error names a
//! field and what it accepts.
#![no_main]

use std::time::Duration;

use arbitrary::Arbitrary;
use hotbreaker::{Backoff, Breaker, Throttle};
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
enum Setting {
    Consecutive(u32),
    FailureRate(f64),
    MinimumCalls(u32),
    TimeWindow(u64, u32, u32),
    CountWindow(u32),
    SlowCalls(u64, u32, f64),
    OpenTimeout(u64, u32),
    Exponential(u64, f64, u64, bool),
    HalfOpenPermits(u32),
    HalfOpenSuccesses(u32),
    HalfOpenTimeout(u64, u32),
    Stripes(u32),
    TripWhen(u64),
    Throttle(f64, f64),
}

fn duration(secs: u64, nanos: u32) -> Duration {
    Duration::new(secs, nanos % 1_000_000_000)
}

const FIELDS: &[&str] = &[
    "consecutive_failures",
    "failure_rate",
    "minimum_calls",
    "time_window",
    "time_window.buckets",
    "count_window",
    "slow_calls.duration",
    "slow_calls.rate",
    "open_timeout",
    "backoff.base",
    "backoff.multiplier",
    "backoff.max",
    "half_open_permits",
    "half_open_successes",
    "half_open_timeout",
    "stripes",
    "throttle",
    "throttle.k",
    "throttle.max_rejection",
];

fuzz_target!(|settings: Vec<Setting>| {
    let mut b = Breaker::builder().clock(quanta::Clock::mock().0);
    for s in settings {
        b = match s {
            Setting::Consecutive(n) => b.consecutive_failures(n),
            Setting::FailureRate(r) => b.failure_rate(r),
            Setting::MinimumCalls(n) => b.minimum_calls(n),
            Setting::TimeWindow(s, n, k) => b.time_window(duration(s, n), k),
            Setting::CountWindow(n) => b.count_window(n),
            Setting::SlowCalls(s, n, r) => b.slow_calls(duration(s, n), r),
            Setting::OpenTimeout(s, n) => b.open_timeout(duration(s, n)),
            Setting::Exponential(s, m, max, jitter) => {
                let e = Backoff::exponential(Duration::from_nanos(s), m, Duration::from_nanos(max));
                b.backoff(if jitter { e.with_jitter() } else { e })
            }
            Setting::HalfOpenPermits(n) => b.half_open_permits(n),
            Setting::HalfOpenSuccesses(n) => b.half_open_successes(n),
            Setting::HalfOpenTimeout(s, n) => b.half_open_timeout(duration(s, n)),
            Setting::Stripes(n) => b.stripes(n),
            Setting::TripWhen(k) => b.trip_when(move |w| w.failures >= k),
            Setting::Throttle(k, max) => b.throttle(Throttle::sre().k(k).max_rejection(max)),
        };
    }
    match b.build() {
        Ok(breaker) => {
            // A valid breaker works: a few calls through every state it reaches.
            for i in 0..50u32 {
                let _ = breaker.call(|| if i % 3 == 0 { Err(()) } else { Ok(()) });
            }
            let _ = breaker.metrics();
        }
        Err(e) => {
            assert!(FIELDS.contains(&e.field()), "unknown field in {e}");
            let text = e.to_string();
            assert!(text.contains(e.field()) && !e.expected().is_empty(), "{text}");
        }
    }
});
