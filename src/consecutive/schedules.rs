//! The rule against a serial log of calls from many logical threads: the log *is* the order in
//! which outcomes are counted, so the true run is known at every step, and every interleaving a
//! seeded scheduler picks can be replayed. These are the schedules a 2-core machine rarely
//! produces and a 64-core one produces all the time.

use std::cell::{Cell, RefCell};

use super::*;

/// A small deterministic generator (xorshift64*), so that a failing seed replays.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) % n
    }
}

/// The design this replaced, as a pure model: a Failure lengthened a shared run at once; a
/// Success ended it only later (after its own count, a look at a hint, a contended swap),
/// in an `End` step of its own.
#[derive(Default)]
struct SharedRun {
    run: u64,
}

#[derive(Clone, Copy, Debug)]
enum Step {
    /// Thread `0` counts an outcome (true: a Failure).
    Count(usize, bool),
    /// An earlier Success ends the shared run (the replaced design only).
    End,
}

/// The check as the breaker makes it: the thread's local run after its Failure, then (from
/// two on) the baselines over every stripe.
fn check(cell: &Baselines, e: &[BaselineEntry], stripes: &[RunView], me: usize) -> Option<u64> {
    (stripes[me].run >= 2)
        .then(|| cell.check(0, 9, |i| stripes[i], |i| e.get(i), || (0, 0), || usize::MAX))
}

/// Item by item: four threads, one succeeding between the Failures of another. In the order
/// the outcomes are counted there is never more than one Failure in a row, yet the replaced
/// design reached 3 (its Successes had not ended the run yet); the local runs never do.
#[test]
fn a_serial_log_that_fooled_the_shared_run_does_not_fool_the_local_runs() {
    use Step::{Count, End};
    let log = [
        Count(0, true),
        Count(3, false),
        Count(1, true),
        Count(3, false),
        Count(0, true), // thread 0's second in a row: a check
        Count(3, false),
        Count(0, true), // its third: another
        End,
        Count(3, false),
        Count(0, true),
    ];
    let k = 3;
    let (mut old, mut old_trip) = (SharedRun::default(), None);
    let cell = Baselines::new(4);
    let e = entries(4);
    let mut stripes = [RunView::default(); 4];
    let (mut true_run, mut longest, mut new_trip) = (0u64, 0u64, None);
    for (i, step) in log.iter().enumerate() {
        match *step {
            Count(t, failure) => {
                if failure {
                    true_run += 1;
                    old.run += 1;
                    if old.run >= k && old_trip.is_none() {
                        old_trip = Some(i);
                    }
                    stripes[t].run += 1;
                    if check(&cell, &e, &stripes, t).is_some_and(|run| run >= k) {
                        new_trip.get_or_insert(i);
                    }
                } else {
                    true_run = 0;
                    stripes[t].run = 0;
                    stripes[t].successes += 1;
                }
                longest = longest.max(true_run);
            }
            End => old.run = 0,
        }
    }
    assert_eq!(longest, 1, "no two Failures in a row were ever counted");
    assert_eq!(
        old_trip,
        Some(4),
        "the replaced design tripped (the false trip)"
    );
    assert_eq!(new_trip, None, "the local runs did not");
}

struct Outcome {
    /// The most Failures counted in a row at the moment a check said it could trip.
    tripped_at_true_run: Option<u64>,
    /// Failures counted since the last Success when the check tripped.
    outage_failures: Option<u64>,
    /// How many checks ran.
    checks: u64,
}

/// `threads` logical threads, each making calls one after another; a call counts its
/// outcome in one step and, for a Failure that extends its thread's local run, checks in a
/// later step (other threads' steps may come in between, as on real cores). A seeded
/// scheduler picks which thread moves. Calls fail with probability `percent` / 100 until
/// step `outage_from`, and always after it.
fn run(seed: u64, threads: usize, percent: u64, k: u64, steps: u64, outage_from: u64) -> Outcome {
    run_meddled(seed, threads, percent, k, steps, outage_from, 0)
}

