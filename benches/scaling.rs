//! Many-core scaling: one breaker shared by 1, 2, 4, … N threads, each calling it in a closed
//! loop for a fixed time, with 0 %, 1 % or 10 % of its calls failing.
//!
//! `cargo bench -p hotbreaker-benches --bench scaling` (or the static binary that
//! `bash benches/scaling.sh` builds for other machines). No criterion: every row is one timed run,
//! printed as one line (and one TSV row), so a 200-core machine's table comes out in minutes.
//!
//! Environment:
//! - `SCALING_THREADS="1,2,4,16"`: the thread counts (default 1, 2, 4, … up to N, and N itself,
//!   N = `available_parallelism`).
//! - `SCALING_SECS=1.0`: seconds per row.
//! - `SCALING_TSV=path`: also write the rows as TSV there.
//! - `SCALING_LONG_CALLS=1e9`: the long-run check (hotbreaker `consecutive_failures(5)`, 1 %
//!   failures, N threads) until that many calls in all; default 0, skipped.
//! - `SCALING_FILTER=tower,failsafe`: run only the rows whose name contains one of these.
//!
//! Each thread fails exactly every 100th (1 %) or 10th (10 %) call, or never; thread `i` starts
//! its count at `7 i`, so the threads' failures do not line up. quanta's upkeep thread (1 ms) runs
//! for the whole run, as a service would run it.
//!
//! Columns: `Mcalls/s` is all threads together, `per thread` that divided by the thread count;
//! `rejected` the calls a breaker turned away (an open breaker, or the throttle: `throttled`
//! counts those alone); `trips` how many times the breaker opened (`metrics().times_opened`) and
//! `open@end` whether it was open when the row ended. The peers cannot tell either ("-"): their
//! `rejected` shows whether they opened.

#[path = "contenders.rs"]
mod contenders;

use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use contenders::{Boom, Contender, Failsafe, Recloser, Verdict, tower_call};
use hotbreaker::{Breaker, State, Throttle};
use tower::Layer;

// ---- settings --------------------------------------------------------------------------------

struct Settings {
    cpus: usize,
    threads: Vec<usize>,
    secs: f64,
    long_calls: u64,
    filter: Vec<String>,
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn settings() -> Settings {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = match env("SCALING_THREADS") {
        Some(list) => list
            .split(',')
            .map(|t| {
                t.trim()
                    .parse::<usize>()
                    .ok()
                    .filter(|&n| n > 0)
                    .unwrap_or_else(|| panic!("SCALING_THREADS: {t:?} is not a thread count > 0"))
            })
            .collect(),
        None => {
            let mut v: Vec<usize> = std::iter::successors(Some(1usize), |n| n.checked_mul(2))
                .take_while(|&n| n <= cpus)
                .collect();
            if !cpus.is_power_of_two() {
                v.push(cpus);
            }
            v
        }
    };
    let secs = env("SCALING_SECS").map_or(1.0, |s| {
        s.trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s > 0.0)
            .unwrap_or_else(|| panic!("SCALING_SECS: {s:?} is not a number of seconds > 0"))
    });
    // A float, so that `1e9` reads as written.
    let long_calls = env("SCALING_LONG_CALLS").map_or(0, |s| {
        s.trim()
            .parse::<f64>()
            .ok()
            .filter(|n| n.is_finite() && *n >= 0.0)
            .unwrap_or_else(|| panic!("SCALING_LONG_CALLS: {s:?} is not a count")) as u64
    });
    let filter = env("SCALING_FILTER").map_or_else(Vec::new, |f| {
        f.split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    });
    Settings {
        cpus,
        threads,
        secs,
        long_calls,
        filter,
    }
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

// ---- the load --------------------------------------------------------------------------------

/// Every how many calls a thread fails; `u64::MAX`: never.
#[derive(Clone, Copy)]
struct Failures {
    percent: u32,
    every: u64,
}

const NONE: Failures = Failures {
    percent: 0,
    every: u64::MAX,
};
const ONE: Failures = Failures {
    percent: 1,
    every: 100,
};
const TEN: Failures = Failures {
    percent: 10,
    every: 10,
};

/// Thread `i`'s own count of calls: `next()` is false on exactly every `every`-th call, and the
/// threads start out of phase (`7 i`).
struct Schedule {
    count: u64,
    every: u64,
}

impl Schedule {
    fn new(f: Failures, thread: usize) -> Schedule {
        let count = if f.every == u64::MAX {
            0
        } else {
            (thread as u64).wrapping_mul(7) % f.every
        };
        Schedule {
            count,
            every: f.every,
        }
    }

