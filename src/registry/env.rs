//! Configuration from environment variables (feature `serde`): [`Config::from_env`] and its
//! variants. Every error is a [`ConfigError`] naming the variable, e.g. `PAYMENTS_FAILURE_RATE`.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::time::Duration;

use crate::config::{Config, SlowCalls, TimeWindow};
use crate::error::ConfigError;
use crate::failure_statuses::FailureStatuses;
use crate::human_duration;
use crate::rules::Backoff;
use crate::rules::{Rules, defaults};
use crate::throttle::Throttle;

/// Every setting's variable, after `PREFIX_`.
const SETTINGS: [&str; 24] = [
    "CONSECUTIVE_FAILURES",
    "FAILURE_RATE",
    "MINIMUM_CALLS",
    "TIME_WINDOW",
    "TIME_WINDOW_BUCKETS",
    "COUNT_WINDOW",
    "SLOW_CALLS_DURATION",
    "SLOW_CALLS_RELATIVE",
    "SLOW_CALLS_MIN_DURATION",
    "SLOW_CALLS_RATE",
    "OPEN_TIMEOUT",
    "BACKOFF_BASE",
    "BACKOFF_MULTIPLIER",
    "BACKOFF_MAX",
    "BACKOFF_JITTER",
    "HALF_OPEN_PERMITS",
    "HALF_OPEN_SUCCESSES",
    "HALF_OPEN_TIMEOUT",
    "STRIPES",
    "THROTTLE_K",
    "THROTTLE_MAX_REJECTION",
    "CRITICAL",
    "CALL_TIMEOUT",
    "FAILURE_STATUSES",
];

/// What to do with a variable under the prefix that is not a setting.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Others {
    /// An error naming it: a typo must not pass unnoticed.
    Refuse,
    /// Leave it alone: the prefix is shared with the application's own settings.
    Ignore,
}

impl Config {
    /// Settings from the environment: `PREFIX_CONSECUTIVE_FAILURES`, `PREFIX_FAILURE_RATE`,
    /// `PREFIX_MINIMUM_CALLS`, `PREFIX_TIME_WINDOW` (a duration) and `PREFIX_TIME_WINDOW_BUCKETS`,
    /// `PREFIX_COUNT_WINDOW`, `PREFIX_SLOW_CALLS_DURATION` or `PREFIX_SLOW_CALLS_RELATIVE` (with
    /// `PREFIX_SLOW_CALLS_MIN_DURATION`) and `PREFIX_SLOW_CALLS_RATE`,
    /// `PREFIX_OPEN_TIMEOUT`, `PREFIX_BACKOFF_BASE` / `_MULTIPLIER` / `_MAX` / `_JITTER`,
    /// `PREFIX_HALF_OPEN_PERMITS`, `PREFIX_HALF_OPEN_SUCCESSES`, `PREFIX_HALF_OPEN_TIMEOUT`,
    /// `PREFIX_STRIPES`, `PREFIX_THROTTLE_K` and `PREFIX_THROTTLE_MAX_REJECTION` (either turns
    /// the throttle on, the other taking its default), `PREFIX_CRITICAL` (`true` or `false`), `PREFIX_CALL_TIMEOUT` and `PREFIX_FAILURE_STATUSES` (`5xx,429`). Durations are human (`30s`, `1m 30s`, `250ms`). Unset variables take
    /// the defaults. `prefix` may be written with or without its trailing `_`.
    ///
    /// Strict: any other variable under `PREFIX_` is an error naming it (a typo such as
    /// `PREFIX_CONSECUTIVE_FAILURE` would otherwise be ignored silently). When the prefix is
    /// shared with the application's own settings, use
    /// [`from_env_shared`](Config::from_env_shared). Variables that are not UTF-8 are ignored,
    /// unless their name is under the prefix.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the variable whose value does not parse or is out of range, that
    /// is not a setting, or whose name or value is not UTF-8; or naming `prefix` if it is empty.
    pub fn from_env(prefix: &str) -> Result<Config, ConfigError> {
        read(prefix, std::env::vars_os(), Others::Refuse)
    }

