//! A breaker's whole life, on a mock clock: tens of thousands of resets and failed probes, weeks
//! to decades of idle time, a million calls in one bucket. Whatever a long-running, busy service
//! puts through it, old outcomes must stay forgotten, new ones must count, counts must be exact
//! and deadlines must hold. No test sleeps: time is the mock clock's.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hotbreaker::{Breaker, Builder, Cause, Outcome, State};
use quanta::Mock;

const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);
const DAY: Duration = Duration::from_secs(86_400);
const YEAR: Duration = Duration::from_secs(365 * 86_400);

/// A breaker on a mock clock starting at t = 0.
struct Rig {
    breaker: Breaker,
    mock: Arc<Mock>,
}

fn rig(builder: Builder) -> Rig {
    let (clock, mock) = quanta::Clock::mock();
    let breaker = builder
        .clock(clock)
        .stripes(2)
        .build()
        .expect("valid config");
    Rig { breaker, mock }
}

impl Rig {
    fn advance(&self, d: Duration) {
        self.mock.increment(d);
    }

    /// Records `outcome` `n` times, each through a fresh permit; panics if one is refused.
    fn record(&self, outcome: Outcome, n: u64) {
        for i in 0..n {
            match self.breaker.try_acquire() {
                Ok(p) => p.record(outcome),
                Err(r) => panic!("call {i} of {n} ({outcome:?}) refused: {r:?}"),
            }
        }
    }

    fn fail(&self, n: u64) {
        self.record(Outcome::Failure, n);
    }

    fn succeed(&self, n: u64) {
        self.record(Outcome::Success, n);
    }

    /// Fails through fresh permits until the breaker opens; returns the number of failures it
    /// took, or `None` if it is still not Open after `limit`.
    fn failures_to_open(&self, limit: u64) -> Option<u64> {
        for i in 1..=limit {
            match self.breaker.try_acquire() {
                Ok(p) => p.failure(),
                Err(r) => panic!("failure {i} refused while not Open: {r:?}"),
            }
            if self.state() == State::Open {
                return Some(i);
            }
        }
        None
    }

    fn state(&self) -> State {
        self.breaker.state()
    }

    /// (calls, failures) in the window.
    fn window(&self) -> (u64, u64) {
        let w = self.breaker.metrics().window;
        (w.calls, w.failures)
    }

    fn retry_after(&self) -> Option<Duration> {
        self.breaker
            .try_acquire()
            .expect_err("rejected")
            .retry_after()
    }

    /// One failed probe: from Open, wait `open` (the open timeout), probe, fail.
    fn failed_probe(&self, open: Duration) {
        self.advance(open);
        let p = self.breaker.try_acquire().expect("a probe at the deadline");
        assert_eq!(p.state(), State::HalfOpen);
        p.failure();
    }
}

/// Failure rate 50 % over at least 4 calls, in a 10 s window of 1 s buckets (a shared ring of 11 slots).
fn rate_rule() -> Builder {
    rate_rule_over(10 * SEC)
}

/// The same rule over a window of `window` in 10 buckets.
fn rate_rule_over(window: Duration) -> Builder {
    Breaker::builder()
        .failure_rate(0.5)
        .minimum_calls(4)
        .time_window(window, 10)
}

/// The window is empty (what came before `what` is forgotten) and counts what comes after it:
/// the first failure is 1 call of 1 and does not trip (minimum 4), the fourth trips.
fn assert_fresh_window(r: &Rig, what: &str) {
    assert_eq!(r.state(), State::Closed, "{what}: state");
    assert_eq!(r.window(), (0, 0), "{what}: window before any new call");
    r.fail(1);
    assert_eq!(
        (r.state(), r.window()),
        (State::Closed, (1, 1)),
        "{what}: after one new failure, only it counts"
    );
    assert_eq!(
        r.failures_to_open(100_000),
        Some(3),
        "{what}: failures 2 to 4 must trip the 4-call rule at the 4th (None: never tripped)"
    );
}