    /// Whether the next call succeeds.
    #[inline(always)]
    fn next(&mut self) -> bool {
        self.count += 1;
        if self.count >= self.every {
            self.count = 0;
            false
        } else {
            true
        }
    }
}

/// The stop flag, alone on its cache lines: the threads only read it until it is set.
#[repr(align(128))]
struct Stop(AtomicBool);

/// How often a thread looks at the stop flag (calls).
const CHECK_EVERY: u64 = 64;

#[derive(Default, Clone, Copy)]
struct Tally {
    calls: u64,
    rejected: u64,
}

/// Until what a row runs.
#[derive(Clone, Copy)]
enum Until {
    /// The main thread raises the stop flag after this long.
    Time(Duration),
    /// Each thread makes this many calls.
    Calls(u64),
}

/// Runs `threads` threads, each with its own caller from `make(i)` (made before the clock
/// starts), until `until`; returns the calls and rejections of all, and the time they took.
fn drive<M, F>(threads: usize, failures: Failures, until: Until, make: M) -> (Tally, Duration)
where
    M: Fn(usize) -> F + Sync,
    F: FnMut(bool) -> Verdict,
{
    let stop = Stop(AtomicBool::new(false));
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let (stop, barrier, make) = (&stop, &barrier, &make);
                s.spawn(move || {
                    let mut call = make(i);
                    let mut schedule = Schedule::new(failures, i);
                    let mut tally = Tally::default();
                    barrier.wait();
                    let mut one = |tally: &mut Tally| {
                        let ok = schedule.next();
                        tally.rejected += u64::from(call(ok) == Verdict::Rejected);
                    };
                    match until {
                        Until::Time(_) => {
                            while !stop.0.load(Ordering::Relaxed) {
                                for _ in 0..CHECK_EVERY {
                                    one(&mut tally);
                                }
                                tally.calls += CHECK_EVERY;
                            }
                        }
                        Until::Calls(n) => {
                            for _ in 0..n {
                                one(&mut tally);
                            }
                            tally.calls = n;
                        }
                    }
                    tally
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        if let Until::Time(d) = until {
            std::thread::sleep(d);
            stop.0.store(true, Ordering::Relaxed);
        }
        let mut all = Tally::default();
        for h in handles {
            let t = h.join().expect("a bench thread panicked");
            all.calls += t.calls;
            all.rejected += t.rejected;
        }
        (all, start.elapsed())
    })
}

// ---- the contenders --------------------------------------------------------------------------

#[inline(always)]
fn hot_call(b: &Breaker, ok: bool) -> Verdict {
    match b.call(|| if ok { Ok(()) } else { Err(Boom) }) {
        Err(hotbreaker::Error::Rejected(_)) => Verdict::Rejected,
        _ => Verdict::Ran,
    }
}

/// What the breaker tells after a row (hotbreaker only).
struct Seen {
    trips: u64,
    state: State,
    throttled: u64,
}

fn seen(b: &Breaker) -> Seen {
    let m = b.metrics();
    Seen {
        trips: m.times_opened,
        state: m.state,
        throttled: m.throttled,
    }
}

/// A hotbreaker configuration in a row.
type Build = fn(&Settings) -> Breaker;

fn default_breaker(_: &Settings) -> Breaker {
    Breaker::builder().build().unwrap()
}

fn stripes_for(s: &Settings) -> u32 {
    (s.cpus.next_power_of_two().min(64)) as u32
}

fn striped(s: &Settings) -> Breaker {
    Breaker::builder().stripes(stripes_for(s)).build().unwrap()
}

fn consecutive_5(_: &Settings) -> Breaker {
    Breaker::builder().consecutive_failures(5).build().unwrap()
}

fn consecutive_20(_: &Settings) -> Breaker {
    Breaker::builder().consecutive_failures(20).build().unwrap()
}

fn throttle_only(_: &Settings) -> Breaker {
    Breaker::builder()
        .throttle(Throttle::sre())
        .build()
        .unwrap()
}

fn count_window_100(_: &Settings) -> Breaker {
    Breaker::builder().count_window(100).build().unwrap()
}

/// One result line.
struct Row {
    name: String,
    threads: usize,
    percent: u32,
    tally: Tally,
    elapsed: Duration,
    seen: Option<Seen>,
}

// ---- output ----------------------------------------------------------------------------------

const TSV_HEADER: &str = "kind\tname\tthreads\tfail_pct\tsecs\tcalls\tmcalls_per_s\t\
                          mcalls_per_s_per_thread\trejected\tthrottled\ttrips\topen_at_end\tbytes\n";

struct Out {
    tsv: String,
}

impl Out {
    fn header() {
        println!(
            "{:<34} {:>7} {:>5} {:>10} {:>10} {:>14} {:>11} {:>7} {:>8}",
            "row",
            "threads",
            "fail",
            "Mcalls/s",
            "per thread",
            "rejected",
            "throttled",
            "trips",
            "open@end"
        );
    }