    /// As [`from_env`](Config::from_env), for a prefix shared with other settings: variables
    /// under the prefix that are not hotbreaker settings are left alone.
    ///
    /// # Errors
    /// As [`from_env`](Config::from_env), less the variables that are not settings.
    pub fn from_env_shared(prefix: &str) -> Result<Config, ConfigError> {
        read(prefix, std::env::vars_os(), Others::Ignore)
    }

    /// [`from_env`](Config::from_env) over the given `(name, value)` pairs instead of the
    /// process's environment.
    ///
    /// # Errors
    /// As [`from_env`](Config::from_env).
    ///
    /// # Examples
    /// ```
    /// use hotbreaker::Config;
    ///
    /// let vars = [("PAY_FAILURE_RATE", "0.25"), ("PAY_OPEN_TIMEOUT", "45s"), ("HOME", "/root")];
    /// let c = Config::from_vars("PAY", vars)?;
    /// assert_eq!(c.failure_rate, Some(0.25));
    ///
    /// let bad = [("PAY_FAILURE_RATE", "lots")];
    /// assert_eq!(Config::from_vars("PAY", bad).unwrap_err().field(), "PAY_FAILURE_RATE");
    /// let typo = [("PAY_CONSECUTIVE_FAILURE", "3")];
    /// let err = Config::from_vars("PAY", typo).unwrap_err();
    /// assert_eq!(err.field(), "PAY_CONSECUTIVE_FAILURE");
    /// assert!(err.to_string().contains("PAY_CONSECUTIVE_FAILURES"));
    /// # Ok::<(), hotbreaker::ConfigError>(())
    /// ```
    pub fn from_vars<K: AsRef<OsStr>, V: AsRef<OsStr>>(
        prefix: &str,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Config, ConfigError> {
        read(prefix, vars, Others::Refuse)
    }

    /// [`from_env_shared`](Config::from_env_shared) over the given `(name, value)` pairs.
    ///
    /// # Errors
    /// As [`from_env_shared`](Config::from_env_shared).
    ///
    /// # Examples
    /// ```
    /// use hotbreaker::Config;
    ///
    /// let vars = [("PAY_FAILURE_RATE", "0.25"), ("PAY_DB_URL", "postgres://db")];
    /// assert_eq!(Config::from_vars_shared("PAY", vars)?.failure_rate, Some(0.25));
    /// assert_eq!(Config::from_vars("PAY", vars).unwrap_err().field(), "PAY_DB_URL");
    /// # Ok::<(), hotbreaker::ConfigError>(())
    /// ```
    pub fn from_vars_shared<K: AsRef<OsStr>, V: AsRef<OsStr>>(
        prefix: &str,
        vars: impl IntoIterator<Item = (K, V)>,
    ) -> Result<Config, ConfigError> {
        read(prefix, vars, Others::Ignore)
    }
}

/// The settings' variables under `PREFIX_`, by suffix: checked for UTF-8 and for being settings.
fn collect<K: AsRef<OsStr>, V: AsRef<OsStr>>(
    head: &str,
    vars: impl IntoIterator<Item = (K, V)>,
    others: Others,
) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut found = BTreeMap::new();
    let mut unknown = BTreeMap::new();
    for (name, value) in vars {
        let (name, value) = (name.as_ref(), value.as_ref());
        let Some(name) = name.to_str() else {
            // A name whose prefix is UTF-8 keeps it in the lossy form.
            let shown = name.to_string_lossy();
            if shown.starts_with(head) {
                return Err(ConfigError::owned(
                    shown.into_owned(),
                    "a variable name in UTF-8".into(),
                    String::new(),
                ));
            }
            continue;
        };
        let Some(suffix) = name.strip_prefix(head) else {
            continue;
        };
        if suffix.is_empty() || !SETTINGS.contains(&suffix) {
            if others == Others::Refuse {
                unknown.insert(name.to_owned(), suffix.to_owned());
            }
            continue;
        }
        let Some(value) = value.to_str() else {
            return Err(ConfigError::owned(
                name.to_owned(),
                "a value in UTF-8".into(),
                format!("{:?}", value.to_string_lossy()),
            ));
        };
        found.insert(suffix.to_owned(), value.trim().to_owned());
    }
    if let Some((name, suffix)) = unknown.into_iter().next() {
        let hint = closest(&suffix)
            .map(|s| format!(" (did you mean {head}{s}?)"))
            .unwrap_or_default();
        return Err(ConfigError::owned(
            name,
            format!(
                "not a hotbreaker setting{hint}; a prefix shared with other settings needs \
                 Config::from_env_shared"
            ),
            String::new(),
        ));
    }
    Ok(found)
}

