//! Configuration from outside (feature `serde`): TOML/JSON round trips with human durations,
//! registry files, the environment, and a named `ConfigError` for every bad file or value.
#![cfg(feature = "serde")]

use std::time::Duration;

use hotbreaker::{Backoff, Breaker, Config, Registry, SlowCalls, State, TimeWindow};

const SEC: Duration = Duration::from_secs(1);

fn full() -> Config {
    Config {
        consecutive_failures: Some(4),
        failure_rate: Some(0.25),
        minimum_calls: Some(50),
        time_window: Some(TimeWindow {
            window: 30 * SEC,
            buckets: 30,
        }),
        count_window: None,
        slow_calls: Some(SlowCalls {
            duration: Duration::from_millis(250),
            rate: 0.5,
        }),
        open_timeout: None,
        backoff: Some(Backoff::exponential(SEC, 2.0, 30 * SEC).with_jitter()),
        half_open_permits: Some(4),
        half_open_successes: Some(2),
        half_open_timeout: Some(90 * SEC),
        stripes: Some(2),
    }
}

#[test]
fn toml_and_json_round_trip_with_human_durations() {
    let text = full().to_toml();
    assert!(text.contains("window = \"30s\""), "{text}");
    assert!(text.contains("half_open_timeout = \"1m 30s\""), "{text}");
    assert_eq!(Config::from_toml(&text).unwrap(), full());
    let json = serde_json::to_string(&full()).unwrap();
    assert!(json.contains("\"duration\":\"250ms\""), "{json}");
    assert_eq!(Config::from_json(&json).unwrap(), full());
    let partial = Config::from_toml("backoff = { base = \"2s\" }").unwrap();
    assert_eq!(
        partial.backoff,
        Some(Backoff::exponential(2 * SEC, 2.0, 60 * SEC).with_jitter()),
        "left-out backoff fields take the default backoff's"
    );
}

