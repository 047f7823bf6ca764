//! The freeze guard and the time source, on mock and split clocks.

use super::recent_guard::{Seen, check_due, repeated};
use super::*;

#[test]
fn a_mock_clock_is_never_stale() {
    let (q, mock) = quanta::Clock::mock();
    let clock = TimeSource::new(q);
    for i in 0..5_000u64 {
        if i % 1_000 == 0 {
            mock.increment(std::time::Duration::from_secs(1));
        }
        assert_eq!(clock.now_ns(), (i / 1_000 + 1) * 1_000_000_000);
    }
}

#[test]
fn a_mock_clock_is_a_mock_even_inside_quanta_with_clock() {
    let (q, _mock) = quanta::Clock::mock();
    // `quanta::Instant::now()` answers with the mock here: the check must not ask it.
    let inside = quanta::with_clock(&q, || TimeSource::new(q.clone()));
    assert!(inside.real_time().is_none());
    assert!(TimeSource::new(q).real_time().is_none());
    let real = TimeSource::new(quanta::Clock::new());
    assert!(real.real_time().is_some());
    let inside_real = quanta::with_clock(&quanta::Clock::mock().0, || {
        TimeSource::new(quanta::Clock::new())
    });
    assert!(inside_real.real_time().is_some());
}

#[test]
fn checks_are_due_at_powers_of_two_then_every_64() {
    let mut seen = Seen::fresh(7u64);
    let mut checked = Vec::new();
    for call in 1..=320u32 {
        let (next, _) = repeated(seen, || {
            checked.push(call);
            (0, 0)
        });
        seen = next;
    }
    let expected = [1, 2, 4, 8, 16, 32, 64, 128, 192, 256, 320];
    assert_eq!(checked, expected);
}

#[test]
fn once_stale_every_call_reads_the_real_clock() {
    let (seen, real) = repeated(Seen::fresh(1u64), || (50_000_000, 40_000_000));
    assert_eq!(real, Some(50_000_000));
    assert!(seen.stale);
    let (_, real) = repeated(seen, || (50_000_001, 40_000_001));
    assert_eq!(real, Some(50_000_001), "not only when a check is due");
    let (seen, real) = repeated(Seen::fresh(1u64), || (5, RECENT_TOLERANCE_NS));
    assert_eq!(
        (seen.stale, real),
        (false, None),
        "a lag of exactly the tolerance is fine"
    );
}

#[test]
fn the_split_guard_follows_a_stopped_upkeep_within_twice_the_tolerance() {
    let c = split::SplitClock::default();
    c.set(5_000_000_000);
    assert_eq!(c.now_ns(), 5_000_000_000);
    // The upkeep stops; calls keep coming every 100 µs of real time.
    let mut followed_at = None;
    for i in 1..=1_000u64 {
        c.advance_real(100_000);
        let t = c.now_ns();
        if t == c.real_ns() && t > 5_000_000_000 {
            followed_at = Some(i * 100_000);
            break;
        }
    }
    let lag = followed_at.expect("the guard switched to the real clock");
    assert!(lag <= 2 * RECENT_TOLERANCE_NS + 100_000, "{lag}");
    // Once stale, every call reads the real clock until the recent time moves again.
    c.advance_real(1);
    assert_eq!(c.now_ns(), c.real_ns());
    c.recent
        .store(c.real_ns(), std::sync::atomic::Ordering::SeqCst);
    assert_eq!(c.now_ns(), c.real_ns());
}

#[test]
fn the_repeat_count_wraps_into_a_check() {
    // 2^31 repeats of one recent value (the hot path keeps 31 bits): the count wraps to 0,
    // which is due for a check, and nothing panics.
    assert!(check_due(0));
    let seen = Seen {
        recent: Some(3u64),
        repeats: u32::MAX,
        stale: false,
    };
    let (seen, real) = repeated(seen, || (20_000_000, 20_000_000));
    assert_eq!(
        (seen.repeats, seen.stale, real),
        (0, true, Some(20_000_000))
    );
}

/// A real clock's outcomes are stamped with the upkeep's tick count, which only that thread
/// adds to: it only grows, whatever else sets quanta's recent time. A mock's stamp is its time.
#[test]
fn a_real_clocks_stamp_is_the_upkeeps_tick_count_and_a_mocks_its_time() {
    let real = TimeSource::new(quanta::Clock::new());
    let before = real.stamp();
    tick();
    let after = real.stamp();
    assert!(after > before, "{before} then {after}");
    assert!(real.stamp() >= after, "only grows");
    let (clock, mock) = quanta::Clock::mock();
    let source = TimeSource::new(clock);
    mock.increment(std::time::Duration::from_millis(5));
    assert_eq!(source.stamp(), source.recent_at());
    assert!(source.stamp() > 0);
}
