//! Which owned stripe the calling thread may write: a small number held by at most one live
//! thread at a time.
//!
//! A thread claims the lowest free slot of a process-wide pool of [`POOL`] on its first call
//! and gives it back when it exits. While it holds slot `i`, it is the only thread that writes
//! owned stripe `i` of any breaker (if the breaker has that many), so it counts there with a
//! plain load and store instead of a locked read-modify-write (see `window/owned.rs`). A thread that
//! finds the pool full, or holds a slot beyond a breaker's owned stripes, writes that breaker's
//! shared stripes instead, with atomic read-modify-writes as before.
//!
//! # Orderings
//! The pool is [`WORDS`] words of bits, a bit set while its slot is held. A claim is a compare-and-swap
//! with `Acquire` and a release is a `fetch_and` with `Release`: a thread that claims a slot sees
//! every write of the thread that held it before, so the owned stripes carry on from exactly
//! where their previous owner left them, and two owners never overlap.
//!
//! # The hot path
//! [`current`] reads one `const` thread-local `Cell` (no lazy initialisation, no destructor):
//! [`UNCLAIMED`] before the first claim, `i` while slot `i` is held, an overflow number (from
//! [`OVERFLOW`]) once the thread has found the pool full, and [`NONE`] once it is exiting. All
//! are above every slot, so a caller tells an owned stripe by one compare with its stripe count
//! and looks closer only otherwise. The same number picks a thread's shared stripe ([`stripe`]):
//! one identity per thread for both.
//!
//! The claim runs once per thread, on its first call; it registers the thread-exit hook that
//! gives the slot back (a thread-local with a destructor). On glibc the standard library hands
//! that hook to `__cxa_thread_atexit_impl`, which records it with the C library's allocator, not
//! Rust's; where the C library has no such function (musl), the standard library's own list
//! makes one allocation, once per thread.

use std::cell::Cell;

/// Slots in the pool: the most owned stripes a breaker can have. A machine with more hardware
/// threads than this runs its extra callers on the shared stripes.
pub(crate) const POOL: u32 = 256;

/// Words of 64 slot bits in the pool. Claims are rare (once per thread), so the words share a
/// line: nothing on a call's path reads them.
#[cfg_attr(hotbreaker_loom, allow(dead_code))] // loom's pool is one word
const WORDS: usize = POOL as usize / 64;

/// The value of [`current`] for a thread without a slot that is exiting (or could not register
/// the hook that gives a slot back).
pub(crate) const NONE: u32 = u32::MAX;

/// The first value of [`current`] for a thread that found the pool full: `OVERFLOW + k`, `k`
/// handed out round-robin below 2^30 (so below [`UNCLAIMED`]). Above every slot, so no owned
/// stripe, but a number of its own: [`stripe`] spreads such threads over the shared stripes.
#[cfg_attr(hotbreaker_loom, allow(dead_code))] // loom's pool never overflows a model
pub(crate) const OVERFLOW: u32 = POOL;

/// How many overflow numbers there are before they repeat.
#[cfg_attr(hotbreaker_loom, allow(dead_code))] // loom's pool never overflows a model
const OVERFLOW_SPAN: u32 = 1 << 30;

/// The value of [`current`] for a thread that has not claimed a slot yet.
pub(crate) const UNCLAIMED: u32 = u32::MAX - 1;

/// A number [`current`] never returns: above every slot and overflow number, below
/// [`UNCLAIMED`]. What a breaker's home slot holds before any owned stripe claimed it
/// (`window/owned.rs`), so that no caller, whatever its slot, takes it for its own.
pub(crate) const NEVER: u32 = u32::MAX - 2;

const _: () = assert!(
    POOL <= OVERFLOW && OVERFLOW as u64 + OVERFLOW_SPAN as u64 <= NEVER as u64 && NEVER < UNCLAIMED
);

#[cfg(not(hotbreaker_loom))]
mod imp {
    use super::{Cell, NONE, OVERFLOW, OVERFLOW_SPAN, POOL, UNCLAIMED, WORDS, take_lowest};
    use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

