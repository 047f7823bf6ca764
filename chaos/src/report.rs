//! Summaries per phase and overall, the headline relations, and the terminal tables. The
//! arithmetic (time to full traffic, shares shed, the table's layout) is in pure functions of
//! counts, tested without threads.

use std::sync::atomic::Ordering;
use std::time::Duration;

use hotbreaker::State;

use crate::lab::{INTERVAL, Outcome, Run};
use crate::schedule::{Phase, ramp_error_rate};

/// "Full traffic": a protected run's backend calls over [`FULL_SPAN`] consecutive intervals reach
/// this share of the unprotected run's over the same intervals.
pub const FULL_SHARE: f64 = 0.9;
/// The span "full traffic" is judged over, in intervals (500 ms).
pub const FULL_SPAN: usize = 5;

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

/// The intervals of the calls that started in `[from, to)`, clamped to the recording.
fn interval_range(run: &Run, from: Duration, to: Duration) -> std::ops::Range<usize> {
    let b = ((to.as_millis() / INTERVAL.as_millis()) as usize).min(run.intervals.len());
    let a = ((from.as_millis() / INTERVAL.as_millis()) as usize).min(b);
    a..b
}

/// Totals of the calls that started in `[from, to)`.
pub fn totals(run: &Run, from: Duration, to: Duration) -> Totals {
    let mut t = Totals::default();
    let mut latencies = Vec::new();
    for i in &run.intervals[interval_range(run, from, to)] {
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

/// The share of backend calls a protected run saved: `1 − reached / unprotected reached`.
pub fn saved(reached: u64, unprotected_reached: u64) -> f64 {
    1.0 - reached as f64 / unprotected_reached.max(1) as f64
}

/// The share of attempted calls turned away; 0 when nothing was attempted.
pub fn shed(rejected: u64, attempted: u64) -> f64 {
    if attempted == 0 {
        0.0
    } else {
        rejected as f64 / attempted as f64
    }
}

/// The first offset `k` (in intervals) at which a run is at full traffic: its backend calls over
/// intervals `k..k + span` are at least `share` of the reference run's over the same intervals
/// (which must have some). `None` if no such span fits in the slices.
pub fn time_to_full(run: &[u64], reference: &[u64], span: usize, share: f64) -> Option<usize> {
    let n = run.len().min(reference.len());
    (0..=n.checked_sub(span.max(1))?).find(|&k| {
        let ours: u64 = run[k..k + span].iter().sum();
        let theirs: u64 = reference[k..k + span].iter().sum();
        theirs > 0 && ours as f64 >= share * theirs as f64
    })
}

/// When a protected run was at full traffic in a phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FullAfter {
    /// The unprotected run (the reference), or a range that is no phase.
    NotApplicable,
    /// This long after the phase's start (the start of the first full span).
    After(Duration),
    /// Not within the phase.
    Never,
}

impl std::fmt::Display for FullAfter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FullAfter::NotApplicable => f.pad("-"),
            FullAfter::After(d) => f.pad(&format!("{} ms", d.as_millis())),
            FullAfter::Never => f.pad("never"),
        }
    }
}

/// One run in one phase (or overall).
#[derive(Clone, Debug, PartialEq)]
pub struct RunSummary {
    pub run: &'static str,
    pub totals: Totals,
    /// Backend calls saved against the unprotected run; `None` for that run.
    pub saved: Option<f64>,
    pub full_after: FullAfter,
}

/// One phase (or the whole run, `phase` "overall"), every run.
#[derive(Clone, Debug, PartialEq)]
pub struct PhaseSummary {
    pub phase: &'static str,
    pub runs: Vec<RunSummary>,
}

/// [`time_to_full`] for a protected run over `[from, to)`.
fn full_after(run: &Run, reference: &Run, from: Duration, to: Duration) -> FullAfter {
    let range = interval_range(run, from, to);
    let reached = |r: &Run| r.counts(|i| &i.reached)[range.clone()].to_vec();
    match time_to_full(&reached(run), &reached(reference), FULL_SPAN, FULL_SHARE) {
        Some(k) => FullAfter::After(INTERVAL * k as u32),
        None => FullAfter::Never,
    }
}

fn summary(o: &Outcome, phase: &'static str, range: Option<(Duration, Duration)>) -> PhaseSummary {
    let (from, to) = range.unwrap_or((Duration::ZERO, o.lab.total() + INTERVAL));
    let free = totals(&o.unprotected, from, to);
    let runs = o
        .runs()
        .into_iter()
        .map(|run| {
            let totals = totals(run, from, to);
            let reference = std::ptr::eq(run, &o.unprotected);
            RunSummary {
                run: run.name,
                saved: (!reference).then(|| saved(totals.reached, free.reached)),
                full_after: if reference || range.is_none() {
                    FullAfter::NotApplicable
                } else {
                    full_after(run, &o.unprotected, from, to)
                },
                totals,
            }
        })
        .collect();
    PhaseSummary { phase, runs }
}

