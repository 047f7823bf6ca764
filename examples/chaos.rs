//! The chaos lab: `cargo run --release --example chaos` (`-- --help` for the options).
//!
//! A simulated dependency goes healthy → hard outage → brownout → recovered while worker threads
//! call it twice on the same schedule, once unprotected and once through a `hotbreaker::Breaker`.
//! Prints a per-phase summary and writes `chaos/timeline.svg` under the cargo target directory.
//! The lab lives in the `chaos/` workspace member.

fn main() {
    std::process::exit(hotbreaker_chaos::cli_main());
}
