//! Arbitrary configuration text through every loader: `Config::from_toml`, `from_json`,
//! `from_vars` and `Registry::from_toml` / `from_json` never panic, and every error names a field
//! in a message of readable length.
#![no_main]

use hotbreaker::{Config, ConfigError, Registry};
use libfuzzer_sys::fuzz_target;

/// Longest message a loader may produce, whatever the input's size.
const MAX_MESSAGE: usize = 2_000;

fn check(result: Result<impl Sized, ConfigError>) {
    if let Err(e) = result {
        let text = e.to_string();
        assert!(!e.field().is_empty(), "no field: {text}");
        assert!(!e.expected().is_empty(), "no expectation: {text}");
        assert!(text.chars().count() <= MAX_MESSAGE, "{} chars", text.len());
    }
}

fuzz_target!(|input: &[u8]| {
    let text = String::from_utf8_lossy(input);
    check(Config::from_toml(&text));
    check(Config::from_json(&text));
    check(Registry::from_toml(&text));
    check(Registry::from_json(&text));
    // Lines as `NAME=VALUE` variables, and the whole text as one value of each setting.
    let vars: Vec<(String, String)> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    check(Config::from_vars("HB", vars.clone()));
    check(Config::from_vars_shared("HB", vars));
    for setting in [
        "OPEN_TIMEOUT",
        "TIME_WINDOW",
        "FAILURE_RATE",
        "CONSECUTIVE_FAILURES",
        "BACKOFF_MULTIPLIER",
        "BACKOFF_JITTER",
    ] {
        check(Config::from_vars("HB", [(format!("HB_{setting}"), text.to_string())]));
    }
    // A value in TOML and JSON for each duration field.
    let quoted = format!("{text:?}");
    check(Config::from_toml(&format!("open_timeout = {quoted}")));
    check(Config::from_json(&format!("{{\"half_open_timeout\": {quoted}}}")));
});
