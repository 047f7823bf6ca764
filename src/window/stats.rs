//! The window's counts, as the trip rules and reports read them.

/// The counts of the window the trip rules look at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WindowStats {
    /// Successes and Failures in the window (Ignored outcomes are not calls).
    pub calls: u64,
    /// Failures in the window.
    pub failures: u64,
    /// Slow calls in the window (successes or failures that took longer than the slow-call
    /// duration).
    pub slow: u64,
    /// Calls the [throttle](crate::Throttle) turned away in the window. Not in `calls`: they
    /// never ran, and the trip rules do not see them (0 with a count window, which the throttle
    /// does not run on).
    pub throttled: u64,
    /// With a throttle: calls admitted while Closed that ended [`Ignored`](crate::Outcome::Ignored)
    /// or whose permit was dropped without an outcome. Not in `calls` (the trip rules do not see
    /// them); the throttle counts them among its requests and its accepts, since the dependency
    /// did not refuse them. 0 without a throttle.
    pub answered: u64,
}

impl WindowStats {
    /// Successes in the window.
    pub fn successes(&self) -> u64 {
        self.calls - self.failures
    }

    /// Every call attempted in the window: `calls + throttled + answered` (what the throttle
    /// calls its requests).
    pub fn requests(&self) -> u64 {
        self.calls
            .saturating_add(self.throttled)
            .saturating_add(self.answered)
    }

    /// The calls the dependency did not refuse: `successes + answered` (what the throttle calls
    /// its accepts).
    pub fn accepts(&self) -> u64 {
        self.successes().saturating_add(self.answered)
    }

    /// `failures / calls`, or 0 for an empty window.
    pub fn failure_rate(&self) -> f64 {
        ratio(self.failures, self.calls)
    }

    /// `slow / calls`, or 0 for an empty window.
    pub fn slow_call_rate(&self) -> f64 {
        ratio(self.slow, self.calls)
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}
