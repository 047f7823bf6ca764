//! Manual and fleet controls: isolate, disable, reset, and the fleet's trips.

use super::*;

impl Breaker {
    /// Forces the breaker open until [`reset`](Breaker::reset): every call is rejected with no
    /// `retry_after`.
    pub fn isolate(&self) {
        self.manual(State::Isolated);
    }

    /// Switches the breaker off until [`reset`](Breaker::reset): every call is let through and
    /// counted, nothing trips.
    pub fn disable(&self) {
        self.manual(State::Disabled);
    }

    /// Closes the breaker with an empty window and the backoff attempt count cleared. Always a
    /// transition (listeners hear Closed → Closed too), so outstanding permits become late.
    pub fn reset(&self) {
        self.manual(State::Closed);
    }

    pub(super) fn manual(&self, to: State) {
        let limits = self.rules.load().limits;
        self.swap_state(limits, |_| Event::Manual { to });
    }

    /// Applies a trip learned from another instance of the fleet: a **Closed** breaker opens
    /// (cause [`Cause::Fleet`]) for `open_for`, capped at the longest opening its own backoff
    /// allows; any other state is left alone (see below). Returns whether it opened.
    ///
    /// This is the transition the `redis` feature's fleet link makes when a peer publishes a
    /// trip; call it yourself to carry trips over another channel. Off the call path: one
    /// compare-and-swap on the state word, like any transition, and listeners hear it.
    ///
    /// # Invariant
    /// The fleet never holds a breaker open longer than the peer that tripped said, and never
    /// overrides a local decision: an Open breaker keeps its own deadline, a HalfOpen one lets
    /// its own probes decide, and an Isolated or Disabled breaker (the operator's) is never
    /// moved. A zero `open_for` changes nothing.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use hotbreaker::{Breaker, Cause, State};
    ///
    /// let breaker = Breaker::builder().open_timeout(Duration::from_secs(30)).build()?;
    /// assert!(breaker.trip_from_fleet(Duration::from_secs(5)));
    /// assert_eq!(breaker.state(), State::Open);
    /// let retry = breaker.metrics().retry_after.unwrap();
    /// assert!(retry <= Duration::from_secs(5), "the peer's 5 s, not the local 30 s");
    /// assert!(!breaker.trip_from_fleet(Duration::from_secs(5)), "already Open");
    ///
    /// breaker.isolate();
    /// assert!(!breaker.trip_from_fleet(Duration::from_secs(5)));
    /// assert_eq!(breaker.state(), State::Isolated);
    /// # Ok::<(), hotbreaker::ConfigError>(())
    /// ```
    pub fn trip_from_fleet(&self, open_for: Duration) -> bool {
        let ns = u64::try_from(open_for.as_nanos()).unwrap_or(u64::MAX);
        if ns == 0 {
            return false;
        }
        let limits = self.rules.load().limits;
        let cause = Cause::Fleet;
        let (_, step) = self.swap_state_with(limits, |_| Event::FleetOpen { cause }, Some(ns));
        step.cause.is_some()
    }

    /// Trips a Closed breaker because a fleet rule held on the fleet-wide window (cause
    /// [`Cause::FleetWindow`]), for the duration its own backoff gives. Returns whether it
    /// opened. Only in the Closed period of `generation`, the one whose window was read: any
    /// other state, or a breaker that closed again since (a new window), is left alone.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn trip_from_fleet_window(&self, generation: u64) -> bool {
        let limits = self.rules.load().limits;
        let cause = Cause::FleetWindow;
        let (_, step) = self.swap_state(limits, |_| Event::Trip { generation, cause });
        step.cause.is_some()
    }

    /// Applies a recovery learned from another instance of the fleet (a peer's probe
    /// succeeded): an **Open** breaker half-opens now (cause [`Cause::Fleet`]) instead of waiting
    /// out its deadline, and its own probes decide whether it closes. Any other state is left
    /// alone. Returns whether it half-opened.
    ///
    /// # Examples
    /// ```
    /// use hotbreaker::{Breaker, State};
    ///
    /// let breaker = Breaker::builder()
    ///     .consecutive_failures(1)
    ///     .half_open_successes(1)
    ///     .build()?;
    /// assert!(!breaker.half_open_from_fleet(), "Closed: nothing to do");
    /// breaker.try_acquire().unwrap().failure();
    /// assert!(breaker.half_open_from_fleet());
    /// assert_eq!(breaker.state(), State::HalfOpen);
    /// breaker.try_acquire().expect("a local probe").success();
    /// assert_eq!(breaker.state(), State::Closed);
    /// # Ok::<(), hotbreaker::ConfigError>(())
    /// ```
    pub fn half_open_from_fleet(&self) -> bool {
        let limits = self.rules.load().limits;
        let (_, step) = self.swap_state(limits, |_| Event::FleetHalfOpen);
        step.cause.is_some()
    }
}
