//! The chaos lab: `cargo run --release --example chaos` (`-- --help` for the options).
//!
//! A simulated dependency goes healthy → brownout → ramp (errors 0 → 80 % → 0) → hard outage →
//! recovered while worker threads call it three times on the same schedule: unprotected, through a
//! `hotbreaker::Breaker` with trip rules, and through one with an adaptive throttle only.
//! Prints a per-phase summary and writes `chaos/timeline.svg` under the cargo target directory.
//! The lab lives in the `chaos/` workspace member.

fn main() {
    std::process::exit(hotbreaker_chaos::cli_main());
}
