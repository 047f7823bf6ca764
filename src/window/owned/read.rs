//! Readers of owned stripes: a window's counts from the marks, lifetime totals, and the run the
//! consecutive-failure check reads. A reader never waits and never writes the owner's line.
//!
//! # Orderings
//! - **Marks**: a reader loads the tag (`Acquire`), the bases, an `Acquire` fence and the tag
//!   again, and uses the mark only if both agree. Tags never repeat, so a reader that saw a base
//!   of a later write sees a different tag the second time. A mark being rewritten is skipped.
//! - **Running counts** are read after the marks: the `Acquire` load of a mark's tag orders the
//!   count read after the owner's stores up to that mark: never below the mark's base.
//! - **Totals**: each counter only grows, read once each (`Relaxed`): exact once the owner is
//!   quiescent, a lower bound meanwhile.
//! - **Local run**: Success counts (`Acquire`) before `run`, so a Success seen comes with the run
//!   it ended; `generation` is read before and after (an `Acquire` fence between), and the run
//!   is taken only when both agree with the reader's generation.

use super::block::StripeLines;
use super::head::{Mark, OwnedLine, RunView, STAMPS};
use super::{Counts, INVALID, NO_BUCKET, Owned, SUCCESSES};
use crate::sync::{Ordering, fence};

impl Owned {
    /// What the consecutive-failure check reads of owned stripe `stripe` for `generation`
    /// ("Orderings" above; `consecutive.rs`).
    pub(crate) fn run_view(&self, stripe: usize, generation: u64) -> RunView {
        let Some(head) = self.head(stripe as u32) else {
            // No block yet: nothing counted, no run.
            return RunView::default();
        };
        // Acquire: see "Orderings" above.
        let successes = head.counts[SUCCESSES].load(Ordering::Acquire);
        // Relaxed: ordered after the count's Acquire load, which the stamp's store precedes
        // (`OwnedLine::count_success_at`): this count's latest Success's stamp, or a later one.
        let last_success_at = if STAMPS {
            head.last_success.load(Ordering::Relaxed)
        } else {
            crate::consecutive::UNKNOWN_START
        };
        let before = head.generation.load(Ordering::Acquire);
        // Acquire: a run seen comes with its start (`lengthen_run`).
        let run = head.run.load(Ordering::Acquire);
        // Relaxed: ordered by the Acquire loads above and the fence below. A value of a later
        // run, stored with `Release` (`lengthen_run`), makes the fence below see the Success
        // count that ended the run read above, so `again` voids the pair.
        let run_start = head.run_start.load(Ordering::Relaxed);
        let last_failure = head.last_failure.load(Ordering::Relaxed);
        let (run_start_at, last_failure_at) = if STAMPS {
            (
                head.run_start_at.load(Ordering::Relaxed),
                head.last_failure_at.load(Ordering::Relaxed),
            )
        } else {
            (crate::consecutive::UNKNOWN_START, 0)
        };
        fence(Ordering::Acquire);
        // Relaxed: after the fence, the seqlock's second read.
        let after = head.generation.load(Ordering::Relaxed);
        // A Success in between could have ended the run read and started another: then the
        // run and its start may belong to different runs, and count as none.
        let again = head.counts[SUCCESSES].load(Ordering::Relaxed);
        let whole = before == generation && after == generation && again == successes;
        RunView {
            successes,
            run: if whole { run } else { 0 },
            run_start,
            last_failure,
            last_success_at,
            run_start_at,
            last_failure_at,
        }
    }

    /// What every owned stripe that has its block counted in the buckets tagged `lo..=hi`,
    /// summed (saturating). `skip_idle`: a report's, which reads only the head line of a
    /// stripe that has not rolled into a bucket of the window (see [`rolled_since`]). A stripe
    /// without a block counted nothing; the blocks are visited once each, not looked up stripe
    /// by stripe.
    pub(crate) fn window_total(&self, lo: u64, hi: u64, skip_idle: bool) -> Counts {
        self.blocks()
            .filter(|lines| !skip_idle || rolled_since(lines.head, lo))
            .fold(Counts::default(), |Counts(sum), lines| {
                let Counts(c) = window(lines, lo, hi);
                Counts(std::array::from_fn(|k| sum[k].saturating_add(c[k])))
            })
    }

    /// What owned stripe `stripe` counted in the buckets tagged `lo..=hi` (module docs).
    #[cfg(test)]
    pub(crate) fn window(&self, stripe: usize, lo: u64, hi: u64) -> Counts {
        match self.block(stripe) {
            Some(lines) => window(lines, lo, hi),
            None => Counts::default(), // no block yet: nothing counted
        }
    }

    /// Whether the owner of `stripe` has rolled into a bucket tagged `lo` or later
    /// ([`rolled_since`]); false without a block (nothing counted).
    #[cfg(test)]
    pub(crate) fn rolled_since(&self, stripe: usize, lo: u64) -> bool {
        self.head(stripe as u32)
            .is_some_and(|head| rolled_since(head, lo))
    }

