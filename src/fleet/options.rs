//! How an instance joins its fleet: [`FleetOptions`].

use super::*;

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
    pub(super) url: String,
    pub(super) prefix: String,
    pub(super) instance_id: Option<String>,
    pub(super) flush_interval: Duration,
    pub(super) command_timeout: Duration,
    pub(super) reconnect_max: Duration,
    pub(super) queue_capacity: usize,
    pub(super) publish_capacity: usize,
    pub(super) quorum: Quorum,
    pub(super) signing_key: Option<signing::Key>,
    pub(super) accepted_key: Option<signing::Key>,
    pub(super) replay_window: Duration,
    pub(super) tls: Tls,
    pub(super) default_rule: Option<FleetRule>,
    pub(super) rules: HashMap<String, FleetRule>,
}

/// Certificates for a `rediss://` link beyond the system's roots.
#[derive(Clone, Default)]
pub(super) struct Tls {
    /// A CA (PEM) to trust instead of the system's roots.
    pub(super) root: Option<Vec<u8>>,
    /// A client certificate and its key (PEM), for servers that check clients.
    pub(super) client: Option<(Vec<u8>, Vec<u8>)>,
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

    pub(super) fn channel(&self) -> String {
        format!("{}:events", self.prefix)
    }

    /// The sorted set of live instances: each flush adds this one, scored by the fleet's time.
    pub(super) fn members_key(&self) -> String {
        format!("{}:instances", self.prefix)
    }

    /// How long an instance counts as live after its last flush: five flush intervals, and
    /// at least 2 s (a flush that waits out a slow Redis must not drop it from the count).
    pub(super) fn liveness_ms(&self) -> u64 {
        let five = self.flush_interval.saturating_mul(5).as_millis();
        u64::try_from(five).unwrap_or(u64::MAX).max(2_000)
    }
}
