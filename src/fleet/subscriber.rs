//! The subscriber task: listens on the channel and applies the other instances' messages,
//! reconnecting with backoff whenever the subscription drops. A peer's trip opens a breaker
//! here only once enough instances agree (see [`Quorum`](super::Quorum)).
//!
//! **Nothing is queued.** The subscription is a RESP3 connection whose push handler applies
//! each message as the connection reads it (decoding, deduplication and the state machine
//! take microseconds and never wait). A flood of messages is therefore held nowhere in this
//! process: when it arrives faster than it is handled, it waits in the socket and in Redis's
//! output buffer for this client, and Redis disconnects a subscriber past its
//! `client-output-buffer-limit pubsub` (32 MiB by default); the subscriber then reconnects.
//! A payload longer than a signed message can be is refused before it is decoded, and one
//! over 1 MiB also replaces the connection, so that its read buffer is given back. What this process holds is
//! bounded by the tables ([`Dedup`], [`Claims`]: 65 536 pairs each) and the one message
//! being read.

use std::sync::{Arc, Mutex}; // Mutex: the push handler's tables, off the hot path
use std::time::{Duration, Instant};

use redis::{PushInfo, PushKind, Value};
use tokio::sync::Notify;

use crate::breaker::Breaker;
use crate::fleet::message::{self, Kind, Message};
use crate::fleet::metrics::Counters;
use crate::fleet::quorum::{self, Claims};
use crate::fleet::signing;
use crate::fleet::stats::Dedup;
use crate::fleet::{Shared, backoff};

/// Senders × names remembered for deduplication (see [`Dedup`]).
const DEDUP_CAPACITY: usize = 65_536;
/// How often the subscriber pings its connection: one that died without closing (a
/// partition, a hung server) is noticed within this plus the command timeout.
const KEEPALIVE: Duration = Duration::from_secs(1);

/// A refused payload larger than this also replaces the subscription's connection, whose read
/// buffer grew to hold it (up to Redis's pub/sub output limit, 32 MiB by default) and would
/// otherwise keep that size.
const GIVE_BACK_ABOVE: usize = 1 << 20;

/// What the push handler keeps between messages. Behind a mutex that only the subscription's
/// connection task takes, once per message: off the hot path, and never contended.
type Tables = Arc<Mutex<(Dedup, Claims)>>; // off the hot path

pub(crate) async fn run(shared: Arc<Shared>, client: redis::Client) {
    let channel = shared.options.channel();
    let counters = &shared.counters;
    // With signed messages, a pair last heard past twice the replay window can go.
    let dedup = Dedup::new(
        DEDUP_CAPACITY,
        shared.keys.as_ref().map(|k| k.replay_window * 2),
    );
    let tables: Tables = Arc::new(Mutex::new((dedup, Claims::new(DEDUP_CAPACITY)))); // off the hot path
    let mut failures = 0u32;
    loop {
        // A new signal for each connection: a disconnection reported by an old one must not
        // end the next.
        let lost = Arc::new(Notify::new());
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(shared.options.command_timeout))
            .set_response_timeout(Some(shared.options.command_timeout))
            .set_push_sender(handler(shared.clone(), tables.clone(), lost.clone()));
        let connect = async {
            let mut con = client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            con.subscribe(&channel).await?;
            Ok::<_, redis::RedisError>(con)
        };
        if let Ok(Ok(mut con)) = tokio::time::timeout(shared.options.command_timeout, connect).await
        {
            failures = 0;
            Counters::add(&counters.subscriptions, 1);
            Counters::flag(&counters.subscribed, true);
            loop {
                if tokio::time::timeout(KEEPALIVE, lost.notified())
                    .await
                    .is_ok()
                {
                    break; // the connection closed
                }
                let cmd = redis::cmd("PING");
                let ping = cmd.query_async::<Value>(&mut con);
                match tokio::time::timeout(shared.options.command_timeout, ping).await {
                    Ok(Ok(_)) => {}
                    _ => break, // alive no more: resubscribe on a new connection
                }
            }
            Counters::flag(&counters.subscribed, false);
        }
        failures = failures.saturating_add(1);
        tokio::time::sleep(backoff(failures, shared.options.reconnect_max)).await;
    }
}

/// The push handler of a subscription: applies each message on the channel as it is read, and
/// signals `lost` when the connection closes. Never blocks.
fn handler(
    shared: Arc<Shared>,
    tables: Tables,
    lost: Arc<Notify>,
) -> impl Fn(PushInfo) -> Result<(), ()> + Send + Sync + 'static {
    move |info: PushInfo| {
        match info.kind {
            PushKind::Message => {
                if let [_, Value::BulkString(payload)] = info.data.as_slice() {
                    if payload.len() > GIVE_BACK_ABOVE {
                        // Read whole by the connection, whose buffer grew to hold it and
                        // would keep that size for its life: refused, and the connection is
                        // replaced so that the buffer is given back.
                        Counters::add(&shared.counters.messages_in, 1);
                        Counters::add(&shared.counters.messages_malformed, 1);
                        lost.notify_one();
                        return Ok(());
                    }
                    // A poisoned lock only means a listener panicked mid-message; the tables
                    // are still consistent (each update is one insert or retain).
                    let mut guard = tables.lock().unwrap_or_else(|e| e.into_inner());
                    let (dedup, claims) = &mut *guard;
                    receive(&shared, (dedup, claims), payload, Instant::now());
                }
            }
            PushKind::Disconnection => lost.notify_one(),
            _ => {}
        }
        Ok(())
    }
}

