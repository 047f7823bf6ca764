//! Oversubscribed stress on a 2-core machine: 8–16 threads on one breaker. Bounded in count, so
//! it finishes in about a second even in a debug build.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hotbreaker::{Breaker, Outcome, State, Transition};
use rayon::prelude::*;

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap()
}

/// Closed-state hammering with a mix of outcomes: lifetime totals equal what was recorded.
#[test]
fn lifetime_totals_are_exact_under_contention() {
    let (clock, mock) = quanta::Clock::mock();
    // Never trips: a rule that cannot hold.
    let b = Breaker::builder()
        .trip_when(|_| false)
        .time_window(Duration::from_millis(10), 10)
        .clock(clock)
        .build()
        .unwrap();
    let recorded = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];
    pool(12).install(|| {
        (0..240_000u64).into_par_iter().for_each(|i| {
            if i % 1000 == 0 {
                mock.increment(Duration::from_millis(1)); // buckets rotate mid-run
            }
            let outcome = match i % 7 {
                0 | 1 => Outcome::Failure,
                2 => Outcome::Ignored,
                _ => Outcome::Success,
            };
            b.try_acquire().unwrap().record(outcome);
            recorded[outcome as usize].fetch_add(1, Ordering::Relaxed);
        });
    });
    let m = b.metrics();
    assert_eq!(m.state, State::Closed);
    assert_eq!(m.successes, recorded[0].load(Ordering::Relaxed));
    assert_eq!(m.failures, recorded[1].load(Ordering::Relaxed));
    assert_eq!(m.ignored, recorded[2].load(Ordering::Relaxed));
    assert_eq!(m.successes + m.failures + m.ignored, 240_000);
}

/// Many threads through trips and recoveries: one listener call per transition, and the
/// transitions form a valid path; half-open never has more than `half_open_permits` calls in
/// flight inside the protected call.
#[test]
fn transitions_form_a_path_and_half_open_admission_holds() {
    let (clock, mock) = quanta::Clock::mock();
    let log = Arc::new(Mutex::new(Vec::<Transition>::new()));
    let sink = Arc::clone(&log);
    let b = Breaker::builder()
        .consecutive_failures(3)
        .open_timeout(Duration::from_millis(1))
        .half_open_permits(2)
        .half_open_successes(2)
        .clock(clock)
        .on_transition(move |t| sink.lock().unwrap().push(*t))
        .build()
        .unwrap();
    let in_flight = Mutex::new(std::collections::HashMap::<u64, i64>::new());
    let worst = AtomicI64::new(0);
    // Phases of failure and health in the order calls start, whichever thread makes them (the
    // index rayon hands a thread says little about when it runs: work stealing interleaves
    // far-apart indices, so phases by index are a steady mix, with no run of Failures in it).
    let started = AtomicU64::new(0);
    pool(16).install(|| {
        (0..60_000u64).into_par_iter().for_each(|i| {
            if i % 64 == 0 {
                mock.increment(Duration::from_micros(500));
            }
            let fail = (started.fetch_add(1, Ordering::Relaxed) / 500).is_multiple_of(3);
            let Ok(permit) = b.try_acquire() else { return };
            if permit.state() == State::HalfOpen {
                // A probe, inside the protected call: count it against its generation (probes
                // of an earlier half-open generation may still be finishing, which SPEC allows).
                let g = permit.generation();
                let now = {
                    let mut map = in_flight.lock().unwrap();
                    let n = map.entry(g).or_insert(0);
                    *n += 1;
                    *n
                };
                worst.fetch_max(now, Ordering::SeqCst);
                std::thread::yield_now();
                *in_flight.lock().unwrap().get_mut(&g).unwrap() -= 1;
            }
            if fail {
                permit.failure()
            } else {
                permit.success()
            }
        });
    });
    let log = log.lock().unwrap();
    assert!(
        log.len() >= 3,
        "the run went through trips and recoveries: {}",
        log.len()
    );
    // Listener calls: exactly one per generation, in order, each starting where the last ended.
    let mut sorted = log.clone();
    sorted.sort_by_key(|t| t.generation);
    for (i, t) in sorted.iter().enumerate() {
        assert_eq!(t.generation, i as u64 + 1, "one call per transition");
        let valid = matches!(
            (t.from, t.to),
            (State::Closed, State::Open)
                | (State::Open, State::HalfOpen)
                | (State::HalfOpen, State::Open)
                | (State::HalfOpen, State::Closed)
        );
        assert!(valid, "{t:?}");
        if i > 0 {
            assert_eq!(sorted[i - 1].to, t.from, "{:?} then {t:?}", sorted[i - 1]);
        }
    }
    let worst = worst.load(Ordering::SeqCst);
    assert!(
        (1..=2).contains(&worst),
        "{worst} probes in flight at once (limit 2)"
    );
    let m = b.metrics();
    assert_eq!(m.successes + m.failures + m.rejected, 60_000);
    assert_eq!(
        m.times_opened as usize,
        log.iter().filter(|t| t.to == State::Open).count()
    );
}
