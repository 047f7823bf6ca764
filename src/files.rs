//! Configuration from outside (feature `serde`): TOML and JSON text and files, and environment
//! variables. Every error is a [`ConfigError`] naming the field as written: `failure_rate`,
//! `payments.backoff.max` in a registry file, `PAYMENTS_FAILURE_RATE` in the environment.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::backoff::Backoff;
use crate::config::{Config, SlowCalls, TimeWindow};
use crate::error::ConfigError;
use crate::registry::Registry;
use crate::rules::Rules;

/// The key of a registry file's default configuration.
pub(crate) const DEFAULT_KEY: &str = "default";

/// Deserializes `T` from a parsed document, naming the path of whatever is wrong.
fn from_value<'de, T, D>(value: D) -> Result<T, ConfigError>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
    D::Error: std::fmt::Display,
{
    serde_path_to_error::deserialize(value).map_err(|e| {
        let mut path = e.path().to_string();
        let message = e.inner().to_string();
        // Name an unknown field itself, should the path stop at its parent.
        if let Some(rest) = message.strip_prefix("unknown field `") {
            if let Some(field) = rest.split('`').next().filter(|f| !path.ends_with(*f)) {
                path = if path == "." {
                    field.to_owned()
                } else {
                    format!("{path}.{field}")
                };
            }
        }
        if path == "." {
            path = "config".to_owned();
        }
        ConfigError::owned(path, message, String::new())
    })
}

fn syntax(format: &str, e: impl std::fmt::Display) -> ConfigError {
    ConfigError::owned(
        "config".to_owned(),
        format!("valid {format}"),
        e.to_string().trim().to_owned(),
    )
}

fn parse_toml(text: &str) -> Result<toml::Value, ConfigError> {
    text.parse::<toml::Table>()
        .map(toml::Value::Table)
        .map_err(|e| syntax("TOML", e))
}

fn parse_json(text: &str) -> Result<serde_json::Value, ConfigError> {
    serde_json::from_str(text).map_err(|e| syntax("JSON", e))
}

