//! A process-wide reserve of owned-stripe blocks: a thread's first call on a breaker takes its
//! block from here instead of allocating it, so a breaker holds lines only for the threads that
//! call it, and the call path never allocates (see `window/owned.rs`). The home stripes' tails
//! (`window/owned/block.rs`) and the chunks of cells that hold the other blocks come from
//! reserves of the same type (`window/owned/directory.rs`); "block" below means any of them.
//!
//! The reasoning behind it: `docs/internals.md`, "Design notes", `stripe_reserve.rs`.
//!
//! # Orderings
//! The mutex orders a block's contents: the giver's unlock releases the reset block, the
//! taker's lock acquires it. The count of live breakers is kept under the mutex, and every
//! decision that reads it (keep or free) is taken under the mutex too, so a build never loses
//! its blocks to a last drop's trim, nor a late give leaves blocks that no breaker can use.
//! `len` (the number of free blocks, stored under the mutex) and `wanted` are hints
//! (`Relaxed`): a call that reads a stale `len` tries the mutex for nothing or waits a call
//! longer, and a refill that misses `wanted` refills a tick later. `batch` is the upkeep
//! thread's own.
//!
//! # Shared writes
//! A take writes the mutex twice (lock, unlock) and `len` once, once per thread and breaker (the
//! block is the breaker's from then on). A call that finds the reserve empty reads `len` and
//! `wanted`, on a line of their own, and writes `wanted` only when it is not set already: at
//! most once per refill. The upkeep thread reads `wanted` on every tick and clears it only when
//! set.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, TryLockError}; // calls only try it; waits are off the hot path
use std::time::Duration;

use crossbeam_utils::CachePadded;

/// Free blocks a reserve keeps at most; more given back are freed.
const CAPACITY: usize = 1024;

/// Failed tries of the mutex, off the call path, after which a try is followed by a sleep
/// rather than a yield (a yield may not let a preempted holder run).
const YIELDS: u32 = 64;

/// What the mutex guards.
struct Free<T> {
    /// Capacity [`CAPACITY`] from the start: a push under the mutex never allocates.
    blocks: Vec<Box<T>>,
    /// Breakers of this block size alive now.
    users: usize,
}

/// What a call reads to see an empty reserve, on a line of its own.
struct Hints {
    /// The free blocks' count, stored under the mutex.
    len: AtomicUsize,
    /// Set by a take that found the reserve empty, cleared by the refill that follows it.
    wanted: AtomicBool,
}

/// Free blocks of one size.
pub(crate) struct Reserve<T> {
    /// Never slept on (`docs/internals.md`, "Design notes", `stripe_reserve.rs`, "Never waiting"): a `std` mutex, not the `sync` shim's,
    /// since loom models never pool blocks.
    free: CachePadded<Mutex<Free<T>>>, // calls only try it; held off the hot path
    hints: CachePadded<Hints>,
    /// Free blocks the next refill leaves: doubled by each refill that finds `wanted` set
    /// again, back to the target after one that does not. Only the upkeep thread uses it.
    batch: AtomicUsize,
}

