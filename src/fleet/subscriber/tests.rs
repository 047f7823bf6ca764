use super::*;
use crate::state::{Cause, State};

fn message(kind: MessageKind, open_for: Duration) -> Message {
    Message {
        kind,
        instance: "peer".into(),
        generation: 1,
        open_for,
        cause: "failure-rate".into(),
        name: "db".into(),
    }
}

/// A breaker in `state`, on a mock clock, with a 30 s open timeout and a 60 s maximum.
fn breaker_in(state: State) -> (Breaker, Arc<quanta::Mock>) {
    let (clock, mock) = quanta::Clock::mock();
    mock.increment(Duration::from_secs(1));
    let b = Breaker::builder()
        .consecutive_failures(1)
        .backoff(
            crate::Backoff::exponential(Duration::from_secs(30), 2.0, Duration::from_secs(60))
                .without_jitter(),
        )
        .clock(clock)
        .build()
        .unwrap();
    match state {
        State::Closed => {}
        State::Open => b.try_acquire().unwrap().failure(),
        State::HalfOpen => {
            b.try_acquire().unwrap().failure();
            mock.increment(Duration::from_secs(30));
            drop(b.try_acquire().unwrap());
        }
        State::Isolated => b.isolate(),
        _ => b.disable(),
    }
    assert_eq!(b.state(), state);
    (b, mock)
}

const STATES: [State; 5] = State::ALL;

/// The decision table: which remote message moves a breaker in which local state.
#[test]
fn which_message_applies_in_which_state() {
    let five = Duration::from_secs(5);
    for state in STATES {
        for kind in [
            MessageKind::Open,
            MessageKind::Isolate,
            MessageKind::Close,
            MessageKind::Reset,
        ] {
            let (b, _) = breaker_in(state);
            let before = b.metrics().generation;
            let moved = apply(&b, &message(kind, five));
            let after = b.state();
            let want = match (kind, state) {
                (MessageKind::Open | MessageKind::Isolate, State::Closed) => Some(State::Open),
                (MessageKind::Close | MessageKind::Reset, State::Open) => Some(State::HalfOpen),
                _ => None,
            };
            match want {
                Some(to) => {
                    assert!(moved, "{kind:?} in {state:?}");
                    assert_eq!(after, to, "{kind:?} in {state:?}");
                    assert_eq!(b.metrics().generation, before + 1);
                }
                None => {
                    assert!(!moved, "{kind:?} must not move {state:?}");
                    assert_eq!(after, state);
                    assert_eq!(b.metrics().generation, before);
                }
            }
        }
    }
}

#[test]
fn a_fleet_trip_never_outlasts_the_sender_nor_the_local_maximum() {
    let (b, mock) = breaker_in(State::Closed);
    assert!(apply(
        &b,
        &message(MessageKind::Open, Duration::from_secs(5))
    ));
    assert_eq!(b.metrics().retry_after, Some(Duration::from_secs(5)));
    mock.increment(Duration::from_secs(5));
    assert!(
        b.try_acquire().is_ok(),
        "probes on its own schedule at the sender's deadline"
    );
    assert_eq!(b.state(), State::HalfOpen);

    // A peer that says "an hour" (or garbage) gets the local maximum, 60 s.
    let (b, _) = breaker_in(State::Closed);
    assert!(apply(
        &b,
        &message(MessageKind::Open, Duration::from_secs(3_600))
    ));
    assert_eq!(b.metrics().retry_after, Some(Duration::from_secs(60)));
    let (b, _) = breaker_in(State::Closed);
    assert!(apply(&b, &message(MessageKind::Isolate, Duration::ZERO)));
    assert_eq!(b.metrics().retry_after, Some(Duration::from_secs(60)));
    // A zero duration is no trip.
    let (b, _) = breaker_in(State::Closed);
    assert!(!apply(&b, &message(MessageKind::Open, Duration::ZERO)));
    assert_eq!(b.state(), State::Closed);
}

/// An Open breaker keeps its own (shorter) deadline when a peer says "30 s".
#[test]
fn an_open_breaker_keeps_its_deadline() {
    let (b, mock) = breaker_in(State::Open);
    mock.increment(Duration::from_secs(20));
    assert!(!apply(
        &b,
        &message(MessageKind::Open, Duration::from_secs(30))
    ));
    assert_eq!(b.metrics().retry_after, Some(Duration::from_secs(10)));
}

