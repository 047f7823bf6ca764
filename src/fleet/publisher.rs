//! The publisher task: sends the transitions the registry listener queued on the channel.
//!
//! A publish that fails (Redis slow past the command timeout, down, restarting) is retried
//! with backoff for as long as the message is still current and at most [`RETRY_FOR`]. Every
//! message is sent once more a little later, if still current: pub/sub keeps nothing for a
//! subscriber that is reconnecting (after Redis restarted or slept, or after Redis dropped it
//! for a flood or an oversized message), and the copy reaches it once it is back. Receivers
//! drop the copies (same sender, same generation). Transitions are rare, so this doubles a
//! small number.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use tokio::sync::mpsc;

use crate::fleet::message::{self, Message, MessageKind};
use crate::fleet::signing;
use crate::fleet::status::Counters;
use crate::fleet::{Shared, backoff};
use crate::state::{Cause, State};

/// One transition waiting to be sent (built by the listener: one small allocation, the name).
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub(crate) name: Box<str>,
    pub(crate) generation: u64,
    pub(crate) kind: MessageKind,
    pub(crate) cause: Cause,
}

pub(crate) async fn run(
    shared: Arc<Shared>,
    mut manager: ConnectionManager,
    mut rx: mpsc::Receiver<Outgoing>,
) {
    let counters = &shared.counters;
    while let Some(out) = rx.recv().await {
        let first = Instant::now();
        let mut failures = 0u32;
        loop {
            // Read again at every attempt: a message overtaken meanwhile is not sent, and an
            // open's remaining time is what is left when it goes.
            let Some(payload) = payload(&shared, &out) else {
                Counters::add(&counters.publish_dropped, 1);
                break;
            };
            if publish(&shared, &mut manager, payload).await {
                Counters::add(&counters.messages_out, 1);
                tokio::spawn(send_again(shared.clone(), manager.clone(), out));
                break;
            }
            failures = failures.saturating_add(1);
            if first.elapsed() >= RETRY_FOR {
                Counters::add(&counters.publish_dropped, 1);
                break;
            }
            Counters::add(&counters.publish_retries, 1);
            tokio::time::sleep(backoff(failures, shared.options.reconnect_max)).await;
        }
    }
}

/// How long a failing publish is retried: a trip still current after this long has most
/// likely been decided by each peer's own rules or fleet window.
pub(crate) const RETRY_FOR: Duration = Duration::from_secs(30);

/// One `PUBLISH` within the command timeout; whether Redis took it.
async fn publish(shared: &Shared, manager: &mut ConnectionManager, payload: String) -> bool {
    let mut cmd = redis::cmd("PUBLISH");
    cmd.arg(shared.options.channel()).arg(payload);
    let publish = cmd.query_async::<redis::Value>(manager);
    matches!(
        tokio::time::timeout(shared.options.command_timeout, publish).await,
        Ok(Ok(_))
    )
}

/// Sends a message once more, after the longest reconnection wait plus a command timeout: by
/// then a peer whose subscription had dropped has resubscribed. Nothing if the message is no
/// longer current.
async fn send_again(shared: Arc<Shared>, mut manager: ConnectionManager, out: Outgoing) {
    let options = &shared.options;
    tokio::time::sleep(options.reconnect_max + options.command_timeout).await;
    if let Some(payload) = payload(&shared, &out) {
        if publish(&shared, &mut manager, payload).await {
            Counters::add(&shared.counters.messages_repeated, 1);
        }
    }
}

