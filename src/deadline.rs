//! The deadline word: when the current Open (or HalfOpen) generation ends, tagged with that
//! generation so that a reader never pairs a state with another generation's deadline
//! (PITFALLS 1).

use crate::sync::{AtomicU64, Ordering};

/// Bit layout of the deadline word, least significant bit first:
///
/// | bits   | width | field | meaning |
/// |--------|-------|-------|---------|
/// | 0..40  | 40    | ms    | deadline in whole milliseconds since the breaker's start, or [`NONE`] |
/// | 40..64 | 24    | tag   | low 24 bits of the generation the deadline belongs to |
///
/// 2^40 ms is 34 years of uptime. In Open the deadline is when the breaker may half-open; in
/// HalfOpen it is when the half-open timeout fires ([`NONE`] without one); other states publish
/// [`NONE`]. Every transition publishes its word after its compare-and-swap, so until the winner
/// has published, readers see a tag that does not match the state's generation and treat the
/// deadline as "not yet known".
pub(crate) const MS_BITS: u32 = 40;
const TAG_BITS: u32 = 24;
const MS_MASK: u64 = (1 << MS_BITS) - 1;
const TAG_MASK: u64 = (1 << TAG_BITS) - 1;
/// "No deadline".
pub(crate) const NONE: u64 = MS_MASK;

pub(crate) fn pack(generation: u64, ms: u64) -> u64 {
    ((generation & TAG_MASK) << MS_BITS) | ms.min(NONE)
}

pub(crate) fn tag(word: u64) -> u64 {
    word >> MS_BITS
}

pub(crate) fn ms(word: u64) -> u64 {
    word & MS_MASK
}

/// The deadline of `generation` if `word` holds it, `None` if it has not been published yet.
pub(crate) fn of(word: u64, generation: u64) -> Option<u64> {
    (tag(word) == generation & TAG_MASK).then_some(ms(word))
}

/// Whether a word tagged `held` was published by a later generation than `generation`.
///
/// Tags wrap at 2^24: a tag up to 2^23 - 1 generations ahead counts as later. Every transition
/// publishes, so the tag in the word is never more than the number of publishes in flight behind.
pub(crate) fn is_later(held: u64, generation: u64) -> bool {
    let ahead = held.wrapping_sub(generation) & TAG_MASK;
    ahead != 0 && ahead < (1 << (TAG_BITS - 1))
}

/// The atomic cell holding the deadline word.
pub(crate) struct DeadlineCell(AtomicU64);

impl DeadlineCell {
    pub(crate) fn new() -> Self {
        DeadlineCell(AtomicU64::new(pack(0, NONE)))
    }

    /// The deadline (ms since start) published for `generation`, if published yet.
    #[inline]
    pub(crate) fn read(&self, generation: u64) -> Option<u64> {
        // Acquire: pairs with the Release in `publish`, so a reader that sees this generation's
        // tag also sees everything the transition's winner did before publishing.
        of(self.0.load(Ordering::Acquire), generation)
    }

    /// Publishes `ms` for `generation` unless a later generation already published.
    ///
    /// A compare-and-swap loop, not a store: a winner that was descheduled between its state
    /// swap and this call must not overwrite the deadline of a newer Open generation, which
    /// would leave that generation "not yet published" for ever.
    pub(crate) fn publish(&self, generation: u64, ms: u64) {
        let new = pack(generation, ms);
        // Relaxed: the value read only decides whether to try; the CAS below re-checks it.
        let mut current = self.0.load(Ordering::Relaxed);
        loop {
            if tag(current) == tag(new) || is_later(tag(current), generation) {
                return;
            }
            // Release on success: publishes the deadline together with the state swap that came
            // before it. Relaxed on failure: we only loop with the fresh value.
            match self
                .0
                .compare_exchange_weak(current, new, Ordering::Release, Ordering::Relaxed)
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
    fn pack_round_trips_and_clamps() {
        let w = pack(0xABC_DEF1, 123_456);
        assert_eq!(tag(w), 0xBC_DEF1);
        assert_eq!(ms(w), 123_456);
        assert_eq!(of(w, 0xABC_DEF1), Some(123_456));
        assert_eq!(of(w, 0xABC_DEF0), None);
        assert_eq!(ms(pack(1, u64::MAX)), NONE);
        assert_eq!(pack(TAG_MASK, NONE), u64::MAX);
    }

    #[test]
    fn later_tags_wrap() {
        assert!(is_later(5, 4));
        assert!(!is_later(4, 4));
        assert!(!is_later(3, 4));
        assert!(is_later(0, TAG_MASK), "0 follows 2^24 - 1");
        assert!(!is_later(TAG_MASK, 0));
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
}
