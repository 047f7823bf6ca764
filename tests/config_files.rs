//! Configuration from outside (feature `serde`): TOML/JSON round trips with human durations,
//! registry files, the environment, and a named `ConfigError` for every bad file or value.
#![cfg(feature = "serde")]

use std::time::Duration;

use hotbreaker::{Backoff, Breaker, Config, Registry, SlowCalls, State, Throttle, TimeWindow};

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
        slow_calls: Some(SlowCalls::absolute(Duration::from_millis(250), 0.5)),
        open_timeout: None,
        backoff: Some(Backoff::exponential(SEC, 2.0, 30 * SEC).without_jitter()),
        half_open_permits: Some(4),
        half_open_successes: Some(2),
        half_open_timeout: Some(90 * SEC),
        stripes: Some(2),
        throttle: Some(Throttle::sre().k(1.5)),
        critical: Some(true),
        call_timeout: Some(Duration::from_millis(750)),
        failure_statuses: Some("5xx, 429".parse().unwrap()),
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
        Some(Backoff::exponential(2 * SEC, 2.0, 60 * SEC)),
        "left-out backoff fields take the default backoff's, jitter included"
    );
}

#[test]
fn failure_statuses_take_a_list_or_a_string_and_say_which_entry_is_wrong() {
    let set = |text: &str| Config::from_toml(text).unwrap().failure_statuses.unwrap();
    assert_eq!(
        set("failure_statuses = [\"5xx\", 429]").to_string(),
        "429, 5xx"
    );
    assert_eq!(
        set("failure_statuses = \"5xx, 429\"").to_string(),
        "429, 5xx"
    );
    assert_eq!(set("failure_statuses = []").to_string(), "none");
    let json = Config::from_json(r#"{"failure_statuses": ["4xx", 503]}"#).unwrap();
    assert_eq!(json.failure_statuses.unwrap().to_string(), "503, 4xx");
    for (text, got) in [
        ("failure_statuses = [\"5xx\", 302]", "\"302\""),
        ("failure_statuses = [\"6xx\"]", "\"6xx\""),
        ("failure_statuses = [70000]", "\"70000\""),
        ("failure_statuses = \"5xx, +429\"", "\"+429\""),
    ] {
        let e = Config::from_toml(text).unwrap_err();
        let message = e.to_string();
        assert_eq!(e.field(), "failure_statuses", "{text}: {message}");
        assert!(message.contains(&format!("got {got}")), "{text}: {message}");
        assert_eq!(message.matches("failure_statuses").count(), 1, "{message}");
    }
    for text in [
        "failure_statuses = [500.0]",
        "failure_statuses = [[500]]",
        "failure_statuses = [true]",
        "failure_statuses = 5",
    ] {
        let e = Config::from_toml(text).unwrap_err();
        assert!(e.field().starts_with("failure_statuses"), "{text}: {e}");
        assert!(e.to_string().contains("4xx, 5xx or"), "{text}: {e}");
    }
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
            "slow_calls = { relative = 1.0, rate = 0.5 }",
            "slow_calls.relative",
        ),
        (
            "slow_calls = { relative = 4.0, duration = \"1s\", rate = 0.5 }",
            "slow_calls.relative",
        ),
        (
            "slow_calls = { duration = \"1s\", min_duration = \"1ms\", rate = 0.5 }",
            "slow_calls.min_duration",
        ),
        (
            "slow_calls = { relative = 4.0, min_duration = \"0s\", rate = 0.5 }",
            "slow_calls.min_duration",
        ),
        (
            "slow_calls = { relative = 4.0, factor = 2.0, rate = 0.5 }",
            "slow_calls.factor",
        ),
        ("slow_calls = { rate = 0.5 }", "slow_calls.duration"),
        (
            "count_window = 10\ntime_window = { window = \"1s\", buckets = 1 }",
            "count_window",
        ),
        ("consecutive_failures = -1", "consecutive_failures"),
        ("failure_statuses = [\"5xx\", 302]", "failure_statuses"),
        ("failure_statuses = [\"6xx\"]", "failure_statuses"),
        ("failure_statuses = [70000]", "failure_statuses"),
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

#[test]
fn a_relative_slow_call_rule_reads_and_writes_back() {
    let text = "slow_calls = { relative = 4.0, min_duration = \"5ms\", rate = 0.5 }";
    let c = Config::from_toml(text).unwrap();
    let rule = SlowCalls::relative(4.0, 0.5).min_duration(Duration::from_millis(5));
    assert_eq!(c.slow_calls, Some(rule));
    let back = c.to_toml();
    assert_eq!(Config::from_toml(&back).unwrap(), c, "{back}");
    let json = r#"{"slow_calls": {"relative": 3.5, "rate": 0.25}}"#;
    let c = Config::from_json(json).unwrap();
    assert_eq!(c.slow_calls, Some(SlowCalls::relative(3.5, 0.25)));
    let absolute = Config::from_toml("slow_calls = { duration = \"1s\", rate = 0.5 }").unwrap();
    assert_eq!(
        absolute.slow_calls,
        Some(SlowCalls::absolute(Duration::from_secs(1), 0.5))
    );
}

const FILE: &str = r#"
[default]
consecutive_failures = 5
open_timeout = "30s"

[breakers.payments]
consecutive_failures = 2
backoff = { base = "1s", max = "10s", jitter = false }

[breakers.search]
failure_rate = 0.3
minimum_calls = 10

[breakers."api.example.com"]
half_open_permits = 1
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

    assert_eq!(
        r.get_or_create("api.example.com")
            .config()
            .half_open_permits,
        Some(1)
    );

    let json =
        r#"{"default": {"consecutive_failures": 9}, "breakers": {"db": {"half_open_permits": 1}}}"#;
    let r = Registry::from_json(json).unwrap();
    assert_eq!(r.get_or_create("x").config().consecutive_failures, Some(9));
    assert_eq!(r.get_or_create("db").config().half_open_permits, Some(1));
}