/// Handles one payload from the channel, received at `now`: check its signature if this
/// instance has a key, decode, drop this instance's own,
/// those for names it has no breaker for, and stale ones, record or withdraw the sender's
/// claim, and apply the rest (a trip only once a quorum agrees).
pub(crate) fn receive(
    shared: &Shared,
    (dedup, claims): (&mut Dedup, &mut Claims),
    payload: &[u8],
    now: Instant,
) {
    let counters = &shared.counters;
    Counters::add(&counters.messages_in, 1);
    if payload.len() > signing::MAX_SIGNED {
        Counters::add(&counters.messages_malformed, 1);
        return;
    }
    let payload = match signing::accept(
        shared.keys.as_ref(),
        &shared.options.prefix,
        shared.fleet_ms(),
        payload,
    ) {
        Ok(message) => message,
        Err(_) => {
            Counters::add(&counters.messages_unauthenticated, 1);
            return;
        }
    };
    let Ok(m) = message::decode(payload) else {
        Counters::add(&counters.messages_malformed, 1);
        return;
    };
    if m.instance == shared.instance {
        Counters::add(&counters.messages_ignored, 1);
        return;
    }
    // A name this instance has not created is not created from a message: a peer (or anyone
    // publishing on the channel) must not be able to grow this registry. Without a key its
    // messages are not remembered either, so that anyone publishing cannot fill the tables
    // with names nobody here uses; with a key, only holders of the key send what is
    // remembered, and remembering it keeps a replay of it (inside the replay window, once the
    // breaker exists here) a duplicate.
    let Some(breaker) = shared.registry.get(&m.name) else {
        if shared.keys.is_some() {
            dedup.fresh(&m.name, &m.instance, m.generation, now);
        }
        Counters::add(&counters.messages_ignored, 1);
        return;
    };
    let applied = dedup.fresh(&m.name, &m.instance, m.generation, now)
        && agreed(shared, claims, &m, now)
        && apply(&breaker, &m);
    if applied {
        Counters::add(&counters.messages_applied, 1);
    } else {
        Counters::add(&counters.messages_ignored, 1);
    }
}

/// Whether a fresh message may move the local breaker. A trip is the sender's claim that the
/// breaker should be open until its deadline; it applies once the claims still valid come
/// from a quorum of instances. An isolation is an operator's decision and applies as sent. A
/// close or a reset withdraws the sender's claim and applies (it only ever half-opens an Open
/// breaker, whose own probes then decide).
fn agreed(shared: &Shared, claims: &mut Claims, m: &Message, now: Instant) -> bool {
    match m.kind {
        Kind::Open => {
            // Claims count instances by name: the lives of one instance (restarted, each with
            // a new suffix) are one voice, and a dead life never withdraws its claim.
            let sender = message::instance_name(&m.instance);
            let agreeing = claims.claim(&m.name, sender, m.open_for, now);
            let live = Counters::get(&shared.counters.instances);
            let reached = quorum::reached(shared.options.quorum, agreeing, live);
            if !reached {
                Counters::add(&shared.counters.short_of_quorum, 1);
            }
            reached
        }
        Kind::Isolate => true,
        Kind::Close | Kind::Reset => {
            claims.withdraw(&m.name, message::instance_name(&m.instance));
            true
        }
    }
}

