//! The one file that names the atomics (tokio's `loom` shim, sharded-slab's `sync.rs`).
//!
//! Under `RUSTFLAGS="--cfg loom"` **and** the `loom` feature, every atomic of the breaker is loom's,
//! so the model checker sees every access. Otherwise 64-bit atomics come from `portable-atomic`
//! (native on every 64-bit target, emulated where the target has none).
//!
//! Gating on both the cfg and the feature keeps other crates built under the global
//! `--cfg loom` flag (crossbeam-utils reacts only to `crossbeam_loom`) unaffected.

#[cfg(all(loom, feature = "loom"))]
pub(crate) use loom::sync::atomic::{AtomicU32, AtomicU64, Ordering};

#[cfg(not(all(loom, feature = "loom")))]
pub(crate) use portable_atomic::{AtomicU32, AtomicU64, Ordering};

/// A small number that stays the same for the calling thread: which stripe of counters it writes.
///
/// Handed out round-robin on a thread's first call (PITFALLS 3: never hash a `ThreadId` per call),
/// so the first N threads of a process land on N different stripes.
#[cfg(not(all(loom, feature = "loom")))]
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
            // published through it.
            i = NEXT.fetch_add(1, StdOrdering::Relaxed) & (usize::MAX >> 1);
            index.set(i);
        }
        i
    })
}

/// Under loom every thread writes stripe 0: models use one stripe (see `loom-tests/`), so all
/// threads contend on the same words, which is the interesting case for the checker.
#[cfg(all(loom, feature = "loom"))]
#[inline]
pub(crate) fn thread_stripe() -> usize {
    0
}