/// The setting whose name is closest to `suffix`, if any is within a few edits.
fn closest(suffix: &str) -> Option<&'static str> {
    SETTINGS
        .iter()
        .map(|s| (crate::registry::edit_distance::edits(s, suffix), *s))
        .filter(|&(d, s)| d <= 3.min(s.len() / 2))
        .min_by_key(|&(d, _)| d)
        .map(|(_, s)| s)
}

fn read<K: AsRef<OsStr>, V: AsRef<OsStr>>(
    prefix: &str,
    vars: impl IntoIterator<Item = (K, V)>,
    others: Others,
) -> Result<Config, ConfigError> {
    let bare = prefix.strip_suffix('_').unwrap_or(prefix);
    if bare.is_empty() {
        return Err(ConfigError::owned(
            "prefix".into(),
            "a prefix such as \"PAYMENTS\"".into(),
            format!("{prefix:?}"),
        ));
    }
    let head = format!("{bare}_");
    let vars = collect(&head, vars, others)?;
    let var = |suffix: &str| format!("{head}{suffix}");
    let get = |suffix: &str| vars.get(suffix).map(|v| (var(suffix), v.as_str()));
    let bad = |name: String, expected: &str, v: &str| {
        ConfigError::owned(name, expected.to_owned(), format!("{v:?}"))
    };
    let count = |suffix: &str| -> Result<Option<u32>, ConfigError> {
        get(suffix)
            .map(|(name, v)| v.parse::<u32>().map_err(|_| bad(name, "a whole number", v)))
            .transpose()
    };
    let number = |suffix: &str| -> Result<Option<f64>, ConfigError> {
        get(suffix)
            .map(|(name, v)| v.parse::<f64>().map_err(|_| bad(name, "a number", v)))
            .transpose()
    };
    let duration = |suffix: &str| -> Result<Option<Duration>, ConfigError> {
        get(suffix)
            .map(|(name, v)| {
                human_duration::parse(v)
                    .map_err(|why| bad(name, &format!("{} ({why})", human_duration::EXPECTED), v))
            })
            .transpose()
    };
    let flag = |suffix: &str| -> Result<Option<bool>, ConfigError> {
        get(suffix)
            .map(|(name, v)| match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(bad(name, "true or false", v)),
            })
            .transpose()
    };
    let time_window = match (duration("TIME_WINDOW")?, count("TIME_WINDOW_BUCKETS")?) {
        (None, None) => None,
        (window, buckets) => Some(TimeWindow {
            window: window.unwrap_or(defaults::TIME_WINDOW),
            buckets: buckets.unwrap_or(defaults::BUCKETS),
        }),
    };
    let slow_parts = (
        duration("SLOW_CALLS_DURATION")?,
        number("SLOW_CALLS_RELATIVE")?,
        duration("SLOW_CALLS_MIN_DURATION")?,
        number("SLOW_CALLS_RATE")?,
    );
    let slow_calls = match slow_parts {
        (None, None, None, None) => None,
        // Which of duration and relative, and min_duration's company, are checked with the
        // rest of the settings below.
        (duration, relative, min_duration, Some(rate)) => Some(SlowCalls {
            duration,
            relative,
            min_duration,
            rate,
        }),
        (_, _, _, None) => return Err(missing(var("SLOW_CALLS_RATE"))),
    };
    let backoff_parts = (
        duration("BACKOFF_BASE")?,
        number("BACKOFF_MULTIPLIER")?,
        duration("BACKOFF_MAX")?,
        flag("BACKOFF_JITTER")?,
    );
    let backoff = match backoff_parts {
        (None, None, None, None) => None,
        (base, multiplier, max, jitter) => {
            // Left-out parts take the default backoff's, as in a file's `backoff` table.
            let d = Backoff::DEFAULT;
            Some(Backoff {
                base: base.unwrap_or(d.base),
                multiplier: multiplier.unwrap_or(d.multiplier),
                max: max.unwrap_or(d.max),
                jitter: jitter.unwrap_or(d.jitter),
            })
        }
    };
    let throttle = match (number("THROTTLE_K")?, number("THROTTLE_MAX_REJECTION")?) {
        (None, None) => None,
        (k, max_rejection) => {
            let d = Throttle::sre();
            Some(
                d.k(k.unwrap_or(d.k))
                    .max_rejection(max_rejection.unwrap_or(d.max_rejection)),
            )
        }
    };
    let config = Config {
        consecutive_failures: count("CONSECUTIVE_FAILURES")?,
        failure_rate: number("FAILURE_RATE")?,
        minimum_calls: count("MINIMUM_CALLS")?,
        time_window,
        count_window: count("COUNT_WINDOW")?,
        slow_calls,
        open_timeout: duration("OPEN_TIMEOUT")?,
        backoff,
        half_open_permits: count("HALF_OPEN_PERMITS")?,
        half_open_successes: count("HALF_OPEN_SUCCESSES")?,
        half_open_timeout: duration("HALF_OPEN_TIMEOUT")?,
        stripes: count("STRIPES")?,
        throttle,
        critical: flag("CRITICAL")?,
        call_timeout: duration("CALL_TIMEOUT")?,
        failure_statuses: get("FAILURE_STATUSES")
            .map(|(name, v)| {
                v.parse::<FailureStatuses>().map_err(|e| {
                    ConfigError::owned(name, e.expected().to_owned(), e.got().to_owned())
                })
            })
            .transpose()?,
    };
    Rules::validate(&config, None).map_err(|e| {
        let name = var(&e.field().replace('.', "_").to_ascii_uppercase());
        ConfigError::owned(name, e.expected().to_owned(), e.got().to_owned())
    })?;
    Ok(config)
}

