//! A bare loop over the hot path, for profilers (callgrind, perf): `cargo run --release --example hotloop -- [closed|open] N`.
use std::hint::black_box;
use std::time::Duration;

fn main() {
    let mut args = std::env::args().skip(1);
    let mode = args.next().unwrap_or_else(|| "closed".into());
    let n: u64 = args
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000_000);
    let _upkeep = hotbreaker::start_upkeep(Duration::from_millis(1));
    let b = hotbreaker::Breaker::builder()
        .consecutive_failures(1)
        .open_timeout(Duration::from_secs(3600))
        .build()
        .unwrap();
    if mode == "open" {
        b.try_acquire().unwrap().failure();
    }
    let start = std::time::Instant::now();
    let mut ok = 0u64;
    for _ in 0..n {
        match black_box(&b).try_acquire() {
            Ok(p) => {
                p.success();
                ok += 1;
            }
            Err(e) => {
                black_box(e);
            }
        }
    }
    let ns = start.elapsed().as_nanos() as f64 / n as f64;
    println!(
        "{mode}: {ns:.2} ns/op, {ok} permitted, state {:?}",
        b.state()
    );
}
