//! Recommends a hotbreaker configuration by replaying a recorded trace through many candidate
//! configurations on a mock clock (see docs/tuning.md).
//!
//! The trace is split in time: the search scores candidates on the first part (training) and
//! the recommendation is checked on the rest (held out), so that a configuration fitted to one
//! incident shows it.

pub mod calls;
pub mod candidate;
pub mod incidents;
pub mod input;
pub mod replay;
pub mod report;
pub mod search;
pub mod svg;

use std::time::{Duration, Instant};

use hotbreaker::Config;
use hotbreaker::recording::{MAX_SAMPLING, Recorded, Trace};

use crate::calls::Calls;
use crate::incidents::{Incident, IncidentRule};
use crate::replay::{Score, replay};
use crate::search::{Evaluator, Outcome, Preference, Progress};

/// How to tune.
#[derive(Clone, Debug)]
pub struct Options {
    /// The throttle's seed for every replay.
    pub seed: u64,
    pub preference: Preference,
    /// The share of the trace (its last part, in time) held out from the search, in [0, 0.9].
    pub holdout: f64,
    pub incidents: IncidentRule,
    /// Threads replaying candidates.
    pub threads: usize,
    /// Points refined from in each round, and rounds at most.
    pub keep: usize,
    pub rounds: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            seed: 1,
            preference: Preference::default(),
            holdout: 0.3,
            incidents: IncidentRule::default(),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            keep: 8,
            rounds: 6,
        }
    }
}

/// Today's configuration, replayed on both parts.
#[derive(Clone, Debug)]
pub struct Current {
    pub config: Config,
    pub train: Score,
    pub holdout: Score,
}

/// Everything the tool reports.
#[derive(Clone, Debug)]
pub struct Tuned {
    pub name: String,
    pub calls: u64,
    pub span: Duration,
    pub train_span: Duration,
    pub holdout_span: Duration,
    /// Where the held-out part starts (from the first call); its incidents are from there.
    pub split: Duration,
    pub train_incidents: Vec<Incident>,
    pub holdout_incidents: Vec<Incident>,
    pub search: Outcome,
    /// Indices into `search.evaluated`.
    pub frontier: Vec<usize>,
    pub best_holdout: Score,
    pub current: Option<Current>,
    pub preference: Preference,
    /// Calls replayed in the whole search.
    pub replayed: u64,
    /// Calls per second replaying the recommendation over the training part on one thread.
    pub one_core_rate: f64,
    /// The recommendation as a registry table.
    pub toml: String,
}

/// Slow-call thresholds worth trying: twice the 99th and 99.9th percentile latency of the
/// successful calls, in whole milliseconds (none if every latency is 0).
pub fn slow_thresholds(calls: &Calls) -> Vec<Duration> {
    let mut lat: Vec<Duration> = calls
        .calls
        .iter()
        .filter(|c| c.outcome == Recorded::Success)
        .map(|c| c.latency)
        .collect();
    lat.sort();
    if lat.last().is_none_or(|l| l.is_zero()) {
        return Vec::new();
    }
    let mut out: Vec<Duration> = [0.99, 0.999]
        .iter()
        .map(|q| {
            let d = lat[((lat.len() - 1) as f64 * q) as usize].saturating_mul(2);
            Duration::from_millis(
                u64::try_from(d.as_micros().div_ceil(1_000).max(1)).unwrap_or(u64::MAX),
            )
        })
        // The breaker's own limit for a duration.
        .filter(|d| *d <= hotbreaker::MAX_DURATION)
        .collect();
    out.dedup();
    out
}

/// The failure rate of the answered calls outside `incidents`.
pub fn background_rate(calls: &Calls, incidents: &[Incident]) -> f64 {
    let (mut answered, mut failed) = (0u64, 0u64);
    for c in &calls.calls {
        if incidents.iter().any(|i| i.contains(c.start)) {
            continue;
        }
        match c.outcome {
            Recorded::Success => answered += u64::from(c.weight),
            Recorded::Failure => {
                answered += u64::from(c.weight);
                failed += u64::from(c.weight);
            }
            Recorded::Ignored | Recorded::Rejected => {}
        }
    }
    if answered == 0 {
        0.0
    } else {
        failed as f64 / answered as f64
    }
}