impl<T> std::fmt::Debug for Reserve<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Relaxed: a hint, shown as it is (module docs).
        f.debug_struct("Reserve")
            .field("free", &self.hints.len.load(Ordering::Relaxed))
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
    /// An empty reserve. Off the call path (the first build of a block size).
    pub(crate) fn new() -> Reserve<T> {
        let free = Free {
            blocks: Vec::with_capacity(CAPACITY),
            users: 0,
        };
        let free = Mutex::new(free); // calls only try it; waits are off the hot path
        Reserve {
            free: CachePadded::new(free),
            hints: CachePadded::new(Hints {
                len: AtomicUsize::new(0),
                wanted: AtomicBool::new(false),
            }),
            batch: AtomicUsize::new(0),
        }
    }

    /// The mutex, for a caller off the call path: tries it until it has it, yielding between
    /// tries and, after [`YIELDS`] of them, sleeping (1 µs, doubling up to 1 ms): never
    /// sleeping *on* it (`docs/internals.md`, "Design notes", `stripe_reserve.rs`, "Never waiting").
    fn hold(&self) -> MutexGuard<'_, Free<T>> {
        let mut tries = 0u32;
        loop {
            match self.free.try_lock() {
                Ok(free) => return free,
                // A panic while holding it cannot leave the `Vec` half-changed.
                Err(TryLockError::Poisoned(poisoned)) => return poisoned.into_inner(),
                Err(TryLockError::WouldBlock) if tries < YIELDS => std::thread::yield_now(),
                Err(TryLockError::WouldBlock) => {
                    let micros = 1u64 << (tries - YIELDS).min(10);
                    std::thread::sleep(Duration::from_micros(micros));
                }
            }
            tries = tries.saturating_add(1);
        }
    }

    /// Stores the free blocks' count for the calls' hint. Under the mutex.
    fn publish_len(&self, free: &Free<T>) {
        // Relaxed: a hint, stored under the mutex (module docs).
        self.hints.len.store(free.blocks.len(), Ordering::Relaxed);
    }

    /// A free block, or `None` when there is none (the next refill is then asked for) or
    /// another thread holds the reserve. Never allocates, never waits.
    #[inline]
    pub(crate) fn take(&self) -> Option<Box<T>> {
        // Relaxed: a hint (module docs).
        if self.hints.len.load(Ordering::Relaxed) != 0 {
            let mut free = match self.free.try_lock() {
                Ok(free) => free,
                Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
                // Held: this call goes on without a block, a later one tries again.
                Err(TryLockError::WouldBlock) => return None,
            };
            let block = free.blocks.pop();
            self.publish_len(&free);
            if block.is_some() {
                return block;
            }
        }
        self.want();
        None
    }

    #[cfg_attr(hotbreaker_loom, allow(dead_code))] // loom's blocks are never pooled
    #[cfg_attr(hotbreaker_loom, allow(dead_code))] // loom's blocks are never pooled
    /// Whether the reserve seems to hold a free block (its count, a hint: a take may still find
    /// none, or the mutex held). When it does not, asks for the next refill, as an empty
    /// [`take`](Self::take) does. For a caller that must win something else before it takes,
    /// so that an empty reserve costs it no write. Never waits.
    #[inline]
    pub(crate) fn available(&self) -> bool {
        // Relaxed: a hint (module docs).
        if self.hints.len.load(Ordering::Relaxed) != 0 {
            return true;
        }
        self.want();
        false
    }

    /// Asks for the next refill.
    fn want(&self) {
        // Relaxed: a hint (module docs); written only when not set, so an empty reserve costs
        // its callers a read of the flag, not a write each.
        if !self.hints.wanted.load(Ordering::Relaxed) {
            self.hints.wanted.store(true, Ordering::Relaxed);
        }
    }

    /// Gives blocks back (reset by the caller): kept while fewer than `keep` are free and a
    /// breaker of this size lives, freed otherwise, after the mutex is let go. Off the call
    /// path only.
    pub(crate) fn give(&self, mut blocks: Vec<Box<T>>, keep: usize) {
        {
            let mut free = self.hold();
            let room = if free.users == 0 {
                0 // nobody could take them: they go (design notes, `stripe_reserve.rs`, "Size")
            } else {
                keep.min(CAPACITY).saturating_sub(free.blocks.len())
            };
            let kept = room.min(blocks.len());
            // The tail, so nothing is shifted; within the capacity set at the start, so nothing
            // is allocated under the mutex.
            free.blocks.extend(blocks.drain(blocks.len() - kept..));
            self.publish_len(&free);
        }
        drop(blocks);
    }

    #[cfg_attr(hotbreaker_loom, allow(dead_code))] // loom's blocks are never pooled
    /// Allocates blocks with `make` until `to` are free (at most the capacity). Off the call
    /// path only: the blocks are made before the mutex is taken.
    pub(crate) fn top_up(&self, to: usize, make: impl Fn() -> T) {
        let to = to.min(CAPACITY);
        // Relaxed: a hint (module docs); a racing take or give only moves the count by a few.
        let missing = to.saturating_sub(self.hints.len.load(Ordering::Relaxed));
        if missing == 0 {
            return;
        }
        let made: Vec<Box<T>> = (0..missing).map(|_| Box::new(make())).collect();
        self.give(made, to);
    }

    /// Frees the free blocks beyond `to`, or all of them when no breaker of this size lives
    /// (decided under the mutex). Off the call path only: they are moved out under the mutex,
    /// into a `Vec` made before it, and freed after it; when the count it was made for was
    /// stale, again with the count read under the mutex.
    fn trim(&self, to: usize) {
        // Relaxed: a hint (module docs), exact again after each pass's store under the mutex.
        let mut expected = self.hints.len.load(Ordering::Relaxed);
        loop {
            let mut surplus = Vec::with_capacity(expected);
            let more = {
                let mut free = self.hold();
                let keep = if free.users == 0 { 0 } else { to };
                while free.blocks.len() > keep && surplus.len() < surplus.capacity() {
                    surplus.extend(free.blocks.pop());
                }
                self.publish_len(&free);
                expected = free.blocks.len();
                free.blocks.len() > keep
            };
            drop(surplus);
            if !more {
                return;
            }
        }
    }

    #[cfg_attr(hotbreaker_loom, allow(dead_code))] // loom's blocks are never pooled
    /// A breaker of this block size is built.
    pub(crate) fn enter(&self) {
        self.hold().users += 1;
    }

    #[cfg_attr(hotbreaker_loom, allow(dead_code))] // loom's blocks are never pooled
    /// A breaker of this block size is dropped, with `blocks`, not yet reset: those the
    /// reserve has room for (up to `keep` free) are reset by `reset` outside the mutex and kept
    /// while another breaker of this size lives; the last one's drop frees every free block of
    /// this size.
    pub(crate) fn leave(&self, mut blocks: Vec<Box<T>>, keep: usize, reset: impl Fn(&T)) {
        let (last, room) = {
            let mut free = self.hold();
            free.users = free.users.saturating_sub(1);
            let room = keep.min(CAPACITY).saturating_sub(free.blocks.len());
            (free.users == 0, room)
        };
        if last {
            drop(blocks);
            // No bound of its own: under the mutex, a breaker built since keeps them all.
            self.trim(usize::MAX);
            return;
        }
        blocks.truncate(room);
        for block in &blocks {
            reset(block);
        }
        self.give(blocks, keep);
    }
    #[cfg_attr(hotbreaker_loom, allow(dead_code))] // loom's blocks are never pooled
    /// Tops the reserve up if a take found it empty since the last refill: to `to` free blocks
    /// at first, then twice as many on each refill in a row that finds it asked for again (so
    /// that a burst of first calls, say one thread calling 10 000 new breakers, is served within
    /// a few refills), up to the capacity (blocks made once no breaker of this size lives are
    /// freed by `give`). A refill that finds nothing asked for frees the blocks beyond `to`.
    pub(crate) fn refill(&self, to: usize, make: impl Fn() -> T) {
        // Relaxed: a hint (module docs); `batch` is the refilling thread's own. Read before it
        // is cleared, so that a tick nobody asked for writes nothing.
        let wanted = &self.hints.wanted;
        if wanted.load(Ordering::Relaxed) && wanted.swap(false, Ordering::Relaxed) {
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
            // Nobody asked since the last tick: blocks beyond `to` go (design notes, "Size").
            // Relaxed: a hint (module docs).
            if self.hints.len.load(Ordering::Relaxed) > to {
                self.trim(to);
            }
        }
    }

    /// Free blocks now.
    #[cfg(test)]
    pub(crate) fn free(&self) -> usize {
        self.hold().blocks.len()
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
        r.give(vec![Box::new(1)], usize::MAX);
        assert_eq!(r.free(), CAPACITY);
        r.top_up(2, || 0);
        assert_eq!(r.free(), CAPACITY, "top_up never takes blocks away");
    }

    #[test]
    fn gives_keep_blocks_only_up_to_the_bound() {
        let r: Reserve<u8> = in_use();
        r.give((0..5).map(Box::new).collect(), 3);
        assert_eq!(r.free(), 3, "beyond the bound a given block is freed");
        r.give(vec![Box::new(0)], 4);
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
        r.leave(vec![Box::new(1)], 8, |_| ());
        assert_eq!(r.free(), 6, "another breaker of this size lives");
        r.leave(vec![Box::new(1)], 8, |_| ());
        assert_eq!(r.free(), 0, "none does");
        r.top_up(5, || 0);
        r.refill(3, || 0);
        assert_eq!(r.free(), 0, "a quiet tick frees what no breaker can use");
    }

    #[test]
    fn a_drop_resets_only_the_blocks_the_reserve_keeps() {
        let r: Reserve<u8> = Reserve::new();
        r.enter();
        r.enter();
        r.top_up(1, || 0);
        let resets = std::cell::Cell::new(0);
        r.leave((0..5).map(Box::new).collect(), 3, |_| {
            resets.set(resets.get() + 1);
        });
        assert_eq!((r.free(), resets.get()), (3, 2), "room for two: two reset");
        r.enter();
        r.top_up(4, || 0);
        assert_eq!(r.free(), 4, "a build after a drop tops up as before");
    }

    #[test]
    fn blocks_given_or_made_when_no_breaker_of_their_size_lives_are_freed() {
        let r: Reserve<u8> = Reserve::new();
        r.give(vec![Box::new(0), Box::new(1)], 8);
        assert_eq!(r.free(), 0, "a late give");
        assert_eq!(r.take(), None);
        r.refill(2, || 0);
        assert_eq!(r.free(), 0, "a refill's blocks");
        r.enter();
        r.top_up(3, || 0);
        assert_eq!(r.free(), 3, "a build's blocks");
    }

    #[test]
    fn a_trim_whose_count_was_stale_goes_on_until_done() {
        let r: Reserve<u8> = in_use();
        r.top_up(10, || 0);
        // As if a give had landed after the trim read the count.
        r.hints.len.store(2, Ordering::Relaxed);
        r.trim(1);
        assert_eq!(r.free(), 1);
    }

    #[test]
    fn an_empty_reserve_asks_once_and_gives_nothing() {
        let r: Reserve<u8> = in_use();
        for _ in 0..100 {
            assert_eq!(r.take(), None);
        }
        assert!(r.hints.wanted.load(Ordering::Relaxed));
        r.refill(2, || 9);
        assert!(
            !r.hints.wanted.load(Ordering::Relaxed),
            "the refill answered it"
        );
        assert_eq!(r.free(), 2);
    }

    #[test]
    fn a_take_never_waits_for_a_thread_holding_the_reserve() {
        let r: Reserve<u8> = in_use();
        r.top_up(2, || 0);
        let held = r.free.lock().unwrap();
        assert_eq!(r.take(), None, "held: no block this call");
        assert!(
            !r.hints.wanted.load(Ordering::Relaxed),
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
