//! The health report of a [`Registry`](crate::Registry).

use crate::state::State;

/// What [`Registry::health`](crate::Registry::health) reports; serializable with the `serde`
/// feature (states as `"closed"`, `"open"`, `"half-open"`, `"isolated"`, `"disabled"`).
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Health {
    /// False when a critical breaker is down: Isolated, or Open before its deadline.
    pub ready: bool,
    /// Every breaker, by name.
    pub breakers: Vec<BreakerHealth>,
    /// Whether the registry's fleet link (feature `redis`) is up: flushes reach Redis and its
    /// subscription is live. `None` when no link was started on the registry. Not part of
    /// `ready`: with the link down every breaker keeps deciding on its local rules.
    pub fleet_link_up: Option<bool>,
}

/// One breaker in a [`Health`] report.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct BreakerHealth {
    /// Its name in the registry.
    pub name: String,
    /// Its state.
    pub state: State,
    /// Whether the readiness verdict depends on it.
    pub critical: bool,
    /// Whether it rejects calls now: Isolated, or Open before its deadline (an Open breaker
    /// past its deadline lets the next call through as a probe, so it does not count as down:
    /// an instance taken out of its load balancer would otherwise never send that call).
    pub down: bool,
    /// Failures / calls in its current window (0 when empty).
    pub failure_rate: f64,
    /// Calls in its current window.
    pub calls_in_window: u64,
    /// While Open: milliseconds until it lets a probe through.
    pub retry_after_ms: Option<u64>,
    /// How many times it has opened.
    pub times_opened: u64,
}

#[cfg(feature = "serde")]
impl serde::Serialize for State {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What [`Registry::health`](crate::Registry::health) reads of one breaker.
pub(crate) struct HealthView {
    pub(crate) state: State,
    pub(crate) window: crate::window::WindowStats,
    pub(crate) times_opened: u64,
    pub(crate) retry_after_ns: Option<u64>,
}
