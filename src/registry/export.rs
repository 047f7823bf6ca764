//! Registry metrics through the `metrics` facade (feature `metrics`): the series, their
//! descriptions, and publishing them on scrape or from a thread of their own.

use std::sync::{Arc, Condvar, Mutex, PoisonError, Weak}; // Mutex: off the hot path (the publisher's stop flag)
use std::thread::JoinHandle;
use std::time::Duration;

use metrics::Unit;

use crate::registry::Registry;
use crate::state::State;

/// The transitions of the automatic cycle, published from 0 so that the first of each shows in
/// `increase()`; the others appear at their first occurrence.
const CYCLE: [(State, State); 4] = [
    (State::Closed, State::Open),
    (State::Open, State::HalfOpen),
    (State::HalfOpen, State::Closed),
    (State::HalfOpen, State::Open),
];

/// Each series with its unit and help text, as `describe` publishes them.
const SERIES: [(&str, SeriesKind, Unit, &str); 7] = [
    (
        "hotbreaker_calls_total",
        SeriesKind::Counter,
        Unit::Count,
        "Calls through the breaker by outcome: success, failure, ignored, rejected (while not \
         Closed) and throttled (shed by the throttle while Closed).",
    ),
    (
        "hotbreaker_slow_calls_total",
        SeriesKind::Counter,
        Unit::Count,
        "Calls judged slow by the slow-call rule.",
    ),
    (
        "hotbreaker_transitions_total",
        SeriesKind::Counter,
        Unit::Count,
        "State transitions by from and to state.",
    ),
    (
        "hotbreaker_state",
        SeriesKind::Gauge,
        Unit::Count,
        "1 for the state the breaker is in, 0 for the others.",
    ),
    (
        "hotbreaker_window_failure_rate",
        SeriesKind::Gauge,
        Unit::Count,
        "Failures divided by calls in the current window (0 when it is empty).",
    ),
    (
        "hotbreaker_window_calls",
        SeriesKind::Gauge,
        Unit::Count,
        "Calls recorded in the current window.",
    ),
    (
        "hotbreaker_typical_latency_seconds",
        SeriesKind::Gauge,
        Unit::Seconds,
        "The typical latency learned by a relative slow-call rule.",
    ),
];

#[derive(Clone, Copy)]
enum SeriesKind {
    Counter,
    Gauge,
}

/// Describes every series to the installed recorder (its `# HELP` line).
fn describe() {
    for (name, kind, unit, help) in SERIES {
        match kind {
            SeriesKind::Counter => metrics::describe_counter!(name, unit, help),
            SeriesKind::Gauge => metrics::describe_gauge!(name, unit, help),
        }
    }
}

