//! A fleet of instances that trips together, coordinated through Redis (feature `redis`).
//!
//! Every decision stays local and lock-free: a call reads and writes only its breaker, exactly
//! as without this module. What the fleet knows arrives asynchronously, on three tasks:
//!
//! - the **flusher** reads each breaker's lifetime totals every `flush_interval` (100 ms by
//!   default), writes the deltas into per-breaker, per-bucket Redis hashes and reads the
//!   fleet's totals back, in one pipeline; a breaker with a [`FleetRule`] trips when the rule
//!   holds on the fleet-wide window ([`Cause::FleetWindow`](crate::Cause::FleetWindow));
//! - the **publisher** sends each local trip, probe-confirmed close, `isolate()` and `reset()`
//!   on a pub/sub channel, handed over by a registry listener through a bounded queue;
//! - the **subscriber** applies the other instances' messages with
//!   [`Breaker::trip_from_fleet`](crate::Breaker::trip_from_fleet) and
//!   [`Breaker::half_open_from_fleet`](crate::Breaker::half_open_from_fleet)
//!   ([`Cause::Fleet`](crate::Cause::Fleet)).
//!
//! Redis being down, slow, restarted or answering garbage never reaches a call: breakers keep
//! their local rules, the link counts what it dropped and resumes when Redis answers again.
//! See `docs/fleet.md` for the design, the keys, the message format and the numbers.
//!
//! # Examples
//! ```no_run
//! use std::sync::Arc;
//! use hotbreaker::{Config, Registry};
//! use hotbreaker::fleet::{Fleet, FleetOptions, FleetRule};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let options = FleetOptions::new("redis://127.0.0.1:6379", "checkout")
//!     .default_rule(FleetRule::failure_rate(0.5).minimum_calls(100));
//! let fleet = Fleet::new(options)?;
//! // The listener that hands transitions to the publisher, before any breaker is created.
//! let registry = Arc::new(fleet.watch(Registry::new(Config::default())?));
//! let link = fleet.start(registry.clone())?; // spawns the tasks on the current tokio runtime
//!
//! let payments = registry.get_or_create("payments"); // calls go through this, as always
//! # let _ = payments;
//! assert!(!link.status().up() || link.status().connected);
//! # Ok(())
//! # }
//! ```

mod error;
mod fleet_clock;
mod flusher;
mod link;
mod message;
mod options;
mod publisher;
mod quorum;
mod rule;
mod settled;
mod signing;
mod stats;
mod status;
mod subscriber;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex}; // Mutex: the fleet clock, off the hot path
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::registry::Registry;
use crate::transition::Transition;

pub use self::error::FleetError;
pub use self::link::FleetLink;
pub use self::options::FleetOptions;
pub use self::quorum::Quorum;
pub use self::rule::FleetRule;
pub use self::status::FleetStatus;

use self::fleet_clock::FleetClock;
use self::link::open_client;
use self::publisher::Outgoing;
pub(crate) use self::rule::Counts;
pub(crate) use self::stats::Observed;
use self::status::Counters;

/// A fleet link not started yet: install its listener with [`watch`](Fleet::watch), then
/// [`start`](Fleet::start) it.
pub struct Fleet {
    options: FleetOptions,
    instance: String,
    client: redis::Client,
    counters: Arc<Counters>,
    tx: mpsc::Sender<Outgoing>,
    rx: mpsc::Receiver<Outgoing>,
}