/// What a fresh message from a peer does to the local breaker: a trip or an isolation opens
/// a Closed breaker (for the peer's remaining open time, or for the longest opening the local
/// backoff allows after an isolation); a close or a reset half-opens an Open one. Whether it
/// applies in the breaker's current state is `state::next`'s decision (see
/// [`Breaker::trip_from_fleet`]). Returns whether the breaker moved.
pub(crate) fn apply(breaker: &Breaker, m: &Message) -> bool {
    match m.kind {
        Kind::Open => breaker.trip_from_fleet(m.open_for),
        Kind::Isolate => breaker.trip_from_fleet(Duration::MAX),
        Kind::Close | Kind::Reset => breaker.half_open_from_fleet(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::{Cause, State};

    fn message(kind: Kind, open_for: Duration) -> Message {
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
            for kind in [Kind::Open, Kind::Isolate, Kind::Close, Kind::Reset] {
                let (b, _) = breaker_in(state);
                let before = b.metrics().generation;
                let moved = apply(&b, &message(kind, five));
                let after = b.state();
                let want = match (kind, state) {
                    (Kind::Open | Kind::Isolate, State::Closed) => Some(State::Open),
                    (Kind::Close | Kind::Reset, State::Open) => Some(State::HalfOpen),
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
        assert!(apply(&b, &message(Kind::Open, Duration::from_secs(5))));
        assert_eq!(b.metrics().retry_after, Some(Duration::from_secs(5)));
        mock.increment(Duration::from_secs(5));
        assert!(
            b.try_acquire().is_ok(),
            "probes on its own schedule at the sender's deadline"
        );
        assert_eq!(b.state(), State::HalfOpen);

        // A peer that says "an hour" (or garbage) gets the local maximum, 60 s.
        let (b, _) = breaker_in(State::Closed);
        assert!(apply(&b, &message(Kind::Open, Duration::from_secs(3_600))));
        assert_eq!(b.metrics().retry_after, Some(Duration::from_secs(60)));
        let (b, _) = breaker_in(State::Closed);
        assert!(apply(&b, &message(Kind::Isolate, Duration::ZERO)));
        assert_eq!(b.metrics().retry_after, Some(Duration::from_secs(60)));
        // A zero duration is no trip.
        let (b, _) = breaker_in(State::Closed);
        assert!(!apply(&b, &message(Kind::Open, Duration::ZERO)));
        assert_eq!(b.state(), State::Closed);
    }

    /// An Open breaker keeps its own (shorter) deadline when a peer says "30 s".
    #[test]
    fn an_open_breaker_keeps_its_deadline() {
        let (b, mock) = breaker_in(State::Open);
        mock.increment(Duration::from_secs(20));
        assert!(!apply(&b, &message(Kind::Open, Duration::from_secs(30))));
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

    fn payload(kind: Kind, sender: &str, generation: u64) -> Vec<u8> {
        let open_for = if kind == Kind::Open {
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
                let p = payload(Kind::Open, sick, round * 2 + 1);
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
            &payload(Kind::Close, "b", 1_000),
            at,
        );
        receive(
            &shared,
            (&mut dedup, &mut claims),
            &payload(Kind::Open, "a", 1_001),
            at,
        );
        receive(
            &shared,
            (&mut dedup, &mut claims),
            &payload(Kind::Open, "c", 1),
            at,
        );
        assert_eq!(db.state(), State::Closed);
        // A third instance agrees within a's and c's deadlines: the outage is real.
        let later = at + Duration::from_secs(1);
        receive(
            &shared,
            (&mut dedup, &mut claims),
            &payload(Kind::Open, "d", 1),
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
            payload(Kind::Isolate, "intruder", 1),
            payload(Kind::Open, "peer", u64::MAX),
            signed(payload(Kind::Isolate, "peer", u64::MAX), &[9u8; 32]),
        ] {
            receive(&shared, (&mut dedup, &mut claims), &p, now);
            assert_eq!(db.state(), State::Closed);
        }
        assert_eq!(shared.counters.status().messages_unauthenticated, 3);
        // The real peer's signed trip at its real generation still applies.
        let real = signed(payload(Kind::Open, "peer", 2), &key);
        receive(&shared, (&mut dedup, &mut claims), &real, now);
        assert_eq!(db.state(), State::Open);
        // A forged reset does not half-open it before its deadline.
        receive(
            &shared,
            (&mut dedup, &mut claims),
            &payload(Kind::Reset, "peer", 3),
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
                &payload(Kind::Open, id, 1),
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
                &payload(Kind::Open, id, 1),
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
            let p = payload(Kind::Open, id, 1);
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
        let (isolate, reset) = (sign(Kind::Isolate, 7), sign(Kind::Reset, 8));
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
                &payload(Kind::Open, sender, 1),
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
            &payload(Kind::Open, "a", 1),
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
        assert!(apply(&b, &message(Kind::Open, Duration::from_secs(1))));
        assert!(apply(&b, &message(Kind::Close, Duration::ZERO)));
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
        let deliver = |from: &Breaker, heard: &Heard, to: &Breaker| -> Vec<Kind> {
            let mut sent = Vec::new();
            for t in heard.lock().unwrap().drain(..) {
                let Some(kind) = message::outgoing(&t) else {
                    continue;
                };
                let open_for = match kind {
                    Kind::Open => from.metrics().retry_after.unwrap_or_default(),
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
        assert_eq!(deliver(&a, &a_heard, &b), [Kind::Open]);
        assert_eq!(b.state(), State::Open);
        // a waits out its opening; its probe succeeds: a is healthy, and says so.
        a_clock.increment(Duration::from_secs(60));
        a.try_acquire().unwrap().success();
        assert_eq!(a.state(), State::Closed);
        assert_eq!(deliver(&a, &a_heard, &b), [Kind::Close]);
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
        assert_eq!(deliver(&b, &b_heard, &a), [Kind::Close]);
        assert_eq!(a.state(), State::Closed);
    }
}