/// The message for `out`, or `None` when it is no longer worth sending: an Open whose
/// breaker has moved on (its deadline is then unknown, and a later message tells the truth),
/// a close or a reset whose breaker has opened again since, or an isolation already lifted.
/// A peer that heard a stale close would half-open, and the trip sent after it could not undo
/// that (a HalfOpen breaker lets its own probes decide).
/// The open duration is read now, so it is what is left of the deadline when it is sent.
fn payload(shared: &Shared, out: &Outgoing) -> Option<String> {
    let m = shared.registry.get(&out.name)?.metrics();
    let open_for = match out.kind {
        MessageKind::Open => {
            if m.state != State::Open || m.generation != out.generation {
                return None;
            }
            m.retry_after.filter(|d| !d.is_zero())?
        }
        MessageKind::Close | MessageKind::Reset
            if !matches!(m.state, State::Closed | State::Disabled) =>
        {
            return None;
        }
        MessageKind::Isolate if m.state != State::Isolated => return None,
        _ => Duration::ZERO,
    };
    let text = message::encode(&Message {
        kind: out.kind,
        instance: shared.instance.clone(),
        generation: out.generation,
        open_for,
        cause: message::cause_name(out.cause).to_owned(),
        name: out.name.to_string(),
    })?;
    // Signed at each send, so that a retry or a repeat carries its own time.
    Some(match &shared.keys {
        Some(keys) => signing::sign(
            &keys.signing,
            &shared.options.prefix,
            shared.fleet_ms(),
            &text,
        ),
        None => text,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::fleet::FleetOptions;
    use crate::registry::Registry;

    /// A link's shared state over a registry on a mock clock whose breakers trip on one
    /// failure, stay Open 30 s and close on one probe.
    fn shared() -> (Shared, Arc<quanta::Mock>) {
        let (clock, mock) = quanta::Clock::mock();
        mock.increment(Duration::from_secs(1));
        let config = Config {
            consecutive_failures: Some(1),
            open_timeout: Some(Duration::from_secs(30)),
            half_open_permits: Some(1),
            half_open_successes: Some(1),
            ..Config::default()
        };
        let registry = Registry::new(config).unwrap().clock(clock);
        let shared = Shared::new(
            FleetOptions::new("redis://127.0.0.1:1", "checkout"),
            "me".into(),
            Arc::new(registry),
            Arc::default(),
        );
        (shared, mock)
    }

    fn out(kind: MessageKind, generation: u64, cause: Cause) -> Outgoing {
        Outgoing {
            name: "db".into(),
            generation,
            kind,
            cause,
        }
    }

    /// A close (or a reset) still waiting when its breaker has opened again is not sent: a
    /// peer would half-open on it, and the trip sent after it could not undo that (a HalfOpen
    /// breaker lets its own probes decide). The trip alone tells the truth.
    #[test]
    fn a_recovery_overtaken_by_a_new_trip_is_not_sent() {
        let (shared, mock) = shared();
        let b = shared.registry.get_or_create("db");
        b.try_acquire().unwrap().failure(); // generation 1: Open
        mock.increment(Duration::from_secs(30));
        b.try_acquire().unwrap().success(); // 2: HalfOpen, 3: Closed
        assert_eq!((b.state(), b.metrics().generation), (State::Closed, 3));
        let close = out(MessageKind::Close, 3, Cause::HalfOpenSuccesses);
        assert!(payload(&shared, &close).is_some(), "still closed: sent");
        b.try_acquire().unwrap().failure(); // 4: Open again
        assert_eq!(payload(&shared, &close), None, "overtaken by the trip");
        let open = out(MessageKind::Open, 4, Cause::ConsecutiveFailures);
        assert!(payload(&shared, &open).is_some());

        b.reset(); // 5: Closed
        let reset = out(MessageKind::Reset, 5, Cause::Manual);
        assert!(payload(&shared, &reset).is_some());
        b.try_acquire().unwrap().failure(); // 6: Open
        assert_eq!(payload(&shared, &reset), None);

        b.isolate(); // 7: Isolated
        let isolate = out(MessageKind::Isolate, 7, Cause::Manual);
        assert!(payload(&shared, &isolate).is_some());
        b.reset(); // 8: Closed
        assert_eq!(
            payload(&shared, &isolate),
            None,
            "an isolation already lifted"
        );
        assert!(payload(&shared, &out(MessageKind::Reset, 8, Cause::Manual)).is_some());
    }
}
