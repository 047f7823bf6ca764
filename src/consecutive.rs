//! The consecutive-failure rule under any number of callers, decided without a shared write on
//! the common path.
//!
//! The reasoning behind it: `docs/internals.md`, "Design notes", `consecutive.rs`.
//!
//! # Orderings
//! - `writer`: taken with `Acquire`, released with `Release`: one writer at a time, each seeing
//!   the previous one's slot writes.
//! - The stripes' stamps are read after their Success counts and runs (`Acquire`),
//!   which their owners store after the stamps (`window/owned/head.rs`): a count seen comes with
//!   its latest Success's stamp or a later one, a run with its Failures' stamps.
//! - `current` and a slot's `version` are a seqlock: the writer stores `INVALID` (then a
//!   `Release` fence), the fields (`Relaxed`), the version (`Release`), then `current`
//!   (`Release`). A reader loads `current` and the version (`Acquire`), the fields, an `Acquire`
//!   fence and the version again; it uses the fields only if both reads match `current`.
//! - The stripes themselves are read as `window/owned/read.rs` says ("Local run"). A stripe's
//!   entry is one of the seqlock's fields, wherever it lives; a stripe's lines arrive by a
//!   release and are found by an acquire (`window/owned.rs`), so an entry found is seen as
//!   its stripe's last reset left it, or as a writer wrote it since.
//!
//! # Shared writes
//! A check that holds the writer flag writes the baseline: its slot and version line, and each
//! stripe's entry, one 32-byte entry on a line of that stripe's (an owned stripe's block past
//! its head line, which its owner reads only when it rolls into a bucket; a shared stripe's
//! totals line, which its threads write anyway): once per checking Failure, so about once per hundred Failures at 1 % random
//! Failures, and on every Failure after the first of each thread in an outage (when the breaker
//! is about to open). Nothing else here is written by a call.
//!
//! # Horizons
//! Success counts are 64 bits (584 years at 10^9 calls per second into one stripe) and
//! compared for equality; local runs saturate at 2^32 − 1; generations are compared whole;
//! the version is 64 bits (584 years at 10^9 checks per second); the stamps and `shared_at`
//! are 64 bits (the upkeep's ticks: 584 million years at one per millisecond; a mock's
//! nanoseconds: 584 years), compared strictly, so a stopped clock (equal stamps) orders nothing.

use crate::sync::{AtomicU32, AtomicU64, Ordering, fence};
use crate::window::owned::{RunView, STAMPS};

/// A run start that is not known (a shared stripe's run, kept for all of its threads).
pub(crate) const UNKNOWN_START: u64 = u64::MAX;

