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

mod fleet_clock;
mod flusher;
mod message;
mod metrics;
mod publisher;
mod quorum;
mod rule;
mod settled;
mod signing;
mod stats;
mod subscriber;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex}; // Mutex: the fleet clock, off the hot path
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::registry::Registry;
use crate::transition::Transition;

pub use self::metrics::FleetStatus;
pub use self::quorum::Quorum;
pub use self::rule::FleetRule;

use self::fleet_clock::FleetClock;
use self::metrics::Counters;
use self::publisher::Outgoing;
pub(crate) use self::rule::Counts;
pub(crate) use self::stats::Observed;

/// How an instance joins its fleet: where Redis is, what to share, and the fleet rules.
///
/// Fleet rules live here, keyed by breaker name with an optional default, not in
/// [`Config`](crate::Config): they depend on the deployment (how many instances share the
/// window, so what `minimum_calls` means), not on one breaker's behaviour; a `Config` stays
/// the same with or without the `redis` feature; and every instance of the fleet should run
/// the same rules, which is easiest from one place.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use hotbreaker::fleet::{FleetOptions, FleetRule};
///
/// let options = FleetOptions::new("redis://10.0.0.5:6379", "checkout")
///     .flush_interval(Duration::from_millis(100))
///     .rule("payments", FleetRule::failure_rate(0.5).minimum_calls(200));
/// # let _ = options;
/// ```
#[derive(Clone, Debug)]
pub struct FleetOptions {
    url: String,
    prefix: String,
    instance_id: Option<String>,
    flush_interval: Duration,
    command_timeout: Duration,
    reconnect_max: Duration,
    queue_capacity: usize,
    publish_capacity: usize,
    quorum: Quorum,
    signing_key: Option<signing::Key>,
    accepted_key: Option<signing::Key>,
    replay_window: Duration,
    tls: Tls,
    default_rule: Option<FleetRule>,
    rules: HashMap<String, FleetRule>,
}

/// Certificates for a `rediss://` link beyond the system's roots.
#[derive(Clone, Default)]
struct Tls {
    /// A CA (PEM) to trust instead of the system's roots.
    root: Option<Vec<u8>>,
    /// A client certificate and its key (PEM), for servers that check clients.
    client: Option<(Vec<u8>, Vec<u8>)>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Certificates are public; the client key is not shown.
        f.debug_struct("Tls")
            .field("root", &self.root.as_ref().map(|r| r.len()))
            .field("client", &self.client.is_some())
            .finish()
    }
}

impl FleetOptions {
    /// Options for the Redis server at `url` (`redis://host:port/db`) and the fleet `prefix`,
    /// with the defaults: a random instance id, a flush every 100 ms, a 500 ms command timeout,
    /// reconnection backoff up to 2 s, 4 096 pending deltas, 1 024 pending messages, a peer's
    /// trip applied once a majority of the live instances agree ([`Quorum::Majority`]), and
    /// no fleet rule (trips still propagate; window statistics are shared only for breakers
    /// with a rule).
    ///
    /// The prefix names the fleet: the prefix of every key and of the channel
    /// (`{prefix}:events`), and the set of instances a [`Quorum`] counts. There is no default:
    /// two services that shared one would trip each other's breakers of the same name (two
    /// `db`s). Use the service's name (`checkout`), and a further part for environments that
    /// share a Redis (`checkout-staging`). No `{`, `}`, `|` or whitespace; checked by
    /// [`Fleet::new`].
    pub fn new(url: impl Into<String>, prefix: impl Into<String>) -> FleetOptions {
        FleetOptions {
            url: url.into(),
            prefix: prefix.into(),
            instance_id: None,
            flush_interval: Duration::from_millis(100),
            command_timeout: Duration::from_millis(500),
            reconnect_max: Duration::from_secs(2),
            queue_capacity: 4_096,
            publish_capacity: 1_024,
            quorum: Quorum::Majority,
            signing_key: None,
            accepted_key: None,
            replay_window: Duration::from_secs(10),
            tls: Tls::default(),
            default_rule: None,
            rules: HashMap::new(),
        }
    }