/// A link's shared state in a fleet of `live` instances, quorum `quorum`, over a registry
/// holding a Closed `db` that trips on one failure.
fn fleet_of(live: u64, quorum: crate::fleet::Quorum) -> Shared {
    let registry = crate::registry::Registry::new(crate::config::Config {
        consecutive_failures: Some(1),
        ..crate::config::Config::default()
    })
    .unwrap();
    registry.get_or_create("db");
    let shared = Shared::new(
        crate::fleet::FleetOptions::new("redis://127.0.0.1:1", "checkout").quorum(quorum),
        "me".into(),
        Arc::new(registry),
        Arc::default(),
    );
    Counters::set(&shared.counters.instances, live);
    shared
}

fn payload(kind: MessageKind, sender: &str, generation: u64) -> Vec<u8> {
    let open_for = if kind == MessageKind::Open {
        Duration::from_secs(5)
    } else {
        Duration::ZERO
    };
    let m = Message {
        instance: sender.into(),
        generation,
        ..message(kind, open_for)
    };
    message::encode(&m).unwrap().into_bytes()
}

/// One or two sick instances of five trip again and again: the healthy one never opens.
/// A third agreeing instance (a real outage) opens it at once. A close withdraws a claim.
#[test]
fn a_sick_minority_never_opens_a_healthy_instance() {
    let shared = fleet_of(5, crate::fleet::Quorum::Majority);
    let (mut dedup, mut claims) = (Dedup::new(64, None), Claims::new(64));
    let db = shared.registry.get("db").unwrap();
    let t0 = Instant::now();
    for round in 0..100u64 {
        let at = t0 + Duration::from_millis(round * 100);
        for sick in ["a", "b"] {
            let p = payload(MessageKind::Open, sick, round * 2 + 1);
            receive(&shared, (&mut dedup, &mut claims), &p, at);
        }
        assert_eq!(db.state(), State::Closed, "round {round}");
    }
    let status = shared.counters.status();
    assert_eq!(status.trips_short_of_quorum, 200);
    assert_eq!(status.messages_applied, 0);

    // b's probe closes it: its claim is withdrawn, so c's trip makes two, not three.
    let at = t0 + Duration::from_secs(10);
    receive(
        &shared,
        (&mut dedup, &mut claims),
        &payload(MessageKind::Close, "b", 1_000),
        at,
    );
    receive(
        &shared,
        (&mut dedup, &mut claims),
        &payload(MessageKind::Open, "a", 1_001),
        at,
    );
    receive(
        &shared,
        (&mut dedup, &mut claims),
        &payload(MessageKind::Open, "c", 1),
        at,
    );
    assert_eq!(db.state(), State::Closed);
    // A third instance agrees within a's and c's deadlines: the outage is real.
    let later = at + Duration::from_secs(1);
    receive(
        &shared,
        (&mut dedup, &mut claims),
        &payload(MessageKind::Open, "d", 1),
        later,
    );
    assert_eq!(db.state(), State::Open);
    assert_eq!(shared.counters.status().messages_applied, 1);
}

/// With a key, only signed messages move a breaker: forged isolations, resets and a
/// forged generation past a real peer's are refused and counted, and leave the peer's next
/// signed message working.
#[test]
fn with_a_key_forged_messages_move_nothing() {
    let key = vec![7u8; signing::MIN_KEY];
    let registry = crate::registry::Registry::new(crate::config::Config {
        consecutive_failures: Some(1),
        ..crate::config::Config::default()
    })
    .unwrap();
    let db = registry.get_or_create("db");
    let shared = Shared::new(
        crate::fleet::FleetOptions::new("redis://127.0.0.1:1", "checkout")
            .quorum(crate::fleet::Quorum::Instances(1))
            .signing_key(key.clone()),
        "me".into(),
        Arc::new(registry),
        Arc::default(),
    );
    let (mut dedup, mut claims) = (Dedup::new(64, None), Claims::new(64));
    let now = Instant::now();
    let signed = |p: Vec<u8>, key: &[u8]| {
        let text = String::from_utf8(p).unwrap();
        signing::sign(
            &signing::Key::new(key.to_vec()),
            "checkout",
            shared.fleet_ms(),
            &text,
        )
        .into_bytes()
    };
    // Forged: unsigned, and signed with another key.
    for p in [
        payload(MessageKind::Isolate, "intruder", 1),
        payload(MessageKind::Open, "peer", u64::MAX),
        signed(payload(MessageKind::Isolate, "peer", u64::MAX), &[9u8; 32]),
    ] {
        receive(&shared, (&mut dedup, &mut claims), &p, now);
        assert_eq!(db.state(), State::Closed);
    }
    assert_eq!(shared.counters.status().messages_unauthenticated, 3);
    // The real peer's signed trip at its real generation still applies.
    let real = signed(payload(MessageKind::Open, "peer", 2), &key);
    receive(&shared, (&mut dedup, &mut claims), &real, now);
    assert_eq!(db.state(), State::Open);
    // A forged reset does not half-open it before its deadline.
    receive(
        &shared,
        (&mut dedup, &mut claims),
        &payload(MessageKind::Reset, "peer", 3),
        now,
    );
    assert_eq!(db.state(), State::Open);
    let status = shared.counters.status();
    assert_eq!(status.messages_unauthenticated, 4);
    assert_eq!(status.messages_applied, 1);
}

