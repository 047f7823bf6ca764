//! `reconfigure` voids the window-evaluation budget published under the old rules
//! (`src/evaluation.rs`): after a rule is made stricter or added, the Failure that brings the
//! window to the new threshold trips, exactly, on one thread.

use std::time::Duration;

use hotbreaker::{Breaker, Config, State};

fn scenario(b: &Breaker, tighter: Config) -> Option<u32> {
    for _ in 0..100 {
        b.try_acquire().unwrap().success();
    }
    // One Failure: an exact evaluation at 1/101 against 90 %: a large quota is published.
    b.try_acquire().unwrap().failure();
    assert_eq!(b.state(), State::Closed);
    b.reconfigure(tighter).unwrap();
    // Under the new rule (5 %, minimum 10) the window already holds 1 Failure in 101 calls;
    // every further Failure is a call of a window the new rule judges.
    for i in 1..=200u32 {
        b.try_acquire().unwrap().failure();
        if b.state() != State::Closed {
            return Some(i);
        }
    }
    None
}

fn expected_trip(calls_before: u64, failures_before: u64, rate: f64) -> u32 {
    // The first i at which (failures_before + i) / (calls_before + i) >= rate.
    (1..)
        .find(|&i: &u32| {
            (failures_before + u64::from(i)) as f64 / (calls_before + u64::from(i)) as f64 >= rate
        })
        .unwrap()
}

#[test]
fn reconfigure_to_a_stricter_failure_rate_trips_at_the_next_failure_that_reaches_it_time_window() {
    let (clock, _mock) = quanta::Clock::mock(); // time does not move: one bucket interval
    let b = Breaker::builder()
        .failure_rate(0.9)
        .minimum_calls(10)
        .time_window(Duration::from_secs(10), 10)
        .clock(clock)
        .build()
        .unwrap();
    let tighter = Config {
        failure_rate: Some(0.05),
        minimum_calls: Some(10),
        time_window: Some(hotbreaker::TimeWindow {
            window: Duration::from_secs(10),
            buckets: 10,
        }),
        ..Config::default()
    };
    let want = expected_trip(101, 1, 0.05);
    let got = scenario(&b, tighter);
    assert_eq!(got, Some(want), "stripes {}", b.stripes());
}

#[test]
fn reconfigure_to_a_stricter_failure_rate_trips_at_the_next_failure_that_reaches_it_count_window() {
    let b = Breaker::builder()
        .failure_rate(0.9)
        .minimum_calls(10)
        .count_window(200)
        .build()
        .unwrap();
    let tighter = Config {
        failure_rate: Some(0.05),
        minimum_calls: Some(10),
        count_window: Some(200),
        ..Config::default()
    };
    let want = expected_trip(101, 1, 0.05);
    let got = scenario(&b, tighter);
    assert_eq!(got, Some(want), "stripes {}", b.stripes());
}

/// A rule added by reconfigure where none read the window before: does the first Failure
/// evaluate? (failure_rate added to a consecutive-only breaker.)
#[test]
fn reconfigure_adding_a_failure_rate_trips_at_the_failure_that_reaches_it() {
    let (clock, _mock) = quanta::Clock::mock();
    let b = Breaker::builder()
        .consecutive_failures(1000)
        .failure_rate(1.0)
        .minimum_calls(1000)
        .time_window(Duration::from_secs(10), 10)
        .clock(clock)
        .build()
        .unwrap();
    let tighter = Config {
        consecutive_failures: Some(1000),
        failure_rate: Some(0.05),
        minimum_calls: Some(10),
        time_window: Some(hotbreaker::TimeWindow {
            window: Duration::from_secs(10),
            buckets: 10,
        }),
        ..Config::default()
    };
    let want = expected_trip(101, 1, 0.05);
    let got = scenario(&b, tighter);
    assert_eq!(got, Some(want), "stripes {}", b.stripes());
}

/// Count window: its evaluation is valid for the whole generation, so without the voiding the
/// old quota would last until spent (about cap × old rate / stripes Failures).
#[test]
fn count_window_outage_after_reconfigure_opens_at_the_new_threshold() {
    let b = Breaker::builder()
        .failure_rate(1.0)
        .minimum_calls(100)
        .count_window(100)
        .build()
        .unwrap();
    b.try_acquire().unwrap().success();
    // Evaluation: 100 % needs the Success evicted, 99 more events: quota 50 with 2 stripes.
    b.try_acquire().unwrap().failure();
    b.reconfigure(Config {
        failure_rate: Some(0.5),
        minimum_calls: Some(10),
        count_window: Some(100),
        ..Config::default()
    })
    .unwrap();
    let mut opened_at = None;
    for i in 1..=1_000_000u32 {
        b.try_acquire().unwrap().failure();
        if b.state() != State::Closed {
            opened_at = Some(i);
            break;
        }
    }
    // S, F, then 8 Failures: 10 calls, 9 Failures: 50 % with minimum 10 holds at the 8th.
    assert_eq!(opened_at, Some(8), "stripes {}", b.stripes());
}