/// Where to split training from held-out calls. `nominal` unless it falls inside an incident:
/// then the end of that incident if the trace goes on after it, else its start if that keeps
/// at least half the nominal training part, else `nominal` (the incident is cut in two).
pub fn split_point(nominal: Duration, span: Duration, incidents: &[Incident]) -> Duration {
    match incidents
        .iter()
        .find(|i| i.contains(nominal) && i.start < nominal)
    {
        Some(i) if i.end < span => i.end,
        Some(i) if i.start >= nominal / 2 => i.start,
        _ => nominal,
    }
}

/// Tunes for `trace`, comparing with `current` when given.
///
/// # Errors
/// A message when the trace is empty, the options are out of range, or `current` does not
/// build.
pub fn tune(
    trace: &Trace,
    current: Option<&Config>,
    options: &Options,
    progress: &dyn Progress,
) -> Result<Tuned, String> {
    if trace.events.is_empty() {
        return Err("the trace holds no calls".to_owned());
    }
    if !(0.0..=0.9).contains(&options.holdout) {
        return Err(format!(
            "holdout must be in [0, 0.9], got {}",
            options.holdout
        ));
    }
    if let Some(e) = trace.events.iter().find(|e| e.weight > MAX_SAMPLING) {
        return Err(format!(
            "a call of weight {} (at {:?}): weights above {MAX_SAMPLING}, the recorder's sparsest \
             sampling, are refused (a replay costs as much as the calls the weights stand for)",
            e.weight, e.start
        ));
    }
    let all = Calls::from_trace(trace);
    let span = all.span();
    let split = if options.holdout == 0.0 {
        Duration::MAX
    } else {
        split_point(
            span.mul_f64(1.0 - options.holdout),
            span,
            &incidents::find(&all.calls, &options.incidents),
        )
    };
    let train = all.between(Duration::ZERO, split);
    let holdout = all.between(split, Duration::MAX);
    if train.calls.len() < 2 {
        return Err(format!(
            "the training part (the first {:.1}s of {:.1}s) holds {} call(s): too few to tune on",
            split.min(span).as_secs_f64(),
            span.as_secs_f64(),
            train.calls.len()
        ));
    }
    let train_incidents = incidents::find(&train.calls, &options.incidents);
    let holdout_incidents = incidents::find(&holdout.calls, &options.incidents);
    let slows = slow_thresholds(&train);
    let background = background_rate(&train, &train_incidents);
    let ev = Evaluator {
        background,
        calls: &train,
        incidents: &train_incidents,
        seed: options.seed,
        threads: options.threads,
        progress,
    };
    let search = search::search(
        &ev,
        &options.preference,
        &slows,
        options.keep,
        options.rounds,
    );
    let frontier = search::frontier(&search.evaluated);
    let best_config = search.best.candidate.config();
    let replay_of = |calls: &Calls, inc: &[Incident], config: &Config| {
        replay(calls, inc, config, options.seed, None).map_err(|e| e.to_string())
    };
    let best_holdout = replay_of(&holdout, &holdout_incidents, &best_config)?;
    let current = match current {
        Some(config) => Some(Current {
            config: config.clone(),
            train: replay_of(&train, &train_incidents, config)
                .map_err(|e| format!("current configuration: {e}"))?,
            holdout: replay_of(&holdout, &holdout_incidents, config)?,
        }),
        None => None,
    };
    let began = Instant::now();
    let timed = replay_of(&train, &train_incidents, &best_config)?;
    let one_core_rate = timed.calls as f64 / began.elapsed().as_secs_f64().max(1e-9);
    let replayed = search.evaluated.iter().map(|e| e.score.calls).sum();
    let name = if trace.name.is_empty() {
        "dependency".to_owned()
    } else {
        trace.name.clone()
    };
    let toml = report::registry_table(&name, &best_config);
    Ok(Tuned {
        name,
        calls: all.total(),
        span,
        train_span: train.span(),
        holdout_span: holdout.span(),
        split: split.min(span),
        train_incidents,
        holdout_incidents,
        search,
        frontier,
        best_holdout,
        current,
        preference: options.preference,
        replayed,
        one_core_rate,
        toml,
    })
}

/// The frontier picture of a tuning.
pub fn picture(t: &Tuned) -> String {
    let title = format!("{}: configurations replayed on the training part", t.name);
    svg::render(&svg::Picture {
        title: &title,
        all: t.search.evaluated.iter().map(|e| &e.score).collect(),
        frontier: t
            .frontier
            .iter()
            .map(|&i| &t.search.evaluated[i].score)
            .collect(),
        recommended: &t.search.best.score,
        current: t.current.as_ref().map(|c| &c.train),
    })
}
