//! The breaker on a split clock: frozen upkeeps, exact deadlines, runs across a block's claim.

use std::sync::Arc;
use std::sync::atomic::Ordering as StdOrdering;

use super::*;
use crate::clock::split::SplitClock;

const MS: u64 = 1_000_000;

fn open_for_20ms(clock: &Arc<SplitClock>) -> Breaker {
    let config = Config {
        consecutive_failures: Some(1),
        open_timeout: Some(Duration::from_millis(20)),
        half_open_permits: Some(1),
        ..Config::default()
    };
    let b = Breaker::on_split_clock(&config, Arc::clone(clock));
    b.try_acquire().unwrap().failure();
    assert_eq!(b.state(), State::Open);
    b
}

#[test]
fn a_run_begun_on_a_shared_stripe_goes_on_on_the_block_claimed_mid_run() {
    let clock = Arc::new(SplitClock::default());
    clock.set(1_000 * MS);
    let config = Config {
        consecutive_failures: Some(3),
        // A ring of 251 marks: a block size no other test uses, so no other test takes
        // from or gives to this reserve.
        time_window: Some(crate::TimeWindow {
            window: Duration::from_secs(250),
            buckets: 250,
        }),
        stripes: Some(crate::rules::defaults::MAX_STRIPES),
        ..Config::default()
    };
    let b = Breaker::on_split_clock(&config, Arc::clone(&clock));
    // The thread's first claim would take the home tail.
    let reserve = b.stripes.owned().tail_reserve();
    let mut held = Vec::new();
    while let Some(tail) = reserve.take() {
        held.push(tail);
    }
    for _ in 0..2 {
        b.try_acquire().unwrap().failure();
        clock.advance_real(MS);
    }
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.stripes.owned().taken(), 0, "both on a shared stripe");
    reserve.give(held, usize::MAX);
    b.try_acquire().unwrap().failure();
    assert_eq!(
        b.stripes.owned().taken(),
        1,
        "the third on the thread's own block"
    );
    assert_eq!(
        b.state(),
        State::Open,
        "the third Failure in a row opens, across the two stripes"
    );
}

#[test]
fn a_stopped_upkeep_cannot_keep_the_breaker_open() {
    let clock = Arc::new(SplitClock::default());
    clock.set(1_000 * MS);
    let b = open_for_20ms(&clock);
    // The upkeep stops: quanta's recent time stays at 1 s while real time moves on.
    clock.advance_real(19 * MS);
    assert!(b.try_acquire().is_err(), "before the deadline");
    clock.advance_real(MS);
    let permit = b
        .try_acquire()
        .expect("admitted at the deadline in real time");
    assert_eq!(b.state(), State::HalfOpen);
    permit.success();
    clock.advance_real(300 * MS);
    assert_eq!(b.state(), State::Closed);
}

#[test]
fn a_stopped_upkeep_cannot_stop_the_window_sliding() {
    let clock = Arc::new(SplitClock::default());
    clock.set(0);
    let config = Config {
        failure_rate: Some(0.5),
        minimum_calls: Some(3),
        ..Config::default()
    };
    let b = Breaker::on_split_clock(&config, Arc::clone(&clock));
    for _ in 0..2 {
        b.try_acquire().unwrap().failure();
    }
    assert_eq!(b.metrics().window.failures, 2);
    // Recent time frozen at 0; eleven seconds of real time pass in 1 ms calls.
    for _ in 0..11_000 {
        clock.advance_real(MS);
        b.try_acquire().unwrap().success();
    }
    let w = b.metrics().window;
    assert_eq!(w.failures, 0, "the old failures left the window: {w:?}");
    assert!(w.calls < 11_000, "only the last 10 s count: {w:?}");
    assert_eq!(clock.recent.load(StdOrdering::SeqCst), 0);
}

#[test]
fn an_open_deadline_is_exact_to_the_nanosecond() {
    let clock = Arc::new(SplitClock::default());
    clock.set(MS / 2); // opened at 0.5 ms
    let config = Config {
        consecutive_failures: Some(1),
        open_timeout: Some(Duration::from_secs(60)),
        ..Config::default()
    };
    let b = Breaker::on_split_clock(&config, Arc::clone(&clock));
    b.try_acquire().unwrap().failure();
    clock.set(MS / 2 + 60_000 * MS - 1);
    let r = b.try_acquire().unwrap_err();
    assert_eq!(r.retry_after(), Some(Duration::from_nanos(1)));
    clock.set(MS / 2 + 60_000 * MS);
    assert!(
        b.try_acquire().is_ok(),
        "inclusive deadline at exactly +60 s"
    );
}

