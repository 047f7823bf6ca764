//! Traces and options that once broke the tuner: each must give a recommendation or a clear
//! error, never a panic, an abort or a result built on nothing.

use std::time::Duration;

use hotbreaker::recording::{Event, Recorded, Trace};
use hotbreaker_tune::calls::Calls;
use hotbreaker_tune::incidents::{self, Incident, IncidentRule};
use hotbreaker_tune::replay::replay;
use hotbreaker_tune::{Options, tune};

fn event(start: Duration, latency: Duration, outcome: Recorded, weight: u32) -> Event {
    Event {
        start,
        latency,
        outcome,
        weight,
    }
}

/// `secs` seconds at 100 calls a second from `from`, failing in `[fail_from, fail_to)`.
fn traffic(from: Duration, secs: u64, fail: (u64, u64)) -> Vec<Event> {
    (0..secs * 100)
        .map(|i| {
            let bad = (fail.0 * 100..fail.1 * 100).contains(&i);
            event(
                from + Duration::from_millis(i * 10),
                Duration::from_millis(2),
                if bad {
                    Recorded::Failure
                } else {
                    Recorded::Success
                },
                1,
            )
        })
        .collect()
}

fn options() -> Options {
    Options {
        threads: 2,
        ..Options::default()
    }
}

#[test]
fn a_trace_that_starts_a_day_after_its_recorder_is_tuned_from_its_first_call() {
    // A recorder's ring holds only its last calls: they start a day in.
    let t = Trace {
        events: traffic(Duration::from_secs(86_400), 600, (200, 260)),
        ..Trace::default()
    };
    let tuned = tune(&t, None, &options(), &()).unwrap();
    assert_eq!(tuned.span, Duration::from_millis(599_990));
    assert_eq!(tuned.train_incidents.len(), 1);
    assert!(tuned.search.best.score.saved > 0);
}

#[test]
fn an_unsorted_trace_is_sorted_first() {
    let mut events = traffic(Duration::ZERO, 60, (20, 30));
    events.reverse();
    let t = Trace {
        events,
        ..Trace::default()
    };
    let calls = Calls::from_trace(&t);
    assert!(calls.calls.windows(2).all(|w| w[0].start <= w[1].start));
    assert!(tune(&t, None, &options(), &()).is_ok());
}

#[test]
fn extreme_latencies_weights_and_gaps_give_a_result_or_an_error() {
    // Latencies past the breaker's longest duration: the slow-call candidates they suggest are
    // left out, not a panic.
    let mut events = traffic(Duration::ZERO, 10, (0, 0));
    for e in events.iter_mut().step_by(3) {
        e.latency = Duration::from_secs(200 * 86_400);
    }
    let t = Trace {
        events,
        ..Trace::default()
    };
    assert!(tune(&t, None, &options(), &()).is_ok());
    // A weight no recorder writes is refused before any replay.
    let heavy = Trace {
        events: vec![
            event(
                Duration::ZERO,
                Duration::from_secs(1),
                Recorded::Success,
                u32::MAX,
            ),
            event(Duration::from_secs(1), Duration::ZERO, Recorded::Success, 1),
        ],
        ..Trace::default()
    };
    assert!(
        tune(&heavy, None, &options(), &())
            .unwrap_err()
            .contains("weight")
    );
    // Two calls 584 000 years apart: no training part to speak of, said so.
    let apart = Trace {
        events: vec![
            event(Duration::ZERO, Duration::ZERO, Recorded::Success, 1),
            event(
                Duration::from_micros(u64::MAX),
                Duration::ZERO,
                Recorded::Failure,
                1,
            ),
        ],
        ..Trace::default()
    };
    assert!(
        tune(&apart, None, &options(), &())
            .unwrap_err()
            .contains("too few")
    );
    // And the incident finder costs memory per call, not per bucket of the span.
    let calls = Calls::from_trace(&apart);
    let tiny = IncidentRule {
        bucket: Duration::from_nanos(1),
        min_calls: 1,
        failure_share: 0.5,
    };
    assert_eq!(incidents::find(&calls.calls, &tiny).len(), 1);
}

#[test]
fn a_trace_that_ends_in_an_incident_keeps_a_training_part() {
    let t = Trace {
        events: traffic(Duration::ZERO, 60, (0, 60)),
        ..Trace::default()
    };
    let tuned = tune(&t, None, &options(), &()).unwrap();
    assert!(
        tuned.train_span > Duration::from_secs(30),
        "{:?}",
        tuned.train_span
    );
    assert!(tuned.search.best.score.calls > 0);
}

#[test]
fn recovery_is_not_measured_inside_the_next_incident() {
    // Incidents [0, 1 s) and [1.5 s, 3 s) back to back; the breaker stays open across both.
    let t = Trace {
        events: traffic(Duration::ZERO, 4, (0, 3)),
        ..Trace::default()
    };
    let calls = Calls::from_trace(&t);
    let incidents = [
        Incident {
            start: Duration::ZERO,
            end: Duration::from_secs(1),
        },
        Incident {
            start: Duration::from_millis(1_500),
            end: Duration::from_secs(3),
        },
    ];
    let config = hotbreaker::Config {
        consecutive_failures: Some(5),
        open_timeout: Some(Duration::from_millis(300)),
        ..hotbreaker::Config::default()
    };
    let s = replay(&calls, &incidents, &config, 1, None).unwrap();
    assert!(
        s.recover[0].is_none_or(|r| r < Duration::from_millis(500)),
        "recovery of the first incident measured at {:?}",
        s.recover[0]
    );
}

#[test]
fn a_name_with_control_characters_makes_well_formed_svg() {
    let t = Trace {
        name: "inv\u{1}\u{b}\"<entory>&".to_owned(),
        events: traffic(Duration::ZERO, 30, (10, 15)),
        ..Trace::default()
    };
    let svg = hotbreaker_tune::picture(&tune(&t, None, &options(), &()).unwrap());
    assert!(!svg.contains('\u{1}') && !svg.contains('\u{b}'));
    assert!(svg.contains("&quot;&lt;entory&gt;&amp;"));
}