/// One sick instance that restarts (a new suffix at each start) is one voice: its three
/// lives make no majority of five.
#[test]
fn the_lives_of_one_restarting_instance_are_one_voice() {
    let shared = fleet_of(5, crate::fleet::Quorum::Majority);
    let (mut dedup, mut claims) = (Dedup::new(64, None), Claims::new(64));
    let t0 = Instant::now();
    for (life, id) in ["web-3.1a2b3c4d", "web-3.5e6f7a8b", "web-3.9c0d1e2f"]
        .into_iter()
        .enumerate()
    {
        let at = t0 + Duration::from_secs(life as u64);
        receive(
            &shared,
            (&mut dedup, &mut claims),
            &payload(MessageKind::Open, id, 1),
            at,
        );
    }
    assert_eq!(shared.registry.get("db").unwrap().state(), State::Closed);
    // Two other instances agreeing make three of five.
    for id in ["web-1.00000001", "web-2.00000002"] {
        let at = t0 + Duration::from_secs(3);
        receive(
            &shared,
            (&mut dedup, &mut claims),
            &payload(MessageKind::Open, id, 1),
            at,
        );
    }
    assert_eq!(shared.registry.get("db").unwrap().state(), State::Open);
}

/// Before a flush counted the fleet (live 0), two trips are no majority.
#[test]
fn no_majority_before_the_fleet_was_counted() {
    let shared = fleet_of(0, crate::fleet::Quorum::Majority);
    let (mut dedup, mut claims) = (Dedup::new(64, None), Claims::new(64));
    for id in ["a.00000001", "b.00000002"] {
        let p = payload(MessageKind::Open, id, 1);
        receive(&shared, (&mut dedup, &mut claims), &p, Instant::now());
    }
    assert_eq!(shared.registry.get("db").unwrap().state(), State::Closed);
}

/// With a key, a signed message for a breaker this instance does not have yet is
/// remembered: replayed once the breaker exists (inside the replay window), it is a
/// duplicate, and a lifted isolation does not open it.
#[test]
fn a_replayed_message_from_before_a_breaker_existed_is_a_duplicate() {
    let key = vec![7u8; signing::MIN_KEY];
    let registry = crate::registry::Registry::default();
    let shared = Shared::new(
        crate::fleet::FleetOptions::new("redis://127.0.0.1:1", "checkout")
            .quorum(crate::fleet::Quorum::Instances(1))
            .signing_key(key.clone()),
        "me".into(),
        Arc::new(registry),
        Arc::default(),
    );
    Counters::set(&shared.counters.instances, 5);
    let window = shared.keys.as_ref().map(|k| k.replay_window * 2);
    let (mut dedup, mut claims) = (Dedup::new(64, window), Claims::new(64));
    let k = signing::Key::new(key);
    let sign = |kind, generation| {
        let text = String::from_utf8(payload(kind, "peer.0000abcd", generation)).unwrap();
        signing::sign(&k, "checkout", shared.fleet_ms(), &text).into_bytes()
    };
    let (isolate, reset) = (sign(MessageKind::Isolate, 7), sign(MessageKind::Reset, 8));
    let now = Instant::now();
    receive(&shared, (&mut dedup, &mut claims), &isolate, now);
    receive(&shared, (&mut dedup, &mut claims), &reset, now);
    let db = shared.registry.get_or_create("db");
    receive(&shared, (&mut dedup, &mut claims), &isolate, now); // the replay
    assert_eq!(db.state(), State::Closed);
    assert_eq!(shared.counters.status().messages_applied, 0);
}

/// Claims end at their senders' deadlines: three trips spread wider than the open time
/// never agree.
#[test]
fn trips_that_never_overlap_make_no_quorum() {
    let shared = fleet_of(5, crate::fleet::Quorum::Majority);
    let (mut dedup, mut claims) = (Dedup::new(64, None), Claims::new(64));
    let t0 = Instant::now();
    for (i, sender) in ["a", "b", "c", "d"].into_iter().enumerate() {
        let at = t0 + Duration::from_secs(6 * i as u64); // each claim lasts 5 s
        receive(
            &shared,
            (&mut dedup, &mut claims),
            &payload(MessageKind::Open, sender, 1),
            at,
        );
    }
    assert_eq!(shared.registry.get("db").unwrap().state(), State::Closed);
    // With `Instances(1)`, any one peer's trip applies.
    let eager = fleet_of(5, crate::fleet::Quorum::Instances(1));
    let (mut dedup, mut claims) = (Dedup::new(64, None), Claims::new(64));
    receive(
        &eager,
        (&mut dedup, &mut claims),
        &payload(MessageKind::Open, "a", 1),
        t0,
    );
    assert_eq!(eager.registry.get("db").unwrap().state(), State::Open);
}