#[test]
fn every_kind_of_bad_input_names_its_field() {
    let cases = [
        ("failure_rate = \"high\"", "failure_rate"),
        ("failure_rate = 1.5", "failure_rate"),
        ("failur_rate = 0.5", "failur_rate"),
        ("open_timeout = \"soon\"", "open_timeout"),
        ("open_timeout = \"0s\"", "open_timeout"),
        (
            "time_window = { window = \"10s\", buckets = 0 }",
            "time_window.buckets",
        ),
        ("time_window = { window = \"10s\" }", "time_window"),
        (
            "backoff = { base = \"1s\", multiplier = 0.5 }",
            "backoff.multiplier",
        ),
        (
            "backoff = { base = \"1s\", maximum = \"5s\" }",
            "backoff.maximum",
        ),
        (
            "slow_calls = { duration = \"1s\", rate = 2.0 }",
            "slow_calls.rate",
        ),
        (
            "count_window = 10\ntime_window = { window = \"1s\", buckets = 1 }",
            "count_window",
        ),
        ("consecutive_failures = -1", "consecutive_failures"),
        ("this is not toml", "config"),
    ];
    for (text, field) in cases {
        let err = Config::from_toml(text).unwrap_err();
        assert_eq!(err.field(), field, "{text:?}: {err}");
        assert!(!err.expected().is_empty());
    }
    let err =
        Config::from_json(r#"{"half_open_permits": 2, "half_open_successes": 3}"#).unwrap_err();
    assert_eq!(err.field(), "half_open_successes");
    assert_eq!(Config::from_json("{").unwrap_err().field(), "config");
}

const FILE: &str = r#"
[default]
consecutive_failures = 5
open_timeout = "30s"

[payments]
consecutive_failures = 2
backoff = { base = "1s", max = "10s", jitter = false }

[search]
failure_rate = 0.3
minimum_calls = 10
"#;

#[test]
fn a_registry_file_sets_the_default_and_per_name_configs() {
    let r = Registry::from_toml(FILE).unwrap();
    let payments = r.get_or_create("payments");
    assert_eq!(payments.config().consecutive_failures, Some(2));
    assert_eq!(r.get_or_create("search").config().failure_rate, Some(0.3));
    assert_eq!(
        r.get_or_create("other").config().open_timeout,
        Some(30 * SEC)
    );
    payments.try_acquire().unwrap().failure();
    payments.try_acquire().unwrap().failure();
    assert_eq!(payments.state(), State::Open);

    let json = r#"{"default": {"consecutive_failures": 9}, "db": {"half_open_permits": 1}}"#;
    let r = Registry::from_json(json).unwrap();
    assert_eq!(r.get_or_create("x").config().consecutive_failures, Some(9));
    assert_eq!(r.get_or_create("db").config().half_open_permits, Some(1));
}

#[test]
fn bad_registry_files_name_the_breaker_and_the_field() {
    let err = Registry::from_toml("[payments]\nfailure_rate = 2.0").unwrap_err();
    assert_eq!(err.field(), "payments.failure_rate");
    let err = Registry::from_toml("[payments]\nopen_timeout = \"a while\"").unwrap_err();
    assert_eq!(err.field(), "payments.open_timeout");
    let err = Registry::from_toml("[default]\nstripes = 100").unwrap_err();
    assert_eq!(err.field(), "default.stripes");
    let err = Registry::from_toml("[payments]\nretries = 3").unwrap_err();
    assert_eq!(err.field(), "payments.retries");
    let err = Registry::from_file("/nonexistent/breakers.toml").unwrap_err();
    assert_eq!(err.field(), "/nonexistent/breakers.toml");
}

#[test]
fn a_file_reloaded_at_runtime_reconfigures_live_breakers() {
    let dir = std::env::temp_dir().join(format!("hotbreaker-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("breakers.toml");
    std::fs::write(&path, FILE).unwrap();
    let r = Registry::from_file(&path).unwrap();
    let payments = r.get_or_create("payments");
    std::fs::write(&path, "[payments]\nconsecutive_failures = 7\n").unwrap();
    r.load_file(&path).unwrap();
    assert_eq!(payments.config().consecutive_failures, Some(7));
    // A bad reload changes nothing.
    std::fs::write(&path, "[payments]\nconsecutive_failures = 0\n").unwrap();
    assert_eq!(
        r.load_file(&path).unwrap_err().field(),
        "payments.consecutive_failures"
    );
    assert_eq!(payments.config().consecutive_failures, Some(7));
    std::fs::remove_dir_all(&dir).unwrap();
}

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn environment_variables_configure_a_breaker() {
    let c = Config::from_vars(
        "PAYMENTS",
        vars(&[
            ("PAYMENTS_CONSECUTIVE_FAILURES", "3"),
            ("PAYMENTS_FAILURE_RATE", "0.4"),
            ("PAYMENTS_TIME_WINDOW", "1m"),
            ("PAYMENTS_TIME_WINDOW_BUCKETS", "60"),
            ("PAYMENTS_SLOW_CALLS_DURATION", "300ms"),
            ("PAYMENTS_SLOW_CALLS_RATE", "0.8"),
            ("PAYMENTS_BACKOFF_BASE", "2s"),
            ("PAYMENTS_BACKOFF_JITTER", "false"),
            ("PAYMENTS_HALF_OPEN_PERMITS", "2"),
            ("PAYMENTS_DATABASE_URL", "postgres://elsewhere"),
            ("SEARCH_FAILURE_RATE", "0.9"),
        ]),
    )
    .unwrap();
    assert_eq!(c.consecutive_failures, Some(3));
    assert_eq!(c.failure_rate, Some(0.4));
    assert_eq!(
        c.time_window,
        Some(TimeWindow {
            window: 60 * SEC,
            buckets: 60
        })
    );
    assert_eq!(c.slow_calls.unwrap().duration, Duration::from_millis(300));
    assert_eq!(
        c.backoff,
        Some(Backoff::exponential(2 * SEC, 2.0, 60 * SEC))
    );
    assert_eq!(c.half_open_permits, Some(2));
    Breaker::builder().config(c).build().unwrap();
    assert_eq!(
        Config::from_vars("X", vars(&[])).unwrap(),
        Config::default()
    );
}

#[test]
fn bad_environment_values_name_the_variable() {
    let cases = [
        (("P_CONSECUTIVE_FAILURES", "many"), "P_CONSECUTIVE_FAILURES"),
        (("P_FAILURE_RATE", "0"), "P_FAILURE_RATE"),
        (("P_OPEN_TIMEOUT", "later"), "P_OPEN_TIMEOUT"),
        (("P_TIME_WINDOW_BUCKETS", "5000"), "P_TIME_WINDOW_BUCKETS"),
        (("P_BACKOFF_MULTIPLIER", "0.1"), "P_BACKOFF_MULTIPLIER"),
        (("P_BACKOFF_JITTER", "maybe"), "P_BACKOFF_JITTER"),
        (("P_SLOW_CALLS_RATE", "0.5"), "P_SLOW_CALLS_DURATION"),
        (("P_STRIPES", "0"), "P_STRIPES"),
    ];
    for ((k, v), field) in cases {
        let err = Config::from_vars("P", vars(&[(k, v)])).unwrap_err();
        assert_eq!(err.field(), field, "{k}={v}: {err}");
    }
}

#[test]
fn the_health_report_serializes() {
    let r = Registry::default();
    r.get_or_create("db").isolate();
    let json = serde_json::to_value(r.health(&["db"])).unwrap();
    assert_eq!(json["ready"], false);
    assert_eq!(json["breakers"][0]["name"], "db");
    assert_eq!(json["breakers"][0]["state"], "isolated");
    assert_eq!(json["breakers"][0]["critical"], true);
}
