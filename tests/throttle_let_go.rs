//! The throttle lets go once the dependency serves again, whatever the mix of outcomes: Successes,
//! Ignored outcomes (an answer the dependency gave, such as a 404 the caller does not count) and
//! permits dropped without an outcome (a caller that gave up) all count as calls the dependency
//! did not refuse. On a mock clock: 1 000 calls/s, the default 10 s window in 10 buckets, a 20 s
//! outage in which every admitted call fails, then a recovery with the given mix.

use std::sync::Arc;
use std::time::Duration;

use hotbreaker::{Breaker, Throttle};
use quanta::{Clock, Mock};

#[derive(Clone, Copy, Debug)]
enum Answer {
    Success,
    Ignored,
    Dropped,
}

/// For admitted call `i` of the recovery, its answer.
type Mix = fn(u64) -> Answer;

/// The recovery's mixes.
const MIXES: [(&str, Mix); 5] = [
    ("every call succeeds", |_| Answer::Success),
    ("90 % Ignored", |i| {
        if i % 10 == 0 {
            Answer::Success
        } else {
            Answer::Ignored
        }
    }),
    ("half Ignored", |i| {
        if i % 2 == 0 {
            Answer::Success
        } else {
            Answer::Ignored
        }
    }),
    ("every call Ignored", |_| Answer::Ignored),
    ("every permit dropped", |_| Answer::Dropped),
];

fn breaker(k: f64, minimum_calls: u32) -> (Breaker, Arc<Mock>) {
    let (clock, mock) = Clock::mock();
    mock.increment(1);
    let b = Breaker::builder()
        .throttle(Throttle::sre().k(k))
        .minimum_calls(minimum_calls)
        .clock(clock)
        .build()
        .unwrap();
    (b, mock)
}

/// Seconds from the recovery to the last second in which a call was shed (0: none shed after
/// the recovery's first second), and the share shed in the outage's last second.
fn let_go(k: f64, mix: Mix) -> (u64, f64) {
    let (b, mock) = breaker(k, 20);
    let mut admitted = 0u64;
    let (mut last_shed, mut outage_share) = (0u64, 0.0);
    for second in 0..400u64 {
        let mut shed = 0u32;
        for _ in 0..10 {
            for _ in 0..100 {
                match b.try_acquire() {
                    Ok(p) if second < 20 => p.failure(),
                    Ok(p) => {
                        admitted += 1;
                        match mix(admitted) {
                            Answer::Success => p.success(),
                            Answer::Ignored => p.ignore(),
                            Answer::Dropped => drop(p),
                        }
                    }
                    Err(_) => shed += 1,
                }
            }
            mock.increment(Duration::from_millis(100));
        }
        if second == 19 {
            outage_share = f64::from(shed) / 1000.0;
        }
        if second >= 20 && shed > 0 {
            last_shed = second - 20 + 1;
        }
    }
    (last_shed, outage_share)
}

/// The bound docs/throttle.md states, from shedding at the default cap (0.9): a throttle with
/// `k` lets go within this many seconds of the recovery with the default 10 s window: two
/// windows for K ≥ 3, three for K ≥ 2, four for K ≥ 1.5 (measured: 1.1, 1.8 and 3.1 windows).
fn bound_s(k: f64) -> u64 {
    match k {
        k if k >= 3.0 => 20,
        k if k >= 2.0 => 30,
        _ => 40,
    }
}

#[test]
fn the_throttle_lets_go_after_a_recovery_whatever_the_mix() {
    let mut table = String::new();
    for k in [1.5, 2.0, 3.0] {
        for (name, mix) in MIXES {
            let (after, outage) = let_go(k, mix);
            table.push_str(&format!("k {k}, {name}: shed {outage:.2} in the outage, last shed call {after} s after the recovery\n"));
            assert!(
                outage > 0.8,
                "k {k}: shedding at the cap in the outage\n{table}"
            );
            assert!(
                after <= bound_s(k),
                "k {k}, {name}: still shedding {after} s after the recovery (bound {} s)\n{table}",
                bound_s(k)
            );
        }
    }
    println!("{table}");
}

/// With `minimum_calls = 1`, one Failure among Successes makes the probability 1/2 for a moment;
/// the next Success brings it back to 0 (every outcome recomputes it while it sheds), so only a
/// call or two is shed, not half of the rest of the bucket.
#[test]
fn one_failure_with_minimum_calls_1_sheds_a_call_or_two() {
    let (b, mock) = breaker(2.0, 1);
    let mut shed = 0;
    for i in 0..1_000u64 {
        match b.try_acquire() {
            Ok(p) if i == 10 => p.failure(),
            Ok(p) => p.success(),
            Err(_) => shed += 1,
        }
        if i % 100 == 0 {
            mock.increment(Duration::from_millis(1));
        }
    }
    assert!(shed <= 3, "{shed} calls shed after one Failure");
}

/// `k` close to 1 hardly ever lets go (the calls it sheds keep the requests up): refused below
/// 1.5, with an error naming the field.
#[test]
fn a_k_that_would_hardly_let_go_is_refused() {
    for k in [1.0, 1.01, 1.25, 1.49] {
        let err = Breaker::builder()
            .throttle(Throttle::sre().k(k))
            .build()
            .unwrap_err();
        assert_eq!(err.field(), "throttle.k", "k {k}");
    }
    assert!(
        Breaker::builder()
            .throttle(Throttle::sre().k(1.5))
            .build()
            .is_ok()
    );
}
