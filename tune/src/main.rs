//! `hotbreaker-tune TRACE`: recommends a configuration for the dependency a trace recorded.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use hotbreaker_tune::incidents::IncidentRule;
use hotbreaker_tune::search::{Preference, Progress};
use hotbreaker_tune::{Options, input, picture, report, tune};
use indicatif::{ProgressBar, ProgressStyle};

/// Replays a recorded trace through many breaker configurations on a mock clock and
/// recommends one: prints the Pareto frontier of backend calls saved during incidents against
/// good calls turned away, the recommended point on the training part and on the held-out
/// part, and a registry table to paste. Writes the frontier as SVG.
#[derive(Parser, Debug)]
#[command(name = "hotbreaker-tune", version)]
struct Args {
    /// The trace: the recorder's binary format, or CSV with timestamp, outcome, latency_ms.
    trace: PathBuf,
    /// Today's configuration: a registry file (TOML), whose `[breakers.NAME]` table (--name,
    /// else the trace's name) or else `[default]` is used; or a file holding one breaker's
    /// settings. Marked on the plot and replayed beside the recommendation.
    #[arg(long)]
    current: Option<PathBuf>,
    /// The breaker's name in the output table and in --current (default: the trace's).
    #[arg(long)]
    name: Option<String>,
    /// How many saved backend calls one good call turned away is worth.
    #[arg(long, default_value_t = 10.0)]
    wrong_cost: f64,
    /// Share of the trace, at its end, held out from the search to check the recommendation.
    #[arg(long, default_value_t = 0.3)]
    holdout: f64,
    /// An incident: a run of buckets of this many seconds in which at least half the answered
    /// calls failed.
    #[arg(long, default_value_t = 1.0)]
    incident_bucket_secs: f64,
    /// Seed of the throttle's draws in every replay.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Where to write the frontier plot.
    #[arg(long, default_value = "frontier.svg")]
    svg: PathBuf,
}

struct Bar(ProgressBar);

impl Progress for Bar {
    fn more(&self, n: u64) {
        self.0.inc_length(n);
    }
    fn done(&self) {
        self.0.inc(1);
    }
}

fn run(args: Args) -> Result<(), String> {
    let mut trace = input::read(&args.trace)?;
    if let Some(name) = &args.name {
        trace.name = name.clone();
    }
    if trace.name.is_empty() {
        // As the printed table names it, so that the table reads back with --current.
        trace.name = "dependency".to_owned();
    }
    let current = match &args.current {
        Some(path) => Some(input::current_config(path, &trace.name)?),
        None => None,
    };
    if !(args.wrong_cost.is_finite() && args.wrong_cost >= 0.0) {
        return Err(format!(
            "--wrong-cost must be a number ≥ 0, got {}",
            args.wrong_cost
        ));
    }
    let bucket = std::time::Duration::try_from_secs_f64(args.incident_bucket_secs)
        .ok()
        .filter(|d| {
            (std::time::Duration::from_millis(1)..=std::time::Duration::from_secs(86_400))
                .contains(d)
        })
        .ok_or_else(|| {
            format!(
                "--incident-bucket-secs must be in [0.001, 86400], got {}",
                args.incident_bucket_secs
            )
        })?;
    let options = Options {
        seed: args.seed,
        preference: Preference {
            wrong_cost: args.wrong_cost,
        },
        holdout: args.holdout,
        incidents: IncidentRule {
            bucket,
            ..IncidentRule::default()
        },
        ..Options::default()
    };
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} configurations replayed ({elapsed})")
            .map_err(|e| e.to_string())?,
    );
    let tuned = tune(&trace, current.as_ref(), &options, &Bar(bar.clone()))?;
    bar.finish_and_clear();
    std::fs::write(&args.svg, picture(&tuned))
        .map_err(|e| format!("{}: {e}", args.svg.display()))?;
    let text = format!(
        "{}frontier plot: {}\n",
        report::text(&tuned),
        args.svg.display()
    );
    // A closed pipe (`| head`) ends the output quietly.
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(format!("stdout: {e}")),
        _ => Ok(()),
    }
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hotbreaker-tune: {e}");
            ExitCode::FAILURE
        }
    }
}
