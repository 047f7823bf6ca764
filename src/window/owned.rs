//! Owned stripes: counters that exactly one thread writes at a time, so that it counts with a
//! plain load and store (no lock prefix) instead of a read-modify-write.
//!
//! Owned stripe `i` of a breaker is written only by the thread holding slot `i` of the
//! process-wide pool (see `thread_slot.rs`); every other thread only reads it. Threads without
//! a slot, or with one beyond the breaker's owned stripes, write the shared stripes
//! (`window/`).
//!
//! **Lines on first call.** A breaker holds, per owned stripe, only a cell (16 bytes) until the
//! holder of that slot calls it: the call then takes a *block* (the stripe's line and its marks)
//! from a process-wide reserve, without allocating or waiting (`stripe_reserve.rs`), and the
//! block stays the breaker's until it is dropped, which gives it back reset. A thread that finds
//! the reserve empty (or held) writes a shared stripe until a later call gets its block.
//! Readers take a stripe without a block as one that has counted nothing.
//!
//! The words of a block, who writes them, their bucket marks and their horizons: `owned/head.rs`.
//!
//! **A recent time that cannot freeze.** The fast path places a Success by quanta's recent time,
//! which stops moving if quanta's upkeep stops. A reading that moved since the last call is
//! trusted (the upkeep is alive). A reading seen again is checked against the real clock on the
//! 1st, 2nd, 4th, ... 64th repeat and every 64th after that; if it is more than
//! [`RECENT_TOLERANCE_NS`] behind, `end` drops to 0 and every outcome takes the real-clock way
//! until a call finds the recent time fresh again. After a pause, at most 63 Successes of a
//! thread land by a frozen reading (in an older bucket, never a newer one).
//!
//! # Orderings
//! - **A block's arrival**: its taker sets the stripe's cell (`OnceLock::set`, a release);
//!   readers get it with an acquire, so they see it as it was reset. The block came out of the
//!   reserve under its mutex, which the drop that reset it released (`stripe_reserve.rs`).
//! - **The owner's own words** are written with `Relaxed` plain stores and read back by the owner
//!   with `Relaxed` loads (a thread always sees its own writes). A new owner sees the previous
//!   owner's last writes through the pool's hand-over (`thread_slot.rs`).
//! - **Marks** are a seqlock whose sequence is the tag itself: the owner stores `INVALID`, a
//!   `Release` fence, the bases, then the tag with `Release`. A reader loads the tag (`Acquire`),
//!   the bases, an `Acquire` fence and the tag again; it uses the mark only if both tag reads
//!   agree. Tags never repeat, so a reader that saw a base of a later write sees a different
//!   tag the second time. A reader never waits: a mark being rewritten is skipped (it is the
//!   owner rolling into an interval later than the reader's window, or a mark already older
//!   than it).
//! - **Running counts** are read after the marks: the `Acquire` load of a mark's tag orders the
//!   later load of a running count after the owner's stores up to that mark, so the count read
//!   is never below the mark's base.
//! - **Totals**: each counter only grows, and a snapshot reads each once (`Relaxed`): exact
//!   once the owner is quiescent, a lower bound meanwhile.
//! - **Local run and Successes** (read by the consecutive-failure check, `consecutive.rs`): a
//!   Success clears `run` *before* it stores its count, and that store is `Release`; the reader
//!   loads the Success counts with `Acquire` before `run`, so a reader that sees a Success also
//!   sees the run it ended as ended (it can never pair a new Success with an old run). `run` is
//!   tagged by `generation`, which a roll into a new generation stores with `Release` after
//!   clearing `run`; the reader loads `generation`, `run`, an `Acquire` fence and `generation`
//!   again, and takes the run only when both loads agree with its own generation. On x86-64 a
//!   `Release` store is the same `mov` as a `Relaxed` one.

use std::sync::OnceLock;

use crate::clock::RealTime;
use crate::clock::check_due;
#[cfg(not(hotbreaker_loom))]
use crate::stripe_reserve;
use crate::stripe_reserve::Reserve;
use crate::sync::{AtomicU64, Ordering, fence};

mod block;
mod head;

#[cfg(not(hotbreaker_loom))]
pub(crate) use block::refill_reserves;
use block::{Block, reserve};
use head::{Mark, bump};
pub(crate) use head::{OwnedLine, RunView};

/// A mark's tag while it is being rewritten, and before its first write.
const INVALID: u64 = u64::MAX;

