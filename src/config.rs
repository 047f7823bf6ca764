//! The builder, its defaults, and validation (SPEC rule 9).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::backoff::Backoff;
use crate::breaker::Breaker;
use crate::error::ConfigError;
use crate::rate::Rate;
use crate::settings::{Config, SlowCalls, TimeWindow};
use crate::state::{Limits, MAX_HALF_OPEN};
use crate::transition::Transition;
use crate::window::WindowStats;

/// The longest duration any setting accepts: 365 days.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 60 * 60);
const MAX_COUNT: u32 = 1_000_000;
const MAX_BUCKETS: u32 = 1_024;
const MAX_COUNT_WINDOW: u32 = 65_536;
const MAX_STRIPES: u32 = 64;
const MS: Duration = Duration::from_millis(1);

pub(crate) type Predicate = Arc<dyn Fn(&WindowStats) -> bool + Send + Sync>;
pub(crate) type Listener = Box<dyn Fn(&Transition) + Send + Sync>;

/// The shape of the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WindowSpec {
    Time { width_ns: u64, buckets: u32 },
    Count { size: u32 },
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct SlowRule {
    pub(crate) duration_ns: u64,
    pub(crate) rate: Rate,
}

/// A validated configuration: what the breaker runs on. `settings` is what it was made from.
#[derive(Clone)]
pub(crate) struct Rules {
    pub(crate) settings: Config,
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
            .finish()
    }
}

/// Builds a [`Breaker`]. Every setting is optional; [`build`](Builder::build) validates them all.
///
/// # Defaults
/// | setting | default |
/// |---|---|
/// | trip rules | 5 consecutive failures, **or** a failure rate ≥ 0.5 over at least 20 calls (both replaced as soon as any trip rule is configured) |
/// | `minimum_calls` | 20 |
/// | window | time window of 10 s in 10 buckets of 1 s |
/// | slow calls | off |
/// | backoff | exponential: 5 s, ×2 per reopening, at most 60 s, with jitter |
/// | `half_open_permits` | 3 |
/// | `half_open_successes` | `min(3, half_open_permits)` |
/// | `half_open_timeout` | none |
/// | `stripes` | the number of CPUs rounded up to a power of two, at most 8 |
/// | clock | `quanta::Clock::new()` |
///
/// Trip rules are [`consecutive_failures`](Builder::consecutive_failures),
/// [`failure_rate`](Builder::failure_rate), [`slow_calls`](Builder::slow_calls) and
/// [`trip_when`](Builder::trip_when); any of them that holds trips the breaker.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use hotbreaker::{Backoff, Breaker};
///
/// let breaker = Breaker::builder()
///     .failure_rate(0.25)
///     .minimum_calls(50)
///     .time_window(Duration::from_secs(30), 30)
///     .backoff(Backoff::exponential(Duration::from_secs(1), 2.0, Duration::from_secs(30)))
///     .half_open_permits(5)
///     .build()?;
/// # Ok::<(), hotbreaker::ConfigError>(())
/// ```
#[must_use = "a builder does nothing until build() is called"]
#[derive(Default)]
pub struct Builder {
    config: Config,
    predicate: Option<Predicate>,
    listeners: Vec<Listener>,
    clock: Option<crate::clock::Clock>,
}

#[derive(Clone, Copy, Debug)]
enum RawWindow {
    Time(Duration, u32),
    Count(u32),
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("config", &self.config)
            .field("predicate", &self.predicate.is_some())
            .field("listeners", &self.listeners.len())
            .finish_non_exhaustive()
    }
}

impl Builder {
    /// Trip after `n` failures in a row while Closed. A Success resets the run; an Ignored
    /// outcome neither counts nor resets. Accepts 1..=1 000 000.
    pub fn consecutive_failures(mut self, n: u32) -> Self {
        self.config.consecutive_failures = Some(n);
        self
    }

    /// Trip when the window holds at least `minimum_calls` calls and `failures / calls ≥ rate`
    /// (compared exactly). Accepts (0, 1].
    pub fn failure_rate(mut self, rate: f64) -> Self {
        self.config.failure_rate = Some(rate);
        self
    }

    /// Calls the window must hold before a rate rule may trip. Accepts 1..=1 000 000 (and at
    /// most the count window's size). Default 20.
    pub fn minimum_calls(mut self, n: u32) -> Self {
        self.config.minimum_calls = Some(n);
        self
    }

    /// Look at the last `window` of time, in `buckets` equal buckets (each at least 1 ms; at
    /// most 1 024 buckets; window at most 365 days). Outcomes leave the window a whole bucket at a
    /// time.
    pub fn time_window(mut self, window: Duration, buckets: u32) -> Self {
        self.config.time_window = Some(TimeWindow { window, buckets });
        self.config.count_window = None;
        self
    }

    /// Look at the last `n` outcomes (1..=65 536). Costlier per call than a time window: a shared
    /// counter per outcome, and an O(n) read on each Failure.
    pub fn count_window(mut self, n: u32) -> Self {
        self.config.count_window = Some(n);
        self.config.time_window = None;
        self
    }