    /// This instance's name (1 to 55 of `A-Z a-z 0-9 _ . -`), such as a pod's name; random
    /// by default. Messages and the set of live instances carry it with a suffix drawn at each
    /// start (`web-1.3fa9c2d1`, see [`Fleet::instance_id`]): a restarted instance, whose
    /// breakers' generations start again at 0, is a new sender to its peers, and two instances
    /// given the same name by mistake still hear each other. A [`Quorum`] counts instances by
    /// name: the lives of one instance that restarts in a loop are one voice.
    #[must_use]
    pub fn instance_id(mut self, id: impl Into<String>) -> FleetOptions {
        self.instance_id = Some(id.into());
        self
    }

    /// How often the flusher writes deltas and reads the fleet's totals (at least 1 ms).
    #[must_use]
    pub fn flush_interval(mut self, interval: Duration) -> FleetOptions {
        self.flush_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// How long one Redis command or pipeline may take before it counts as failed.
    #[must_use]
    pub fn command_timeout(mut self, timeout: Duration) -> FleetOptions {
        self.command_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// The longest wait between reconnection attempts (the wait doubles from 50 ms up to it).
    #[must_use]
    pub fn reconnect_max(mut self, max: Duration) -> FleetOptions {
        self.reconnect_max = max.max(Duration::from_millis(50));
        self
    }

    /// How many (breaker, bucket) deltas may wait for Redis between flushes; more are dropped
    /// and counted. A flush always sends every delta it collected (one per breaker with a rule
    /// and calls since the last flush), however many.
    #[must_use]
    pub fn queue_capacity(mut self, capacity: usize) -> FleetOptions {
        self.queue_capacity = capacity.max(1);
        self
    }

    /// How many transitions may wait for the publisher; more are dropped and counted (the
    /// listener never blocks).
    #[must_use]
    pub fn publish_capacity(mut self, capacity: usize) -> FleetOptions {
        self.publish_capacity = capacity.max(1);
        self
    }

    /// How many instances must have tripped a breaker before their trips open it on this
    /// instance ([`Quorum::Majority`] by default): a peer's trip is evidence, not a command.
    #[must_use]
    pub fn quorum(mut self, quorum: Quorum) -> FleetOptions {
        self.quorum = quorum;
        self
    }

    /// Signs every message this instance sends with `key` (HMAC-SHA256), and accepts only
    /// messages signed with it (or with the [`accept_key`](FleetOptions::accept_key)) and
    /// sent within the [`replay_window`](FleetOptions::replay_window): without the key,
    /// publishing on the channel moves no breaker. At least 32 bytes, shared by every instance
    /// of the fleet (for instance 32 random bytes, or the text of `openssl rand -hex 32`);
    /// checked by [`Fleet::new`]. The key never appears in `Debug` output.
    ///
    /// An instance without a key still reads signed messages (it cannot check them), so a
    /// fleet can turn signing on one instance at a time; the instances with the key ignore the
    /// unsigned messages of those without it meanwhile.
    #[must_use]
    pub fn signing_key(mut self, key: impl Into<Vec<u8>>) -> FleetOptions {
        self.signing_key = Some(signing::Key::new(key));
        self
    }

    /// One more key whose signatures are accepted, for rotation without a gap: give every
    /// instance the new key here, then make it the [`signing_key`](FleetOptions::signing_key)
    /// with the old one here, then drop the old one. Needs a signing key.
    #[must_use]
    pub fn accept_key(mut self, key: impl Into<Vec<u8>>) -> FleetOptions {
        self.accepted_key = Some(signing::Key::new(key));
        self
    }

    /// The signing key from the environment variable `var`, and the key to accept as well from
    /// `{var}_PREVIOUS` when that is set (see [`signing_key`](FleetOptions::signing_key) and
    /// [`accept_key`](FleetOptions::accept_key)). The variables hold the keys as text.
    ///
    /// # Errors
    /// [`FleetError::Key`] when `var` is unset or either variable is not valid UTF-8.
    pub fn signing_key_from_env(self, var: &str) -> Result<FleetOptions, FleetError> {
        let read = |name: &str| match std::env::var(name) {
            Ok(v) => Ok(Some(v)),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(FleetError::Key(format!("{name} is not valid UTF-8")))
            }
        };
        let key = read(var)?.ok_or_else(|| FleetError::Key(format!("{var} is not set")))?;
        let mut options = self.signing_key(key);
        if let Some(previous) = read(&format!("{var}_PREVIOUS"))? {
            options = options.accept_key(previous);
        }
        Ok(options)
    }

    /// How far from the receiver's time a signed message may have been sent and still be
    /// accepted (10 s by default, at least 1 s): a message recorded off the channel cannot be
    /// replayed later than this, and within it a replay is a duplicate that is dropped. Both
    /// times are the fleet's clock (Redis's `TIME`), so instances' wall clocks need not agree.
    #[must_use]
    pub fn replay_window(mut self, window: Duration) -> FleetOptions {
        self.replay_window = window.max(Duration::from_secs(1));
        self
    }

    /// For a `rediss://` URL: the CA certificate (PEM) that signed the server's certificate,
    /// trusted instead of the system's roots (for a Redis with a private CA). Feature
    /// `redis-tls`.
    #[cfg(feature = "redis-tls")]
    #[must_use]
    pub fn tls_root_certificate(mut self, pem: impl Into<Vec<u8>>) -> FleetOptions {
        self.tls.root = Some(pem.into());
        self
    }

    /// For a `rediss://` URL whose server checks its clients (`tls-auth-clients yes`): this
    /// instance's certificate and private key (PEM). Feature `redis-tls`.
    #[cfg(feature = "redis-tls")]
    #[must_use]
    pub fn tls_client_certificate(
        mut self,
        certificate_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> FleetOptions {
        self.tls.client = Some((certificate_pem.into(), key_pem.into()));
        self
    }

    /// The fleet rule of every breaker without one of its own.
    #[must_use]
    pub fn default_rule(mut self, rule: FleetRule) -> FleetOptions {
        self.default_rule = Some(rule);
        self
    }

    /// The fleet rule of the breaker named `name`.
    #[must_use]
    pub fn rule(mut self, name: impl Into<String>, rule: FleetRule) -> FleetOptions {
        self.rules.insert(name.into(), rule);
        self
    }

    pub(crate) fn rule_for(&self, name: &str) -> Option<FleetRule> {
        self.rules.get(name).copied().or(self.default_rule)
    }

    fn channel(&self) -> String {
        format!("{}:events", self.prefix)
    }

    /// The sorted set of live instances: each flush adds this one, scored by the fleet's time.
    fn members_key(&self) -> String {
        format!("{}:instances", self.prefix)
    }

    /// How long an instance counts as live after its last flush: five flush intervals, and
    /// at least 2 s (a flush that waits out a slow Redis must not drop it from the count).
    fn liveness_ms(&self) -> u64 {
        let five = self.flush_interval.saturating_mul(5).as_millis();
        u64::try_from(five).unwrap_or(u64::MAX).max(2_000)
    }
}

/// Why a fleet link could not be set up. Redis being unreachable is not one of them: the link
/// starts anyway and connects when Redis answers.
#[derive(Debug)]
#[non_exhaustive]
pub enum FleetError {
    /// The Redis URL does not parse (the Redis client's error, boxed so that its type is not
    /// part of this crate's API).
    Url(Box<dyn std::error::Error + Send + Sync>),
    /// The Redis client could not be set up on this runtime.
    Client(Box<dyn std::error::Error + Send + Sync>),
    /// The key prefix is empty or holds `{`, `}`, `|` or whitespace.
    Prefix(String),
    /// The instance name is not 1 to 55 of `A-Z a-z 0-9 _ . -`.
    InstanceId(String),
    /// [`Fleet::start`] was given a registry that another fleet link already serves, or one
    /// that this link's [`watch`](Fleet::watch) did not return: its transitions would reach
    /// the other link's publisher, or none.
    Registry(&'static str),
    /// [`Fleet::start`] was called outside a tokio runtime.
    NoRuntime,
    /// A `rediss://` URL without the `redis-tls` feature, certificates for a URL that is not
    /// `rediss://`, or certificates that do not parse.
    Tls(String),
    /// A signing key shorter than 32 bytes, an accepted key without a signing key, or a key
    /// missing from the environment.
    Key(String),
}

impl fmt::Display for FleetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FleetError::Url(e) => write!(f, "fleet: invalid Redis URL: {e}"),
            FleetError::Client(e) => write!(f, "fleet: the Redis client could not be set up: {e}"),
            FleetError::Prefix(p) => write!(
                f,
                "fleet: invalid key prefix {p:?}: expected a non-empty prefix without braces, `|` or whitespace"
            ),
            FleetError::InstanceId(id) => write!(
                f,
                "fleet: invalid instance name {id:?}: expected 1 to 55 of A-Z a-z 0-9 _ . -"
            ),
            FleetError::Registry(why) => write!(f, "fleet: {why}"),
            FleetError::NoRuntime => f.write_str("fleet: start() needs a tokio runtime"),
            FleetError::Key(why) => write!(f, "fleet: signing key: {why}"),
            FleetError::Tls(why) => write!(f, "fleet: TLS: {why}"),
        }
    }
}

