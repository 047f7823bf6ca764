//! Configuration that says what the user wrote: conflicting builder calls are refused by name,
//! settings left unset never make a reload fail, and messages name fields instead of tuples.

use std::time::Duration;

use hotbreaker::{Backoff, Breaker, Config, Registry, State};

const SEC: Duration = Duration::from_secs(1);

#[test]
fn conflicting_builder_calls_are_an_error_naming_both() {
    for b in [
        Breaker::builder()
            .open_timeout(SEC)
            .backoff(Backoff::fixed(SEC)),
        Breaker::builder()
            .backoff(Backoff::fixed(SEC))
            .open_timeout(SEC),
    ] {
        let err = b.build().unwrap_err();
        assert_eq!(err.field(), "open_timeout");
        assert_eq!(
            err.to_string(),
            "invalid open_timeout: set either open_timeout or backoff, not both"
        );
    }
    for b in [
        Breaker::builder()
            .time_window(10 * SEC, 10)
            .count_window(100),
        Breaker::builder()
            .count_window(100)
            .time_window(10 * SEC, 10),
    ] {
        let err = b.build().unwrap_err();
        assert_eq!(err.field(), "count_window");
        assert!(
            err.to_string().contains("time_window or count_window"),
            "{err}"
        );
    }
    // One of each is fine, and config() replaces both.
    Breaker::builder()
        .open_timeout(SEC)
        .time_window(SEC, 1)
        .build()
        .unwrap();
    Breaker::builder()
        .open_timeout(SEC)
        .config(Config::default())
        .backoff(Backoff::fixed(SEC))
        .build()
        .unwrap();
}

#[test]
fn pairs_of_values_are_named_not_tupled() {
    let cases = [
        (
            Breaker::builder().backoff(Backoff::exponential(10 * SEC, 2.0, SEC)),
            "invalid backoff.max: must be at least backoff.base, got max = 1s, base = 10s",
        ),
        (
            Breaker::builder()
                .half_open_permits(2)
                .half_open_successes(3),
            "invalid half_open_successes: must be in 1..=half_open_permits, got \
             half_open_successes = 3, half_open_permits = 2",
        ),
        (
            Breaker::builder()
                .failure_rate(0.5)
                .count_window(10)
                .minimum_calls(20),
            "invalid minimum_calls: must not exceed the count window's size, or the rate rules \
             could never trip, got minimum_calls = 20, count_window = 10",
        ),
        (
            Breaker::builder().time_window(Duration::from_millis(5), 10),
            "invalid time_window: bucket width (window / buckets) must be at least 1 ms, got \
             window = 5ms, buckets = 10",
        ),
    ];
    for (builder, message) in cases {
        assert_eq!(builder.build().unwrap_err().to_string(), message);
    }
    let b = Breaker::builder()
        .time_window(10 * SEC, 10)
        .build()
        .unwrap();
    let err = b
        .reconfigure(Config {
            count_window: Some(100),
            ..Config::default()
        })
        .unwrap_err();
    assert!(
        err.to_string()
            .ends_with("got count_window = 100, the breaker's is time_window = 10s in 10 buckets"),
        "{err}"
    );
}

#[test]
fn a_rejection_prints_a_rounded_retry_after() {
    let (clock, mock) = quanta::Clock::mock();
    let b = Breaker::builder()
        .clock(clock)
        .consecutive_failures(1)
        .open_timeout(SEC)
        .build()
        .unwrap();
    b.try_acquire().unwrap().failure();
    mock.increment(Duration::from_nanos(14_262_485));
    let rejected = b.try_acquire().unwrap_err();
    assert_eq!(
        rejected.retry_after(),
        Some(Duration::from_nanos(985_737_515))
    );
    assert_eq!(
        rejected.to_string(),
        "circuit breaker is open; retry after 986ms"
    );
}

/// The stripes a breaker was built with differ from what an unset `stripes` resolves to on
/// this thread (64 differs from it on any machine with at most 32 CPUs): as when a reload runs on a
/// thread that sees another CPU count. Leaving `stripes` unset must keep them.
#[test]
fn unset_stripes_never_make_a_reload_fail() {
    let b = Breaker::builder().stripes(64).build().unwrap();
    b.reconfigure(Config {
        consecutive_failures: Some(2),
        ..Config::default()
    })
    .unwrap();
    assert_eq!(b.stripes(), 64);

    let r = Registry::new(Config {
        stripes: Some(64),
        ..Config::default()
    })
    .unwrap();
    let own = r.get_or_create("own");
    let shared = r.get_or_create("shared");
    r.set_config("own", Config::default()).unwrap();
    r.set_default(Config {
        consecutive_failures: Some(3),
        ..Config::default()
    })
    .unwrap();
    assert_eq!((own.stripes(), shared.stripes()), (64, 64));
    assert_eq!(shared.config().consecutive_failures, Some(3));
    assert_eq!(shared.state(), State::Closed);

    // Stripes the user does write must match: that is a real change of layout.
    let err = r
        .set_config(
            "own",
            Config {
                stripes: Some(1),
                ..Config::default()
            },
        )
        .unwrap_err();
    assert_eq!(err.field(), "own.stripes");
}
