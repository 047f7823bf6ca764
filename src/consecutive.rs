//! The consecutive-failure rule under any number of callers, decided without a shared write on
//! the common path.
//!
//! # The rule
//! `consecutive_failures(k)` opens on a run of `k` Failures with no Success *counted* in
//! between. A thread sees its own outcomes in order, so each owned stripe keeps its owner's
//! **local run**: its consecutive Closed Failures, cleared by its next Success (`window/owned.rs`).
//! What no thread sees cheaply is the order of *other* threads' Successes: a Success writes only
//! its own line. So a check compares the stripes with a **baseline**, a snapshot a previous check
//! took of every stripe's Success count and local run, with a lower bound of the run at that
//! moment:
//! - **No stripe counted a Success since the baseline**: every Failure since then extends the
//!   run, so the run is at least the baseline's run plus the growth of every local run.
//! - **Some stripes did**: the latest Success of all is one of theirs, and everything its
//!   thread did after it is in its local run; whichever stripe it was, the run is at least the
//!   *smallest* local run among the stripes that counted a Success. One of them with no run
//!   (its last outcome was a Success) makes the bound 0.
//!
//! A check reads the stripes one after another, not at one instant; it then reads every
//! stripe's Success count a second time, and a count that moved during the scan voids the check
//! (bound 0, no renewal): the scan then saw no Success counted after it read a stripe, so its
//! reads hold together as one snapshot of the Successes. The bound never exceeds the true run,
//! whatever the interleaving and however long a thread is descheduled mid-scan. Hence no false
//! trip: at 1 % Failures spread over any number of threads, a trip needs every thread that
//! counted a Success since the last check to have failed `k` times in a row since.
//!
//! # Runs ordered by time
//! When the stripes that counted a Success since the baseline all have a local run, and one of
//! them started its run strictly later than the others and than the baseline was taken (real
//! clock), every Success counted anywhere came before that start: the run is then at least that
//! stripe's local run, plus the local runs of the stripes whose runs started later still, plus
//! one for each other stripe whose latest Failure came later. With one call at a time on
//! threads taking turns (an async runtime's workers), this counts other threads' Failures that
//! the smallest-run bound cannot: in the tests the rule then opens by the `k + N − 1`-th
//! Failure, though not always in a service (the axum example has opened at `k + 4` with two
//! workers); the bound below holds whatever the order. A mock clock
//! that does not move gives no strict order, and the smallest-run bound stands.
//!
//! # When a check runs
//! A Failure that starts a local run (its thread's previous outcome was a Success) checks
//! nothing: it writes only its own line. A Failure that extends one (its thread's second in a
//! row or later) checks; the threads of a shared stripe keep one run for the stripe. So does
//! the first Failure on a stripe that never counted a Success: its thread may have counted the
//! start of its run on a shared stripe before its own block was claimed (`window/owned.rs`). That is
//! a thread's first Failure in each Closed generation until its stripe counts a Success: once
//! per thread and breaker for a thread that succeeds at all, every generation for one that only
//! fails (as in an outage, when its next Failures check anyway). With
//! `k = 1` every Closed Failure trips without a check. At 1 % Failures about one Failure in a
//! hundred checks, and a check renews the baseline only when its bound is positive or its
//! thread failed three times in a row ([`renews`]): about one Failure in 10 000.
//!
//! # How late a real outage opens
//! With one thread recording, exactly at the `k`-th Failure (its local run is the run). When
//! other threads counted Successes since the last renewal and then went quiet, one thread's
//! run is recognised from the check that renews the baseline on: at most three Failures late.
//! With `N` threads recording, a thread's first Failures after its last Success cannot be
//! ordered against the other threads' Successes without a shared write, so they may not count:
//! once every call fails, the rule opens at the latest once `k` Failures were counted after the
//! first renewal of the outage, which comes at the latest with some thread's third Failure in a
//! row: at most `3N + k` Failures counted since the outage began. A lock-based breaker opens at
//! the `k`-th and lets the `N − 1` calls still in flight fail too. The schedules test below
//! measures the worst case over 200 seeded schedules.
//!
//! # The baseline cell
//! Two slots and a version: a check reads the slot the version names, and the one check that
//! holds the writer flag (taken by compare-and-swap, never waited for: a check that finds it
//! taken only reads) writes the other slot with what it read, then publishes its version. A
//! reader never waits and never sees a half-written slot it would use (each slot carries the
//! version it was written for and is re-checked after reading). A writer stalled mid-write
//! stalls only the baseline's renewal, never a decision.
//!
//! # Orderings
//! - `writer`: taken with `Acquire`, released with `Release`: one writer at a time, each seeing
//!   the previous one's slot writes.
//! - `current` and a slot's `version` are a seqlock: the writer stores `INVALID` (then a
//!   `Release` fence), the fields (`Relaxed`), the version (`Release`), then `current`
//!   (`Release`). A reader loads `current` and the version (`Acquire`), the fields, an `Acquire`
//!   fence and the version again; it uses the fields only if both reads match `current`.
//! - The stripes themselves are read as `window/owned.rs` says ("Local run and Successes").
//!
//! # Shared writes
//! A check that holds the writer flag writes the baseline (two lines per 8 stripes, plus the
//! version line): once per checking Failure, so about once per hundred Failures at 1 % random
//! Failures, and on every Failure after the first of each thread in an outage (when the breaker
//! is about to open). Nothing else here is written by a call.
//!
//! # Horizons
//! Success counts are 64 bits (584 years at 10^9 calls per second into one stripe) and
//! compared for equality; local runs saturate at 2^32 − 1; generations are compared whole;
//! the version is 64 bits (584 years at 10^9 checks per second).

