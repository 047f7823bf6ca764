//! Replay against the live chaos lab: the lab's breaker run records every call (those it
//! turned away as rejected); replaying that trace through the same configuration on a mock
//! clock must reach the same verdicts.

use std::time::Duration;

use clap::Parser;
use hotbreaker::{Backoff, Config, TimeWindow};
use hotbreaker_chaos::{Lab, Options, run};
use hotbreaker_tune::calls::Calls;
use hotbreaker_tune::replay::replay;

/// The lab's breaker (`Lab::builder`) as a configuration.
fn config_of(lab: &Lab) -> Config {
    Config {
        consecutive_failures: Some(lab.threshold),
        failure_rate: Some(lab.failure_rate),
        minimum_calls: Some(lab.min_calls),
        time_window: Some(TimeWindow {
            window: lab.window,
            buckets: 10,
        }),
        backoff: Some(
            Backoff::exponential(lab.backoff_base, 2.0, lab.backoff_max).without_jitter(),
        ),
        half_open_permits: Some(lab.half_open_permits),
        half_open_successes: Some(1),
        ..Config::default()
    }
}

#[test]
fn replaying_the_lab_s_breaker_trace_reaches_the_live_verdicts() {
    // One worker: the live breaker sees the calls one at a time, as the replay does.
    let options = Options::try_parse_from([
        "chaos",
        "--workers",
        &std::env::var("LAB_REPLAY_WORKERS").unwrap_or_else(|_| "1".to_owned()),
        "--healthy-secs",
        "1",
        "--brownout-secs",
        "1.5",
        "--ramp-secs",
        "3",
        "--outage-secs",
        "2",
        "--recovered-secs",
        "1.5",
    ])
    .unwrap();
    let lab = options.validate().unwrap();
    let config = config_of(&lab);
    let outcome = run(lab);
    let live_opens = outcome
        .transitions
        .iter()
        .filter(|(_, t)| t.to == hotbreaker::State::Open)
        .count() as u32;
    let calls = Calls::from_trace(&outcome.protected_trace);
    let mut verdicts = Vec::new();
    let score = replay(&calls, &[], &config, 1, Some(&mut verdicts)).unwrap();
    let live = &calls.live_rejected;
    let agree = live.iter().zip(&verdicts).filter(|(a, b)| a == b).count();
    let share = agree as f64 / live.len() as f64;
    println!(
        "{} calls, {} rejected live, {} in replay; verdicts agree on {agree} ({:.2} %); opens live {live_opens}, replay {}",
        live.len(),
        live.iter().filter(|r| **r).count(),
        score.rejected,
        share * 100.0,
        score.opens
    );
    assert!(live.len() > 500, "the lab made too few calls to compare");
    assert!(
        live_opens > 0,
        "the lab's breaker never opened: nothing to compare"
    );
    assert!(
        share >= 0.98,
        "verdicts agree on only {:.2} %",
        share * 100.0
    );
    assert!(
        score.opens.abs_diff(live_opens) <= 1,
        "opened {} times in replay, {live_opens} live",
        score.opens
    );
    // And the outage is caught at the same moment, to within one call.
    let first_rejection = |v: &[bool]| {
        let outage = outcome
            .lab
            .phase_start(hotbreaker_chaos::schedule::Phase::Outage);
        calls
            .calls
            .iter()
            .zip(v)
            .find(|(c, r)| **r && c.start >= outage)
            .map(|(c, _)| c.start)
    };
    let (a, b) = (first_rejection(live), first_rejection(&verdicts));
    let gap = a.zip(b).map(|(a, b)| a.abs_diff(b));
    assert!(
        gap.is_some_and(|g| g <= Duration::from_millis(250)),
        "first rejection in the outage: live {a:?}, replay {b:?}"
    );
}
