//! What a permit carries: enough to report its outcome to the right generation.

use std::fmt;

use crate::state::State;

/// What a permit remembers: the generation it was issued in (all 64 bits, so a permit held
/// across any number of transitions is never mistaken for a current one), the state that issued
/// it, and (with slow-call detection on) when.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticket {
    generation: u64,
    /// Nanoseconds since the breaker's start at issue; 0 when slow-call detection is off.
    pub(crate) issued_ns: u64,
    state: State,
}

impl Ticket {
    #[inline]
    pub(crate) fn new(generation: u64, state: State, issued_ns: u64) -> Ticket {
        Ticket {
            generation,
            issued_ns,
            state,
        }
    }

    #[inline]
    pub(crate) fn generation(self) -> u64 {
        self.generation
    }

    /// Closed, HalfOpen or Disabled.
    #[inline]
    pub(crate) fn state(self) -> State {
        self.state
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
