//! The error of a strict registry lookup: a name the registry does not know, with the closest
//! known name when one is near enough to be a typo.

use std::fmt;

use crate::error::excerpt;
use crate::registry::edit_distance::edits;

/// A breaker name that the [`Registry`](crate::Registry) neither has nor has a configuration
/// for, from [`Registry::breaker`](crate::Registry::breaker) in strict mode or
/// [`Registry::ready_for`](crate::Registry::ready_for).
///
/// # Examples
/// ```
/// let registry = hotbreaker::Registry::default().strict();
/// registry.set_config("inventory", hotbreaker::Config::default())?;
/// let err = registry.breaker("inventroy").unwrap_err();
/// assert_eq!(err.name(), "inventroy");
/// assert_eq!(err.suggestion(), Some("inventory"));
/// assert_eq!(
///     err.to_string(),
///     "no breaker named \"inventroy\" is configured (did you mean \"inventory\"?)"
/// );
/// # Ok::<(), hotbreaker::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownBreaker {
    name: String,
    suggestion: Option<String>,
}

impl UnknownBreaker {
    /// `name` is unknown; `known` are the names the registry knows.
    pub(crate) fn new<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Self {
        UnknownBreaker {
            name: excerpt(name),
            suggestion: closest(name, known).map(str::to_owned),
        }
    }

    /// The name asked for (cut to its first 64 characters and "…" when longer).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The known name closest to it, when at most a third of its characters differ (at least
    /// one): a likely typo.
    pub fn suggestion(&self) -> Option<&str> {
        self.suggestion.as_deref()
    }
}

impl fmt::Display for UnknownBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "no breaker named {:?} is configured", self.name)?;
        if let Some(s) = &self.suggestion {
            write!(f, " (did you mean {s:?}?)")?;
        }
        Ok(())
    }
}

impl std::error::Error for UnknownBreaker {}

/// The names longer than this are not compared (edit distance is quadratic in length).
const MAX_COMPARED_CHARS: usize = 256;

/// The name of `known` nearest to `name` by edit distance, if within a third of its length.
fn closest<'a>(name: &str, known: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let chars = name.chars().count();
    if chars > MAX_COMPARED_CHARS {
        return None;
    }
    let limit = (chars / 3).max(1);
    known
        .into_iter()
        // Lengths further apart than the limit cannot be within it: skipped without comparing.
        .filter(|k| k.len().abs_diff(name.len()) <= 4 * limit)
        .filter(|k| k.chars().count().abs_diff(chars) <= limit)
        .map(|k| (edits(name, k), k))
        .filter(|&(d, _)| d <= limit)
        .min()
        .map(|(_, k)| k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_only_near_names() {
        let known = ["inventory", "payments", "db"];
        assert_eq!(closest("inventroy", known), Some("inventory"));
        assert_eq!(closest("paymnts", known), Some("payments"));
        assert_eq!(closest("dc", known), Some("db"));
        assert_eq!(closest("search", known), None);
        assert_eq!(closest("", known), None);
        assert_eq!(
            closest(&"x".repeat(10_000), known),
            None,
            "too long to compare"
        );
    }

    #[test]
    fn long_names_are_cut_in_the_message() {
        let e = UnknownBreaker::new(&"y".repeat(1_000), ["db"]);
        assert!(e.to_string().len() < 200, "{e}");
    }
}