const HOUR: u64 = 3_600_000 * MS;

/// The upkeep stops at t = 0, and a thread's next reading of the frozen recent value is one
/// the freeze check skips: failures are still placed and judged on the real clock, so an hour
/// later the old failures are out of the window.
#[test]
fn sparse_calls_on_a_frozen_recent_time_never_trip_on_hour_old_failures() {
    let clock = Arc::new(SplitClock::default());
    clock.set(0);
    let config = Config {
        failure_rate: Some(0.5),
        minimum_calls: Some(4),
        time_window: Some(crate::TimeWindow {
            window: Duration::from_secs(10),
            buckets: 10,
        }),
        ..Config::default()
    };
    let b = Breaker::on_split_clock(&config, Arc::clone(&clock));
    // Each record reads the clock once: fresh, repeat 1 (checked), repeat 2 (checked).
    b.try_acquire().unwrap().failure();
    b.try_acquire().unwrap().failure();
    b.try_acquire().unwrap().success();
    // An hour of real time passes with the upkeep stopped.
    clock.advance_real(HOUR);
    // Repeat 3: not checked. At real time 1 h the window holds this one call only.
    b.try_acquire().unwrap().failure();
    assert_eq!(
        b.state(),
        State::Closed,
        "tripped on failures recorded an hour ago: {:?}",
        b.metrics()
    );
}

/// Same schedule for the half-open timeout: an acquire an hour after a 5 s half-open timeout
/// reopens the breaker instead of admitting another probe.
#[test]
fn sparse_calls_on_a_frozen_recent_time_still_time_half_open_out() {
    let clock = Arc::new(SplitClock::default());
    clock.set(0);
    let config = Config {
        consecutive_failures: Some(1),
        open_timeout: Some(Duration::from_secs(1)),
        half_open_permits: Some(2),
        half_open_successes: Some(2),
        half_open_timeout: Some(Duration::from_secs(5)),
        ..Config::default()
    };
    let b = Breaker::on_split_clock(&config, Arc::clone(&clock));
    b.try_acquire().unwrap().failure(); // clock: fresh
    assert_eq!(b.state(), State::Open);
    clock.advance_real(1_000 * MS); // upkeep already stopped: recent stays 0
    let p1 = b.try_acquire().unwrap(); // real clock for Open
    assert_eq!(b.state(), State::HalfOpen);
    let _ = b.clock.now_ns(); // repeat 1 (checked, lag 1 s -> stale)...
    // ... unless the recent time moves again: the upkeep ticks once, then stops for good.
    clock
        .recent
        .store(1_000 * MS, std::sync::atomic::Ordering::SeqCst);
    let _ = b.clock.now_ns(); // fresh
    let _ = b.clock.now_ns(); // repeat 1, checked, lag 0
    let _ = b.clock.now_ns(); // repeat 2, checked, lag 0
    clock.advance_real(HOUR);
    // Repeat 3, unchecked: the half-open deadline (6 s) passed an hour ago.
    let second = b.try_acquire();
    assert!(
        second.is_err() && b.state() == State::Open,
        "half-open timeout ignored an hour late: state {:?}, second probe admitted: {}",
        b.state(),
        second.is_ok()
    );
    drop(p1);
}

/// A breaker carries its shared stripes' slow-call rings only with a slow-call rule: from its
/// build, or from the reconfiguration that sets one, before the rule is in force.
#[test]
fn the_slow_call_rings_come_with_a_slow_call_rule() {
    use crate::config::SlowCalls;
    let slow = |rule| Config {
        slow_calls: rule,
        stripes: Some(1),
        ..Config::default()
    };
    let clock = Arc::new(SplitClock::default());
    let without = Breaker::on_split_clock(&slow(None), Arc::clone(&clock));
    let rule = Some(SlowCalls::absolute(Duration::from_millis(5), 0.5));
    let with = Breaker::on_split_clock(&slow(rule), Arc::clone(&clock));
    // The default window: a ring of 11 words of 16 bytes, in two 128-byte lines, and the
    // 16-byte pointer to them.
    let ring = 16 + 2 * 128;
    // The stripes alone: the kept settings are smaller without the rule.
    assert_eq!(
        with.stripes.heap_bytes(),
        without.stripes.heap_bytes() + ring
    );
    let idle = without.stripes.heap_bytes();
    without.reconfigure(slow(rule)).unwrap();
    assert_eq!(without.stripes.heap_bytes(), idle + ring);
    // Switched off and on again: the ring stays, and is not made twice.
    without.reconfigure(slow(None)).unwrap();
    without.reconfigure(slow(rule)).unwrap();
    assert_eq!(without.stripes.heap_bytes(), idle + ring);
}