impl std::error::Error for FleetError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            FleetError::Url(e) | FleetError::Client(e) => Some(&**e),
            _ => None,
        }
    }
}

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

/// A running fleet link. Dropping it stops its tasks (breakers keep working on local rules).
pub struct FleetLink {
    shared: Arc<Shared>,
    tasks: Vec<JoinHandle<()>>,
}

impl fmt::Debug for FleetLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FleetLink")
            .field("instance", &self.shared.instance)
            .field("status", &self.status())
            .finish()
    }
}

impl FleetLink {
    /// Whether the link is up and what it has done so far.
    pub fn status(&self) -> FleetStatus {
        self.shared.counters.status()
    }

    /// This instance's id, as its messages carry it.
    pub fn instance_id(&self) -> &str {
        &self.shared.instance
    }

    /// Stops the link's tasks now (as dropping it does).
    pub fn stop(self) {}
}

impl Drop for FleetLink {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        Counters::flag(&self.shared.counters.connected, false);
        Counters::flag(&self.shared.counters.subscribed, false);
    }
}

/// The Redis client for the options' URL: over TLS for `rediss://` (feature `redis-tls`),
/// with the options' certificates if any.
fn open_client(options: &FleetOptions) -> Result<redis::Client, FleetError> {
    let url = options.url.as_str();
    let tls_url = url
        .get(..9)
        .is_some_and(|s| s.eq_ignore_ascii_case("rediss://"));
    let certificates = options.tls.root.is_some() || options.tls.client.is_some();
    if certificates && !tls_url {
        return Err(FleetError::Tls(
            "TLS certificates were given for a URL that is not rediss://".to_owned(),
        ));
    }
    if tls_url && !cfg!(feature = "redis-tls") {
        return Err(FleetError::Tls(
            "a rediss:// URL needs hotbreaker's `redis-tls` feature".to_owned(),
        ));
    }
    #[cfg(feature = "redis-tls")]
    if tls_url {
        // rustls needs a process-wide crypto provider: install aws-lc-rs's unless the process
        // already chose one (then that one is used, and this does nothing).
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        if certificates {
            let tls = redis::TlsCertificates {
                client_tls: options.tls.client.clone().map(|(client_cert, client_key)| {
                    redis::ClientTlsConfig {
                        client_cert,
                        client_key,
                    }
                }),
                root_cert: options.tls.root.clone(),
            };
            return redis::Client::build_with_tls(url, tls)
                .map_err(|e| FleetError::Tls(format!("{e}")));
        }
    }
    redis::Client::open(url).map_err(|e| FleetError::Url(Box::new(e)))
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
