//! Validated settings: the [`Rules`] a breaker runs on, every default, and the range each setting
//! accepts.
//!
//! [`Config`] is what the user wrote, with `None` for "the default"; [`Rules::validate`] fills in
//! the defaults from [`defaults`], checks every value against the limits below, and converts
//! durations to the nanoseconds the hot path compares. Each error message is built from the same
//! constant the check uses, so the two cannot drift apart.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::backoff::Backoff;
use crate::config::{Config, TimeWindow};
use crate::error::ConfigError;
use crate::rate::Rate;
use crate::state::{Limits, MAX_HALF_OPEN};
use crate::throttle::ThrottleRule;
use crate::transition::Transition;
use crate::window::{MAX_BUCKETS, WindowSpec, WindowStats};

/// The longest duration any setting accepts: 365 days.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * SECS_PER_DAY);
/// The shortest open duration, half-open timeout and bucket width: 1 ms.
const MIN_DURATION: Duration = Duration::from_millis(1);
/// The largest `consecutive_failures` and `minimum_calls`.
const MAX_COUNT: u32 = 1_000_000;
/// The largest count window.
const MAX_COUNT_WINDOW: u32 = 65_536;
/// The most stripes of counters.
const MAX_STRIPES: u32 = crate::thread_slot::POOL;

const SECS_PER_DAY: u64 = 24 * 60 * 60;

// The range messages print these in whole days and whole milliseconds.
const _: () = assert!(MAX_DURATION.as_secs().is_multiple_of(SECS_PER_DAY));
const _: () = assert!(MAX_DURATION.subsec_nanos() == 0);
const _: () = assert!(MIN_DURATION.as_nanos().is_multiple_of(1_000_000));

/// What a setting left as `None` becomes. [`Builder`](crate::Builder)'s documentation lists
/// them; a test keeps that table and the README's in step with these values.
pub(crate) mod defaults {
    use std::time::Duration;

    use crate::backoff::Backoff;

    /// The consecutive-failure rule when no trip rule is configured.
    pub(crate) const CONSECUTIVE_FAILURES: u32 = 5;
    /// The failure-rate rule when no trip rule is configured.
    pub(crate) const FAILURE_RATE: f64 = 0.5;
    pub(crate) const MINIMUM_CALLS: u32 = 20;
    /// The time window: `TIME_WINDOW` in `BUCKETS` buckets.
    pub(crate) const TIME_WINDOW: Duration = Duration::from_secs(10);
    pub(crate) const BUCKETS: u32 = 10;
    /// Kept beside [`Backoff`] so that its serde form fills missing fields from the same value.
    pub(crate) const BACKOFF: Backoff = Backoff::DEFAULT;
    pub(crate) const HALF_OPEN_PERMITS: u32 = 3;
    /// `half_open_successes` is `min(HALF_OPEN_SUCCESSES, half_open_permits)`.
    pub(crate) const HALF_OPEN_SUCCESSES: u32 = 3;
    /// `stripes` is the number of CPUs rounded up to a power of two, at most `MAX_STRIPES` (the
    /// thread-slot pool); 1 under loom.
    pub(crate) const MAX_STRIPES: u32 = crate::thread_slot::POOL;
    /// The floor of a relative slow-call rule.
    pub(crate) const SLOW_MIN_DURATION: Duration = Duration::from_millis(1);
}

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
            settings: Arc::new(c.clone()),
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

/// The consecutive-failure and failure-rate rules in force: `c`'s own, or the defaults when
/// it sets no trip rule and no throttle (`custom_rule`: a `trip_when` predicate is set). A
/// throttle alone never opens the breaker, it only sheds load.
fn trip_rules(c: &Config, custom_rule: bool) -> (Option<u32>, Option<f64>) {
    let any_rule = custom_rule
        || c.consecutive_failures.is_some()
        || c.failure_rate.is_some()
        || c.slow_calls.is_some()
        || c.throttle.is_some();
    if any_rule {
        (c.consecutive_failures, c.failure_rate)
    } else {
        (
            Some(defaults::CONSECUTIVE_FAILURES),
            Some(defaults::FAILURE_RATE),
        )
    }
}

