//! One owned stripe's own line, [`OwnedLine`]: what its owner writes on each call and what the
//! readers of the consecutive-failure check see of it.
//!
//! # Layout
//! Each owned stripe's block has one 128-byte line of its own (and the marks' pointer, padded
//! to a second one) and, with a time window, a ring of bucket marks on lines of their own:
//!
//! | word | written | meaning |
//! |------|---------|---------|
//! | `generation`, `tag`, `bucket_end` | on a roll | the current bucket: its generation, its [tag](crate::bucket) and the end of its interval (on the clock's own scale, see below) |
//! | `end` | off the fast path | `bucket_end` while the recent time is trusted, 0 while it is not |
//! | `counts[k]` | per outcome | Successes, Failures and slow calls counted in buckets: a running count that never resets |
//! | `ignored`, `rejected` | per outcome | lifetime counters |
//! | `run` | on a Closed Failure, and on the first Success after one | the owner's own consecutive Closed Failures of `generation` (its *local run*), 0 after any Success |
//! | `run_start` | on the Failure that starts a local run | when it was recorded (real clock, ns since the breaker's start) |
//! | `last_failure` | on a Closed Failure | when the latest was recorded (same clock) |
//! | `last_success` | per Success | the stamp its latest Success read ([`TimeSource::stamp`](crate::clock::TimeSource::stamp): on a real clock the upkeep's tick count, which only grows, 0 while `start_upkeep`'s thread has not run; on a mock its time) |
//! | `run_start_at`, `last_failure_at` | with `run_start` and `last_failure` | the same instants' stamps |
//! | `budget` | on a Closed Failure or slow call | `round 16 | spent 48`: the window-evaluation budget this owner spent since it last saw evaluation `round` (see `evaluation.rs`); [`FRESH_BUDGET`] (all ones) until this owner's own evaluation first published one |
//!
//! Outcomes of a count window (which has no buckets) go to `counts` too: without marks, they are
//! lifetime counts. A permit of a generation older than the stripe's current bucket is counted on
//! a shared stripe's totals instead (`window/stripes.rs`, `add_late`): its outcome is late.
//!
//! A **bucket mark** (`tag`, `base[3]`) says where a bucket starts: the running counts at the
//! moment the owner rolled into the bucket tagged `tag`. A bucket holds what was counted between
//! its mark and the next one, so the counts of the last `B` intervals are the running counts
//! (or the mark of the first bucket past them) minus the mark of the first bucket in them. A
//! call is one increment of one running count; a roll (the first outcome in a new interval or
//! generation) writes one mark, in ring slot `tag mod ring`. Marks are written with strictly
//! increasing tags.
//!
//! **Time.** The fast path compares quanta's recent time, measured from the clock's origin (see
//! `clock/`), with `end`, so `end` and `bucket_end` are kept on that scale: the bucket's end
//! in nanoseconds since the breaker's start plus the breaker's start since the origin
//! (`offset`). No conversion is left on the fast path. Whether the reading may be trusted is
//! the calling thread's guard's to say (`clock::trust_recent`), not the stripe's: a reading that
//! moved since the thread's last call is trusted; one it saw again is checked against the real
//! clock on the thread's 1st, 2nd, 4th, ... 64th repeat and every 64th after, counted over every
//! breaker it calls. More than `RECENT_TOLERANCE_NS` behind, the Success takes the real-clock
//! way, as does every later one of the thread until the reading moves: after a pause, at most
//! 63 of a thread's Successes land by a frozen reading, in an older bucket. A stripe that finds
//! its bucket's end passed or unknown (`end`) reads the real clock itself, and opens the fast
//! path again when the recent time is back within the tolerance.
//!
//! **Horizons.** Running counts and lifetime counters are 64 bits: 584 years at 10^9 outcomes
//! per second into one stripe. The local run saturates at 2^32 − 1 (it is compared with
//! `consecutive_failures`, at most 10^6); its start is nanoseconds since the breaker's start in
//! 64 bits (584 years of uptime); the stamps are 64 bits (`TimeSource::stamp`: the upkeep's
//! ticks, 584 million years at one per millisecond; a mock's nanoseconds, 584 years). The budget keeps the 16-bit evaluation round (see
//! `evaluation.rs` for why an alias is harmless); its count saturates. Tags are those of
//! `bucket.rs` (114 years at 10^7 transitions per second with 256 buckets).
//!
//! # Orderings
//! As `write.rs`'s "Orderings" says: the owner's own words are `Relaxed` (a thread sees
//! its own writes); a Success count is stored with `Release` to publish the local run it
//! cleared and the `last_success` stored before it, and a local run with `Release` to publish
//! its start and its stamps (`write.rs` and `read.rs`, "Local run").

