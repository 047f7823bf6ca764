//! The registry's metrics (feature `metrics`) as Prometheus text: descriptions, the cycle's
//! transitions from 0, one series per state, and the background publisher.
#![cfg(feature = "metrics")]

use std::sync::Arc;
use std::time::{Duration, Instant};

use hotbreaker::{Config, Registry};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

fn registry() -> Registry {
    Registry::new(Config {
        consecutive_failures: Some(2),
        ..Config::default()
    })
    .unwrap()
}

#[test]
fn every_series_is_described_and_the_first_trip_counts_from_zero() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let r = registry();
    let db = r.get_or_create("db");
    metrics::with_local_recorder(&recorder, || r.publish_metrics());
    let before = handle.render();
    for name in [
        "hotbreaker_calls_total",
        "hotbreaker_slow_calls_total",
        "hotbreaker_transitions_total",
        "hotbreaker_state",
        "hotbreaker_window_failure_rate",
        "hotbreaker_window_calls",
    ] {
        assert!(
            before.contains(&format!("# HELP {name} ")),
            "{name}:\n{before}"
        );
    }
    let trip = r#"hotbreaker_transitions_total{name="db",from="closed",to="open"}"#;
    assert_eq!(value(&before, trip), Some(0.0), "{before}");
    let open = r#"hotbreaker_state{name="db",state="open"}"#;
    let closed = r#"hotbreaker_state{name="db",state="closed"}"#;
    assert_eq!(
        (value(&before, closed), value(&before, open)),
        (Some(1.0), Some(0.0))
    );

    for _ in 0..2 {
        db.try_acquire().unwrap().failure();
    }
    metrics::with_local_recorder(&recorder, || r.publish_metrics());
    let after = handle.render();
    assert_eq!(value(&after, trip), Some(1.0), "{after}");
    assert_eq!(
        (value(&after, closed), value(&after, open)),
        (Some(0.0), Some(1.0))
    );
    for state in ["half-open", "isolated", "disabled"] {
        let series = format!(r#"hotbreaker_state{{name="db",state="{state}"}}"#);
        assert_eq!(value(&after, &series), Some(0.0), "{series}");
    }
    assert_eq!(
        value(&after, r#"hotbreaker_window_calls{name="db"}"#),
        Some(2.0)
    );
    assert_eq!(
        value(
            &after,
            r#"hotbreaker_calls_total{name="db",outcome="failure"}"#
        ),
        Some(2.0)
    );
}

/// Waits until `handle`'s text satisfies `ok` (the publisher's thread has run), at most 30 s.
fn until(handle: &PrometheusHandle, ok: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let text = handle.render();
        if ok(&text) || start.elapsed() > Duration::from_secs(30) {
            return text;
        }
        std::thread::yield_now();
    }
}

#[test]
fn the_publisher_publishes_at_once_then_on_its_interval_until_dropped() {
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .expect("the only recorder of this test binary");
    let r = Arc::new(registry());
    let db = r.get_or_create("db");
    let failures = r#"hotbreaker_calls_total{name="db",outcome="failure"}"#;

    let err = r.publish_metrics_every(Duration::ZERO).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);

    let publisher = r.publish_metrics_every(Duration::from_millis(1)).unwrap();
    assert_eq!(
        value(&handle.render(), failures),
        Some(0.0),
        "published at once"
    );
    db.try_acquire().unwrap().failure();
    let text = until(&handle, |t| value(t, failures) == Some(1.0));
    assert_eq!(
        value(&text, failures),
        Some(1.0),
        "published again:\n{text}"
    );
    drop(publisher); // stops and joins: nothing publishes from now on

    db.try_acquire().unwrap().failure();
    assert_eq!(value(&handle.render(), failures), Some(1.0));

    // A publisher whose registry is dropped ends by itself; dropping it then returns.
    let other = Arc::new(registry());
    let publisher = other
        .publish_metrics_every(Duration::from_millis(1))
        .unwrap();
    drop(other);
    drop(publisher);
}
