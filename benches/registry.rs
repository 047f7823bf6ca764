//! The registry at the scale of a proxy or gateway (a breaker per host, tenant or route):
//! `cargo bench -p hotbreaker-benches --bench registry`. Prints one line per measurement.
//!
//! - `get_or_create` of 100 000 new names, from 1 thread and from 8 threads (12 500 each);
//! - `get` of an existing name among 1 000 (visited in a scrambled order) and among 100 000;
//! - loading a 20 000-name registry file (`Registry::from_file`);
//! - `health` with 10 000 critical names over 100 000 breakers (idle, and each with a call in
//!   its window);
//! - bytes per breaker at 100 000 breakers, for the default stripes, 8 stripes and 1 stripe:
//!   as `Registry::heap_bytes` counts them, and as the process's resident memory grew (Linux
//!   `VmRSS`; measured in a child process of its own, each registry kept alive so that no
//!   freed memory is reused and the other measurements run on an untouched heap).
//!
//! Wall-clock totals of one run each (they are one-off operations); `get` is the median of
//! 7 runs of 2 million lookups.

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

use hotbreaker::{Config, Registry};

const NAMES: usize = 100_000;
const THREADS: usize = 8;
const FILE_NAMES: usize = 20_000;
const CRITICAL: usize = 10_000;

fn name(i: usize) -> String {
    format!("upstream-{i:06}.example.internal")
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed())
}

