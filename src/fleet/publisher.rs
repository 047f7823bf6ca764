//! The publisher task: sends the transitions the registry listener queued on the channel.

use std::sync::Arc;
use std::time::Duration;

use redis::aio::ConnectionManager;
use tokio::sync::mpsc;

use crate::fleet::Shared;
use crate::fleet::message::{self, Kind, Message};
use crate::fleet::metrics::Counters;
use crate::state::{Cause, State};

/// One transition waiting to be sent (built by the listener: one small allocation, the name).
#[derive(Debug)]
pub(crate) struct Outgoing {
    pub(crate) name: Box<str>,
    pub(crate) generation: u64,
    pub(crate) kind: Kind,
    pub(crate) cause: Cause,
}

pub(crate) async fn run(
    shared: Arc<Shared>,
    mut manager: ConnectionManager,
    mut rx: mpsc::Receiver<Outgoing>,
) {
    let channel = shared.options.channel();
    let counters = &shared.counters;
    while let Some(out) = rx.recv().await {
        let Some(payload) = payload(&shared, &out) else {
            Counters::add(&counters.publish_dropped, 1);
            continue;
        };
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(&channel).arg(payload);
        let publish = cmd.query_async::<redis::Value>(&mut manager);
        match tokio::time::timeout(shared.options.command_timeout, publish).await {
            Ok(Ok(_)) => Counters::add(&counters.messages_out, 1),
            _ => Counters::add(&counters.publish_dropped, 1),
        }
    }
}

/// The message for `out`, or `None` when it is no longer worth sending: an Open whose
/// breaker has moved on (its deadline is then unknown, and a later message tells the truth).
/// The open duration is read now, so it is what is left of the deadline when it is sent.
fn payload(shared: &Shared, out: &Outgoing) -> Option<String> {
    let open_for = match out.kind {
        Kind::Open => {
            let m = shared.registry.get(&out.name)?.metrics();
            if m.state != State::Open || m.generation != out.generation {
                return None;
            }
            m.retry_after.filter(|d| !d.is_zero())?
        }
        _ => Duration::ZERO,
    };
    message::encode(&Message {
        kind: out.kind,
        instance: shared.instance.clone(),
        generation: out.generation,
        open_for,
        cause: message::cause_name(out.cause).to_owned(),
        name: out.name.to_string(),
    })
}
