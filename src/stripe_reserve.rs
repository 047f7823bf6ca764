//! A process-wide reserve of owned-stripe blocks: a thread's first call on a breaker takes its
//! block from here instead of allocating it, so a breaker holds lines only for the threads that
//! call it, and the call path never allocates (see `owned.rs`).
//!
//! Blocks are allocated off the call path and put here: when a breaker is built (topping the
//! reserve up to as many free blocks as the breaker has owned stripes), and by
//! [`start_upkeep`](crate::start_upkeep)'s thread on its next tick after a call found the
//! reserve empty (twice as many each tick while calls keep finding it empty). Without that
//! thread, only what builds left is handed out. A breaker's drop gives its blocks back, reset. A
//! call that finds the reserve empty, or held by another thread, counts on the breaker's shared
//! stripes meanwhile, as a thread beyond the owned stripes does, and tries again on its next
//! call.
//!
//! # Never waiting
//! The free blocks are a `Vec` behind a mutex that no thread ever sleeps on: a call only
//! *tries* it (one compare-and-swap) and goes on without a block when another thread holds it;
//! builds, drops and the upkeep thread, off the call path, try it in a loop that yields between
//! tries. So a call never waits for another thread (a holder preempted mid-push delays nothing
//! but the next claims), and an unlock never has a sleeper to wake (no system call). The holder
//! holds it for one push or pop: blocks are allocated and freed outside it.
//!
//! # Size
//! The reserve keeps what a burst of first calls needs and no more: a drop keeps a block only
//! while fewer than [`target`] are free and another breaker of the same block size lives, and an
//! upkeep tick with no call asking for blocks frees those beyond [`target`] (all of them when no
//! breaker of that size lives). Never more than [`CAPACITY`] per block size.
//!
//! # Orderings
//! The mutex orders a block's contents: the giver's unlock releases the reset block, the
//! taker's lock acquires it. `len` (the number of free blocks, stored under the mutex), `wanted`,
//! `batch` and `users` are hints (`Relaxed`): a call that reads a stale `len` tries the mutex
//! for nothing or waits a call longer, a refill that misses `wanted` refills a tick later, a drop
//! or a refill that misreads `users` or `batch` keeps or frees one block too many.
//!
//! # Shared writes
//! A take writes the mutex twice (lock, unlock) and `len` once, once per thread and breaker (the
//! block is the breaker's from then on). A call that finds the reserve empty reads `len` and
//! `wanted`, on one line, and writes `wanted` only when it is not set already: at most once per
//! refill. The upkeep thread reads `wanted` on every tick and clears it only when set.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, TryLockError};

/// Free blocks a reserve keeps at most; more given back are freed.
const CAPACITY: usize = 1024;

/// Free blocks of one size.
pub(crate) struct Reserve<T> {
    /// Never slept on (module docs, "Never waiting"): a `std` mutex, not the `sync` shim's,
    /// since loom models never pool blocks.
    free: Mutex<Vec<Box<T>>>,
    /// `free.len()`, stored under the mutex: lets a call see an empty reserve without trying it.
    len: AtomicUsize,
    /// Set by a take that found the reserve empty, cleared by the refill that follows it.
    wanted: AtomicBool,
    /// Free blocks the next refill leaves: doubled by each refill that finds `wanted` set
    /// again, back to the target after one that does not. Only the upkeep thread uses it.
    batch: AtomicUsize,
    /// Breakers of this block size alive now.
    users: AtomicUsize,
}

