//! Shared writes per 1 000 calls: atomic writes to 128-byte lines that more than one thread
//! writes during the measured run, counted by the `--cfg hotbreaker_count_writes` shim of
//! `src/sync.rs` (every store, read-modify-write and compare-exchange, failed ones included).
//! A machine-independent measure of what the hot path costs in cache traffic: a line written by
//! one thread stays in that core's cache; a line two threads write moves between them.
//!
//! Empty in a normal build. Run it with `bash benches/shared_writes.sh`, which passes
//! `RUSTFLAGS="--cfg hotbreaker_count_writes"` and a target dir of its own.
//!
//! Each rule set runs at 0 %, 1 % and 10 % Failures on 1, 4 and 16 threads. Every thread fails
//! every 100th (10th) call, out of phase with the others (thread `i` is shifted by `7 i` calls).
//! The clock is a mock that never moves: the whole run falls in one bucket interval, so what is
//! counted is the per-call cost, without the once-per-bucket work (an evaluation per interval).
//! The breakers have 16 stripes, so each of the 16 threads owns one; an extra set of rows keeps
//! the default stripe count, where threads beyond it share stripes (a compare-and-swap per call,
//! by design).
//!
//! The guard: at 0 % Failures no rule set writes a shared line (but the count window, which is a
//! documented serialisation point); at 1 % Failures with owned stripes, at most
//! [`BOUND_AT_1_PERCENT`] shared writes per 1 000 calls.
#![cfg(all(hotbreaker_count_writes, not(hotbreaker_loom)))]

use std::fmt::Write as _;
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use hotbreaker::write_count::{self, Report};
use hotbreaker::{Breaker, Builder, State, Throttle};

/// Calls each thread makes before recording starts: its first call claims its stripe, its first
/// Failures meet the breaker's first evaluation.
const WARM_UP: u64 = 300;
/// Calls each thread makes while recording.
const CALLS: u64 = 20_000;
/// The most threads a run uses; the workers live for the whole test, so each keeps the stripe
/// slot it claimed on its first call.
const WORKERS: usize = 16;
const THREADS: [usize; 3] = [1, 4, 16];
/// Which calls fail.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pattern {
    Never,
    /// Every `n`-th call of each thread, thread `i` shifted by `7 i` calls: a thread's Failures
    /// never follow one another.
    Every(u64),
    /// Each call with probability `1 / n`, from a hash of the thread and the call (the same
    /// calls fail on every run): a thread fails twice in a row now and then, which is what makes
    /// the consecutive rule check.
    Random(u64),
}

const FAILURES: [(&str, Pattern); 4] = [
    ("0 %", Pattern::Never),
    ("1 %", Pattern::Every(100)),
    ("10 %", Pattern::Every(10)),
    ("1 % rnd", Pattern::Random(100)),
];

/// The most shared writes per 1 000 calls allowed at 1 % Failures with owned stripes. 10 Failures
/// per 1 000 calls: a shared write on every Failure would be 10, the design aims at well under
/// one per Failure (a consecutive check when a thread's local run reaches two, an evaluation when
/// its budget is spent). See the measured table in the report that comes with this test.
const BOUND_AT_1_PERCENT: f64 = 2.0;

/// The same at 1 % random Failures, where a thread now and then fails twice in a row and the
/// consecutive rule checks (`consecutive.rs`): a check reads every stripe and renews the
/// baseline (about 40 writes over 7 lines with 16 stripes) only when its bound is positive or
/// its thread failed three times in a row. Measured 0 at 1, 4 and 16 threads; held to the same
/// bound as the regular pattern.
const BOUND_AT_1_PERCENT_RANDOM: f64 = BOUND_AT_1_PERCENT;

struct RuleSet {
    name: &'static str,
    build: fn(Builder) -> Builder,
    /// A documented serialisation point: every call writes a shared line.
    serialises: bool,
}

