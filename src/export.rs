//! Metrics through the `metrics` facade (feature `metrics`): any exporter works (Prometheus,
//! StatsD, OpenTelemetry, ...).
//!
//! Nothing is added to a call's path: [`Registry::publish_metrics`] reads each breaker's own
//! lifetime totals and the transition counts its registry listener keeps, and sets absolute
//! counter values. Run it on scrape (see `integration/examples/prometheus.rs` in the repository) or on an interval.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `hotbreaker_calls_total` | counter | `name`, `outcome` = `success` \| `failure` \| `ignored` \| `rejected` \| `throttled` |
//! | `hotbreaker_slow_calls_total` | counter | `name` |
//! | `hotbreaker_transitions_total` | counter | `name`, `from`, `to` (states as in `Display`) |
//! | `hotbreaker_state` | gauge | `name`; 0 closed, 1 open, 2 half-open, 3 isolated, 4 disabled |
//! | `hotbreaker_window_failure_rate` | gauge | `name`; failures / calls in the current window |
//! | `hotbreaker_typical_latency_seconds` | gauge | `name`; the learned typical latency (relative slow-call rule only, once learned) |
//!
//! The fleet link's series (`hotbreaker_fleet_*`, feature `redis`) come from
//! `FleetStatus::publish_metrics`: see `docs/fleet.md`.

use crate::registry::Registry;

impl Registry {
    /// Publishes every breaker's counters and gauges to the installed `metrics` recorder
    /// (see the [table](crate#metrics)). Cost: one [`Breaker::metrics`](crate::Breaker::metrics)
    /// per breaker, plus the recorder's own work; callers are never blocked.
    pub fn publish_metrics(&self) {
        for (name, entry) in self.entries().pin().iter() {
            let name = name.to_string();
            let m = entry.breaker.metrics();
            for (outcome, value) in [
                ("success", m.successes),
                ("failure", m.failures),
                ("ignored", m.ignored),
                ("rejected", m.rejected),
                ("throttled", m.throttled),
            ] {
                metrics::counter!("hotbreaker_calls_total", "name" => name.clone(), "outcome" => outcome)
                    .absolute(value);
            }
            metrics::counter!("hotbreaker_slow_calls_total", "name" => name.clone())
                .absolute(m.slow);
            for (from, to, n) in entry.transitions.nonzero() {
                metrics::counter!(
                    "hotbreaker_transitions_total",
                    "name" => name.clone(),
                    "from" => from.to_string(),
                    "to" => to.to_string()
                )
                .absolute(n);
            }
            metrics::gauge!("hotbreaker_state", "name" => name.clone()).set(m.state as u8 as f64);
            if let Some(typical) = m.typical_latency {
                metrics::gauge!("hotbreaker_typical_latency_seconds", "name" => name.clone())
                    .set(typical.as_secs_f64());
            }
            metrics::gauge!("hotbreaker_window_failure_rate", "name" => name).set(m.failure_rate());
        }
    }
}
