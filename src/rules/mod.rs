//! Validated settings: the [`Rules`] a breaker runs on, every default, and the range each setting
//! accepts.
//!
//! [`Config`] is what the user wrote, with `None` for "the default"; [`Rules::validate`] fills in
//! the defaults from [`defaults`], checks every value against the limits of `limits.rs`, and
//! converts durations to the nanoseconds the hot path compares. Beside them: `cell.rs` (the rules
//! a live breaker reads, swapped whole), `policy.rs` (which window rule trips), `rate.rs`,
//! `backoff.rs`, and `effective.rs` (the settings in force with every default filled in).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::config::Config;
use crate::error::ConfigError;
use crate::state::{Limits, MAX_HALF_OPEN};
use crate::throttle::ThrottleRule;
use crate::transition::Transition;
use crate::window::{MAX_BUCKETS, WindowSpec, WindowStats};
use rate::Rate;

pub(crate) mod backoff;
mod cell;
pub(crate) mod defaults;
mod effective;
mod limits;
pub(crate) mod policy;
pub(crate) mod rate;
#[cfg(test)]
mod tests;

pub use backoff::Backoff;
pub(crate) use cell::{LiveRules, RulesCell};
use defaults::default_stripes;
pub(crate) use effective::effective;
use effective::trip_rules;
pub use limits::MAX_DURATION;
use limits::{
    MAX_COUNT, MAX_COUNT_WINDOW, MAX_STRIPES, MIN_DURATION, count, duration,
    positive_duration_range, rate,
};

pub(crate) type Predicate = Arc<dyn Fn(&WindowStats) -> bool + Send + Sync>;
pub(crate) type Listener = Box<dyn Fn(&Transition) + Send + Sync>;

#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct SlowRule {
    /// Absolute: the threshold. Relative: the floor (`min_duration`).
    pub(crate) duration_ns: u64,
    pub(crate) rate: Rate,
    /// Relative: the multiplier of the typical latency (an `f32`, so that it packs beside the
    /// rate in the rules' words).
    pub(crate) relative: Option<f32>,
}

/// A validated configuration: what the breaker runs on. `settings` is what it was made from,
/// shared by the breakers a registry builds from the same configuration.
#[derive(Clone)]
pub(crate) struct Rules {
    pub(crate) settings: Arc<Config>,
    pub(crate) consecutive_failures: Option<u32>,
    pub(crate) failure_rate: Option<Rate>,
    pub(crate) minimum_calls: u32,
    pub(crate) window: WindowSpec,
    pub(crate) slow: Option<SlowRule>,
    pub(crate) predicate: Option<Predicate>,
    pub(crate) backoff: Backoff,
    pub(crate) limits: Limits,
    pub(crate) half_open_timeout_ns: Option<u64>,
    pub(crate) stripes: usize,
    pub(crate) throttle: Option<ThrottleRule>,
}

impl fmt::Debug for Rules {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rules")
            .field("consecutive_failures", &self.consecutive_failures)
            .field("failure_rate", &self.failure_rate)
            .field("minimum_calls", &self.minimum_calls)
            .field("window", &self.window)
            .field("slow", &self.slow)
            .field("predicate", &self.predicate.is_some())
            .field("backoff", &self.backoff)
            .field("limits", &self.limits)
            .field("half_open_timeout_ns", &self.half_open_timeout_ns)
            .field("stripes", &self.stripes)
            .field("throttle", &self.throttle)
            .finish()
    }
}

#[derive(Clone, Copy, Debug)]
enum RawWindow {
    Time(Duration, u32),
    Count(u32),
}

impl Rules {
    /// Checks every setting of `c`; the first one out of range is the error.
    ///
    /// The default trip rules apply only when no trip rule and no throttle is configured: a
    /// throttle alone never opens the breaker, it only sheds load.
    pub(crate) fn validate(c: &Config, predicate: Option<Predicate>) -> Result<Rules, ConfigError> {
        Rules::validate_shared(&Arc::new(c.clone()), predicate)
    }

