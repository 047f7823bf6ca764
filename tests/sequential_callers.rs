//! Random *sequential* schedules spread over several threads: each step runs on one of 2 to 5
//! worker threads, handed over by channels, so no two calls are ever in flight at once, yet
//! each thread records on its own stripe. What must hold:
//! - `consecutive_failures(k)` opens (cause ConsecutiveFailures) only once at least `k`
//!   Failures of the current Closed generation were counted in a row (late outcomes and probes
//!   change no run), and is open by the time the run reaches `3N + k`;
//! - a failure rate over a count window trips exactly at the Failure that brings the window
//!   (the last n outcomes of the generation) to the threshold with at least `minimum_calls`
//!   calls.
//!
//! `SEQUENTIAL_SEEDS` (default 300) sequences; `SEQUENTIAL_LATE=0` leaves late Successes (and
//! late probes) out.

use std::collections::VecDeque;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hotbreaker::{Breaker, Cause, Outcome, Permit, State};

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) % n
    }
}

enum Cmd {
    /// Acquire and record at once; replies (admitted, permit state, permit generation).
    Call(Outcome),
    /// Acquire and hold.
    Hold,
    /// Record the i-th held permit (i % len).
    Record(usize, Outcome),
    /// Peek at held permit i: (state, generation).
    Peek(usize),
    Quit,
}

type Reply = Option<(State, u64)>;

#[allow(dead_code)] // printed through Debug
#[derive(Clone, Copy, Debug)]
struct Cfg {
    threads: usize,
    k: Option<u32>,
    rate: Option<(f64, u32)>,
    count: Option<u32>,
    permits: u32,
    successes: u32,
}