fn report(what: &str, took: Duration) {
    println!("{what:<58} {:>10.1} ms", ms(took));
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn create_one_thread() -> Registry {
    let r = Registry::default();
    let names: Vec<String> = (0..NAMES).map(name).collect();
    let ((), took) = timed(|| {
        for n in &names {
            black_box(r.get_or_create(n));
        }
    });
    assert_eq!(r.len(), NAMES);
    report("get_or_create, 100 000 new names, 1 thread", took);
    r
}

fn create_threads() {
    let r = Registry::default();
    let names: Vec<String> = (0..NAMES).map(name).collect();
    let start = Barrier::new(THREADS + 1);
    let took = std::thread::scope(|s| {
        for chunk in names.chunks(NAMES / THREADS) {
            let (r, start) = (&r, &start);
            s.spawn(move || {
                start.wait();
                for n in chunk {
                    black_box(r.get_or_create(n));
                }
            });
        }
        start.wait();
        // The scope joins every thread before it returns: timed from here until then.
        Instant::now()
    });
    let took = took.elapsed();
    assert_eq!(r.len(), NAMES);
    report("get_or_create, 100 000 new names, 8 threads", took);
}

/// Median nanoseconds per `get` over `names`, visited with a stride coprime with their count.
fn get_ns(r: &Registry, names: &[String]) -> f64 {
    const LOOKUPS: usize = 2_000_000;
    let stride = 617;
    let mut runs: Vec<f64> = (0..7)
        .map(|_| {
            let mut i = 0;
            let start = Instant::now();
            for _ in 0..LOOKUPS {
                i = (i + stride) % names.len();
                black_box(r.get(black_box(&names[i])).expect("exists"));
            }
            start.elapsed().as_nanos() as f64 / LOOKUPS as f64
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    runs[runs.len() / 2]
}

fn lookups(big: &Registry) {
    let small = Registry::default();
    let names: Vec<String> = (0..1_000).map(|i| format!("dependency-{i:04}")).collect();
    for n in &names {
        small.get_or_create(n);
    }
    println!(
        "{:<58} {:>10.1} ns",
        "get, existing name among 1 000",
        get_ns(&small, &names)
    );
    let names: Vec<String> = (0..NAMES).map(name).collect();
    println!(
        "{:<58} {:>10.1} ns",
        "get, existing name among 100 000",
        get_ns(big, &names)
    );
}

fn load_file() {
    let mut text = String::from("[default]\nconsecutive_failures = 5\nopen_timeout = \"30s\"\n");
    for i in 0..FILE_NAMES {
        text.push_str(&format!(
            "\n[breakers.\"{}\"]\nfailure_rate = 0.{}\nminimum_calls = {}\n",
            name(i),
            1 + i % 9,
            10 + i % 90
        ));
    }
    let dir = std::env::temp_dir().join(format!("hotbreaker-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("breakers.toml");
    std::fs::write(&path, &text).unwrap();
    let (r, took) = timed(|| Registry::from_file(&path).unwrap());
    report("load a 20 000-name registry file", took);
    // Reloading onto 20 000 live breakers reconfigures each once.
    for i in 0..FILE_NAMES {
        r.get_or_create(&name(i));
    }
    let ((), took) = timed(|| r.load_file(&path).unwrap());
    report(
        "reload it onto 20 000 live breakers (reconfigure each)",
        took,
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `health` over 100 000 breakers that have lived longer than their window (a mock clock moved
/// a minute on), first idle, then with a call each in their window.
fn health() {
    let (clock, mock) = quanta::Clock::mock();
    let r = Registry::default().clock(clock);
    let critical: Vec<String> = (0..CRITICAL)
        .map(|i| name(i * (NAMES / CRITICAL)))
        .collect();
    for name in &critical {
        let config = hotbreaker::Config {
            critical: Some(true),
            ..hotbreaker::Config::default()
        };
        r.set_config(name, config).expect("valid");
    }
    for i in 0..NAMES {
        r.get_or_create(&name(i));
    }
    mock.increment(Duration::from_secs(60));
    let critical: Vec<&str> = critical.iter().map(String::as_str).collect();
    let (h, took) = timed(|| r.health());
    assert_eq!(h.breakers.len(), NAMES);
    assert_eq!(h.breakers.iter().filter(|b| b.critical).count(), CRITICAL);
    assert!(h.breakers.iter().all(|b| b.calls_in_window == 0));
    report(
        "health, 10 000 critical names over 100 000 idle breakers",
        took,
    );
    let all = r.breakers();
    for (_, b) in &all {
        b.try_acquire().expect("closed").success();
    }
    let (h, took) = timed(|| r.health());
    assert!(h.breakers.iter().all(|b| b.calls_in_window == 1));
    report("  the same, each breaker with a call in its window", took);
    // For comparison: each breaker's full metrics (window and lifetime totals), in name order.
    let ((), took) = timed(|| {
        for (_, b) in &all {
            black_box(b.metrics());
        }
    });
    report("  Breaker::metrics() of each breaker, one thread", took);
    let (ready, took) = timed(|| r.ready());
    assert!(ready);
    report("ready, 10 000 critical breakers among 100 000", took);
    let (ready, took) = timed(|| r.ready_for(&critical));
    assert_eq!(ready, Ok(true));
    report("ready_for, 10 000 names among 100 000 breakers", took);
}

/// The process's resident memory in bytes (`VmRSS` in `/proc/self/status`; 0 elsewhere).
fn resident_bytes() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse::<usize>().ok()
        })
        .map_or(0, |kib| kib * 1024)
}

/// Run in a child process (see `main`): returns the registries, kept until it exits.
fn memory() -> Vec<Registry> {
    let mut kept = Vec::new();
    for (label, stripes) in [
        ("default stripes", None),
        ("8 stripes", Some(8)),
        ("1 stripe", Some(1)),
    ] {
        let r = Registry::new(Config {
            stripes,
            ..Config::default()
        })
        .unwrap();
        let names: Vec<String> = (0..NAMES).map(name).collect();
        let before = resident_bytes();
        for n in &names {
            r.get_or_create(n);
        }
        let rss = resident_bytes().saturating_sub(before) / NAMES;
        let per = r.heap_bytes() / r.len();
        let here = r.get(&name(0)).unwrap().stripes();
        println!(
            "{:<58} {per:>10} bytes per breaker by heap_bytes(), {rss} by RSS ({here} stripe(s) here)",
            format!("memory, 100 000 breakers, {label}")
        );
        kept.push(r);
    }
    kept
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported.
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    if std::env::var_os(MEMORY_CHILD).is_some() {
        let _kept = memory();
        return;
    }
    println!("registry at scale, {cpus} CPUs");
    let big = create_one_thread();
    create_threads();
    lookups(&big);
    drop(big);
    health();
    load_file();
    // Memory in a fresh process: RSS growth is only honest on a heap that has freed nothing.
    let status = std::process::Command::new(std::env::current_exe().expect("this binary"))
        .env(MEMORY_CHILD, "1")
        .status()
        .expect("the memory measurement");
    assert!(status.success(), "the memory measurement failed");
}

/// Set in the child process that measures memory.
const MEMORY_CHILD: &str = "HOTBREAKER_REGISTRY_BENCH_MEMORY";
