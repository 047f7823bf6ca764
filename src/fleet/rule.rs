//! Fleet rules: when the fleet-wide window trips a breaker. Pure: evaluated on the flusher
//! task from the fleet's totals, never on a call.

use std::time::Duration;

use crate::rules::rate::Rate;

/// A trip rule over the calls of every instance together, for one breaker name (see
/// [`FleetOptions::rule`](crate::fleet::FleetOptions::rule)).
///
/// The fleet window is `window` long, in `buckets` buckets aligned on wall-clock time (UNIX
/// time divided by the bucket width), so that every instance writes a call made at the same
/// moment into the same bucket. The rule holds when the fleet made at least `minimum_calls`
/// calls in the window and the failure rate (or the slow-call rate, when set) reached its
/// threshold; rates compare exactly, as the local rules do.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use hotbreaker::fleet::FleetRule;
///
/// let rule = FleetRule::failure_rate(0.5)
///     .minimum_calls(100)
///     .slow_call_rate(0.8)
///     .window(Duration::from_secs(10), 10);
/// assert_eq!(rule.bucket_width(), Duration::from_secs(1));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FleetRule {
    failure_rate: Option<Rate>,
    slow_call_rate: Option<Rate>,
    minimum_calls: u64,
    window_ms: u64,
    buckets: u32,
}

/// Fleet-wide counts of one breaker over the fleet window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) calls: u64,
    pub(crate) failures: u64,
    pub(crate) slow: u64,
}

impl Counts {
    pub(crate) fn is_zero(&self) -> bool {
        *self == Counts::default()
    }

    pub(crate) fn add(&mut self, other: Counts) {
        self.calls = self.calls.saturating_add(other.calls);
        self.failures = self.failures.saturating_add(other.failures);
        self.slow = self.slow.saturating_add(other.slow);
    }
}

/// Which fleet threshold held.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FleetCause {
    FailureRate,
    SlowCallRate,
}

impl FleetRule {
    /// A rule that holds when the fleet's failure rate reaches `rate` (0 < rate ≤ 1; a value
    /// out of range is clamped into it). Defaults: `minimum_calls` 100, a 10 s window in 10
    /// buckets.
    pub fn failure_rate(rate: f64) -> FleetRule {
        FleetRule {
            failure_rate: Some(clamped(rate)),
            slow_call_rate: None,
            minimum_calls: 100,
            window_ms: 10_000,
            buckets: 10,
        }
    }

    /// Also holds when the fleet's slow-call rate reaches `rate` (clamped into (0, 1]).
    #[must_use]
    pub fn slow_call_rate(mut self, rate: f64) -> FleetRule {
        self.slow_call_rate = Some(clamped(rate));
        self
    }

    /// The fewest calls, counted over every instance, before the rule may hold (at least 1).
    #[must_use]
    pub fn minimum_calls(mut self, calls: u64) -> FleetRule {
        self.minimum_calls = calls.max(1);
        self
    }

    /// The fleet window: `window` long in `buckets` buckets. The bucket width is rounded to
    /// whole milliseconds and kept between 10 ms and 1 hour; `buckets` is kept in 1..=60 (each
    /// flush reads every bucket of the window).
    #[must_use]
    pub fn window(mut self, window: Duration, buckets: u32) -> FleetRule {
        let buckets = buckets.clamp(1, 60);
        let width = (window.as_millis() / u128::from(buckets)).clamp(10, 3_600_000) as u64;
        self.buckets = buckets;
        self.window_ms = width * u64::from(buckets);
        self
    }

    /// The width of one fleet bucket.
    pub fn bucket_width(&self) -> Duration {
        Duration::from_millis(self.width_ms())
    }

    pub(crate) fn width_ms(&self) -> u64 {
        self.window_ms / u64::from(self.buckets)
    }

    pub(crate) fn buckets(&self) -> u32 {
        self.buckets
    }

    pub(crate) fn window_ms(&self) -> u64 {
        self.window_ms
    }

    /// Whether the rule holds on the fleet's `counts`, and which threshold.
    pub(crate) fn holds(&self, counts: Counts) -> Option<FleetCause> {
        if counts.calls < self.minimum_calls {
            return None;
        }
        if self
            .failure_rate
            .is_some_and(|r| r.reached(counts.failures, counts.calls))
        {
            return Some(FleetCause::FailureRate);
        }
        if self
            .slow_call_rate
            .is_some_and(|r| r.reached(counts.slow, counts.calls))
        {
            return Some(FleetCause::SlowCallRate);
        }
        None
    }
}

fn clamped(rate: f64) -> Rate {
    let rate = if rate.is_nan() {
        1.0
    } else {
        rate.clamp(1e-9, 1.0)
    };
    Rate::new(rate).unwrap_or(Rate::from_ppb(1_000_000_000))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(calls: u64, failures: u64, slow: u64) -> Counts {
        Counts {
            calls,
            failures,
            slow,
        }
    }

    #[test]
    fn holds_at_the_exact_rate_once_minimum_calls_are_reached() {
        let rule = FleetRule::failure_rate(0.3).minimum_calls(10);
        assert_eq!(rule.holds(counts(9, 9, 0)), None, "below minimum_calls");
        assert_eq!(rule.holds(counts(10, 2, 0)), None);
        // 0.3 × 10 = 3.0000000000000004 in f64: the exact comparison still holds at 3 of 10.
        assert_eq!(rule.holds(counts(10, 3, 0)), Some(FleetCause::FailureRate));
        let slow = FleetRule::failure_rate(1.0)
            .slow_call_rate(0.5)
            .minimum_calls(4);
        assert_eq!(slow.holds(counts(4, 1, 2)), Some(FleetCause::SlowCallRate));
        assert_eq!(slow.holds(counts(4, 4, 0)), Some(FleetCause::FailureRate));
        assert_eq!(slow.holds(counts(0, 0, 0)), None);
    }

    #[test]
    fn out_of_range_settings_are_clamped_not_panicked_on() {
        let r = FleetRule::failure_rate(f64::NAN).minimum_calls(0);
        assert_eq!(r.holds(counts(1, 1, 0)), Some(FleetCause::FailureRate));
        assert_eq!(r.holds(counts(1, 0, 0)), None);
        let r = FleetRule::failure_rate(7.0).window(Duration::ZERO, 0);
        assert_eq!((r.buckets(), r.width_ms()), (1, 10));
        let r = FleetRule::failure_rate(-1.0).window(Duration::from_secs(10), 1000);
        assert_eq!((r.buckets(), r.width_ms(), r.window_ms()), (60, 166, 9_960));
        assert_eq!(r.holds(counts(100, 1, 0)), Some(FleetCause::FailureRate));
    }

    #[test]
    fn counts_saturate() {
        let mut c = counts(u64::MAX, 1, 0);
        c.add(counts(5, 5, 5));
        assert_eq!(c, counts(u64::MAX, 6, 5));
        assert!(Counts::default().is_zero() && !c.is_zero());
    }
}
