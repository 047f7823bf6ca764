//! The states a breaker can be in.

use std::fmt;

/// Where a breaker stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum State {
    /// Calls pass; outcomes are watched by the trip rules.
    Closed,
    /// Calls are rejected until the open deadline; the first call at or after it half-opens.
    Open,
    /// A few probe calls pass; their outcomes close or reopen the breaker.
    HalfOpen,
    /// Manually forced open: every call is rejected until [`reset`](crate::Breaker::reset).
    Isolated,
    /// Manually switched off: every call passes, outcomes are counted, nothing trips.
    Disabled,
}

impl State {
    /// Every state, in the order of their codes.
    #[cfg_attr(not(any(test, feature = "metrics")), allow(dead_code))]
    pub(crate) const ALL: [State; 5] = [
        State::Closed,
        State::Open,
        State::HalfOpen,
        State::Isolated,
        State::Disabled,
    ];

    pub(super) fn code(self) -> u64 {
        self as u64
    }

    /// The state with this code (codes 5..7 are never stored in the state word; a permit uses 5
    /// for Closed while the throttle sheds, see `ticket.rs`).
    #[inline]
    pub(crate) fn from_code(code: u64) -> State {
        const BY_CODE: [State; 8] = [
            State::Closed,
            State::Open,
            State::HalfOpen,
            State::Isolated,
            State::Disabled,
            State::Closed,
            State::Disabled,
            State::Disabled,
        ];
        BY_CODE[(code & 0b111) as usize]
    }

    /// Whether the state with this code lets calls through without a decision (Closed or
    /// Disabled): one mask, for the fast paths.
    #[inline]
    pub(crate) fn passes_freely(code: u64) -> bool {
        const _: () = assert!(State::Closed as u64 == 0 && State::Disabled as u64 == 4);
        const _: () = assert!(State::Open as u64 & 3 != 0 && State::HalfOpen as u64 & 3 != 0);
        const _: () = assert!(State::Isolated as u64 & 3 != 0);
        code & 0b11 == 0
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            State::Closed => "closed",
            State::Open => "open",
            State::HalfOpen => "half-open",
            State::Isolated => "isolated",
            State::Disabled => "disabled",
        };
        f.write_str(name)
    }
}