    fn row(&mut self, kind: &str, r: &Row) {
        let secs = r.elapsed.as_secs_f64();
        let total = r.tally.calls as f64 / secs / 1e6;
        let per = total / r.threads as f64;
        let (trips, open, throttled) = match &r.seen {
            Some(s) => (
                s.trips.to_string(),
                if s.state == State::Open { "yes" } else { "no" }.to_owned(),
                s.throttled.to_string(),
            ),
            None => ("-".to_owned(), "-".to_owned(), "-".to_owned()),
        };
        println!(
            "{:<34} {:>7} {:>4}% {:>10.2} {:>10.2} {:>14} {:>11} {:>7} {:>8}",
            r.name, r.threads, r.percent, total, per, r.tally.rejected, throttled, trips, open
        );
        let _ = writeln!(
            self.tsv,
            "{kind}\t{}\t{}\t{}\t{secs:.3}\t{}\t{total:.3}\t{per:.3}\t{}\t{throttled}\t{trips}\t{open}\t-",
            r.name, r.threads, r.percent, r.tally.calls, r.tally.rejected
        );
    }

    fn memory(&mut self, name: &str, callers: usize, bytes: usize) {
        let _ = writeln!(
            self.tsv,
            "memory\t{name}\t{callers}\t-\t-\t-\t-\t-\t-\t-\t-\t-\t{bytes}"
        );
    }
}

// ---- rows ------------------------------------------------------------------------------------

fn wanted(s: &Settings, name: &str) -> bool {
    s.filter.is_empty() || s.filter.iter().any(|f| name.contains(f.as_str()))
}

fn hot_row(s: &Settings, out: &mut Out, name: &str, build: Build, failures: Failures) {
    if !wanted(s, name) {
        return;
    }
    for &threads in &s.threads {
        let b = build(s);
        let (tally, elapsed) = drive(
            threads,
            failures,
            Until::Time(Duration::from_secs_f64(s.secs)),
            |_| {
                let b = &b;
                move |ok| hot_call(b, ok)
            },
        );
        out.row(
            "row",
            &Row {
                name: name.to_owned(),
                threads,
                percent: failures.percent,
                tally,
                elapsed,
                seen: Some(seen(&b)),
            },
        );
    }
}

/// hotbreaker's tower middleware (`BreakerLayer` around a `service_fn`) on the default breaker;
/// each thread drives its own clone of the service, all sharing the breaker: through an
/// `Arc<Breaker>` (a reference count per call), or a `&'static Breaker` (`Breaker::leak`).
fn tower_row(s: &Settings, out: &mut Out, failures: Failures, leaked: bool) {
    let name = if leaked {
        "hotbreaker-tower static"
    } else {
        "hotbreaker-tower arc"
    };
    if !wanted(s, name) {
        return;
    }
    for &threads in &s.threads {
        let until = Until::Time(Duration::from_secs_f64(s.secs));
        let (tally, elapsed, seen) = if leaked {
            let breaker: &'static Breaker =
                Box::leak(Box::new(Breaker::builder().build().unwrap()));
            let (tally, elapsed) = drive_tower(breaker, threads, failures, until);
            (tally, elapsed, seen(breaker))
        } else {
            let breaker = Arc::new(Breaker::builder().build().unwrap());
            let (tally, elapsed) = drive_tower(Arc::clone(&breaker), threads, failures, until);
            (tally, elapsed, seen(&breaker))
        };
        out.row(
            "row",
            &Row {
                name: name.to_owned(),
                threads,
                percent: failures.percent,
                tally,
                elapsed,
                seen: Some(seen),
            },
        );
    }
}

/// Drives the tower layer over `breaker` (a `&'static Breaker` or an `Arc<Breaker>`) around a
/// `service_fn`, each thread on its own clone of the service.
fn drive_tower<B>(breaker: B, threads: usize, failures: Failures, until: Until) -> (Tally, Duration)
where
    B: Clone + std::ops::Deref<Target = Breaker> + Send + Sync,
{
    let inner = tower::service_fn(|ok: bool| {
        std::future::ready(if ok { Ok::<(), Boom>(()) } else { Err(Boom) })
    });
    let svc = hotbreaker::service::BreakerLayer::new(breaker).layer(inner);
    drive(threads, failures, until, |_| {
        let mut svc = svc.clone();
        move |ok| tower_call(&mut svc, ok)
    })
}

fn peer_row<C: Contender>(s: &Settings, out: &mut Out, failures: Failures) {
    if !wanted(s, C::NAME) {
        return;
    }
    for &threads in &s.threads {
        let c = C::new(Duration::from_secs(3600));
        let (tally, elapsed) = drive(
            threads,
            failures,
            Until::Time(Duration::from_secs_f64(s.secs)),
            |_| {
                let c = &c;
                move |ok| c.call(ok)
            },
        );
        out.row(
            "row",
            &Row {
                name: format!("{} (consecutive 5)", C::NAME),
                threads,
                percent: failures.percent,
                tally,
                elapsed,
                seen: None,
            },
        );
    }
}

/// hotbreaker `consecutive_failures(5)` at 1 % on every CPU until `long_calls` calls in all.
fn long_row(s: &Settings, out: &mut Out) {
    let threads = s.cpus;
    let per = s.long_calls.div_ceil(threads as u64);
    println!(
        "\nlong run: consecutive_failures(5), 1 % failures, {threads} threads, {} calls",
        per * threads as u64
    );
    let b = consecutive_5(s);
    let (tally, elapsed) = drive(threads, ONE, Until::Calls(per), |_| {
        let b = &b;
        move |ok| hot_call(b, ok)
    });
    Out::header();
    out.row(
        "long",
        &Row {
            name: "hotbreaker consecutive(5) long".to_owned(),
            threads,
            percent: ONE.percent,
            tally,
            elapsed,
            seen: Some(seen(&b)),
        },
    );
    println!("took {:.2} s", elapsed.as_secs_f64());
}

/// `size_of::<Breaker>() + heap_bytes()` after 1, 16 and 64 distinct threads called: all alive
/// together (so that each holds its own thread slot), each calling once per round over 10 rounds
/// 5 ms apart, so that the upkeep thread refills the reserve of stripe blocks in between as a
/// service's traffic would let it.
fn memory(s: &Settings, out: &mut Out) {
    println!(
        "\nmemory per breaker (size_of::<Breaker>() = {} B, + heap_bytes() after n threads alive together called over 10 upkeep ticks)",
        std::mem::size_of::<Breaker>()
    );
    let configs: [(&str, Build); 4] = [
        ("default", default_breaker),
        ("stripes(pow2 N)", striped),
        ("consecutive_failures(5)", consecutive_5),
        ("count_window(100)", count_window_100),
    ];
    const ROUNDS: usize = 10;
    for (name, build) in configs {
        let mut line = format!("  {name:<26} stripes {:>2}:", build(s).stripes());
        for callers in [1usize, 16, 64] {
            // A fresh breaker for each count.
            let b = build(s);
            let round = std::sync::Barrier::new(callers + 1);
            std::thread::scope(|sc| {
                for _ in 0..callers {
                    sc.spawn(|| {
                        for _ in 0..ROUNDS {
                            hot_call(&b, true);
                            round.wait(); // the round's calls are made
                            round.wait(); // the upkeep has ticked
                        }
                    });
                }
                for _ in 0..ROUNDS {
                    round.wait();
                    std::thread::sleep(Duration::from_millis(5));
                    round.wait();
                }
            });
            let bytes = std::mem::size_of::<Breaker>() + b.heap_bytes();
            let _ = write!(line, "  {callers:>2} callers {bytes:>6} B");
            out.memory(name, callers, bytes);
        }
        println!("{line}");
    }
}

fn main() {
    let s = settings();
    // Kept for the whole run.
    let _upkeep = hotbreaker::start_upkeep(Duration::from_millis(1)).expect("quanta upkeep");
    println!(
        "hotbreaker scaling: {} CPUs (available_parallelism), CPU: {}",
        s.cpus,
        cpu_model()
    );
    println!(
        "threads {:?}, {} s per row, default stripes here {}, upkeep 1 ms",
        s.threads,
        s.secs,
        default_breaker(&s).stripes()
    );
    let mut out = Out {
        tsv: String::from(TSV_HEADER),
    };

    memory(&s, &mut out);
    println!();
    Out::header();
    let striped_name = format!("hotbreaker stripes({})", stripes_for(&s));
    hot_row(&s, &mut out, "hotbreaker default", default_breaker, NONE);
    hot_row(&s, &mut out, "hotbreaker default", default_breaker, ONE);
    hot_row(&s, &mut out, "hotbreaker default", default_breaker, TEN);
    hot_row(&s, &mut out, &striped_name, striped, NONE);
    hot_row(
        &s,
        &mut out,
        "hotbreaker consecutive(5)",
        consecutive_5,
        ONE,
    );
    hot_row(
        &s,
        &mut out,
        "hotbreaker consecutive(20)",
        consecutive_20,
        ONE,
    );
    hot_row(&s, &mut out, "hotbreaker throttle only", throttle_only, ONE);
    hot_row(
        &s,
        &mut out,
        "hotbreaker count_window(100)",
        count_window_100,
        ONE,
    );
    tower_row(&s, &mut out, NONE, false);
    tower_row(&s, &mut out, ONE, false);
    tower_row(&s, &mut out, NONE, true);
    tower_row(&s, &mut out, ONE, true);
    peer_row::<Failsafe>(&s, &mut out, NONE);
    peer_row::<Failsafe>(&s, &mut out, ONE);
    peer_row::<Recloser>(&s, &mut out, NONE);
    peer_row::<Recloser>(&s, &mut out, ONE);

    if s.long_calls > 0 {
        long_row(&s, &mut out);
    }

    if let Some(path) = env("SCALING_TSV") {
        if let Err(e) = std::fs::write(&path, &out.tsv) {
            eprintln!("SCALING_TSV: could not write {path}: {e}");
            std::process::exit(1);
        }
        println!("\nTSV written to {path}");
    }
}