/// The generation of an owned stripe that has not rolled into any bucket yet.
const NO_BUCKET: u64 = u64::MAX;

/// Marks per 128-byte line.
const MARKS_PER_LINE: usize = 3;

/// The three running counts, in this order.
pub(crate) const SUCCESSES: usize = 0;
pub(crate) const FAILURES: usize = 1;
pub(crate) const SLOW: usize = 2;

/// What one owned stripe counts between two marks, or up to now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts(pub(crate) [u64; 3]);

/// The owned stripes of one breaker.
///
/// In this order, 32-byte aligned (`repr(C)`): what a Success reads to find its stripe and its
/// time (`blocks`, `fast`) lies in one 32-byte piece, so on one cache line.
#[repr(C, align(32))]
pub(crate) struct Owned {
    /// Owned stripe `i`'s block, once the holder of thread slot `i` has called the breaker.
    blocks: Box<[OnceLock<Box<Block>>]>,
    /// With a time window and a real clock, that clock's recent time without the clock: a
    /// Success then takes the fast path through [`fast_head`](Owned::fast_head) and reads no
    /// other line of the breaker. `None` otherwise: other breakers' Successes take their owned
    /// stripe's fast path too, one call away (a mock clock's recent time is the clock's own).
    /// Set once, before the breaker is shared.
    fast: Option<RealTime>,
    /// Marks per stripe: the window's buckets plus one (the mark that ends the window), 0
    /// without a time window.
    ring: u32,
    /// Where this breaker's blocks come from and go back to.
    reserve: &'static Reserve<Block>,
    /// One more than the newest tag any bucket of the breaker was started with (0 before any): by an owner's roll here, or
    /// by a rotation of a shared stripe's or the throttled ring's word (`window/`). Written
    /// with `fetch_max` at most once per bucket interval per stripe and word, never on the
    /// common path; reports skip a window no bucket of which was started. 64 bits of tags: see
    /// "Horizons". Not padded: its rare writes cost the readers of the fields beside it one
    /// miss per bucket interval at most. Past the handle's first 32 bytes, so on the 64-byte
    /// line after the breaker's hot one (in the same 128-byte pair): never on the line every
    /// call reads.
    newest: AtomicU64,
    /// The breaker's start on the clock's own scale (module docs, "Time").
    offset: u64,
}

impl std::fmt::Debug for Owned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Owned")
            .field("stripes", &self.blocks.len())
            .field("ring", &self.ring)
            .finish_non_exhaustive()
    }
}

impl Owned {
    /// `stripes` owned stripes with `ring` marks each (at least the window's buckets plus one,
    /// or 0), for a breaker that started `offset` ns after its clock's origin.
    pub(crate) fn new(stripes: usize, ring: u32, offset: u64) -> Owned {
        let lines = (ring as usize).div_ceil(MARKS_PER_LINE);
        let owned = Owned {
            blocks: (0..stripes).map(|_| OnceLock::new()).collect(),
            reserve: reserve(lines),
            newest: AtomicU64::new(0),
            offset,
            ring,
            fast: None,
        };
        // Loom's atomics live only as long as one run of a model: no block may outlive its
        // breaker in a reserve, so under loom every stripe gets a block of its own at once.
        #[cfg(hotbreaker_loom)]
        for cell in owned.blocks.iter() {
            let _ = cell.set(Box::new(Block::new(lines)));
        }
        #[cfg(not(hotbreaker_loom))]
        {
            owned.reserve.enter();
            // As many free blocks as this breaker has owned stripes: without an upkeep thread,
            // those are the blocks its threads' first calls can count on.
            owned.reserve.top_up(stripes, || Block::new(lines));
        }
        owned
    }

    /// Notes the breaker's clock's recent time if it is a real clock (see `fast`): before the
    /// breaker is shared.
    pub(crate) fn set_real_time(&mut self, time: Option<RealTime>) {
        self.fast = time.filter(|_| self.ring != 0);
    }

    /// Owned stripe `slot`'s line, as [`head`](Self::head) finds it, and the breaker's real
    /// clock's recent time, when the breaker has a time window and a real clock (see `fast`):
    /// the Success fast path's lookup.
    #[inline(always)]
    pub(crate) fn fast_head(&self, slot: u32) -> Option<(&OwnedLine, RealTime)> {
        match self.fast {
            Some(time) => self.head(slot).map(|head| (head, time)),
            None => None,
        }
    }