#[test]
fn bad_registry_files_name_the_breaker_and_the_field() {
    let err = Registry::from_toml("[breakers.payments]\nfailure_rate = 2.0").unwrap_err();
    assert_eq!(err.field(), "breakers.payments.failure_rate");
    let err = Registry::from_toml("[breakers.payments]\nopen_timeout = \"a while\"").unwrap_err();
    assert_eq!(err.field(), "breakers.payments.open_timeout");
    let err = Registry::from_toml("[default]\nstripes = 300").unwrap_err();
    assert_eq!(err.field(), "default.stripes");
    let err = Registry::from_toml("[breakers.payments]\nretries = 3").unwrap_err();
    assert_eq!(err.field(), "breakers.payments.retries");
    // A top-level typo is an error naming it, not a breaker called "defaults" or "payments".
    let err = Registry::from_toml("[defaults]\nconsecutive_failures = 3").unwrap_err();
    assert_eq!(err.field(), "defaults");
    assert!(
        err.to_string().contains("`default`, `breakers`, `strict`"),
        "{err}"
    );
    let err = Registry::from_toml("[payments]\nconsecutive_failures = 3").unwrap_err();
    assert_eq!(err.field(), "payments");
    let err = Registry::from_json(r#"{"breakers": {"db": {"retries": 1}}}"#).unwrap_err();
    assert_eq!(err.field(), "breakers.db.retries");
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
    std::fs::write(&path, "[breakers.payments]\nconsecutive_failures = 7\n").unwrap();
    r.load_file(&path).unwrap();
    assert_eq!(payments.config().consecutive_failures, Some(7));
    // A bad reload changes nothing.
    std::fs::write(&path, "[breakers.payments]\nconsecutive_failures = 0\n").unwrap();
    assert_eq!(
        r.load_file(&path).unwrap_err().field(),
        "breakers.payments.consecutive_failures"
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
    assert_eq!(
        c.slow_calls.unwrap().duration,
        Some(Duration::from_millis(300))
    );
    assert_eq!(
        c.backoff,
        Some(Backoff::exponential(2 * SEC, 2.0, 60 * SEC).without_jitter())
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
        (("P_CRITICAL", "maybe"), "P_CRITICAL"),
    ];
    for ((k, v), field) in cases {
        let err = Config::from_vars("P", vars(&[(k, v)])).unwrap_err();
        assert_eq!(err.field(), field, "{k}={v}: {err}");
    }
}

#[test]
fn the_health_report_serializes() {
    let r = Registry::from_toml("[breakers.db]\ncritical = true").unwrap();
    r.get_or_create("db").isolate();
    let json = serde_json::to_value(r.health()).unwrap();
    assert_eq!(json["ready"], false);
    assert_eq!(json["breakers"][0]["name"], "db");
    assert_eq!(json["breakers"][0]["state"], "isolated");
    assert_eq!(json["breakers"][0]["critical"], true);
    assert_eq!(json["fleet_link_up"], serde_json::Value::Null);
}

/// Durations past what a `Duration` holds, which panicked inside the parser before.
const OVERFLOWING: [&str; 4] = [
    "18446744073709551615s 1000000000ns",
    "18446744073709551615s 18446744073709551615s",
    "584542046091y",
    "99999999999999999999999999999999999999999999s",
];

#[test]
fn no_duration_panics_from_any_loader() {
    let dir = std::env::temp_dir().join(format!("hotbreaker-overflow-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for value in OVERFLOWING {
        let err = Config::from_toml(&format!("open_timeout = {value:?}")).unwrap_err();
        assert_eq!(err.field(), "open_timeout", "{err}");
        assert!(err.to_string().contains("too large"), "{err}");
        let err = Config::from_json(&format!(r#"{{"half_open_timeout": {value:?}}}"#)).unwrap_err();
        assert_eq!(err.field(), "half_open_timeout");
        let err = Config::from_toml(&format!("backoff = {{ max = {value:?} }}")).unwrap_err();
        assert_eq!(err.field(), "backoff.max");
        let err = Config::from_toml(&format!(
            "time_window = {{ window = {value:?}, buckets = 1 }}"
        ))
        .unwrap_err();
        assert_eq!(err.field(), "time_window.window");
        let err = Config::from_vars("P", [("P_OPEN_TIMEOUT", value)]).unwrap_err();
        assert_eq!(err.field(), "P_OPEN_TIMEOUT");
        let err = Config::from_vars("P", [("P_BACKOFF_BASE", value)]).unwrap_err();
        assert_eq!(err.field(), "P_BACKOFF_BASE");
        let file = format!("[breakers.db]\nslow_calls = {{ duration = {value:?}, rate = 0.5 }}");
        let err = Registry::from_toml(&file).unwrap_err();
        assert_eq!(err.field(), "breakers.db.slow_calls.duration");
        let err = Registry::from_json(&format!(r#"{{"default": {{"open_timeout": {value:?}}}}}"#))
            .unwrap_err();
        assert_eq!(err.field(), "default.open_timeout");
        let path = dir.join("breakers.toml");
        std::fs::write(&path, format!("[default]\nopen_timeout = {value:?}")).unwrap();
        assert_eq!(
            Registry::from_file(&path).unwrap_err().field(),
            "default.open_timeout"
        );
        assert!(Registry::default().load_file(&path).is_err());
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn error_messages_are_one_readable_line() {
    let huge = "x".repeat(1 << 20);
    for text in [
        format!("open_timeout = {huge:?}"),
        format!("consecutive_failures = {huge:?}"),
        format!("{huge} = 1"),
        format!("\"{huge}\" = 1"),
    ] {
        let err = Config::from_toml(&text).unwrap_err().to_string();
        assert!(err.chars().count() < 700, "{} chars", err.len());
        assert!(!err.contains('\n'), "{err}");
    }
    let err = Config::from_vars("P", [("P_OPEN_TIMEOUT", huge.as_str())]).unwrap_err();
    assert!(err.to_string().chars().count() < 300, "{err}");

    let err = Config::from_toml("consecutive_failures = -1").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid consecutive_failures: invalid value: integer `-1`, expected u32"
    );
    let err = Config::from_toml("open_timeout = \"soon\"").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid open_timeout: a duration such as \"30s\", \"1m 30s\" or \"250ms\" (each part \
         must start with a number), got \"soon\""
    );
    let err = Config::from_toml("open_timeout = 5").unwrap_err();
    assert!(
        err.to_string().contains("expected a duration such as"),
        "{err}"
    );
    let err = Config::from_toml("this is not toml").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid config: must be valid TOML: key with no value, expected `=` at line 1, column 6"
    );
    let err = Config::from_json("{").unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid config: must be valid JSON: EOF while parsing an object at line 1 column 1"
    );
    let err = Registry::from_toml("[breakers.p]\nretries = 1").unwrap_err();
    assert!(
        err.to_string()
            .starts_with("invalid breakers.p.retries: unknown field `retries`, expected one of"),
        "{err}"
    );
    assert!(!err.to_string().contains("in `"), "{err}");
}

#[test]
fn environment_typos_are_errors_unless_the_prefix_is_shared() {
    let typo = [("PAY_CONSECUTIVE_FAILURE", "3")];
    let err = Config::from_vars("PAY", typo).unwrap_err();
    assert_eq!(err.field(), "PAY_CONSECUTIVE_FAILURE");
    assert!(
        err.to_string()
            .contains("did you mean PAY_CONSECUTIVE_FAILURES?"),
        "{err}"
    );
    assert!(err.to_string().contains("from_env_shared"), "{err}");
    assert_eq!(
        Config::from_vars_shared("PAY", typo).unwrap(),
        Config::default()
    );

    // A prefix written with its underscore means the same variables.
    let vars = [("PAY_FAILURE_RATE", "0.3")];
    assert_eq!(
        Config::from_vars("PAY_", vars).unwrap().failure_rate,
        Some(0.3)
    );
    assert_eq!(
        Config::from_vars("PAY", vars).unwrap().failure_rate,
        Some(0.3)
    );
    assert_eq!(Config::from_vars("", vars).unwrap_err().field(), "prefix");
    // The bare prefix and a lone underscore are not settings either.
    assert_eq!(
        Config::from_vars("PAY", [("PAY_", "1")])
            .unwrap_err()
            .field(),
        "PAY_"
    );
    // Other prefixes are never looked at.
    assert_eq!(
        Config::from_vars("PAY", [("PAYMENTS_X", "1"), ("HOME", "/")]).unwrap(),
        Config::default()
    );
    // The process's own environment reads without a panic.
    let _ = Config::from_env("HOTBREAKER_TEST_UNUSED_PREFIX");
    let _ = Config::from_env_shared("HOTBREAKER_TEST_UNUSED_PREFIX");
}

#[cfg(unix)]
#[test]
fn non_utf8_variables_are_named_when_they_are_ours_and_ignored_otherwise() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;

    let bad = OsStr::from_bytes(b"\xff\xfe");
    let ours_value = [(OsStr::new("PAY_FAILURE_RATE"), bad)];
    let err = Config::from_vars("PAY", ours_value).unwrap_err();
    assert_eq!(err.field(), "PAY_FAILURE_RATE");
    assert!(err.to_string().contains("UTF-8"), "{err}");

    let ours_name = [(OsStr::from_bytes(b"PAY_\xffRATE"), OsStr::new("1"))];
    let err = Config::from_vars("PAY", ours_name).unwrap_err();
    assert!(err.field().starts_with("PAY_"), "{err}");
    assert!(err.to_string().contains("UTF-8"), "{err}");
    assert!(Config::from_vars_shared("PAY", ours_name).is_err());

    let unrelated = [
        (OsStr::from_bytes(b"OTHER_\xff"), OsStr::new("1")),
        (OsStr::new("LANG_X"), bad),
        (OsStr::new("PAY_FAILURE_RATE"), OsStr::new("0.5")),
    ];
    assert_eq!(
        Config::from_vars("PAY", unrelated).unwrap().failure_rate,
        Some(0.5)
    );
}

/// `strict = true` and `critical = true` in a registry file: strict lookups, and `ready`
/// reading the breakers marked critical.
#[test]
fn a_registry_file_marks_critical_breakers_and_strict_lookups() {
    let r = Registry::from_toml(
        "strict = true\n\
         [breakers.inventory]\ncritical = true\n\
         [breakers.recommendations]\nconsecutive_failures = 2",
    )
    .unwrap();
    let err = r.breaker("invetnory").unwrap_err();
    assert_eq!(err.suggestion(), Some("inventory"));
    r.breaker("recommendations").unwrap().isolate();
    assert!(r.ready(), "recommendations is not critical");
    r.breaker("inventory").unwrap().isolate();
    assert!(!r.ready());
    assert_eq!(
        r.breaker("inventory").unwrap().config().critical,
        Some(true)
    );
    let e = Registry::from_toml("strict = \"yes\"").unwrap_err();
    assert_eq!(e.field(), "strict", "{e}");
    let e = Registry::from_toml("[breakers.db]\ncritical = 1").unwrap_err();
    assert_eq!(e.field(), "breakers.db.critical", "{e}");
}
