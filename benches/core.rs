//! Quick benches of hotbreaker's own hot paths (the comparison with other crates lives in its
//! own package). `cargo bench --bench core`.
//!
//! - `closed/acquire+success`: one thread, Closed, every call succeeds.
//! - `open/reject`: one thread, Open, every call rejected; with and without quanta's upkeep.
//! - `closed/threads/N`: N threads recording successes on one shared breaker, reported as time
//!   per operation across all threads (lower = more total throughput).
//!
//! - `registry/get/1000 names`: a lookup by name in a registry of 1 000 breakers (names cycled
//!   in a shuffled order), and `registry/get_or_create/existing` for the same names.
//!
//! Every batch checks that the breaker is still in the state it is meant to measure.

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use hotbreaker::{Breaker, State};

fn closed() -> Breaker {
    Breaker::builder().build().unwrap()
}

fn open() -> Breaker {
    let b = Breaker::builder()
        .consecutive_failures(1)
        .open_timeout(Duration::from_secs(365 * 24 * 3600))
        .build()
        .unwrap();
    b.try_acquire().unwrap().failure();
    b
}

fn single_thread(c: &mut Criterion) {
    let mut g = c.benchmark_group("core");
    g.throughput(Throughput::Elements(1));
    let b = closed();
    g.bench_function("closed/acquire+success", |bench| {
        bench.iter(|| black_box(&b).try_acquire().unwrap().success());
        assert_eq!(b.state(), State::Closed);
    });
    let b = closed();
    g.bench_function("closed/call", |bench| {
        bench.iter(|| black_box(&b).call(|| Ok::<u32, ()>(black_box(1))));
        assert_eq!(b.state(), State::Closed);
    });
    let b = open();
    g.bench_function("open/reject/no-upkeep", |bench| {
        bench.iter(|| black_box(&b).try_acquire().is_err());
        assert_eq!(b.state(), State::Open);
    });
    let upkeep = hotbreaker::start_upkeep(Duration::from_millis(1));
    let b = open();
    g.bench_function("open/reject/upkeep", |bench| {
        bench.iter(|| black_box(&b).try_acquire().is_err());
        assert_eq!(b.state(), State::Open);
    });
    let b = closed();
    g.bench_function("closed/acquire+success/upkeep", |bench| {
        bench.iter(|| black_box(&b).try_acquire().unwrap().success());
        assert_eq!(b.state(), State::Closed);
    });
    drop(upkeep);
    g.finish();
}

/// `threads` threads each record `iters / threads` successes; returns the wall time.
fn run_threads(b: &Breaker, threads: u64, iters: u64) -> Duration {
    let per_thread = iters.div_ceil(threads);
    let barrier = Barrier::new(threads as usize + 1);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    barrier.wait();
                    for _ in 0..per_thread {
                        black_box(b).try_acquire().unwrap().success();
                    }
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        handles.into_iter().for_each(|h| h.join().unwrap());
        start.elapsed()
    })
}

fn contention(c: &mut Criterion) {
    let mut g = c.benchmark_group("core/closed/threads");
    g.throughput(Throughput::Elements(1));
    let upkeep = hotbreaker::start_upkeep(Duration::from_millis(1));
    for threads in [1u64, 2, 4] {
        let b = closed();
        g.bench_with_input(
            BenchmarkId::from_parameter(threads),
            &threads,
            |bench, &t| {
                bench.iter_custom(|iters| run_threads(&b, t, iters));
                assert_eq!(b.state(), State::Closed);
            },
        );
    }
    drop(upkeep);
    g.finish();
}

fn registry(c: &mut Criterion) {
    let mut g = c.benchmark_group("registry");
    g.throughput(Throughput::Elements(1));
    let r = hotbreaker::Registry::default();
    // 1 000 names visited in a scrambled order (stride coprime with 1 000).
    let names: Vec<String> = (0..1_000)
        .map(|i| format!("dependency-{:04}", (i * 617) % 1_000))
        .collect();
    for n in &names {
        r.get_or_create(n);
    }
    let mut i = 0;
    g.bench_function("get/1000 names", |bench| {
        bench.iter(|| {
            i = (i + 1) % names.len();
            black_box(r.get(black_box(&names[i])).expect("exists"))
        });
    });
    g.bench_function("get_or_create/existing", |bench| {
        bench.iter(|| {
            i = (i + 1) % names.len();
            black_box(r.get_or_create(black_box(&names[i])))
        });
    });
    assert_eq!(r.len(), 1_000);
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}

criterion_group! { name = benches; config = config(); targets = single_thread, contention, registry }
criterion_main!(benches);
