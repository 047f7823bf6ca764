//! hotbreaker against the Rust breakers people use, in one process: `cargo bench --bench compare`
//! (or `bash benches/report.sh` for the table in benches/RESULTS.md).
//!
//! Scenarios (criterion group = scenario, one bench per contender, so contenders run back to back
//! within each scenario):
//! - `A`: Closed, every call succeeds, 1 thread.
//! - `B`: Closed, every call succeeds, 1/2/4/8 threads on one shared breaker; time per call across
//!   all threads (`iter_custom`), so throughput = 1 / time.
//! - `C-no-upkeep` / `C-upkeep`: Open, every call rejected, 1 thread, without and with quanta's
//!   upkeep thread (only hotbreaker and the quanta floors read quanta's clock).
//! - `D`: Closed, 1 % of calls fail, thresholds never reached, 1 thread.
//! - `E`: one full trip and recovery cycle: 5 failures (Closed → Open), the open wait, one
//!   successful probe (→ HalfOpen → Closed). hotbreaker waits on a mock clock; the peers have no
//!   injectable clock and are configured with a zero open wait instead.
//! - `F`: 10 000 breakers in a `Vec`, calls spread at random across them (cache-miss regime).
//! - `floors`: a shared `AtomicU64::fetch_add`, a bare load, `quanta::Instant::recent()`,
//!   `quanta::Clock::now()`.
//!
//! Every batch checks each call's verdict (ran or rejected), so a breaker that left its intended
//! state fails the bench instead of measuring something else. Allocations per call are counted
//! up front with a counting allocator and written to `target/criterion/allocations.tsv`.

#[path = "contenders.rs"]
mod contenders;

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use contenders::{
    CbRs, Contender, Failsafe, GoStyle, HOT_TOWER, Hot, HotTower, Recloser, TOWER, TowerCb,
    Verdict, closed, hot_tower, opened, tower, tower_call,
};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, BenchmarkId, Criterion, Throughput};
use rand::{Rng, SeedableRng};

// ---- allocation counting ---------------------------------------------------------------------