    /// Whether a bucket tagged `lo` or later may have been started (see
    /// [`started`](Owned::started)). Always true for `lo == 0`: a shared word starts out
    /// holding tag 0, so the bucket tagged 0 is counted into without a rotation.
    pub(crate) fn started_since(&self, lo: u64) -> bool {
        // Relaxed: see `started`. The word holds the newest tag plus one, 0 before any.
        lo == 0 || self.newest.load(Ordering::Relaxed) > lo
    }

    /// Lifetime Successes, Failures or slow calls (`k`) of every owned stripe.
    pub(crate) fn total(&self, k: usize) -> u64 {
        self.heads().fold(0u64, |sum, head| {
            // Relaxed: counters that only grow (module docs).
            sum.wrapping_add(head.counts[k].load(Ordering::Relaxed))
        })
    }

    pub(crate) fn ignored(&self) -> u64 {
        self.heads().fold(0u64, |sum, head| {
            // Relaxed: a counter that only grows.
            sum.wrapping_add(head.ignored.load(Ordering::Relaxed))
        })
    }

    pub(crate) fn rejected(&self) -> u64 {
        self.heads().fold(0u64, |sum, head| {
            // Relaxed: a counter that only grows.
            sum.wrapping_add(head.rejected.load(Ordering::Relaxed))
        })
    }
}

/// What the stripe of `lines` counted in the buckets tagged `lo..=hi` (module docs).
fn window(lines: StripeLines<'_>, lo: u64, hi: u64) -> Counts {
    // The first bucket in the window, the last one, and the first after it.
    let (mut first, mut last, mut after): (Option<Read>, Option<Read>, Option<Read>) =
        (None, None, None);
    for line in lines.tail.marks.iter() {
        for mark in line.iter() {
            let Some(read) = read_mark(mark) else {
                continue;
            };
            if (lo..=hi).contains(&read.tag) {
                if first.is_none_or(|f| read.tag < f.tag) {
                    first = Some(read);
                }
                if last.is_none_or(|l| read.tag > l.tag) {
                    last = Some(read);
                }
            } else if read.tag > hi && after.is_none_or(|a| read.tag < a.tag) {
                after = Some(read);
            }
        }
    }
    let (Some(first), Some(last)) = (first, last) else {
        return Counts::default();
    };
    let to = match after {
        // The mark that ends the window's last bucket: exact.
        Some(after) if after.prev <= hi => after.base,
        // No bucket after the window yet: the running counts, if the owner is still in a
        // bucket of the window when they are read.
        None => {
            let head = lines.head;
            // Relaxed, then the Acquire fence: a count added after a roll past `hi` makes
            // the tag read below see that roll ("Orderings" above).
            let counts = std::array::from_fn(|k| head.counts[k].load(Ordering::Relaxed));
            fence(Ordering::Acquire);
            if head.tag.load(Ordering::Relaxed) <= hi {
                counts
            } else {
                last.base
            }
        }
        // The bucket after the window's last one was overwritten, or is being written: up
        // to the start of the last bucket seen, a count that can only be low.
        Some(_) => last.base,
    };
    Counts(std::array::from_fn(|k| to[k].saturating_sub(first.base[k])))
}

/// Whether the owner of `head` has rolled into a bucket tagged `lo` or later. When it has
/// not, the stripe holds nothing for a window starting at `lo` as of this read: a mark of
/// that window being written now has no count after it yet (tags only grow). A report
/// reads this one word of an idle stripe instead of its marks; decisions do not, as it is
/// the line the owner writes on every call.
fn rolled_since(head: &OwnedLine, lo: u64) -> bool {
    // Relaxed: each load alone can show the stripe empty as of its own moment (a stripe
    // that never rolled, or whose bucket is older than `lo`); nothing else is read on the
    // strength of them.
    head.generation.load(Ordering::Relaxed) != NO_BUCKET && head.tag.load(Ordering::Relaxed) >= lo
}

/// A mark as a reader saw it, whole.
#[derive(Clone, Copy, Debug)]
struct Read {
    tag: u64,
    prev: u64,
    base: [u64; 3],
}

/// A mark if no roll rewrote it while it was read (module docs).
fn read_mark(mark: &Mark) -> Option<Read> {
    // Acquire: pairs with the tag's Release store; see "Orderings" above.
    let tag = mark.tag.load(Ordering::Acquire);
    if tag == INVALID {
        return None;
    }
    // Relaxed: validated by the second tag read after the fence.
    let prev = mark.prev.load(Ordering::Relaxed);
    let base = std::array::from_fn(|k| mark.base[k].load(Ordering::Relaxed));
    fence(Ordering::Acquire);
    // Relaxed: ordered by the fence above.
    (mark.tag.load(Ordering::Relaxed) == tag).then_some(Read { tag, prev, base })
}