fn one(seed: u64, allow_late: bool) -> Result<(), String> {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let threads = 2 + rng.below(4) as usize;
    let k = (rng.below(3) != 0).then(|| 2 + rng.below(5) as u32);
    let count = (rng.below(2) == 0).then(|| 4 + rng.below(20) as u32);
    let rate = (count.is_some() && (k.is_none() || rng.below(2) == 0)).then(|| {
        let r = [0.3, 0.5, 0.7, 1.0][rng.below(4) as usize];
        (r, 1 + rng.below(u64::from(count.unwrap())) as u32)
    });
    let k = if k.is_none() && rate.is_none() {
        Some(3)
    } else {
        k
    };
    let cfg = Cfg {
        threads,
        k,
        rate,
        count,
        permits: 1 + rng.below(3) as u32,
        successes: 1 + rng.below(2) as u32,
    };
    let (clock, mock) = quanta::Clock::mock();
    let heard: Arc<Mutex<Vec<(State, State, Cause)>>> = Arc::default();
    let sink = Arc::clone(&heard);
    let mut b = Breaker::builder()
        .clock(clock)
        .stripes(16)
        .open_timeout(Duration::from_secs(1))
        .half_open_permits(cfg.permits)
        .half_open_successes(cfg.successes.min(cfg.permits))
        .on_transition(move |t| sink.lock().unwrap().push((t.from, t.to, t.cause)));
    if let Some(k) = cfg.k {
        b = b.consecutive_failures(k);
    }
    if let Some(n) = cfg.count {
        b = b.count_window(n);
    }
    if let Some((r, m)) = cfg.rate {
        b = b.failure_rate(r).minimum_calls(m);
    }
    let b = b.build().map_err(|e| format!("{cfg:?}: {e}"))?;
    let fail_p: Vec<u64> = (0..threads)
        .map(|_| [3, 50, 90, 100][rng.below(4) as usize])
        .collect();

    std::thread::scope(|s| {
        let mut tx = Vec::new();
        let (rtx, rrx) = mpsc::channel::<Reply>();
        for _ in 0..threads {
            let (ctx, crx) = mpsc::channel::<Cmd>();
            tx.push(ctx);
            let (b, rtx) = (&b, rtx.clone());
            s.spawn(move || {
                let mut held: Vec<Permit<'_>> = Vec::new();
                for cmd in crx {
                    let reply = match cmd {
                        Cmd::Call(o) => b.try_acquire().ok().map(|p| {
                            let r = (p.state(), p.generation());
                            p.record(o);
                            r
                        }),
                        Cmd::Hold => b.try_acquire().ok().map(|p| {
                            let r = (p.state(), p.generation());
                            held.push(p);
                            r
                        }),
                        Cmd::Peek(i) => (!held.is_empty()).then(|| {
                            let p = &held[i % held.len()];
                            (p.state(), p.generation())
                        }),
                        Cmd::Record(i, o) => (!held.is_empty()).then(|| {
                            let p = held.remove(i % held.len());
                            let r = (p.state(), p.generation());
                            p.record(o);
                            r
                        }),
                        Cmd::Quit => break,
                    };
                    rtx.send(reply).unwrap();
                }
            });
        }
        let ask = |t: usize, c: Cmd| {
            tx[t].send(c).unwrap();
            rrx.recv().unwrap()
        };
        let result = (|| {
            // Oracle state.
            let mut cur_gen = b.metrics().generation;
            let mut run = 0u64;
            let mut window: VecDeque<bool> = VecDeque::new();
            let mut log: Vec<String> = Vec::new();
            for step in 0..600 {
                let before = b.metrics();
                let t = rng.below(threads as u64) as usize;
                let op = rng.below(100);
                let outcome = if rng.below(100) < fail_p[t] {
                    Outcome::Failure
                } else if rng.below(20) == 0 {
                    Outcome::Ignored
                } else {
                    Outcome::Success
                };
                // What the op records, as (state, generation of the permit), if anything.
                let mut recorded: Option<(State, u64, Outcome)> = None;
                let desc;
                if op < 80 {
                    desc = format!("T{t} call {outcome:?}");
                    if let Some((st, g)) = ask(t, Cmd::Call(outcome)) {
                        recorded = Some((st, g, outcome));
                    }
                } else if op < 88 {
                    desc = format!("T{t} hold");
                    ask(t, Cmd::Hold);
                } else if op < 96 {
                    let i = rng.below(8) as usize;
                    let peek = ask(t, Cmd::Peek(i));
                    let late =
                        peek.is_some_and(|(st, g)| g != before.generation || st != State::Closed);
                    let outcome = if late && !allow_late && outcome == Outcome::Success {
                        Outcome::Ignored
                    } else {
                        outcome
                    };
                    desc = format!("T{t} record held {peek:?} {outcome:?}");
                    if let Some((st, g)) = ask(t, Cmd::Record(i, outcome)) {
                        recorded = Some((st, g, outcome));
                    }
                } else if op < 98 {
                    desc = "advance 2 s".into();
                    mock.increment(Duration::from_secs(2));
                } else {
                    desc = "reset".into();
                    b.reset();
                }
                log.push(format!(
                    "{step}: {desc} (state before {:?} g{})",
                    before.state, before.generation
                ));
                let after = b.metrics();
                let transitions: Vec<_> = std::mem::take(&mut *heard.lock().unwrap());
                // Oracle update for an outcome of the generation that was current and Closed.
                let counted = recorded.is_some_and(|(st, g, _)| {
                    st == State::Closed
                        && g == cur_gen
                        && before.state == State::Closed
                        && before.generation == cur_gen
                });
                if counted {
                    match recorded.unwrap().2 {
                        Outcome::Failure => {
                            run += 1;
                            window.push_back(true);
                        }
                        Outcome::Success => {
                            run = 0;
                            window.push_back(false);
                        }
                        _ => {}
                    }
                    if let Some(n) = cfg.count {
                        while window.len() > n as usize {
                            window.pop_front();
                        }
                    }
                }
                let rate_holds = cfg.rate.is_some_and(|(r, m)| {
                    let calls = window.len() as u64;
                    let f = window.iter().filter(|&&x| x).count() as u64;
                    calls >= u64::from(m) && calls > 0 && (f as f64) >= r * calls as f64 - 1e-9
                });
                let failure_counted = counted && recorded.unwrap().2 == Outcome::Failure;
                for &(from, to, cause) in &transitions {
                    if from == State::Closed && to == State::Open {
                        match cause {
                            Cause::ConsecutiveFailures if run < u64::from(cfg.k.unwrap()) => {
                                return Err(format!(
                                    "false consecutive trip: true run {run} < k {}\n{}",
                                    cfg.k.unwrap(),
                                    log[log.len().saturating_sub(30)..].join("\n")
                                ));
                            }
                            Cause::FailureRate if !(failure_counted && rate_holds) => {
                                return Err(format!(
                                    "failure-rate trip with the window {window:?} (rule {:?})\n{}",
                                    cfg.rate,
                                    log[log.len().saturating_sub(30)..].join("\n")
                                ));
                            }
                            _ => {}
                        }
                    }
                }
                if after.state == State::Closed
                    && before.state == State::Closed
                    && after.generation == cur_gen
                {
                    if failure_counted && rate_holds {
                        return Err(format!(
                            "missed failure-rate trip: window {window:?} rule {:?}\n{}",
                            cfg.rate,
                            log[log.len().saturating_sub(30)..].join("\n")
                        ));
                    }
                    if let Some(k) = cfg.k {
                        let bound = 3 * threads as u64 + u64::from(k);
                        if run >= bound {
                            return Err(format!(
                                "missed consecutive trip: true run {run} >= 3N + k = {bound}\n{}",
                                log[log.len().saturating_sub(40)..].join("\n")
                            ));
                        }
                    }
                }
                if after.generation != cur_gen {
                    cur_gen = after.generation;
                    run = 0;
                    window.clear();
                }
            }
            Ok(())
        })();
        for t in &tx {
            let _ = t.send(Cmd::Quit);
        }
        result.map_err(|e| format!("seed {seed} {cfg:?} fail% {fail_p:?}: {e}"))
    })
}

fn sweep(allow_late: bool) {
    let seeds: u64 = std::env::var("SEQUENTIAL_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let first: u64 = std::env::var("ZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut failures = Vec::new();
    for seed in first..first + seeds {
        if let Err(e) = one(seed, allow_late) {
            failures.push(e);
        }
    }
    if !failures.is_empty() {
        let heads: Vec<_> = failures
            .iter()
            .map(|e| e.lines().next().unwrap().to_string())
            .collect();
        panic!(
            "{} of {seeds} failed:\n{}\n\nfirst in full:\n{}",
            failures.len(),
            heads.join("\n"),
            failures[0]
        );
    }
}

#[test]
fn sequential_schedules_with_late_outcomes() {
    sweep(true);
}

#[test]
fn sequential_schedules_without_late_successes() {
    sweep(false);
}