use crate::sync::{AtomicU64, Ordering, fence};
use crate::window::owned::RunView;

/// A run start that is not known (a shared stripe's run, kept for all of its threads).
pub(crate) const UNKNOWN_START: u64 = u64::MAX;

/// The lower bound of the run a check computes, stripe by stripe (module docs). Pure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Floor {
    /// Whether any stripe counted a Success since the baseline.
    changed: bool,
    /// The smallest local run among the stripes that did.
    least_changed_run: u64,
    /// How much the local runs of the stripes that did not grew since the baseline.
    grown: u64,
    /// The latest start of a local run among the stripes that counted a Success, its run, and
    /// whether another of them started at the same instant.
    latest_start: u64,
    latest_run: u64,
    tied: bool,
    /// Whether a stripe that counted a Success has no run, or a run whose start is not known.
    unordered: bool,
}

impl Floor {
    pub(crate) const fn new() -> Floor {
        Floor {
            changed: false,
            least_changed_run: u64::MAX,
            grown: 0,
            latest_start: 0,
            latest_run: 0,
            tied: false,
            unordered: false,
        }
    }

    /// Adds one stripe: as the baseline saw it, and as it is now.
    pub(crate) fn add(&mut self, before: RunView, now: RunView) {
        if now.successes != before.successes {
            self.changed = true;
            self.least_changed_run = self.least_changed_run.min(now.run);
            if now.run == 0 || now.run_start == UNKNOWN_START {
                self.unordered = true;
            } else if !self.unordered {
                if now.run_start > self.latest_start || self.latest_run == 0 {
                    self.tied = false;
                    self.latest_start = now.run_start;
                    self.latest_run = now.run;
                } else if now.run_start == self.latest_start {
                    self.tied = true;
                }
            }
        } else {
            // A run that shrank without a Success moved to another generation: it adds nothing.
            self.grown = self
                .grown
                .saturating_add(now.run.saturating_sub(before.run));
        }
    }

    /// The run's lower bound, given the baseline's own run and the instant it was taken (real
    /// clock, ns since the breaker's start), and every stripe as it is now (module docs, "Runs
    /// ordered by time").
    pub(crate) fn run(self, baseline_run: u64, taken: u64, now: &[RunView]) -> u64 {
        if !self.changed {
            return baseline_run.saturating_add(self.grown);
        }
        let least = self.least_changed_run;
        if self.unordered || self.tied || self.latest_start <= taken {
            return least;
        }
        // Every Failure recorded after the latest start came after every Success: a run that
        // started later counts whole, one that started before counts its latest Failure if that
        // came later (the stripe that started last is counted apart, whole).
        let latest = self.latest_start;
        let after: u64 = now
            .iter()
            .filter(|v| v.run > 0 && v.run_start != UNKNOWN_START && v.run_start != latest)
            .map(|v| {
                if v.run_start > latest {
                    v.run
                } else {
                    u64::from(v.last_failure > latest)
                }
            })
            .fold(0u64, u64::saturating_add);
        least.max(self.latest_run.saturating_add(after))
    }
}

impl Default for Floor {
    fn default() -> Floor {
        Floor::new()
    }
}

/// A slot's version while it is being written, and before its first write.
const INVALID: u64 = u64::MAX;

#[derive(Debug)]
struct Slot {
    version: AtomicU64,
    generation: AtomicU64,
    run: AtomicU64,
    /// When the stripes were read (real clock, ns since the breaker's start).
    taken: AtomicU64,
    /// Per stripe: Successes counted, local run.
    stripes: Box<[[AtomicU64; 2]]>,
}

impl Slot {
    fn new(stripes: usize) -> Slot {
        Slot {
            version: AtomicU64::new(INVALID),
            generation: AtomicU64::new(0),
            run: AtomicU64::new(0),
            taken: AtomicU64::new(0),
            stripes: (0..stripes)
                .map(|_| [AtomicU64::new(0), AtomicU64::new(0)])
                .collect(),
        }
    }