const RULE_SETS: [RuleSet; 6] = [
    RuleSet {
        name: "default rules",
        build: |b| b,
        serialises: false,
    },
    RuleSet {
        name: "consecutive(5)",
        build: |b| b.consecutive_failures(5),
        serialises: false,
    },
    RuleSet {
        name: "failure_rate(0.5)",
        build: |b| b.failure_rate(0.5),
        serialises: false,
    },
    RuleSet {
        name: "slow_calls(1s, 0.5)",
        build: |b| b.slow_calls(Duration::from_secs(1), 0.5),
        serialises: false,
    },
    RuleSet {
        name: "throttle(sre)",
        build: |b| b.throttle(Throttle::sre()),
        serialises: false,
    },
    RuleSet {
        name: "count_window(100)",
        build: |b| b.count_window(100),
        serialises: true,
    },
];

/// One measured run, as the workers see it.
struct Run {
    breaker: Breaker,
    threads: usize,
    pattern: Pattern,
}

/// What a worker reports of its run.
#[derive(Default)]
struct Tally {
    rejected: u64,
    /// Failures right after a Failure of the same thread: each extends a local run, and the
    /// consecutive rule checks (`consecutive.rs`).
    repeats: u64,
}

fn fails(thread: usize, call: u64, pattern: Pattern) -> bool {
    match pattern {
        Pattern::Never => false,
        Pattern::Every(n) => (call + 7 * thread as u64).is_multiple_of(n),
        Pattern::Random(n) => splitmix64(((thread as u64) << 40) ^ call).is_multiple_of(n),
    }
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn calls(run: &Run, thread: usize, range: std::ops::Range<u64>, tally: &mut Tally) {
    for call in range {
        match run.breaker.try_acquire() {
            Ok(permit) if fails(thread, call, run.pattern) => {
                if call > 0 && fails(thread, call - 1, run.pattern) {
                    tally.repeats += 1;
                }
                permit.failure()
            }
            Ok(permit) => permit.success(),
            Err(_) => tally.rejected += 1,
        }
    }
}

/// Which assertions a row is held to.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Guard {
    /// No shared write at 0 % Failures, at most [`BOUND_AT_1_PERCENT`] at 1 %.
    Owned,
    /// A documented serialisation point, or threads beyond the owned stripes: reported only.
    Reported,
}

/// One case: its rules, their builder, the failure label and period, the threads.
struct Case {
    rules: String,
    builder: Builder,
    failures: &'static str,
    pattern: Pattern,
    threads: usize,
    guard: Guard,
}

struct Row {
    rules: String,
    guard: Guard,
    failures: &'static str,
    pattern: Pattern,
    threads: usize,
    calls: u64,
    report: Report,
    rejected: u64,
    repeats: u64,
    state: State,
}

impl Row {
    fn per_1000(&self, n: u64) -> f64 {
        n as f64 * 1_000.0 / self.calls as f64
    }
}

/// Runs every case on one set of long-lived workers.
fn measure(cases: Vec<Case>) -> Vec<Row> {
    let slot: Mutex<Option<Arc<Run>>> = Mutex::new(None);
    let tallies: Mutex<Vec<Tally>> = Mutex::new(Vec::new());
    // The workers and this thread: "run posted", "warmed up", "recording", "done".
    let barrier = Barrier::new(WORKERS + 1);
    let mut rows = Vec::new();
    std::thread::scope(|s| {
        for thread in 0..WORKERS {
            let (slot, tallies, barrier) = (&slot, &tallies, &barrier);
            s.spawn(move || {
                loop {
                    barrier.wait(); // run posted (or none: the end)
                    let Some(run) = slot.lock().unwrap().clone() else {
                        return;
                    };
                    let active = thread < run.threads;
                    let mut tally = Tally::default();
                    if active {
                        calls(&run, thread, 0..WARM_UP, &mut Tally::default());
                    }
                    barrier.wait(); // warmed up
                    barrier.wait(); // recording
                    if active {
                        calls(&run, thread, WARM_UP..WARM_UP + CALLS, &mut tally);
                        tallies.lock().unwrap().push(tally);
                    }
                    barrier.wait(); // done
                }
            });
        }
        for Case {
            rules,
            builder,
            failures,
            pattern,
            threads,
            guard,
        } in cases
        {
            let (clock, _mock) = hotbreaker::clock::Clock::mock();
            let breaker = builder.clock(clock).build().expect("valid rules");
            let run = Arc::new(Run {
                breaker,
                threads,
                pattern,
            });
            *slot.lock().unwrap() = Some(Arc::clone(&run));
            tallies.lock().unwrap().clear();
            barrier.wait(); // run posted
            barrier.wait(); // warmed up
            write_count::start();
            barrier.wait(); // recording
            barrier.wait(); // done
            let report = write_count::stop_and_report();
            let (rejected, repeats) = tallies
                .lock()
                .unwrap()
                .iter()
                .fold((0, 0), |(r, p), t| (r + t.rejected, p + t.repeats));
            rows.push(Row {
                rules,
                guard,
                failures,
                pattern,
                threads,
                calls: CALLS * threads as u64,
                report,
                rejected,
                repeats,
                state: run.breaker.state(),
            });
        }
        *slot.lock().unwrap() = None;
        barrier.wait(); // no run: the workers return
    });
    rows
}

fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    writeln!(
        out,
        "{:<36} {:>7} {:>7} | {:>11} {:>11} {:>9} {:>12} {:>11} {:>11} | {:>9} {:>8} {:>6}",
        "rules",
        "fail",
        "threads",
        "shared/1000",
        "writes/1000",
        "shr lines",
        "shr CAS-fail",
        "loads/1000",
        "shr ld/1000",
        "2nd fails",
        "rejected",
        "state"
    )
    .unwrap();
    for r in rows {
        let rep = &r.report;
        writeln!(
            out,
            "{:<36} {:>7} {:>7} | {:>11.3} {:>11.1} {:>9} {:>12} {:>11.1} {:>11.2} | {:>9} {:>8} {:>6?}",
            r.rules,
            r.failures,
            r.threads,
            r.per_1000(rep.shared_writes),
            r.per_1000(rep.writes),
            rep.shared_lines().count(),
            rep.shared_failed_cas,
            r.per_1000(rep.loads),
            r.per_1000(rep.shared_loads),
            r.repeats,
            r.rejected,
            r.state,
        )
        .unwrap();
    }
    out
}

/// The shared lines of a row, most written first, for a failure message.
fn detail(row: &Row) -> String {
    let mut lines: Vec<_> = row.report.shared_lines().collect();
    lines.sort_by_key(|l| std::cmp::Reverse(l.writes));
    let mut out = String::new();
    for l in lines.iter().take(8) {
        writeln!(out, "      {l}").unwrap();
    }
    out
}

#[test]
fn shared_writes_per_1000_calls() {
    let mut cases = Vec::new();
    for rules in &RULE_SETS {
        for (failures, pattern) in FAILURES {
            for threads in THREADS {
                let builder = (rules.build)(Breaker::builder().stripes(WORKERS as u32));
                cases.push(Case {
                    rules: format!("{}, 16 stripes", rules.name),
                    builder,
                    failures,
                    pattern,
                    threads,
                    guard: if rules.serialises {
                        Guard::Reported
                    } else {
                        Guard::Owned
                    },
                });
            }
        }
    }
    // The default stripe count follows the machine's CPUs (see `Builder`'s defaults), so these
    // rows differ from machine to machine: threads beyond the owned stripes record on shared
    // stripes. Reported, not asserted.
    for (failures, pattern) in FAILURES {
        cases.push(Case {
            rules: "default rules, default stripes".to_string(),
            builder: Breaker::builder(),
            failures,
            pattern,
            threads: WORKERS,
            guard: Guard::Reported,
        });
    }
    let rows = measure(cases);

    println!();
    println!(
        "shared writes per 1 000 calls ({CALLS} measured calls per thread after {WARM_UP} \
         warm-up calls; mock clock, frozen; a write = store, RMW or CAS, failed CAS included)"
    );
    print!("{}", table(&rows));
    if std::arch::is_x86_feature_detected!("avx") {
        println!("(128-bit loads here are vmovdqa: plain loads)");
    } else if cfg!(target_arch = "x86_64") {
        println!("(no AVX: 128-bit loads here are lock cmpxchg16b, writes to their lines)");
    }

    let mut violations = String::new();
    for row in &rows {
        let shared = row.per_1000(row.report.shared_writes);
        let broken = row.guard == Guard::Owned
            && match row.pattern {
                Pattern::Never => row.report.shared_writes != 0,
                Pattern::Every(100) => shared > BOUND_AT_1_PERCENT,
                Pattern::Random(100) => shared > BOUND_AT_1_PERCENT_RANDOM,
                _ => false,
            };
        let closed = row.state == State::Closed && row.rejected == 0;
        if broken || !closed {
            writeln!(
                violations,
                "  {} at {} Failures on {} threads: {shared:.3} shared writes per 1 000 calls, \
                 {} rejected, {:?}",
                row.rules, row.failures, row.threads, row.rejected, row.state
            )
            .unwrap();
            violations.push_str(&detail(row));
        }
    }
    assert!(
        violations.is_empty(),
        "over the guard (0 shared writes at 0 % Failures, at most {BOUND_AT_1_PERCENT} per 1 000 \
         calls at 1 %; the breaker must stay Closed and admit every call):\n{violations}"
    );
}

