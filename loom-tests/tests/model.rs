//! Loom models of the breaker's atomics. Run with `bash loom-tests/run.sh`.
//!
//! Each model uses one stripe (every thread writes the same words, the interesting case) and a
//! loom-visible clock, and explores every interleaving up to the preemption bound set in the
//! script.
#![cfg(hotbreaker_loom)]

use std::time::Duration;

use hotbreaker::clock::LoomClock;
use hotbreaker::{Breaker, Builder, Outcome, State};
use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::thread;
use std::sync::Arc;

/// A breaker on a loom clock whose listener counts transitions.
fn breaker(builder: Builder) -> (Arc<Breaker>, LoomClock, Arc<AtomicUsize>) {
    let clock = LoomClock::new();
    let heard = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&heard);
    let b = builder
        .loom_clock(clock.clone())
        .stripes(1)
        .on_transition(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .build()
        .unwrap();
    (Arc::new(b), clock, heard)
}

#[test]
fn racing_failures_trip_exactly_once() {
    loom::model(|| {
        let (b, _clock, heard) = breaker(Breaker::builder().consecutive_failures(2));
        b.try_acquire().unwrap().failure();
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let b = Arc::clone(&b);
                thread::spawn(move || {
                    if let Ok(p) = b.try_acquire() {
                        p.failure();
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(b.state(), State::Open);
        assert_eq!(
            heard.load(Ordering::SeqCst),
            1,
            "one transition, one listener call"
        );
        let m = b.metrics();
        assert_eq!(m.times_opened, 1);
        assert_eq!(m.failures + m.rejected, 3);
        assert!(m.retry_after.is_some());
    });
}

#[test]
fn half_open_admission_never_exceeds_the_permits() {
    loom::model(|| {
        let (b, clock, _) = breaker(
            Breaker::builder()
                .consecutive_failures(1)
                .open_timeout(Duration::from_millis(1))
                .half_open_permits(1)
                .half_open_successes(1),
        );
        b.try_acquire().unwrap().failure();
        clock.advance(Duration::from_millis(1));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = [Outcome::Ignored, Outcome::Failure]
            .into_iter()
            .map(|outcome| {
                let (b, in_flight) = (Arc::clone(&b), Arc::clone(&in_flight));
                thread::spawn(move || {
                    for attempt in 0..2 {
                        if let Ok(p) = b.try_acquire() {
                            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                            assert!(now <= 1, "{now} probes in flight");
                            in_flight.fetch_sub(1, Ordering::SeqCst);
                            if attempt == 0 {
                                drop(p); // a cancelled probe gives its slot back
                            } else {
                                p.record(outcome);
                            }
                        }
                    }
                })
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        // Whatever happened, no slot leaked: HalfOpen admits a probe, or the breaker reopened.
        match b.state() {
            State::HalfOpen => {
                b.try_acquire().expect("no leaked probe slot").ignore();
            }
            State::Open => assert!(b.metrics().failures >= 2),
            s => panic!("unexpected {s:?}"),
        }
    });
}

#[test]
fn a_late_outcome_racing_a_transition_changes_nothing() {
    loom::model(|| {
        let (b, _clock, heard) = breaker(Breaker::builder().failure_rate(0.5).minimum_calls(1));
        let permit = b.try_acquire_owned().unwrap();
        let late = thread::spawn(move || permit.failure());
        let resetter = {
            let b = Arc::clone(&b);
            thread::spawn(move || b.reset())
        };
        late.join().unwrap();
        resetter.join().unwrap();
        let m = b.metrics();
        // Either the failure landed first (and tripped), then reset emptied the window; or the
        // reset came first and the failure is late. Both end Closed with an empty window.
        assert_eq!(m.state, State::Closed);
        assert_eq!(m.window.calls, 0);
        assert_eq!(m.failures, 1, "a late outcome still counts for life");
        assert_eq!(heard.load(Ordering::SeqCst) as u64, m.generation);
    });
}

#[test]
fn isolate_and_reset_racing_callers_leave_a_valid_state() {
    loom::model(|| {
        let (b, _clock, heard) = breaker(Breaker::builder().consecutive_failures(1));
        let isolator = {
            let b = Arc::clone(&b);
            thread::spawn(move || b.isolate())
        };
        let caller = {
            let b = Arc::clone(&b);
            thread::spawn(move || {
                if let Ok(p) = b.try_acquire() {
                    p.failure();
                }
            })
        };
        isolator.join().unwrap();
        caller.join().unwrap();
        let m = b.metrics();
        // Every transition was heard exactly once.
        assert_eq!(heard.load(Ordering::SeqCst) as u64, m.generation);
        match m.state {
            State::Isolated => assert!(b.try_acquire().is_err()),
            State::Open => assert!(m.retry_after.is_some() && m.times_opened == 1),
            s => panic!("unexpected {s:?}"),
        }
        b.reset();
        assert_eq!(b.state(), State::Closed);
        b.try_acquire().expect("closed after reset").success();
    });
}

/// A permit issued in generation 0 records its Failure while another thread takes
/// the breaker through a whole Closed → Open → HalfOpen → Closed cycle. Whatever the
/// interleaving, the late Failure never shows in the window of the generation that closed last.
#[test]
fn a_late_permit_across_a_whole_cycle_stays_out_of_the_new_window() {
    loom::model(|| {
        let (b, clock, heard) = breaker(
            Breaker::builder()
                .consecutive_failures(2)
                .time_window(Duration::from_secs(1), 1)
                .open_timeout(Duration::from_millis(1))
                .half_open_permits(1)
                .half_open_successes(1),
        );
        let late = b.try_acquire_owned().unwrap();
        let a = thread::spawn(move || late.failure());
        let driver = {
            let b = Arc::clone(&b);
            thread::spawn(move || {
                for _ in 0..2 {
                    if let Ok(p) = b.try_acquire() {
                        p.failure();
                    }
                }
                clock.advance(Duration::from_millis(1));
                if let Ok(p) = b.try_acquire() {
                    p.success();
                }
            })
        };
        a.join().unwrap();
        driver.join().unwrap();
        let m = b.metrics();
        assert_eq!(heard.load(Ordering::SeqCst) as u64, m.generation);
        if m.state == State::Closed && m.generation == 3 {
            assert_eq!(m.window.failures, 0, "{m:?}");
        }
        // The driver's second failure is rejected when the late one was still current and
        // tripped the breaker with the first, and its probe when the trip's winner has not yet
        // published the deadline: every attempt is counted either way.
        assert!(m.failures >= 2 && m.failures + m.rejected >= 3, "{m:?}");
    });
}

/// A late Success racing a reset and `size` Failures, with a count window of `size` and a 100 %
/// rule needing `size` calls: the late store never replaces a current Failure nor takes one of the
/// current generation's places, so the Failures always trip.
fn late_count_window_store_racing(size: u32) {
    loom::model(move || {
        let (b, _clock, _heard) = breaker(
            Breaker::builder()
                .count_window(size)
                .failure_rate(1.0)
                .minimum_calls(size),
        );
        let late = b.try_acquire_owned().unwrap();
        let a = thread::spawn(move || late.success());
        let current = {
            let b = Arc::clone(&b);
            thread::spawn(move || {
                b.reset();
                for _ in 0..size {
                    b.try_acquire().unwrap().failure();
                }
            })
        };
        a.join().unwrap();
        current.join().unwrap();
        assert_eq!(b.state(), State::Open, "{:?}", b.metrics());
    });
}

/// With a count window of one: the late store never replaces the current Failure.
#[test]
fn a_late_count_window_store_never_hides_the_current_failure() {
    late_count_window_store_racing(1);
}

/// Two `reconfigure` calls race, one turning slow-call detection on and one off: the rules in
/// force and the fast path's copy of the slow-call threshold always agree afterwards.
#[test]
fn racing_reconfigures_leave_the_rules_and_their_mirror_agreeing() {
    loom::model(|| {
        let (b, clock, _heard) = breaker(Breaker::builder().consecutive_failures(5));
        let on = hotbreaker::Config {
            consecutive_failures: Some(5),
            slow_calls: Some(hotbreaker::SlowCalls::absolute(
                Duration::from_millis(1),
                1.0,
            )),
            ..hotbreaker::Config::default()
        };
        let off = hotbreaker::Config {
            consecutive_failures: Some(5),
            ..hotbreaker::Config::default()
        };
        let threads: Vec<_> = [on, off]
            .into_iter()
            .map(|config| {
                let b = Arc::clone(&b);
                thread::spawn(move || b.reconfigure(config).unwrap())
            })
            .collect();
        threads.into_iter().for_each(|t| t.join().unwrap());
        let detecting = b.config().slow_calls.is_some();
        let p = b.try_acquire().unwrap();
        clock.advance(Duration::from_millis(2));
        p.success();
        assert_eq!(b.metrics().slow == 1, detecting);
    });
}

/// A Success racing two Failures, then a Success and Failures: the later Success always ends
/// whatever run the race left, so two Failures after it never trip, and the breaker opens by
/// the `k + 3`-th (after other threads counted Successes, a lone thread's run counts from the
/// check that renews the baseline, see `docs/internals.md`, "Design notes", `consecutive.rs`).
#[test]
fn a_success_always_ends_the_run_it_follows() {
    loom::model(|| {
        let (b, _clock, _heard) = breaker(Breaker::builder().consecutive_failures(3));
        let failing = {
            let b = Arc::clone(&b);
            thread::spawn(move || {
                for _ in 0..2 {
                    b.try_acquire().unwrap().failure();
                }
            })
        };
        let succeeding = {
            let b = Arc::clone(&b);
            thread::spawn(move || b.try_acquire().unwrap().success())
        };
        failing.join().unwrap();
        succeeding.join().unwrap();
        assert_eq!(b.state(), State::Closed);
        b.try_acquire().unwrap().success();
        for _ in 0..2 {
            b.try_acquire().unwrap().failure();
            assert_eq!(b.state(), State::Closed, "a stale run survived a Success");
        }
        for _ in 0..4 {
            if let Ok(p) = b.try_acquire() {
                p.failure();
            }
        }
        assert_eq!(b.state(), State::Open, "not open by the k + 3-th Failure");
    });
}

/// Two Successes race a Failure after a first Failure: whatever order the run counters move in
/// (a Success that read them before another Success ended the run and a new Failure began one),
/// a Success made once everything is quiet always ends the run.
#[test]
fn a_success_ends_a_run_however_the_run_counters_interleave() {
    loom::model(|| {
        let (b, _clock, _heard) = breaker(Breaker::builder().consecutive_failures(2));
        b.try_acquire().unwrap().failure(); // F1: run 1, hint 1
        let s1 = {
            let b = Arc::clone(&b);
            thread::spawn(move || b.try_acquire().unwrap().success())
        };
        let x = {
            let b = Arc::clone(&b);
            thread::spawn(move || {
                b.try_acquire().unwrap().success(); // S2
                b.try_acquire().unwrap().failure(); // F2
            })
        };
        s1.join().unwrap();
        x.join().unwrap();
        if b.state() != State::Closed {
            return; // F2 right after F1: a legitimate trip
        }
        b.try_acquire().unwrap().success(); // S3, quiescent: must end any run
        b.try_acquire().unwrap().failure(); // F4: run 1
        assert_eq!(
            b.state(),
            State::Closed,
            "a failure run survived a quiescent Success"
        );
    });
}

/// A thread that has seen `state() == Open` is never admitted with a Closed permit, even while
/// the trip's winner has not finished publishing the transition.
#[test]
fn a_caller_that_saw_open_is_rejected() {
    loom::model(|| {
        let (b, _clock, _heard) = breaker(
            Breaker::builder()
                .consecutive_failures(1)
                .open_timeout(Duration::from_secs(60)),
        );
        let p = b.try_acquire_owned().unwrap();
        let a = thread::spawn(move || p.failure());
        let observer = {
            let b = Arc::clone(&b);
            thread::spawn(move || {
                if b.state() == State::Open {
                    let r = b.try_acquire();
                    assert!(
                        r.is_err(),
                        "saw Open, then got a permit of state {:?}",
                        r.as_ref().map(|p| p.state()).ok()
                    );
                }
            })
        };
        a.join().unwrap();
        observer.join().unwrap();
    });
}

/// With a count window of two: the late Success takes no place of the current generation.
#[test]
fn a_late_count_window_store_takes_no_place_of_the_current_generation() {
    late_count_window_store_racing(2);
}

/// Lifetime totals read while a bucket rotates never go backwards: a count folded out of a
/// bucket between two reads is never lost from the second.
#[test]
fn totals_read_during_a_rotation_never_go_backwards() {
    loom::model(|| {
        let (b, clock, _heard) = breaker(
            Breaker::builder()
                .consecutive_failures(5)
                .time_window(Duration::from_millis(2), 2),
        );
        b.try_acquire().unwrap().success();
        let writer = {
            let b = Arc::clone(&b);
            thread::spawn(move || {
                clock.advance(Duration::from_millis(2)); // the ring's next lap: a rotation
                b.try_acquire().unwrap().success();
            })
        };
        let first = b.metrics().successes;
        let second = b.metrics().successes;
        writer.join().unwrap();
        let last = b.metrics().successes;
        assert!(first <= second && second <= last, "{first} {second} {last}");
        assert_eq!(last, 2);
    });
}

/// A late Success (generation 0, on the fast path) racing a reset and a Failure of generation 1
/// never marks generation 1's run as ended: a later Success of generation 1 still ends it.
#[test]
fn a_late_success_never_claims_a_newer_run() {
    loom::model(|| {
        let (b, _clock, _heard) = breaker(Breaker::builder().consecutive_failures(2));
        b.try_acquire().unwrap().success(); // the bucket holds generation 0's tag: fast path
        let p = b.try_acquire_owned().unwrap(); // generation 0
        let a = thread::spawn(move || p.success());
        let x = {
            let b = Arc::clone(&b);
            thread::spawn(move || {
                b.reset(); // generation 1
                b.try_acquire().unwrap().failure(); // run 1
            })
        };
        a.join().unwrap();
        x.join().unwrap();
        assert_eq!(b.state(), State::Closed);
        b.try_acquire().unwrap().success(); // quiescent, generation 1: must end the run
        b.try_acquire().unwrap().failure(); // run 1
        assert_eq!(
            b.state(),
            State::Closed,
            "a failure run survived a quiescent Success"
        );
    });
}

/// The same with a run already in generation 0, so that the late Success takes the slow path.
#[test]
fn a_late_success_with_a_run_of_its_own_never_claims_a_newer_run() {
    loom::model(|| {
        let (b, _clock, _heard) = breaker(Breaker::builder().consecutive_failures(2));
        b.try_acquire().unwrap().success();
        b.try_acquire().unwrap().failure(); // run 1 in generation 0
        let p = b.try_acquire_owned().unwrap(); // generation 0
        let a = thread::spawn(move || p.success());
        let x = {
            let b = Arc::clone(&b);
            thread::spawn(move || {
                b.reset(); // generation 1
                b.try_acquire().unwrap().failure(); // run 1
            })
        };
        a.join().unwrap();
        x.join().unwrap();
        assert_eq!(b.state(), State::Closed);
        b.try_acquire().unwrap().success();
        b.try_acquire().unwrap().failure();
        assert_eq!(
            b.state(),
            State::Closed,
            "a failure run survived a quiescent Success"
        );
    });
}

/// An owned stripe's owner rolling into a new bucket while another thread reads the window: the
/// reader never sees more calls than were made, never sees totals go backwards, and the final
/// window and totals are exact. The spawned thread calls first, so it owns stripe 0 and counts
/// with plain stores; the reader only reads.
#[test]
fn a_window_read_during_an_owned_stripes_roll_is_never_too_high() {
    loom::model(|| {
        let (b, clock, _heard) = breaker(
            Breaker::builder()
                .consecutive_failures(5)
                .time_window(Duration::from_millis(6), 3),
        );
        let owner = {
            let b = Arc::clone(&b);
            thread::spawn(move || {
                b.try_acquire().unwrap().success();
                clock.advance(Duration::from_millis(2)); // the next bucket: a roll
                b.try_acquire().unwrap().success();
                b.try_acquire().unwrap().failure();
            })
        };
        let first = b.metrics();
        let second = b.metrics();
        owner.join().unwrap();
        let last = b.metrics();
        for m in [&first, &second] {
            assert!(m.window.calls <= 3 && m.window.failures <= 1, "{m:?}");
            assert!(m.window.failures <= m.window.calls, "{m:?}");
        }
        assert!(first.successes <= second.successes && second.successes <= last.successes);
        assert_eq!((last.successes, last.failures), (2, 1));
        assert_eq!((last.window.calls, last.window.failures), (3, 1));
    });
}

/// A Failure recomputing the throttle's probability races a reset: whatever the interleaving,
/// the new Closed period (an empty window) sheds nothing, so a probability computed for the
/// ended generation is never applied to the new one. The draws always reject when p > 0.
#[test]
fn a_throttle_computed_for_an_ended_generation_sheds_nothing() {
    loom::model(|| {
        let (b, _clock, _heard) = breaker(
            Breaker::builder()
                .throttle(hotbreaker::Throttle::sre())
                .minimum_calls(1)
                .throttle_draws_for_tests(|| 0),
        );
        let permit = b.try_acquire_owned().unwrap();
        let recorder = thread::spawn(move || permit.failure());
        let resetter = {
            let b = Arc::clone(&b);
            thread::spawn(move || b.reset())
        };
        recorder.join().unwrap();
        resetter.join().unwrap();
        assert_eq!(b.state(), State::Closed);
        assert!(b.try_acquire().is_ok(), "a new Closed period shed a call");
        assert_eq!(b.metrics().throttled, 0);
    });
}

/// A peer's trip arriving while a local failure trips the breaker: one transition to Open,
/// one listener call, whoever wins the swap.
#[test]
fn a_fleet_trip_racing_a_local_trip_opens_once() {
    loom::model(|| {
        let (b, _clock, heard) = breaker(
            Breaker::builder()
                .consecutive_failures(1)
                .open_timeout(Duration::from_millis(10)),
        );
        let permit = b.try_acquire_owned().unwrap();
        let local = thread::spawn(move || permit.failure());
        let fleet = {
            let b = Arc::clone(&b);
            thread::spawn(move || b.trip_from_fleet(Duration::from_millis(5)))
        };
        local.join().unwrap();
        let fleet_won = fleet.join().unwrap();
        assert_eq!(b.state(), State::Open);
        assert_eq!(
            heard.load(Ordering::SeqCst),
            1,
            "one transition, one listener call"
        );
        let m = b.metrics();
        assert_eq!(m.times_opened, 1);
        let limit = if fleet_won { 5 } else { 10 };
        assert!(m.retry_after.unwrap() <= Duration::from_millis(limit));
    });
}

/// A peer's recovery arriving as a local call half-opens the breaker at its deadline: one
/// transition to HalfOpen, and no probe slot leaked whichever came first.
#[test]
fn a_fleet_half_open_racing_the_deadline_half_opens_once() {
    loom::model(|| {
        let (b, clock, heard) = breaker(
            Breaker::builder()
                .consecutive_failures(1)
                .open_timeout(Duration::from_millis(1))
                .half_open_permits(1),
        );
        b.try_acquire().unwrap().failure();
        clock.advance(Duration::from_millis(1));
        let caller = {
            let b = Arc::clone(&b);
            thread::spawn(move || drop(b.try_acquire()))
        };
        let fleet = {
            let b = Arc::clone(&b);
            thread::spawn(move || b.half_open_from_fleet())
        };
        caller.join().unwrap();
        fleet.join().unwrap();
        assert_eq!(b.state(), State::HalfOpen);
        assert_eq!(
            heard.load(Ordering::SeqCst),
            2,
            "Closed → Open, Open → HalfOpen"
        );
        b.try_acquire()
            .expect("the one probe slot is free")
            .ignore();
    });
}

/// Two openings whose winners publish their deadlines concurrently (a reset between them): once
/// both are done, a rejection's retry-after (from the 64-bit compact deadline) is the current
/// opening's, as the exact 128-bit cell gives it, never the older opening's.
#[test]
fn after_racing_openings_a_rejection_reads_the_current_deadline() {
    loom::model(|| {
        let (b, clock, _heard) = breaker(
            Breaker::builder()
                .consecutive_failures(1)
                .open_timeout(Duration::from_secs(60)),
        );
        let p = b.try_acquire_owned().unwrap();
        let first = thread::spawn(move || p.failure());
        let second = {
            let b = Arc::clone(&b);
            let clock = clock.clone();
            thread::spawn(move || {
                b.reset();
                clock.advance(Duration::from_secs(1));
                if let Ok(p) = b.try_acquire() {
                    p.failure();
                }
            })
        };
        first.join().unwrap();
        second.join().unwrap();
        if b.state() == State::Open {
            let rejected = b.try_acquire().expect_err("Open for a minute");
            assert_eq!(rejected.retry_after(), b.metrics().retry_after);
        }
    });
}