/// [`run`], where a check's scan is not one step: before it reads a stripe, with probability
/// `meddle` / 100, other threads (not the checking one, nor one with a check of its own to
/// make) count one to three outcomes. The bound must stay within the longest run of Failures
/// counted in a row at some moment between the check's start and its end (the moment a trip
/// would take effect, as a lock-based breaker's would).
fn run_meddled(
    seed: u64,
    threads: usize,
    percent: u64,
    k: u64,
    steps: u64,
    outage_from: u64,
    meddle: u64,
) -> Outcome {
    let rng = RefCell::new(Rng(seed | 1));
    let cell = Baselines::new(threads);
    let e = entries(threads);
    let stripes = RefCell::new(vec![RunView::default(); threads]);
    let pending = RefCell::new(vec![false; threads]); // a check to make before the next call
    let (true_run, step) = (Cell::new(0u64), Cell::new(0u64));
    let mut checks = 0u64;
    // Thread `t` counts one outcome at the current step.
    let count = |t: usize| {
        let now = step.get();
        let failure = now >= outage_from || rng.borrow_mut().below(100) < percent;
        let mut stripes = stripes.borrow_mut();
        let s = &mut stripes[t];
        if failure {
            true_run.set(true_run.get() + 1);
            if s.run == 0 {
                // The logical clock, one tick per step, is both the real and the recent time.
                (s.run_start, s.run_start_at) = (now, now);
            }
            (s.last_failure, s.last_failure_at) = (now, now);
            s.run += 1;
            pending.borrow_mut()[t] = s.run >= 2;
        } else {
            true_run.set(0);
            s.run = 0;
            s.successes += 1;
            s.last_success_at = now;
        }
        step.set(now + 1);
    };
    while step.get() < steps {
        let t = rng.borrow_mut().below(threads as u64) as usize;
        if !pending.borrow()[t] {
            count(t);
            continue;
        }
        pending.borrow_mut()[t] = false;
        checks += 1;
        let peak = Cell::new(true_run.get());
        let view = |i: usize| {
            if meddle > 0 && rng.borrow_mut().below(100) < meddle {
                let more = rng.borrow_mut().below(3);
                for _ in 0..=more {
                    let other = rng.borrow_mut().below(threads as u64) as usize;
                    if other != t && !pending.borrow()[other] {
                        count(other);
                        peak.set(peak.get().max(true_run.get()));
                    }
                }
            }
            stripes.borrow()[i]
        };
        let local = stripes.borrow()[t].run;
        let floor = cell.check(
            0,
            local,
            view,
            |i| e.get(i),
            || (step.get(), step.get()),
            || usize::MAX,
        );
        let longest = peak.get().max(true_run.get());
        assert!(
            floor <= longest,
            "seed {seed}: bound {floor} above the longest run {longest} at step {}",
            step.get()
        );
        if floor >= k {
            return Outcome {
                tripped_at_true_run: Some(longest),
                outage_failures: (step.get() >= outage_from).then_some(longest),
                checks,
            };
        }
        step.set(step.get() + 1);
    }
    Outcome {
        tripped_at_true_run: None,
        outage_failures: None,
        checks,
    }
}

/// Other threads count outcomes while a check scans: a Failure counted on a stripe already
/// read may come before a Success counted on a stripe read later. Whatever the interleaving,
/// the bound stays within the run (a renewal takes the runs of its second look, see
/// `consecutive.rs`), and at 1 % Failures nothing trips.
#[test]
fn the_bound_never_exceeds_the_true_run_while_other_threads_count_during_the_scan() {
    for seed in 1..=40u64 {
        for threads in [3usize, 4, 16, 64] {
            for percent in [10u64, 50, 90] {
                let k = 2 + seed % 4;
                let o = run_meddled(seed, threads, percent, k, 20_000, u64::MAX, 30);
                if let Some(true_run) = o.tripped_at_true_run {
                    assert!(true_run >= k);
                }
            }
        }
    }
    for seed in 1..=5u64 {
        for threads in [4usize, 16, 64] {
            let o = run_meddled(seed, threads, 1, 5, 200_000, u64::MAX, 30);
            assert!(
                o.tripped_at_true_run.is_none(),
                "seed {seed}, {threads} threads"
            );
            assert!(o.checks > 0, "checks ran: the bound was exercised");
        }
    }
}

