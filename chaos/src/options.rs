//! Command-line options, with validation, and the lab's breaker configuration.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use hotbreaker::{Backoff, Breaker, Builder, Throttle};

use crate::schedule::{Behaviour, Phase, ramp_error_rate};

/// Fault-injection lab: a simulated dependency goes healthy → brownout → gradual brownout (error
/// rate ramps up and down) → hard outage → recovered, while worker threads call it three times on
/// the same schedule: unprotected, through a hotbreaker::Breaker with trip rules, and through one
/// with an adaptive throttle only. Prints a summary, writes an SVG timeline.
#[derive(Parser, Debug, Clone)]
#[command(name = "chaos", version, about, long_about = None, allow_negative_numbers = true)]
pub struct Options {
    /// Worker threads per run (each run has its own).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub workers: u32,
    /// Think time between a worker's calls, in milliseconds.
    #[arg(long, default_value_t = 2.0)]
    pub think_ms: f64,

    /// Length of the healthy phase, seconds.
    #[arg(long, default_value_t = 2.0)]
    pub healthy_secs: f64,
    /// Length of the brownout, seconds.
    #[arg(long, default_value_t = 4.0)]
    pub brownout_secs: f64,
    /// Length of the ramp (gradual brownout), seconds: the error rate climbs linearly from 0 to
    /// --ramp-peak over the first half and back to 0 over the second.
    #[arg(long, default_value_t = 8.0)]
    pub ramp_secs: f64,
    /// Length of the hard outage, seconds.
    #[arg(long, default_value_t = 5.0)]
    pub outage_secs: f64,
    /// Length of the recovered phase, seconds.
    #[arg(long, default_value_t = 6.0)]
    pub recovered_secs: f64,

    /// Backend latency while it answers (every phase but the outage), milliseconds; each call
    /// takes between half and one and a half times this.
    #[arg(long, default_value_t = 2.0)]
    pub latency_ms: f64,
    /// Error rate while healthy and recovered, in [0, 1].
    #[arg(long, default_value_t = 0.005)]
    pub error_rate: f64,
    /// How long a call takes to fail during the outage (a timeout), milliseconds.
    #[arg(long, default_value_t = 200.0)]
    pub outage_delay_ms: f64,
    /// Error rate during the brownout, in [0, 1].
    #[arg(long, default_value_t = 0.4)]
    pub brownout_error_rate: f64,
    /// Highest error rate of the ramp, reached in its middle, in [0, 1].
    #[arg(long, default_value_t = 0.8)]
    pub ramp_peak: f64,

    /// Breaker: consecutive failures that trip it.
    #[arg(long, default_value_t = 5)]
    pub threshold: u32,
    /// Breaker: failure rate that trips it (with --min-calls).
    #[arg(long, default_value_t = 0.5)]
    pub failure_rate: f64,
    /// Breaker and throttle: calls the window needs before the failure rate counts (breaker) or
    /// anything is shed (throttle).
    #[arg(long, default_value_t = 20)]
    pub min_calls: u32,
    /// Breaker: time window, seconds (in 10 buckets).
    #[arg(long, default_value_t = 5.0)]
    pub window_secs: f64,
    /// Breaker: first open duration, milliseconds (doubles on each failed probe).
    #[arg(long, default_value_t = 500.0)]
    pub backoff_base_ms: f64,
    /// Breaker: longest open duration, milliseconds.
    #[arg(long, default_value_t = 2000.0)]
    pub backoff_max_ms: f64,
    /// Breaker: probes let through while half-open (one success closes it).
    #[arg(long, default_value_t = 1)]
    pub half_open_permits: u32,

    /// Throttle: K, requests the dependency may be sent per success before anything is shed
    /// (a finite number > 1).
    #[arg(long, default_value_t = 2.0)]
    pub throttle_k: f64,
    /// Throttle: the largest fraction of calls ever shed, in [0, 1).
    #[arg(long, default_value_t = 0.9)]
    pub throttle_max_rejection: f64,
    /// Throttle: time window, seconds (in 10 buckets). The throttle follows the dependency only
    /// as fast as this window turns over.
    #[arg(long, default_value_t = 1.0)]
    pub throttle_window_secs: f64,

    /// Where to write the SVG timeline [default: chaos/timeline.svg under the cargo target
    /// directory: $CARGO_TARGET_DIR, else ./target].
    #[arg(long)]
    pub svg: Option<PathBuf>,
    /// Also write the per-interval data of the three runs and the per-phase figures as JSON here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Seed for the simulated backend's randomness.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Also write the unprotected run's calls (every call reaches the backend) as a trace for
    /// `hotbreaker-tune` here.
    #[arg(long)]
    pub trace: Option<PathBuf>,
    /// Also write the breaker run's calls (those it turned away recorded as rejected) as a
    /// trace here.
    #[arg(long)]
    pub breaker_trace: Option<PathBuf>,
}

/// A problem with the options, said plainly.
#[derive(Debug, PartialEq, Eq)]
pub struct OptionError(pub String);

