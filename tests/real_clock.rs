//! Successes on a breaker with a real clock, before any upkeep has set quanta's recent time and
//! after it was set by hand (and then stopped moving, as a stalled upkeep would leave it). Its
//! own binary: quanta's recent time is process-wide, and no other test may set it first.

use hotbreaker::{Breaker, State};

fn run_of_two_ended_by_successes(b: &Breaker) {
    for _ in 0..3 {
        b.try_acquire().unwrap().failure();
        b.try_acquire().unwrap().success();
    }
    assert_eq!(b.state(), State::Closed, "every run was ended by a Success");
}

#[test]
fn successes_count_and_end_runs_with_and_without_the_recent_time() {
    // A real clock (the default) and a time window of 10 one-second buckets: this test runs
    // well within one window, whatever bucket boundary it crosses.
    let b = Breaker::builder().consecutive_failures(2).build().unwrap();
    // No upkeep has ever run: quanta's recent time is 0.
    for _ in 0..100 {
        b.try_acquire().unwrap().success();
    }
    run_of_two_ended_by_successes(&b);
    let m = b.metrics();
    assert_eq!((m.window.calls, m.window.failures), (106, 3));
    assert_eq!((m.successes, m.failures), (103, 3));

    // The recent time set once, then frozen: a thread checks it against the real clock on
    // repeats, and counts every Success whichever way it goes.
    quanta::set_recent(quanta::Instant::now());
    for _ in 0..1_000 {
        b.try_acquire().unwrap().success();
    }
    run_of_two_ended_by_successes(&b);
    let m = b.metrics();
    assert_eq!((m.window.calls, m.window.failures), (1_112, 6));
    assert_eq!((m.successes, m.failures), (1_106, 6));

    // The same from a second thread, on its own stripe.
    std::thread::scope(|s| {
        s.spawn(|| {
            for _ in 0..1_000 {
                b.try_acquire().unwrap().success();
            }
            run_of_two_ended_by_successes(&b);
        });
    });
    let m = b.metrics();
    assert_eq!((m.window.calls, m.window.failures), (2_118, 9));
    // Another thread counted Successes and went quiet: this thread's run is recognised from
    // the check that renews the baseline on, at most three Failures late (`docs/internals.md`, "Design notes").
    for _ in 0..2 + 3 {
        if let Ok(permit) = b.try_acquire() {
            permit.failure();
        }
    }
    assert_eq!(b.state(), State::Open, "Failures in a row still open it");
}
