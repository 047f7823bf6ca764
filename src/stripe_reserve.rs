//! A process-wide reserve of owned-stripe blocks: a thread's first call on a breaker takes its
//! block from here instead of allocating it, so a breaker holds lines only for the threads that
//! call it, and the call path never allocates (see `owned.rs`).
//!
//! Blocks are allocated off the call path and pushed here: when a breaker is built (topping the
//! reserve up to [`target`] free blocks), and by [`start_upkeep`](crate::start_upkeep)'s thread
//! on its next tick after a call found the reserve empty (twice as many each tick while calls
//! keep finding it empty). A breaker's drop gives its blocks back, reset. A call that finds the
//! reserve empty counts on the breaker's shared stripes meanwhile, as a thread beyond the owned
//! stripes does.
//!
//! # Size
//! The reserve keeps what a burst of first calls needs and no more: a drop keeps a block only
//! while fewer than [`target`] are free (or fewer than a refill in progress asked for), and an
//! upkeep tick with no call asking for blocks frees those beyond [`target`]. Never more than
//! [`CAPACITY`] per block size.
//!
//! # Orderings
//! The free blocks sit in a bounded lock-free queue (crossbeam's `ArrayQueue`): a push releases
//! the block's contents, the pop that takes it acquires them, so the taker sees the block exactly
//! as it was reset. `wanted` and `batch` are hints (`Relaxed`): a refill that misses `wanted`
//! refills a tick later, and a drop that misses `batch` frees a block a refill then allocates.
//!
//! # Shared writes
//! A take is a compare-and-swap on the queue's head and a store to the slot it empties, once per
//! thread and breaker (the block is the breaker's from then on); a take that meets a push still
//! in progress spins until it completes (a few instructions, unless the pusher is preempted). A
//! call that finds the queue empty reads its length (two loads, no write) and writes `wanted`
//! only when it is not set already: at most once per refill.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crossbeam_queue::ArrayQueue;

/// Free blocks a reserve keeps at most; more given back are freed.
const CAPACITY: usize = 1024;

/// Free blocks of one size.
pub(crate) struct Reserve<T> {
    free: ArrayQueue<Box<T>>,
    /// Set by a take that found the queue empty, cleared by the refill that follows it.
    wanted: AtomicBool,
    /// Free blocks the next refill leaves: doubled by each refill that finds `wanted` set
    /// again, back to the target after one that does not. Only the upkeep thread uses it.
    batch: AtomicUsize,
}

impl<T> std::fmt::Debug for Reserve<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reserve")
            .field("free", &self.free.len())
            .finish_non_exhaustive()
    }
}

#[cfg_attr(hotbreaker_loom, allow(dead_code))] // loom's blocks are never pooled
/// Free blocks a build or a refill leaves in a reserve: one per available CPU (at least 2, at
/// most 64), so that the threads of one machine's worth of cores that first call a new breaker
/// all find a block at once. Read once.
pub(crate) fn target() -> usize {
    static TARGET: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *TARGET.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(2, usize::from)
            .clamp(2, 64)
    })
}

impl<T> Reserve<T> {
    pub(crate) fn new() -> Reserve<T> {
        Reserve {
            free: ArrayQueue::new(CAPACITY),
            wanted: AtomicBool::new(false),
            batch: AtomicUsize::new(0),
        }
    }

    /// A free block, or `None` (and the next refill asked for) when there is none. Never
    /// allocates.
    #[inline]
    pub(crate) fn take(&self) -> Option<Box<T>> {
        // The length first: a pop of an empty queue issues a full fence, a cost every call of
        // a thread that waits for its block would pay.
        let block = if self.free.is_empty() {
            None
        } else {
            self.free.pop()
        };
        // Relaxed: a hint (module docs); written only when not set, so an empty reserve costs
        // its callers a read of the flag, not a write each.
        if block.is_none() && !self.wanted.load(Ordering::Relaxed) {
            self.wanted.store(true, Ordering::Relaxed);
        }
        block
    }

    /// Gives a block back (reset by the caller): kept while fewer than `keep` (or than the
    /// refill in progress asked for) are free, freed otherwise (module docs, "Size").
    pub(crate) fn give(&self, block: Box<T>, keep: usize) {
        // Relaxed: a hint (module docs).
        let keep = keep.max(self.batch.load(Ordering::Relaxed)).min(CAPACITY);
        if self.free.len() < keep {
            drop(self.free.push(block));
        }
    }

    #[cfg_attr(hotbreaker_loom, allow(dead_code))] // loom's blocks are never pooled
    /// Allocates blocks with `make` until `to` are free (at most the capacity). Off the call
    /// path only.
    pub(crate) fn top_up(&self, to: usize, make: impl Fn() -> T) {
        while self.free.len() < to.min(CAPACITY) {
            if self.free.push(Box::new(make())).is_err() {
                break;
            }
        }
    }

