//! The fast paths' view of the state word: its kind and generation in 64 bits.

use crate::state::{State, Word};
use crate::sync::{AtomicU64, Ordering};

/// The kind and generation of the state word in one `u64`: bits 0..3 the [`State`], bits 3..64
/// the generation, which stays below 2^61 for 7 300 years at 10^7 transitions per second.
///
/// Published by each transition's winner after its swap (before its listeners run), and never
/// moved back to an older generation (a compare-and-swap, like the deadline cell's), it lags the
/// state word by at most the transitions in flight. It is what callers see: `try_acquire` takes a
/// Closed permit from it, a Success checks with it that its permit is still current, and
/// `state()` and `metrics()` report it. So a caller never sees a state that acquiring does not act
/// on; until the winner has published, the transition has not happened for any caller, as if the
/// winner had not yet returned. Every decision that changes the state reads and swaps the state
/// word itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StateMirror(u64);

impl StateMirror {
    pub(crate) fn of(word: Word) -> StateMirror {
        StateMirror((word.generation() << 3) | word.kind() as u64)
    }

    #[inline]
    pub(crate) fn kind(self) -> State {
        State::from_code(self.0 & 0b111)
    }

    /// The packed bits: a permit's ticket has the same layout.
    #[inline]
    pub(crate) fn bits(self) -> u64 {
        self.0
    }

    /// Closed or Disabled (see [`State::passes_freely`]).
    #[inline]
    pub(crate) fn passes_freely(self) -> bool {
        State::passes_freely(self.0)
    }

    #[inline]
    pub(crate) fn generation(self) -> u64 {
        self.0 >> 3
    }
}

/// The atomic cell holding the mirror.
#[derive(Debug)]
pub(crate) struct StateMirrorCell(AtomicU64);

impl StateMirrorCell {
    pub(crate) fn new(word: Word) -> StateMirrorCell {
        StateMirrorCell(AtomicU64::new(StateMirror::of(word).0))
    }

    #[inline]
    pub(crate) fn load(&self) -> StateMirror {
        // Acquire: pairs with the Release in `publish`, like a load of the state word.
        StateMirror(self.0.load(Ordering::Acquire))
    }

    /// Publishes the kind and generation `word` installed, unless a later generation already has
    /// (`Release`: a reader that sees this generation sees the swap that made it).
    pub(crate) fn publish(&self, word: Word) {
        let new = StateMirror::of(word);
        crate::publish::unless_newer(&self.0, new.0, |current| {
            StateMirror(current).generation() < new.generation()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_every_state_and_a_61_bit_generation() {
        for (kind, generation) in [
            (State::Closed, 0),
            (State::Open, 1),
            (State::HalfOpen, (1 << 61) - 1),
            (State::Isolated, 12_345_678_901),
            (State::Disabled, 7),
        ] {
            let m = StateMirror::of(Word::pack(kind, 3, 2, 1, generation));
            assert_eq!((m.kind(), m.generation()), (kind, generation));
        }
    }

    #[test]
    fn never_goes_back_a_generation() {
        let cell = StateMirrorCell::new(Word::INITIAL);
        cell.publish(Word::pack(State::Open, 1, 0, 0, 5));
        cell.publish(Word::pack(State::Closed, 0, 0, 0, 4)); // a stalled, older winner
        assert_eq!(
            cell.load(),
            StateMirror::of(Word::pack(State::Open, 1, 0, 0, 5))
        );
        cell.publish(Word::pack(State::HalfOpen, 1, 1, 0, 6));
        assert_eq!(cell.load().kind(), State::HalfOpen);
    }
}
