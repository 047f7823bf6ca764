//! The published probability: one word every Closed call loads, and the cell that holds it.

use super::probability::{P_BITS, P_MASK};
use crate::sync::{AtomicU64, Ordering};

/// The generation's bits kept in a [`Published`] word.
const GENERATION_BITS: u32 = 64 - P_BITS;
pub(super) const GENERATION_MASK: u64 = (1 << GENERATION_BITS) - 1;

/// The published probability: one `u64`.
///
/// | bits    | width | field |
/// |---------|-------|-------|
/// | 0..24   | 24    | `p` in parts per 2^24 (0: nothing is throttled) |
/// | 24..64  | 40    | the low 40 bits of the Closed generation it was computed for |
///
/// A caller applies `p` only when the generation bits match those of the generation its permit
/// is issued under, so a probability computed for an earlier Closed period is never applied to a
/// later one. Every transition's winner resets the word to its own generation with `p = 0`, so a
/// stale word lives at most until the next transition; the 40 bits alias only for a computation
/// that stalls across 2^40 transitions (30 hours at 10^7 transitions per second, without pause),
/// and even then it applies one outdated probability until the next computation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Published(pub(super) u64);

impl Published {
    pub(crate) fn new(generation: u64, parts: u32) -> Published {
        Published(((generation & GENERATION_MASK) << P_BITS) | (u64::from(parts) & P_MASK))
    }

    /// Whether anything may be throttled: the one test on the hot path.
    #[inline(always)]
    pub(crate) fn is_active(self) -> bool {
        self.0 & P_MASK != 0
    }

    #[inline]
    pub(crate) fn parts(self) -> u32 {
        (self.0 & P_MASK) as u32
    }

    /// Whether this word was computed for `generation`.
    #[inline]
    pub(crate) fn is_for(self, generation: u64) -> bool {
        self.0 >> P_BITS == generation & GENERATION_MASK
    }

    /// Whether the word belongs to a generation after `generation`, comparing the low bits
    /// modulo their width (the word's generations are never half that range apart).
    pub(crate) fn is_after(self, generation: u64) -> bool {
        let ahead = (self.0 >> P_BITS).wrapping_sub(generation) & GENERATION_MASK;
        ahead != 0 && ahead < (GENERATION_MASK >> 1)
    }
}

/// The atomic cell holding the [`Published`] word, in the breaker's hot block.
///
/// # Orderings
/// - The caller's load is `Relaxed`: the word is self-contained (its generation bits say which
///   Closed period it belongs to, checked against the permit's), and it orders nothing else.
/// - A computation loads the word `Acquire` before it checks the state word, and installs its
///   result with a compare-and-swap from that value (`Release`). A transition's winner resets
///   the word (`Release`) after its swap of the state word. So a computation that saw the reset
///   also sees the transition, and finds its generation gone; one that did not see it fails its
///   compare-and-swap. A computation for an ended generation therefore never overwrites the
///   reset of the generation after it.
#[derive(Debug)]
pub(crate) struct PublishedCell(AtomicU64);

impl PublishedCell {
    pub(crate) fn new() -> PublishedCell {
        PublishedCell(AtomicU64::new(0))
    }

    /// The word a caller tests.
    #[inline(always)]
    pub(crate) fn load(&self) -> Published {
        // Relaxed: self-contained, see the type's "Orderings".
        Published(self.0.load(Ordering::Relaxed))
    }

    /// The word a computation starts from.
    pub(crate) fn load_for_update(&self) -> Published {
        // Acquire: pairs with the reset's Release (type docs).
        Published(self.0.load(Ordering::Acquire))
    }

    /// Installs `new` if the word still holds `before`; true if it did. A computation that
    /// loses the race drops its result: the word was reset, or another computation just
    /// published a fresh one.
    pub(crate) fn replace(&self, before: Published, new: Published) -> bool {
        before == new
            // AcqRel: Release as in the type's "Orderings"; Acquire so that a computation whose
            // swap lands after a `clear` sees the rules that clear followed (the caller checks
            // them again). Relaxed on failure: nothing is read.
            || self
                .0
                .compare_exchange(before.0, new.0, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
    }

    /// Resets the word to `generation` with nothing throttled, unless it already belongs to it
    /// or to a later generation (a reset that comes late must not wipe a newer `p`).
    pub(crate) fn reset(&self, generation: u64) {
        // Release: see the type's "Orderings".
        crate::publish::unless_newer(&self.0, Published::new(generation, 0).0, |current| {
            let current = Published(current);
            !current.is_for(generation) && !current.is_after(generation)
        });
    }

    /// Sets the word to "nothing throttled" for `generation` (the throttle was switched off).
    pub(crate) fn clear(&self, generation: u64) {
        // Release: as a reset.
        self.0
            .store(Published::new(generation, 0).0, Ordering::Release);
    }
}
