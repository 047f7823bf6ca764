//! Settings as data: [`Config`], what a file, the environment or [`Breaker::reconfigure`]
//! carries. [`Builder`](crate::Builder) is the same settings as methods.
//!
//! [`Breaker::reconfigure`]: crate::Breaker::reconfigure

use std::time::Duration;

use crate::backoff::Backoff;
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

/// The slow-call rule: calls longer than `duration`, at a rate of at least `rate`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(deny_unknown_fields)
)]
pub struct SlowCalls {
    /// A call strictly longer than this is slow.
    #[cfg_attr(feature = "serde", serde(with = "crate::human_duration::required"))]
    pub duration: Duration,
    /// Trip when `slow / calls ≥ rate`.
    pub rate: f64,
}
