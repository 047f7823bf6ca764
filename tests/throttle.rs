//! The adaptive throttle: what it rejects, when, how it counts, and how it is configured. Time is
//! a quanta mock clock; nothing sleeps.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use hotbreaker::{Breaker, Builder, Config, Reason, State, Throttle};
use quanta::{Clock, Mock};

const SEC: Duration = Duration::from_secs(1);

fn on_mock(builder: Builder) -> (Breaker, Arc<Mock>) {
    let (clock, mock) = Clock::mock();
    mock.increment(1); // quanta's mock starts at 0
    (builder.clock(clock).build().unwrap(), mock)
}

/// `successes` then `failures` calls at the current instant, none throttled (asserted).
fn fill(b: &Breaker, successes: u32, failures: u32) {
    for _ in 0..successes {
        b.try_acquire().expect("nothing throttled yet").success();
    }
    for _ in 0..failures {
        match b.try_acquire() {
            Ok(p) => p.failure(),
            Err(r) => panic!("throttled while filling: {r:?}"),
        }
    }
}

/// At a fixed window (100 requests, 20 of them served, K = 2, so p = 60 / 101), a million calls
/// are throttled within half a percentage point of p, and every one is counted.
#[test]
fn a_million_calls_are_throttled_at_p() {
    let (b, _mock) = on_mock(
        Breaker::builder()
            .throttle(Throttle::sre().k(2.0).max_rejection(0.9))
            .minimum_calls(10),
    );
    // Then 80 Failures: each recomputes p, the last one from the window as it now stands (calls
    // throttled on the way count in it as requests).
    fill(&b, 20, 0);
    let mut failures = 0;
    while failures < 80 {
        if let Ok(p) = b.try_acquire() {
            p.failure();
            failures += 1;
        }
    }
    let before = b.metrics();
    let requests = before.window.requests();
    let p = ((requests as f64 - 2.0 * before.window.successes() as f64) / (requests as f64 + 1.0))
        .min(0.9);
    let n = 1_000_000u64;
    let mut throttled = 0u64;
    // The admitted calls are held, not ended: an outcome (or a dropped permit) would change p.
    let mut held = Vec::new();
    for _ in 0..n {
        match b.try_acquire() {
            Ok(permit) => held.push(permit),
            Err(r) => {
                assert_eq!(r.reason(), Reason::Throttled);
                throttled += 1;
            }
        }
    }
    let fraction = throttled as f64 / n as f64;
    println!("p = {p:.6}, throttled fraction = {fraction:.6}");
    assert!(
        (fraction - p).abs() < 0.005,
        "p = {p}, fraction = {fraction}"
    );
    let after = b.metrics();
    assert_eq!(after.throttled - before.throttled, throttled);
    assert_eq!(after.window.throttled - before.window.throttled, throttled);
    assert_eq!(after.window.calls, before.window.calls);
    assert_eq!(after.rejected, 0, "throttled calls are not Open rejections");
    assert_eq!(after.state, State::Closed);
    drop(held);
}

#[test]
fn a_throttle_alone_never_opens_and_sheds_at_most_max_rejection() {
    let (b, _mock) = on_mock(
        Breaker::builder()
            .throttle(Throttle::sre().max_rejection(0.5))
            .minimum_calls(10),
    );
    let mut throttled = 0;
    for _ in 0..20_000 {
        match b.try_acquire() {
            Ok(p) => p.failure(),
            Err(_) => throttled += 1,
        }
    }
    let m = b.metrics();
    assert_eq!((m.state, m.times_opened), (State::Closed, 0));
    assert_eq!(m.throttled, throttled);
    let fraction = throttled as f64 / 20_000.0;
    // At most 0.5 in probability; the realised fraction varies by about ±0.35 %.
    assert!((0.45..=0.51).contains(&fraction), "{fraction}");
}

#[test]
fn nothing_is_throttled_below_minimum_calls_or_while_calls_succeed() {
    let always = || 0u32; // every draw rejects whenever p > 0
    let (b, _mock) = on_mock(
        Breaker::builder()
            .throttle(Throttle::sre())
            .minimum_calls(20)
            .throttle_draws_for_tests(always),
    );
    fill(&b, 0, 19);
    assert!(b.try_acquire().is_ok(), "19 requests: below minimum_calls");
    let (b, _mock) = on_mock(
        Breaker::builder()
            .throttle(Throttle::sre().k(2.0))
            .minimum_calls(1)
            .throttle_draws_for_tests(always),
    );
    // Half served: requests − 2·accepts = 0.
    for _ in 0..50 {
        b.try_acquire().unwrap().success();
        b.try_acquire().unwrap().failure();
    }
    assert!(b.try_acquire().is_ok());
    assert_eq!(b.metrics().throttled, 0);
}

