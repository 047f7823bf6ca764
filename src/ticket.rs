//! What a permit carries: enough to report its outcome to the right generation.

use std::fmt;

use crate::state::State;
use crate::state::mirror::StateMirror;

/// What a permit remembers: the generation it was issued in, the state that issued it, and (with
/// slow-call detection on) when.
///
/// Two `u64`s, no padding, so that it travels in two registers: `issuer` holds the generation in
/// bits 3..64 and the issuing state's code in bits 0..3. 61 bits of generation are the whole
/// generation for 7 300 years at 10^7 transitions per second, so a permit held across any number
/// of transitions within that horizon is never mistaken for a current one.
/// The state code of a ticket issued while Closed with the throttle shedding.
const SHEDDING: u64 = 5;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticket {
    issuer: u64,
    /// Nanoseconds since the breaker's start at issue; 0 when slow-call detection is off.
    pub(crate) issued_ns: u64,
}

impl Ticket {
    #[inline]
    pub(crate) fn new(generation: u64, state: State, issued_ns: u64) -> Ticket {
        Ticket {
            issuer: (generation << 3) | state as u64,
            issued_ns,
        }
    }

    /// A ticket from a mirror word (see `state/mirror.rs`): the same layout, generation above the
    /// state's code.
    #[inline]
    pub(crate) fn from_mirror(mirror: StateMirror, issued_ns: u64) -> Ticket {
        Ticket {
            issuer: mirror.bits(),
            issued_ns,
        }
    }

    /// This ticket, marked as issued while Closed with the throttle shedding: its state's code
    /// becomes 5 (Closed to [`state`](Self::state), not to the fast paths: `passed_freely` and
    /// `issued_by` are false), so its outcome takes the way that recomputes the throttle.
    #[inline]
    pub(crate) fn while_shedding(self) -> Ticket {
        Ticket {
            issuer: (self.issuer & !0b111) | SHEDDING,
            issued_ns: self.issued_ns,
        }
    }

    /// Whether it was issued while Closed with the throttle shedding.
    #[inline]
    pub(crate) fn issued_while_shedding(self) -> bool {
        self.issuer & 0b111 == SHEDDING
    }

    /// Whether `mirror` is exactly the state that issued this ticket (same generation and kind).
    #[inline]
    pub(crate) fn issued_by(self, mirror: StateMirror) -> bool {
        self.issuer == mirror.bits()
    }

    pub(crate) fn generation(self) -> u64 {
        self.issuer >> 3
    }

    /// Issued while Closed or Disabled (see [`State::passes_freely`]).
    #[inline]
    pub(crate) fn passed_freely(self) -> bool {
        State::passes_freely(self.issuer)
    }

    /// Closed, HalfOpen or Disabled.
    #[inline]
    pub(crate) fn state(self) -> State {
        State::from_code(self.issuer & 0b111)
    }
}

impl fmt::Debug for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticket")
            .field("generation", &self.generation())
            .field("state", &self.state())
            .field("issued_ns", &self.issued_ns)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::Word;

    #[test]
    fn a_ticket_issued_while_shedding_is_closed_but_never_on_a_fast_path() {
        let m = StateMirror::of(Word::pack(State::Closed, 0, 0, 0, 77));
        let t = Ticket::from_mirror(m, 0).while_shedding();
        assert_eq!((t.state(), t.generation()), (State::Closed, 77));
        assert!(t.issued_while_shedding());
        assert!(!t.passed_freely() && !t.issued_by(m));
        assert!(!Ticket::from_mirror(m, 0).issued_while_shedding());
    }

    #[test]
    fn a_ticket_from_a_mirror_is_the_ticket_of_its_state_and_generation() {
        for (kind, generation) in [(State::Closed, 0), (State::Disabled, (1 << 61) - 1)] {
            let m = StateMirror::of(Word::pack(kind, 0, 0, 0, generation));
            assert_eq!(Ticket::from_mirror(m, 5), Ticket::new(generation, kind, 5));
        }
    }

    #[test]
    fn every_state_and_edge_generation_round_trips() {
        for code in 0..5u64 {
            let kind = State::from_code(code);
            for generation in [0, 1, 7, 8, (1 << 32) + 3, (1 << 60) + 1, (1 << 61) - 1] {
                let t = Ticket::new(generation, kind, 0);
                assert_eq!((t.generation(), t.state()), (generation, kind));
                assert_eq!(
                    t.passed_freely(),
                    matches!(kind, State::Closed | State::Disabled)
                );
                let w = Word::pack(kind, 1, 2, 3, generation);
                let m = StateMirror::of(w);
                assert_eq!(
                    Ticket::from_mirror(m, 9),
                    Ticket::new(w.generation(), kind, 9)
                );
                assert_eq!(Ticket::from_mirror(m, 9).generation(), w.generation());
                assert_eq!(m.passes_freely(), t.passed_freely());
            }
        }
    }
}