impl Registry {
    /// Publishes every breaker's counters and gauges, with their descriptions, to the
    /// installed `metrics` recorder: call it on each scrape, or let
    /// [`publish_metrics_every`](Registry::publish_metrics_every) call it. Cost: one
    /// [`Breaker::metrics`](crate::Breaker::metrics) per breaker plus the recorder's own work;
    /// nothing is added to a call's path, and callers are never blocked.
    ///
    /// | metric | type | labels |
    /// |---|---|---|
    /// | `hotbreaker_calls_total` | counter | `name`, `outcome` = `success` \| `failure` \| `ignored` \| `rejected` \| `throttled` |
    /// | `hotbreaker_slow_calls_total` | counter | `name` |
    /// | `hotbreaker_transitions_total` | counter | `name`, `from`, `to` (states as in `Display`: `closed`, `open`, `half-open`, `isolated`, `disabled`); `closed`→`open`, `open`→`half-open`, `half-open`→`closed` and `half-open`→`open` from 0, the others from their first occurrence |
    /// | `hotbreaker_state` | gauge | `name`, `state`: 1 for the state the breaker is in, 0 for the four others |
    /// | `hotbreaker_window_failure_rate` | gauge | `name`: failures / calls in the current window |
    /// | `hotbreaker_window_calls` | gauge | `name`: calls in the current window |
    /// | `hotbreaker_typical_latency_seconds` | gauge | `name`: the learned typical latency (relative slow-call rule only, once learned) |
    ///
    /// The fleet link's series (`hotbreaker_fleet_*`, feature `redis`) come from the link's
    /// own `publish_metrics`; the per-call `hotbreaker_call_duration_seconds` histogram and
    /// `hotbreaker_call_timeouts_total` counter from an opt-in
    /// [`CallTelemetry`](crate::telemetry::CallTelemetry).
    pub fn publish_metrics(&self) {
        describe();
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
            let counted: Vec<(State, State, u64)> = entry.transitions.nonzero().collect();
            let from_zero = CYCLE
                .iter()
                .filter(|(from, to)| !counted.iter().any(|c| (c.0, c.1) == (*from, *to)))
                .map(|&(from, to)| (from, to, 0));
            for (from, to, n) in counted.iter().copied().chain(from_zero) {
                metrics::counter!(
                    "hotbreaker_transitions_total",
                    "name" => name.clone(),
                    "from" => from.to_string(),
                    "to" => to.to_string()
                )
                .absolute(n);
            }
            for state in State::ALL {
                metrics::gauge!("hotbreaker_state", "name" => name.clone(), "state" => state.to_string())
                    .set(if state == m.state { 1.0 } else { 0.0 });
            }
            if let Some(typical) = m.typical_latency {
                metrics::gauge!("hotbreaker_typical_latency_seconds", "name" => name.clone())
                    .set(typical.as_secs_f64());
            }
            metrics::gauge!("hotbreaker_window_calls", "name" => name.clone())
                .set(m.window.calls as f64);
            metrics::gauge!("hotbreaker_window_failure_rate", "name" => name).set(m.failure_rate());
        }
    }

    /// Publishes the metrics now, then every `interval` from a thread of its own (named
    /// `hotbreaker-metrics`), until the returned handle is dropped or the registry is. For an
    /// exporter that serves its own listener (`metrics-exporter-prometheus`'s HTTP listener),
    /// where nothing else would call [`publish_metrics`](Registry::publish_metrics). An interval
    /// shorter than the scrape interval only costs more reads.
    ///
    /// # Errors
    /// An [`std::io::Error`] of kind `InvalidInput` if `interval` is under 1 ms, or the error
    /// of starting the thread.
    ///
    /// # Examples
    /// ```
    /// use std::{sync::Arc, time::Duration};
    ///
    /// let registry = Arc::new(hotbreaker::Registry::default());
    /// let publisher = registry.publish_metrics_every(Duration::from_secs(10))?;
    /// drop(publisher); // stops and joins the thread
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn publish_metrics_every(
        self: &Arc<Self>,
        interval: Duration,
    ) -> std::io::Result<MetricsPublisher> {
        if interval < Duration::from_millis(1) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("the metrics interval must be at least 1 ms, got {interval:?}"),
            ));
        }
        self.publish_metrics();
        let stop = Arc::new(Stop::default());
        let registry: Weak<Registry> = Arc::downgrade(self);
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("hotbreaker-metrics".into())
                .spawn(move || {
                    while !stop.wait(interval) {
                        match registry.upgrade() {
                            Some(registry) => registry.publish_metrics(),
                            None => return, // the registry is gone
                        }
                    }
                })?
        };
        Ok(MetricsPublisher {
            stop,
            thread: Some(thread),
        })
    }
}

/// The stop flag of a publisher's thread. Off every caller's path: a lock and a condition
/// variable, taken once per interval and when the handle is dropped.
#[derive(Default)]
struct Stop {
    stopped: Mutex<bool>, // off the hot path: once per publishing interval
    wake: Condvar,
}

impl Stop {
    /// Waits up to `interval` for a stop; returns whether one came.
    fn wait(&self, interval: Duration) -> bool {
        let stopped = self.stopped.lock().unwrap_or_else(PoisonError::into_inner);
        let (stopped, _) = self
            .wake
            .wait_timeout_while(stopped, interval, |stopped| !*stopped)
            .unwrap_or_else(PoisonError::into_inner);
        *stopped
    }

    fn stop(&self) {
        *self.stopped.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.wake.notify_all();
    }
}

/// The thread of [`Registry::publish_metrics_every`]: dropping it stops the thread and waits
/// for it (at most one publication in progress).
pub struct MetricsPublisher {
    stop: Arc<Stop>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for MetricsPublisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsPublisher").finish_non_exhaustive()
    }
}

impl Drop for MetricsPublisher {
    fn drop(&mut self) {
        self.stop.stop();
        if let Some(thread) = self.thread.take() {
            // A panic in a recorder stays in that thread: nothing to add to it here.
            let _ = thread.join();
        }
    }
}
