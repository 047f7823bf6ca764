//! A breaker protecting a flaky function, in real time: `cargo run --release --example quickstart`.
//!
//! The "dependency" is healthy (2 % errors), then down for a second (every call fails), then
//! healthy again. The breaker trips, rejects calls while the dependency is down, probes it with
//! a growing backoff, and closes once it has recovered. Every transition is printed with its
//! cause; the lifetime metrics come at the end. Runs for about 3 seconds.

use std::time::{Duration, Instant};

use hotbreaker::{Backoff, Breaker, Error};

fn main() {
    // Once per process: keeps `Clock::recent()` (about 1 ns) fresh for every breaker, and the
    // reserve of counter lines filled.
    let _upkeep =
        hotbreaker::start_upkeep(Duration::from_millis(1)).expect("start the upkeep thread");

    let started = Instant::now();
    let breaker = Breaker::builder()
        .consecutive_failures(5)
        .failure_rate(0.5)
        .minimum_calls(20)
        .time_window(Duration::from_secs(1), 10)
        .backoff(Backoff::exponential(
            Duration::from_millis(200),
            2.0,
            Duration::from_secs(1),
        ))
        .half_open_permits(2)
        .on_transition(move |t| {
            println!(
                "{:>7.3} s  {:>9} -> {:<9} cause: {:?} (generation {})",
                started.elapsed().as_secs_f64(),
                t.from.to_string(),
                t.to.to_string(),
                t.cause,
                t.generation
            );
        })
        .build()
        .expect("valid configuration");

    println!("time       transition               ");
    let outage = Duration::from_millis(500)..Duration::from_millis(1500);
    let mut call_number = 0u64;
    let (mut ok, mut failed, mut rejected) = (0u64, 0u64, 0u64);
    while started.elapsed() < Duration::from_secs(3) {
        call_number += 1;
        let down = outage.contains(&started.elapsed());
        let flaky = || -> Result<u64, &'static str> {
            std::thread::sleep(Duration::from_micros(200)); // the call's own latency
            if down || call_number.is_multiple_of(50) {
                Err("dependency error")
            } else {
                Ok(call_number)
            }
        };
        match breaker.call(flaky) {
            Ok(_) => ok += 1,
            Err(Error::Rejected(_)) => rejected += 1,
            // The call ran and failed (a synchronous call has no deadline, so never times out).
            Err(_) => failed += 1,
        }
        std::thread::sleep(Duration::from_micros(300)); // think time between calls
    }

    let m = breaker.metrics();
    println!();
    println!("calls made: {call_number}  ok: {ok}  failed: {failed}  rejected: {rejected}");
    println!(
        "lifetime metrics: successes {} failures {} ignored {} slow {} rejected {} times opened {}",
        m.successes, m.failures, m.ignored, m.slow, m.rejected, m.times_opened
    );
    println!(
        "final state: {}  window: {} calls, {:.1} % failures",
        m.state,
        m.window.calls,
        100.0 * m.failure_rate()
    );
    assert_eq!(m.successes, ok);
    assert_eq!(m.failures, failed);
    assert_eq!(m.rejected, rejected);
}