/// Every phase, then the whole run.
pub fn summaries(o: &Outcome) -> Vec<PhaseSummary> {
    let lab = &o.lab;
    Phase::ALL
        .into_iter()
        .map(|p| summary(o, p.name(), Some((lab.phase_start(p), lab.phase_end(p)))))
        .chain(std::iter::once(summary(o, "overall", None)))
        .collect()
}

/// A caller latency for the table; a rejection takes under the microsecond resolution.
fn latency(d: Duration) -> String {
    if d.is_zero() {
        "<1µs".to_string()
    } else {
        format!("{d:.1?}")
    }
}

fn percent(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_string(), |x| format!("{:.1} %", 100.0 * x))
}

/// The per-phase table.
pub fn format_table(rows: &[PhaseSummary]) -> String {
    let mut out = format!(
        "{:<10} {:<10} {:>9} {:>8} {:>7} {:>8} {:>7} {:>8} {:>8} {:>8} {:>10}\n",
        "phase",
        "run",
        "attempted",
        "reached",
        "saved",
        "ok",
        "failed",
        "rejected",
        "p50",
        "p99",
        "full after"
    );
    for row in rows {
        for r in &row.runs {
            let t = &r.totals;
            out.push_str(&format!(
                "{:<10} {:<10} {:>9} {:>8} {:>7} {:>8} {:>7} {:>8} {:>8} {:>8} {:>10}\n",
                row.phase,
                r.run,
                t.attempted,
                t.reached,
                percent(r.saved),
                t.successes,
                t.failures,
                t.rejected,
                latency(t.p50),
                latency(t.p99),
                r.full_after
            ));
        }
    }
    out
}

/// One slice of the ramp: the scheduled error rate and what each protected run shed.
#[derive(Clone, Debug, PartialEq)]
pub struct Slice {
    /// Since the ramp's start.
    pub from: Duration,
    pub to: Duration,
    /// The backend's scheduled error rate, averaged over the slice's intervals.
    pub error_rate: f64,
    /// The share of attempted calls the breaker turned away.
    pub breaker_shed: f64,
    /// The share of attempted calls the throttle turned away.
    pub throttle_shed: f64,
    /// Times the breaker opened in the slice.
    pub opens: usize,
}

/// The ramp in `n` equal slices.
pub fn ramp_slices(o: &Outcome, n: u32) -> Vec<Slice> {
    let lab = &o.lab;
    let start = lab.phase_start(Phase::Ramp);
    let len = lab.phases[Phase::Ramp.index()];
    (0..n)
        .map(|k| {
            let (from, to) = (len * k / n, len * (k + 1) / n);
            let (a, b) = (start + from, start + to);
            let range = interval_range(&o.unprotected, a, b);
            let rates: Vec<f64> = range
                .map(|i| {
                    let mid = INTERVAL * i as u32 + INTERVAL / 2;
                    ramp_error_rate(lab.ramp_peak, mid.saturating_sub(start), len)
                })
                .collect();
            let share = |run: &Run| {
                let t = totals(run, a, b);
                shed(t.rejected, t.attempted)
            };
            Slice {
                from,
                to,
                error_rate: rates.iter().sum::<f64>() / rates.len().max(1) as f64,
                breaker_shed: share(&o.protected),
                throttle_shed: share(&o.throttled),
                opens: opens(o, a, b),
            }
        })
        .collect()
}

/// Times the breaker opened in `[from, to)`.
pub fn opens(o: &Outcome, from: Duration, to: Duration) -> usize {
    o.transitions
        .iter()
        .filter(|(t, tr)| (from..to).contains(t) && tr.to == State::Open)
        .count()
}

/// The ramp's table.
pub fn format_ramp(slices: &[Slice]) -> String {
    let mut out = format!(
        "{:<13} {:>10} {:>13} {:>14} {:>13}\n",
        "ramp slice", "error rate", "breaker shed", "throttle shed", "breaker opens"
    );
    for s in slices {
        out.push_str(&format!(
            "{:<13} {:>8.0} % {:>11.0} % {:>12.0} % {:>13}\n",
            format!("{:.1}-{:.1} s", s.from.as_secs_f64(), s.to.as_secs_f64()),
            100.0 * s.error_rate,
            100.0 * s.breaker_shed,
            100.0 * s.throttle_shed,
            s.opens
        ));
    }
    out
}

