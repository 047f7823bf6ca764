//! The pure function that decides every change to the state word.

use super::{Cause, MAX_ATTEMPT, State, Word};

/// The fixed numbers [`next`] needs from the configuration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limits {
    pub(crate) half_open_permits: u32,
    pub(crate) half_open_successes: u32,
}

/// Something that may change the state word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    /// A caller asks for a permit. `deadline_passed`: the open deadline of this generation is
    /// published and `now` is at or after it; `half_open_expired`: likewise for the half-open
    /// timeout.
    Acquire {
        deadline_passed: bool,
        half_open_expired: bool,
    },
    /// A half-open permit of `generation` was dropped or recorded Ignored.
    Release { generation: u64 },
    /// A half-open probe of `generation` succeeded; `expired`: the half-open timeout has passed.
    ProbeSuccess { generation: u64, expired: bool },
    /// A half-open probe of `generation` failed.
    ProbeFailure { generation: u64 },
    /// A window rule fired for a Closed permit of `generation`.
    Trip { generation: u64, cause: Cause },
    /// `isolate` / `disable` / `reset`.
    Manual { to: State },
    /// The fleet says the dependency is down (`cause` is [`Cause::Fleet`] or
    /// [`Cause::FleetWindow`]): see [`next`] for where it applies.
    FleetOpen { cause: Cause },
    /// The fleet says the dependency is back: see [`next`] for where it applies.
    FleetHalfOpen,
}

/// What [`next`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Step {
    /// The word to install, or `None` to leave the word as it is.
    pub(crate) next: Option<Word>,
    /// For `Acquire`: whether the caller gets a permit.
    pub(crate) admit: bool,
    /// Set when `next` is a transition (a new generation).
    pub(crate) cause: Option<Cause>,
}

impl Step {
    pub(super) const KEEP: Step = Step {
        next: None,
        admit: false,
        cause: None,
    };
    pub(super) const ADMIT: Step = Step {
        next: None,
        admit: true,
        cause: None,
    };

    fn swap(next: Word, admit: bool) -> Step {
        Step {
            next: Some(next),
            admit,
            cause: None,
        }
    }

    fn transition(next: Word, admit: bool, cause: Cause) -> Step {
        Step {
            next: Some(next),
            admit,
            cause: Some(cause),
        }
    }
}

/// The whole state machine: given the current word and an event, what to install.
///
/// Pure and total: the breaker calls it inside a compare-and-swap loop and re-runs it on the fresh
/// word after every conflict (governor's `gcra.rs` pattern).
///
/// # What the fleet may change
/// The fleet only ever moves a breaker one way, and only out of the state it speaks about:
/// - [`Event::FleetOpen`] applies to a **Closed** breaker only (→ Open, attempt 1, a new
///   generation). An Open breaker keeps its own deadline (the fleet never extends it); a
///   HalfOpen one lets its own probes decide; Isolated and Disabled are the operator's and are
///   never overridden. (A fleet-window trip, which this instance decides from totals it read
///   in one Closed period, is an [`Event::Trip`] of that period's generation instead.)
/// - [`Event::FleetHalfOpen`] applies to an **Open** breaker only (→ HalfOpen with no probe
///   slot taken, a new generation): a peer's probe succeeded, so this instance probes now
///   instead of waiting out its deadline. It never closes a breaker: the local probes decide.
///
/// Neither event carries a generation: a peer's generation says nothing about this breaker's.
/// Staleness and duplicates are the receiver's business (see `fleet/stats.rs`); here, applying
/// the same event twice is harmless, as the second finds the breaker already moved.
pub(crate) fn next(word: Word, event: Event, limits: Limits) -> Step {
    let current = |generation: u64| word.generation() == generation;
    let reopen = |cause| {
        let attempt = (word.attempt() + 1).min(MAX_ATTEMPT);
        Step::transition(word.moved(State::Open, attempt, 0), false, cause)
    };
    match (word.kind(), event) {
        (State::Closed | State::Disabled, Event::Acquire { .. }) => Step::ADMIT,
        (State::Isolated, Event::Acquire { .. }) => Step::KEEP,
        (
            State::Open,
            Event::Acquire {
                deadline_passed, ..
            },
        ) => {
            if deadline_passed {
                // The acquire that half-opens the breaker takes the first probe slot.
                let half_open = word.moved(State::HalfOpen, word.attempt(), 1);
                Step::transition(half_open, true, Cause::OpenDeadlinePassed)
            } else {
                Step::KEEP
            }
        }
        (
            State::HalfOpen,
            Event::Acquire {
                half_open_expired, ..
            },
        ) => {
            if half_open_expired {
                reopen(Cause::HalfOpenTimeout)
            } else if word.issued() < limits.half_open_permits {
                Step::swap(word.with_counts(word.issued() + 1, word.successes()), true)
            } else {
                Step::KEEP
            }
        }
        (State::HalfOpen, Event::Release { generation })
            if current(generation) && word.issued() > 0 =>
        {
            Step::swap(word.with_counts(word.issued() - 1, word.successes()), false)
        }
        (
            State::HalfOpen,
            Event::ProbeSuccess {
                generation,
                expired,
            },
        ) if current(generation) => {
            if expired {
                reopen(Cause::HalfOpenTimeout)
            } else if word.successes() + 1 >= limits.half_open_successes {
                Step::transition(
                    word.moved(State::Closed, 0, 0),
                    false,
                    Cause::HalfOpenSuccesses,
                )
            } else {
                Step::swap(word.with_counts(word.issued(), word.successes() + 1), false)
            }
        }
        (State::HalfOpen, Event::ProbeFailure { generation }) if current(generation) => {
            reopen(Cause::HalfOpenFailure)
        }
        (State::Closed, Event::Trip { generation, cause }) if current(generation) => {
            Step::transition(word.moved(State::Open, 1, 0), false, cause)
        }
        (_, Event::Manual { to }) => Step::transition(word.moved(to, 0, 0), false, Cause::Manual),
        (State::Closed, Event::FleetOpen { cause }) => {
            Step::transition(word.moved(State::Open, 1, 0), false, cause)
        }
        (State::Open, Event::FleetHalfOpen) => Step::transition(
            word.moved(State::HalfOpen, word.attempt(), 0),
            false,
            Cause::Fleet,
        ),
        // Anything else (a late outcome, a trip for an older generation) changes nothing.
        _ => Step::KEEP,
    }
}