/// `c` with every setting it leaves unset filled with the value in force, as the validation
/// resolves it: the default trip rules when no trip rule or throttle is set, the default window,
/// backoff and half-open settings, `stripes` as the breaker has them (`stripes`),
/// `failure_statuses = ["5xx"]` and `critical = false`. Settings that are off stay `None` (`slow_calls`, `half_open_timeout`,
/// `call_timeout`, `throttle`), as does the one of `open_timeout` and `backoff` that is not in force.
/// `custom_rule`: the breaker has a custom trip rule (`trip_when`), which replaces the defaults.
pub(crate) fn effective(c: &Config, stripes: u32, custom_rule: bool) -> Config {
    let (consecutive_failures, failure_rate) = trip_rules(c, custom_rule);
    let time_window = match (c.time_window, c.count_window) {
        (None, None) => Some(TimeWindow {
            window: defaults::TIME_WINDOW,
            buckets: defaults::BUCKETS,
        }),
        (time, _) => time,
    };
    let backoff = match (c.open_timeout, c.backoff) {
        (None, None) => Some(defaults::BACKOFF),
        (_, backoff) => backoff,
    };
    let half_open_permits = c.half_open_permits.unwrap_or(defaults::HALF_OPEN_PERMITS);
    Config {
        consecutive_failures,
        failure_rate,
        minimum_calls: Some(c.minimum_calls.unwrap_or(defaults::MINIMUM_CALLS)),
        time_window,
        count_window: c.count_window,
        slow_calls: c.slow_calls,
        open_timeout: c.open_timeout,
        backoff,
        half_open_permits: Some(half_open_permits),
        half_open_successes: Some(
            c.half_open_successes
                .unwrap_or(half_open_permits.min(defaults::HALF_OPEN_SUCCESSES)),
        ),
        half_open_timeout: c.half_open_timeout,
        call_timeout: c.call_timeout,
        failure_statuses: Some(c.failure_statuses.unwrap_or_default()),
        stripes: Some(stripes),
        throttle: c.throttle,
        critical: Some(c.critical.unwrap_or(false)),
    }
}