    fn view(&self, i: usize) -> RunView {
        // Relaxed: a seqlock's fields (module docs).
        RunView {
            successes: self.stripes[i][0].load(Ordering::Relaxed),
            run: self.stripes[i][1].load(Ordering::Relaxed),
            // Not kept: a check compares only counts and runs with a baseline.
            run_start: 0,
            last_failure: 0,
        }
    }

    fn write(&self, i: usize, view: RunView) {
        // Relaxed: a seqlock's fields (module docs).
        self.stripes[i][0].store(view.successes, Ordering::Relaxed);
        self.stripes[i][1].store(view.run, Ordering::Relaxed);
    }
}

/// The baseline cell (module docs).
#[derive(Debug)]
pub(crate) struct Baselines {
    writer: AtomicU64,
    current: AtomicU64,
    slots: [Slot; 2],
}

impl Baselines {
    /// A cell for `stripes` stripes (owned and shared), holding the baseline of a new breaker:
    /// generation 0, nothing counted, no run.
    pub(crate) fn new(stripes: usize) -> Baselines {
        let stripes = stripes.min(MAX_STRIPES);
        let cell = Baselines {
            writer: AtomicU64::new(0),
            current: AtomicU64::new(0),
            slots: [Slot::new(stripes), Slot::new(stripes)],
        };
        // Relaxed: not shared yet.
        cell.slots[0].version.store(0, Ordering::Relaxed);
        cell
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.slots
            .iter()
            .map(|s| std::mem::size_of_val(&*s.stripes))
            .sum()
    }

    /// Checks the run of Closed `generation` for a Failure whose thread's local run is now
    /// `local`: reads every stripe through `view` (stripes `0..count`), compares them with the
    /// baseline and returns the run's lower bound (module docs). Renews the baseline when
    /// [`renews`] says so and no other check is renewing it, noting when it read the stripes
    /// by `clock` (the real clock, ns since the breaker's start). A baseline of another
    /// generation knows nothing of this one: the bound is then 0.
    pub(crate) fn check(
        &self,
        generation: u64,
        local: u64,
        view: impl Fn(usize) -> RunView,
        clock: impl Fn() -> u64,
    ) -> u64 {
        self.visit(generation, view, clock, |run| renews(run, local), false)
    }

    /// A transition into Closed `generation`: the run is empty. Takes the baseline for the new
    /// generation from the stripes as they are now, unless another check holds the writer flag
    /// (the next check then finds no baseline of this generation and takes one).
    pub(crate) fn restart(
        &self,
        generation: u64,
        view: impl Fn(usize) -> RunView,
        clock: impl Fn() -> u64,
    ) {
        self.visit(generation, view, clock, |_| true, true);
    }

    fn visit(
        &self,
        generation: u64,
        view: impl Fn(usize) -> RunView,
        clock: impl Fn() -> u64,
        renew: impl Fn(u64) -> bool,
        restart: bool,
    ) -> u64 {
        let count = self.slots[0].stripes.len();
        // What this check read, to renew the baseline with exactly that (a later read could
        // hold a Success the bound did not see). On the stack: no allocation on a call's path.
        // At most `MAX_STRIPES` × 32 bytes (10 KiB), zeroed on each check: checks run only from
        // a thread's second Failure in a row, rare outside an outage.
        let mut seen = [RunView::default(); MAX_STRIPES];
        loop {
            // Acquire: see the module's "Orderings".
            let version = self.current.load(Ordering::Acquire);
            let slot = &self.slots[(version & 1) as usize];
            if slot.version.load(Ordering::Acquire) != version {
                continue; // rewritten since `current` was read: read `current` again
            }
            // Relaxed: a seqlock's fields.
            let same = slot.generation.load(Ordering::Relaxed) == generation && !restart;
            let baseline_run = slot.run.load(Ordering::Relaxed);
            let taken = slot.taken.load(Ordering::Relaxed);
            let mut floor = Floor::new();
            for (i, seen) in seen.iter_mut().enumerate().take(count) {
                *seen = view(i);
                floor.add(slot.view(i), *seen);
            }
            // The seqlock's closing: the fields' loads before the version's second load.
            fence(Ordering::Acquire);
            if slot.version.load(Ordering::Relaxed) != version {
                continue; // torn: a writer went round twice while this read
            }
            // The reads are one after another, not a snapshot: a Success counted on a stripe
            // after it was read, before the later stripes' Failures were, would go unseen. A
            // second look at every Success count: if one moved during the scan, the scan
            // proves nothing (bound 0, no renewal).
            if seen[..count]
                .iter()
                .enumerate()
                .any(|(i, first)| view(i).successes != first.successes)
            {
                return 0;
            }
            let run = if same {
                floor.run(baseline_run, taken, &seen[..count])
            } else {
                0
            };
            if (renew(run) || !same) && self.take_writer() {
                // Unless another check renewed it since this one read it.
                // Relaxed: the writer flag's Acquire ordered it after that check's stores.
                if self.current.load(Ordering::Relaxed) == version {
                    // After the reads: every Success the baseline holds came before this.
                    let taken = clock();
                    self.renew(version, (generation, taken), run, &seen[..count]);
                }
                // Release: see the module's "Orderings".
                self.writer.store(0, Ordering::Release);
            }
            return run;
        }
    }

