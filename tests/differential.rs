//! Differential property test: random configurations and operation sequences, applied to the
//! real breaker and to the reference model (`reference/`), which must agree after every step.
//! Seeded, so a failure names the seed that reproduces it:
//! `DIFF_SEED=<seed> DIFF_SEQUENCES=1 cargo test --test differential -- --exact <test name>`.
//! Every sequence runs; the test fails at the end, with the first disagreement of each failing
//! seed (the first few in full).
//!
//! Relative slow-call rules (`SlowCalls::relative`) are not among the random configurations: the
//! model does not learn latencies. Their estimator is tested on its own (`src/latency.rs`) and
//! through the breaker on a mock clock (`tests/slow_relative.rs`).

use std::sync::{Arc, Barrier, Mutex};

use hotbreaker_reference::{
    ModelConfig, Op, Rng, random_config, random_long_config, random_long_ops, random_ops, run,
};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// The tests of this file take turns: one of them fills the pool of owned stripes.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Runs `DIFF_SEQUENCES` sequences (default `sequences`) from `DIFF_SEED` on.
fn check(sequences: u64, generate: impl Fn(&mut Rng) -> (ModelConfig, Vec<Op>)) {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    check_holding_turn(sequences, generate);
}

/// [`check`] for a caller that already holds the turn.
fn check_holding_turn(sequences: u64, generate: impl Fn(&mut Rng) -> (ModelConfig, Vec<Op>)) {
    let first = env("DIFF_SEED", 0);
    let sequences = env("DIFF_SEQUENCES", sequences);
    let (mut steps, mut failed) = (0, Vec::new());
    for seed in first..first + sequences {
        let (config, ops) = generate(&mut Rng::new(seed));
        steps += ops.len();
        if let Err(e) = run(&config, &ops) {
            failed.push(format!("seed {seed}: {e}"));
        }
    }
    if !failed.is_empty() {
        let firsts: Vec<&str> = failed.iter().map(|e| e.lines().next().unwrap()).collect();
        panic!(
            "{} of {sequences} sequences disagree:\n{}\n\nin full:\n{}",
            failed.len(),
            firsts.join("\n"),
            failed[..failed.len().min(3)].join("\n\n")
        );
    }
    println!("{sequences} sequences, {steps} steps, no disagreement");
}

#[test]
fn breaker_agrees_with_the_reference_model() {
    check(10_000, |rng| {
        let config = random_config(rng);
        let len = 10 + rng.below(150) as usize;
        let ops = random_ops(rng, &config, len);
        (config, ops)
    });
}

/// Every sequence holds one long-horizon step of each kind: 2^15 to past 2^17 resets; flapping
/// through 2^15 to past 2^17 transitions; 2^15 to past 2^17 calls in one bucket; an idle gap of
/// 2^15 to 2^20 laps of the window's ring, or of days to years. Each is followed by ordinary
/// steps that look at what it left. Mock time stays within 100 years.
#[test]
fn breaker_agrees_with_the_reference_model_over_a_long_life() {
    check(96, |rng| {
        let config = random_long_config(rng);
        let len = 20 + rng.below(100) as usize;
        let ops = random_long_ops(rng, &config, len, 4);
        (config, ops)
    });
}

/// The same check from a thread that holds no owned stripe, so every outcome goes to the shared
/// stripes (atomic read-modify-writes): 64 other threads hold every slot of the pool meanwhile.
#[test]
fn breaker_agrees_with_the_reference_model_on_shared_stripes() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let holders = 64;
    let (claimed, done) = (
        Arc::new(Barrier::new(holders + 1)),
        Arc::new(Barrier::new(holders + 1)),
    );
    let threads: Vec<_> = (0..holders)
        .map(|_| {
            let (claimed, done) = (Arc::clone(&claimed), Arc::clone(&done));
            std::thread::spawn(move || {
                // Any call claims a slot for this thread.
                let b = hotbreaker::Breaker::builder().build().unwrap();
                b.try_acquire().unwrap().success();
                claimed.wait();
                done.wait();
            })
        })
        .collect();
    claimed.wait();
    let result = std::thread::spawn(|| {
        check_holding_turn(2_000, |rng| {
            let config = random_config(rng);
            let len = 10 + rng.below(150) as usize;
            let ops = random_ops(rng, &config, len);
            (config, ops)
        })
    })
    .join();
    done.wait();
    for t in threads {
        t.join().unwrap();
    }
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