fn secs(name: &str, v: f64) -> Result<Duration, OptionError> {
    if v.is_finite() && v > 0.0 && v <= 3600.0 {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(OptionError(format!(
            "--{name} must be a number of seconds in (0, 3600], got {v}"
        )))
    }
}

fn millis(name: &str, v: f64, min: f64) -> Result<Duration, OptionError> {
    if v.is_finite() && v >= min && v <= 3_600_000.0 {
        Ok(Duration::from_secs_f64(v / 1000.0))
    } else {
        Err(OptionError(format!(
            "--{name} must be a number of milliseconds in [{min}, 3600000], got {v}"
        )))
    }
}

fn rate(name: &str, v: f64) -> Result<f64, OptionError> {
    if (0.0..=1.0).contains(&v) {
        Ok(v)
    } else {
        Err(OptionError(format!(
            "--{name} must be a rate in [0, 1], got {v}"
        )))
    }
}

/// The validated experiment.
#[derive(Debug, Clone)]
pub struct Lab {
    pub workers: u32,
    pub think: Duration,
    /// Phase lengths, indexed by [`Phase::index`].
    pub phases: [Duration; 5],
    pub latency: Duration,
    pub error_rate: f64,
    pub outage_delay: Duration,
    pub brownout_error_rate: f64,
    pub ramp_peak: f64,
    pub threshold: u32,
    pub failure_rate: f64,
    pub min_calls: u32,
    pub window: Duration,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    pub half_open_permits: u32,
    pub throttle_k: f64,
    pub throttle_max_rejection: f64,
    pub throttle_window: Duration,
    pub seed: u64,
}

impl Options {
    /// Checks every option; the error names the option and what it accepts.
    pub fn validate(&self) -> Result<Lab, OptionError> {
        let lab = Lab {
            workers: self.workers,
            think: millis("think-ms", self.think_ms, 0.0)?,
            phases: [
                secs("healthy-secs", self.healthy_secs)?,
                secs("brownout-secs", self.brownout_secs)?,
                secs("ramp-secs", self.ramp_secs)?,
                secs("outage-secs", self.outage_secs)?,
                secs("recovered-secs", self.recovered_secs)?,
            ],
            latency: millis("latency-ms", self.latency_ms, 0.0)?,
            error_rate: rate("error-rate", self.error_rate)?,
            outage_delay: millis("outage-delay-ms", self.outage_delay_ms, 0.0)?,
            brownout_error_rate: rate("brownout-error-rate", self.brownout_error_rate)?,
            ramp_peak: rate("ramp-peak", self.ramp_peak)?,
            threshold: self.threshold,
            failure_rate: self.failure_rate,
            min_calls: self.min_calls,
            window: secs("window-secs", self.window_secs)?,
            backoff_base: millis("backoff-base-ms", self.backoff_base_ms, 1.0)?,
            backoff_max: millis("backoff-max-ms", self.backoff_max_ms, 1.0)?,
            half_open_permits: self.half_open_permits,
            throttle_k: self.throttle_k,
            throttle_max_rejection: self.throttle_max_rejection,
            throttle_window: secs("throttle-window-secs", self.throttle_window_secs)?,
            seed: self.seed,
        };
        // The breaker's own validation covers the rest, with its field names.
        lab.builder()
            .build()
            .map_err(|e| OptionError(format!("breaker options: {e}")))?;
        lab.throttle_builder()
            .build()
            .map_err(|e| OptionError(format!("throttle options: {e}")))?;
        Ok(lab)
    }
}

impl Lab {
    /// The protected run's breaker configuration.
    pub fn builder(&self) -> Builder {
        Breaker::builder()
            .consecutive_failures(self.threshold)
            .failure_rate(self.failure_rate)
            .minimum_calls(self.min_calls)
            .time_window(self.window, 10)
            .backoff(
                Backoff::exponential(self.backoff_base, 2.0, self.backoff_max).without_jitter(),
            )
            .half_open_permits(self.half_open_permits)
            .half_open_successes(1)
    }

    /// The throttled run's configuration: the throttle alone, no trip rule, so it never opens;
    /// the same minimum number of calls as the breaker, its own window.
    pub fn throttle_builder(&self) -> Builder {
        Breaker::builder()
            .throttle(
                Throttle::sre()
                    .k(self.throttle_k)
                    .max_rejection(self.throttle_max_rejection),
            )
            .minimum_calls(self.min_calls)
            .time_window(self.throttle_window, 10)
    }

    /// One line describing the throttle configuration, for the output.
    pub fn describe_throttle(&self) -> String {
        format!(
            "no trip rule (never opens); shed p = min({}, (requests - {} x successes) / (requests + 1)) \
             of the calls once >= {} requests are in the {:?} window (10 buckets)",
            self.throttle_max_rejection, self.throttle_k, self.min_calls, self.throttle_window
        )
    }

    /// One line describing the breaker configuration, for the output.
    pub fn describe_breaker(&self) -> String {
        format!(
            "trip on {} consecutive failures or a failure rate >= {} over >= {} calls in {:?} (10 buckets); \
             open {:?} doubling to at most {:?}, no jitter; {} half-open probe(s), 1 success closes",
            self.threshold,
            self.failure_rate,
            self.min_calls,
            self.window,
            self.backoff_base,
            self.backoff_max,
            self.half_open_permits
        )
    }