/// Whatever the interleaving, a check's bound never exceeds the run of Failures counted
/// since the last counted Success: so no trip without a true run of `k`. At 1 % Failures
/// over 4 to 64 threads, no trip at all in 400 000 steps per seed.
#[test]
fn the_bound_never_exceeds_the_true_run_under_any_schedule() {
    for seed in 1..=40u64 {
        for threads in [2usize, 4, 16, 64] {
            for percent in [1u64, 10, 50, 90] {
                let k = 2 + seed % 4;
                let o = run(seed, threads, percent, k, 40_000, u64::MAX);
                if let Some(true_run) = o.tripped_at_true_run {
                    assert!(true_run >= k);
                }
            }
        }
    }
    for seed in 1..=5u64 {
        for threads in [4usize, 16, 64] {
            let o = run(seed, threads, 1, 5, 400_000, u64::MAX);
            assert!(
                o.tripped_at_true_run.is_none(),
                "seed {seed}, {threads} threads"
            );
            assert!(o.checks > 0, "checks ran: the bound was exercised");
        }
    }
}

/// One call at a time, each on the next of `threads` threads in turn (an async runtime's
/// workers taking turns), the clock moving on with every call: after every thread succeeded,
/// every call fails. The runs' start and latest Failure times order the threads' Failures
/// after their Successes: the rule opens by the `k + threads − 1`-th Failure (measured: at
/// exactly that one).
#[test]
fn calls_taking_turns_on_threads_open_by_k_plus_threads_minus_one() {
    for threads in 2..=4usize {
        for k in 2..=7u64 {
            let cell = Baselines::new(threads);
            let e = entries(threads);
            let mut stripes = vec![RunView::default(); threads];
            let mut clock = 1u64;
            for call in 0..3 * threads {
                clock += 1;
                stripes[call % threads].successes += 1;
            }
            let mut opened_at = None;
            for failure in 1..=3 * k {
                clock += 1;
                let t = (failure as usize) % threads;
                let s = &mut stripes[t];
                if s.run == 0 {
                    s.run_start = clock;
                }
                s.last_failure = clock;
                s.run += 1;
                if s.run >= 2 {
                    let local = s.run;
                    let now = clock;
                    let bound = cell.check(
                        0,
                        local,
                        |i| stripes[i],
                        |i| e.get(i),
                        || (now, now),
                        || usize::MAX,
                    );
                    assert!(bound <= failure, "bound {bound} above the run {failure}");
                    if bound >= k {
                        opened_at = Some(failure);
                        break;
                    }
                }
            }
            let at = opened_at.expect("the rule opened");
            let bound = k + threads as u64 - 1;
            assert!(
                at <= bound,
                "{threads} threads, k {k}: opened at Failure {at} (bound {bound})"
            );
        }
    }
}

