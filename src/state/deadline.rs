//! The deadline cell: when the current Open (or HalfOpen) generation ends, tagged with that
//! generation so that a reader never pairs a state with another generation's deadline.

use crate::sync::{AtomicU128, Ordering};

/// Bit layout of the deadline word (`u128`), least significant bit first:
///
/// | bits    | width | field | meaning |
/// |---------|-------|-------|---------|
/// | 0..64   | 64    | ns    | deadline in nanoseconds since the breaker's start, or [`NONE`] |
/// | 64..128 | 64    | generation | the generation the deadline belongs to |
///
/// Both fields are full width: nanoseconds since the start wrap after 584 years of uptime, and the
/// generation is the state word's whole generation (within the 7 300 years, at 10^7 transitions
/// per second, that permits and the fast path keep it whole: see `state.rs`),
/// so a deadline is never read as another generation's and never rounded. In Open the deadline is
/// when the breaker may half-open; in HalfOpen it is when the half-open timeout fires ([`NONE`]
/// without one); other states publish [`NONE`]. Every transition publishes its word after its
/// compare-and-swap, so until the winner has published, readers see another generation and treat
/// the deadline as "not yet known".
pub(crate) const NONE: u64 = u64::MAX;

pub(crate) fn pack(generation: u64, ns: u64) -> u128 {
    (u128::from(generation) << 64) | u128::from(ns)
}

pub(crate) fn generation(word: u128) -> u64 {
    (word >> 64) as u64
}

pub(crate) fn ns(word: u128) -> u64 {
    word as u64
}

/// The deadline of `generation` if `word` holds it, `None` if it has not been published yet.
pub(crate) fn of(word: u128, generation: u64) -> Option<u64> {
    (self::generation(word) == generation).then_some(ns(word))
}

/// The atomic cell holding the deadline word.
#[derive(Debug)]
pub(crate) struct DeadlineCell(AtomicU128);

impl DeadlineCell {
    pub(crate) fn new() -> Self {
        DeadlineCell(AtomicU128::new(pack(0, NONE)))
    }

    /// The deadline (ns since start) published for `generation`, if published yet.
    #[inline]
    pub(crate) fn read(&self, generation: u64) -> Option<u64> {
        // Acquire: pairs with the Release in `publish`, so a reader that sees this generation's
        // deadline also sees everything the transition's winner did before publishing.
        of(self.0.load(Ordering::Acquire), generation)
    }

    /// The whole word, for the compact word's follow-up (`compact_deadline.rs`): `SeqCst`, on
    /// transitions only.
    pub(crate) fn word(&self) -> u128 {
        self.0.load(Ordering::SeqCst)
    }

    /// Publishes `ns` for `generation` unless this or a later generation already published.
    ///
    /// A compare-and-swap loop, not a store: a winner that was descheduled between its state
    /// swap and this call must not overwrite the deadline of a newer generation, which would
    /// leave that generation "not yet published" for ever. Generations are compared in full, so
    /// this holds however many transitions the stalled winner slept through.
    pub(crate) fn publish(&self, generation: u64, ns: u64) {
        let new = pack(generation, ns);
        // Relaxed: the value read only decides whether to try; the CAS below re-checks it.
        let mut current = self.0.load(Ordering::Relaxed);
        loop {
            if self::generation(current) >= generation {
                return;
            }
            // SeqCst on success: Release publishes the deadline together with the state swap
            // that came before it, and the single order places it before the compact word's
            // follow-up (`compact_deadline.rs`). Relaxed on failure: we only loop with the fresh
            // value.
            match self
                .0
                .compare_exchange_weak(current, new, Ordering::SeqCst, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(fresh) => current = fresh,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_round_trips_at_full_width() {
        let w = pack(u64::MAX - 1, 123_456);
        assert_eq!(generation(w), u64::MAX - 1);
        assert_eq!(ns(w), 123_456);
        assert_eq!(of(w, u64::MAX - 1), Some(123_456));
        assert_eq!(of(w, u64::MAX - 1 - (1 << 24)), None, "no tag aliasing");
        assert_eq!(pack(u64::MAX, NONE), u128::MAX);
    }

    #[test]
    fn publish_never_goes_back_a_generation() {
        let cell = DeadlineCell::new();
        cell.publish(3, 30);
        assert_eq!(cell.read(3), Some(30));
        cell.publish(2, 20); // a late winner of an older generation
        assert_eq!(cell.read(3), Some(30));
        assert_eq!(cell.read(2), None);
        cell.publish(4, 40);
        assert_eq!(cell.read(4), Some(40));
    }

    #[test]
    fn a_winner_stalled_across_millions_of_transitions_cannot_overwrite() {
        let cell = DeadlineCell::new();
        let later = (1 << 24) + 5;
        cell.publish(later, 99);
        // With a 24-bit tag, generation 5 would have looked 2^23 generations "ahead".
        cell.publish(5, 1);
        cell.publish(later - (1 << 24), 1); // the same low 24 bits
        assert_eq!(cell.read(later), Some(99));
    }

    #[test]
    fn deadlines_keep_nanoseconds_and_do_not_wrap() {
        let cell = DeadlineCell::new();
        let far = 60 * 365 * 24 * 3_600 * 1_000_000_000u64 + 500_001; // 60 years and 0.5 ms
        cell.publish(1, far);
        assert_eq!(cell.read(1), Some(far));
    }
}
