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
use crate::fleet::message::{self, Message, MessageKind};
use crate::fleet::quorum::{self, Claims};
use crate::fleet::signing;
use crate::fleet::stats::Dedup;
use crate::fleet::status::Counters;
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
        MessageKind::Open => {
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
        MessageKind::Isolate => true,
        MessageKind::Close | MessageKind::Reset => {
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
        MessageKind::Open => breaker.trip_from_fleet(m.open_for),
        MessageKind::Isolate => breaker.trip_from_fleet(Duration::MAX),
        MessageKind::Close | MessageKind::Reset => breaker.half_open_from_fleet(),
    }
}

#[cfg(test)]
mod tests;