/// Three failures at t = 0 (not enough to trip), then `n` resets: those failures must not count.
fn check_after_resets(n: u64) {
    let r = rig(rate_rule());
    r.fail(3);
    assert_eq!(r.window(), (3, 3));
    for _ in 0..n {
        r.breaker.reset();
    }
    assert_eq!(r.breaker.metrics().generation, n);
    assert_fresh_window(&r, &format!("after {n} resets"));
}

#[test]
fn failures_before_32_768_resets_do_not_count_again() {
    check_after_resets(32_768);
}

#[test]
fn failures_after_32_767_resets_are_counted_and_trip() {
    check_after_resets(32_767);
}

#[test]
fn window_stays_fresh_across_2_pow_16_and_2_pow_17_resets() {
    for n in [
        16_384, 32_769, 49_152, 65_535, 65_536, 65_537, 131_071, 131_072, 131_073,
    ] {
        check_after_resets(n);
    }
}

/// A count window of 4: old outcomes must stay forgotten across 2^24 resets (and one less).
#[test]
fn count_window_stays_fresh_across_2_pow_24_resets() {
    for n in [(1 << 24) - 1, 1 << 24] {
        let r = rig(Breaker::builder()
            .failure_rate(0.5)
            .minimum_calls(4)
            .count_window(4));
        r.fail(3);
        for _ in 0..n {
            r.breaker.reset();
        }
        assert_fresh_window(&r, &format!("count window, after {n} resets"));
    }
}

/// A 1 ms open timeout, a 10 s window of 1 s buckets: trips, fails `probes` probes in a row (two
/// transitions each), closes on a successful probe; the window must be empty and count again.
/// Over and over, at shifting offsets, until `total` probes (a busy flapping service).
fn check_while_flapping(probes: &[u64], total: u64) {
    let r = rig(rate_rule()
        .open_timeout(MS)
        .half_open_permits(1)
        .half_open_successes(1));
    r.fail(4);
    let mut done = 0;
    for &n in probes.iter().cycle() {
        if done >= total {
            break;
        }
        // Open, from four failures in the window (the last check leaves it so).
        assert_eq!(r.state(), State::Open);
        for _ in 0..n {
            r.failed_probe(MS);
            assert_eq!(r.state(), State::Open);
        }
        done += n;
        r.advance(MS);
        r.succeed(1);
        assert_fresh_window(
            &r,
            &format!("after {done} failed probes, {n} since the last close"),
        );
    }
}

/// A fresh breaker for each count of failed probes around 16 382, the count whose 2 · 16 382 + 3
/// transitions and one lap of the ring would bring a 16-bit `lap + 2 · generation` tag back.
#[test]
fn window_stays_fresh_after_about_16_000_failed_probes() {
    for probes in 16_370..=16_394 {
        check_while_flapping(&[probes], probes);
    }
}

#[test]
fn window_stays_fresh_while_flapping_through_2_pow_17_probes() {
    check_while_flapping(&[997, 1_499, 4_093, 8_191, 12_289], 140_000);
}

/// Three failures at t = 0, then `idle` of silence: they must have left the 10 s window, and
/// new failures must count. A shared ring of 11 one-second slots laps every 11 s.
fn check_after_idle(idle: Duration) {
    let r = rig(rate_rule());
    r.fail(3);
    r.advance(idle);
    assert_fresh_window(&r, &format!("after {idle:?} idle"));
}

#[test]
fn window_stays_fresh_after_2_pow_16_laps_of_idle() {
    // 2^16 laps of 11 s: about 8.3 days.
    let lap = 11 * SEC;
    for laps in [(1 << 16) - 1, 1 << 16, (1 << 16) + 1] {
        for extra in [Duration::ZERO, 500 * MS, 5 * SEC, 9 * SEC] {
            check_after_idle(lap * laps + extra);
        }
    }
}

#[test]
fn window_stays_fresh_after_idle_from_a_week_to_decades() {
    let lap = 11 * SEC;
    for idle in [
        lap * (1 << 15),
        7 * DAY,
        lap * (1 << 17),
        lap * ((1 << 17) + 1),
        lap * (1 << 20),
        YEAR,
        10 * YEAR,
        35 * YEAR,
    ] {
        check_after_idle(idle);
    }
}