/// What an unset `stripes` becomes: one owned stripe per CPU the process saw the first time it
/// asked (rounded up to a power of two), up to the thread-slot pool (1 under loom): as many
/// threads as the machine runs at once each count on a line of their own. A cap chosen on a
/// small machine is a cliff on a big one: with 8 stripes, the 8 threads beyond them share one
/// shared stripe with a compare-and-swap each. Resolved once: asking costs a system call and a read of the cgroup
/// limits (tens of microseconds), and the answer may differ from thread to thread (affinity).
/// Only a breaker's construction uses it; [`Breaker::reconfigure`](crate::Breaker::reconfigure)
/// compares stripes only when the user set them, so a reload never fails over a CPU count.
fn default_stripes() -> u32 {
    if cfg!(hotbreaker_loom) {
        return 1;
    }
    static CPUS: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *CPUS.get_or_init(|| {
        std::thread::available_parallelism().map_or(2, |n| {
            n.get()
                .next_power_of_two()
                .min(defaults::MAX_STRIPES as usize) as u32
        })
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

/// `(0, 365 days]`, from [`MAX_DURATION`].
fn positive_duration_range() -> String {
    format!("(0, {} days]", MAX_DURATION.as_secs() / SECS_PER_DAY)
}

/// `[1 ms, 365 days]`, from [`MIN_DURATION`] and [`MAX_DURATION`].
fn duration_range() -> String {
    format!(
        "[{} ms, {} days]",
        MIN_DURATION.as_millis(),
        MAX_DURATION.as_secs() / SECS_PER_DAY
    )
}

/// `n` if it is in `1..=max`.
fn count(field: &'static str, n: u32, max: u32) -> Result<u32, ConfigError> {
    if (1..=max).contains(&n) {
        Ok(n)
    } else {
        Err(ConfigError::new(field, format!("must be in 1..={max}"), n))
    }
}

/// `r` as an exact [`Rate`] if it is in (0, 1].
fn rate(field: &'static str, r: f64) -> Result<Rate, ConfigError> {
    Rate::new(r).ok_or_else(|| ConfigError::new(field, "must be in (0, 1]", r))
}

/// `d` in nanoseconds if it is in `[MIN_DURATION, MAX_DURATION]`.
fn duration(field: &'static str, d: Duration) -> Result<u64, ConfigError> {
    if d < MIN_DURATION || d > MAX_DURATION {
        Err(ConfigError::new(
            field,
            format!("must be in {}", duration_range()),
            d,
        ))
    } else {
        Ok(d.as_nanos() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TimeWindow;

    #[test]
    fn an_empty_config_takes_every_default() {
        let r = Rules::validate(&Config::default(), None).unwrap();
        assert_eq!(r.consecutive_failures, Some(defaults::CONSECUTIVE_FAILURES));
        assert_eq!(r.failure_rate, Rate::new(defaults::FAILURE_RATE));
        assert_eq!(r.minimum_calls, defaults::MINIMUM_CALLS);
        assert_eq!(
            r.window,
            WindowSpec::Time {
                width_ns: (defaults::TIME_WINDOW / defaults::BUCKETS).as_nanos() as u64,
                buckets: defaults::BUCKETS,
            }
        );
        assert!(r.slow.is_none());
        assert_eq!(r.backoff, defaults::BACKOFF);
        assert_eq!(r.limits.half_open_permits, defaults::HALF_OPEN_PERMITS);
        assert_eq!(
            r.limits.half_open_successes,
            defaults::HALF_OPEN_SUCCESSES.min(defaults::HALF_OPEN_PERMITS)
        );
        assert_eq!(r.half_open_timeout_ns, None);
        assert!(r.stripes.is_power_of_two());
        assert!(r.stripes <= (defaults::MAX_STRIPES as usize).next_power_of_two());
    }

    #[test]
    fn any_trip_rule_replaces_both_default_rules() {
        let c = Config {
            slow_calls: Some(crate::config::SlowCalls::absolute(
                Duration::from_secs(1),
                0.5,
            )),
            ..Config::default()
        };
        let r = Rules::validate(&c, None).unwrap();
        assert_eq!((r.consecutive_failures, r.failure_rate), (None, None));
    }

    #[test]
    fn half_open_successes_default_follows_the_permits() {
        let c = Config {
            half_open_permits: Some(1),
            ..Config::default()
        };
        assert_eq!(
            Rules::validate(&c, None)
                .unwrap()
                .limits
                .half_open_successes,
            1
        );
    }

    fn expected(c: Config) -> String {
        Rules::validate(&c, None).unwrap_err().expected().to_owned()
    }

    #[test]
    fn range_messages_come_from_the_limits_checked() {
        // Each limit is accepted and the next value is refused with a message naming the limit.
        let at = |f: fn(u32) -> Config, max: u32| {
            assert!(Rules::validate(&f(max), None).is_ok(), "{max} accepted");
            let e = expected(f(max + 1));
            assert_eq!(e, format!("must be in 1..={max}"));
            assert_eq!(expected(f(0)), e);
        };
        at(
            |n| Config {
                consecutive_failures: Some(n),
                ..Config::default()
            },
            MAX_COUNT,
        );
        at(
            |n| Config {
                minimum_calls: Some(n),
                ..Config::default()
            },
            MAX_COUNT,
        );
        at(
            |n| Config {
                time_window: Some(TimeWindow {
                    window: Duration::from_secs(3600),
                    buckets: n,
                }),
                ..Config::default()
            },
            MAX_BUCKETS,
        );
        at(
            |n| Config {
                count_window: Some(n),
                minimum_calls: Some(1),
                ..Config::default()
            },
            MAX_COUNT_WINDOW,
        );
        at(
            |n| Config {
                half_open_permits: Some(n),
                ..Config::default()
            },
            MAX_HALF_OPEN,
        );
        at(
            |n| Config {
                stripes: Some(n),
                ..Config::default()
            },
            MAX_STRIPES,
        );
    }

    #[test]
    fn duration_messages_come_from_the_limits_checked() {
        let open = |d| Config {
            open_timeout: Some(d),
            ..Config::default()
        };
        assert!(Rules::validate(&open(MIN_DURATION), None).is_ok());
        assert!(Rules::validate(&open(MAX_DURATION), None).is_ok());
        let below = expected(open(MIN_DURATION - Duration::from_nanos(1)));
        assert_eq!(below, "must be in [1 ms, 365 days]");
        assert_eq!(
            expected(open(MAX_DURATION + Duration::from_nanos(1))),
            below
        );
        let window = |d| Config {
            time_window: Some(TimeWindow {
                window: d,
                buckets: 1,
            }),
            ..Config::default()
        };
        assert!(Rules::validate(&window(MAX_DURATION), None).is_ok());
        assert_eq!(
            expected(window(MAX_DURATION + Duration::from_nanos(1))),
            "window must be in (0, 365 days]"
        );
        assert_eq!(
            expected(Config {
                time_window: Some(TimeWindow {
                    window: MIN_DURATION * 10 - Duration::from_nanos(10),
                    buckets: 10,
                }),
                ..Config::default()
            }),
            "bucket width (window / buckets) must be at least 1 ms"
        );
    }

    /// `n` with a space between groups of three digits, as the documentation writes it.
    fn grouped(n: u32) -> String {
        let digits = n.to_string();
        let mut out = String::new();
        for (i, d) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i).is_multiple_of(3) {
                out.push(' ');
            }
            out.push(d);
        }
        out
    }

    #[test]
    fn documented_ranges_are_the_limits_checked() {
        let readme = include_str!("../docs/configuration.md");
        let builder = include_str!("builder.rs");
        let days = MAX_DURATION.as_secs() / SECS_PER_DAY;
        let ms = MIN_DURATION.as_millis();
        for (field, max) in [
            ("consecutive_failures", MAX_COUNT),
            ("minimum_calls", MAX_COUNT),
            ("time_window.buckets", MAX_BUCKETS),
            ("count_window", MAX_COUNT_WINDOW),
            ("half_open_permits", MAX_HALF_OPEN),
            ("stripes", MAX_STRIPES),
        ] {
            let row = format!("| `{field}` | 1..={}", grouped(max));
            assert!(readme.contains(&row), "docs/configuration.md lacks {row:?}");
            // The builder words the bucket limit "at most 256 buckets" (checked below).
            let range = format!("1..={}", grouped(max));
            assert!(
                field == "time_window.buckets" || builder.contains(&range),
                "src/builder.rs lacks {range:?}"
            );
        }
        for range in [
            format!("(0, {days} days]"),
            format!("[{ms} ms, {days} days]"),
            format!("at least {ms} ms"),
        ] {
            assert!(
                readme.contains(&range),
                "docs/configuration.md lacks {range:?}"
            );
        }
        for range in [
            format!("{ms} ms..={days} days"),
            format!("at most {days} days"),
            format!("at least {ms} ms"),
            format!("most {} buckets", grouped(MAX_BUCKETS)),
        ] {
            assert!(builder.contains(&range), "src/builder.rs lacks {range:?}");
        }
    }

    #[test]
    fn the_effective_configuration_fills_what_validation_resolves() {
        let e = effective(&Config::default(), 4, false);
        assert_eq!(e.consecutive_failures, Some(defaults::CONSECUTIVE_FAILURES));
        assert_eq!(e.failure_rate, Some(defaults::FAILURE_RATE));
        assert_eq!(e.minimum_calls, Some(defaults::MINIMUM_CALLS));
        assert_eq!(
            e.time_window.map(|t| (t.window, t.buckets)),
            Some((defaults::TIME_WINDOW, defaults::BUCKETS))
        );
        assert_eq!(e.backoff, Some(defaults::BACKOFF));
        assert_eq!(e.open_timeout, None);
        assert_eq!(
            (e.half_open_permits, e.half_open_successes),
            (Some(3), Some(3))
        );
        assert_eq!((e.stripes, e.critical), (Some(4), Some(false)));
        assert!(
            Rules::validate(&e, None).is_ok(),
            "the effective configuration is valid"
        );

        let set = Config {
            failure_rate: Some(0.25),
            count_window: Some(50),
            open_timeout: Some(Duration::from_secs(7)),
            half_open_permits: Some(1),
            ..Config::default()
        };
        let e = effective(&set, 1, false);
        assert_eq!(
            (e.consecutive_failures, e.failure_rate),
            (None, Some(0.25)),
            "no defaults"
        );
        assert_eq!((e.time_window, e.count_window), (None, Some(50)));
        assert_eq!(
            (e.open_timeout, e.backoff),
            (Some(Duration::from_secs(7)), None)
        );
        assert_eq!(e.half_open_successes, Some(1), "min(3, permits)");
        assert!(Rules::validate(&e, None).is_ok());

        let custom = effective(&Config::default(), 1, true);
        assert_eq!(
            (custom.consecutive_failures, custom.failure_rate),
            (None, None)
        );
    }
}
