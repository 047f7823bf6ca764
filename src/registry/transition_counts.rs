//! Transitions of one breaker, counted by `(from, to)`.
//!
//! # Orderings
//! `Relaxed` throughout: statistics, ordered with nothing. Written by a transition's listener
//! (a handful per opening), never by a call.

use std::sync::atomic::AtomicU64;

use crate::state::State;
use crate::sync::Ordering;
use crate::transition::Transition;

const STATES: usize = 5;

/// Transitions of one breaker counted by `(from, to)`: the listener a registry gives each
/// breaker adds one here (a `Relaxed` increment on a transition, never on a call), and
/// [`Registry::publish_metrics`](crate::Registry::publish_metrics) reads them.
#[derive(Default)]
pub(crate) struct TransitionCounts([AtomicU64; STATES * STATES]);

impl TransitionCounts {
    pub(super) fn add(&self, t: &Transition) {
        // Relaxed: a statistic, ordered with nothing.
        self.0[t.from as usize * STATES + t.to as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Every `(from, to, count)` with a count above zero.
    pub(crate) fn nonzero(&self) -> impl Iterator<Item = (State, State, u64)> + '_ {
        self.0.iter().enumerate().filter_map(|(i, n)| {
            // Relaxed: a statistic.
            let n = n.load(Ordering::Relaxed);
            (n > 0).then(|| {
                (
                    State::from_code((i / STATES) as u64),
                    State::from_code((i % STATES) as u64),
                    n,
                )
            })
        })
    }
}
