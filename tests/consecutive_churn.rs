//! No false trip while the stripes' lines come and go: one thread fails over and over, and
//! between each two of its Failures new threads record a Success (their first calls take
//! blocks, often into a new chunk of cells, while the failing thread's checks scan the stripes
//! and renew the baseline), each Success happening before the next Failure. The run in the
//! order the outcomes were counted is never more than 1, so a breaker with
//! `consecutive_failures(3)` must never open. Meanwhile other breakers of the same window size
//! are built, called and dropped, so blocks and chunks go back to the reserves and come out
//! again, reset, for this one.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use hotbreaker::{Breaker, State};

#[test]
fn fresh_threads_succeeding_between_failures_never_trip_a_consecutive_rule() {
    let _upkeep = hotbreaker::start_upkeep(Duration::from_millis(1)).ok();
    for round in 0..20 {
        let b = Arc::new(
            Breaker::builder()
                .consecutive_failures(3)
                .stripes(64)
                .open_timeout(Duration::from_secs(3600))
                .build()
                .unwrap(),
        );
        let failed = Arc::new(AtomicU64::new(0)); // Failures recorded so far
        let answered = Arc::new(AtomicU64::new(0)); // the Failure a Success followed
        let stop = Arc::new(AtomicBool::new(false));
        std::thread::scope(|s| {
            // Churn: breakers of the same size built, called by short threads, dropped.
            s.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let other = Breaker::builder().stripes(64).build().unwrap();
                    std::thread::scope(|s2| {
                        for _ in 0..4 {
                            s2.spawn(|| {
                                for _ in 0..3 {
                                    other.try_acquire().unwrap().success();
                                }
                            });
                        }
                    });
                    drop(other);
                }
            });
            // The failing thread.
            let fails = s.spawn(|| {
                for i in 1..=400u64 {
                    match b.try_acquire() {
                        Ok(p) => p.failure(),
                        Err(_) => return Err(format!("round {round}: open after {i} Failures")),
                    }
                    failed.store(i, Ordering::Release);
                    while answered.load(Ordering::Acquire) < i {
                        std::thread::yield_now();
                    }
                    if b.state() != State::Closed {
                        return Err(format!("round {round}: {:?} after Failure {i}", b.state()));
                    }
                }
                Ok(())
            });
            // Successes, each by a new thread, each after the Failure it answers.
            let mut last = 0;
            while last < 400 {
                let f = failed.load(Ordering::Acquire);
                if f == last {
                    if fails.is_finished() {
                        break;
                    }
                    std::thread::yield_now();
                    continue;
                }
                let (b, answered) = (&b, &answered);
                // Several fresh threads at once: their first calls link chunks concurrently.
                std::thread::scope(|s2| {
                    for k in 0..3 {
                        s2.spawn(move || {
                            if let Ok(p) = b.try_acquire() {
                                p.success();
                            }
                            if k == 0 {
                                answered.store(f, Ordering::Release);
                            }
                        });
                    }
                });
                last = f;
            }
            stop.store(true, Ordering::Relaxed);
            fails.join().unwrap().unwrap();
        });
    }
}
