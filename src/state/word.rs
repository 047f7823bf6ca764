//! The packed state word: its fields, widths and horizons.

use std::fmt;

use super::State;

/// The packed state word.
///
/// Bit layout of the `u128`, least significant bit first:
///
/// | bits     | width | field | meaning |
/// |----------|-------|-------|---------|
/// | 0..3     | 3     | kind  | [`State`] as 0..=4 |
/// | 3..11    | 8     | attempt | openings since the breaker was last Closed (backoff exponent), saturating at 255 |
/// | 11..21   | 10    | issued | half-open permits handed out (outstanding or spent) in this generation |
/// | 21..31   | 10    | successes | half-open successes recorded in this generation |
/// | 31..64   | 33    | —     | unused (always 0) |
/// | 64..128  | 64    | generation | bumped by every transition |
///
/// `issued` and `successes` are zero outside HalfOpen. Horizons:
/// - **generation**: 64 bits here, compared for equality and order. Permits and the fast path's
///   mirror keep its low 61 bits, which are the whole generation for 7 300 years at 10^7
///   transitions per second (manual `reset()` calls in a loop, the fastest anything can move it):
///   that is the horizon. Nothing handles a wrap.
/// - **attempt**: saturates; the backoff reaches its cap long before 255 openings.
/// - **issued**, **successes**: bounded by `half_open_permits` (at most 1 023).
///
/// The word changes only on transitions and half-open admissions: a Closed Failure that does not
/// trip never writes it (the consecutive-failure rule is decided from the recording threads' own
/// lines, see `consecutive.rs`), so the line every call reads stays in every core's cache.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Word(u128);

const KIND_BITS: u32 = 3;
const ATTEMPT_SHIFT: u32 = 3;
const ATTEMPT_BITS: u32 = 8;
const ISSUED_SHIFT: u32 = 11;
const COUNT_BITS: u32 = 10;
const SUCCESSES_SHIFT: u32 = 21;
const GENERATION_SHIFT: u32 = 64;

const fn mask(bits: u32) -> u64 {
    (1u64 << bits) - 1
}

/// Largest attempt count the word stores.
pub(crate) const MAX_ATTEMPT: u32 = mask(ATTEMPT_BITS) as u32;
/// Largest half-open permit count the word stores (the builder's upper bound).
pub(crate) const MAX_HALF_OPEN: u32 = mask(COUNT_BITS) as u32;

impl Word {
    /// The word a new breaker starts with: Closed, generation 0.
    pub(crate) const INITIAL: Word = Word(0);

    pub(crate) fn pack(
        kind: State,
        attempt: u32,
        issued: u32,
        successes: u32,
        generation: u64,
    ) -> Word {
        debug_assert!(attempt <= MAX_ATTEMPT && issued <= MAX_HALF_OPEN);
        debug_assert!(successes <= MAX_HALF_OPEN);
        let low = kind.code()
            | (u64::from(attempt.min(MAX_ATTEMPT)) << ATTEMPT_SHIFT)
            | (u64::from(issued.min(MAX_HALF_OPEN)) << ISSUED_SHIFT)
            | (u64::from(successes.min(MAX_HALF_OPEN)) << SUCCESSES_SHIFT);
        Word(u128::from(low) | (u128::from(generation) << GENERATION_SHIFT))
    }

    pub(crate) fn from_bits(bits: u128) -> Word {
        Word(bits)
    }

    pub(crate) fn bits(self) -> u128 {
        self.0
    }

    #[inline]
    fn low(self) -> u64 {
        self.0 as u64
    }

    #[inline]
    pub(crate) fn kind(self) -> State {
        State::from_code(self.low() & mask(KIND_BITS))
    }

    pub(crate) fn attempt(self) -> u32 {
        ((self.low() >> ATTEMPT_SHIFT) & mask(ATTEMPT_BITS)) as u32
    }

    pub(crate) fn issued(self) -> u32 {
        ((self.low() >> ISSUED_SHIFT) & mask(COUNT_BITS)) as u32
    }

    pub(crate) fn successes(self) -> u32 {
        ((self.low() >> SUCCESSES_SHIFT) & mask(COUNT_BITS)) as u32
    }

    #[inline]
    pub(crate) fn generation(self) -> u64 {
        (self.0 >> GENERATION_SHIFT) as u64
    }

    /// The word after a transition to `to`: next generation, counters cleared.
    pub(super) fn moved(self, to: State, attempt: u32, issued: u32) -> Word {
        Word::pack(to, attempt, issued, 0, self.generation().wrapping_add(1))
    }

    pub(super) fn with_counts(self, issued: u32, successes: u32) -> Word {
        Word::pack(
            self.kind(),
            self.attempt(),
            issued,
            successes,
            self.generation(),
        )
    }
}

impl fmt::Debug for Word {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Word")
            .field("kind", &self.kind())
            .field("attempt", &self.attempt())
            .field("issued", &self.issued())
            .field("successes", &self.successes())
            .field("generation", &self.generation())
            .finish()
    }
}