/// The relations the lab exists to show, measured.
#[derive(Clone, Debug)]
pub struct Verdict {
    /// Fraction of backend calls the breaker saved during the outage.
    pub outage_saving: f64,
    /// Fraction of backend calls the throttle saved during the outage.
    pub throttle_outage_saving: f64,
    /// The throttle's `max_rejection`, the most it can ever shed.
    pub max_rejection: f64,
    /// Unprotected p99 / protected p99 during the outage.
    pub outage_p99_ratio: f64,
    /// From the outage's start to the breaker opening; zero if it was open already.
    pub time_to_trip: Option<Duration>,
    /// Whether the breaker was open already when the outage began.
    pub open_at_outage: bool,
    /// From the brownout's start (the first failures, after a healthy phase) to the breaker
    /// opening.
    pub brownout_time_to_trip: Option<Duration>,
    /// From the recovered phase's start to the breaker being Closed (zero if it already was).
    pub time_to_close: Option<Duration>,
    /// What `time_to_close` is allowed: the open deadline in force at recovery, plus the
    /// probes' own latency (1.5 × the backend latency), one think time for a worker to arrive,
    /// and 50 ms of scheduling slack for a 2-core machine running the workers.
    pub close_bound: Duration,
    /// Times the breaker opened during the ramp (trips and failed probes).
    pub ramp_opens: usize,
    /// The breaker's transitions during the ramp, all kinds.
    pub ramp_transitions: usize,
    /// Successful calls in the ramp: no breaker, breaker, throttle.
    pub ramp_ok: [u64; 3],
    /// Successful calls in the brownout: no breaker, breaker, throttle.
    pub brownout_ok: [u64; 3],
    /// The throttle's share of attempted calls shed in the ramp's rising half and in its
    /// falling half.
    pub ramp_shed_rising_falling: (f64, f64),
    /// The throttle's share of attempted calls shed in the brownout.
    pub brownout_shed: f64,
    /// The brownout's error rate, and the throttle's `K`: below `1 − 1/K` it sheds nothing.
    pub brownout_error_rate: f64,
    pub k: f64,
    /// After the recovered phase's start, the breaker and the throttle back at full traffic.
    pub full_after_recovery: (FullAfter, FullAfter),
    /// The throttle's window, the unit its recovery is measured in.
    pub window: Duration,
}

/// How many windows the throttle may take to be back at full traffic after the recovery.
pub const THROTTLE_RECOVERY_WINDOWS: u32 = 2;

impl Verdict {
    pub fn holds(&self) -> Vec<(String, bool)> {
        let [_, b_ramp, t_ramp] = self.ramp_ok;
        let [_, b_brown, t_brown] = self.brownout_ok;
        let (rising, falling) = self.ramp_shed_rising_falling;
        let throttle_bound = self.window * THROTTLE_RECOVERY_WINDOWS;
        vec![
            (
                format!(
                    "breaker: backend calls saved during the outage: {:.1} % (want >= 85 %)",
                    100.0 * self.outage_saving
                ),
                self.outage_saving >= 0.85,
            ),
            (
                format!(
                    "breaker: caller p99 during the outage {:.0}x lower (want >= 10x)",
                    self.outage_p99_ratio
                ),
                self.outage_p99_ratio >= 10.0,
            ),
            (
                format!(
                    "breaker: tripped {} after the outage began (want <= 1 s){}",
                    show(self.time_to_trip),
                    if self.open_at_outage {
                        " (it was open already)"
                    } else {
                        ""
                    }
                ),
                self.time_to_trip
                    .is_some_and(|d| d <= Duration::from_secs(1)),
            ),
            (
                format!(
                    "breaker: closed {} after recovery (want <= {} ms: deadline in force + probe latency + slack)",
                    show(self.time_to_close),
                    self.close_bound.as_millis()
                ),
                self.time_to_close.is_some_and(|d| d <= self.close_bound),
            ),
            (
                format!(
                    "breaker: opened {} times in the ramp, {} transitions in all (want >= 3 opens: it flaps)",
                    self.ramp_opens, self.ramp_transitions
                ),
                self.ramp_opens >= 3,
            ),
            (
                format!(
                    "ramp: throttle shed {:.0} % of calls while the error rate rose, {:.0} % while it fell (want falling >= rising + 30 points: it lags)",
                    100.0 * rising,
                    100.0 * falling
                ),
                falling >= rising + 0.3,
            ),
            (
                format!(
                    "ramp: throttle served {t_ramp} successful calls, breaker {b_ramp} (want throttle >= breaker)"
                ),
                t_ramp >= b_ramp,
            ),
            (
                format!(
                    "brownout: throttle shed {:.1} % at {:.0} % errors (want <= 1 %: below 1 - 1/K = {:.0} % it sheds nothing)",
                    100.0 * self.brownout_shed,
                    100.0 * self.brownout_error_rate,
                    100.0 * (1.0 - 1.0 / self.k)
                ),
                self.brownout_error_rate >= 1.0 - 1.0 / self.k || self.brownout_shed <= 0.01,
            ),
            (
                format!(
                    "brownout: throttle served {t_brown} successful calls, breaker {b_brown} (want throttle >= breaker, within 2 %: it sheds nothing)"
                ),
                50 * t_brown >= 49 * b_brown,
            ),
            (
                format!(
                    "outage: throttle saved {:.1} % of backend calls, breaker {:.1} % (want throttle <= max_rejection {:.0} % and < breaker)",
                    100.0 * self.throttle_outage_saving,
                    100.0 * self.outage_saving,
                    100.0 * self.max_rejection
                ),
                self.throttle_outage_saving <= self.max_rejection + 0.01
                    && self.throttle_outage_saving < self.outage_saving,
            ),
            (
                format!(
                    "recovery: full traffic after {} with the breaker, {} with the throttle (want throttle <= {} ms: {} windows)",
                    self.full_after_recovery.0,
                    self.full_after_recovery.1,
                    throttle_bound.as_millis(),
                    THROTTLE_RECOVERY_WINDOWS
                ),
                matches!(self.full_after_recovery.1, FullAfter::After(d) if d <= throttle_bound),
            ),
        ]
    }
}