/// After the brownout, the first throttled call of a new bucket recomputes p from a window the
/// failures have left: full traffic again without waiting for any timeout.
#[test]
fn recovery_is_seen_within_a_window() {
    let draws = Arc::new(AtomicU32::new(0));
    let source = Arc::clone(&draws);
    let (b, mock) = on_mock(
        Breaker::builder()
            .throttle(Throttle::sre())
            .minimum_calls(10)
            .time_window(10 * SEC, 10)
            .throttle_draws_for_tests(move || {
                source.fetch_add(1, Ordering::Relaxed);
                0
            }),
    );
    fill(&b, 0, 10);
    assert_eq!(b.try_acquire().unwrap_err().reason(), Reason::Throttled);
    mock.increment(10 * SEC);
    // The failures are out of the window: one throttled call recomputes, then all pass.
    assert!(b.try_acquire().is_err());
    for _ in 0..100 {
        b.try_acquire().expect("recovered").success();
    }
    assert_eq!(b.metrics().throttled, 2);
    assert_eq!(draws.load(Ordering::Relaxed), 2, "no draw once p is 0");
}

/// Draws that reject at any p > 0 and pass at any p < 1, in turn.
fn alternate() -> impl Fn() -> u32 + Send + Sync + 'static {
    let n = AtomicU32::new(0);
    move || {
        if n.fetch_add(1, Ordering::Relaxed).is_multiple_of(2) {
            0
        } else {
            u32::MAX
        }
    }
}

#[test]
fn half_open_probes_are_never_throttled() {
    let (b, mock) = on_mock(
        Breaker::builder()
            .throttle(Throttle::sre())
            .consecutive_failures(30)
            .minimum_calls(5)
            .open_timeout(SEC)
            .half_open_permits(3)
            .half_open_successes(3)
            .throttle_draws_for_tests(alternate()),
    );
    let mut throttled = 0;
    while b.state() == State::Closed {
        match b.try_acquire() {
            Ok(p) => p.failure(),
            Err(r) => {
                assert_eq!(
                    (r.reason(), r.state(), r.retry_after()),
                    (Reason::Throttled, State::Closed, None)
                );
                throttled += 1;
            }
        }
        assert!(throttled < 1_000);
    }
    assert!(throttled > 0);
    let open = b.try_acquire().unwrap_err();
    assert_eq!(open.reason(), Reason::Open);
    mock.increment(SEC);
    let probes: Vec<_> = (0..3).map(|_| b.try_acquire().expect("a probe")).collect();
    assert_eq!(b.try_acquire().unwrap_err().reason(), Reason::HalfOpenFull);
    for p in probes {
        p.success();
    }
    assert_eq!(b.state(), State::Closed);
    // A new Closed period starts with nothing throttled.
    assert!(b.try_acquire().is_ok());
}

#[test]
fn disabled_never_throttles_and_isolated_says_so() {
    let (b, _mock) = on_mock(
        Breaker::builder()
            .throttle(Throttle::sre())
            .minimum_calls(1)
            .throttle_draws_for_tests(|| 0),
    );
    fill(&b, 0, 1);
    assert!(b.try_acquire().is_err());
    b.disable();
    for _ in 0..100 {
        b.try_acquire().unwrap().failure();
    }
    b.isolate();
    let r = b.try_acquire().unwrap_err();
    assert_eq!(r.reason(), Reason::Isolated);
    b.reset();
    assert!(b.try_acquire().is_ok());
}

#[test]
fn a_throttled_rejection_reads_as_one() {
    let (b, _mock) = on_mock(
        Breaker::builder()
            .throttle(Throttle::sre())
            .minimum_calls(1)
            .throttle_draws_for_tests(|| 0),
    );
    fill(&b, 0, 1);
    let r = b.try_acquire().unwrap_err();
    assert_eq!(r.to_string(), "circuit breaker is throttling calls");
    assert!(matches!(
        b.call(|| Ok::<(), ()>(())),
        Err(hotbreaker::Error::Rejected(r)) if r.reason() == Reason::Throttled
    ));
}