    /// [`validate`](Rules::validate), keeping `config` itself as the rules' settings: the breakers
    /// a registry configures from one configuration share it.
    pub(crate) fn validate_shared(
        config: &Arc<Config>,
        predicate: Option<Predicate>,
    ) -> Result<Rules, ConfigError> {
        let c: &Config = config;
        let (consecutive_failures, failure_rate) = trip_rules(c, predicate.is_some());
        let consecutive_failures = consecutive_failures
            .map(|n| count("consecutive_failures", n, MAX_COUNT))
            .transpose()?;
        let failure_rate = failure_rate.map(|r| rate("failure_rate", r)).transpose()?;
        let raw_window = match (c.time_window, c.count_window) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::described(
                    "count_window",
                    "set either time_window or count_window, not both",
                    "",
                ));
            }
            (None, Some(n)) => RawWindow::Count(n),
            (Some(t), None) => RawWindow::Time(t.window, t.buckets),
            (None, None) => RawWindow::Time(defaults::TIME_WINDOW, defaults::BUCKETS),
        };
        let window = match raw_window {
            RawWindow::Time(window, buckets) => {
                if window.is_zero() || window > MAX_DURATION {
                    return Err(ConfigError::new(
                        "time_window",
                        format!("window must be in {}", positive_duration_range()),
                        window,
                    ));
                }
                let buckets = count("time_window.buckets", buckets, MAX_BUCKETS)?;
                let width_ns = (window.as_nanos() / u128::from(buckets)) as u64;
                if width_ns < MIN_DURATION.as_nanos() as u64 {
                    return Err(ConfigError::described(
                        "time_window",
                        format!(
                            "bucket width (window / buckets) must be at least {} ms",
                            MIN_DURATION.as_millis()
                        ),
                        &format!("window = {window:?}, buckets = {buckets}"),
                    ));
                }
                WindowSpec::Time { width_ns, buckets }
            }
            RawWindow::Count(size) => WindowSpec::Count {
                size: count("count_window", size, MAX_COUNT_WINDOW)?,
            },
        };
        let minimum_calls = count(
            "minimum_calls",
            c.minimum_calls.unwrap_or(defaults::MINIMUM_CALLS),
            MAX_COUNT,
        )?;
        if let WindowSpec::Count { size } = window {
            if minimum_calls > size && (failure_rate.is_some() || c.slow_calls.is_some()) {
                return Err(ConfigError::described(
                    "minimum_calls",
                    "must not exceed the count window's size, or the rate rules could never trip",
                    &format!("minimum_calls = {minimum_calls}, count_window = {size}"),
                ));
            }
        }
        let slow = c.slow_calls.map(|s| slow_rule(&s)).transpose()?;
        let throttle = c
            .throttle
            .map(|t| {
                let rule = ThrottleRule::validate(&t)?;
                match window {
                    WindowSpec::Time { .. } => Ok(rule),
                    WindowSpec::Count { .. } => Err(ConfigError::described(
                        "count_window",
                        "cannot be used with a throttle (a count window holds outcomes, not the calls the throttle turns away): use a time window",
                        "",
                    )),
                }
            })
            .transpose()?;
        let backoff = validate_backoff(c)?;
        let permits = count(
            "half_open_permits",
            c.half_open_permits.unwrap_or(defaults::HALF_OPEN_PERMITS),
            MAX_HALF_OPEN,
        )?;
        let successes = c
            .half_open_successes
            .unwrap_or(permits.min(defaults::HALF_OPEN_SUCCESSES));
        if successes == 0 || successes > permits {
            return Err(ConfigError::described(
                "half_open_successes",
                "must be in 1..=half_open_permits",
                &format!("half_open_successes = {successes}, half_open_permits = {permits}"),
            ));
        }
        let half_open_timeout_ns = c
            .half_open_timeout
            .map(|t| duration("half_open_timeout", t))
            .transpose()?;
        if let Some(t) = c.call_timeout {
            duration("call_timeout", t)?;
        }
        let stripes = count(
            "stripes",
            c.stripes.unwrap_or_else(default_stripes),
            MAX_STRIPES,
        )?;
        Ok(Rules {
            settings: Arc::clone(config),
            consecutive_failures,
            failure_rate,
            minimum_calls,
            window,
            slow,
            predicate,
            backoff,
            limits: Limits {
                half_open_permits: permits,
                half_open_successes: successes,
            },
            half_open_timeout_ns,
            stripes: (stripes as usize).next_power_of_two(),
            throttle,
        })
    }
}

/// The slow-call rule: exactly one of `duration` and `relative`, `min_duration` only with
/// `relative`.
fn slow_rule(s: &crate::config::SlowCalls) -> Result<SlowRule, ConfigError> {
    let in_range = |field: &'static str, d: Duration| {
        if d.is_zero() || d > MAX_DURATION {
            return Err(ConfigError::new(
                field,
                format!("must be in {}", positive_duration_range()),
                d,
            ));
        }
        Ok(d.as_nanos() as u64)
    };
    let (duration_ns, relative) = match (s.duration, s.relative) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::described(
                "slow_calls.relative",
                "set either slow_calls.duration or slow_calls.relative, not both",
                "",
            ));
        }
        (None, None) => {
            return Err(ConfigError::described(
                "slow_calls.duration",
                "set slow_calls.duration (absolute) or slow_calls.relative (a multiple of the typical latency)",
                "",
            ));
        }
        (Some(d), None) => {
            if s.min_duration.is_some() {
                return Err(ConfigError::described(
                    "slow_calls.min_duration",
                    "only with slow_calls.relative (the floor of a relative threshold)",
                    "",
                ));
            }
            (in_range("slow_calls.duration", d)?, None)
        }
        (None, Some(m)) => {
            let narrow = m as f32;
            if !(m.is_finite() && narrow.is_finite() && narrow > 1.0) {
                return Err(ConfigError::new(
                    "slow_calls.relative",
                    "must be a finite number > 1",
                    m,
                ));
            }
            let floor = s.min_duration.unwrap_or(defaults::SLOW_MIN_DURATION);
            (in_range("slow_calls.min_duration", floor)?, Some(narrow))
        }
    };
    Ok(SlowRule {
        duration_ns,
        rate: rate("slow_calls.rate", s.rate)?,
        relative,
    })
}

fn validate_backoff(c: &Config) -> Result<Backoff, ConfigError> {
    let (b, fixed) = match (c.open_timeout, c.backoff) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::described(
                "open_timeout",
                "set either open_timeout or backoff, not both",
                "",
            ));
        }
        (Some(d), None) => (Backoff::fixed(d), true),
        (None, Some(b)) => (b, false),
        (None, None) => return Ok(defaults::BACKOFF),
    };
    let pick = |fixed_name: &'static str, exp_name: &'static str| {
        if fixed { fixed_name } else { exp_name }
    };
    duration(pick("open_timeout", "backoff.base"), b.base)?;
    if !(b.multiplier.is_finite() && b.multiplier >= 1.0) {
        return Err(ConfigError::new(
            "backoff.multiplier",
            "must be a finite number >= 1",
            b.multiplier,
        ));
    }
    duration(pick("open_timeout", "backoff.max"), b.max)?;
    if b.max < b.base {
        return Err(ConfigError::described(
            "backoff.max",
            "must be at least backoff.base",
            &format!("max = {:?}, base = {:?}", b.max, b.base),
        ));
    }
    Ok(b)
}
