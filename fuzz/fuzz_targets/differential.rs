//! The differential property test, coverage-guided: a configuration drawn from a seed in the
//! input and an arbitrary sequence of operations, applied to the breaker and the reference model.
#![no_main]

use hotbreaker_reference::{Op, Rng, random_config, run};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|input: (u64, Vec<Op>)| {
    let (seed, ops) = input;
    let config = random_config(&mut Rng::new(seed));
    if let Err(e) = run(&config, &ops) {
        panic!("seed {seed}: {e}");
    }
});