/// Rejections while Open: `threads` threads each make [`CALLS`] calls to a breaker opened for an
/// hour (after a warm-up call that claims their stripes). Returns the report and the rejections.
fn open_rejections(threads: usize, half_open: bool) -> (Report, u64) {
    let (clock, mock) = hotbreaker::clock::Clock::mock();
    let breaker = Breaker::builder()
        .consecutive_failures(1)
        .open_timeout(Duration::from_secs(3_600))
        .half_open_permits(1)
        .half_open_successes(1)
        .stripes(WORKERS as u32)
        .clock(clock)
        .build()
        .expect("valid rules");
    breaker.try_acquire().expect("Closed").failure();
    assert_eq!(breaker.state(), State::Open);
    // Half-open: one probe out, which the test keeps, so every other call is rejected.
    let _probe = half_open.then(|| {
        mock.increment(Duration::from_secs(3_600));
        breaker.try_acquire().expect("the probe")
    });
    let barrier = Barrier::new(threads + 1);
    let rejected = std::sync::atomic::AtomicU64::new(0);
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    assert!(breaker.try_acquire().is_err(), "warm-up call rejected");
                    barrier.wait(); // warmed up
                    barrier.wait(); // recording
                    let n = (0..CALLS)
                        .filter(|_| breaker.try_acquire().is_err())
                        .count();
                    rejected.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                    barrier.wait(); // done
                })
            })
            .collect();
        barrier.wait();
        write_count::start();
        barrier.wait();
        barrier.wait();
        // Joined, not only left to the scope: a join waits for the thread's exit, which gives
        // its thread slot back (the end of a scope does not wait for that), so the next call's
        // workers find the slots below `WORKERS` free and write owned stripes.
        for worker in workers {
            worker.join().unwrap();
        }
    });
    (write_count::stop_and_report(), rejected.into_inner())
}

/// A rejection while Open writes only its own thread's rejected count and loads no 128-bit
/// word: one 64-bit load of the compact deadline answers it (on x86-64 without AVX a 128-bit
/// load is a locked `cmpxchg16b`, a write to the line every caller reads). While HalfOpen with
/// its probes out, a rejection loads the 128-bit state word once: reported, and held to that.
#[test]
fn rejections_write_no_shared_line_and_open_ones_load_no_128_bit_word() {
    for threads in THREADS {
        let (open, rejected) = open_rejections(threads, false);
        let calls = CALLS * threads as u64;
        println!(
            "Open, {threads} threads: {rejected} of {calls} rejected, {} shared writes, {} \
             128-bit loads",
            open.shared_writes, open.wide_loads
        );
        assert_eq!(rejected, calls);
        assert_eq!(open.shared_writes, 0, "Open, {threads} threads");
        assert_eq!(open.wide_loads, 0, "Open, {threads} threads");

        let (half_open, rejected) = open_rejections(threads, true);
        println!(
            "HalfOpen, {threads} threads: {rejected} of {calls} rejected, {} shared writes, {} \
             128-bit loads",
            half_open.shared_writes, half_open.wide_loads
        );
        assert_eq!(rejected, calls);
        assert_eq!(half_open.shared_writes, 0, "HalfOpen, {threads} threads");
        assert!(
            half_open.wide_loads <= calls,
            "HalfOpen, {threads} threads: {} 128-bit loads",
            half_open.wide_loads
        );
    }
}
