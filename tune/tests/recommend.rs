//! The tuner on synthetic traces with a known answer.

use std::time::Duration;

use hotbreaker::Registry;
use hotbreaker::recording::{Event, Recorded, Trace};
use hotbreaker_tune::calls::Calls;
use hotbreaker_tune::candidate::{Candidate, Rule};
use hotbreaker_tune::replay::replay;
use hotbreaker_tune::{Options, tune};

/// A small deterministic generator.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `secs` seconds of traffic at `per_sec` calls a second, failing at `error_rate` and taking
/// 1–3 ms, except in `outages` (start, end) seconds, where every call fails after a 500 ms
/// timeout.
fn trace(secs: u64, per_sec: u64, error_rate: f64, outages: &[(u64, u64)], seed: u64) -> Trace {
    let mut rng = Rng(seed | 1);
    let step = 1_000_000 / per_sec;
    let events = (0..secs * per_sec)
        .map(|i| {
            let start = Duration::from_micros(i * step);
            let down = outages
                .iter()
                .any(|&(a, b)| (a..b).contains(&start.as_secs()));
            let (outcome, latency) = if down {
                (Recorded::Failure, Duration::from_millis(500))
            } else if rng.unit() < error_rate {
                (Recorded::Failure, Duration::from_millis(2))
            } else {
                (
                    Recorded::Success,
                    Duration::from_micros(1_000 + (rng.unit() * 2_000.0) as u64),
                )
            };
            Event {
                start,
                latency,
                outcome,
                weight: 1,
            }
        })
        .collect();
    Trace {
        name: "inventory".to_owned(),
        started_unix_ms: 0,
        events,
    }
}

#[test]
fn a_trace_with_a_clear_outage_yields_a_config_that_catches_it() {
    // 10 minutes at 200 calls/s with 1 % errors; outages at 3:00–4:00 (training) and
    // 8:20–8:50 (held out).
    let t = trace(600, 200, 0.01, &[(180, 240), (500, 530)], 7);
    // Today's configuration: the lab's, from the registry file the docs use.
    let today = hotbreaker_tune::input::current_config(
        std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/lab-breaker.toml")),
        "lab backend",
    )
    .unwrap();
    let tuned = tune(&t, Some(&today), &Options::default(), &()).unwrap();
    let current = tuned
        .current
        .as_ref()
        .expect("replayed beside the recommendation");
    assert!(current.train.opens > 0 && current.holdout.opens > 0);
    assert!(hotbreaker_tune::report::text(&tuned).contains("current configuration"));
    assert!(hotbreaker_tune::picture(&tuned).contains("current"));
    println!("{}", hotbreaker_tune::report::text(&tuned));
    assert_eq!(tuned.train_incidents.len(), 1);
    assert_eq!(tuned.holdout_incidents.len(), 1);
    for (part, s) in [
        ("training", &tuned.search.best.score),
        ("held out", &tuned.best_holdout),
    ] {
        let detect = s.detect[0].expect("the outage is caught");
        assert!(
            detect <= Duration::from_secs(2),
            "{part}: caught after {detect:?}"
        );
        assert!(
            s.saved_share() >= 0.9,
            "{part}: saved {:.3}",
            s.saved_share()
        );
        assert!(
            s.wrong_share() <= 0.001,
            "{part}: wrong {:.4}",
            s.wrong_share()
        );
        let recover = s.recover[0].expect("recovers");
        assert!(
            recover <= Duration::from_secs(61),
            "{part}: recovered after {recover:?}"
        );
    }
    // The table pastes into a registry file as it is.
    let registry = Registry::from_toml(&tuned.toml).unwrap();
    let config = registry.get_or_create("inventory").config();
    let expected = tuned.search.best.candidate.config();
    assert_eq!(config.consecutive_failures, expected.consecutive_failures);
    assert_eq!(config.failure_rate, expected.failure_rate);
    assert_eq!(config.half_open_permits, expected.half_open_permits);
    // And the SVG names its points.
    let svg = hotbreaker_tune::picture(&tuned);
    assert!(
        svg.starts_with("<svg")
            && svg.contains("recommended")
            && svg.trim_end().ends_with("</svg>")
    );
}

#[test]
fn a_healthy_trace_with_noise_yields_a_config_that_never_opens() {
    // 2 % errors scattered over 10 minutes: no incident, nothing to save.
    let t = trace(600, 200, 0.02, &[], 11);
    let tuned = tune(&t, None, &Options::default(), &()).unwrap();
    assert!(tuned.train_incidents.is_empty() && tuned.holdout_incidents.is_empty());
    for s in [&tuned.search.best.score, &tuned.best_holdout] {
        assert_eq!(
            (s.opens, s.rejected),
            (0, 0),
            "{}",
            tuned.search.best.candidate
        );
    }
    // An eager configuration does open on this noise: the check could fail.
    let eager = Candidate {
        rule: Rule::Consecutive(3),
        ..Candidate::START
    };
    let calls = Calls::from_trace(&t);
    assert!(replay(&calls, &[], &eager.config(), 1, None).unwrap().opens > 0);
}

#[test]
fn a_replay_is_deterministic_for_a_trace_and_a_seed() {
    let t = trace(120, 500, 0.3, &[(40, 60)], 3);
    let calls = Calls::from_trace(&t);
    let throttled = Candidate {
        rule: Rule::Rate {
            rate: 0.9,
            min_calls: 20,
        },
        throttle: true,
        backoff: true,
        open: Duration::from_secs(1),
        ..Candidate::START
    };
    let run = |seed| {
        let mut verdicts = Vec::new();
        let score = replay(&calls, &[], &throttled.config(), seed, Some(&mut verdicts)).unwrap();
        (score, verdicts)
    };
    let (a, b, c) = (run(5), run(5), run(6));
    assert_eq!(a, b);
    assert!(a.0.rejected > 0);
    // Another seed draws differently: the seed is what makes it repeatable.
    assert_ne!(a.1, c.1);
}

#[test]
fn an_empty_trace_or_a_bad_option_is_an_error() {
    assert!(tune(&Trace::default(), None, &Options::default(), &()).is_err());
    let t = trace(10, 10, 0.0, &[], 1);
    let bad = Options {
        holdout: 1.5,
        ..Options::default()
    };
    assert!(tune(&t, None, &bad, &()).unwrap_err().contains("holdout"));
}