impl<T> std::fmt::Debug for Reserve<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reserve")
            .field("free", &self.len.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

#[cfg_attr(hotbreaker_loom, allow(dead_code))] // loom's blocks are never pooled
/// Free blocks a refill leaves in a reserve, and a drop or a quiet tick keeps: one per
/// available CPU (at least 2, at most 64), so that the threads of one machine's worth of cores
/// that first call a new breaker all find a block at once. Read once.
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
            free: Mutex::new(Vec::new()),
            len: AtomicUsize::new(0),
            wanted: AtomicBool::new(false),
            batch: AtomicUsize::new(0),
            users: AtomicUsize::new(0),
        }
    }

    /// The free blocks, for a caller off the call path: tries the mutex until it has it,
    /// yielding between tries, never sleeping on it (module docs, "Never waiting").
    fn hold(&self) -> MutexGuard<'_, Vec<Box<T>>> {
        loop {
            match self.free.try_lock() {
                Ok(free) => return free,
                // A panic while holding it cannot leave the `Vec` half-changed.
                Err(TryLockError::Poisoned(poisoned)) => return poisoned.into_inner(),
                Err(TryLockError::WouldBlock) => std::thread::yield_now(),
            }
        }
    }

    /// A free block, or `None` when there is none (the next refill is then asked for) or
    /// another thread holds the reserve. Never allocates, never waits.
    #[inline]
    pub(crate) fn take(&self) -> Option<Box<T>> {
        // Relaxed: a hint (module docs).
        if self.len.load(Ordering::Relaxed) != 0 {
            let mut free = match self.free.try_lock() {
                Ok(free) => free,
                Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
                // Held: this call goes on without a block, a later one tries again.
                Err(TryLockError::WouldBlock) => return None,
            };
            let block = free.pop();
            // Relaxed: stored under the mutex (module docs).
            self.len.store(free.len(), Ordering::Relaxed);
            if block.is_some() {
                return block;
            }
        }
        // Relaxed: a hint (module docs); written only when not set, so an empty reserve costs
        // its callers a read of the flag, not a write each.
        if !self.wanted.load(Ordering::Relaxed) {
            self.wanted.store(true, Ordering::Relaxed);
        }
        None
    }

    /// Gives blocks back (reset by the caller): each kept while fewer than `keep` are free,
    /// freed otherwise (after the mutex is let go). Off the call path only.
    pub(crate) fn give(&self, blocks: impl IntoIterator<Item = Box<T>>, keep: usize) {
        let keep = keep.min(CAPACITY);
        let mut freed = Vec::new();
        {
            let mut free = self.hold();
            for block in blocks {
                if free.len() < keep {
                    free.push(block);
                } else {
                    freed.push(block);
                }
            }
            // Relaxed: stored under the mutex (module docs).
            self.len.store(free.len(), Ordering::Relaxed);
        }
        drop(freed);
    }

    #[cfg_attr(hotbreaker_loom, allow(dead_code))] // loom's blocks are never pooled
    /// Allocates blocks with `make` until `to` are free (at most the capacity). Off the call
    /// path only: the blocks are made before the mutex is taken.
    pub(crate) fn top_up(&self, to: usize, make: impl Fn() -> T) {
        let to = to.min(CAPACITY);
        // Relaxed: a hint (module docs); a racing take or give only moves the count by a few.
        let missing = to.saturating_sub(self.len.load(Ordering::Relaxed));
        if missing == 0 {
            return;
        }
        let made: Vec<Box<T>> = (0..missing).map(|_| Box::new(make())).collect();
        self.give(made, to);
    }

    /// Frees the free blocks beyond `to`. Off the call path only.
    fn trim(&self, to: usize) {
        let surplus = {
            let mut free = self.hold();
            let keep = to.min(free.len());
            let surplus = free.split_off(keep);
            // Relaxed: stored under the mutex (module docs).
            self.len.store(free.len(), Ordering::Relaxed);
            surplus
        };
        drop(surplus);
    }

    #[cfg_attr(hotbreaker_loom, allow(dead_code))] // loom's blocks are never pooled
    /// A breaker of this block size is built.
    pub(crate) fn enter(&self) {
        // Relaxed: a hint (module docs).
        self.users.fetch_add(1, Ordering::Relaxed);
    }

    #[cfg_attr(hotbreaker_loom, allow(dead_code))] // loom's blocks are never pooled
    /// A breaker of this block size is dropped, giving back `blocks`: they are kept up to
    /// `keep` free blocks while another breaker of this size lives; the last one's drop frees
    /// every free block of this size.
    pub(crate) fn leave(&self, blocks: impl IntoIterator<Item = Box<T>>, keep: usize) {
        // Relaxed: a hint (module docs).
        let last = self.users.fetch_sub(1, Ordering::Relaxed) <= 1;
        if last {
            drop(blocks.into_iter().collect::<Vec<_>>());
            self.trim(0);
        } else {
            self.give(blocks, keep);
        }
    }

    #[cfg_attr(hotbreaker_loom, allow(dead_code))] // loom's blocks are never pooled
    /// Tops the reserve up if a take found it empty since the last refill: to `to` free blocks
    /// at first, then twice as many on each refill in a row that finds it asked for again (so
    /// that a burst of first calls, say one thread calling 10 000 new breakers, is served within
    /// a few refills), up to the capacity. A refill that finds nothing asked for frees the
    /// blocks beyond `to`, or all of them when no breaker of this size lives.
    pub(crate) fn refill(&self, to: usize, make: impl Fn() -> T) {
        // Relaxed: a hint (module docs); `batch` is the refilling thread's own. Read before it
        // is cleared, so that a tick nobody asked for writes nothing.
        if self.wanted.load(Ordering::Relaxed) && self.wanted.swap(false, Ordering::Relaxed) {
            let batch = self
                .batch
                .load(Ordering::Relaxed)
                .saturating_mul(2)
                .clamp(to, CAPACITY);
            self.batch.store(batch, Ordering::Relaxed);
            self.top_up(batch, make);
        } else {
            if self.batch.load(Ordering::Relaxed) != 0 {
                self.batch.store(0, Ordering::Relaxed);
            }
            // Nobody asked since the last tick: blocks beyond `to` go (module docs, "Size").
            // Relaxed: hints (module docs).
            let keep = if self.users.load(Ordering::Relaxed) == 0 {
                0
            } else {
                to
            };
            if self.len.load(Ordering::Relaxed) > keep {
                self.trim(keep);
            }
        }
    }

    /// Free blocks now.
    #[cfg(test)]
    pub(crate) fn free(&self) -> usize {
        self.hold().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reserve with one breaker of its size alive.
    fn in_use<T>() -> Reserve<T> {
        let r = Reserve::new();
        r.enter();
        r
    }

    #[test]
    fn a_take_from_an_empty_reserve_asks_the_next_refill_for_blocks() {
        let r: Reserve<u64> = in_use();
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
        let r: Reserve<u8> = in_use();
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
        let r: Reserve<u8> = in_use();
        r.top_up(usize::MAX, || 0);
        assert_eq!(r.free(), CAPACITY);
        r.give([Box::new(1)], usize::MAX);
        assert_eq!(r.free(), CAPACITY);
        r.top_up(2, || 0);
        assert_eq!(r.free(), CAPACITY, "top_up never takes blocks away");
    }

    #[test]
    fn gives_keep_blocks_only_up_to_the_bound() {
        let r: Reserve<u8> = in_use();
        r.give((0..5).map(Box::new), 3);
        assert_eq!(r.free(), 3, "beyond the bound a given block is freed");
        r.give([Box::new(0)], 4);
        assert_eq!(r.free(), 4);
    }

    #[test]
    fn a_tick_nobody_asked_for_trims_the_reserve_back_to_the_target() {
        let r: Reserve<u8> = in_use();
        r.top_up(40, || 0);
        r.refill(3, || 0);
        assert_eq!(r.free(), 3);
        r.refill(3, || 0);
        assert_eq!(r.free(), 3, "never below the target while a breaker lives");
    }

    #[test]
    fn the_last_breaker_of_a_size_takes_every_free_block_of_it_away() {
        let r: Reserve<u8> = Reserve::new();
        r.enter();
        r.enter();
        r.top_up(5, || 0);
        r.leave([Box::new(1)], 8);
        assert_eq!(r.free(), 6, "another breaker of this size lives");
        r.leave([Box::new(1)], 8);
        assert_eq!(r.free(), 0, "none does");
        r.top_up(5, || 0);
        r.refill(3, || 0);
        assert_eq!(r.free(), 0, "a quiet tick frees what no breaker can use");
    }

    #[test]
    fn an_empty_reserve_asks_once_and_gives_nothing() {
        let r: Reserve<u8> = in_use();
        for _ in 0..100 {
            assert_eq!(r.take(), None);
        }
        assert!(r.wanted.load(Ordering::Relaxed));
        r.refill(2, || 9);
        assert!(!r.wanted.load(Ordering::Relaxed), "the refill answered it");
        assert_eq!(r.free(), 2);
    }

    #[test]
    fn a_take_never_waits_for_a_thread_holding_the_reserve() {
        let r: Reserve<u8> = in_use();
        r.top_up(2, || 0);
        let held = r.free.lock().unwrap();
        assert_eq!(r.take(), None, "held: no block this call");
        assert!(
            !r.wanted.load(Ordering::Relaxed),
            "not empty: no refill asked for"
        );
        drop(held);
        assert!(r.take().is_some(), "a later call takes one");
    }

    #[test]
    fn the_build_target_follows_the_machine_within_bounds() {
        assert!((2..=64).contains(&target()));
    }
}
