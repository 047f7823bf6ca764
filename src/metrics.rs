//! A snapshot of a breaker, for dashboards and health checks.

use std::time::Duration;

use crate::state::State;
use crate::window::WindowStats;

/// What [`Breaker::metrics`](crate::Breaker::metrics) returns.
///
/// The window counts are those the trip rules see (while Open, HalfOpen or Isolated: the window
/// of the last Closed or Disabled generation). The lifetime totals count every outcome ever
/// recorded, late ones included.
///
/// # Examples
/// ```
/// use hotbreaker::Breaker;
///
/// let breaker = Breaker::builder().build().unwrap();
/// breaker.try_acquire().unwrap().success();
/// breaker.try_acquire().unwrap().failure();
/// let m = breaker.metrics();
/// assert_eq!((m.window.calls, m.window.failures), (2, 1));
/// assert_eq!(m.failure_rate(), 0.5);
/// assert_eq!((m.successes, m.failures, m.rejected), (1, 1, 0));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct Metrics {
    /// The state now.
    pub state: State,
    /// The current generation (bumped by every transition).
    pub generation: u64,
    /// The window's counts.
    pub window: WindowStats,
    /// Lifetime Successes.
    pub successes: u64,
    /// Lifetime Failures.
    pub failures: u64,
    /// Lifetime Ignored outcomes.
    pub ignored: u64,
    /// Lifetime slow calls.
    pub slow: u64,
    /// Lifetime calls rejected by an Open, HalfOpen or Isolated breaker (not the throttled
    /// ones).
    pub rejected: u64,
    /// Lifetime calls the [throttle](crate::Throttle) turned away while Closed.
    pub throttled: u64,
    /// How many times the breaker has opened.
    pub times_opened: u64,
    /// While Open: time until a probe will be let through.
    pub retry_after: Option<Duration>,
    /// With a relative slow-call rule ([`SlowCalls::relative`](crate::SlowCalls::relative)):
    /// the dependency's typical latency as learned so far (`None` before the first sample, or
    /// without a relative rule). Calls are judged slow only once the warm-up is over.
    pub typical_latency: Option<Duration>,
}

impl Metrics {
    /// The window's failure rate (0 when empty).
    pub fn failure_rate(&self) -> f64 {
        self.window.failure_rate()
    }

    /// The window's slow-call rate (0 when empty).
    pub fn slow_call_rate(&self) -> f64 {
        self.window.slow_call_rate()
    }
}
