//! Configuration files (feature `serde`): one breaker's [`Config`] as TOML or JSON, and registry
//! files. Every error is a [`ConfigError`] naming the field as written: `failure_rate`,
//! `breakers.payments.backoff.max` in a registry file. The environment is in `env.rs`.

use std::collections::BTreeMap;
use std::path::Path;

use crate::config::Config;
use crate::error::{ConfigError, EXCERPT_CHARS, excerpt};
use crate::registry::Registry;
use crate::rules::Rules;

/// The longest message a parse error carries, in characters.
const MAX_MESSAGE_CHARS: usize = 8 * EXCERPT_CHARS;

/// Deserializes `T` from a parsed document, naming the path of whatever is wrong.
fn from_value<'de, T, D>(value: D) -> Result<T, ConfigError>
where
    T: serde::Deserialize<'de>,
    D: serde::Deserializer<'de>,
    D::Error: std::fmt::Display,
{
    serde_path_to_error::deserialize(value).map_err(|e| {
        let mut path = e.path().to_string();
        let message = readable(&e.inner().to_string());
        // Name an unknown field itself, should the path stop at its parent.
        if let Some(rest) = message.strip_prefix("unknown field `") {
            // An empty key is written as TOML writes it.
            let field = rest
                .split('`')
                .next()
                .map(|f| if f.is_empty() { "\"\"" } else { f });
            if let Some(field) = field.filter(|f| !path.ends_with(*f)) {
                path = if path == "." || path.is_empty() {
                    field.to_owned()
                } else {
                    format!("{path}.{field}")
                };
            }
        }
        if path == "." || path.is_empty() {
            path = "config".to_owned();
        }
        ConfigError::owned(path, message, String::new())
    })
}

/// A deserializer's message made fit for one line: without the "in `path`" line some
/// formats append (the error names the path already), and with every quoted value cut to an
/// excerpt.
fn readable(message: &str) -> String {
    let message = match message.find("\nin `") {
        Some(i) => &message[..i],
        None => message,
    };
    let mut out = String::new();
    let mut rest = message.trim();
    while let Some(open) = rest.find(['"', '`']) {
        let quote = &rest[open..=open];
        out.push_str(&rest[..=open]);
        let inner = &rest[open + 1..];
        match closing(inner, quote) {
            Some(close) => {
                out.push_str(&excerpt(&inner[..close]));
                out.push_str(quote);
                rest = &inner[close + 1..];
            }
            None => {
                out.push_str(&excerpt(inner));
                rest = "";
            }
        }
    }
    out.push_str(rest);
    match out.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((end, _)) => format!("{}…", &out[..end]),
        None => out,
    }
}

/// Where the quote opened before `inner` closes (a backslash escapes the next character).
fn closing(inner: &str, quote: &str) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in inner.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            _ if inner[i..].starts_with(quote) => return Some(i),
            _ => {}
        }
    }
    None
}

fn parse_toml(text: &str) -> Result<toml::Value, ConfigError> {
    text.parse::<toml::Table>()
        .map(toml::Value::Table)
        .map_err(|e| {
            let at = e
                .span()
                .and_then(|span| text.get(..span.start))
                .map(|before| {
                    let line = before.matches('\n').count() + 1;
                    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
                    format!(" at line {line}, column {column}")
                })
                .unwrap_or_default();
            syntax("TOML", &format!("{}{at}", e.message()))
        })
}

fn parse_json(text: &str) -> Result<serde_json::Value, ConfigError> {
    serde_json::from_str(text).map_err(|e| syntax("JSON", &e.to_string()))
}

fn syntax(format: &str, message: &str) -> ConfigError {
    ConfigError::owned(
        "config".to_owned(),
        format!("must be valid {format}: {}", readable(message)),
        String::new(),
    )
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
    /// assert_eq!(err.to_string(), "invalid failure_rate: must be in (0, 1], got 1.5");
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
}

/// A registry file: the default configuration and one per breaker name. Any other top-level
/// key is an error naming it, so that a typo (`[defaults]`) cannot pass for a breaker.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    default: Option<Config>,
    #[serde(default)]
    breakers: BTreeMap<String, Config>,
    /// [`Registry::strict`]: lookups by [`Registry::breaker`] refuse names not in `breakers`.
    #[serde(default)]
    strict: Option<bool>,
}