impl Config {
    /// One breaker's settings from TOML (see [`Config`] for the format), validated.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the field: bad syntax, an unknown field, a wrong type, a bad
    /// duration, or a value out of range.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use hotbreaker::Config;
    ///
    /// let c = Config::from_toml(r#"
    ///     consecutive_failures = 3
    ///     open_timeout = "1m 30s"
    /// "#)?;
    /// assert_eq!(c.open_timeout, Some(Duration::from_secs(90)));
    ///
    /// let err = Config::from_toml(r#"open_timeout = "soon""#).unwrap_err();
    /// assert_eq!(err.field(), "open_timeout");
    /// let err = Config::from_toml("failure_rate = 1.5").unwrap_err();
    /// assert_eq!(err.field(), "failure_rate");
    /// # Ok::<(), hotbreaker::ConfigError>(())
    /// ```
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let config: Config = from_value(parse_toml(text)?)?;
        Rules::validate(&config, None)?;
        Ok(config)
    }

    /// As [`from_toml`](Config::from_toml), from JSON.
    ///
    /// # Errors
    /// As [`from_toml`](Config::from_toml).
    pub fn from_json(text: &str) -> Result<Config, ConfigError> {
        let config: Config = from_value(parse_json(text)?)?;
        Rules::validate(&config, None)?;
        Ok(config)
    }

    /// As TOML text.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a Config always serializes")
    }

    /// Settings from the environment: `PREFIX_CONSECUTIVE_FAILURES`, `PREFIX_FAILURE_RATE`,
    /// `PREFIX_MINIMUM_CALLS`, `PREFIX_TIME_WINDOW` (a duration) and `PREFIX_TIME_WINDOW_BUCKETS`,
    /// `PREFIX_COUNT_WINDOW`, `PREFIX_SLOW_CALLS_DURATION` and `PREFIX_SLOW_CALLS_RATE`,
    /// `PREFIX_OPEN_TIMEOUT`, `PREFIX_BACKOFF_BASE` / `_MULTIPLIER` / `_MAX` / `_JITTER`,
    /// `PREFIX_HALF_OPEN_PERMITS`, `PREFIX_HALF_OPEN_SUCCESSES`, `PREFIX_HALF_OPEN_TIMEOUT`,
    /// `PREFIX_STRIPES`. Durations are human (`30s`, `1m 30s`, `250ms`). Unset variables take
    /// the defaults; other variables under the prefix are left alone (the prefix may be shared
    /// with the application's own settings).
    ///
    /// # Errors
    /// A [`ConfigError`] naming the variable whose value does not parse or is out of range.
    pub fn from_env(prefix: &str) -> Result<Config, ConfigError> {
        Config::from_vars(prefix, std::env::vars())
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
    /// let vars = [("PAY_FAILURE_RATE", "0.25"), ("PAY_OPEN_TIMEOUT", "45s"), ("PAY_DB_URL", "x")];
    /// let c = Config::from_vars("PAY", vars.map(|(k, v)| (k.to_owned(), v.to_owned())))?;
    /// assert_eq!(c.failure_rate, Some(0.25));
    ///
    /// let bad = [("PAY_FAILURE_RATE".to_owned(), "lots".to_owned())];
    /// assert_eq!(Config::from_vars("PAY", bad).unwrap_err().field(), "PAY_FAILURE_RATE");
    /// # Ok::<(), hotbreaker::ConfigError>(())
    /// ```
    pub fn from_vars(
        prefix: &str,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let head = format!("{prefix}_");
        let vars: BTreeMap<String, String> = vars
            .into_iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(&head)?.to_owned(), v)))
            .collect();
        let var = |suffix: &str| format!("{head}{suffix}");
        let get = |suffix: &str| vars.get(suffix).map(|v| (var(suffix), v.trim()));
        let count = |suffix: &str| -> Result<Option<u32>, ConfigError> {
            get(suffix)
                .map(|(name, v)| {
                    v.parse::<u32>().map_err(|_| {
                        ConfigError::owned(name, "a whole number".into(), format!("{v:?}"))
                    })
                })
                .transpose()
        };
        let number = |suffix: &str| -> Result<Option<f64>, ConfigError> {
            get(suffix)
                .map(|(name, v)| {
                    v.parse::<f64>()
                        .map_err(|_| ConfigError::owned(name, "a number".into(), format!("{v:?}")))
                })
                .transpose()
        };
        let duration = |suffix: &str| -> Result<Option<Duration>, ConfigError> {
            get(suffix)
                .map(|(name, v)| {
                    humantime::parse_duration(v).map_err(|e| {
                        ConfigError::owned(
                            name,
                            format!("a duration such as \"30s\" or \"1m 30s\" ({e})"),
                            format!("{v:?}"),
                        )
                    })
                })
                .transpose()
        };
        let flag = |suffix: &str| -> Result<Option<bool>, ConfigError> {
            get(suffix)
                .map(|(name, v)| match v.to_ascii_lowercase().as_str() {
                    "true" | "1" | "yes" | "on" => Ok(true),
                    "false" | "0" | "no" | "off" => Ok(false),
                    _ => Err(ConfigError::owned(
                        name,
                        "true or false".into(),
                        format!("{v:?}"),
                    )),
                })
                .transpose()
        };
        let time_window = match (duration("TIME_WINDOW")?, count("TIME_WINDOW_BUCKETS")?) {
            (None, None) => None,
            (window, buckets) => Some(TimeWindow {
                window: window.unwrap_or(Duration::from_secs(10)),
                buckets: buckets.unwrap_or(10),
            }),
        };
        let slow_calls = match (duration("SLOW_CALLS_DURATION")?, number("SLOW_CALLS_RATE")?) {
            (None, None) => None,
            (Some(duration), Some(rate)) => Some(SlowCalls { duration, rate }),
            (None, Some(_)) => return Err(missing(var("SLOW_CALLS_DURATION"))),
            (Some(_), None) => return Err(missing(var("SLOW_CALLS_RATE"))),
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
                let b = Backoff::exponential(
                    base.unwrap_or(Duration::from_secs(5)),
                    multiplier.unwrap_or(2.0),
                    max.unwrap_or(Duration::from_secs(60)),
                );
                Some(if jitter.unwrap_or(true) {
                    b.with_jitter()
                } else {
                    b
                })
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
        };
        Rules::validate(&config, None).map_err(|e| {
            let name = var(&e.field().replace('.', "_").to_ascii_uppercase());
            ConfigError::owned(name, e.expected().to_owned(), e.got().to_owned())
        })?;
        Ok(config)
    }
}