use super::{NO_BUCKET, SUCCESSES};
use crate::clock::{RECENT_TOLERANCE_NS, trust_recent};
use crate::sync::{AtomicU64, Ordering};

/// One owned stripe's own line (module docs).
///
/// In this order (`repr(C)`): what a Success on the fast path reads and writes (`generation`,
/// `end`, `run`, the Successes count, `last_success`) lies in the first 64 bytes, so that a
/// Success touches one cache line of its stripe, not two. The rest is read on a roll, a
/// Failure or a rejection. 15 words: the line's 128 bytes hold them.
#[derive(Debug)]
#[repr(C)]
pub(crate) struct OwnedLine {
    pub(super) generation: AtomicU64,
    pub(super) end: AtomicU64,
    pub(super) run: AtomicU64,
    pub(super) counts: [AtomicU64; 3],
    pub(super) last_success: AtomicU64,
    pub(super) tag: AtomicU64,
    pub(super) bucket_end: AtomicU64,
    pub(super) ignored: AtomicU64,
    pub(super) rejected: AtomicU64,
    pub(super) run_start: AtomicU64,
    pub(super) last_failure: AtomicU64,
    pub(super) run_start_at: AtomicU64,
    pub(super) last_failure_at: AtomicU64,
    pub(super) budget: AtomicU64,
}

impl OwnedLine {
    /// A line no owner has written: in no bucket, with a fresh budget.
    pub(super) fn new() -> OwnedLine {
        let zero = || AtomicU64::new(0);
        OwnedLine {
            generation: AtomicU64::new(NO_BUCKET),
            end: zero(),
            run: zero(),
            counts: std::array::from_fn(|_| zero()),
            tag: zero(),
            bucket_end: zero(),
            ignored: zero(),
            rejected: zero(),
            last_success: zero(),
            run_start: zero(),
            last_failure: zero(),
            run_start_at: zero(),
            last_failure_at: zero(),
            budget: AtomicU64::new(FRESH_BUDGET),
        }
    }
}

/// What a reader sees of one owned stripe for the consecutive-failure check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RunView {
    /// Successes counted so far: only grows.
    pub(crate) successes: u64,
    /// The owner's local run in the reader's generation (0 if the stripe is in another one).
    pub(crate) run: u64,
    /// When the local run's first Failure was recorded (real clock, ns since the breaker's
    /// start); meaningless when `run` is 0.
    pub(crate) run_start: u64,
    /// When its latest Failure was recorded (same clock); meaningless when `run` is 0.
    pub(crate) last_failure: u64,
    /// The stamp its latest Success read ([`TimeSource::stamp`](crate::clock::TimeSource::stamp)),
    /// or a later one: a Success still in flight may have stored its own;
    /// [`UNKNOWN_START`](crate::consecutive::UNKNOWN_START) for a stripe that keeps none.
    pub(crate) last_success_at: u64,
    /// The stamps of `run_start` and `last_failure`; `run_start_at` is
    /// [`UNKNOWN_START`](crate::consecutive::UNKNOWN_START) for a stripe that keeps none.
    pub(crate) run_start_at: u64,
    pub(crate) last_failure_at: u64,
}

/// Whether stripes keep the stamps of the consecutive rule's "Failures after every
/// Success" bound. Not under loom: there every stripe reads as keeping none, so the bound is 0
/// and the models explore the rule's other atomics as they did without it (the stamps' bound
/// is checked by the pure models of `consecutive/schedules.rs`).
pub(crate) const STAMPS: bool = !cfg!(hotbreaker_loom);

/// Bits of the evaluation round a budget word keeps.
const BUDGET_ROUND_BITS: u32 = 16;

/// The budget word of a block no evaluation of this breaker has published a round for since
/// the block was taken: every Failure or slow call on it reads the window, until its own
/// evaluation publishes (see `evaluation.rs`, "Quotas"). All ones: a word that a spend can
/// otherwise reach only by saturating its count, which decides the same (the quota is spent).
pub(super) const FRESH_BUDGET: u64 = u64::MAX;
const BUDGET_SPENT_MAX: u64 = (1 << (64 - BUDGET_ROUND_BITS)) - 1;
const BUDGET_ROUND_MASK: u64 = (1 << BUDGET_ROUND_BITS) - 1;

