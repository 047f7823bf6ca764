//! Summaries per phase and overall, the headline relations, and the terminal table.

use std::sync::atomic::Ordering;
use std::time::Duration;

use hotbreaker::State;

use crate::lab::{INTERVAL, Outcome, Run};

pub const PHASES: [&str; 4] = ["healthy", "outage", "brownout", "recovered"];

/// Totals over a range of intervals of one run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Totals {
    pub attempted: u64,
    pub reached: u64,
    pub successes: u64,
    pub failures: u64,
    pub rejected: u64,
    pub p50: Duration,
    pub p99: Duration,
}

fn percentile(sorted: &[u32], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Duration::from_micros(u64::from(sorted[rank - 1]))
}

/// Totals of the calls that started in `[from, to)`.
pub fn totals(run: &Run, from: Duration, to: Duration) -> Totals {
    let (a, b) = (
        (from.as_millis() / INTERVAL.as_millis()) as usize,
        ((to.as_millis() / INTERVAL.as_millis()) as usize).min(run.intervals.len()),
    );
    let mut t = Totals::default();
    let mut latencies = Vec::new();
    for i in &run.intervals[a..b] {
        t.attempted += i.attempted.load(Ordering::Relaxed);
        t.reached += i.reached.load(Ordering::Relaxed);
        t.successes += i.successes.load(Ordering::Relaxed);
        t.failures += i.failures.load(Ordering::Relaxed);
        t.rejected += i.rejected.load(Ordering::Relaxed);
        latencies.extend_from_slice(&i.latencies_us.lock().unwrap());
    }
    latencies.sort_unstable();
    t.p50 = percentile(&latencies, 0.50);
    t.p99 = percentile(&latencies, 0.99);
    t
}

/// The relations the lab exists to show, measured.
#[derive(Clone, Debug)]
pub struct Verdict {
    /// Fraction of backend calls saved during the outage (1 − protected / unprotected).
    pub outage_saving: f64,
    /// Unprotected p99 / protected p99 during the outage.
    pub outage_p99_ratio: f64,
    /// From the outage's start to the breaker opening.
    pub time_to_trip: Option<Duration>,
    /// From the recovered phase's start to the breaker being Closed (zero if it already was).
    pub time_to_close: Option<Duration>,
    /// What `time_to_close` is allowed: the open deadline in force at recovery, plus the
    /// probes' own latency (1.5 × the backend latency), one think time for a worker to arrive,
    /// and 50 ms of scheduling slack for a 2-core machine running 16 workers.
    pub close_bound: Duration,
}

impl Verdict {
    pub fn holds(&self) -> Vec<(String, bool)> {
        vec![
            (
                format!(
                    "backend calls saved during the outage: {:.1} % (want >= 90 %)",
                    100.0 * self.outage_saving
                ),
                self.outage_saving >= 0.9,
            ),
            (
                format!(
                    "caller p99 during the outage {:.0}x lower (want >= 10x)",
                    self.outage_p99_ratio
                ),
                self.outage_p99_ratio >= 10.0,
            ),
            (
                format!(
                    "tripped {} after the outage began (want <= 1 s)",
                    show(self.time_to_trip)
                ),
                self.time_to_trip
                    .is_some_and(|d| d <= Duration::from_secs(1)),
            ),
            (
                format!(
                    "closed {} after recovery (want <= {} ms: deadline in force + probe latency + slack)",
                    show(self.time_to_close),
                    self.close_bound.as_millis()
                ),
                self.time_to_close.is_some_and(|d| d <= self.close_bound),
            ),
        ]
    }
}

/// A caller latency for the table; a rejection takes under the microsecond resolution.
fn latency(d: Duration) -> String {
    if d.is_zero() {
        "<1µs".to_string()
    } else {
        format!("{d:.1?}")
    }
}

fn show(d: Option<Duration>) -> String {
    d.map_or_else(|| "never".to_string(), |d| format!("{} ms", d.as_millis()))
}

pub fn verdict(o: &Outcome) -> Verdict {
    let lab = &o.lab;
    let (outage, brownout, recovery) = (lab.phase_start(1), lab.phase_start(2), lab.phase_start(3));
    let free = totals(&o.unprotected, outage, brownout);
    let guarded = totals(&o.protected, outage, brownout);
    let time_to_trip = o
        .transitions
        .iter()
        .find(|(t, tr)| *t >= outage && tr.to == State::Open)
        .map(|(t, _)| *t - outage);
    let time_to_close = if o.at_recovery.0 == State::Closed {
        Some(Duration::ZERO)
    } else {
        o.transitions
            .iter()
            .find(|(t, tr)| *t >= recovery && tr.to == State::Closed)
            .map(|(t, _)| *t - recovery)
    };
    let deadline = match o.at_recovery {
        (State::Open, Some(d)) => d,
        _ => Duration::ZERO,
    };
    Verdict {
        outage_saving: 1.0 - guarded.reached as f64 / free.reached.max(1) as f64,
        outage_p99_ratio: free.p99.as_secs_f64() / guarded.p99.as_secs_f64().max(1e-6),
        time_to_trip,
        time_to_close,
        close_bound: deadline + lab.latency.mul_f64(1.5) + lab.think + Duration::from_millis(50),
    }
}

/// The terminal summary.
pub fn table(o: &Outcome) -> String {
    let lab = &o.lab;
    let mut out = String::new();
    let line = |out: &mut String, s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line(
        &mut out,
        format!(
            "{:<10} {:<11} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "phase", "run", "attempted", "reached", "ok", "failed", "rejected", "p50", "p99"
        ),
    );
    let mut ranges: Vec<(&str, Duration, Duration)> = (0..4)
        .map(|i| {
            (
                PHASES[i],
                lab.phase_start(i),
                lab.phase_start(i) + lab.phases[i],
            )
        })
        .collect();
    ranges.push(("overall", Duration::ZERO, lab.total() + INTERVAL));
    for (name, from, to) in ranges {
        let free = totals(&o.unprotected, from, to);
        let guarded = totals(&o.protected, from, to);
        for (run, t) in [("no breaker", &free), ("breaker", &guarded)] {
            line(
                &mut out,
                format!(
                    "{:<10} {:<11} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
                    name,
                    run,
                    t.attempted,
                    t.reached,
                    t.successes,
                    t.failures,
                    t.rejected,
                    latency(t.p50),
                    latency(t.p99)
                ),
            );
        }
        line(
            &mut out,
            format!(
                "{:<10} {:<11} backend load saved: {:.1} %",
                "",
                "",
                100.0 * (1.0 - guarded.reached as f64 / free.reached.max(1) as f64)
            ),
        );
    }
    out
}