fn missing(name: String) -> ConfigError {
    ConfigError::owned(
        name,
        "must be set too: the slow-call rule needs a duration and a rate".into(),
        String::new(),
    )
}

/// A registry file: `default` plus one table per breaker name.
type File = BTreeMap<String, Config>;

impl Registry {
    /// A registry from TOML: a `[default]` table for every breaker without its own, and a table
    /// per breaker name.
    ///
    /// ```toml
    /// [default]
    /// failure_rate = 0.5
    /// open_timeout = "30s"
    ///
    /// [payments]
    /// consecutive_failures = 3
    /// backoff = { base = "1s", max = "30s" }
    /// ```
    ///
    /// # Errors
    /// A [`ConfigError`] naming `name.field` (or `default.field`).
    pub fn from_toml(text: &str) -> Result<Registry, ConfigError> {
        Registry::from_file_contents(from_value(parse_toml(text)?)?)
    }

    /// As [`from_toml`](Registry::from_toml), from JSON (an object of name → config).
    ///
    /// # Errors
    /// As [`from_toml`](Registry::from_toml).
    pub fn from_json(text: &str) -> Result<Registry, ConfigError> {
        Registry::from_file_contents(from_value(parse_json(text)?)?)
    }

    /// As [`from_toml`](Registry::from_toml) / [`from_json`](Registry::from_json), from a file
    /// ending in `.toml` or `.json`.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the path if it cannot be read or has another extension, else as
    /// [`from_toml`](Registry::from_toml).
    pub fn from_file(path: impl AsRef<Path>) -> Result<Registry, ConfigError> {
        let registry = Registry::default();
        registry.load_file(path)?;
        Ok(registry)
    }

    /// Applies a TOML or JSON file to this registry at runtime: the default and every named
    /// configuration are set (existing breakers are reconfigured, see
    /// [`Breaker::reconfigure`](crate::Breaker::reconfigure)). The whole file is validated
    /// before anything is applied.
    ///
    /// # Errors
    /// As [`from_file`](Registry::from_file); also an existing breaker refusing a new window
    /// shape, after the configurations before it (in name order) were applied.
    pub fn load_file(&self, path: impl AsRef<Path>) -> Result<(), ConfigError> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError::owned(shown.clone(), "a readable file".into(), e.to_string())
        })?;
        let file: File = match path.extension().and_then(|e| e.to_str()) {
            Some("toml") => from_value(parse_toml(&text)?)?,
            Some("json") => from_value(parse_json(&text)?)?,
            _ => {
                return Err(ConfigError::owned(
                    shown,
                    "a file ending in .toml or .json".into(),
                    String::new(),
                ));
            }
        };
        self.apply(file)
    }

    fn from_file_contents(file: File) -> Result<Registry, ConfigError> {
        let registry = Registry::default();
        registry.apply(file)?;
        Ok(registry)
    }

    fn apply(&self, file: File) -> Result<(), ConfigError> {
        for (name, config) in &file {
            Rules::validate(config, None).map_err(|e| e.within(name))?;
        }
        for (name, config) in file {
            if name == DEFAULT_KEY {
                self.set_default(config)?;
            } else {
                self.set_config(&name, config)?;
            }
        }
        Ok(())
    }
}