/// A busy second: 1 000 000 successes then 32 768 failures in one bucket is a 3.2 % failure
/// rate; a 50 % rule must not trip, and the window must count every call.
#[test]
fn a_million_successes_then_32_768_failures_do_not_trip_a_50_percent_rule() {
    let r = rig(Breaker::builder()
        .failure_rate(0.5)
        .minimum_calls(20)
        .time_window(60 * SEC, 60));
    r.succeed(1_000_000);
    assert_eq!(r.window(), (1_000_000, 0));
    r.fail(32_768);
    assert_eq!(r.state(), State::Closed, "tripped at a true rate of 3.2 %");
    assert_eq!(r.window(), (1_032_768, 32_768));
}

/// 100 000 successes then 23 000 failures in one bucket is 18.7 %: a 40 % rule must not trip.
#[test]
fn successes_then_failures_in_one_bucket_keep_their_true_rate() {
    let r = rig(Breaker::builder()
        .failure_rate(0.4)
        .minimum_calls(20)
        .time_window(10 * SEC, 10));
    r.succeed(100_000);
    r.fail(23_000);
    assert_eq!(r.state(), State::Closed, "tripped at a true rate of 18.7 %");
    assert_eq!(r.window(), (123_000, 23_000));
    // The rule still trips where the true rate reaches 40 %: 100 000 S + 66 667 F.
    assert_eq!(r.failures_to_open(100_000), Some(66_667 - 23_000));
    assert_eq!(r.breaker.metrics().failures, 66_667);
}

/// minimum_calls(100 000), failures only, all in one bucket: it trips at the 100 000th.
#[test]
fn minimum_calls_of_100_000_is_reached_in_one_bucket() {
    let r = rig(Breaker::builder()
        .failure_rate(0.5)
        .minimum_calls(100_000)
        .time_window(60 * SEC, 60));
    assert_eq!(
        r.failures_to_open(500_000),
        Some(100_000),
        "500 000 failures in one bucket (None: never tripped)"
    );
    assert_eq!(r.breaker.metrics().times_opened, 1);
}

/// A late permit (acquired before a reset, recorded after it) must change no window, even while
/// the new generation stores its own outcome in the same slot of a one-outcome count window.
/// Two threads race on it many times, the late one at shifting offsets; each round the window
/// must hold the current generation's failure, never the late success. A race: it may pass on a
/// broken core in any one run, but never fails on a correct one.
#[test]
fn count_window_late_permit_never_overwrites_the_current_outcome() {
    const ROUNDS: u64 = 100_000;
    // Only a consecutive-failures rule that never fires: the window is observed, not tripped on.
    let r = rig(Breaker::builder()
        .consecutive_failures(1_000_000)
        .count_window(1));
    let breaker = &r.breaker;
    let ready = AtomicU64::new(0);
    let go = AtomicU64::new(0);
    let done = AtomicU64::new(0);
    let mut overwritten = Vec::new();
    std::thread::scope(|s| {
        s.spawn(|| {
            for round in 1..=ROUNDS {
                let late = breaker.try_acquire().expect("Closed");
                ready.store(round, Ordering::Release);
                while go.load(Ordering::Acquire) < round {
                    std::hint::spin_loop();
                }
                late.success();
                done.store(round, Ordering::Release);
            }
        });
        for round in 1..=ROUNDS {
            while ready.load(Ordering::Acquire) < round {
                std::hint::spin_loop();
            }
            go.store(round, Ordering::Release);
            for _ in 0..round % 64 {
                std::hint::spin_loop();
            }
            breaker.reset();
            breaker.try_acquire().expect("Closed").failure();
            while done.load(Ordering::Acquire) < round {
                std::hint::spin_loop();
            }
            // The late success either landed before the reset (and was cleared) or is dropped:
            // the window holds this round's failure alone.
            if r.window() != (1, 1) {
                overwritten.push((round, r.window()));
            }
        }
    });
    assert!(
        overwritten.is_empty(),
        "{} of {ROUNDS} rounds lost the current failure to a late store, (round, (calls, failures)): {:?}",
        overwritten.len(),
        &overwritten[..overwritten.len().min(5)]
    );
    let m = breaker.metrics();
    assert_eq!((m.successes, m.failures), (ROUNDS, ROUNDS));
}