    /// Bit `i % 64` of word `i / 64` set while slot `i` is held (module docs). `std`'s atomics:
    /// a process-wide pool that loom models replace with their own (below).
    static HELD: [AtomicU64; WORDS] = [const { AtomicU64::new(0) }; WORDS];

    /// Gives slot `slot` back. Release: the next owner's claim sees every write made under it.
    fn give_back(slot: u32) {
        HELD[slot as usize / 64].fetch_and(!(1u64 << (slot % 64)), Ordering::Release);
    }

    thread_local! {
        /// The slot, [`UNCLAIMED`] or [`NONE`]. No destructor: reading it never registers or
        /// allocates anything.
        pub(super) static SLOT: Cell<u32> = const { Cell::new(UNCLAIMED) };
        /// Gives the slot back when the thread exits. Touched only by the claim.
        static RETURN: Return = const { Return(Cell::new(NONE)) };
    }

    struct Return(Cell<u32>);

    impl Drop for Return {
        fn drop(&mut self) {
            let slot = self.0.get();
            if slot < POOL {
                // Anything recorded from now on (another thread-local's destructor calling a
                // breaker) goes to the shared stripes: the slot may have a new owner already.
                let _ = SLOT.try_with(|s| s.set(NONE));
                give_back(slot);
            }
        }
    }

    #[cold]
    #[inline(never)]
    pub(super) fn claim() -> u32 {
        // The lowest free slot of the first word that has one. Acquire on success: see the
        // module's "Orderings". Relaxed loads: only a guess of which bit is free, checked by the
        // swap.
        let slot = HELD
            .iter()
            .zip(0u32..)
            .find_map(|(word, index)| {
                let bit = take_lowest(word.load(Ordering::Relaxed), |held, new| {
                    word.compare_exchange_weak(held, new, Ordering::Acquire, Ordering::Relaxed)
                });
                (bit != NONE).then(|| index * 64 + bit)
            })
            .unwrap_or(NONE);
        if slot == NONE {
            // Pool full: shared stripes from now on, under a number of this thread's own.
            // Relaxed: the counter only hands out distinct-ish numbers; nothing is published
            // through it.
            static NEXT_OVERFLOW: AtomicU32 = AtomicU32::new(0);
            let overflow = OVERFLOW + NEXT_OVERFLOW.fetch_add(1, Ordering::Relaxed) % OVERFLOW_SPAN;
            let _ = SLOT.try_with(|s| s.set(overflow));
            return overflow;
        }
        if RETURN.try_with(|r| r.0.set(slot)).is_err() {
            // The thread is already exiting (no hook can give the slot back): shared stripes
            // from now on.
            give_back(slot);
            let _ = SLOT.try_with(|s| s.set(NONE));
            return NONE;
        }
        let _ = SLOT.try_with(|s| s.set(slot));
        slot
    }

    /// How many slots are held now (tests).
    #[cfg(test)]
    pub(super) fn held() -> u32 {
        HELD.iter()
            .map(|word| word.load(Ordering::Relaxed).count_ones())
            .sum()
    }
}

#[cfg(hotbreaker_loom)]
mod imp {
    //! Loom's thread-locals and atomics, so models see a slot claimed by one thread and the
    //! plain stores of its owner read by others. Slots are not given back: a model's threads
    //! live for one execution, and loom starts each execution afresh.
    use super::{Cell, UNCLAIMED, take_lowest};
    use loom::sync::atomic::{AtomicU64, Ordering};

    loom::lazy_static! {
        static ref HELD: AtomicU64 = AtomicU64::new(0);
    }

    loom::thread_local! {
        pub(super) static SLOT: Cell<u32> = Cell::new(UNCLAIMED);
    }

    pub(super) fn claim() -> u32 {
        // Orderings as in the other implementation.
        let slot = take_lowest(HELD.load(Ordering::Relaxed), |held, new| {
            HELD.compare_exchange(held, new, Ordering::Acquire, Ordering::Relaxed)
        });
        SLOT.with(|s| s.set(slot));
        slot
    }
}

