//! Owned stripes: counters that exactly one thread writes at a time, so that it counts with a
//! plain load and store (no lock prefix) instead of a read-modify-write.
//!
//! Owned stripe `i` is written only by the thread holding slot `i` of the process-wide pool
//! (`thread_slot.rs`); others only read it. A breaker holds, per owned stripe, only a cell until
//! that thread calls it: the call then takes a *block* (the stripe's line and its marks) from a
//! process-wide reserve without allocating or waiting (`stripe_reserve.rs`); a dropped breaker
//! gives it back reset. The owner's side is `write.rs`, the readers' `read.rs`, the words and
//! their horizons `head.rs`.
//!
//! # Orderings
//! - **A block's arrival**: its taker sets the stripe's cell (`OnceLock::set`, a release);
//!   readers get it with an acquire, so they see it as it was reset. The block came out of the
//!   reserve under its mutex, which the drop that reset it released (`stripe_reserve.rs`).

use std::sync::OnceLock;

use crate::clock::RealTime;
use crate::clock::check_due;
#[cfg(not(hotbreaker_loom))]
use crate::stripe_reserve;
use crate::stripe_reserve::Reserve;
use crate::sync::AtomicU64;

mod block;
mod head;
mod read;
mod write;

#[cfg(not(hotbreaker_loom))]
pub(crate) use block::refill_reserves;
use block::{Block, reserve};
use head::Mark;
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
    /// `owned/head.rs`, "Horizons". Not padded: its rare writes cost the readers of the fields beside it one
    /// miss per bucket interval at most. Past the handle's first 32 bytes, so on the 64-byte
    /// line after the breaker's hot one (in the same 128-byte pair): never on the line every
    /// call reads.
    newest: AtomicU64,
    /// The breaker's start on the clock's own scale (`owned/head.rs`, "Time").
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
    /// Marks per stripe: the window's buckets plus one, 0 without a time window (what the
    /// shared stripes' rings hold per kind too).
    pub(crate) fn ring(&self) -> usize {
        self.ring as usize
    }

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

/// Gives the blocks back to the reserve, reset, for the next breaker (see
/// `docs/internals.md`, "Design notes", `stripe_reserve.rs`, "Size").
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

#[cfg(test)]
mod tests;