#[test]
fn listeners_hear_fleet_transitions_with_their_cause() {
    let heard = Arc::new(std::sync::Mutex::new(Vec::new())); // test-only, off the hot path
    let h = heard.clone();
    let b = Breaker::builder()
        .on_transition(move |t| h.lock().unwrap().push((t.to, t.cause)))
        .build()
        .unwrap();
    assert!(apply(
        &b,
        &message(MessageKind::Open, Duration::from_secs(1))
    ));
    assert!(apply(&b, &message(MessageKind::Close, Duration::ZERO)));
    assert_eq!(
        *heard.lock().unwrap(),
        [(State::Open, Cause::Fleet), (State::HalfOpen, Cause::Fleet)]
    );
}

/// Two instances wired through the message layer (what the publisher would send for each
/// transition, applied by the other), on mock clocks, both with a 5 s half-open timeout.
/// `b` serves few calls. A peer's close half-opens `b` with no probe taken; when `b`'s next
/// call comes after the timeout, `b` reopens for "no verdict" although it never probed.
/// That reopening is not a failure and is not published, so `a`, whose own probe has just
/// succeeded, stays Closed round after round.
#[test]
fn a_quiet_peer_never_trips_a_recovered_instance_on_no_verdict() {
    use crate::fleet::message;
    use crate::transition::Transition;
    use std::sync::Mutex; // test-only, off the hot path

    type Heard = Arc<Mutex<Vec<Transition>>>; // test-only, off the hot path
    let instance = || {
        let (clock, mock) = quanta::Clock::mock();
        mock.increment(Duration::from_secs(1));
        let heard: Heard = Arc::default();
        let h = heard.clone();
        let b = Breaker::builder()
            .consecutive_failures(1)
            .open_timeout(Duration::from_secs(10))
            .half_open_permits(1)
            .half_open_timeout(Duration::from_secs(5))
            .clock(clock)
            .on_transition(move |t| h.lock().unwrap().push(*t))
            .build()
            .unwrap();
        (b, mock, heard)
    };
    // Sends what `from` published since the last delivery to `to`; returns the kinds.
    let deliver = |from: &Breaker, heard: &Heard, to: &Breaker| -> Vec<MessageKind> {
        let mut sent = Vec::new();
        for t in heard.lock().unwrap().drain(..) {
            let Some(kind) = message::outgoing(&t) else {
                continue;
            };
            let open_for = match kind {
                MessageKind::Open => from.metrics().retry_after.unwrap_or_default(),
                _ => Duration::ZERO,
            };
            apply(
                to,
                &Message {
                    open_for,
                    ..message(kind, open_for)
                },
            );
            sent.push(kind);
        }
        sent
    };
    let (a, a_clock, a_heard) = instance();
    let (b, b_clock, b_heard) = instance();

    a.try_acquire().unwrap().failure(); // the one real failure
    assert_eq!(deliver(&a, &a_heard, &b), [MessageKind::Open]);
    assert_eq!(b.state(), State::Open);
    // a waits out its opening; its probe succeeds: a is healthy, and says so.
    a_clock.increment(Duration::from_secs(60));
    a.try_acquire().unwrap().success();
    assert_eq!(a.state(), State::Closed);
    assert_eq!(deliver(&a, &a_heard, &b), [MessageKind::Close]);
    assert_eq!(b.state(), State::HalfOpen);
    // b's next call comes 6 s later: b reopens for "no verdict", which it keeps to itself.
    b_clock.increment(Duration::from_secs(6));
    assert!(b.try_acquire().is_err());
    assert_eq!(b.state(), State::Open);
    assert_eq!(deliver(&b, &b_heard, &a), []);
    assert_eq!(
        a.state(),
        State::Closed,
        "a peer that never probed tripped a recovered instance"
    );
    // b probes on its own schedule and closes.
    b_clock.increment(Duration::from_secs(60));
    b.try_acquire().expect("b's own probe").success();
    assert_eq!(b.state(), State::Closed);
    assert_eq!(deliver(&b, &b_heard, &a), [MessageKind::Close]);
    assert_eq!(a.state(), State::Closed);
}