struct Counting;
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations per call over 1 000 calls (after 100 warm-up calls), single-threaded.
fn per_call(mut f: impl FnMut(u64) -> Verdict) -> f64 {
    for i in 0..100 {
        black_box(f(i));
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    for i in 0..1_000 {
        black_box(f(i));
    }
    (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / 1_000.0
}

fn allocation_row<C: Contender>() -> String {
    let (a, c, d) = (closed::<C>(), opened::<C>(), closed::<C>());
    format!(
        "{}\t{}\t{}\t{}\n",
        C::NAME,
        per_call(|_| a.call(true)),
        per_call(|_| c.call(true)),
        per_call(|i| d.call(i % 100 != 0))
    )
}

fn allocation_table() {
    let mut out = String::from("contender\tA\tC\tD\n");
    out += &allocation_row::<Hot>();
    out += &allocation_row::<Failsafe>();
    out += &allocation_row::<Recloser>();
    out += &allocation_row::<CbRs>();
    out += &allocation_row::<GoStyle>();
    let (mut a, mut c, mut d) = (tower(LONG), opened_tower(), tower(LONG));
    out += &format!(
        "{TOWER}\t{}\t{}\t{}\n",
        per_call(|_| tower_call(&mut a, true)),
        per_call(|_| tower_call(&mut c, true)),
        per_call(|i| tower_call(&mut d, i % 100 != 0))
    );
    let (mut a, mut c, mut d) = (hot_tower(LONG), opened_hot_tower(), hot_tower(LONG));
    out += &format!(
        "{HOT_TOWER}\t{}\t{}\t{}\n",
        per_call(|_| tower_call(&mut a, true)),
        per_call(|_| tower_call(&mut c, true)),
        per_call(|i| tower_call(&mut d, i % 100 != 0))
    );
    print!("allocations per call\n{out}");
    // cargo bench runs in benches/: write beside criterion's output in the workspace target/.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/criterion");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("allocations.tsv"), out);
}

// ---- helpers ---------------------------------------------------------------------------------

const LONG: Duration = Duration::from_secs(3600);

/// A tower service tripped by 5 failures, checked to reject.
fn opened_service<S>(mut svc: S, name: &str) -> S
where
    S: tower::Service<bool, Response = ()>,
    S::Error: contenders::Rejection + std::fmt::Debug,
{
    for _ in 0..5 {
        assert_eq!(tower_call(&mut svc, false), Verdict::Ran);
    }
    assert_eq!(
        tower_call(&mut svc, true),
        Verdict::Rejected,
        "{name} did not open"
    );
    svc
}

fn opened_tower() -> TowerCb {
    opened_service(tower(LONG), TOWER)
}

fn opened_hot_tower() -> HotTower {
    opened_service(hot_tower(LONG), HOT_TOWER)
}

/// One single-threaded bench: `f(i)` is the i-th call; every call must come back `expect`.
fn single(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    expect: Verdict,
    mut f: impl FnMut(u64) -> Verdict,
) {
    g.bench_function(name, |b| {
        let mut i = 0u64;
        let mut wrong = 0u64;
        b.iter(|| {
            i = i.wrapping_add(1);
            let v = f(i);
            wrong += u64::from(v != expect);
            v
        });
        assert_eq!(wrong, 0, "{name}: {wrong} calls left the intended state");
    });
}

fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut g = c.benchmark_group(name);
    g.throughput(Throughput::Elements(1));
    g
}

// ---- scenarios -------------------------------------------------------------------------------

fn floors(c: &mut Criterion) {
    let mut g = group(c, "floors");
    let shared = AtomicU64::new(0);
    g.bench_function("AtomicU64::fetch_add", |b| {
        b.iter(|| black_box(&shared).fetch_add(1, Ordering::Relaxed))
    });
    g.bench_function("AtomicU64::load", |b| {
        b.iter(|| black_box(&shared).load(Ordering::Relaxed))
    });
    g.bench_function("quanta::Instant::recent", |b| {
        b.iter(quanta::Instant::recent)
    });
    let clock = quanta::Clock::new();
    g.bench_function("quanta::Clock::now", |b| b.iter(|| black_box(&clock).now()));
    g.finish();
}

/// `FAIL_EVERY` is a constant so that `i % FAIL_EVERY` compiles to a multiply (or vanishes), not
/// a `div` instruction in every iteration of every contender.
fn closed_calls<C: Contender, const FAIL_EVERY: u64>(g: &mut BenchmarkGroup<'_, WallTime>) {
    let x = closed::<C>();
    single(g, C::NAME, Verdict::Ran, |i| {
        black_box(&x).call(FAIL_EVERY == 0 || i % FAIL_EVERY.max(1) != 0)
    });
}

fn scenario_a(c: &mut Criterion) {
    let mut g = group(c, "A");
    closed_calls::<Hot, 0>(&mut g);
    closed_calls::<Failsafe, 0>(&mut g);
    closed_calls::<Recloser, 0>(&mut g);
    closed_calls::<CbRs, 0>(&mut g);
    closed_calls::<GoStyle, 0>(&mut g);
    let mut t = tower(LONG);
    single(&mut g, TOWER, Verdict::Ran, |_| {
        tower_call(black_box(&mut t), true)
    });
    let mut h = hot_tower(LONG);
    single(&mut g, HOT_TOWER, Verdict::Ran, |_| {
        tower_call(black_box(&mut h), true)
    });
    g.finish();
}

fn scenario_d(c: &mut Criterion) {
    let mut g = group(c, "D");
    closed_calls::<Hot, 100>(&mut g);
    closed_calls::<Failsafe, 100>(&mut g);
    closed_calls::<Recloser, 100>(&mut g);
    closed_calls::<CbRs, 100>(&mut g);
    closed_calls::<GoStyle, 100>(&mut g);
    let mut t = tower(LONG);
    single(&mut g, TOWER, Verdict::Ran, |i| {
        tower_call(black_box(&mut t), i % 100 != 0)
    });
    let mut h = hot_tower(LONG);
    single(&mut g, HOT_TOWER, Verdict::Ran, |i| {
        tower_call(black_box(&mut h), i % 100 != 0)
    });
    g.finish();
}

fn rejected_calls<C: Contender>(g: &mut BenchmarkGroup<'_, WallTime>) {
    let x = opened::<C>();
    single(g, C::NAME, Verdict::Rejected, |_| black_box(&x).call(true));
}

fn scenario_c(c: &mut Criterion, name: &str) {
    let mut g = group(c, name);
    rejected_calls::<Hot>(&mut g);
    rejected_calls::<Failsafe>(&mut g);
    rejected_calls::<Recloser>(&mut g);
    rejected_calls::<CbRs>(&mut g);
    rejected_calls::<GoStyle>(&mut g);
    let mut t = opened_tower();
    single(&mut g, TOWER, Verdict::Rejected, |_| {
        tower_call(black_box(&mut t), true)
    });
    let mut h = opened_hot_tower();
    single(&mut g, HOT_TOWER, Verdict::Rejected, |_| {
        tower_call(black_box(&mut h), true)
    });
    g.finish();
}

/// `threads` threads share one breaker, each making `iters / threads` successful calls.
fn contended<C: Contender>(g: &mut BenchmarkGroup<'_, WallTime>, threads: usize) {
    let x = closed::<C>();
    g.bench_with_input(
        BenchmarkId::new(C::NAME, threads),
        &threads,
        |b, &threads| {
            b.iter_custom(|iters| {
                let per = iters.div_ceil(threads as u64);
                let barrier = Barrier::new(threads + 1);
                let wrong = AtomicU64::new(0);
                let elapsed = std::thread::scope(|s| {
                    let handles: Vec<_> = (0..threads)
                        .map(|_| {
                            s.spawn(|| {
                                barrier.wait();
                                let mut bad = 0;
                                for _ in 0..per {
                                    bad += u64::from(black_box(&x).call(true) != Verdict::Ran);
                                }
                                wrong.fetch_add(bad, Ordering::Relaxed);
                            })
                        })
                        .collect();
                    barrier.wait();
                    let start = Instant::now();
                    handles.into_iter().for_each(|h| h.join().unwrap());
                    start.elapsed()
                });
                assert_eq!(wrong.load(Ordering::Relaxed), 0, "{} left Closed", C::NAME);
                // Time per call over all threads: criterion's throughput is then the total.
                elapsed.mul_f64(iters as f64 / (per * threads as u64) as f64)
            });
        },
    );
}

fn scenario_b(c: &mut Criterion) {
    let mut g = group(c, "B");
    for threads in [1, 2, 4, 8] {
        contended::<Hot>(&mut g, threads);
        contended::<Failsafe>(&mut g, threads);
        contended::<Recloser>(&mut g, threads);
        contended::<CbRs>(&mut g, threads);
        contended::<GoStyle>(&mut g, threads);
    }
    g.finish();
}

/// One trip-and-recover cycle per iteration, checking each call's verdict.
fn cycle(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    mut call: impl FnMut(bool) -> Verdict,
    mut wait: impl FnMut(),
) {
    g.bench_function(name, |b| {
        let mut wrong = 0u64;
        b.iter(|| {
            for _ in 0..5 {
                wrong += u64::from(call(false) != Verdict::Ran);
            }
            wait();
            wrong += u64::from(call(true) != Verdict::Ran);
        });
        assert_eq!(wrong, 0, "{name}: the cycle did not complete");
    });
}

fn peer_cycle<C: Contender>(g: &mut BenchmarkGroup<'_, WallTime>) {
    let x = C::new(Duration::ZERO);
    cycle(g, C::NAME, |ok| x.call(ok), || {});
}

fn scenario_e(c: &mut Criterion) {
    let mut g = group(c, "E");
    let (clock, mock) = quanta::Clock::mock();
    let hot = hotbreaker::Breaker::builder()
        .consecutive_failures(5)
        .open_timeout(Duration::from_millis(1))
        .half_open_permits(1)
        .clock(clock)
        .build()
        .unwrap();
    cycle(
        &mut g,
        "hotbreaker",
        |ok| match hot.call(|| if ok { Ok(()) } else { Err(contenders::Boom) }) {
            Err(hotbreaker::Error::Rejected(_)) => Verdict::Rejected,
            _ => Verdict::Ran,
        },
        || {
            // The five failures tripped it (a load); then the open wait passes on the mock clock.
            assert_eq!(hot.state(), hotbreaker::State::Open);
            mock.increment(Duration::from_millis(1));
        },
    );
    peer_cycle::<Failsafe>(&mut g);
    peer_cycle::<Recloser>(&mut g);
    peer_cycle::<CbRs>(&mut g);
    peer_cycle::<GoStyle>(&mut g);
    g.finish();
}

const SPREAD: usize = 10_000;

fn indices() -> Vec<u32> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    (0..1 << 16)
        .map(|_| rng.random_range(0..SPREAD as u32))
        .collect()
}