    /// Owned stripe `slot`'s block, if the breaker has that many and the slot's holder has
    /// taken it.
    #[inline(always)]
    fn block(&self, slot: usize) -> Option<&Block> {
        // Acquire (inside `get`): the block's contents as its taker found them.
        self.blocks.get(slot)?.get().map(|block| &**block)
    }

    /// Owned stripe `slot`'s line, if the breaker has that many and the slot's holder has taken
    /// its block.
    #[inline(always)]
    pub(crate) fn head(&self, slot: u32) -> Option<&OwnedLine> {
        self.block(slot as usize).map(|block| &*block.head)
    }

    /// Whether owned stripe `slot` has its block: the caller, the holder of thread slot `slot`,
    /// takes one from the reserve if not. False when the breaker has no such stripe or the
    /// reserve is empty or held (the caller then counts on a shared stripe, and the reserve is
    /// refilled off the call path, see `stripe_reserve.rs`). Never allocates, never waits.
    pub(crate) fn claim(&self, slot: usize) -> bool {
        let Some(cell) = self.blocks.get(slot) else {
            return false;
        };
        if cell.get().is_some() {
            return true;
        }
        let Some(block) = self.reserve.take() else {
            return false;
        };
        // Only the slot's holder sets its cell, so the set never waits on another, and never
        // finds the cell set.
        let set = cell.set(block);
        debug_assert!(set.is_ok(), "only the slot's holder sets its cell");
        true
    }

    /// Gives every owned stripe a block of its own, not from the reserve (which tests running
    /// at the same time share).
    #[cfg(test)]
    pub(crate) fn claim_all(&self) {
        for cell in self.blocks.iter() {
            let _ = cell.set(Box::new(Block::new(
                (self.ring as usize).div_ceil(MARKS_PER_LINE),
            )));
        }
    }

    /// Owned stripes the breaker may have: the `stripes` setting.
    #[inline]
    pub(crate) fn count(&self) -> usize {
        self.blocks.len()
    }

