//! Errors: a rejected call, a protected call's error, a bad configuration.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use crate::State;

/// A call the breaker did not let through.
///
/// # Examples
/// ```
/// use hotbreaker::{Breaker, State};
///
/// let breaker = Breaker::builder().build().unwrap();
/// breaker.isolate();
/// let rejected = breaker.try_acquire().unwrap_err();
/// assert_eq!(rejected.state(), State::Isolated);
/// assert_eq!(rejected.retry_after(), None);
/// assert_eq!(rejected.reason(), hotbreaker::Reason::Isolated);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// The state that rejected the call; Closed for a call the throttle turned away.
    pub(crate) state: State,
    /// Nanoseconds until the deadline while Open: turned into a `Duration` only when asked for.
    pub(crate) retry_after_ns: Option<u64>,
}

/// Why a call was [`Rejected`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// The breaker is Open.
    Open,
    /// The breaker is HalfOpen and every probe slot is taken.
    HalfOpenFull,
    /// The breaker was isolated by hand.
    Isolated,
    /// The breaker is Closed and its [throttle](crate::Throttle) turned the call away, to shed
    /// load from a dependency that is failing to serve it.
    Throttled,
}

impl Rejected {
    /// A call the throttle turned away while Closed.
    pub(crate) const THROTTLED: Rejected = Rejected {
        state: State::Closed,
        retry_after_ns: None,
    };

    /// The state that rejected the call: Open, HalfOpen with every probe slot taken, Isolated,
    /// or Closed for a call the [throttle](crate::Throttle) turned away (see
    /// [`reason`](Rejected::reason)).
    pub fn state(&self) -> State {
        self.state
    }

    /// Why the call was rejected: tells a throttled call (the breaker is Closed and shedding
    /// load) from one rejected by an Open, HalfOpen or Isolated breaker.
    pub fn reason(&self) -> Reason {
        match self.state {
            State::Open => Reason::Open,
            State::HalfOpen => Reason::HalfOpenFull,
            State::Isolated => Reason::Isolated,
            // Closed (or Disabled, which never rejects): only the throttle rejects there.
            _ => Reason::Throttled,
        }
    }

    /// While Open: the time until the breaker will let a probe through. `None` when HalfOpen
    /// (probes are out; their verdict decides) or Isolated (only a manual reset helps).
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after_ns.map(Duration::from_nanos)
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.reason() == Reason::Throttled {
            return f.write_str("circuit breaker is throttling calls");
        }
        write!(f, "circuit breaker is {}", self.state)?;
        if let Some(d) = self.retry_after() {
            write!(f, "; retry after {:?}", round_up_to_millis(d))?;
        }
        Ok(())
    }
}

impl std::error::Error for Rejected {}

/// `d` rounded up to a whole millisecond, for people to read ("986ms", "29.5s"): never earlier
/// than the exact value, which [`Rejected::retry_after`] keeps.
fn round_up_to_millis(d: Duration) -> Duration {
    let ms = d.as_nanos().div_ceil(1_000_000);
    Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX))
}

/// The error of a call made through [`Breaker::call`](crate::Breaker::call) or one of its
/// asynchronous forms.
///
/// One type for every way of calling, so a service can hold one error type whether it calls
/// synchronously, through a future or through the tower layer. The synchronous `call` and
/// `call_with` have no deadline and never return [`Error::Timeout`]; a `match` on their result
/// still needs an arm for it (or `_`, as the type is `#[non_exhaustive]`).
///
/// `Display` says which of the three happened; the protected call's own error is the
/// [`source`](std::error::Error::source) of an [`Error::Inner`], not repeated in its text (so
/// `{:#}` with `anyhow`, or walking `source()`, prints each message once).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error<E> {
    /// The breaker did not let the call through.
    Rejected(Rejected),
    /// The call ran and returned this error.
    Inner(E),
    /// The call ran past the deadline it was given (the `tokio` feature's timed calls and the
    /// tower layer's `timeout`); it was dropped and its outcome is the classifier's
    /// [`timed_out`](crate::classify::Classify::timed_out). Plain calls never return it.
    Timeout(Duration),
}

impl<E> Error<E> {
    /// The protected call's own error, if it ran.
    pub fn into_inner(self) -> Option<E> {
        match self {
            Error::Inner(e) => Some(e),
            Error::Rejected(_) | Error::Timeout(_) => None,
        }
    }
}

impl<E> From<Rejected> for Error<E> {
    fn from(rejected: Rejected) -> Self {
        Error::Rejected(rejected)
    }
}

