//! Settings as data: [`Config`], what a file, the environment or [`Breaker::reconfigure`]
//! carries. [`Builder`](crate::Builder) is the same settings as methods.
//!
//! [`Breaker::reconfigure`]: crate::Breaker::reconfigure

use std::time::Duration;

use crate::rules::backoff::Backoff;
use crate::throttle::Throttle;

/// The settings of a breaker as plain data. Every field is optional; `None` takes the default
/// listed on [`Builder`](crate::Builder). Validated by [`Builder::build`](crate::Builder::build),
/// [`Breaker::reconfigure`](crate::Breaker::reconfigure) and the registry, which name the field
/// at fault in a [`ConfigError`](crate::ConfigError).
///
/// With the `serde` feature it (de)serializes with human-readable durations (`"30s"`,
/// `"1m 30s"`, `"250ms"`) and rejects unknown fields:
///
/// ```toml
/// consecutive_failures = 5
/// failure_rate = 0.5
/// time_window = { window = "30s", buckets = 30 }
/// backoff = { base = "1s", multiplier = 2.0, max = "30s", jitter = true }
/// half_open_permits = 2
/// throttle = { k = 2.0, max_rejection = 0.9 }
/// ```
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use hotbreaker::{Breaker, Config};
///
/// let config = Config {
///     failure_rate: Some(0.25),
///     open_timeout: Some(Duration::from_secs(10)),
///     ..Config::default()
/// };
/// let breaker = Breaker::builder().config(config.clone()).build()?;
/// assert_eq!(breaker.config().failure_rate, Some(0.25));
/// # Ok::<(), hotbreaker::ConfigError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(default, deny_unknown_fields)
)]
pub struct Config {
    /// See [`Builder::consecutive_failures`](crate::Builder::consecutive_failures).
    pub consecutive_failures: Option<u32>,
    /// See [`Builder::failure_rate`](crate::Builder::failure_rate).
    pub failure_rate: Option<f64>,
    /// See [`Builder::minimum_calls`](crate::Builder::minimum_calls).
    pub minimum_calls: Option<u32>,
    /// See [`Builder::time_window`](crate::Builder::time_window). At most one of `time_window`
    /// and `count_window`.
    pub time_window: Option<TimeWindow>,
    /// See [`Builder::count_window`](crate::Builder::count_window).
    pub count_window: Option<u32>,
    /// See [`Builder::slow_calls`](crate::Builder::slow_calls).
    pub slow_calls: Option<SlowCalls>,
    /// See [`Builder::open_timeout`](crate::Builder::open_timeout). At most one of
    /// `open_timeout` and `backoff`.
    #[cfg_attr(feature = "serde", serde(with = "crate::human_duration::optional"))]
    pub open_timeout: Option<Duration>,
    /// See [`Builder::backoff`](crate::Builder::backoff).
    pub backoff: Option<Backoff>,
    /// See [`Builder::half_open_permits`](crate::Builder::half_open_permits).
    pub half_open_permits: Option<u32>,
    /// See [`Builder::half_open_successes`](crate::Builder::half_open_successes).
    pub half_open_successes: Option<u32>,
    /// See [`Builder::half_open_timeout`](crate::Builder::half_open_timeout).
    #[cfg_attr(feature = "serde", serde(with = "crate::human_duration::optional"))]
    pub half_open_timeout: Option<Duration>,
    /// See [`Builder::stripes`](crate::Builder::stripes).
    pub stripes: Option<u32>,
    /// See [`Builder::throttle`](crate::Builder::throttle). In a file, a table
    /// `throttle = { k = 2.0, max_rejection = 0.9 }` (either field optional; `throttle = {}` is
    /// the default throttle).
    pub throttle: Option<Throttle>,
    /// For a [`Registry`](crate::Registry)'s tower layer only (`Registry::layer`, features
    /// `http` and `tokio`): each call's deadline, in [1 ms, 365 days]; none by default. A
    /// breaker's own behaviour ignores it.
    #[cfg_attr(feature = "serde", serde(with = "crate::human_duration::optional"))]
    pub call_timeout: Option<Duration>,
    /// For a [`Registry`](crate::Registry)'s tower layer only (`Registry::layer`, features
    /// `http` and `tokio`): the HTTP statuses that are Failures, `["5xx"]` by default (see
    /// [`FailureStatuses`](crate::FailureStatuses)). A breaker's own behaviour ignores it.
    pub failure_statuses: Option<crate::FailureStatuses>,
    /// For a [`Registry`](crate::Registry) only: whether [`Registry::ready`](crate::Registry::ready)
    /// reads this breaker (default `false`). Set it on the breakers without which the service
    /// cannot answer any request. A breaker's own behaviour ignores it.
    pub critical: Option<bool>,
}

