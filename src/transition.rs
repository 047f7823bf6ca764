//! What a transition listener is told.

use crate::state::{Cause, State};

/// One change of state, as reported to [`on_transition`](crate::Builder::on_transition)
/// listeners: exactly once per transition, by the thread whose compare-and-swap made it, after the
/// swap.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Transition {
    /// The state before.
    pub from: State,
    /// The state after.
    pub to: State,
    /// Why it happened.
    pub cause: Cause,
    /// The generation the transition started (33 bits, wrapping).
    pub generation: u64,
}
