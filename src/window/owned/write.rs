//! The owner's side of an owned stripe: the fast path's slow half, rolls into new buckets, the
//! local run, and the counts no bucket holds.
//!
//! # Orderings
//! - **The owner's own words** are written with `Relaxed` plain stores and read back by the owner
//!   with `Relaxed` loads (a thread always sees its own writes). A new owner sees the previous
//!   owner's last writes through the pool's hand-over (`thread_slot.rs`).
//! - **Marks** are a seqlock whose sequence is the tag itself: the owner stores `INVALID`, a
//!   `Release` fence, the bases, then the tag with `Release` (readers: `read.rs`).
//! - **Local run**: a Success clears `run` *before* it stores its count, with `Release`. A roll
//!   into a new generation clears `run`, then stores `generation` with `Release`. On x86-64 a
//!   `Release` store is the same `mov` as a `Relaxed` one.
//! - **`newest`** grows by `fetch_max` (`Relaxed`, see [`Owned::started`]).

use super::block::StripeLines;
use super::head::{Mark, OwnedLine, bump};
use super::{INVALID, MARKS_PER_LINE, NO_BUCKET, Owned, SUCCESSES};
use crate::sync::{Ordering, fence};

impl Owned {
    pub(super) fn mark<'a>(&self, lines: StripeLines<'a>, tag: u64) -> &'a Mark {
        // A division, but only on a roll or a read, never on the fast path.
        let index = (tag % u64::from(self.ring)) as usize;
        &lines.tail.marks[index / MARKS_PER_LINE][index % MARKS_PER_LINE]
    }

    /// [`OwnedLine::try_success`] on owned stripe `stripe`.
    #[cfg(test)]
    pub(super) fn try_success(
        &self,
        stripe: usize,
        generation: u64,
        recent: u64,
        real: impl FnOnce() -> u64,
    ) -> bool {
        self.head(stripe as u32)
            .is_some_and(|head| head.try_success(generation, recent, recent, real))
    }

    /// Records an outcome of `generation` whose interval (read on the real clock) has the tag
    /// `tag` and ends at `end`: into the current bucket, or into a new one (a roll). `kinds`
    /// are the running counts to add one to. `trust_recent`: whether the recent time was found
    /// within the tolerance of the real clock just now, which opens the fast path (or keeps it
    /// closed). False, and nothing counted, for a permit of a generation older than the current
    /// bucket's: the caller counts it as late.
    pub(crate) fn record(
        &self,
        stripe: usize,
        generation: u64,
        (tag, end): (u64, u64),
        kinds: &[usize],
        trust_recent: bool,
    ) -> bool {
        let Some(lines) = self.block(stripe) else {
            // Only a stripe with its block is ever given to a writer: not reached.
            return false;
        };
        let head = lines.head;
        // Relaxed: the owner's own words (module docs).
        let current = head.generation.load(Ordering::Relaxed);
        let current_tag = head.tag.load(Ordering::Relaxed);
        let in_bucket = if current == NO_BUCKET || (generation >= current && tag > current_tag) {
            self.roll(lines, generation, tag, end);
            true
        } else {
            // The same generation at an instant not later than the current bucket: counted
            // there (at most a clock's lag later than it happened). An older generation: late.
            generation == current
        };
        if !in_bucket {
            return false;
        }
        if kinds[0] == SUCCESSES {
            head.end_run();
        }
        for &k in kinds {
            bump(&head.counts[k]);
        }
        let end = if trust_recent {
            // Relaxed: the owner's own word.
            head.bucket_end.load(Ordering::Relaxed)
        } else {
            0
        };
        // Relaxed: the owner's own word.
        head.end.store(end, Ordering::Relaxed);
        true
    }

    /// Starts the bucket `tag` of `generation`, ending at `end`: writes its mark.
    pub(super) fn roll(&self, lines: StripeLines<'_>, generation: u64, tag: u64, end: u64) {
        let head = lines.head;
        if self.ring != 0 {
            let mark = self.mark(lines, tag);
            // The seqlock of "Orderings" above: invalidate, fence, bases, tag.
            mark.tag.store(INVALID, Ordering::Relaxed);
            fence(Ordering::Release);
            // Relaxed: published by the tag's Release store below.
            mark.prev
                .store(head.tag.load(Ordering::Relaxed), Ordering::Relaxed);
            for (base, count) in mark.base.iter().zip(&head.counts) {
                // Relaxed: published by the tag's Release store below.
                base.store(count.load(Ordering::Relaxed), Ordering::Relaxed);
            }
            mark.tag.store(tag, Ordering::Release);
        }
        self.started(tag);
        // Relaxed: the owner's own words.
        head.tag.store(tag, Ordering::Relaxed);
        head.bucket_end
            .store(end.saturating_add(self.offset), Ordering::Relaxed);
        enter(head, generation);
        // Release: a reader that sees a count added after this roll sees the new tag too
        // ("Orderings" above).
        fence(Ordering::Release);
    }

    /// Moves owned stripe `stripe` into `generation` if it is in an older one (or none): its
    /// local run, which belongs to its generation, starts again from 0. A time window's roll
    /// does this; a count window, which has no buckets, calls it before each Closed outcome.
    pub(crate) fn enter(&self, stripe: usize, generation: u64) {
        if let Some(head) = self.head(stripe as u32) {
            enter(head, generation);
        }
    }

    /// Notes that a bucket tagged `tag` is being started, before anything is counted in it: an
    /// owner's roll, or a shared word's rotation (before its swap; a swap that then loses only
    /// makes reports read a window they could have skipped).
    pub(crate) fn started(&self, tag: u64) {
        // Relaxed: a report that loads an older value skips the window, which is right for every
        // count that happens-before the report: an owner writes this word before its roll's
        // counts; a shared rotation writes it before its swap, which releases it to every add
        // into the bucket (`window/mod.rs`, "Orderings"). A count concurrent with the report may be
        // missed, as a snapshot may lag by the outcomes in flight. fetch_max keeps the word
        // monotonic.
        self.newest
            .fetch_max(tag.saturating_add(1), Ordering::Relaxed);
    }

    /// Adds one outcome of `kinds` of the current generation that no bucket holds (a count
    /// window's): a Success ends the local run.
    pub(crate) fn add_outside(&self, stripe: usize, kinds: &[usize]) {
        let Some(head) = self.head(stripe as u32) else {
            return; // only a stripe with its block is given to a writer: not reached
        };
        if kinds[0] == SUCCESSES {
            head.end_run();
        }
        for &k in kinds {
            bump(&head.counts[k]);
        }
    }

    pub(crate) fn add_ignored(&self, stripe: usize) {
        if let Some(head) = self.head(stripe as u32) {
            bump(&head.ignored);
        }
    }

    /// Counts a rejection; returns the stripe's rejections so far.
    #[inline]
    pub(crate) fn add_rejected(&self, stripe: usize) -> u64 {
        self.head(stripe as u32)
            .map_or(0, |head| bump(&head.rejected))
    }
}

/// Moves `head` into `generation` if it is in an older one (or none): see [`Owned::enter`].
fn enter(head: &OwnedLine, generation: u64) {
    // Relaxed: the owner's own word.
    let current = head.generation.load(Ordering::Relaxed);
    if current == NO_BUCKET || generation > current {
        head.run.store(0, Ordering::Relaxed);
        // Release: after the cleared run ("Orderings" above, "Local run").
        head.generation.store(generation, Ordering::Release);
    }
}