impl fmt::Debug for Fleet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fleet")
            .field("instance", &self.instance)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Fleet {
    /// Checks `options` and prepares the link; connects to nothing yet.
    ///
    /// # Errors
    /// A [`FleetError`] for a URL that does not parse, a bad prefix or a bad instance id.
    pub fn new(options: FleetOptions) -> Result<Fleet, FleetError> {
        let client = open_client(&options)?;
        let p = &options.prefix;
        if p.is_empty()
            || p.chars()
                .any(|c| matches!(c, '{' | '}' | '|') || c.is_whitespace())
        {
            return Err(FleetError::Prefix(p.clone()));
        }
        let name = match &options.instance_id {
            Some(id) => id.clone(),
            None => format!("{:016x}", random_u64()),
        };
        if name.len() > MAX_INSTANCE_NAME || !message::valid_instance(&name) {
            return Err(FleetError::InstanceId(name));
        }
        for key in [&options.signing_key, &options.accepted_key]
            .into_iter()
            .flatten()
        {
            if key.len() < signing::MIN_KEY {
                return Err(FleetError::Key(format!(
                    "{} bytes; at least {} are needed",
                    key.len(),
                    signing::MIN_KEY
                )));
            }
        }
        if options.accepted_key.is_some() && options.signing_key.is_none() {
            return Err(FleetError::Key(
                "accept_key() needs a signing_key() as well".to_owned(),
            ));
        }
        let instance = format!("{name}.{:08x}", random_u64() & 0xffff_ffff);
        let (tx, rx) = mpsc::channel(options.publish_capacity);
        Ok(Fleet {
            options,
            instance,
            client,
            counters: Arc::new(Counters::default()),
            tx,
            rx,
        })
    }

    /// This instance's id, as its messages carry it: its name and the suffix drawn at this
    /// start.
    pub fn instance_id(&self) -> &str {
        &self.instance
    }

    /// Adds the listener that hands `registry`'s transitions to the publisher, for the
    /// breakers it creates from now on: call it before creating any. The listener runs on the
    /// thread that made the transition; it never blocks (a full queue drops the message and
    /// counts it) and ignores transitions whose cause is [`Cause::Fleet`](crate::Cause::Fleet),
    /// so that no instance echoes what it heard.
    pub fn watch(&self, registry: Registry) -> Registry {
        registry.mark_watched(&self.instance);
        let tx = self.tx.clone();
        let counters = self.counters.clone();
        registry.on_transition(move |name: &str, t: &Transition| {
            if let Some(kind) = message::outgoing(t) {
                let out = Outgoing {
                    name: name.into(),
                    generation: t.generation,
                    kind,
                    cause: t.cause,
                };
                if tx.try_send(out).is_err() {
                    Counters::add(&counters.publish_dropped, 1);
                }
            }
        })
    }

    /// Starts the flusher, the publisher and the subscriber on the current tokio runtime, for
    /// the breakers of `registry` (the one [`watch`](Fleet::watch) returned). Returns at once:
    /// Redis need not be up.
    ///
    /// # Errors
    /// [`FleetError::NoRuntime`] outside a tokio runtime; [`FleetError::Client`] if the Redis
    /// client refuses its settings; [`FleetError::Registry`] for a registry that another
    /// link serves or that this link's [`watch`](Fleet::watch) did not return.
    pub fn start(self, registry: Arc<Registry>) -> Result<FleetLink, FleetError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| FleetError::NoRuntime)?;
        if registry.watched_by() != Some(self.instance.as_str()) {
            return Err(FleetError::Registry(
                "start() needs the registry that this link's watch() returned, and a registry \
                 serves one link (a second link would publish nothing)",
            ));
        }
        let _entered = runtime.enter();
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.options.command_timeout))
            .set_response_timeout(Some(self.options.command_timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(self.options.reconnect_max);
        let manager =
            redis::aio::ConnectionManager::new_lazy_with_config(self.client.clone(), config)
                .map_err(|e| FleetError::Client(Box::new(e)))?;
        // The subscription speaks RESP3, whose pushes reach a handler as they are read (see
        // the subscriber); the command connection keeps the client's protocol.
        let info = self.client.get_connection_info().clone();
        let resp3 = info
            .redis_settings()
            .clone()
            .set_protocol(redis::ProtocolVersion::RESP3);
        let subscription = redis::Client::open(info.set_redis_settings(resp3))
            .map_err(|e| FleetError::Client(Box::new(e)))?;
        let counters = self.counters.clone();
        if !registry.attach_link(move || counters.status().up()) {
            return Err(FleetError::Registry(
                "this registry already has a fleet link",
            ));
        }
        let shared = Arc::new(Shared::new(
            self.options,
            self.instance,
            registry,
            self.counters,
        ));
        let tasks = vec![
            runtime.spawn(flusher::run(shared.clone(), manager.clone())),
            runtime.spawn(publisher::run(shared.clone(), manager, self.rx)),
            runtime.spawn(subscriber::run(shared.clone(), subscription)),
        ];
        Ok(FleetLink { shared, tasks })
    }
}

/// What the link's tasks share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) options: FleetOptions,
    pub(crate) instance: String,
    pub(crate) registry: Arc<Registry>,
    pub(crate) counters: Arc<Counters>,
    /// The keys that sign and check messages, if any.
    pub(crate) keys: Option<signing::Keys>,
    /// The fleet's clock: set by the flusher at each flush, read to sign and check messages.
    /// A mutex taken once per flush and once per message sent or received: off the hot path.
    pub(crate) clock: Mutex<FleetClock>, // off the hot path: the link's tasks only
}

impl Shared {
    pub(crate) fn new(
        options: FleetOptions,
        instance: String,
        registry: Arc<Registry>,
        counters: Arc<Counters>,
    ) -> Shared {
        let keys = options.signing_key.clone().map(|signing| signing::Keys {
            signing,
            also_accepted: options.accepted_key.clone(),
            replay_window: options.replay_window,
        });
        Shared {
            options,
            instance,
            registry,
            counters,
            keys,
            clock: Mutex::new(FleetClock::default()), // off the hot path
        }
    }

    /// The fleet's time now, in ms since the UNIX epoch: Redis's clock as the last flush read
    /// it, or the local wall clock before any flush got a reply.
    pub(crate) fn fleet_ms(&self) -> u64 {
        // A poisoned lock still holds a valid clock (one `Copy` value, written whole).
        let clock = *self.clock.lock().unwrap_or_else(|e| e.into_inner());
        clock.now_ms(Instant::now()).unwrap_or_else(wall_ms)
    }
}

/// The longest instance name: the id in messages is the name, `.` and 8 hex digits, at most
/// 64 bytes.
const MAX_INSTANCE_NAME: usize = 55;

/// 64 random bits from the process id, the time and a randomly seeded hasher.
fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(std::process::id());
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// Milliseconds since the UNIX epoch by this instance's wall clock (0 if it is set before
/// the epoch): the fleet's time until Redis's clock is first read.
pub(crate) fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The backoff before reconnection attempt `failures` (≥ 1): 50 ms doubling up to `max`, a
/// [`Backoff`](crate::Backoff) without jitter.
pub(crate) fn backoff(failures: u32, max: Duration) -> Duration {
    crate::Backoff::exponential(Duration::from_millis(50), 2.0, max)
        .without_jitter()
        .duration(failures)
}

#[cfg(test)]
mod tests;