    /// A call taking strictly longer than `duration` is slow; trip when the window holds at
    /// least `minimum_calls` calls and `slow / calls ≥ rate`. The duration is measured from
    /// `try_acquire` to the outcome being recorded.
    pub fn slow_calls(mut self, duration: Duration, rate: f64) -> Self {
        self.config.slow_calls = Some(SlowCalls { duration, rate });
        self
    }

    /// Trip when `predicate` returns true for the window's counts. Evaluated, like every trip
    /// rule, when a Failure or a slow call is recorded while Closed; `minimum_calls` is not
    /// applied to it.
    pub fn trip_when(
        mut self,
        predicate: impl Fn(&WindowStats) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.predicate = Some(Arc::new(predicate));
        self
    }

    /// Stay Open for a fixed `duration` (1 ms..=365 days) each time: `backoff(Backoff::fixed(d))`.
    pub fn open_timeout(mut self, duration: Duration) -> Self {
        self.config.open_timeout = Some(duration);
        self.config.backoff = None;
        self
    }

    /// How long each opening lasts. Base and max in 1 ms..=365 days, max ≥ base, multiplier a
    /// finite number ≥ 1.
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.config.backoff = Some(backoff);
        self.config.open_timeout = None;
        self
    }

    /// Probe calls let through at once while HalfOpen (1..=1 023). Default 3.
    pub fn half_open_permits(mut self, n: u32) -> Self {
        self.config.half_open_permits = Some(n);
        self
    }

    /// Successful probes needed to close (1..=`half_open_permits`). Default
    /// `min(3, half_open_permits)`.
    pub fn half_open_successes(mut self, n: u32) -> Self {
        self.config.half_open_successes = Some(n);
        self
    }

    /// Reopen when HalfOpen has reached no verdict after `timeout` (1 ms..=365 days). Checked
    /// whenever a permit is asked for or a probe's outcome is recorded. Default: none.
    pub fn half_open_timeout(mut self, timeout: Duration) -> Self {
        self.config.half_open_timeout = Some(timeout);
        self
    }

    /// How many stripes of counters to keep (1..=64, rounded up to a power of two). More stripes
    /// let more threads record without sharing a cache line; each costs 128 bytes per 16
    /// words of window. Services that hold thousands of breakers may want 1 or 2.
    pub fn stripes(mut self, n: u32) -> Self {
        self.config.stripes = Some(n);
        self
    }

    /// Replaces every data setting (all but the listeners, the custom trip rule and the clock)
    /// with `config`'s.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Call `listener` after every transition, once, from the thread that made it. A panic in the
    /// listener is caught and does not affect the breaker. May be called more than once.
    pub fn on_transition(mut self, listener: impl Fn(&Transition) + Send + Sync + 'static) -> Self {
        self.listeners.push(Box::new(listener));
        self
    }

    /// The clock to read time from; `quanta::Clock::mock()` in tests.
    pub fn clock(mut self, clock: quanta::Clock) -> Self {
        self.clock = Some(crate::clock::Clock::new(clock));
        self
    }

    /// A loom-visible clock, for model tests only.
    #[cfg(all(loom, feature = "loom"))]
    pub fn loom_clock(mut self, clock: crate::clock::LoomClock) -> Self {
        self.clock = Some(crate::clock::Clock::Loom(clock));
        self
    }

    /// Validates the settings and builds the breaker.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first field that is out of range.
    pub fn build(self) -> Result<Breaker, ConfigError> {
        let rules = Rules::validate(&self.config, self.predicate.clone())?;
        let clock = self
            .clock
            .unwrap_or_else(|| crate::clock::Clock::new(quanta::Clock::new()));
        Ok(Breaker::new(
            rules,
            self.listeners.into_boxed_slice(),
            clock,
        ))
    }
}

