//! Instruction counts under callgrind: `bash benches/callgrind.sh` runs this binary as
//! `instructions <contender> <scenario> <calls>` under `valgrind --tool=callgrind`, counting
//! only inside `measured_loop`, and divides by the number of calls: instructions per call,
//! repeatable on a noisy machine. Scenarios: A (Closed, success), C (Open, rejected), D (Closed, 1 % failures).
//!
//! quanta's upkeep thread runs (every millisecond) while the loop is measured, as in a service:
//! hotbreaker takes its production clock path. The upkeep thread's own instructions are not
//! counted (only `measured_loop` is).
//! Run by `cargo bench` without arguments, it does nothing.

#[path = "contenders.rs"]
mod contenders;

use std::hint::black_box;
use std::time::Duration;

use contenders::{
    CbRs, Contender, Failsafe, GoStyle, Hot, Recloser, Verdict, closed, opened, tower, tower_call,
};

/// The only code callgrind counts (`--toggle-collect=*measured_loop*`): setup, calibration of
/// the clock and process start-up are left out, so the count is exact and repeatable.
#[inline(never)]
fn measured_loop(
    calls: u64,
    scenario: &str,
    expect: Verdict,
    mut call: impl FnMut(bool) -> Verdict,
) {
    for i in 0..calls {
        let ok = scenario != "D" || i % 100 != 0;
        assert_eq!(call(ok), expect);
    }
}

fn run<C: Contender>(scenario: &str, calls: u64) {
    let x = if scenario == "C" {
        opened::<C>()
    } else {
        closed::<C>()
    };
    let _upkeep = quanta::Upkeep::new(Duration::from_millis(1))
        .start()
        .expect("one upkeep thread per process");
    let expect = if scenario == "C" {
        Verdict::Rejected
    } else {
        Verdict::Ran
    };
    measured_loop(calls, scenario, expect, |ok| black_box(&x).call(ok));
}

fn run_tower(scenario: &str, calls: u64) {
    let mut t = tower(Duration::from_secs(3600));
    if scenario == "C" {
        for _ in 0..5 {
            tower_call(&mut t, false);
        }
    }
    let expect = if scenario == "C" {
        Verdict::Rejected
    } else {
        Verdict::Ran
    };
    measured_loop(calls, scenario, expect, |ok| {
        tower_call(black_box(&mut t), ok)
    });
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let [contender, scenario, calls] = args.as_slice() else {
        return; // plain `cargo bench`: nothing to do here
    };
    let calls: u64 = calls.parse().expect("a call count");
    match contender.as_str() {
        "hotbreaker" => run::<Hot>(scenario, calls),
        "failsafe" => run::<Failsafe>(scenario, calls),
        "recloser" => run::<Recloser>(scenario, calls),
        "circuitbreaker-rs" => run::<CbRs>(scenario, calls),
        "gobreaker-style" => run::<GoStyle>(scenario, calls),
        "tower-resilience" => run_tower(scenario, calls),
        other => panic!("unknown contender {other}"),
    }
}
