//! The one file that names the atomics and the lock (tokio's `loom` shim, sharded-slab's
//! `sync.rs`).
//!
//! Under `RUSTFLAGS="--cfg hotbreaker_loom"`, every atomic and lock of the breaker is loom's, so the model checker sees every access. Otherwise 64- and 128-bit atomics come
//! from `portable-atomic` (native on every 64-bit target; 128-bit operations use `cmpxchg16b` on
//! x86-64 and the equivalent pairs elsewhere, emulated with a lock only where a target has none).
//!
//! Loom has no 128-bit atomic. Under loom (models only, off the hot path), [`AtomicU128`] is a
//! `u128` behind loom's lock: every operation is a lock, unlock pair, so loom explores every interleaving of 128-bit operations
//! with everything else, but each one behaves at least as strongly as `AcqRel` (stronger than the
//! `Relaxed` operations some call sites use; those sites argue their ordering in comments).
//!
//! The cfg is this crate's own, so a project that runs its own loom models under the common
//! `--cfg loom` gets the ordinary breaker, and nothing about it shows as a cargo feature.
//!
//! Outside this file, `registry.rs` and `clock.rs` use `std` atomics and thread-locals for
//! things loom need not see (a name table's statistics, a per-thread cache of the last clock
//! reading); each says so where it does.

#[cfg(hotbreaker_loom)]
pub(crate) use loom::sync::Mutex; // off the hot path: the breaker's configuration lock
#[cfg(hotbreaker_loom)]
pub(crate) use loom::sync::atomic::{AtomicU64, Ordering, fence};

#[cfg(not(hotbreaker_loom))]
pub(crate) use portable_atomic::{AtomicU64, AtomicU128, Ordering, fence};
#[cfg(not(hotbreaker_loom))]
pub(crate) use std::sync::Mutex; // off the hot path: the breaker's configuration lock

/// A 128-bit atomic for loom models: a `u128` behind loom's mutex (see the module docs).
#[cfg(hotbreaker_loom)]
#[derive(Debug)]
pub(crate) struct AtomicU128(loom::sync::Mutex<u128>); // loom models only, off the hot path

#[cfg(hotbreaker_loom)]
impl AtomicU128 {
    pub(crate) fn new(v: u128) -> Self {
        AtomicU128(loom::sync::Mutex::new(v)) // loom models only, off the hot path
    }

    pub(crate) fn load(&self, _: Ordering) -> u128 {
        *self.0.lock().unwrap()
    }

    pub(crate) fn compare_exchange(
        &self,
        current: u128,
        new: u128,
        _: Ordering,
        _: Ordering,
    ) -> Result<u128, u128> {
        let mut v = self.0.lock().unwrap();
        if *v == current {
            *v = new;
            Ok(current)
        } else {
            Err(*v)
        }
    }

    pub(crate) fn compare_exchange_weak(
        &self,
        current: u128,
        new: u128,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u128, u128> {
        self.compare_exchange(current, new, success, failure)
    }
}

/// A small number that stays the same for the calling thread: which stripe of counters it writes.
///
/// Handed out round-robin on a thread's first call (not a hash of the `ThreadId` on every call),
/// so the first N threads of a process land on N different stripes. The thread-local has a
/// `const` initialiser and no destructor, so reading it never allocates or registers anything.
#[cfg(not(hotbreaker_loom))]
#[inline]
pub(crate) fn thread_stripe() -> usize {
    use std::cell::Cell;
    use std::sync::atomic::{AtomicUsize, Ordering as StdOrdering};

    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    INDEX.with(|index| {
        let mut i = index.get();
        if i == usize::MAX {
            // Relaxed: the counter only has to hand out distinct-ish numbers; nothing is
            // published through it (loom need not see it: models use one stripe).
            i = NEXT.fetch_add(1, StdOrdering::Relaxed) & (usize::MAX >> 1);
            index.set(i);
        }
        i
    })
}

/// Under loom every thread writes stripe 0: models use one stripe (see `loom-tests/`), so all
/// threads contend on the same words, which is the interesting case for the checker.
#[cfg(hotbreaker_loom)]
#[inline]
pub(crate) fn thread_stripe() -> usize {
    0
}