/// The deadline is inclusive and exact: opened at t = 0.5 ms with a 60 s open timeout, the
/// breaker rejects until t = 60.0005 s and admits a probe at exactly that instant.
#[test]
fn opened_at_half_a_millisecond_admits_exactly_60_s_later() {
    let r = rig(Breaker::builder()
        .consecutive_failures(1)
        .open_timeout(60 * SEC));
    r.advance(Duration::from_micros(500));
    r.fail(1);
    assert_eq!(r.state(), State::Open);
    assert_eq!(r.retry_after(), Some(60 * SEC));
    r.advance(60 * SEC - Duration::from_nanos(1));
    assert_eq!(r.retry_after(), Some(Duration::from_nanos(1)));
    r.advance(Duration::from_nanos(1));
    let probe = r
        .breaker
        .try_acquire()
        .expect("admitted at opened_at + 60 s");
    assert_eq!(probe.state(), State::HalfOpen);
}

/// Opening after years of uptime (past 2^40 ms, about 34.8 years, up to 99 years): the open
/// timeout still lasts exactly 60 s. Also either side of 2^58 ns (9.1 years), where deadlines
/// leave the 64-bit compact form that answers rejections and only the exact 128-bit cell holds
/// them.
#[test]
fn open_deadline_holds_after_decades_of_uptime() {
    let wrap_40_bit_ms = MS * (1 << 20) * (1 << 20);
    let compact_horizon = Duration::from_nanos(1 << 58);
    for uptime in [
        YEAR,
        compact_horizon - 90 * SEC,
        compact_horizon - 30 * SEC,
        compact_horizon,
        wrap_40_bit_ms - 30 * SEC,
        wrap_40_bit_ms,
        wrap_40_bit_ms + 30 * SEC,
        40 * YEAR,
        99 * YEAR,
    ] {
        let r = rig(Breaker::builder()
            .consecutive_failures(1)
            .open_timeout(60 * SEC)
            .half_open_permits(1)
            .half_open_successes(1));
        r.advance(uptime);
        r.fail(1);
        assert_eq!(r.state(), State::Open, "uptime {uptime:?}");
        assert_eq!(r.retry_after(), Some(60 * SEC), "uptime {uptime:?}");
        r.advance(60 * SEC - MS);
        assert_eq!(r.retry_after(), Some(MS), "uptime {uptime:?}");
        r.advance(MS);
        let probe = r
            .breaker
            .try_acquire()
            .unwrap_or_else(|e| panic!("uptime {uptime:?}: no probe at the deadline: {e:?}"));
        assert_eq!(probe.state(), State::HalfOpen, "uptime {uptime:?}");
        probe.success();
        assert_eq!(r.state(), State::Closed, "uptime {uptime:?}");
        assert_eq!(r.breaker.metrics().times_opened, 1);
    }
}

/// The consecutive-failure run and the open cause survive 2^17 resets: after them, exactly
/// `consecutive_failures` failures trip, with that cause.
#[test]
fn consecutive_failures_trip_exactly_after_2_pow_17_resets() {
    let (clock, mock) = quanta::Clock::mock();
    let causes = Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = Arc::clone(&causes);
    let breaker = Breaker::builder()
        .consecutive_failures(3)
        .clock(clock)
        .on_transition(move |t| {
            if t.to == State::Open {
                sink.lock().unwrap().push((t.cause, t.generation))
            }
        })
        .build()
        .expect("valid config");
    let r = Rig { breaker, mock };
    r.fail(2);
    for _ in 0..(1 << 17) {
        r.breaker.reset();
    }
    assert_eq!(r.failures_to_open(10), Some(3));
    assert_eq!(
        *causes.lock().unwrap(),
        [(Cause::ConsecutiveFailures, (1 << 17) + 1)]
    );
}
