//! Why a transition happened.

use std::fmt;

/// Why a transition happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Cause {
    /// `consecutive_failures` failures in a row while Closed.
    ConsecutiveFailures,
    /// The window's failure rate reached `failure_rate`.
    FailureRate,
    /// The window's slow-call rate reached the slow-call rate.
    SlowCallRate,
    /// The user predicate given to `trip_when` returned true.
    CustomRule,
    /// A call arrived at or after the open deadline (Open → HalfOpen).
    OpenDeadlinePassed,
    /// A probe failed (HalfOpen → Open).
    HalfOpenFailure,
    /// Enough probes succeeded (HalfOpen → Closed).
    HalfOpenSuccesses,
    /// No verdict within `half_open_timeout` (HalfOpen → Open).
    HalfOpenTimeout,
    /// `isolate`, `disable` or `reset` was called.
    Manual,
    /// Learned from another instance of the fleet (feature `redis`, or
    /// [`Breaker::trip_from_fleet`](crate::Breaker::trip_from_fleet) /
    /// [`Breaker::half_open_from_fleet`](crate::Breaker::half_open_from_fleet)): a peer's trip
    /// (Closed → Open), or a peer's recovery (Open → HalfOpen). Never published back to the
    /// fleet.
    Fleet,
    /// A fleet rule held on the fleet-wide window (feature `redis`): the calls of every
    /// instance together reached the rule's failure or slow-call rate.
    FleetWindow,
}

impl Cause {
    /// Its name: `consecutive-failures`, `failure-rate`, `slow-call-rate`, `custom-rule`,
    /// `open-deadline-passed`, `half-open-failure`, `half-open-successes`, `half-open-timeout`,
    /// `manual`, `fleet`, `fleet-window`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Cause::ConsecutiveFailures => "consecutive-failures",
            Cause::FailureRate => "failure-rate",
            Cause::SlowCallRate => "slow-call-rate",
            Cause::CustomRule => "custom-rule",
            Cause::OpenDeadlinePassed => "open-deadline-passed",
            Cause::HalfOpenFailure => "half-open-failure",
            Cause::HalfOpenSuccesses => "half-open-successes",
            Cause::HalfOpenTimeout => "half-open-timeout",
            Cause::Manual => "manual",
            Cause::Fleet => "fleet",
            Cause::FleetWindow => "fleet-window",
        }
    }
}

impl fmt::Display for Cause {
    /// Kebab-case, as in events and fleet messages: `consecutive-failures`, `half-open-timeout`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
