//! Latency-relative slow calls on a mock clock: calls issued at a fixed rate whatever their
//! latency (an open loop, as a server's callers are), completing when their latency has passed.
//! No sleeping.
use std::sync::Arc;
use std::time::Duration;

use hotbreaker::{Breaker, Builder, Config, Permit, SlowCalls, State};

const MS: u64 = 1_000_000;
/// One call every 10 ms: 100 calls a second.
const TICK: u64 = 10 * MS;

fn mocked(builder: Builder) -> (Breaker, Arc<quanta::Mock>) {
    let (clock, mock) = quanta::Clock::mock();
    (builder.clock(clock).build().unwrap(), mock)
}

/// The default window (10 s in 10 buckets, so one latency sample a second), slow when over
/// 4 × the typical latency and over 1 ms, tripping at a slow-call rate of 0.5.
fn relative() -> Builder {
    Breaker::builder()
        .slow_call_rule(SlowCalls::relative(4.0, 0.5).min_duration(Duration::from_millis(1)))
        .minimum_calls(20)
}

/// What a run saw.
#[derive(Debug)]
struct Run {
    /// When the breaker was first seen Open, in ms since the run began.
    opened_at_ms: Option<u64>,
    /// Slow calls counted in each second.
    slow_per_second: Vec<u64>,
}

