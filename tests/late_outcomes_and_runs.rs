//! A late Success (a permit of an older generation, or a probe recorded after the breaker
//! closed) changes no state (rule 2): it must neither end a thread's failure run nor be taken by
//! the consecutive-failure check for a Success counted in the middle of one. Were it counted
//! among the Successes the check reads without ending the run, the check would take that run,
//! which spans other threads' Successes, for the run since the last Success: a false trip.

use std::sync::mpsc;
use std::time::Duration;

use hotbreaker::{Breaker, State};

/// A helper thread that records one Success per message (its own owned stripe).
fn with_other<R>(b: &Breaker, f: impl FnOnce(&dyn Fn()) -> R) -> R {
    std::thread::scope(|s| {
        let (go, rx) = mpsc::channel::<()>();
        let (ack_tx, ack) = mpsc::channel::<()>();
        s.spawn(move || {
            for () in rx {
                b.try_acquire().unwrap().success();
                ack_tx.send(()).unwrap();
            }
        });
        let other_success = || {
            go.send(()).unwrap();
            ack.recv().unwrap();
        };
        let r = f(&other_success);
        drop(go);
        r
    })
}

/// k = 5. Count order in the current generation:
/// F(me) S(o) F(me) S(o) F(me) S(o) F(me) [late S(me)] F(me)
/// The longest run of Failures counted with no Success in between is 2.
#[test]
fn a_late_permit_success_makes_a_false_consecutive_trip() {
    let (clock, _mock) = quanta::Clock::mock();
    let b = Breaker::builder()
        .consecutive_failures(5)
        .stripes(16)
        .open_timeout(Duration::from_secs(3600))
        .clock(clock)
        .build()
        .unwrap();
    let late = b.try_acquire().unwrap(); // a permit of generation 0
    b.reset(); // generation moves on: `late` is now a late permit
    assert_eq!(b.state(), State::Closed);
    with_other(&b, |other_success| {
        for _ in 0..3 {
            b.try_acquire().unwrap().failure();
            other_success();
        }
        // My 4th Failure in a row: its check renews the baseline (local run >= 3).
        b.try_acquire().unwrap().failure();
        assert_eq!(b.state(), State::Closed);
        late.success(); // a Success of the old generation: lifetime totals only
        b.try_acquire().unwrap().failure();
    });
    assert_eq!(
        b.state(),
        State::Closed,
        "tripped although no more than 2 Failures were ever counted in a row: {:?}",
        b.metrics()
    );
}

/// The same with a half-open probe whose Success arrives after another probe closed the
/// breaker: an everyday schedule (half_open_permits 2, half_open_successes 1).
#[test]
fn a_probe_success_after_closing_makes_a_false_consecutive_trip() {
    let (clock, mock) = quanta::Clock::mock();
    let b = Breaker::builder()
        .consecutive_failures(5)
        .stripes(16)
        .open_timeout(Duration::from_secs(1))
        .half_open_permits(2)
        .half_open_successes(1)
        .clock(clock)
        .build()
        .unwrap();
    for _ in 0..5 {
        b.try_acquire().unwrap().failure();
    }
    assert_eq!(b.state(), State::Open);
    mock.increment(Duration::from_secs(2));
    let p1 = b.try_acquire().unwrap();
    let p2 = b.try_acquire().unwrap();
    assert_eq!(b.state(), State::HalfOpen);
    p1.success();
    assert_eq!(b.state(), State::Closed);
    with_other(&b, |other_success| {
        for _ in 0..3 {
            b.try_acquire().unwrap().failure();
            other_success();
        }
        // My 4th Failure in a row: its check renews the baseline (local run >= 3).
        b.try_acquire().unwrap().failure();
        assert_eq!(b.state(), State::Closed);
        p2.success(); // the second probe comes back after the breaker closed
        b.try_acquire().unwrap().failure();
    });
    assert_eq!(
        b.state(),
        State::Closed,
        "tripped although no more than 2 Failures were ever counted in a row: {:?}",
        b.metrics()
    );
}

/// Control: the same schedule without the late Success does not trip.
#[test]
fn control_without_the_late_success_no_trip() {
    let (clock, _mock) = quanta::Clock::mock();
    let b = Breaker::builder()
        .consecutive_failures(5)
        .stripes(16)
        .open_timeout(Duration::from_secs(3600))
        .clock(clock)
        .build()
        .unwrap();
    let late = b.try_acquire().unwrap();
    b.reset();
    with_other(&b, |other_success| {
        for _ in 0..3 {
            b.try_acquire().unwrap().failure();
            other_success();
        }
        b.try_acquire().unwrap().failure();
        b.try_acquire().unwrap().failure();
    });
    drop(late);
    assert_eq!(b.state(), State::Closed);
}