/// An outage: from some step on every call fails. The rule opens, and by the time it does
/// at most `3 × threads + k` Failures were counted since the last Success (each thread
/// counts at most three before the first renewal, see `docs/internals.md`, "Design notes",
/// `consecutive.rs`, "How late a real outage opens"); with one thread,
/// exactly `k`.
#[test]
fn an_outage_opens_within_the_stated_bound() {
    let mut worst = [0u64; 4];
    for seed in 1..=200u64 {
        for (i, threads) in [1usize, 4, 16, 64].into_iter().enumerate() {
            let k = 2 + seed % 5;
            let o = run(seed, threads, 1, k, 2_000_000, 5_000);
            let Some(failures) = o.outage_failures else {
                // A true run of k at 1 % before the outage (rare with k = 2): legitimate.
                assert!(
                    o.tripped_at_true_run.is_some_and(|r| r >= k),
                    "no trip at all"
                );
                continue;
            };
            let bound = 3 * threads as u64 + k;
            assert!(
                failures <= bound,
                "seed {seed}: {threads} threads, k {k}: {failures} Failures (bound {bound})"
            );
            if threads == 1 {
                assert_eq!(failures, k, "one thread: exactly at the k-th Failure");
            }
            worst[i] = worst[i].max(failures.saturating_sub(k));
        }
    }
    println!("worst Failures beyond k, for 1, 4, 16, 64 threads: {worst:?}");
}

/// An outage whose Failures read a later recent time than every Success before it (calls that
/// last longer than the upkeep's tick, or an outage past its first tick), in any order of the
/// threads, each Failure checking at once as the breaker does: the rule opens at the first
/// check once `k` Failures were counted, which is at the `k`-th Failure if its thread had
/// failed before in the outage, else at the next Failure of a thread that had: by the
/// `k + threads − 1`-th. Without the stamps (the smallest-run bound and the runs' starts
/// alone), the same schedules open later.
#[test]
fn an_outage_stamped_after_the_last_success_opens_by_k_plus_threads_minus_one() {
    let (mut exactly_k, mut later_without) = (0, 0);
    for seed in 1..=300u64 {
        let mut rng = Rng(seed | 1);
        let threads = 2 + rng.below(15) as usize;
        let k = 2 + rng.below(8);
        let opened = |stamped: bool| {
            let cell = Baselines::new(threads);
            let e = entries(threads);
            let mut stripes = vec![RunView::default(); threads];
            let mut rng = Rng(seed | 1);
            // Every thread succeeds a few times, in random order: the recent time ticks by one
            // between calls (the real clock stands still, so the runs' starts order nothing).
            let mut tick = 1u64;
            for _ in 0..4 * threads {
                let s = &mut stripes[rng.below(threads as u64) as usize];
                s.successes += 1;
                s.last_success_at = if stamped { tick } else { 0 };
                tick += 1;
            }
            for failure in 1..=k + 3 * threads as u64 {
                tick += 1;
                let t = rng.below(threads as u64) as usize;
                let s = &mut stripes[t];
                if s.run == 0 {
                    s.run_start_at = if stamped { tick } else { 0 };
                }
                s.last_failure_at = if stamped { tick } else { 0 };
                s.run += 1;
                if s.run >= 2 {
                    let local = s.run;
                    let at = tick;
                    let bound = cell.check(
                        0,
                        local,
                        |i| stripes[i],
                        |i| e.get(i),
                        || (0, at),
                        || usize::MAX,
                    );
                    assert!(bound <= failure, "bound {bound} above the run {failure}");
                    if bound >= k {
                        return failure;
                    }
                }
            }
            u64::MAX
        };
        let at = opened(true);
        assert!(
            at >= k && at < k + threads as u64,
            "seed {seed}: {threads} threads, k {k}: opened at Failure {at}"
        );
        exactly_k += u64::from(at == k);
        later_without += u64::from(opened(false) > at);
    }
    assert!(
        exactly_k > 0 && later_without > 0,
        "{exactly_k} {later_without}"
    );
    println!(
        "of 300 outages: {exactly_k} opened at the k-th Failure; {later_without} opened later without the stamps"
    );
}

