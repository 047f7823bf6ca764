//! Differential property test: random configurations and operation sequences, applied to the
//! real breaker and to the reference model (`reference/`), which must agree after every step.
//! Seeded, so a failure names the seed that reproduces it:
//! `DIFF_SEED=<seed> DIFF_SEQUENCES=1 cargo test --test differential`.

use hotbreaker_reference::{Rng, random_config, random_ops, run};

#[test]
fn breaker_agrees_with_the_reference_model() {
    let first: u64 = std::env::var("DIFF_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let sequences: u64 = std::env::var("DIFF_SEQUENCES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let mut steps = 0;
    for seed in first..first + sequences {
        let mut rng = Rng::new(seed);
        let config = random_config(&mut rng);
        let len = 10 + rng.below(150) as usize;
        let ops = random_ops(&mut rng, &config, len);
        steps += ops.len();
        if let Err(e) = run(&config, &ops) {
            panic!("seed {seed}: {e}");
        }
    }
    println!("{sequences} sequences, {steps} steps, no disagreement");
}