impl Registry {
    /// A registry from TOML: a `[default]` table for every breaker without its own, a
    /// `[breakers.NAME]` table per breaker name, and `strict = true` for
    /// [strict](Registry::strict) lookups. All are optional; any other top-level key is an
    /// error. `critical = true` in a breaker's table makes [`Registry::ready`] read it.
    ///
    /// ```toml
    /// strict = true
    ///
    /// [default]
    /// failure_rate = 0.5
    /// open_timeout = "30s"
    ///
    /// [breakers.payments]
    /// critical = true
    /// consecutive_failures = 3
    /// backoff = { base = "1s", max = "30s" }
    ///
    /// [breakers."api.example.com"]
    /// failure_rate = 0.25
    /// ```
    ///
    /// # Errors
    /// A [`ConfigError`] naming the field as written: `breakers.payments.failure_rate`,
    /// `default.open_timeout`, or an unknown top-level key (`defaults`).
    ///
    /// # Examples
    /// ```
    /// use hotbreaker::Registry;
    ///
    /// let r = Registry::from_toml("[breakers.payments]\nconsecutive_failures = 3")?;
    /// assert_eq!(r.get_or_create("payments").config().consecutive_failures, Some(3));
    ///
    /// let err = Registry::from_toml("[defaults]\nconsecutive_failures = 3").unwrap_err();
    /// assert_eq!(err.field(), "defaults");
    /// # Ok::<(), hotbreaker::ConfigError>(())
    /// ```
    pub fn from_toml(text: &str) -> Result<Registry, ConfigError> {
        Registry::from_file_contents(from_value(parse_toml(text)?)?)
    }

    /// As [`from_toml`](Registry::from_toml), from JSON: `{"default": {..}, "breakers":
    /// {"payments": {..}}}`.
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

    /// Applies a TOML or JSON file to this registry at runtime: every named configuration and
    /// then the default are set (existing breakers are reconfigured, see
    /// [`Breaker::reconfigure`](crate::Breaker::reconfigure)). The whole file is validated
    /// before anything is applied. Settings the file leaves out take their defaults, except a
    /// breaker's window shape and stripes, which it keeps.
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

    /// Validates every configuration of `file`, then sets them: each name's once, in name
    /// order (O(names) in all), then the default.
    fn apply(&self, file: File) -> Result<(), ConfigError> {
        let default = file
            .default
            .map(|config| Rules::validate(&config, None).map_err(|e| e.within("default")))
            .transpose()?;
        let mut named = Vec::with_capacity(file.breakers.len());
        for (name, config) in file.breakers {
            let rules = Rules::validate(&config, None).map_err(|e| within_breaker(e, &name))?;
            named.push((name, rules));
        }
        for (name, rules) in named {
            self.set_validated(&name, rules)
                .map_err(|e| within_breaker(e, &name))?;
        }
        if let Some(rules) = default {
            self.set_default_validated(rules)?;
        }
        if let Some(strict) = file.strict {
            self.set_strict(strict);
        }
        Ok(())
    }
}

/// `e` under `breakers.NAME`, as the file writes it.
fn within_breaker(e: ConfigError, name: &str) -> ConfigError {
    e.within(name).within("breakers")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_key_is_named_as_written() {
        for text in ["[\"\"]", "\"\" = 1"] {
            let e = Config::from_toml(text).unwrap_err();
            assert_eq!(e.field(), "\"\"", "{e}");
            let e = Registry::from_toml(text).unwrap_err();
            assert!(!e.field().is_empty(), "{e}");
        }
    }

    #[test]
    fn messages_lose_the_repeated_path_and_long_values() {
        assert_eq!(
            readable("invalid value: integer `-1`, expected u32\nin `consecutive_failures`\n"),
            "invalid value: integer `-1`, expected u32"
        );
        let long = format!(
            "invalid type: string \"{}\", expected u32",
            "x".repeat(5_000)
        );
        let short = readable(&long);
        assert!(short.chars().count() < 2 * EXCERPT_CHARS, "{short}");
        assert!(short.ends_with("…\", expected u32"), "{short}");
        assert_eq!(readable(r#"a "b\"c" d"#), r#"a "b\"c" d"#);
        assert_eq!(readable("unterminated \"abc"), "unterminated \"abc");
    }
}