    /// The reserve this breaker's blocks come from.
    #[cfg(test)]
    pub(crate) fn reserve(&self) -> &'static Reserve<Block> {
        self.reserve
    }

    /// Owned stripes that have their block.
    #[cfg(test)]
    pub(crate) fn taken(&self) -> usize {
        self.blocks
            .iter()
            .filter(|cell| cell.get().is_some())
            .count()
    }

    #[cfg(any(test, feature = "test-util"))]
    pub(crate) fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.blocks)
            + self
                .blocks
                .iter()
                .filter_map(|cell| cell.get())
                .map(|block| block.heap_bytes())
                .sum::<usize>()
    }

    fn mark<'a>(&self, block: &'a Block, tag: u64) -> &'a Mark {
        // A division, but only on a roll or a read, never on the fast path.
        let index = (tag % u64::from(self.ring)) as usize;
        &block.marks[index / MARKS_PER_LINE][index % MARKS_PER_LINE]
    }

    /// [`OwnedLine::try_success`] on owned stripe `stripe`.
    #[cfg(test)]
    fn try_success(
        &self,
        stripe: usize,
        generation: u64,
        recent: u64,
        real: impl FnOnce() -> u64,
    ) -> bool {
        self.head(stripe as u32)
            .is_some_and(|head| head.try_success(generation, recent, real))
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
        let Some(block) = self.block(stripe) else {
            // Only a stripe with its block is ever given to a writer: not reached.
            return false;
        };
        let head = &*block.head;
        // Relaxed: the owner's own words (module docs).
        let current = head.generation.load(Ordering::Relaxed);
        let current_tag = head.tag.load(Ordering::Relaxed);
        let in_bucket = if current == NO_BUCKET || (generation >= current && tag > current_tag) {
            self.roll(block, generation, tag, end);
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
            head.bucket_end.load(Ordering::Relaxed)
        } else {
            0
        };
        // Relaxed: the owner's own word.
        head.end.store(end, Ordering::Relaxed);
        true
    }

    /// Starts the bucket `tag` of `generation`, ending at `end`: writes its mark.
    fn roll(&self, block: &Block, generation: u64, tag: u64, end: u64) {
        let head = &*block.head;
        if self.ring != 0 {
            let mark = self.mark(block, tag);
            // The seqlock of the module's "Orderings": invalidate, fence, bases, tag.
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
        // (module docs, "Orderings").
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

    /// What the consecutive-failure check reads of owned stripe `stripe` for `generation`
    /// (module docs, "Local run and Successes"; `consecutive.rs`).
    pub(crate) fn run_view(&self, stripe: usize, generation: u64) -> RunView {
        let Some(head) = self.head(stripe as u32) else {
            // No block yet: nothing counted, no run.
            return RunView::default();
        };
        // Acquire: see the module's "Orderings".
        let successes = head.counts[SUCCESSES].load(Ordering::Acquire);
        let before = head.generation.load(Ordering::Acquire);
        // Acquire: a run seen comes with its start (`lengthen_run`).
        let run = head.run.load(Ordering::Acquire);
        // Relaxed: ordered by the Acquire loads above and the fence below.
        let run_start = head.run_start.load(Ordering::Relaxed);
        let last_failure = head.last_failure.load(Ordering::Relaxed);
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
        }
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

    /// What owned stripe `stripe` counted in the buckets tagged `lo..=hi` (module docs).
    pub(crate) fn window(&self, stripe: usize, lo: u64, hi: u64) -> Counts {
        let Some(block) = self.block(stripe) else {
            return Counts::default(); // no block yet: nothing counted
        };
        // The first bucket in the window, the last one, and the first after it.
        let (mut first, mut last, mut after): (Option<Read>, Option<Read>, Option<Read>) =
            (None, None, None);
        for line in block.marks.iter() {
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
                let head = &*block.head;
                // Relaxed, then the Acquire fence: a count added after a roll past `hi` makes
                // the tag read below see that roll (module docs, "Orderings").
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

    /// Whether a bucket tagged `lo` or later may have been started (see
    /// [`started`](Owned::started)). Always true for `lo == 0`: a shared word starts out
    /// holding tag 0, so the bucket tagged 0 is counted into without a rotation.
    pub(crate) fn started_since(&self, lo: u64) -> bool {
        // Relaxed: see `started`. The word holds the newest tag plus one, 0 before any.
        lo == 0 || self.newest.load(Ordering::Relaxed) > lo
    }

    /// Whether the owner of `stripe` has rolled into a bucket tagged `lo` or later. When it has
    /// not, the stripe holds nothing for a window starting at `lo` as of this read: a mark of
    /// that window being written now has no count after it yet (tags only grow). A report
    /// reads this one word of an idle stripe instead of its marks; decisions do not, as it is
    /// the line the owner writes on every call.
    pub(crate) fn rolled_since(&self, stripe: usize, lo: u64) -> bool {
        let Some(head) = self.head(stripe as u32) else {
            return false; // no block yet: nothing counted
        };
        // Relaxed: each load alone can show the stripe empty as of its own moment (a stripe
        // that never rolled, or whose bucket is older than `lo`); nothing else is read on the
        // strength of them.
        head.generation.load(Ordering::Relaxed) != NO_BUCKET
            && head.tag.load(Ordering::Relaxed) >= lo
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

impl Owned {
    /// The lines of the owned stripes that have their block.
    fn heads(&self) -> impl Iterator<Item = &OwnedLine> {
        self.blocks
            .iter()
            .filter_map(|cell| cell.get())
            .map(|block| &*block.head)
    }
}

/// Gives the blocks back to the reserve, reset, for the next breaker (see `stripe_reserve.rs`,
/// "Size").
impl Drop for Owned {
    fn drop(&mut self) {
        // Under loom the blocks are the breaker's own (see `new`).
        #[cfg(not(hotbreaker_loom))]
        {
            let blocks = self.blocks.iter_mut().filter_map(OnceLock::take).collect();
            self.reserve
                .leave(blocks, stripe_reserve::target(), Block::reset);
        }
    }
}

/// Moves `head` into `generation` if it is in an older one (or none): see [`Owned::enter`].
fn enter(head: &OwnedLine, generation: u64) {
    // Relaxed: the owner's own word.
    let current = head.generation.load(Ordering::Relaxed);
    if current == NO_BUCKET || generation > current {
        head.run.store(0, Ordering::Relaxed);
        // Release: after the cleared run (module docs, "Local run and Successes").
        head.generation.store(generation, Ordering::Release);
    }
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
    // Acquire: pairs with the tag's Release store; see the module's "Orderings".
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

#[cfg(test)]
mod tests;
