//! Whether a call was slow, and learning the typical latency for a relative rule.

use super::*;

impl Breaker {
    /// Whether a call of `ticket` that ends now is slow under the current rules (for telemetry;
    /// the recording judges it again itself).
    #[cfg(any(feature = "future", feature = "tracing", feature = "metrics"))]
    pub(crate) fn judge_slow(&self, ticket: Ticket) -> bool {
        ticket.issued_ns != 0 && self.is_slow(&self.rules.load(), ticket, self.clock.now_ns())
    }

    /// Nanoseconds on the breaker's clock (for telemetry).
    #[cfg(feature = "metrics")]
    pub(crate) fn clock_now_ns(&self) -> u64 {
        self.clock.now_ns()
    }

    /// Whether a call of `ticket` that ended at `now` was slow under `rules`.
    pub(super) fn is_slow(&self, rules: &LiveRules, ticket: Ticket, now: u64) -> bool {
        if ticket.issued_ns == 0 {
            return false;
        }
        let took = now.saturating_sub(ticket.issued_ns);
        rules.slow.is_some_and(|s| match s.relative {
            None => took > s.duration_ns,
            Some(multiplier) => {
                took > s.duration_ns
                    && took
                        > self
                            .bookkeeping
                            .typical
                            .load()
                            .threshold_ns(f64::from(multiplier), s.duration_ns)
            }
        })
    }

    /// The learned typical latency, with a relative slow-call rule and at least one sample.
    pub(super) fn typical_latency(&self) -> Option<Duration> {
        let relative = self.rules.load().slow.is_some_and(|s| s.relative.is_some());
        let typical = self.bookkeeping.typical.load().typical_ns();
        (relative && typical > 0).then(|| Duration::from_nanos(typical))
    }

    /// Offers the duration of a timed Success to the typical-latency estimator of a relative
    /// slow-call rule: the first one of each sampling period is learned (see `latency.rs`).
    pub(super) fn learn_latency(&self, rules: &LiveRules, ticket: Ticket, now: u64) {
        if ticket.issued_ns == 0 || rules.slow.is_none_or(|s| s.relative.is_none()) {
            return;
        }
        let period = match self.window.spec() {
            WindowSpec::Time { width_ns, .. } => width_ns,
            WindowSpec::Count { .. } => latency::COUNT_WINDOW_PERIOD,
        };
        self.bookkeeping
            .typical
            .sample(now.saturating_sub(ticket.issued_ns), now / period);
    }
}