/// A time window: the last `window` of time in `buckets` equal buckets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(deny_unknown_fields)
)]
pub struct TimeWindow {
    /// How far back the window looks.
    #[cfg_attr(feature = "serde", serde(with = "crate::human_duration::required"))]
    pub window: Duration,
    /// How many buckets it is kept in.
    pub buckets: u32,
}

/// The slow-call rule: which calls are slow, and the slow-call rate that trips.
///
/// Either absolute (`duration`: a call strictly longer than it is slow) or relative
/// (`relative`: a call strictly longer than `relative ×` the dependency's typical latency,
/// learned from its Successes, and longer than `min_duration`, is slow); set exactly one of
/// `duration` and `relative`. The guide `docs/slow-calls.md` in the repository describes the
/// estimator, its warm-up and how fast it follows a change.
///
/// With the `serde` feature it is a table, `{ duration = "1s", rate = 0.5 }` or
/// `{ relative = 4.0, min_duration = "5ms", rate = 0.5 }` (`min_duration` optional, 1 ms by
/// default); unknown fields are errors, and so are contradicting ones (both `duration` and
/// `relative`, or `min_duration` without `relative`) when the configuration is validated.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use hotbreaker::{Breaker, SlowCalls};
///
/// let rule = SlowCalls::relative(4.0, 0.5).min_duration(Duration::from_millis(5));
/// let breaker = Breaker::builder().slow_call_rule(rule).build()?;
/// assert_eq!(breaker.config().slow_calls, Some(rule));
/// # Ok::<(), hotbreaker::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(deny_unknown_fields)
)]
pub struct SlowCalls {
    /// Absolute: a call strictly longer than this is slow.
    #[cfg_attr(
        feature = "serde",
        serde(
            default,
            with = "crate::human_duration::optional",
            skip_serializing_if = "Option::is_none"
        )
    )]
    pub duration: Option<Duration>,
    /// Relative: a call strictly longer than this multiple (finite, > 1) of the typical latency
    /// is slow.
    #[cfg_attr(
        feature = "serde",
        serde(default, skip_serializing_if = "Option::is_none")
    )]
    pub relative: Option<f64>,
    /// With `relative` only: no call this short or shorter is slow. 1 ms when `None`.
    #[cfg_attr(
        feature = "serde",
        serde(
            default,
            with = "crate::human_duration::optional",
            skip_serializing_if = "Option::is_none"
        )
    )]
    pub min_duration: Option<Duration>,
    /// Trip when `slow / calls ≥ rate`.
    pub rate: f64,
}

impl SlowCalls {
    /// Calls strictly longer than `duration` are slow; trip at a slow-call rate of `rate`.
    pub const fn absolute(duration: Duration, rate: f64) -> SlowCalls {
        SlowCalls {
            duration: Some(duration),
            relative: None,
            min_duration: None,
            rate,
        }
    }

    /// Calls strictly longer than `multiplier ×` the dependency's typical latency (and than
    /// the floor, [`min_duration`](SlowCalls::min_duration)) are slow; trip at a slow-call rate
    /// of `rate`. The typical latency is learned from timed Successes; until a few are seen, no
    /// call is slow.
    pub const fn relative(multiplier: f64, rate: f64) -> SlowCalls {
        SlowCalls {
            duration: None,
            relative: Some(multiplier),
            min_duration: None,
            rate,
        }
    }

    /// The floor of a relative rule: no call this short or shorter is slow (1 ms by default).
    pub const fn min_duration(mut self, floor: Duration) -> SlowCalls {
        self.min_duration = Some(floor);
        self
    }
}