fn missing(name: String) -> ConfigError {
    ConfigError::owned(
        name,
        "must be set too: the slow-call rule needs a rate".into(),
        String::new(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_setting_is_read() {
        // Each listed variable is accepted under strict reading (the values are all valid).
        for suffix in SETTINGS {
            let value = match suffix {
                "TIME_WINDOW"
                | "SLOW_CALLS_DURATION"
                | "OPEN_TIMEOUT"
                | "BACKOFF_BASE"
                | "BACKOFF_MAX"
                | "HALF_OPEN_TIMEOUT"
                | "CALL_TIMEOUT" => "10s",
                "FAILURE_RATE" | "SLOW_CALLS_RATE" | "THROTTLE_MAX_REJECTION" => "0.5",
                "THROTTLE_K" => "2",
                "BACKOFF_JITTER" => "true",
                "COUNT_WINDOW" => "100",
                "FAILURE_STATUSES" => "5xx,429",
                _ => "1",
            };
            let value = match suffix {
                "SLOW_CALLS_RELATIVE" => "4",
                "SLOW_CALLS_MIN_DURATION" => "10ms",
                _ => value,
            };
            let mut vars = vec![(format!("P_{suffix}"), value.to_owned())];
            let mut also = |k: &str, v: &str| {
                if k != suffix {
                    vars.push((format!("P_{k}"), v.into()));
                }
            };
            match suffix {
                "SLOW_CALLS_DURATION" | "SLOW_CALLS_RATE" => {
                    also("SLOW_CALLS_DURATION", "1s");
                    also("SLOW_CALLS_RATE", "0.5");
                }
                "SLOW_CALLS_RELATIVE" | "SLOW_CALLS_MIN_DURATION" => {
                    also("SLOW_CALLS_RELATIVE", "4");
                    also("SLOW_CALLS_RATE", "0.5");
                }
                _ => {}
            }
            let r = read("P", vars, Others::Refuse);
            assert!(r.is_ok(), "{suffix}: {:?}", r.err());
        }
    }

    #[test]
    fn the_throttle_reads_either_part_and_names_the_variable() {
        let r = read("P", [("P_THROTTLE_K", "1.5")], Others::Refuse).unwrap();
        assert_eq!(r.throttle, Some(Throttle::sre().k(1.5)));
        let r = read("P", [("P_THROTTLE_MAX_REJECTION", "0.5")], Others::Refuse).unwrap();
        assert_eq!(r.throttle, Some(Throttle::sre().max_rejection(0.5)));
        let e = read("P", [("P_THROTTLE_K", "0.5")], Others::Refuse).unwrap_err();
        assert_eq!(e.field(), "P_THROTTLE_K");
        let e = read("P", [("P_THROTTLE_MAX_REJECTION", "1")], Others::Refuse).unwrap_err();
        assert_eq!(e.field(), "P_THROTTLE_MAX_REJECTION");
    }

    #[test]
    fn the_relative_slow_call_rule_reads_and_names_the_variable() {
        let vars = [
            ("P_SLOW_CALLS_RELATIVE", "4.0"),
            ("P_SLOW_CALLS_MIN_DURATION", "5ms"),
            ("P_SLOW_CALLS_RATE", "0.5"),
        ];
        let r = read("P", vars, Others::Refuse).unwrap();
        assert_eq!(
            r.slow_calls,
            Some(SlowCalls::relative(4.0, 0.5).min_duration(std::time::Duration::from_millis(5)))
        );
        let bad = [
            (vec![("P_SLOW_CALLS_RELATIVE", "1")], "P_SLOW_CALLS_RATE"),
            (
                vec![("P_SLOW_CALLS_RELATIVE", "1"), ("P_SLOW_CALLS_RATE", "0.5")],
                "P_SLOW_CALLS_RELATIVE",
            ),
            (
                vec![
                    ("P_SLOW_CALLS_RELATIVE", "2"),
                    ("P_SLOW_CALLS_DURATION", "1s"),
                    ("P_SLOW_CALLS_RATE", "0.5"),
                ],
                "P_SLOW_CALLS_RELATIVE",
            ),
            (
                vec![
                    ("P_SLOW_CALLS_MIN_DURATION", "1s"),
                    ("P_SLOW_CALLS_DURATION", "1s"),
                    ("P_SLOW_CALLS_RATE", "0.5"),
                ],
                "P_SLOW_CALLS_MIN_DURATION",
            ),
            (
                vec![
                    ("P_SLOW_CALLS_RELATIVE", "2"),
                    ("P_SLOW_CALLS_MIN_DURATION", "0s"),
                    ("P_SLOW_CALLS_RATE", "0.5"),
                ],
                "P_SLOW_CALLS_MIN_DURATION",
            ),
        ];
        for (vars, field) in bad {
            let e = read("P", vars.clone(), Others::Refuse).unwrap_err();
            assert_eq!(e.field(), field, "{vars:?}: {e}");
        }
    }

    #[test]
    fn a_typo_gets_the_closest_name() {
        assert_eq!(closest("CONSECUTIVE_FAILURE"), Some("CONSECUTIVE_FAILURES"));
        assert_eq!(closest("FAILURERATE"), Some("FAILURE_RATE"));
        assert_eq!(closest("DATABASE_URL"), None);
        assert_eq!(crate::registry::edit_distance::edits("", "abc"), 3);
        assert_eq!(
            crate::registry::edit_distance::edits("kitten", "sitting"),
            3
        );
    }
}
