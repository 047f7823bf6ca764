//! The draw: a per-thread generator (wyrand, a `const` thread-local `Cell`, seeded from a
//! process-wide counter on a thread's first draw).
//!
//! # Orderings
//! `SEEDS` is `Relaxed`: any distinct value will do, nothing is published through it. It is
//! written once per thread, on the thread's first draw (only while the throttle sheds).

use std::cell::Cell;
use std::sync::atomic::AtomicU64 as StdAtomicU64;

/// A source of uniformly random `u32`s for the throttle's draws, set only by tests that need to
/// replay them.
pub(crate) type DrawSource = std::sync::Arc<dyn Fn() -> u32 + Send + Sync>;

thread_local! {
    /// The calling thread's wyrand state; 0 until its first draw. `const`: no lazy
    /// initialisation, no destructor.
    static STATE: Cell<u64> = const { Cell::new(0) };
}

/// Hands each thread a different seed. `std`'s atomic: a process-wide counter that no decision
/// depends on, out of loom's sight.
static SEEDS: StdAtomicU64 = StdAtomicU64::new(0);

/// A uniformly random `u32` from the calling thread's generator (wyrand: one add, one 64×64→128
/// multiply, one xor).
#[inline]
pub(crate) fn draw() -> u32 {
    STATE.with(|state| {
        let mut s = state.get();
        if s == 0 {
            // Relaxed: any distinct value will do; nothing is published through it.
            let n = SEEDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            s = crate::rules::backoff::mix(n ^ (state as *const Cell<u64> as u64)) | 1;
        }
        s = s.wrapping_add(0xa076_1d64_78bd_642f);
        state.set(s);
        let t = u128::from(s) * u128::from(s ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) as u64 ^ t as u64) as u32
    })
}
