//! The deadline cell's content in 64 bits, for rejecting calls while Open: a plain load on every
//! host, where the exact 128-bit cell (`deadline.rs`) is a locked `cmpxchg16b` on x86-64 hosts
//! without AVX, a write to the line every caller reads.
//!
//! # Orderings
//! Readers load it `Relaxed`: the word is self-contained, and a rejection decided from it reads
//! nothing else the transition's winner wrote. Its writers (transitions only) follow every
//! publication of the exact cell with [`CompactDeadlineCell::follow`], whose compare-and-swaps
//! and loads, like the exact cell's successful swaps, are `SeqCst`. A follower returns only
//! after a successful swap followed by a load of the exact cell that found what it had swapped
//! in; in the single order, the last successful swap of all is followed by such a load, which
//! saw every exact publication (each is before its own follower's last swap). So once the
//! transitions in flight have finished, the compact word is the compact form of the exact
//! cell's latest content.

use crate::state::deadline;
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
/// the exact cell's path (correct, only slower). The tag tells generations apart only modulo 64.
/// A mismatch sends the reader to the exact cell, so an alias needs a word 64 generations away
/// from the reader's mirror:
/// - a follower that read the exact cell, then stalled across 64 transitions: its
///   compare-and-swap fails when any other follower swapped meanwhile, so its older word is
///   stored only if the word came back to the very value it had read (the same "no deadline" 64
///   generations later), and then only until that follower re-reads the exact cell and swaps
///   again;
/// - one reader that loaded the mirror, then stalled across 64 transitions: that call is rejected
///   with the newer generation's deadline, a call that raced 64 transitions.
///
/// Either way a call may be rejected, with the other generation's retry-after, while a
/// transition or the call itself is in flight; no word stays wrong once they are done.
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
    /// exact cell: swaps in the compact form of a fresh reading, unless another follower swapped
    /// since this one read the word, then reads the exact cell again, until a swap succeeded and
    /// the exact cell still holds what it swapped in. A follower descheduled with an old reading
    /// thus fails its swap, or repairs it. One shared write per transition, more only when
    /// transitions race.
    pub(crate) fn follow(&self, read_exact: impl Fn() -> u128) {
        // SeqCst, here and below: see the module's "Orderings".
        let mut seen = self.0.load(Ordering::SeqCst);
        loop {
            let exact = read_exact();
            let new = pack(exact);
            match self
                .0
                .compare_exchange(seen, new, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) if read_exact() == exact => return,
                Ok(_) => seen = new,
                Err(current) => seen = current,
            }
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

    /// Reads the exact cell from `readings`, one per call, counting them.
    fn follow_readings(cell: &CompactDeadlineCell, readings: &[u128]) -> usize {
        let next = std::cell::Cell::new(0);
        cell.follow(|| {
            let r = readings[next.get()];
            next.set(next.get() + 1);
            r
        });
        next.get()
    }

    #[test]
    fn a_follower_whose_reading_went_stale_repairs_its_swap() {
        let cell = CompactDeadlineCell::new(deadline::pack(0, deadline::NONE));
        // It swapped in generation 4; a newer transition had published 5 meanwhile.
        let (four, five) = (deadline::pack(4, 40), deadline::pack(5, 50));
        assert_eq!(follow_readings(&cell, &[four, five, five, five]), 4);
        assert_eq!(remaining(cell.load(), 5, 0), Some(50));
        assert_eq!(remaining(cell.load(), 4, 0), None);
    }

    #[test]
    fn a_follower_that_another_overtook_does_not_store_its_old_reading() {
        let cell = CompactDeadlineCell::new(deadline::pack(0, deadline::NONE));
        let (four, five) = (deadline::pack(4, 40), deadline::pack(5, 50));
        let reads = std::cell::Cell::new(0);
        cell.follow(|| {
            reads.set(reads.get() + 1);
            if reads.get() == 1 {
                // Read 4, then stalled while the follower of 5 did all of its work.
                cell.follow(|| five);
                return four;
            }
            assert_ne!(remaining(cell.load(), 4, 0), Some(40), "4 was never stored");
            five
        });
        assert_eq!(remaining(cell.load(), 5, 0), Some(50));
        assert_eq!(
            reads.get(),
            3,
            "a failed swap, then a fresh reading swapped and checked"
        );
    }
}
