//! The chaos lab behind `cargo run --release --example chaos`: a simulated dependency fails in
//! phases while worker threads call it unprotected, through a hotbreaker::Breaker with trip
//! rules, and through one with an adaptive throttle only.

pub mod json;
pub mod lab;
pub mod options;
pub mod plot;
pub mod report;
pub mod schedule;

use clap::Parser;

use crate::schedule::Phase;

pub use lab::run;
pub use options::{Lab, OptionError, Options};

/// The command line: parse, validate (exit code 2 on bad options), run, report. Returns the
/// process exit code.
pub fn cli_main() -> i32 {
    let options = Options::parse(); // clap prints its own errors and exits with 2
    let lab = match options.validate() {
        Ok(lab) => lab,
        Err(OptionError(why)) => {
            eprintln!("error: {why}\n\nFor more information, try '--help'.");
            return 2;
        }
    };
    println!(
        "chaos lab: {} workers per run, think time {:?}; phases: healthy {:?} ({:?} latency, {} % errors), \
         brownout {:?} ({} % errors), ramp {:?} (errors 0 -> {} % -> 0, linearly), \
         outage {:?} (every call fails after {:?}), recovered {:?}",
        lab.workers,
        lab.think,
        lab.phases[Phase::Healthy.index()],
        lab.latency,
        100.0 * lab.error_rate,
        lab.phases[Phase::Brownout.index()],
        100.0 * lab.brownout_error_rate,
        lab.phases[Phase::Ramp.index()],
        100.0 * lab.ramp_peak,
        lab.phases[Phase::Outage.index()],
        lab.outage_delay,
        lab.phases[Phase::Recovered.index()]
    );
    println!("breaker:  {}", lab.describe_breaker());
    println!("throttle: {}", lab.describe_throttle());
    println!(
        "running the three runs at once, in real time, for {:?}...\n",
        lab.total()
    );
    let outcome = run(lab);
    println!("{}", report::table(&outcome));
    println!(
        "saved: backend calls saved against the no-breaker run. rejected: turned away by the breaker \
         (open, half-open full) or by the throttle.\nfull after: from the phase's start to the first \
         500 ms span in which the run's backend calls reach >= 90 % of the no-breaker run's.\n"
    );
    println!(
        "throttle: {} calls throttled, {} backend calls, in all",
        outcome.throttle_metrics.throttled,
        outcome.throttle_metrics.successes + outcome.throttle_metrics.failures
    );
    println!("breaker transitions:");
    for (t, tr) in &outcome.transitions {
        println!(
            "  {:>7.3} s  {:>9} -> {:<9} {:?}",
            t.as_secs_f64(),
            tr.from.to_string(),
            tr.to.to_string(),
            tr.cause
        );
    }
    println!();
    let verdict = report::verdict(&outcome);
    println!(
        "breaker: first trip {} after the brownout began (below the 50 % rate: only a run of \
         failures trips it then)",
        verdict
            .brownout_time_to_trip
            .map_or_else(|| "never".to_string(), |d| format!("{} ms", d.as_millis()))
    );
    for (text, ok) in verdict.holds() {
        println!("  [{}] {text}", if ok { "ok" } else { "MISSED" });
    }
    let svg = options.svg_path();
    match plot::write(&outcome, &svg) {
        Ok(()) => println!("\ntimeline: {}", svg.display()),
        Err(e) => eprintln!("could not write {}: {e}", svg.display()),
    }
    if let Some(path) = &options.json {
        match json::write(&outcome, path) {
            Ok(()) => println!("per-interval data: {}", path.display()),
            Err(e) => eprintln!("could not write {}: {e}", path.display()),
        }
    }
    for (path, trace) in [
        (&options.trace, &outcome.unprotected_trace),
        (&options.breaker_trace, &outcome.protected_trace),
    ] {
        if let Some(path) = path {
            match std::fs::write(path, trace.encode()) {
                Ok(()) => println!(
                    "trace of {} calls: {} (replay it with hotbreaker-tune)",
                    trace.events.len(),
                    path.display()
                ),
                Err(e) => eprintln!("could not write {}: {e}", path.display()),
            }
        }
    }
    0
}
