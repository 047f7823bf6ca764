//! The deadline cell's content in 64 bits, for rejecting calls while Open: a plain load on every
//! host, where the exact 128-bit cell (`deadline.rs`) is a locked `cmpxchg16b` on x86-64 hosts
//! without AVX, a write to the line every caller reads.
//!
//! # Orderings
//! Readers load it `Relaxed`: the word is self-contained, and a rejection decided from it reads
//! nothing else the transition's winner wrote. Its writers (transitions only) follow every
//! publication of the exact cell with [`CompactDeadlineCell::follow`], whose stores and loads,
//! like the exact cell's successful swaps, are `SeqCst`: in that single order the last store of
//! the compact word is followed by its writer's load of the exact cell, which therefore saw every
//! exact publication whose own follow-up stored earlier. So once the transitions in flight have
//! finished, the compact word is the compact form of the exact cell's latest content.

use crate::deadline;
use crate::sync::{AtomicU64, Ordering};

/// Bit layout of the compact word, least significant bit first:
///
/// | bits  | width | field | meaning |
/// |-------|-------|-------|---------|
/// | 0..6  | 6     | tag   | the low 6 bits of the deadline's generation |
/// | 6..64 | 58    | ns    | the deadline in nanoseconds since the breaker's start; 0: none |
///
/// Horizons. `ns` holds deadlines up to 2^58 ns (9.1 years) after the breaker's start; a later
/// deadline, and "no deadline", are stored as 0, which no reader is before, so those calls take
/// the exact cell's path (correct, only slower). The tag tells generations apart only modulo 64:
/// a reader whose mirror shows Open generation `g` can match a word of generation `g - 64k` only
/// while the 63 transitions after that one are all between their swap and their follow-up, and
/// then the state is Open either way and only the retry-after hint comes from the other
/// generation (the exact path would answer with the nominal opening instead).
const TAG_BITS: u32 = 6;
const TAG_MASK: u64 = (1 << TAG_BITS) - 1;
/// The latest deadline the word holds, in ns since the breaker's start.
const MAX_NS: u64 = (1 << (64 - TAG_BITS)) - 1;

/// The compact form of the exact cell's word.
pub(crate) fn pack(exact: u128) -> u64 {
    let ns = deadline::ns(exact);
    let ns = if ns > MAX_NS { 0 } else { ns }; // `deadline::NONE` is above it too
    (ns << TAG_BITS) | (deadline::generation(exact) & TAG_MASK)
}

/// The time left before `generation`'s deadline at `now` (ns since the breaker's start), if
/// `word` holds that deadline and it is still ahead; `None` sends the caller to the exact cell.
#[inline]
pub(crate) fn remaining(word: u64, generation: u64, now: u64) -> Option<u64> {
    let end = word >> TAG_BITS;
    (word & TAG_MASK == generation & TAG_MASK && now < end).then(|| end - now)
}

/// The atomic cell holding the compact word.
#[derive(Debug)]
pub(crate) struct CompactDeadlineCell(AtomicU64);

impl CompactDeadlineCell {
    pub(crate) fn new(exact: u128) -> Self {
        CompactDeadlineCell(AtomicU64::new(pack(exact)))
    }

    #[inline]
    pub(crate) fn load(&self) -> u64 {
        // Relaxed: see the module's "Orderings".
        self.0.load(Ordering::Relaxed)
    }

    /// Makes the word the compact form of what `read_exact` returns, after a publication of the
    /// exact cell: stores, then reads the exact cell again and stores again until what it stored
    /// is still current. A follower descheduled with an old reading thus repairs its own store.
    /// One shared store per transition, more only when transitions race.
    pub(crate) fn follow(&self, read_exact: impl Fn() -> u128) {
        let mut exact = read_exact();
        loop {
            // SeqCst: see the module's "Orderings" (`read_exact` loads SeqCst too).
            self.0.store(pack(exact), Ordering::SeqCst);
            let again = read_exact();
            if again == exact {
                return;
            }
            exact = again;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: u64 = 1_000_000_000;

    #[test]
    fn rejects_before_the_deadline_with_the_exact_time_left() {
        let w = pack(deadline::pack(7, 5 * SEC + 3));
        assert_eq!(remaining(w, 7, 2 * SEC), Some(3 * SEC + 3));
        assert_eq!(remaining(w, 7, 5 * SEC + 2), Some(1));
        assert_eq!(
            remaining(w, 7, 5 * SEC + 3),
            None,
            "at the deadline: the exact path"
        );
        assert_eq!(remaining(w, 7, u64::MAX), None);
        assert_eq!(remaining(w, 8, 0), None, "another generation");
        assert_eq!(remaining(w, 6, 0), None);
    }

    #[test]
    fn the_tag_aliases_only_every_64_generations() {
        let w = pack(deadline::pack(1_000_000_007, SEC));
        for other in 1_000_000_008..1_000_000_007 + 64 {
            assert_eq!(remaining(w, other, 0), None, "{other}");
        }
        assert_eq!(
            remaining(w, 1_000_000_007 + 64, 0),
            Some(SEC),
            "the documented alias"
        );
        assert_eq!(remaining(w, u64::MAX, 0), None);
    }

    #[test]
    fn no_deadline_and_deadlines_past_the_horizon_take_the_exact_path() {
        assert_eq!(
            remaining(pack(deadline::pack(3, deadline::NONE)), 3, 0),
            None
        );
        let year = 365 * 24 * 3_600 * SEC;
        let nine = pack(deadline::pack(3, 9 * year));
        assert_eq!(
            remaining(nine, 3, 9 * year - 1),
            Some(1),
            "9 years: in range"
        );
        assert_eq!(
            remaining(pack(deadline::pack(3, MAX_NS)), 3, 0),
            Some(MAX_NS)
        );
        let past = pack(deadline::pack(3, MAX_NS + 1));
        assert_eq!(remaining(past, 3, 0), None, "past 2^58 ns (9.1 years)");
        assert_eq!(remaining(pack(deadline::pack(3, 10 * year)), 3, year), None);
    }

    #[test]
    fn a_deadline_at_the_start_is_never_ahead() {
        assert_eq!(remaining(pack(deadline::pack(0, 0)), 0, 0), None);
    }

    #[test]
    fn a_stale_follower_repairs_its_store() {
        use std::cell::Cell;
        let cell = CompactDeadlineCell::new(deadline::pack(0, deadline::NONE));
        // The follower read generation 4, and a newer transition published 5 before its store.
        let readings = [
            deadline::pack(4, 40),
            deadline::pack(5, 50),
            deadline::pack(5, 50),
        ];
        let next = Cell::new(0);
        cell.follow(|| {
            let r = readings[next.get()];
            next.set(next.get() + 1);
            r
        });
        assert_eq!(next.get(), 3, "read again until unchanged");
        assert_eq!(remaining(cell.load(), 5, 0), Some(50));
        assert_eq!(remaining(cell.load(), 4, 0), None);
    }
}