fn spread<C: Contender>(g: &mut BenchmarkGroup<'_, WallTime>, idx: &[u32]) {
    let all: Vec<C> = (0..SPREAD).map(|_| closed::<C>()).collect();
    single(g, C::NAME, Verdict::Ran, |i| {
        all[idx[i as usize & (idx.len() - 1)] as usize].call(true)
    });
}

fn scenario_f(c: &mut Criterion) {
    let idx = indices();
    let mut g = group(c, "F");
    spread::<Hot>(&mut g, &idx);
    spread::<Failsafe>(&mut g, &idx);
    spread::<Recloser>(&mut g, &idx);
    spread::<CbRs>(&mut g, &idx);
    spread::<GoStyle>(&mut g, &idx);
    let mut all: Vec<TowerCb> = (0..SPREAD).map(|_| tower(LONG)).collect();
    single(&mut g, TOWER, Verdict::Ran, |i| {
        tower_call(&mut all[idx[i as usize & (idx.len() - 1)] as usize], true)
    });
    g.finish();
}

fn main() {
    allocation_table();
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1500))
        .sample_size(20)
        .configure_from_args();
    // Without upkeep first (it cannot be stopped cleanly once other code relies on it)...
    scenario_c(&mut c, "C-no-upkeep");
    // ...then with it, as a service would run.
    let upkeep = hotbreaker::start_upkeep(Duration::from_millis(1)).ok();
    floors(&mut c);
    scenario_a(&mut c);
    scenario_c(&mut c, "C-upkeep");
    scenario_d(&mut c);
    scenario_b(&mut c);
    scenario_e(&mut c);
    scenario_f(&mut c);
    drop(Arc::new(upkeep));
    c.final_summary();
}