fn show(d: Option<Duration>) -> String {
    d.map_or_else(|| "never".to_string(), |d| format!("{} ms", d.as_millis()))
}

pub fn verdict(o: &Outcome) -> Verdict {
    let lab = &o.lab;
    let (outage, outage_end) = (lab.phase_start(Phase::Outage), lab.phase_end(Phase::Outage));
    let recovery = lab.phase_start(Phase::Recovered);
    let phase_totals = |run: &Run, p: Phase| totals(run, lab.phase_start(p), lab.phase_end(p));
    let free = totals(&o.unprotected, outage, outage_end);
    let guarded = totals(&o.protected, outage, outage_end);
    let throttled = totals(&o.throttled, outage, outage_end);
    let first_open_after = |from: Duration| {
        o.transitions
            .iter()
            .find(|(t, tr)| *t >= from && tr.to == State::Open)
            .map(|(t, _)| *t - from)
    };
    let open_at_outage = o.at_phase_start[Phase::Outage.index()].0 == State::Open;
    let time_to_trip = if open_at_outage {
        Some(Duration::ZERO)
    } else {
        first_open_after(outage)
    };
    let time_to_close = if o.at_recovery().0 == State::Closed {
        Some(Duration::ZERO)
    } else {
        o.transitions
            .iter()
            .find(|(t, tr)| *t >= recovery && tr.to == State::Closed)
            .map(|(t, _)| *t - recovery)
    };
    let deadline = match o.at_recovery() {
        (State::Open, Some(d)) => d,
        _ => Duration::ZERO,
    };
    let ok = |p: Phase| o.runs().map(|run| phase_totals(run, p).successes);
    let (ramp, ramp_len) = (
        lab.phase_start(Phase::Ramp),
        lab.phases[Phase::Ramp.index()],
    );
    let peak = ramp + ramp_len / 2;
    let throttle_shed = |from, to| {
        let t = totals(&o.throttled, from, to);
        shed(t.rejected, t.attempted)
    };
    let recovered = summary(
        o,
        Phase::Recovered.name(),
        Some((recovery, lab.phase_end(Phase::Recovered))),
    );
    Verdict {
        outage_saving: saved(guarded.reached, free.reached),
        throttle_outage_saving: saved(throttled.reached, free.reached),
        max_rejection: lab.throttle_max_rejection,
        outage_p99_ratio: free.p99.as_secs_f64() / guarded.p99.as_secs_f64().max(1e-6),
        time_to_trip,
        open_at_outage,
        brownout_time_to_trip: first_open_after(lab.phase_start(Phase::Brownout)),
        time_to_close,
        close_bound: deadline + lab.latency.mul_f64(1.5) + lab.think + Duration::from_millis(50),
        ramp_opens: opens(o, ramp, ramp + ramp_len),
        ramp_transitions: o
            .transitions
            .iter()
            .filter(|(t, _)| (ramp..ramp + ramp_len).contains(t))
            .count(),
        ramp_ok: ok(Phase::Ramp),
        brownout_ok: ok(Phase::Brownout),
        ramp_shed_rising_falling: (
            throttle_shed(ramp, peak),
            throttle_shed(peak, ramp + ramp_len),
        ),
        brownout_shed: throttle_shed(
            lab.phase_start(Phase::Brownout),
            lab.phase_end(Phase::Brownout),
        ),
        brownout_error_rate: lab.brownout_error_rate,
        k: lab.throttle_k,
        full_after_recovery: (recovered.runs[1].full_after, recovered.runs[2].full_after),
        window: lab.throttle_window,
    }
}