impl<E> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Rejected(r) => r.fmt(f),
            Error::Inner(_) => f.write_str("the protected call failed"),
            Error::Timeout(d) => write!(f, "call timed out after {d:?}"),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for Error<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Inner(e) => Some(e),
            Error::Rejected(_) | Error::Timeout(_) => None,
        }
    }
}

/// A configuration [`Builder::build`](crate::Builder::build) refused, naming the field, what it
/// accepts and what it got.
///
/// # Examples
/// ```
/// use hotbreaker::Breaker;
///
/// let err = Breaker::builder().failure_rate(1.5).build().unwrap_err();
/// assert_eq!(err.field(), "failure_rate");
/// assert_eq!(err.to_string(), "invalid failure_rate: must be in (0, 1], got 1.5");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    field: Cow<'static, str>,
    expected: Cow<'static, str>,
    got: String,
}

impl ConfigError {
    pub(crate) fn new(
        field: &'static str,
        expected: impl Into<Cow<'static, str>>,
        got: impl fmt::Debug,
    ) -> Self {
        ConfigError {
            field: Cow::Borrowed(field),
            expected: expected.into(),
            got: excerpt(&format!("{got:?}")),
        }
    }

    /// As [`new`](ConfigError::new), with the value already written out (e.g. several fields
    /// by name: `max = 500ms, base = 1s`) from numbers and durations, which are short.
    pub(crate) fn described(
        field: &'static str,
        expected: impl Into<Cow<'static, str>>,
        got: &str,
    ) -> Self {
        ConfigError {
            field: Cow::Borrowed(field),
            expected: expected.into(),
            got: got.to_owned(),
        }
    }

    /// An error found outside the builder (a file, a variable): all parts given as text. The
    /// field and the value are cut to a readable length.
    #[cfg_attr(not(feature = "serde"), allow(dead_code))]
    pub(crate) fn owned(field: String, expected: String, got: String) -> Self {
        let field = if field.chars().count() > 2 * EXCERPT_CHARS {
            Cow::Owned(cut(&field, 2 * EXCERPT_CHARS))
        } else {
            Cow::Owned(field)
        };
        ConfigError {
            field,
            expected: Cow::Owned(expected),
            got: excerpt(&got),
        }
    }

    /// The same error under `prefix` (a breaker's name in a registry): `prefix.field`.
    #[cfg_attr(not(feature = "serde"), allow(dead_code))]
    pub(crate) fn within(mut self, prefix: &str) -> Self {
        self.field = Cow::Owned(format!("{prefix}.{}", self.field));
        self
    }

    /// The builder method / field at fault, e.g. `"failure_rate"`; in a registry file, prefixed
    /// with the breaker's name (`"payments.failure_rate"`); from the environment, the variable
    /// (`"PAYMENTS_FAILURE_RATE"`).
    pub fn field(&self) -> &str {
        &self.field
    }

    /// What the field accepts, e.g. `"must be in (0, 1]"`.
    pub fn expected(&self) -> &str {
        &self.expected
    }

    /// The value that was given, as text.
    pub fn got(&self) -> &str {
        &self.got
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid {}: {}", self.field, self.expected)?;
        if !self.got.is_empty() {
            write!(f, ", got {}", self.got)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// How many characters of a value an error message quotes.
pub(crate) const EXCERPT_CHARS: usize = 64;

/// `text`, or its first [`EXCERPT_CHARS`] characters and "…" when it is longer: a 1 MB bad value
/// makes a one-line message.
pub(crate) fn excerpt(text: &str) -> String {
    cut(text, EXCERPT_CHARS)
}

fn cut(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_prints_whole_milliseconds_rounded_up() {
        let shown = |nanos: u64| {
            Rejected {
                state: State::Open,
                retry_after_ns: Some(nanos),
            }
            .to_string()
        };
        assert_eq!(
            shown(985_737_515),
            "circuit breaker is open; retry after 986ms"
        );
        assert_eq!(
            shown(29_500_000_000),
            "circuit breaker is open; retry after 29.5s"
        );
        assert_eq!(shown(1), "circuit breaker is open; retry after 1ms");
        assert_eq!(shown(u64::MAX).len(), shown(u64::MAX).trim().len());
    }

    #[test]
    fn values_are_cut_to_an_excerpt() {
        let long = "é".repeat(10_000);
        let e = ConfigError::owned(long.clone(), "short".into(), long.clone());
        assert!(e.to_string().chars().count() < 4 * EXCERPT_CHARS, "{e}");
        assert!(e.got().ends_with('…'));
        assert_eq!(excerpt("short"), "short");
        let e = ConfigError::new("failure_rate", "must be in (0, 1]", long);
        assert_eq!(e.got().chars().count(), EXCERPT_CHARS + 1);
    }
}
