//! Validation: every default, every limit and its message, and the tables that document them.

use super::limits::SECS_PER_DAY;
use super::*;
use crate::config::TimeWindow;

#[test]
fn an_empty_config_takes_every_default() {
    let r = Rules::validate(&Config::default(), None).unwrap();
    assert_eq!(r.consecutive_failures, Some(defaults::CONSECUTIVE_FAILURES));
    assert_eq!(r.failure_rate, Rate::new(defaults::FAILURE_RATE));
    assert_eq!(r.minimum_calls, defaults::MINIMUM_CALLS);
    assert_eq!(
        r.window,
        WindowSpec::Time {
            width_ns: (defaults::TIME_WINDOW / defaults::BUCKETS).as_nanos() as u64,
            buckets: defaults::BUCKETS,
        }
    );
    assert!(r.slow.is_none());
    assert_eq!(r.backoff, defaults::BACKOFF);
    assert_eq!(r.limits.half_open_permits, defaults::HALF_OPEN_PERMITS);
    assert_eq!(
        r.limits.half_open_successes,
        defaults::HALF_OPEN_SUCCESSES.min(defaults::HALF_OPEN_PERMITS)
    );
    assert_eq!(r.half_open_timeout_ns, None);
    assert!(r.stripes.is_power_of_two());
    assert!(r.stripes <= (defaults::MAX_STRIPES as usize).next_power_of_two());
}

#[test]
fn any_trip_rule_replaces_both_default_rules() {
    let c = Config {
        slow_calls: Some(crate::config::SlowCalls::absolute(
            Duration::from_secs(1),
            0.5,
        )),
        ..Config::default()
    };
    let r = Rules::validate(&c, None).unwrap();
    assert_eq!((r.consecutive_failures, r.failure_rate), (None, None));
}

#[test]
fn half_open_successes_default_follows_the_permits() {
    let c = Config {
        half_open_permits: Some(1),
        ..Config::default()
    };
    assert_eq!(
        Rules::validate(&c, None)
            .unwrap()
            .limits
            .half_open_successes,
        1
    );
}

fn expected(c: Config) -> String {
    Rules::validate(&c, None).unwrap_err().expected().to_owned()
}

#[test]
fn range_messages_come_from_the_limits_checked() {
    // Each limit is accepted and the next value is refused with a message naming the limit.
    let at = |f: fn(u32) -> Config, max: u32| {
        assert!(Rules::validate(&f(max), None).is_ok(), "{max} accepted");
        let e = expected(f(max + 1));
        assert_eq!(e, format!("must be in 1..={max}"));
        assert_eq!(expected(f(0)), e);
    };
    at(
        |n| Config {
            consecutive_failures: Some(n),
            ..Config::default()
        },
        MAX_COUNT,
    );
    at(
        |n| Config {
            minimum_calls: Some(n),
            ..Config::default()
        },
        MAX_COUNT,
    );
    at(
        |n| Config {
            time_window: Some(TimeWindow {
                window: Duration::from_secs(3600),
                buckets: n,
            }),
            ..Config::default()
        },
        MAX_BUCKETS,
    );
    at(
        |n| Config {
            count_window: Some(n),
            minimum_calls: Some(1),
            ..Config::default()
        },
        MAX_COUNT_WINDOW,
    );
    at(
        |n| Config {
            half_open_permits: Some(n),
            ..Config::default()
        },
        MAX_HALF_OPEN,
    );
    at(
        |n| Config {
            stripes: Some(n),
            ..Config::default()
        },
        MAX_STRIPES,
    );
}

#[test]
fn duration_messages_come_from_the_limits_checked() {
    let open = |d| Config {
        open_timeout: Some(d),
        ..Config::default()
    };
    assert!(Rules::validate(&open(MIN_DURATION), None).is_ok());
    assert!(Rules::validate(&open(MAX_DURATION), None).is_ok());
    let below = expected(open(MIN_DURATION - Duration::from_nanos(1)));
    assert_eq!(below, "must be in [1 ms, 365 days]");
    assert_eq!(
        expected(open(MAX_DURATION + Duration::from_nanos(1))),
        below
    );
    let window = |d| Config {
        time_window: Some(TimeWindow {
            window: d,
            buckets: 1,
        }),
        ..Config::default()
    };
    assert!(Rules::validate(&window(MAX_DURATION), None).is_ok());
    assert_eq!(
        expected(window(MAX_DURATION + Duration::from_nanos(1))),
        "window must be in (0, 365 days]"
    );
    assert_eq!(
        expected(Config {
            time_window: Some(TimeWindow {
                window: MIN_DURATION * 10 - Duration::from_nanos(10),
                buckets: 10,
            }),
            ..Config::default()
        }),
        "bucket width (window / buckets) must be at least 1 ms"
    );
}