    #[cfg_attr(hotbreaker_loom, allow(dead_code))] // loom's blocks are never pooled
    /// Tops the reserve up if a take found it empty since the last refill: to `to` free blocks
    /// at first, then twice as many on each refill in a row that finds it asked for again (so
    /// that a burst of first calls, say one thread calling 10 000 new breakers, is served within
    /// a few refills), up to the capacity. A refill that finds nothing asked for frees the
    /// blocks beyond `to`.
    pub(crate) fn refill(&self, to: usize, make: impl Fn() -> T) {
        // Relaxed: a hint (module docs); `batch` is the refilling thread's own.
        if self.wanted.swap(false, Ordering::Relaxed) {
            let batch = self
                .batch
                .load(Ordering::Relaxed)
                .saturating_mul(2)
                .clamp(to, CAPACITY);
            self.batch.store(batch, Ordering::Relaxed);
            self.top_up(batch, make);
        } else {
            self.batch.store(0, Ordering::Relaxed);
            // Nobody asked since the last tick: blocks beyond `to` go (module docs, "Size").
            while self.free.len() > to {
                drop(self.free.pop());
            }
        }
    }

    /// Free blocks now.
    #[cfg(test)]
    pub(crate) fn free(&self) -> usize {
        self.free.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_take_from_an_empty_reserve_asks_the_next_refill_for_blocks() {
        let r: Reserve<u64> = Reserve::new();
        r.refill(3, || 7);
        assert_eq!(r.free(), 0, "nobody asked");
        assert_eq!(r.take(), None);
        r.refill(3, || 7);
        assert_eq!(r.free(), 3);
        assert_eq!(r.take().map(|b| *b), Some(7));
        r.refill(3, || 7);
        assert_eq!(r.free(), 2, "a take that found a block asks for nothing");
    }

    #[test]
    fn refills_asked_for_again_and_again_double_up_to_the_capacity() {
        let r: Reserve<u8> = Reserve::new();
        let mut sizes = Vec::new();
        for _ in 0..12 {
            while r.take().is_some() {}
            r.refill(2, || 0);
            sizes.push(r.free());
        }
        assert_eq!(
            sizes,
            [2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 1024, 1024]
        );
        r.refill(2, || 0);
        while r.take().is_some() {}
        r.refill(2, || 0);
        assert_eq!(
            r.free(),
            2,
            "a quiet refill in between starts again from the target"
        );
    }

    #[test]
    fn top_up_and_give_stop_at_the_capacity() {
        let r: Reserve<u8> = Reserve::new();
        r.top_up(usize::MAX, || 0);
        assert_eq!(r.free(), CAPACITY);
        r.give(Box::new(1), usize::MAX);
        assert_eq!(r.free(), CAPACITY);
        r.top_up(2, || 0);
        assert_eq!(r.free(), CAPACITY, "top_up never takes blocks away");
    }

    #[test]
    fn gives_keep_blocks_only_up_to_the_bound_or_the_refill_in_progress() {
        let r: Reserve<u8> = Reserve::new();
        for _ in 0..5 {
            r.give(Box::new(0), 3);
        }
        assert_eq!(r.free(), 3, "beyond the bound a given block is freed");
        while r.take().is_some() {}
        r.refill(2, || 0);
        while r.take().is_some() {}
        r.refill(2, || 0);
        assert_eq!(r.free(), 4, "a refill in a row asked for twice the target");
        for _ in 0..10 {
            r.give(Box::new(0), 2);
        }
        assert_eq!(r.free(), 4, "kept up to the refill's batch, not the bound");
    }

    #[test]
    fn a_tick_nobody_asked_for_trims_the_reserve_back_to_the_target() {
        let r: Reserve<u8> = Reserve::new();
        r.top_up(40, || 0);
        r.refill(3, || 0);
        assert_eq!(r.free(), 3);
        r.refill(3, || 0);
        assert_eq!(r.free(), 3, "never below the target");
    }

    #[test]
    fn an_empty_reserve_asks_once_and_gives_nothing() {
        let r: Reserve<u8> = Reserve::new();
        for _ in 0..100 {
            assert_eq!(r.take(), None);
        }
        assert!(r.wanted.load(Ordering::Relaxed));
        r.refill(2, || 9);
        assert!(!r.wanted.load(Ordering::Relaxed), "the refill answered it");
        assert_eq!(r.free(), 2);
    }

    #[test]
    fn the_build_target_follows_the_machine_within_bounds() {
        assert!((2..=64).contains(&target()));
    }
}