#[derive(Debug)]
pub(super) struct Mark {
    pub(super) tag: AtomicU64,
    /// The tag of the bucket this one follows (0 for a stripe's first): tells a reader whether
    /// this mark is the end of the bucket before it, or the bucket in between was overwritten.
    pub(super) prev: AtomicU64,
    pub(super) base: [AtomicU64; 3],
}

/// Adds one to a counter only this thread writes: a plain load and store.
#[inline(always)]
pub(super) fn bump(counter: &AtomicU64) -> u64 {
    // Relaxed: the owner's own word (module docs). Release: a Success count publishes the
    // cleared local run (`write.rs`, "Local run"); the same `mov` on x86-64.
    let n = counter.load(Ordering::Relaxed).wrapping_add(1);
    counter.store(n, Ordering::Release);
    n
}

impl OwnedLine {
    /// A Success ends the owner's local run: cleared before the Success is counted (module
    /// docs). Writes only when there is a run to end (once per Failure at most).
    #[inline(always)]
    pub(super) fn end_run(&self) {
        // Relaxed: the owner's own word, published by the Success count's Release store.
        if self.run.load(Ordering::Relaxed) != 0 {
            self.run.store(0, Ordering::Relaxed);
        }
    }

    /// Whether this stripe never counted a Success: its block was claimed since its owner's
    /// last Success, if any (before the claim its owner counted on a shared stripe).
    /// Under loom a block is its stripe's from the build on (see [`Owned::new`](super::Owned::new)): no run
    /// begins elsewhere, and this is false.
    pub(crate) fn never_succeeded(&self) -> bool {
        // Relaxed: the owner's own word, read by its owner.
        !cfg!(hotbreaker_loom) && self.counts[SUCCESSES].load(Ordering::Relaxed) == 0
    }

    /// A Closed Failure of `generation` recorded at `now` (real clock, ns since the breaker's
    /// start) and at `at` (the recent time, on the clock's own scale, as a Success stamps it)
    /// counted in this stripe: the local run grows by one and is returned. 0 (nothing
    /// changed) when the stripe is in another generation (the Failure was late).
    pub(crate) fn lengthen_run(&self, generation: u64, now: u64, at: u64) -> u64 {
        // Relaxed: the owner's own words (module docs).
        if self.generation.load(Ordering::Relaxed) != generation {
            return 0;
        }
        // Relaxed: the owner's own word.
        let previous = self.run.load(Ordering::Relaxed);
        // Release, each: published by the run's Release store below too, but a reader that
        // reads the previous run, then one of these from this run (it loads them after the
        // run), then fences (`Acquire`) must also see the Success count that ended the previous
        // run, so that its second look at the count voids that pair (`read.rs`). The same `mov`
        // on x86-64.
        if previous == 0 {
            self.run_start.store(now, Ordering::Release);
            if STAMPS {
                self.run_start_at.store(at, Ordering::Release);
            }
        }
        self.last_failure.store(now, Ordering::Release);
        if STAMPS {
            self.last_failure_at.store(at, Ordering::Release);
        }
        let run = (previous + 1).min(u64::from(u32::MAX));
        // Release: a reader that sees this run sees its start (module docs).
        self.run.store(run, Ordering::Release);
        run
    }

    /// Counts a rejection on this line.
    #[inline(always)]
    pub(crate) fn add_rejected(&self) {
        bump(&self.rejected);
    }

    /// Spends one unit of the window-evaluation budget of evaluation `round`, whose quota per
    /// stripe is `quota`: true when the quota is used up and the window must be read. On the
    /// first spend under a new round one unit more is counted, for a Failure this owner may have
    /// counted after the evaluation read its stripe but before it saw the new round (see
    /// `docs/internals.md`, "Design notes", `evaluation.rs`).
    /// A block taken since the last evaluation was published is fresh: the quota was computed
    /// without it, so it spends nothing and evaluates ([`FRESH_BUDGET`]).
    pub(crate) fn spend_budget(&self, round: u64, quota: u64) -> bool {
        // Relaxed: the owner's own word.
        let word = self.budget.load(Ordering::Relaxed);
        if word == FRESH_BUDGET {
            return true;
        }
        let round = round & BUDGET_ROUND_MASK;
        let spent = if word >> (64 - BUDGET_ROUND_BITS) == round {
            (word & BUDGET_SPENT_MAX) + 1
        } else {
            2
        }
        .min(BUDGET_SPENT_MAX);
        self.budget.store(
            (round << (64 - BUDGET_ROUND_BITS)) | spent,
            Ordering::Relaxed,
        );
        spent >= quota
    }

