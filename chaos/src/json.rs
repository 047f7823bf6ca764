//! `--json PATH`: the per-interval data, for other tools. Numbers and fixed names only, so it is
//! written directly.

use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::Ordering;

use crate::lab::{INTERVAL, Interval, Outcome, sampled_state};
use crate::report::{FullAfter, summaries};

fn interval(out: &mut String, slot: &Interval, with_state: bool) {
    let mut latencies = slot.latencies_us.lock().unwrap().clone();
    latencies.sort_unstable();
    let pct = |p: f64| {
        if latencies.is_empty() {
            0
        } else {
            latencies[((p * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len()) - 1]
        }
    };
    let _ = write!(
        out,
        "{{\"attempted\":{},\"reached\":{},\"successes\":{},\"failures\":{},\"rejected\":{},\"p50_us\":{},\"p99_us\":{}",
        slot.attempted.load(Ordering::Relaxed),
        slot.reached.load(Ordering::Relaxed),
        slot.successes.load(Ordering::Relaxed),
        slot.failures.load(Ordering::Relaxed),
        slot.rejected.load(Ordering::Relaxed),
        pct(0.5),
        pct(0.99)
    );
    if with_state {
        let state = sampled_state(slot.state.load(Ordering::Relaxed))
            .map_or("null".to_string(), |s| format!("\"{s}\""));
        let _ = write!(out, ",\"state\":{state}");
    }
    out.push('}');
}

/// `"run":{...}` with a phase's figures for one run.
fn phase_run(out: &mut String, key: &str, r: &crate::report::RunSummary) {
    let t = &r.totals;
    let _ = write!(
        out,
        ",\"{key}\":{{\"attempted\":{},\"reached\":{},\"successes\":{},\"failures\":{},\"rejected\":{}",
        t.attempted, t.reached, t.successes, t.failures, t.rejected
    );
    if let Some(saved) = r.saved {
        let _ = write!(out, ",\"saved\":{saved:.4}");
    }
    match r.full_after {
        FullAfter::NotApplicable => {}
        FullAfter::After(d) => {
            let _ = write!(out, ",\"full_after_ms\":{}", d.as_millis());
        }
        FullAfter::Never => out.push_str(",\"full_after_ms\":null"),
    }
    out.push('}');
}

/// The JSON keys of the three runs, in the order of [`Outcome::runs`].
const KEYS: [&str; 3] = ["unprotected", "protected", "throttled"];

pub fn write(o: &Outcome, path: &Path) -> std::io::Result<()> {
    let mut out = String::from("{\"interval_ms\":");
    let _ = write!(out, "{},\"phases\":[", INTERVAL.as_millis());
    let summaries = summaries(o);
    for (i, (phase, summary)) in o.lab.phases.iter().zip(&summaries).enumerate() {
        let to: std::time::Duration = o.lab.phases[..=i].iter().sum();
        let from = to - *phase;
        let _ = write!(
            out,
            "{}{{\"name\":\"{}\",\"start_ms\":{},\"end_ms\":{},\"reached_unprotected\":{},\"reached_protected\":{},\"reached_throttled\":{}",
            if i > 0 { "," } else { "" },
            summary.phase,
            from.as_millis(),
            to.as_millis(),
            summary.runs[0].totals.reached,
            summary.runs[1].totals.reached,
            summary.runs[2].totals.reached
        );
        for (key, r) in KEYS.iter().zip(&summary.runs) {
            phase_run(&mut out, key, r);
        }
        out.push('}');
    }
    out.push_str("],\"intervals\":[");
    for (i, ((free, guarded), throttled)) in o
        .unprotected
        .intervals
        .iter()
        .zip(&o.protected.intervals)
        .zip(&o.throttled.intervals)
        .enumerate()
    {
        let _ = write!(
            out,
            "{}{{\"t_ms\":{},\"unprotected\":",
            if i > 0 { ",\n" } else { "\n" },
            i as u128 * INTERVAL.as_millis()
        );
        interval(&mut out, free, false);
        out.push_str(",\"protected\":");
        interval(&mut out, guarded, true);
        out.push_str(",\"throttled\":");
        interval(&mut out, throttled, false);
        out.push('}');
    }
    out.push_str("\n],\"transitions\":[");
    for (i, (t, tr)) in o.transitions.iter().enumerate() {
        let _ = write!(
            out,
            "{}{{\"t_ms\":{},\"from\":\"{}\",\"to\":\"{}\",\"cause\":\"{:?}\"}}",
            if i > 0 { "," } else { "" },
            t.as_millis(),
            tr.from,
            tr.to,
            tr.cause
        );
    }
    out.push_str("]}\n");
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, out)
}
