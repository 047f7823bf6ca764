//! [`Builder`]: the settings as methods, validated into [`Rules`] when the breaker is built.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::breaker::Breaker;
use crate::config::{Config, SlowCalls, TimeWindow};
use crate::error::ConfigError;
use crate::rules::Backoff;
use crate::rules::{Listener, Predicate, Rules};
use crate::throttle::{DrawSource, Throttle};
use crate::transition::Transition;
use crate::window::WindowStats;

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
/// | `stripes` | 4 per CPU, rounded up to a power of two, at most 256 (a stripe costs nothing until a thread calls on it) |
/// | throttle | off; [`Throttle::sre()`] is `K` = 2, `max_rejection` = 0.9 |
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
    clock: Option<crate::clock::TimeSource>,
    draws: Option<DrawSource>,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Builder")
            .field("config", &self.config)
            .field("predicate", &self.predicate.is_some())
            .field("listeners", &self.listeners.len())
            .field("draws", &self.draws.is_some())
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
    /// most 256 buckets; window at most 365 days). Outcomes leave the window a whole bucket at a
    /// time. Not together with [`count_window`](Builder::count_window): `build()` refuses the
    /// pair with a [`ConfigError`] naming both.
    pub fn time_window(mut self, window: Duration, buckets: u32) -> Self {
        self.config.time_window = Some(TimeWindow { window, buckets });
        self
    }

    /// Look at the last `n` outcomes (1..=65 536). A **serialization point** on many cores:
    /// every outcome of every thread stores into one shared ring (about two shared writes per
    /// call), so its throughput stays flat as threads are added (9–16 M calls/s on 1 to 16
    /// threads of a 16-CPU server). The window is read in O(n) only when a rule could hold. Use a
    /// [`time_window`](Builder::time_window) on hot paths. Not together with `time_window`.
    pub fn count_window(mut self, n: u32) -> Self {
        self.config.count_window = Some(n);
        self
    }

    /// A call taking strictly longer than `duration` is slow; trip when the window holds at
    /// least `minimum_calls` calls and `slow / calls ≥ rate`. The duration is measured from
    /// `try_acquire` to the outcome being recorded.
    pub fn slow_calls(mut self, duration: Duration, rate: f64) -> Self {
        self.config.slow_calls = Some(SlowCalls::absolute(duration, rate));
        self
    }

    /// The slow-call rule as a value: absolute ([`SlowCalls::absolute`], what
    /// [`slow_calls`](Builder::slow_calls) sets) or relative to the dependency's typical latency
    /// ([`SlowCalls::relative`]). Either way calls are timed from `try_acquire` to the outcome,
    /// and the rule trips when the window holds at least `minimum_calls` calls and
    /// `slow / calls ≥ rate`.
    ///
    /// ```
    /// use std::time::Duration;
    /// use hotbreaker::{Breaker, SlowCalls};
    ///
    /// // Slow: over 4 × the typical latency, and over 5 ms.
    /// let breaker = Breaker::builder()
    ///     .slow_call_rule(SlowCalls::relative(4.0, 0.5).min_duration(Duration::from_millis(5)))
    ///     .build()?;
    /// # Ok::<(), hotbreaker::ConfigError>(())
    /// ```
    pub fn slow_call_rule(mut self, rule: SlowCalls) -> Self {
        self.config.slow_calls = Some(rule);
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

    /// Stay Open for a fixed `duration` (1 ms..=365 days) each time, like
    /// `backoff(Backoff::fixed(d))`. Not together with [`backoff`](Builder::backoff): `build()`
    /// refuses the pair with a [`ConfigError`] naming both.
    pub fn open_timeout(mut self, duration: Duration) -> Self {
        self.config.open_timeout = Some(duration);
        self
    }

    /// How long each opening lasts. Base and max in 1 ms..=365 days, max ≥ base, multiplier a
    /// finite number ≥ 1. Not together with [`open_timeout`](Builder::open_timeout).
    pub fn backoff(mut self, backoff: Backoff) -> Self {
        self.config.backoff = Some(backoff);
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

    /// How many stripes of counters to keep at most (1..=256, rounded up to a power of two).
    /// Default: 4 per CPU, rounded up, at most 256. Each thread that calls the breaker counts
    /// on a stripe of its own, up to this many threads (numbered from 0 by a process-wide
    /// pool, the lowest free number first); the threads beyond count on one shared stripe,
    /// each outcome an atomic read-modify-write on a line they all write. An owned stripe costs
    /// nothing until a thread calls with it, then its lines (768 bytes with the default 10
    /// buckets, see [Memory](crate::docs::memory)) and a share of a chunk of cells; the shared
    /// stripe costs its lines from the start. Services that hold thousands of breakers that
    /// hundreds of threads call may want fewer.
    pub fn stripes(mut self, n: u32) -> Self {
        self.config.stripes = Some(n);
        self
    }

    /// Sheds load adaptively while Closed: rejects a fraction of calls that grows as the
    /// dependency stops serving them (see [`Throttle`]). `K` a finite number ≥ 1.5,
    /// `max_rejection` in [0, 1). Needs a time window (the default); uses `minimum_calls`.
    ///
    /// With no trip rule configured, the default trip rules are not added: the breaker never
    /// opens, it only sheds. With trip rules, it sheds during a brownout and opens in an outage.
    ///
    /// ```
    /// use hotbreaker::{Breaker, Reason, Throttle};
    ///
    /// let breaker = Breaker::builder()
    ///     .throttle(Throttle::sre().k(2.0).max_rejection(0.9))
    ///     .minimum_calls(10)
    ///     .build()?;
    /// for _ in 0..1_000 {
    ///     match breaker.try_acquire() {
    ///         Ok(permit) => permit.failure(),
    ///         Err(rejected) => assert_eq!(rejected.reason(), Reason::Throttled),
    ///     }
    /// }
    /// let m = breaker.metrics();
    /// assert_eq!(m.state, hotbreaker::State::Closed); // never opens
    /// assert!(m.throttled > 500); // about 90 % shed
    /// # Ok::<(), hotbreaker::ConfigError>(())
    /// ```
    pub fn throttle(mut self, throttle: Throttle) -> Self {
        self.config.throttle = Some(throttle);
        self
    }

    /// The throttle draws from one generator seeded with `seed` instead of each calling
    /// thread's own, so that a replay on a mock clock (the same calls, in the same order) sheds
    /// the same calls every time. For simulations and replays: each draw then writes the
    /// generator's one shared word (only while the throttle sheds).
    ///
    /// ```
    /// use hotbreaker::{Breaker, Throttle};
    ///
    /// let shed = |seed| {
    ///     let b = Breaker::builder()
    ///         .throttle(Throttle::sre())
    ///         .minimum_calls(1)
    ///         .throttle_seed(seed)
    ///         .build()
    ///         .unwrap();
    ///     (0..1_000).map(|_| b.try_acquire().map(|p| p.failure()).is_err()).collect::<Vec<_>>()
    /// };
    /// assert_eq!(shed(7), shed(7));
    /// # Ok::<(), hotbreaker::ConfigError>(())
    /// ```
    pub fn throttle_seed(mut self, seed: u64) -> Self {
        // `std`'s atomic: a generator no decision of the breaker's own depends on, out of loom's
        // sight. Relaxed: a replay draws from one thread; only the sequence of values matters.
        let state = std::sync::atomic::AtomicU64::new(seed);
        self.draws = Some(Arc::new(move || {
            let n = state.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            crate::rules::backoff::mix(n.wrapping_mul(0x9E37_79B9_7F4A_7C15)) as u32
        }));
        self
    }

    /// Replaces the per-thread generator the throttle draws from with `source`, which must
    /// return uniformly random `u32`s, so that a test can replay the draws.
    ///
    /// Feature `test-util`: for tests, outside the semver promise.
    #[cfg(any(test, feature = "test-util"))]
    pub fn throttle_draws_for_tests(
        mut self,
        source: impl Fn() -> u32 + Send + Sync + 'static,
    ) -> Self {
        self.draws = Some(Arc::new(source));
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

    /// The clock to read time from; [`Clock::mock`](crate::clock::Clock::mock) in tests.
    pub fn clock(mut self, clock: crate::clock::Clock) -> Self {
        self.clock = Some(crate::clock::TimeSource::new(clock));
        self
    }

    /// A loom-visible clock, for model tests only.
    #[cfg(hotbreaker_loom)]
    pub fn loom_clock(mut self, clock: crate::clock::LoomClock) -> Self {
        self.clock = Some(crate::clock::TimeSource::Loom(clock));
        self
    }

    /// Validates the settings and builds the breaker.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first field that is out of range, or both settings of a
    /// conflicting pair (`open_timeout` and `backoff`, `time_window` and `count_window`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use hotbreaker::{Backoff, Breaker};
    ///
    /// let err = Breaker::builder()
    ///     .open_timeout(Duration::from_secs(30))
    ///     .backoff(Backoff::fixed(Duration::from_secs(10)))
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(err.to_string(), "invalid open_timeout: set either open_timeout or backoff, not both");
    /// ```
    pub fn build(self) -> Result<Breaker, ConfigError> {
        let rules = Rules::validate(&self.config, self.predicate.clone())?;
        let clock = self.clock.unwrap_or_else(|| {
            crate::clock::TimeSource::new(crate::clock::process_clock().clone())
        });
        let mut breaker = Breaker::new(rules, self.listeners.into_boxed_slice(), clock);
        breaker.draws = self.draws.map(Arc::new);
        Ok(breaker)
    }
}

impl Breaker {
    /// A builder with every setting at its default.
    pub fn builder() -> Builder {
        Builder::default()
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::defaults;

    /// Every row of a defaults table written from the constants validation uses; each must
    /// appear, word for word, in `doc`.
    fn check_defaults_table(doc: &str, file: &str) {
        let b = defaults::BACKOFF;
        let bucket = defaults::TIME_WINDOW / defaults::BUCKETS;
        let rows = [
            format!(
                "{} consecutive failures, **or**",
                defaults::CONSECUTIVE_FAILURES
            ),
            format!("≥ {} over", defaults::FAILURE_RATE),
            format!("{} calls", defaults::MINIMUM_CALLS),
            format!("| `minimum_calls` | {} |", defaults::MINIMUM_CALLS),
            format!(
                "time window of {} s in {} buckets of {} s",
                defaults::TIME_WINDOW.as_secs(),
                defaults::BUCKETS,
                bucket.as_secs()
            ),
            format!(
                "exponential: {} s, ×{} per reopening, at most {} s, with jitter",
                b.base.as_secs(),
                b.multiplier,
                b.max.as_secs()
            ),
            format!("| `half_open_permits` | {} |", defaults::HALF_OPEN_PERMITS),
            format!(
                "`min({}, half_open_permits)`",
                defaults::HALF_OPEN_SUCCESSES
            ),
            format!(
                "| `stripes` | {} per CPU, rounded up to a power of two, at most {}",
                defaults::STRIPES_PER_CPU,
                defaults::MAX_STRIPES
            ),
            format!(
                "`K` = {}, `max_rejection` = {} |",
                crate::throttle::DEFAULT_K,
                crate::throttle::DEFAULT_MAX_REJECTION
            ),
        ];
        for row in rows {
            assert!(doc.contains(&row), "{file} lacks {row:?}");
        }
        assert!(b.jitter && bucket.subsec_nanos() == 0);
    }

    #[test]
    fn documented_defaults_are_the_defaults() {
        check_defaults_table(include_str!("builder.rs"), "src/builder.rs");
        check_defaults_table(
            include_str!("../docs/configuration.md"),
            "docs/configuration.md",
        );
    }
}