impl Rules {
    /// Checks every setting of `c` (SPEC rule 9); the first one out of range is the error.
    pub(crate) fn validate(c: &Config, predicate: Option<Predicate>) -> Result<Rules, ConfigError> {
        let any_rule = c.consecutive_failures.is_some()
            || c.failure_rate.is_some()
            || c.slow_calls.is_some()
            || predicate.is_some();
        let (consecutive_failures, failure_rate) = if any_rule {
            (c.consecutive_failures, c.failure_rate)
        } else {
            (Some(5), Some(0.5))
        };
        let consecutive_failures = consecutive_failures
            .map(|n| {
                count(
                    "consecutive_failures",
                    n,
                    MAX_COUNT,
                    "must be in 1..=1000000",
                )
            })
            .transpose()?;
        let failure_rate = failure_rate.map(|r| rate("failure_rate", r)).transpose()?;
        let raw_window = match (c.time_window, c.count_window) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "count_window",
                    "set either time_window or count_window, not both",
                    (c.time_window, c.count_window),
                ));
            }
            (None, Some(n)) => RawWindow::Count(n),
            (Some(t), None) => RawWindow::Time(t.window, t.buckets),
            (None, None) => RawWindow::Time(Duration::from_secs(10), 10),
        };
        let window = match raw_window {
            RawWindow::Time(window, buckets) => {
                if window.is_zero() || window > MAX_DURATION {
                    return Err(ConfigError::new(
                        "time_window",
                        "window must be in (0, 365 days]",
                        window,
                    ));
                }
                let buckets = count(
                    "time_window.buckets",
                    buckets,
                    MAX_BUCKETS,
                    "must be in 1..=1024",
                )?;
                let width_ns = (window.as_nanos() / u128::from(buckets)) as u64;
                if width_ns < MS.as_nanos() as u64 {
                    return Err(ConfigError::new(
                        "time_window",
                        "bucket width (window / buckets) must be at least 1 ms",
                        (window, buckets),
                    ));
                }
                WindowSpec::Time { width_ns, buckets }
            }
            RawWindow::Count(size) => WindowSpec::Count {
                size: count(
                    "count_window",
                    size,
                    MAX_COUNT_WINDOW,
                    "must be in 1..=65536",
                )?,
            },
        };
        let minimum_calls = count(
            "minimum_calls",
            c.minimum_calls.unwrap_or(20),
            MAX_COUNT,
            "must be in 1..=1000000",
        )?;
        if let WindowSpec::Count { size } = window {
            if minimum_calls > size && (failure_rate.is_some() || c.slow_calls.is_some()) {
                return Err(ConfigError::new(
                    "minimum_calls",
                    "must not exceed the count window's size, or the rate rules could never trip",
                    (minimum_calls, size),
                ));
            }
        }
        let slow = c
            .slow_calls
            .map(|s| {
                if s.duration.is_zero() || s.duration > MAX_DURATION {
                    return Err(ConfigError::new(
                        "slow_calls.duration",
                        "must be in (0, 365 days]",
                        s.duration,
                    ));
                }
                Ok(SlowRule {
                    duration_ns: s.duration.as_nanos() as u64,
                    rate: rate("slow_calls.rate", s.rate)?,
                })
            })
            .transpose()?;
        let backoff = validate_backoff(c)?;
        let permits = count(
            "half_open_permits",
            c.half_open_permits.unwrap_or(3),
            MAX_HALF_OPEN,
            "must be in 1..=1023",
        )?;
        let successes = c.half_open_successes.unwrap_or(permits.min(3));
        if successes == 0 || successes > permits {
            return Err(ConfigError::new(
                "half_open_successes",
                "must be in 1..=half_open_permits",
                (successes, permits),
            ));
        }
        let half_open_timeout_ns = c
            .half_open_timeout
            .map(|t| duration("half_open_timeout", t, "must be in [1 ms, 365 days]"))
            .transpose()?;
        let default_stripes = if cfg!(all(loom, feature = "loom")) {
            1
        } else {
            std::thread::available_parallelism().map_or(1, |n| n.get().min(8) as u32)
        };
        let stripes = count(
            "stripes",
            c.stripes.unwrap_or(default_stripes),
            MAX_STRIPES,
            "must be in 1..=64",
        )?;
        Ok(Rules {
            settings: c.clone(),
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
        })
    }
}

fn validate_backoff(c: &Config) -> Result<Backoff, ConfigError> {
    let (b, fixed) = match (c.open_timeout, c.backoff) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::new(
                "open_timeout",
                "set either open_timeout or backoff, not both",
                (c.open_timeout, c.backoff),
            ));
        }
        (Some(d), None) => (Backoff::fixed(d), true),
        (None, Some(b)) => (b, false),
        (None, None) => {
            return Ok(
                Backoff::exponential(Duration::from_secs(5), 2.0, Duration::from_secs(60))
                    .with_jitter(),
            );
        }
    };
    let pick = |fixed_name: &'static str, exp_name: &'static str| {
        if fixed { fixed_name } else { exp_name }
    };
    duration(
        pick("open_timeout", "backoff.base"),
        b.base,
        "must be in [1 ms, 365 days]",
    )?;
    if !(b.multiplier.is_finite() && b.multiplier >= 1.0) {
        return Err(ConfigError::new(
            "backoff.multiplier",
            "must be a finite number >= 1",
            b.multiplier,
        ));
    }
    duration(
        pick("open_timeout", "backoff.max"),
        b.max,
        "must be in [1 ms, 365 days]",
    )?;
    if b.max < b.base {
        return Err(ConfigError::new(
            "backoff.max",
            "must be at least backoff.base",
            (b.max, b.base),
        ));
    }
    Ok(b)
}

fn count(
    field: &'static str,
    n: u32,
    max: u32,
    expected: &'static str,
) -> Result<u32, ConfigError> {
    if (1..=max).contains(&n) {
        Ok(n)
    } else {
        Err(ConfigError::new(field, expected, n))
    }
}

fn rate(field: &'static str, r: f64) -> Result<Rate, ConfigError> {
    Rate::new(r).ok_or_else(|| ConfigError::new(field, "must be in (0, 1]", r))
}

fn duration(field: &'static str, d: Duration, expected: &'static str) -> Result<u64, ConfigError> {
    if d < MS || d > MAX_DURATION {
        Err(ConfigError::new(field, expected, d))
    } else {
        Ok(d.as_nanos() as u64)
    }
}
