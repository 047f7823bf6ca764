//! The packed state word and the pure function that decides every change to it.
//!
//! The breaker keeps its state, generation and half-open counters in one
//! 128-bit atomic (see [`Word`]); each change is one compare-and-swap from a word to
//! [`next`]`(word, event)`. This file holds no atomics: everything here is tested without threads.

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

    fn code(self) -> u64 {
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

/// Why a transition happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Cause {
    /// `consecutive_failures` failures in a row while Closed.
    ConsecutiveFailures,
    /// The window's failure rate reached `failure_rate`.
    FailureRate,
    /// The window's slow-call rate reached the slow-call rate.
    SlowCallRate,
    /// The user predicate given to `trip_when` returned true.
    CustomRule,
    /// A call arrived at or after the open deadline (Open → HalfOpen).
    OpenDeadlinePassed,
    /// A probe failed (HalfOpen → Open).
    HalfOpenFailure,
    /// Enough probes succeeded (HalfOpen → Closed).
    HalfOpenSuccesses,
    /// No verdict within `half_open_timeout` (HalfOpen → Open).
    HalfOpenTimeout,
    /// `isolate`, `disable` or `reset` was called.
    Manual,
    /// Learned from another instance of the fleet (feature `redis`, or
    /// [`Breaker::trip_from_fleet`](crate::Breaker::trip_from_fleet) /
    /// [`Breaker::half_open_from_fleet`](crate::Breaker::half_open_from_fleet)): a peer's trip
    /// (Closed → Open), or a peer's recovery (Open → HalfOpen). Never published back to the
    /// fleet.
    Fleet,
    /// A fleet rule held on the fleet-wide window (feature `redis`): the calls of every
    /// instance together reached the rule's failure or slow-call rate.
    FleetWindow,
}

impl Cause {
    /// Its name: `consecutive-failures`, `failure-rate`, `slow-call-rate`, `custom-rule`,
    /// `open-deadline-passed`, `half-open-failure`, `half-open-successes`, `half-open-timeout`,
    /// `manual`, `fleet`, `fleet-window`.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Cause::ConsecutiveFailures => "consecutive-failures",
            Cause::FailureRate => "failure-rate",
            Cause::SlowCallRate => "slow-call-rate",
            Cause::CustomRule => "custom-rule",
            Cause::OpenDeadlinePassed => "open-deadline-passed",
            Cause::HalfOpenFailure => "half-open-failure",
            Cause::HalfOpenSuccesses => "half-open-successes",
            Cause::HalfOpenTimeout => "half-open-timeout",
            Cause::Manual => "manual",
            Cause::Fleet => "fleet",
            Cause::FleetWindow => "fleet-window",
        }
    }
}

impl fmt::Display for Cause {
    /// Kebab-case, as in events and fleet messages: `consecutive-failures`, `half-open-timeout`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

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
    fn moved(self, to: State, attempt: u32, issued: u32) -> Word {
        Word::pack(to, attempt, issued, 0, self.generation().wrapping_add(1))
    }