    /// This owner just evaluated the window and published evaluation `round`: nothing of it
    /// spent yet.
    pub(crate) fn reset_budget(&self, round: u64) {
        // Relaxed: the owner's own word.
        self.budget.store(
            (round & BUDGET_ROUND_MASK) << (64 - BUDGET_ROUND_BITS),
            Ordering::Relaxed,
        );
    }

    /// The fast path: a Success of `generation` at recent time `recent` (on the clock's own
    /// scale) into this stripe's current bucket. False (nothing counted) when it belongs
    /// elsewhere or the recent time is not to be trusted (module docs): the caller then records
    /// it on the real clock. `real` reads the real clock on the same scale; it is called only
    /// when a check is due.
    #[inline(always)]
    pub(crate) fn try_success(
        &self,
        generation: u64,
        recent: u64,
        stamp: u64,
        real: impl FnOnce() -> u64,
    ) -> bool {
        self.count_success(generation, (recent, stamp), real, trust_recent)
    }

    /// [`try_success`](Self::try_success) on a clock whose recent time is its real time (a
    /// mock's): trusted without the thread's guard, whose memory is left alone.
    pub(crate) fn try_success_exact(
        &self,
        generation: u64,
        recent: u64,
        real: impl FnOnce() -> u64,
    ) -> bool {
        // A mock's stamp is its recent time (`TimeSource::stamp`).
        self.count_success(generation, (recent, recent), real, |_, _| true)
    }

    /// The fast path, with `trust` deciding whether a recent time inside the bucket may be used.
    #[inline(always)]
    fn count_success<R: FnOnce() -> u64>(
        &self,
        generation: u64,
        (recent, stamp): (u64, u64),
        real: R,
        trust: impl FnOnce(u64, R) -> bool,
    ) -> bool {
        // Relaxed: the owner's own words (module docs).
        if self.generation.load(Ordering::Relaxed) != generation {
            return false;
        }
        if recent >= self.end.load(Ordering::Relaxed) {
            return self.try_success_real((recent, stamp), real);
        }
        if !trust(recent, real) {
            return false;
        }
        self.count_success_at(stamp);
        true
    }

    /// Counts a Success stamped `at` (`TimeSource::stamp`): its stamp, then the end of the local
    /// run, then the count, whose `Release` store publishes both.
    #[inline(always)]
    pub(crate) fn count_success_at(&self, at: u64) {
        self.note_success(at);
        self.end_run();
        // Release (inside `bump`): publishes the stamp and the cleared run (module docs).
        bump(&self.counts[SUCCESSES]);
    }

    /// Stamps a Success about to be counted (by the slow way, `write.rs`) with `at`
    /// (`TimeSource::stamp`, read in its call): before its count, so a reader that sees the
    /// count sees this stamp or a later one.
    #[inline(always)]
    pub(crate) fn note_success(&self, at: u64) {
        if STAMPS {
            // Relaxed: the owner's own word, published by the count's Release store after it.
            self.last_success.store(at, Ordering::Relaxed);
        }
    }

    /// The fast path when the recent time is past the bucket or not trusted (no upkeep, or a
    /// frozen one): the Success is placed by the real clock, and the recent time trusted again
    /// if it is back within the tolerance.
    #[inline(never)]
    pub(super) fn try_success_real(
        &self,
        (recent, stamp): (u64, u64),
        real: impl FnOnce() -> u64,
    ) -> bool {
        let now = real();
        // Relaxed: the owner's own words.
        let bucket_end = self.bucket_end.load(Ordering::Relaxed);
        if now >= bucket_end {
            return false;
        }
        // A recent time of 0: no upkeep has ever run.
        if recent != 0 && now.saturating_sub(recent) <= RECENT_TOLERANCE_NS {
            self.end.store(bucket_end, Ordering::Relaxed);
        }
        self.count_success_at(stamp);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::offset_of;

    #[test]
    fn a_success_on_the_fast_path_touches_the_first_64_bytes_only() {
        let success_words = [
            offset_of!(OwnedLine, generation),
            offset_of!(OwnedLine, end),
            offset_of!(OwnedLine, run),
            offset_of!(OwnedLine, counts) + SUCCESSES * 8,
            offset_of!(OwnedLine, last_success),
        ];
        for offset in success_words {
            assert!(offset + 8 <= 64, "a word at {offset}");
        }
        assert!(std::mem::size_of::<OwnedLine>() <= 128, "one 128-byte line");
    }
}