/// Issues a call every [`TICK`] for `secs` seconds; the call issued at `t` ms takes
/// `latency_ms(t)` ms, and the mock clock moves from one event (an issue, an end) to the next.
/// Calls still out at the end complete after it, on time.
fn run(b: &Breaker, m: &quanta::Mock, secs: u64, latency_ms: impl Fn(u64) -> u64) -> Run {
    let end = secs * 1000 * MS;
    let mut out: Vec<(u64, Permit<'_>)> = Vec::new();
    let mut opened_at_ms = None;
    let mut slow_per_second = Vec::new();
    let mut slow_before = b.metrics().slow;
    let (mut now, mut next_issue, mut next_second) = (0, 0, 1000 * MS);
    loop {
        let next_end = out.iter().map(|(due, _)| *due).min().unwrap_or(u64::MAX);
        if next_issue >= end {
            next_issue = u64::MAX;
        }
        let next = next_issue.min(next_end).min(next_second);
        if next_issue == u64::MAX && next_end == u64::MAX && next_second > end {
            break;
        }
        m.increment(next - now);
        now = next;
        if now == next_second {
            let slow = b.metrics().slow;
            slow_per_second.push(slow - slow_before);
            slow_before = slow;
            next_second += 1000 * MS;
        }
        if now == next_end {
            let i = out.iter().position(|(due, _)| *due == now).unwrap();
            out.swap_remove(i).1.success();
        } else if now == next_issue {
            if let Ok(p) = b.try_acquire() {
                out.push((now + latency_ms(now / MS) * MS, p));
            }
            next_issue += TICK;
        }
        if opened_at_ms.is_none() && b.state() == State::Open {
            opened_at_ms = Some(now / MS);
        }
    }
    Run {
        opened_at_ms,
        slow_per_second,
    }
}

#[test]
fn steady_latency_never_trips_and_is_learned() {
    let (b, m) = mocked(relative());
    // 2 ms, with every seventh call at 6 ms: jitter, not slowness.
    let r = run(&b, &m, 60, |t| if t % 70 == 0 { 6 } else { 2 });
    assert_eq!(r.opened_at_ms, None);
    assert_eq!(b.metrics().slow, 0, "{r:?}");
    let typical = b.metrics().typical_latency.unwrap();
    assert!(
        typical >= Duration::from_millis(2) && typical < Duration::from_micros(3500),
        "{typical:?}"
    );
}

#[test]
fn a_latency_spike_trips_on_the_slow_call_rate() {
    let (b, m) = mocked(relative());
    let r = run(&b, &m, 40, |t| if t < 20_000 { 2 } else { 200 });
    let opened = r.opened_at_ms.expect("a 100× spike trips");
    // Half the window slow: 5 s of 200 ms calls (counted as they end, 200 ms later).
    assert!((25_000..=25_500).contains(&opened), "{r:?}");
    assert_eq!(r.slow_per_second[..20].iter().sum::<u64>(), 0, "{r:?}");
}

#[test]
fn a_tenfold_step_is_absorbed_without_tripping() {
    let (b, m) = mocked(relative());
    let r = run(&b, &m, 60, |t| if t < 20_000 { 2 } else { 20 });
    assert_eq!(r.opened_at_ms, None, "{r:?}");
    let slow_seconds = r.slow_per_second.iter().filter(|&&n| n > 0).count();
    // Four samples, one a second, and the calls in flight at the fourth.
    assert!((4..=5).contains(&slow_seconds), "{r:?}");
    assert_eq!(r.slow_per_second[30..].iter().sum::<u64>(), 0, "{r:?}");
    let typical = b.metrics().typical_latency.unwrap();
    assert!(
        typical > Duration::from_millis(18) && typical < Duration::from_millis(22),
        "{typical:?}"
    );
}

#[test]
fn nothing_is_slow_during_warm_up() {
    let (b, m) = mocked(relative());
    let r = run(&b, &m, 3, |_| 500);
    assert_eq!(b.metrics().slow, 0, "{r:?}");
    assert_eq!(r.opened_at_ms, None);
}

#[test]
fn the_floor_keeps_a_fast_dependency_from_being_slow() {
    let (b, m) = mocked(
        Breaker::builder()
            .slow_call_rule(SlowCalls::relative(2.0, 0.5).min_duration(Duration::from_millis(5)))
            .minimum_calls(20),
    );
    // Typical 1 ms; 4 ms calls are 4 × the typical latency but under the 5 ms floor.
    let r = run(&b, &m, 30, |t| if t % 20 == 0 { 4 } else { 1 });
    assert_eq!(b.metrics().slow, 0, "{r:?}");
}

#[test]
fn relative_mode_times_permits_and_reconfigure_keeps_or_resets_what_was_learned() {
    let (b, m) = mocked(Breaker::builder().consecutive_failures(5));
    assert_eq!(b.metrics().typical_latency, None);
    let mut c: Config = b.config();
    c.slow_calls = Some(SlowCalls::relative(4.0, 1.0));
    b.reconfigure(c.clone()).unwrap();
    run(&b, &m, 10, |_| 3);
    let learned = b.metrics().typical_latency.unwrap();
    assert!(learned.abs_diff(Duration::from_millis(3)) < Duration::from_micros(30));
    // Another multiplier: what was learned stays.
    c.slow_calls = Some(SlowCalls::relative(8.0, 1.0));
    b.reconfigure(c.clone()).unwrap();
    assert_eq!(b.metrics().typical_latency, Some(learned));
    // Absolute, then relative again: warm-up starts over.
    c.slow_calls = Some(SlowCalls::absolute(Duration::from_secs(1), 1.0));
    b.reconfigure(c.clone()).unwrap();
    assert_eq!(b.metrics().typical_latency, None);
    c.slow_calls = Some(SlowCalls::relative(4.0, 1.0));
    b.reconfigure(c).unwrap();
    assert_eq!(b.metrics().typical_latency, None);
}

#[test]
fn a_count_window_samples_every_100_ms() {
    let (b, m) = mocked(
        Breaker::builder()
            .count_window(100)
            .slow_call_rule(SlowCalls::relative(4.0, 0.5))
            .minimum_calls(20),
    );
    let r = run(&b, &m, 10, |t| if t < 5_000 { 2 } else { 20 });
    assert_eq!(r.opened_at_ms, None, "{r:?}");
    // Four samples, one every 100 ms: about 0.3 s of slow calls (the first sample is the
    // first 20 ms call to end).
    let slow: u64 = r.slow_per_second.iter().sum();
    assert!((25..=40).contains(&slow), "{r:?}");
}

#[test]
fn bad_relative_settings_name_the_field() {
    let cases = [
        (SlowCalls::relative(1.0, 0.5), "slow_calls.relative"),
        (SlowCalls::relative(f64::NAN, 0.5), "slow_calls.relative"),
        (
            SlowCalls::relative(f64::INFINITY, 0.5),
            "slow_calls.relative",
        ),
        (
            SlowCalls::relative(2.0, 0.5).min_duration(Duration::ZERO),
            "slow_calls.min_duration",
        ),
        (
            SlowCalls::relative(2.0, 0.5).min_duration(Duration::from_secs(400 * 86_400)),
            "slow_calls.min_duration",
        ),
        (SlowCalls::relative(2.0, 0.0), "slow_calls.rate"),
        (
            SlowCalls::absolute(Duration::from_secs(1), 0.5).min_duration(Duration::from_millis(1)),
            "slow_calls.min_duration",
        ),
        (
            SlowCalls {
                duration: Some(Duration::from_secs(1)),
                ..SlowCalls::relative(2.0, 0.5)
            },
            "slow_calls.relative",
        ),
        (
            SlowCalls {
                relative: None,
                ..SlowCalls::relative(2.0, 0.5)
            },
            "slow_calls.duration",
        ),
    ];
    for (rule, field) in cases {
        let err = Breaker::builder().slow_call_rule(rule).build().unwrap_err();
        assert_eq!(err.field(), field, "{rule:?}: {err}");
    }
}