/// `n` with a space between groups of three digits, as the documentation writes it.
fn grouped(n: u32) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, d) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(' ');
        }
        out.push(d);
    }
    out
}

#[test]
fn documented_ranges_are_the_limits_checked() {
    let readme = include_str!("../../docs/configuration.md");
    let builder = include_str!("../builder.rs");
    let days = MAX_DURATION.as_secs() / SECS_PER_DAY;
    let ms = MIN_DURATION.as_millis();
    for (field, max) in [
        ("consecutive_failures", MAX_COUNT),
        ("minimum_calls", MAX_COUNT),
        ("time_window.buckets", MAX_BUCKETS),
        ("count_window", MAX_COUNT_WINDOW),
        ("half_open_permits", MAX_HALF_OPEN),
        ("stripes", MAX_STRIPES),
    ] {
        let row = format!("| `{field}` | 1..={}", grouped(max));
        assert!(readme.contains(&row), "docs/configuration.md lacks {row:?}");
        // The builder words the bucket limit "at most 256 buckets" (checked below).
        let range = format!("1..={}", grouped(max));
        assert!(
            field == "time_window.buckets" || builder.contains(&range),
            "src/builder.rs lacks {range:?}"
        );
    }
    for range in [
        format!("(0, {days} days]"),
        format!("[{ms} ms, {days} days]"),
        format!("at least {ms} ms"),
    ] {
        assert!(
            readme.contains(&range),
            "docs/configuration.md lacks {range:?}"
        );
    }
    for range in [
        format!("{ms} ms..={days} days"),
        format!("at most {days} days"),
        format!("at least {ms} ms"),
        format!("most {} buckets", grouped(MAX_BUCKETS)),
    ] {
        assert!(builder.contains(&range), "src/builder.rs lacks {range:?}");
    }
}

#[test]
fn the_effective_configuration_fills_what_validation_resolves() {
    let e = effective(&Config::default(), 4, false);
    assert_eq!(e.consecutive_failures, Some(defaults::CONSECUTIVE_FAILURES));
    assert_eq!(e.failure_rate, Some(defaults::FAILURE_RATE));
    assert_eq!(e.minimum_calls, Some(defaults::MINIMUM_CALLS));
    assert_eq!(
        e.time_window.map(|t| (t.window, t.buckets)),
        Some((defaults::TIME_WINDOW, defaults::BUCKETS))
    );
    assert_eq!(e.backoff, Some(defaults::BACKOFF));
    assert_eq!(e.open_timeout, None);
    assert_eq!(
        (e.half_open_permits, e.half_open_successes),
        (Some(3), Some(3))
    );
    assert_eq!((e.stripes, e.critical), (Some(4), Some(false)));
    assert!(
        Rules::validate(&e, None).is_ok(),
        "the effective configuration is valid"
    );

    let set = Config {
        failure_rate: Some(0.25),
        count_window: Some(50),
        open_timeout: Some(Duration::from_secs(7)),
        half_open_permits: Some(1),
        ..Config::default()
    };
    let e = effective(&set, 1, false);
    assert_eq!(
        (e.consecutive_failures, e.failure_rate),
        (None, Some(0.25)),
        "no defaults"
    );
    assert_eq!((e.time_window, e.count_window), (None, Some(50)));
    assert_eq!(
        (e.open_timeout, e.backoff),
        (Some(Duration::from_secs(7)), None)
    );
    assert_eq!(e.half_open_successes, Some(1), "min(3, permits)");
    assert!(Rules::validate(&e, None).is_ok());

    let custom = effective(&Config::default(), 1, true);
    assert_eq!(
        (custom.consecutive_failures, custom.failure_rate),
        (None, None)
    );
}
