//! The inlined Success path: failure runs, Disabled permits, slow-call detection switched on and
//! off, several mocked breakers on one thread, and a mock moving backwards.
use std::sync::Arc;
use std::time::Duration;

use hotbreaker::{Breaker, Builder, Config, State};

const MS: Duration = Duration::from_millis(1);

fn mocked(builder: Builder) -> (Breaker, Arc<quanta::Mock>) {
    let (clock, mock) = quanta::Clock::mock();
    (builder.clock(clock).build().unwrap(), mock)
}

#[test]
fn a_disabled_success_neither_ends_nor_hides_a_later_run() {
    let (b, _m) = mocked(Breaker::builder().consecutive_failures(2));
    b.try_acquire().unwrap().success(); // warm the bucket: fast path
    b.try_acquire().unwrap().failure(); // run 1, hint unequal
    b.disable();
    for _ in 0..3 {
        b.try_acquire().unwrap().success(); // Disabled successes with the hint unequal
    }
    b.try_acquire().unwrap().failure();
    b.try_acquire().unwrap().failure();
    assert_eq!(b.state(), State::Disabled);
    b.reset();
    b.try_acquire().unwrap().success();
    b.try_acquire().unwrap().failure();
    b.try_acquire().unwrap().success();
    b.try_acquire().unwrap().failure();
    assert_eq!(b.state(), State::Closed);
    b.try_acquire().unwrap().failure();
    assert_eq!(b.state(), State::Open);
}

#[test]
fn a_success_on_the_fast_path_ends_the_run_every_time() {
    let (b, _m) = mocked(Breaker::builder().consecutive_failures(2));
    for _ in 0..200 {
        b.try_acquire().unwrap().success();
        b.try_acquire().unwrap().failure();
        assert_eq!(b.state(), State::Closed);
    }
}

#[test]
fn untimed_permit_then_slow_detection_switched_on_and_off() {
    let (b, m) = mocked(Breaker::builder().consecutive_failures(5));
    b.try_acquire().unwrap().success();
    let p = b.try_acquire().unwrap(); // untimed
    let mut c: Config = b.config();
    c.slow_calls = Some(hotbreaker::SlowCalls::absolute(MS, 1.0));
    b.reconfigure(c.clone()).unwrap();
    m.increment(10 * MS);
    p.success();
    assert_eq!(b.metrics().slow, 0, "an untimed permit is never slow");
    let q = b.try_acquire().unwrap(); // timed
    c.slow_calls = None;
    b.reconfigure(c).unwrap();
    m.increment(10 * MS);
    q.success();
    assert_eq!(b.metrics().slow, 0, "slow detection is off at the outcome");
    assert_eq!(b.metrics().successes, 3);
}

#[test]
fn two_mocked_breakers_on_one_thread_each_time_their_own_calls() {
    let slow = || {
        Breaker::builder()
            .slow_calls(10 * MS, 1.0)
            .minimum_calls(100)
    };
    let (a, ma) = mocked(slow());
    let (b, mb) = mocked(slow());
    mb.increment(Duration::from_secs(5));
    for round in 0..300u64 {
        let pa = a.try_acquire().unwrap();
        let pb = b.try_acquire().unwrap();
        if round % 3 == 0 {
            ma.increment(20 * MS);
        } else if round % 3 == 1 {
            mb.increment(20 * MS);
        }
        pa.success();
        pb.success();
    }
    assert_eq!(a.metrics().slow, 100);
    assert_eq!(b.metrics().slow, 100);
}

#[test]
fn a_mock_moving_back_below_the_start_never_underflows() {
    let (clock, m) = quanta::Clock::mock();
    m.increment(Duration::from_secs(1));
    let b = Breaker::builder()
        .slow_calls(10 * MS, 1.0)
        .clock(clock)
        .build()
        .unwrap();
    m.decrement(Duration::from_millis(500));
    for _ in 0..100 {
        b.try_acquire().unwrap().success();
    }
    m.increment(Duration::from_secs(1));
    let p = b.try_acquire().unwrap();
    m.increment(20 * MS);
    p.success();
    assert_eq!(b.metrics().slow, 1);
}