    fn with_counts(self, issued: u32, successes: u32) -> Word {
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
    const KEEP: Step = Step {
        next: None,
        admit: false,
        cause: None,
    };
    const ADMIT: Step = Step {
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

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        half_open_permits: 3,
        half_open_successes: 2,
    };

    fn acquire(deadline_passed: bool, half_open_expired: bool) -> Event {
        Event::Acquire {
            deadline_passed,
            half_open_expired,
        }
    }

    fn apply(word: Word, event: Event) -> (Word, Step) {
        let step = next(word, event, LIMITS);
        (step.next.unwrap_or(word), step)
    }

    #[test]
    fn pack_unpack_round_trips_every_field_at_its_limits() {
        for kind in State::ALL {
            for (attempt, issued, successes, generation) in [
                (0, 0, 0, 0),
                (MAX_ATTEMPT, MAX_HALF_OPEN, MAX_HALF_OPEN, u64::MAX),
                (1, 2, 3, 5_345_678_901),
                (200, 1, 1023, 1),
            ] {
                let w = Word::pack(kind, attempt, issued, successes, generation);
                assert_eq!(w.kind(), kind);
                assert_eq!(w.attempt(), attempt);
                assert_eq!(w.issued(), issued);
                assert_eq!(w.successes(), successes);
                assert_eq!(w.generation(), generation);
                assert_eq!(Word::from_bits(w.bits()), w);
            }
        }
    }

    #[test]
    fn fields_do_not_overlap() {
        let full = Word::pack(
            State::Disabled,
            MAX_ATTEMPT,
            MAX_HALF_OPEN,
            MAX_HALF_OPEN,
            u64::MAX,
        );
        // Every used bit is covered exactly once: the kind codes 5..7 and bits 31..64 are not.
        assert_eq!(full.bits() | 0b111 | (((1u128 << 33) - 1) << 31), u128::MAX);
        assert_eq!(Word::pack(State::Closed, 0, 0, 0, 1).bits(), 1 << 64);
    }

    #[test]
    fn generation_wraps_to_zero() {
        let last = Word::pack(State::Closed, 0, 0, 0, u64::MAX);
        let (w, step) = apply(
            last,
            Event::Trip {
                generation: u64::MAX,
                cause: Cause::FailureRate,
            },
        );
        assert_eq!(step.cause, Some(Cause::FailureRate));
        assert_eq!(w.generation(), 0);
        assert_eq!(w.kind(), State::Open);
    }

    #[test]
    fn closed_admits_without_writing() {
        let step = next(Word::INITIAL, acquire(true, true), LIMITS);
        assert_eq!(step, Step::ADMIT);
    }

    #[test]
    fn trip_only_for_the_current_closed_generation() {
        let w = Word::INITIAL;
        let stale = Event::Trip {
            generation: 7,
            cause: Cause::ConsecutiveFailures,
        };
        assert_eq!(next(w, stale, LIMITS), Step::KEEP);
        let (open, step) = apply(
            w,
            Event::Trip {
                generation: 0,
                cause: Cause::ConsecutiveFailures,
            },
        );
        assert_eq!(step.cause, Some(Cause::ConsecutiveFailures));
        assert_eq!(
            (open.kind(), open.attempt(), open.generation()),
            (State::Open, 1, 1)
        );
        // A second trip of the same generation finds the breaker already Open.
        assert_eq!(next(open, stale, LIMITS), Step::KEEP);
    }

    #[test]
    fn open_rejects_until_the_deadline_then_half_opens_with_one_slot_taken() {
        let open = Word::pack(State::Open, 1, 0, 0, 1);
        assert_eq!(next(open, acquire(false, false), LIMITS), Step::KEEP);
        let (half, step) = apply(open, acquire(true, false));
        assert!(step.admit);
        assert_eq!(step.cause, Some(Cause::OpenDeadlinePassed));
        assert_eq!(
            (half.kind(), half.issued(), half.generation()),
            (State::HalfOpen, 1, 2)
        );
        assert_eq!(half.attempt(), 1, "attempt survives half-open");
    }

    #[test]
    fn half_open_admission_is_bounded_and_released_slots_come_back() {
        let mut w = Word::pack(State::HalfOpen, 1, 1, 0, 2);
        for _ in 0..2 {
            let (n, step) = apply(w, acquire(false, false));
            assert!(step.admit && step.cause.is_none());
            w = n;
        }
        assert_eq!(w.issued(), 3);
        assert_eq!(next(w, acquire(false, false), LIMITS), Step::KEEP);
        // An older generation's release gives nothing back.
        assert_eq!(
            next(w, Event::Release { generation: 1 }, LIMITS),
            Step::KEEP
        );
        let (w, _) = apply(w, Event::Release { generation: 2 });
        assert_eq!(w.issued(), 2);
        assert!(next(w, acquire(false, false), LIMITS).admit);
    }

    #[test]
    fn release_never_underflows() {
        let w = Word::pack(State::HalfOpen, 1, 0, 0, 2);
        assert_eq!(
            next(w, Event::Release { generation: 2 }, LIMITS),
            Step::KEEP
        );
    }

    #[test]
    fn probe_successes_close_and_clear_attempt() {
        let w = Word::pack(State::HalfOpen, 4, 3, 0, 9);
        let (w, step) = apply(
            w,
            Event::ProbeSuccess {
                generation: 9,
                expired: false,
            },
        );
        assert!(step.cause.is_none());
        assert_eq!(w.successes(), 1);
        let (w, step) = apply(
            w,
            Event::ProbeSuccess {
                generation: 9,
                expired: false,
            },
        );
        assert_eq!(step.cause, Some(Cause::HalfOpenSuccesses));
        assert_eq!(
            (w.kind(), w.attempt(), w.generation()),
            (State::Closed, 0, 10)
        );
    }

    #[test]
    fn probe_failure_or_timeout_reopens_with_next_attempt() {
        let w = Word::pack(State::HalfOpen, 4, 1, 0, 9);
        let (o, step) = apply(w, Event::ProbeFailure { generation: 9 });
        assert_eq!(step.cause, Some(Cause::HalfOpenFailure));
        assert_eq!((o.kind(), o.attempt()), (State::Open, 5));
        let (o, step) = apply(w, acquire(false, true));
        assert_eq!(step.cause, Some(Cause::HalfOpenTimeout));
        assert!(!step.admit);
        assert_eq!((o.kind(), o.attempt()), (State::Open, 5));
        let (o, step) = apply(
            w,
            Event::ProbeSuccess {
                generation: 9,
                expired: true,
            },
        );
        assert_eq!(step.cause, Some(Cause::HalfOpenTimeout));
        assert_eq!(o.kind(), State::Open);
    }

    #[test]
    fn attempt_saturates() {
        let w = Word::pack(State::HalfOpen, MAX_ATTEMPT, 1, 0, 3);
        let (o, _) = apply(w, Event::ProbeFailure { generation: 3 });
        assert_eq!(o.attempt(), MAX_ATTEMPT);
    }

    #[test]
    fn late_probe_outcomes_change_nothing() {
        let w = Word::pack(State::HalfOpen, 1, 1, 0, 5);
        for e in [
            Event::ProbeFailure { generation: 4 },
            Event::ProbeSuccess {
                generation: 4,
                expired: false,
            },
            Event::Release { generation: 4 },
        ] {
            assert_eq!(next(w, e, LIMITS), Step::KEEP);
        }
        let open = Word::pack(State::Open, 1, 0, 0, 5);
        assert_eq!(
            next(open, Event::ProbeFailure { generation: 5 }, LIMITS),
            Step::KEEP
        );
    }

    #[test]
    fn manual_controls_always_transition_and_clear_attempt() {
        for from in State::ALL {
            for to in [State::Isolated, State::Disabled, State::Closed] {
                let w = Word::pack(from, 3, 0, 0, 40);
                let (n, step) = apply(w, Event::Manual { to });
                assert_eq!(step.cause, Some(Cause::Manual));
                assert_eq!((n.kind(), n.attempt(), n.generation()), (to, 0, 41));
            }
        }
        let iso = Word::pack(State::Isolated, 0, 0, 0, 1);
        assert_eq!(next(iso, acquire(true, true), LIMITS), Step::KEEP);
    }

    #[test]
    fn a_trip_applies_to_its_own_closed_generation_only_however_many_transitions_apart() {
        let trip = |generation| Event::Trip {
            generation,
            cause: Cause::ConsecutiveFailures,
        };
        let w = Word::pack(State::Closed, 0, 0, 0, 7);
        let (open, step) = apply(w, trip(7));
        assert_eq!(step.cause, Some(Cause::ConsecutiveFailures));
        assert_eq!((open.kind(), open.generation()), (State::Open, 8));
        assert_eq!(next(w, trip(6), LIMITS), Step::KEEP);
        assert_eq!(next(open, trip(7), LIMITS), Step::KEEP);
        // Generations are compared whole: 2^32 or 2^33 transitions later is another one.
        for apart in [1u64 << 32, 1 << 33, 1 << 61] {
            let w = Word::pack(State::Closed, 0, 0, 0, 5 + apart);
            assert_eq!(next(w, trip(5), LIMITS), Step::KEEP);
        }
    }

    #[test]
    fn a_fleet_trip_opens_a_closed_breaker_only() {
        let open = Event::FleetOpen {
            cause: Cause::Fleet,
        };
        for kind in State::ALL {
            let w = Word::pack(kind, 2, 0, 0, 7);
            let w = if kind == State::HalfOpen {
                w.with_counts(1, 0)
            } else {
                w
            };
            let step = next(w, open, LIMITS);
            if kind == State::Closed {
                let n = step.next.unwrap();
                assert_eq!(step.cause, Some(Cause::Fleet));
                assert_eq!((n.kind(), n.attempt(), n.generation()), (State::Open, 1, 8));
                assert!(!step.admit);
                // A duplicate finds it Open: nothing more happens.
                assert_eq!(next(n, open, LIMITS), Step::KEEP);
            } else {
                assert_eq!(
                    step,
                    Step::KEEP,
                    "{kind:?} must not be moved by a fleet trip"
                );
            }
        }
        let window = Event::FleetOpen {
            cause: Cause::FleetWindow,
        };
        let step = next(Word::INITIAL, window, LIMITS);
        assert_eq!(step.cause, Some(Cause::FleetWindow));
    }

    #[test]
    fn a_fleet_recovery_half_opens_an_open_breaker_only() {
        for kind in State::ALL {
            let w = Word::pack(kind, 3, 0, 0, 11);
            let step = next(w, Event::FleetHalfOpen, LIMITS);
            if kind == State::Open {
                let n = step.next.unwrap();
                assert_eq!(step.cause, Some(Cause::Fleet));
                assert_eq!(
                    (n.kind(), n.attempt(), n.issued(), n.generation()),
                    (State::HalfOpen, 3, 0, 12),
                    "attempt kept (a failed probe backs off further), no slot taken"
                );
                // Local probes then decide as usual.
                let (p, s) = apply(n, acquire(false, false));
                assert!(s.admit && p.issued() == 1);
                assert_eq!(next(n, Event::FleetHalfOpen, LIMITS), Step::KEEP);
            } else {
                assert_eq!(
                    step,
                    Step::KEEP,
                    "{kind:?} must not be moved by a fleet recovery"
                );
            }
        }
    }
}