/// The lower bound of the run a check computes, stripe by stripe (`docs/internals.md`, "Design notes", `consecutive.rs`,
/// "The rule"). Pure.
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
    /// Whether a stripe that keeps no Success stamps (a shared one) counted a Success.
    unstamped: bool,
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
            unstamped: false,
        }
    }

    /// Adds one stripe: as the baseline saw it, and as it is now.
    pub(crate) fn add(&mut self, before: RunView, now: RunView) {
        if now.successes != before.successes {
            self.changed = true;
            self.unstamped |= now.last_success_at == UNKNOWN_START;
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
    /// clock, ns since the breaker's start), and every stripe as it is now (`docs/internals.md`,
    /// "Design notes", `consecutive.rs`, "Runs ordered by time").
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

/// The run's lower bound from the stripes' stamps (`docs/internals.md`, "Design notes",
/// `consecutive.rs`, "Failures after every Success"), given the baseline's `shared_at` (no
/// earlier than the stamp of any Success counted before it on a stripe without stamps, a
/// shared one), whether such a stripe counted a Success since, and every stripe as the scan
/// read it. Every Success the scan saw read a recent time no later than its stripe's latest
/// stamp, and came before its own stripe's run. A Failure stamped strictly later than every
/// other stripe's latest stamp and `shared_at` read its stamp after each of those
/// Successes did (a value that only grows, `TimeSource::stamp`), so it can be ordered after every one: the run
/// holds it. 0 when a stripe without stamps counted a Success since the baseline.
pub(crate) fn after_every_success(shared_at: u64, unstamped: bool, now: &[RunView]) -> u64 {
    if unstamped {
        return 0;
    }
    // The two latest stamps, and whose the latest is: a stripe's own Successes came before its
    // run, so each stripe's run is compared with the latest of the others'.
    let (mut latest, mut whose, mut second) = (0u64, usize::MAX, 0u64);
    for (i, v) in now.iter().enumerate() {
        let at = v.last_success_at;
        if at == UNKNOWN_START {
            continue;
        }
        if whose == usize::MAX || at > latest {
            second = if whose == usize::MAX { 0 } else { latest };
            (latest, whose) = (at, i);
        } else if at > second {
            second = at;
        }
    }
    now.iter()
        .enumerate()
        .filter(|(_, v)| v.run > 0 && v.run_start_at != UNKNOWN_START)
        .map(|(i, v)| {
            let others = if i == whose { second } else { latest };
            let pivot = shared_at.max(others);
            if v.run_start_at > pivot {
                v.run
            } else {
                u64::from(v.last_failure_at > pivot)
            }
        })
        .fold(0u64, u64::saturating_add)
}

impl Default for Floor {
    fn default() -> Floor {
        Floor::new()
    }
}

/// A slot's version while it is being written, and before its first write.
const INVALID: u64 = u64::MAX;

/// One stripe's part of the baseline: per slot of the cell, the Successes counted and the
/// local run that the check which wrote the slot read on the stripe. Kept with the stripe (an
/// owned stripe's block, past its head line; a shared stripe's totals line), so a breaker
/// holds it only for the stripes that have their lines: a stripe without them has counted
/// nothing and has no run, which is what a missing entry reads as. Written only under the
/// cell's seqlock (module docs, "Orderings").
#[derive(Debug)]
pub(crate) struct BaselineEntry([[AtomicU64; 2]; 2]);

impl BaselineEntry {
    pub(crate) fn new() -> BaselineEntry {
        BaselineEntry(std::array::from_fn(|_| {
            [AtomicU64::new(0), AtomicU64::new(0)]
        }))
    }

    /// Back to [`new`](Self::new)'s state, for the stripe's next breaker (a block given back
    /// to the reserve). Only when no other thread can reach the stripe.
    #[cfg(not(hotbreaker_loom))]
    pub(crate) fn reset(&self) {
        for word in self.0.iter().flatten() {
            // Relaxed: nobody else holds the stripe; the reserve's mutex publishes the stores.
            word.store(0, Ordering::Relaxed);
        }
    }

    fn view(&self, slot: usize) -> RunView {
        // Relaxed: a seqlock's fields (module docs).
        RunView {
            successes: self.0[slot][0].load(Ordering::Relaxed),
            run: self.0[slot][1].load(Ordering::Relaxed),
            // Not kept: a check compares only counts and runs with a baseline.
            run_start: 0,
            last_failure: 0,
            last_success_at: 0,
            run_start_at: 0,
            last_failure_at: 0,
        }
    }

    fn write(&self, slot: usize, view: RunView) {
        // Relaxed: a seqlock's fields (module docs).
        self.0[slot][0].store(view.successes, Ordering::Relaxed);
        self.0[slot][1].store(view.run, Ordering::Relaxed);
    }
}

#[cfg(test)]
impl BaselineEntry {
    /// Both slots' Successes and run set to `n`, as a renewal writes them.
    pub(crate) fn fill(&self, n: u64) {
        let view = RunView {
            successes: n,
            run: n,
            ..RunView::default()
        };
        (0..2).for_each(|slot| self.write(slot, view));
    }

    /// Whether both slots read as a new entry's.
    pub(crate) fn is_new(&self) -> bool {
        (0..2).all(|slot| self.view(slot) == RunView::default())
    }
}

/// A slot's part of the baseline that is not per stripe.
#[derive(Debug)]
struct Slot {
    version: AtomicU64,
    generation: AtomicU64,
    run: AtomicU64,
    /// When the stripes were read (real clock, ns since the breaker's start).
    taken: AtomicU64,
    /// A stamp (`TimeSource::stamp`) no earlier than any a Success counted before the baseline
    /// on a stripe that keeps no stamps (a shared one) could have read: carried over from the
    /// previous baseline while those stripes count no Success, else the stamp read when this
    /// one was taken.
    shared_at: AtomicU64,
}

impl Slot {
    fn new() -> Slot {
        Slot {
            version: AtomicU64::new(INVALID),
            generation: AtomicU64::new(0),
            run: AtomicU64::new(0),
            taken: AtomicU64::new(0),
            shared_at: AtomicU64::new(0),
        }
    }
}

/// Stripe `i`'s baseline entry read for slot `slot`: nothing counted and no run for a stripe
/// without its lines.
fn entry_view<'e>(
    entry: &impl Fn(usize) -> Option<&'e BaselineEntry>,
    i: usize,
    slot: usize,
) -> RunView {
    entry(i).map_or_else(RunView::default, |e| e.view(slot))
}

/// The baseline cell (`docs/internals.md`, "Design notes", `consecutive.rs`, "The baseline cell"; its orderings above).
#[derive(Debug)]
pub(crate) struct Baselines {
    /// 1 while a check renews the baseline. Beside `count`, in one 8-byte word.
    writer: AtomicU32,
    /// The stripes a check reads, owned and shared (at most [`MAX_STRIPES`]): their entries
    /// live with them.
    count: u32,
    current: AtomicU64,
    slots: [Slot; 2],
}

impl Baselines {
    /// A cell for `stripes` stripes (owned and shared), holding the baseline of a new breaker:
    /// generation 0, nothing counted, no run (what new entries hold).
    pub(crate) fn new(stripes: usize) -> Baselines {
        let cell = Baselines {
            writer: AtomicU32::new(0),
            count: stripes.min(MAX_STRIPES) as u32,
            current: AtomicU64::new(0),
            slots: [Slot::new(), Slot::new()],
        };
        // Relaxed: not shared yet.
        cell.slots[0].version.store(0, Ordering::Relaxed);
        cell
    }

    /// Checks the run of Closed `generation` for a Failure whose thread's local run is now
    /// `local`: reads every stripe through `view` (stripes `0..count`, or as many of them as
    /// `reach` says may have lines), compares them with the baseline (the cell's slot, and each
    /// stripe's entry through `entry`) and returns the run's lower bound (design notes, "The
    /// rule", and "Failures after every Success"). Renews the baseline when [`renews`] says so
    /// and no other check is renewing it, noting when it read the stripes by `clock` (the real
    /// clock in ns since the breaker's start, and the recent time on the clock's own scale, as
    /// outcomes are stamped). A baseline of another generation knows nothing of this one: the
    /// bound is then 0.
    ///
    /// `reach`: how many of the first stripes may have their lines now; it never falls. A
    /// stripe past it reads as nothing counted and no run, as a stripe without its lines does
    /// (`view` and `entry` say the same of it), so a breaker that few threads call is checked
    /// at the cost of those threads' stripes, not of its `stripes` setting.
    pub(crate) fn check<'e>(
        &self,
        generation: u64,
        local: u64,
        view: impl Fn(usize) -> RunView,
        entry: impl Fn(usize) -> Option<&'e BaselineEntry>,
        clock: impl Fn() -> (u64, u64),
        reach: impl Fn() -> usize,
    ) -> u64 {
        let stripes = (view, entry, reach);
        self.visit(generation, &stripes, clock, |run| renews(run, local), false)
    }

    /// A transition into Closed `generation`: the run is empty. Takes the baseline for the new
    /// generation from the stripes as they are now, unless another check holds the writer flag
    /// (the next check then finds no baseline of this generation and takes one).
    pub(crate) fn restart<'e>(
        &self,
        generation: u64,
        view: impl Fn(usize) -> RunView,
        entry: impl Fn(usize) -> Option<&'e BaselineEntry>,
        clock: impl Fn() -> (u64, u64),
        reach: impl Fn() -> usize,
    ) {
        let stripes = (view, entry, reach);
        self.visit(generation, &stripes, clock, |_| true, true);
    }

    fn visit<'e, V, E, R>(
        &self,
        generation: u64,
        stripes: &(V, E, R),
        clock: impl Fn() -> (u64, u64),
        renew: impl Fn(u64) -> bool,
        restart: bool,
    ) -> u64
    where
        V: Fn(usize) -> RunView,
        E: Fn(usize) -> Option<&'e BaselineEntry>,
        R: Fn() -> usize,
    {
        // What this check reads, to renew the baseline with exactly that (a later read could
        // hold a Success the bound did not see). On the stack: no allocation on a call's path.
        // Zeroed on each check, so sized to the stripes that may have lines now: 16 entries
        // (896 bytes) for a breaker that at most 15 threads called, at most `MAX_STRIPES`
        // (14 KiB). Checks run only from a thread's second Failure in a row, rare outside an
        // outage.
        let args = (generation, stripes, &clock, &renew, restart);
        match (stripes.2)().min(self.count as usize) {
            0..=16 => self.visit_in(&mut [RunView::default(); 16], args),
            17..=64 => self.visit_in(&mut [RunView::default(); 64], args),
            _ => self.visit_in(&mut [RunView::default(); MAX_STRIPES], args),
        }
    }

    /// [`visit`](Self::visit) with `seen` to read into. A reach that has grown past it since
    /// `visit` chose its size makes the check prove nothing (bound 0, no renewal).
    #[allow(clippy::type_complexity)]
    fn visit_in<'e, V, E, R>(
        &self,
        seen: &mut [RunView],
        (generation, (view, entry, reach), clock, renew, restart): (
            u64,
            &(V, E, R),
            &impl Fn() -> (u64, u64),
            &impl Fn(u64) -> bool,
            bool,
        ),
    ) -> u64
    where
        V: Fn(usize) -> RunView,
        E: Fn(usize) -> Option<&'e BaselineEntry>,
        R: Fn() -> usize,
    {
        let reach = || reach().min(self.count as usize);
        loop {
            // Acquire: see the module's "Orderings".
            let version = self.current.load(Ordering::Acquire);
            let index = (version & 1) as usize;
            let slot = &self.slots[index];
            if slot.version.load(Ordering::Acquire) != version {
                continue; // rewritten since `current` was read: read `current` again
            }
            // Relaxed: a seqlock's fields.
            let same = slot.generation.load(Ordering::Relaxed) == generation && !restart;
            let baseline_run = slot.run.load(Ordering::Relaxed);
            let taken = slot.taken.load(Ordering::Relaxed);
            let shared_at = if STAMPS {
                slot.shared_at.load(Ordering::Relaxed)
            } else {
                0
            };
            let mut floor = Floor::new();
            // The stripes past `scanned` had no lines when it was read: they read as nothing
            // counted (`seen` stays empty for them), as the scan would have read them then.
            let scanned = reach();
            if scanned > seen.len() {
                return 0;
            }
            for (i, seen) in seen.iter_mut().enumerate().take(scanned) {
                *seen = view(i);
                floor.add(entry_view(entry, i, index), *seen);
            }
            // The seqlock's closing: the fields' loads before the version's second load.
            fence(Ordering::Acquire);
            if slot.version.load(Ordering::Relaxed) != version {
                continue; // torn: a writer went round twice while this read
            }
            let run = if same {
                floor.run(baseline_run, taken, &seen[..scanned])
            } else {
                0
            };
            // A bound for this decision only: a renewal keeps `run` (its growth is counted from
            // the runs of the second look, which this bound's order does not describe).
            let ordered = if same {
                after_every_success(shared_at, floor.unstamped, &seen[..scanned])
            } else {
                0
            };
            // The reads are one after another, not a snapshot: a Success counted on a stripe
            // after it was read, before the later stripes' Failures were, would go unseen. A
            // second look at every Success count: if one moved during the scan, the scan
            // proves nothing (bound 0, no renewal). The reach read again: a stripe that got its
            // lines during the scan, past the part scanned, is looked at too.
            // The second look's runs are what a renewal writes: a Failure counted on a stripe
            // after the scan read it may have come before a Success the scan saw on a stripe
            // read later, so it is not growth after the baseline (the bound above, from the
            // first reads, is still one: the counts did not move, and runs only grow).
            let looked = reach();
            if looked > seen.len() {
                return 0;
            }
            for (i, seen) in seen.iter_mut().enumerate().take(looked) {
                let again = view(i);
                if again.successes != seen.successes {
                    return 0;
                }
                *seen = again;
            }
            if (renew(run) || !same) && self.take_writer() {
                // Unless another check renewed it since this one read it.
                // Relaxed: the writer flag's Acquire ordered it after that check's stores.
                // And unless stripes past `seen` got their lines since the second look: they
                // would need entries it has no reads for (the next check renews).
                let lines = reach();
                if self.current.load(Ordering::Relaxed) == version && lines <= seen.len() {
                    // After the reads: every Success the baseline holds came before this.
                    let (taken, now_at) = clock();
                    // Unchanged stripes without stamps: their Successes came before the
                    // previous baseline's instant already.
                    let shared_at = if floor.unstamped { now_at } else { shared_at };
                    // Every stripe with lines now gets its entry: what the scan saw of it, or
                    // nothing counted for one whose lines came after it read the reach.
                    let taken = (taken, shared_at);
                    self.renew(version, (generation, taken), run, &seen[..lines], entry);
                }
                // Release: see the module's "Orderings".
                self.writer.store(0, Ordering::Release);
            }
            return run.max(ordered);
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
    ///
    /// A stripe without its lines has no entry to write: it had none when the scan read it
    /// either (lines are never taken back while the breaker lives), so `seen` holds nothing
    /// counted for it, which is what a missing entry reads as. One whose lines came after the
    /// scan gets what the scan saw, as any other.
    fn renew<'e>(
        &self,
        version: u64,
        (generation, (taken, shared_at)): (u64, (u64, u64)),
        run: u64,
        seen: &[RunView],
        entry: &impl Fn(usize) -> Option<&'e BaselineEntry>,
    ) {
        let renewed = version.wrapping_add(1);
        let index = (renewed & 1) as usize;
        let next = &self.slots[index];
        // Relaxed, then the Release fence: the seqlock's opening (module docs).
        next.version.store(INVALID, Ordering::Relaxed);
        fence(Ordering::Release);
        for (i, &view) in seen.iter().enumerate() {
            if let Some(e) = entry(i) {
                e.write(index, view);
            }
        }
        // Relaxed: published by the version's Release store.
        next.generation.store(generation, Ordering::Relaxed);
        next.run.store(run, Ordering::Relaxed);
        next.taken.store(taken, Ordering::Relaxed);
        if STAMPS {
            next.shared_at.store(shared_at, Ordering::Relaxed);
        }
        // Release: publishes the slot's fields, then the slot (module docs, "Orderings").
        next.version.store(renewed, Ordering::Release);
        self.current.store(renewed, Ordering::Release);
    }
}

/// The most stripes a breaker has: owned ones (the thread-slot pool) and its one shared stripe
/// (see `window/stripes.rs`, `shared_stripes`).
pub(crate) const MAX_STRIPES: usize = crate::thread_slot::POOL as usize + 1;

/// Whether a check whose bound came out as `run`, for a thread whose local run is `local`,
/// renews the baseline. A bound of 0 with a short local run is what 1 % Failures look like
/// (other threads counted Successes since the last check): renewing then would only move the
/// baseline from one busy moment to the next, two shared writes per stripe each time. Renewing
/// once the bound is positive, or once a thread has failed three times in a row, is what lets
/// the next checks count every Failure of an outage.
pub(crate) fn renews(run: u64, local: u64) -> bool {
    run >= 1 || local >= 3
}

/// Entries for `n` stripes, for tests that keep their stripes in a table.
#[cfg(test)]
fn entries(n: usize) -> Box<[BaselineEntry]> {
    (0..n).map(|_| BaselineEntry::new()).collect()
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod schedules;