/// The terminal summary: the per-phase table and the ramp's.
pub fn table(o: &Outcome) -> String {
    format!(
        "{}\n{}",
        format_table(&summaries(o)),
        format_ramp(&ramp_slices(o, 8))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_traffic_is_the_first_span_at_the_share() {
        let reference = [10, 10, 10, 10, 10, 10, 10, 10];
        // Back at 10 from the fourth interval: spans starting at 0..=3 hold 0+0+0+10+10 ... .
        let run = [0, 0, 0, 10, 10, 10, 10, 10];
        assert_eq!(time_to_full(&run, &reference, 2, 0.9), Some(3));
        assert_eq!(time_to_full(&run, &reference, 5, 0.9), Some(3));
        // 0.5 of the reference over two intervals is reached one interval earlier.
        assert_eq!(time_to_full(&run, &reference, 2, 0.5), Some(2));
        // Already full: zero; never full: None; a span longer than the slices: None.
        assert_eq!(time_to_full(&reference, &reference, 5, 0.9), Some(0));
        assert_eq!(time_to_full(&[8; 8], &reference, 5, 0.9), None);
        assert_eq!(time_to_full(&run, &reference, 9, 0.9), None);
        // 9 of 10 is exactly the share.
        assert_eq!(time_to_full(&[9; 8], &reference, 5, 0.9), Some(0));
        // A span where the reference made no call does not count.
        assert_eq!(time_to_full(&[0, 0, 1, 1], &[0, 0, 1, 1], 2, 0.9), Some(1));
        assert_eq!(time_to_full(&[], &[], 5, 0.9), None);
    }

    #[test]
    fn saved_and_shed_are_shares() {
        assert_eq!(saved(10, 100), 0.9);
        assert_eq!(saved(0, 0), 1.0);
        assert_eq!(saved(100, 100), 0.0);
        assert_eq!(shed(1, 4), 0.25);
        assert_eq!(shed(0, 0), 0.0);
    }

    #[test]
    fn the_table_lines_up() {
        let totals = Totals {
            attempted: 12345,
            reached: 1234,
            successes: 1200,
            failures: 34,
            rejected: 11111,
            p50: Duration::ZERO,
            p99: Duration::from_micros(2345),
        };
        let run = |run, saved, full_after| RunSummary {
            run,
            totals: totals.clone(),
            saved,
            full_after,
        };
        let rows = [PhaseSummary {
            phase: "recovered",
            runs: vec![
                run("no breaker", None, FullAfter::NotApplicable),
                run(
                    "breaker",
                    Some(0.0),
                    FullAfter::After(Duration::from_millis(300)),
                ),
                run("throttle", Some(0.955), FullAfter::Never),
            ],
        }];
        let table = format_table(&rows);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(
            lines
                .iter()
                .all(|l| l.chars().count() == lines[0].chars().count())
        );
        assert!(lines[0].starts_with("phase      run        attempted  reached   saved"));
        assert!(lines[0].ends_with("full after"));
        assert!(lines[1].contains("      -     1200") && lines[1].ends_with("         -"));
        assert!(lines[2].contains("  0.0 %") && lines[2].ends_with("    300 ms"));
        assert!(lines[3].contains(" 95.5 %") && lines[3].ends_with("     never"));
        assert!(lines[1].contains("    <1µs    2.3ms"));
    }

    #[test]
    fn the_ramp_table_lines_up() {
        let slice = Slice {
            from: Duration::from_secs(1),
            to: Duration::from_secs(2),
            error_rate: 0.3,
            breaker_shed: 0.951,
            throttle_shed: 0.004,
            opens: 4,
        };
        let table = format_ramp(&[slice]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines,
            [
                "ramp slice    error rate  breaker shed  throttle shed breaker opens",
                "1.0-2.0 s           30 %          95 %            0 %             4",
            ]
        );
    }
}