#[test]
fn reconfigure_turns_the_throttle_on_and_off() {
    let (b, _mock) = on_mock(
        Breaker::builder()
            .consecutive_failures(1_000)
            .minimum_calls(1)
            .throttle_draws_for_tests(|| 0),
    );
    fill(&b, 0, 5);
    assert!(b.try_acquire().is_ok(), "no throttle yet");
    let without = b.heap_bytes();
    let with = Config {
        consecutive_failures: Some(1_000),
        minimum_calls: Some(1),
        throttle: Some(Throttle::sre()),
        ..Config::default()
    };
    b.reconfigure(with.clone()).unwrap();
    assert_eq!(b.config().throttle, Some(Throttle::sre()));
    // The throttled and answered rings, one 16-byte word per bucket and one to spare (11 with
    // the default 10 buckets) each, behind a 16-byte pointer, exist only once a throttle is
    // configured; the kept settings grow by the throttle's two 8-byte words.
    assert_eq!(b.heap_bytes(), without + 16 + 2 * 11 * 16 + 2 * 8);
    // Computed at the next Failure.
    b.try_acquire().unwrap().failure();
    assert!(b.try_acquire().is_err());
    assert!(b.try_acquire().is_err());
    assert_eq!(
        b.metrics().window.throttled,
        2,
        "counted in the rings allocated by the reconfiguration"
    );
    b.reconfigure(Config {
        throttle: None,
        ..with
    })
    .unwrap();
    assert!(b.try_acquire().is_ok(), "off at once");
}

#[test]
fn bad_throttles_are_refused_naming_the_field() {
    let err = |t: Throttle| {
        Breaker::builder()
            .throttle(t)
            .build()
            .unwrap_err()
            .field()
            .to_owned()
    };
    assert_eq!(err(Throttle::sre().k(0.5)), "throttle.k");
    assert_eq!(err(Throttle::sre().k(f64::NAN)), "throttle.k");
    assert_eq!(
        err(Throttle::sre().max_rejection(1.0)),
        "throttle.max_rejection"
    );
    let count = Breaker::builder()
        .throttle(Throttle::sre())
        .count_window(100)
        .build()
        .unwrap_err();
    assert_eq!(count.field(), "count_window");
    assert!(
        Breaker::builder()
            .throttle(Throttle::sre().k(1.5).max_rejection(0.0))
            .build()
            .is_ok()
    );
}

#[cfg(feature = "serde")]
#[test]
fn files_and_the_environment_carry_the_throttle() {
    let c = Config::from_toml("throttle = { k = 1.5 }").unwrap();
    assert_eq!(c.throttle, Some(Throttle::sre().k(1.5)));
    let c = Config::from_toml("throttle = {}").unwrap();
    assert_eq!(c.throttle, Some(Throttle::sre()));
    let e = Config::from_toml("throttle = { k = 0.5 }").unwrap_err();
    assert_eq!(e.field(), "throttle.k");
    let e = Config::from_toml("throttle = { kk = 2.0 }").unwrap_err();
    assert_eq!(e.field(), "throttle.kk");
    let c = Config::from_vars(
        "SVC",
        [
            ("SVC_THROTTLE_K", "3"),
            ("SVC_THROTTLE_MAX_REJECTION", "0.75"),
        ],
    )
    .unwrap();
    assert_eq!(c.throttle, Some(Throttle::sre().k(3.0).max_rejection(0.75)));
}

/// Eight threads call through a browning-out dependency (one call in four succeeds) while the
/// throttle sheds: every attempt is counted exactly once, as a Success, a Failure or a throttled
/// call, and the window's requests are the same attempts.
#[test]
fn concurrent_callers_are_counted_exactly() {
    let (b, _mock) = on_mock(
        Breaker::builder()
            .throttle(Throttle::sre())
            .minimum_calls(20)
            .stripes(2), // fewer owned stripes than threads: shared stripes too
    );
    let b = Arc::new(b);
    let per_thread = 20_000u64;
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let b = Arc::clone(&b);
            std::thread::spawn(move || {
                for i in 0..per_thread {
                    if let Ok(p) = b.try_acquire() {
                        if (i + t) % 4 == 0 {
                            p.success();
                        } else {
                            p.failure();
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let m = b.metrics();
    assert_eq!(
        m.successes + m.failures + m.throttled,
        8 * per_thread,
        "{m:?}"
    );
    assert_eq!(m.window.requests(), 8 * per_thread, "all at one instant");
    assert!(m.throttled > 0 && m.state == State::Closed, "{m:?}");
}

#[cfg(feature = "metrics")]
#[test]
fn throttled_calls_have_their_own_metric_series() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let registry = hotbreaker::Registry::new(Config {
        throttle: Some(Throttle::sre()),
        minimum_calls: Some(1),
        ..Config::default()
    })
    .unwrap();
    let b = registry.get_or_create("payments");
    let mut throttled = 0;
    for _ in 0..200 {
        match b.try_acquire() {
            Ok(p) => p.failure(),
            Err(_) => throttled += 1,
        }
    }
    assert!(throttled > 0);
    metrics::with_local_recorder(&recorder, || registry.publish_metrics());
    let text = handle.render();
    let line =
        format!("hotbreaker_calls_total{{name=\"payments\",outcome=\"throttled\"}} {throttled}");
    assert!(text.contains(&line), "{line} not in\n{text}");
    assert!(text.contains("outcome=\"rejected\"} 0"), "{text}");
}