    fn take_writer(&self) -> bool {
        // Acquire: see the module's "Orderings".
        self.writer
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }

    /// Writes the slot after `version`'s with `seen` and `run`, then publishes it. The caller
    /// holds the writer flag.
    fn renew(&self, version: u64, (generation, taken): (u64, u64), run: u64, seen: &[RunView]) {
        let renewed = version.wrapping_add(1);
        let next = &self.slots[(renewed & 1) as usize];
        // Relaxed, then the Release fence: the seqlock's opening (module docs).
        next.version.store(INVALID, Ordering::Relaxed);
        fence(Ordering::Release);
        for (i, &view) in seen.iter().enumerate() {
            next.write(i, view);
        }
        // Relaxed: published by the version's Release store.
        next.generation.store(generation, Ordering::Relaxed);
        next.run.store(run, Ordering::Relaxed);
        next.taken.store(taken, Ordering::Relaxed);
        // Release: publishes the slot's fields, then the slot (module docs, "Orderings").
        next.version.store(renewed, Ordering::Release);
        self.current.store(renewed, Ordering::Release);
    }
}

/// The most stripes a breaker has: owned ones (the thread-slot pool) and its shared ones (see
/// `window/stripes.rs`, `shared_stripes`).
pub(crate) const MAX_STRIPES: usize =
    crate::thread_slot::POOL as usize + crate::thread_slot::POOL as usize / 16;

/// Whether a check whose bound came out as `run`, for a thread whose local run is `local`,
/// renews the baseline. A bound of 0 with a short local run is what 1 % Failures look like
/// (other threads counted Successes since the last check): renewing then would only move the
/// baseline from one busy moment to the next, two shared writes per stripe each time. Renewing
/// once the bound is positive, or once a thread has failed three times in a row, is what lets
/// the next checks count every Failure of an outage.
pub(crate) fn renews(run: u64, local: u64) -> bool {
    run >= 1 || local >= 3
}

#[cfg(test)]
mod tests;

/// The rule against a serial log of calls from many logical threads: the log *is* the order in
/// which outcomes are counted, so the true run is known at every step, and every interleaving a
/// seeded scheduler picks can be replayed. These are the schedules a 2-core machine rarely
/// produces and a 64-core one produces all the time.
#[cfg(test)]
mod schedules {
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
    fn check(cell: &Baselines, stripes: &[RunView], me: usize) -> Option<u64> {
        (stripes[me].run >= 2).then(|| cell.check(0, 9, |i| stripes[i], || 0))
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
                        if check(&cell, &stripes, t).is_some_and(|run| run >= k) {
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
    fn run(
        seed: u64,
        threads: usize,
        percent: u64,
        k: u64,
        steps: u64,
        outage_from: u64,
    ) -> Outcome {
        let mut rng = Rng(seed | 1);
        let cell = Baselines::new(threads);
        let mut stripes = vec![RunView::default(); threads];
        let mut pending = vec![false; threads]; // a check to make before the next call
        let (mut true_run, mut checks) = (0u64, 0u64);
        for step in 0..steps {
            let t = rng.below(threads as u64) as usize;
            if pending[t] {
                pending[t] = false;
                checks += 1;
                let floor = cell.check(0, stripes[t].run, |i| stripes[i], || step);
                assert!(
                    floor <= true_run,
                    "seed {seed}: bound {floor} above the true run {true_run} at step {step}"
                );
                if floor >= k {
                    return Outcome {
                        tripped_at_true_run: Some(true_run),
                        outage_failures: (step >= outage_from).then_some(true_run),
                        checks,
                    };
                }
                continue;
            }
            let failure = step >= outage_from || rng.below(100) < percent;
            if failure {
                true_run += 1;
                if stripes[t].run == 0 {
                    stripes[t].run_start = step; // the logical clock: one tick per step
                }
                stripes[t].last_failure = step;
                stripes[t].run += 1;
                pending[t] = stripes[t].run >= 2;
            } else {
                true_run = 0;
                stripes[t].run = 0;
                stripes[t].successes += 1;
            }
        }
        Outcome {
            tripped_at_true_run: None,
            outage_failures: None,
            checks,
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
                        let bound = cell.check(0, local, |i| stripes[i], || now);
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
    /// counts at most three before the first renewal, see the module docs); with one thread,
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
}
