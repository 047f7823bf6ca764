//! Every event from every state: what [`next`](super::next) decides.

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