    pub fn total(&self) -> Duration {
        self.phases.iter().sum()
    }

    /// When a phase starts, since the lab's start.
    pub fn phase_start(&self, phase: Phase) -> Duration {
        self.phases[..phase.index()].iter().sum()
    }

    /// When a phase ends (the next one's start), since the lab's start.
    pub fn phase_end(&self, phase: Phase) -> Duration {
        self.phase_start(phase) + self.phases[phase.index()]
    }

    /// The phase a time since the lab's start falls in (the last one from its end on).
    pub fn phase_at(&self, t: Duration) -> Phase {
        Phase::ALL
            .into_iter()
            .rev()
            .find(|&p| t >= self.phase_start(p))
            .unwrap_or(Phase::Healthy)
    }

    /// What the backend does with a call that starts at `t` since the lab's start.
    pub fn behaviour_at(&self, t: Duration) -> Behaviour {
        let error_rate = match self.phase_at(t) {
            Phase::Outage => return Behaviour::TimeOut,
            Phase::Ramp => {
                let ramp = Phase::Ramp;
                ramp_error_rate(
                    self.ramp_peak,
                    t - self.phase_start(ramp),
                    self.phases[ramp.index()],
                )
            }
            Phase::Brownout => self.brownout_error_rate,
            Phase::Healthy | Phase::Recovered => self.error_rate,
        };
        Behaviour::Serve { error_rate }
    }
}

impl Options {
    /// The SVG's path: as given, or under the cargo target directory.
    pub fn svg_path(&self) -> PathBuf {
        self.svg.clone().unwrap_or_else(|| {
            std::env::var_os("CARGO_TARGET_DIR")
                .map_or_else(|| PathBuf::from("target"), PathBuf::from)
                .join("chaos")
                .join("timeline.svg")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Options, clap::Error> {
        Options::try_parse_from(std::iter::once("chaos").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_validate() {
        let lab = parse(&[]).unwrap().validate().unwrap();
        let s = Duration::from_secs;
        assert_eq!(lab.total(), s(25));
        assert_eq!(lab.phase_at(Duration::ZERO), Phase::Healthy);
        assert_eq!(lab.phase_at(Duration::from_millis(1999)), Phase::Healthy);
        assert_eq!(lab.phase_at(s(2)), Phase::Brownout);
        assert_eq!(lab.phase_at(s(6)), Phase::Ramp);
        assert_eq!(lab.phase_at(s(14)), Phase::Outage);
        assert_eq!(lab.phase_at(Duration::from_millis(18_999)), Phase::Outage);
        assert_eq!(lab.phase_at(s(19)), Phase::Recovered);
        assert_eq!(lab.phase_at(s(30)), Phase::Recovered);
        assert_eq!(lab.phase_end(Phase::Recovered), lab.total());
    }

    #[test]
    fn the_backend_follows_the_schedule() {
        let lab = parse(&[]).unwrap().validate().unwrap();
        let at = |ms| lab.behaviour_at(Duration::from_millis(ms));
        let serve = |error_rate| Behaviour::Serve { error_rate };
        assert_eq!(at(0), serve(0.005));
        assert_eq!(at(2000), serve(0.4));
        assert_eq!(at(5999), serve(0.4));
        assert_eq!(at(6000), serve(0.0));
        assert_eq!(at(8000), serve(0.4));
        assert_eq!(at(10_000), serve(0.8));
        assert_eq!(at(12_000), serve(0.4));
        assert_eq!(at(14_000), Behaviour::TimeOut);
        assert_eq!(at(18_999), Behaviour::TimeOut);
        assert_eq!(at(19_000), serve(0.005));
    }

    #[test]
    fn bad_options_are_named() {
        for (args, needle) in [
            (&["--error-rate", "-0.1"][..], "--error-rate"),
            (
                &["--brownout-error-rate", "1.5"][..],
                "--brownout-error-rate",
            ),
            (&["--outage-secs", "0"][..], "--outage-secs"),
            (&["--healthy-secs", "NaN"][..], "--healthy-secs"),
            (&["--threshold", "0"][..], "consecutive_failures"),
            (&["--failure-rate", "2"][..], "failure_rate"),
            (&["--ramp-peak", "1.2"][..], "--ramp-peak"),
            (&["--ramp-secs", "-1"][..], "--ramp-secs"),
            (&["--throttle-k", "1"][..], "throttle.k"),
            (
                &["--throttle-window-secs", "0"][..],
                "--throttle-window-secs",
            ),
            (
                &["--throttle-max-rejection", "1"][..],
                "throttle.max_rejection",
            ),
            (
                &["--backoff-base-ms", "5000", "--backoff-max-ms", "100"][..],
                "backoff.max",
            ),
        ] {
            let err = parse(args).unwrap().validate().unwrap_err();
            assert!(err.0.contains(needle), "{args:?}: {}", err.0);
        }
        assert!(parse(&["--workers", "0"]).is_err(), "clap range check");
        assert!(parse(&["--bogus"]).is_err());
    }
}