/// Takes the lowest free bit of one pool word, starting from a reading `held`: `swap(held,
/// new)` is the caller's compare-and-swap of the word. The bit taken, or [`NONE`] when every
/// bit of the word is held.
fn take_lowest(mut held: u64, mut swap: impl FnMut(u64, u64) -> Result<u64, u64>) -> u32 {
    loop {
        if held == u64::MAX {
            return NONE;
        }
        let slot = (!held).trailing_zeros();
        match swap(held, held | (1 << slot)) {
            Ok(_) => return slot,
            Err(fresh) => held = fresh,
        }
    }
}

/// The calling thread's slot: `i` while it holds slot `i`, else [`UNCLAIMED`] or [`NONE`].
#[inline(always)]
pub(crate) fn current() -> u32 {
    imp::SLOT.with(Cell::get)
}

/// The calling thread's slot, claiming one if it has not tried yet: `i`, an overflow number
/// (at least [`OVERFLOW`]) or [`NONE`].
pub(crate) fn claimed() -> u32 {
    match current() {
        UNCLAIMED => imp::claim(),
        slot => slot,
    }
}

/// Which shared stripe the calling thread writes, before masking to a breaker's count (a power
/// of two): its slot or overflow number, so that threads without an owned stripe of a breaker
/// spread over its shared ones.
#[inline]
pub(crate) fn stripe() -> usize {
    claimed() as usize
}

#[cfg(all(test, not(hotbreaker_loom)))]
mod tests {
    use super::*;
    use std::sync::Mutex; // test-only, off the hot path: these tests must not fill the pool for each other

    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(()); // test-only, off the hot path

    #[test]
    fn a_thread_keeps_its_slot_and_gives_it_back_when_it_exits() {
        let _one = ONE_AT_A_TIME.lock().unwrap();
        let mine = claimed();
        assert!(mine < POOL);
        assert_eq!(claimed(), mine, "the same slot on every call");
        assert_eq!(current(), mine);
        let other = std::thread::spawn(claimed).join().unwrap();
        assert_ne!(other, mine, "two live threads never share a slot");
        // Three pools' worth of threads, one after another: each gives its slot back on exit,
        // so the pool never fills up.
        for _ in 0..3 * POOL {
            let slot = std::thread::spawn(claimed).join().unwrap();
            assert!(slot < POOL, "exited threads gave their slots back");
        }
    }

    #[test]
    fn a_full_pool_leaves_threads_on_the_shared_stripes() {
        let _one = ONE_AT_A_TIME.lock().unwrap();
        use std::sync::{Arc, Barrier};
        // Hold every slot from live threads, then one more thread finds none.
        let n = POOL as usize + 1;
        let barrier = Arc::new(Barrier::new(n + 1));
        let handles: Vec<_> = (0..n)
            .map(|_| {
                let b = Arc::clone(&barrier);
                std::thread::spawn(move || {
                    let slot = claimed();
                    b.wait(); // every thread has claimed
                    b.wait(); // the test has looked
                    slot
                })
            })
            .collect();
        barrier.wait();
        barrier.wait();
        let slots: Vec<u32> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let held: std::collections::HashSet<u32> =
            slots.iter().copied().filter(|&s| s < POOL).collect();
        let overflow: Vec<u32> = slots.iter().copied().filter(|&s| s >= POOL).collect();
        assert_eq!(held.len() + overflow.len(), n, "no duplicates");
        assert!(
            !overflow.is_empty(),
            "one live thread more than there are slots"
        );
        assert!(
            overflow.iter().all(|&s| (OVERFLOW..UNCLAIMED).contains(&s)),
            "an overflow number, neither a slot nor a marker: {overflow:?}"
        );
        // All given back once they exited (other tests' threads may hold a few meanwhile).
        assert!(imp::held() < POOL);
    }
}