/// [`run_meddled`], where a call reads the recent time in one step and counts its outcome in a
/// later one with probability `in_flight` / 100 (the thread does nothing else meanwhile), so
/// that a Success's stamp can be older than Failures counted before it. The reference is then
/// the longest run over the orders the calls' overlaps allow: a counted Success at the step it
/// read the time (as early as it may go), a counted Failure at the step it was counted (as
/// late), a call still in flight after the check: the Failures counted after the latest step at
/// which a counted Success read the time, at some moment between the check's start and end.
fn run_in_flight(seed: u64, threads: usize, percent: u64, k: u64, steps: u64, in_flight: u64) {
    let rng = RefCell::new(Rng(seed | 1));
    let cell = Baselines::new(threads);
    let e = entries(threads);
    let stripes = RefCell::new(vec![RunView::default(); threads]);
    let pending = RefCell::new(vec![false; threads]);
    // Per thread, a call that read the time and has yet to count: (failure, its stamp).
    let flying = RefCell::new(vec![None::<(bool, u64)>; threads]);
    let step = Cell::new(0u64);
    // The latest stamp of a counted Success, and the steps at which Failures were counted.
    let latest_success = Cell::new(None::<u64>);
    let failures = RefCell::new(Vec::<u64>::new());
    let longest = || {
        let f = failures.borrow();
        let before = latest_success
            .get()
            .map_or(0, |latest| f.partition_point(|&at| at <= latest));
        (f.len() - before) as u64
    };
    let act = |t: usize| {
        let now = step.get();
        step.set(now + 1);
        let call = flying.borrow_mut()[t].take();
        let (failure, at) = match call {
            Some(call) => call,
            None => {
                let failure = rng.borrow_mut().below(100) < percent;
                if rng.borrow_mut().below(100) < in_flight {
                    flying.borrow_mut()[t] = Some((failure, now));
                    return;
                }
                (failure, now)
            }
        };
        let mut stripes = stripes.borrow_mut();
        let s = &mut stripes[t];
        if failure {
            failures.borrow_mut().push(now);
            if s.run == 0 {
                (s.run_start, s.run_start_at) = (at, at);
            }
            (s.last_failure, s.last_failure_at) = (at, at);
            s.run += 1;
            pending.borrow_mut()[t] = s.run >= 2;
        } else {
            latest_success.set(Some(latest_success.get().map_or(at, |l| l.max(at))));
            s.run = 0;
            s.successes += 1;
            s.last_success_at = at;
        }
    };
    while step.get() < steps {
        let t = rng.borrow_mut().below(threads as u64) as usize;
        if !pending.borrow()[t] {
            act(t);
            continue;
        }
        pending.borrow_mut()[t] = false;
        let peak = Cell::new(longest());
        let view = |i: usize| {
            if rng.borrow_mut().below(100) < 30 {
                let other = rng.borrow_mut().below(threads as u64) as usize;
                if other != t && !pending.borrow()[other] {
                    act(other);
                    peak.set(peak.get().max(longest()));
                }
            }
            stripes.borrow()[i]
        };
        let local = stripes.borrow()[t].run;
        let now = step.get();
        let bound = cell.check(0, local, view, |i| e.get(i), || (now, now), || usize::MAX);
        let reference = peak.get().max(longest());
        assert!(
            bound <= reference,
            "seed {seed}, {threads} threads, {percent} %: bound {bound} above the longest run \
             {reference} at step {now}"
        );
        if bound >= k {
            return;
        }
        step.set(step.get() + 1);
    }
}

/// Calls in flight between their time read and their count, and other threads counting while a
/// check scans: the bound, the stamps' included, stays within the longest run the calls'
/// overlaps allow.
#[test]
fn the_bound_never_exceeds_the_run_with_calls_in_flight_between_their_time_and_their_count() {
    for seed in 1..=60u64 {
        for threads in [2usize, 3, 4, 8, 16] {
            for percent in [5u64, 30, 70, 95] {
                for in_flight in [10u64, 50, 90] {
                    run_in_flight(seed, threads, percent, 2 + seed % 5, 3_000, in_flight);
                }
            }
        }
    }
}