/// A breaker of 256 stripes that trips at a 50 % failure rate (no consecutive rule), on a
/// clock that does not move, after 1 000 Successes of this thread.
fn half_rate_after_1_000_successes() -> Breaker {
    let clock = Arc::new(SplitClock::default());
    clock.set(1_000 * MS);
    let config = Config {
        failure_rate: Some(0.5),
        minimum_calls: Some(100),
        stripes: Some(crate::rules::defaults::MAX_STRIPES),
        ..Config::default()
    };
    let b = Breaker::on_split_clock(&config, clock);
    claim_own_stripe(&b);
    for _ in 0..1_000 {
        b.try_acquire().unwrap().success();
    }
    b
}

/// Takes the calling thread's lines in `b` before it calls: a call's claim only tries the
/// reserve's lock, which the tests running beside this one may hold at that moment (the call
/// would then count on the shared stripe).
fn claim_own_stripe(b: &Breaker) {
    let slot = crate::thread_slot::claimed() as usize;
    let mut tries = 0u32;
    while !b.stripes.owned().claim(slot) {
        tries += 1;
        assert!(tries < 1_000_000, "slot {slot} never got its lines");
        std::thread::yield_now();
    }
}

/// Records Failures on this thread until `b` opens: the Failures in all, counting the
/// `before` already recorded.
fn fail_until_open(b: &Breaker, before: u64) -> u64 {
    let mut failures = before;
    while b.state() == State::Closed {
        b.try_acquire().unwrap().failure();
        failures += 1;
    }
    failures
}

/// The evaluation budget's quota is shared among the stripes that have called, not the
/// `stripes` setting: one thread on a breaker of 256 stripes reads the window once per quota
/// of the whole distance to the threshold, and still trips at exactly the Failure that
/// reaches it. A second thread's first Failure evaluates (its block came after the quota).
#[test]
fn the_quota_is_shared_among_the_stripes_that_called_not_the_stripes_setting() {
    let b = half_rate_after_1_000_successes();
    let round = || b.bookkeeping.evaluation.load().round;
    b.try_acquire().unwrap().failure();
    let first = round();
    // 1 Failure in 1 001 calls: 999 more before 50 % can hold, all on this one stripe.
    for _ in 0..500 {
        b.try_acquire().unwrap().failure();
    }
    assert_eq!(round(), first, "no evaluation within the quota");
    std::thread::scope(|s| {
        s.spawn(|| {
            claim_own_stripe(&b);
            b.try_acquire().unwrap().failure();
        });
    });
    assert_eq!(b.stripes.owned().taken(), 2);
    let second = round();
    assert_eq!(
        second,
        (first + 1) & crate::evaluation::ROUND_MASK,
        "the new stripe's first Failure evaluates"
    );
    // 502 Failures in 1 502 calls: 498 to go, shared between two stripes.
    assert_eq!(
        fail_until_open(&b, 502),
        1_000,
        "opens at exactly the Failure that reaches 50 %"
    );
    // Each quota is half the distance left (two stripes share it, one spends it): about
    // log2(498) evaluations on the way. Divided among 256 stripes it would be one every
    // Failure or two: about 250.
    let evaluations = round().wrapping_sub(second) & crate::evaluation::ROUND_MASK;
    assert!(
        (5..=12).contains(&evaluations),
        "{evaluations} evaluations on the way"
    );
}

/// A stripe whose block is taken after the published quota was computed is not among the
/// stripes it was divided among: its events evaluate until its own evaluation counts it, so
/// the Failures of both stripes together still trip at exactly the one that reaches the rate.
/// Without that, the first stripe would spend its whole quota on top of the second's and
/// open 500 Failures late.
#[test]
fn a_stripe_that_calls_after_the_quota_was_computed_cannot_make_the_trip_late() {
    let b = half_rate_after_1_000_successes();
    // A quota of 999 on this thread's stripe alone.
    b.try_acquire().unwrap().failure();
    std::thread::scope(|s| {
        s.spawn(|| {
            claim_own_stripe(&b);
            for _ in 0..500 {
                b.try_acquire().unwrap().failure();
            }
        });
    });
    assert_eq!(b.state(), State::Closed, "501 Failures in 1 501 calls");
    assert_eq!(
        fail_until_open(&b, 501),
        1_000,
        "opens at exactly the Failure that reaches 50 %"
    );
}
