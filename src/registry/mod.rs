//! A registry of named breakers: get-or-create with per-name configuration, lock-free lookups,
//! snapshots, health, and (features) metrics export and configuration files.
//!
//! The per-call path is the `Arc<Breaker>` handle you keep, never a lookup. Lookups by name
//! are still lock-free: the breakers live in a [`papaya::HashMap`], whose reads take no lock
//! and write nothing shared. Creating a breaker inserts one entry (O(1)); creating and
//! configuring take one writer lock between themselves, which lookups and callers never touch.
//! Why papaya and not another map: `docs/internals.md`, "Dependencies".

mod edit_distance;
#[cfg(feature = "serde")]
mod env;
pub(crate) mod events;
#[cfg(feature = "metrics")]
pub(crate) mod export;
#[cfg(feature = "serde")]
mod files;
pub(crate) mod health;
#[cfg(all(feature = "http", feature = "tokio"))]
mod layer;
mod readiness;
mod transition_counts;
mod unknown_breaker;

pub use events::{EVENTS_KEPT, TransitionEvent};
#[cfg(feature = "metrics")]
pub use export::MetricsPublisher;
pub use health::{BreakerHealth, Health};
pub use unknown_breaker::UnknownBreaker;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};

use crate::breaker::Breaker;
use crate::clock::TimeSource;
use crate::config::Config;
use crate::error::ConfigError;
use crate::rules::{Listener, Rules};
use crate::state::State;
use crate::transition::Transition;
use events::EventRing;
pub(crate) use transition_counts::TransitionCounts;

#[derive(Clone)]
pub(crate) struct Entry {
    pub(crate) breaker: Arc<Breaker>,
    pub(crate) transitions: Arc<TransitionCounts>,
}

/// A fast, randomly seeded string hash (foldhash, hashbrown's default): a lookup hashes the name
/// in a few nanoseconds, where SipHash takes about twenty.
type Hasher = foldhash::fast::RandomState;
pub(crate) type Map = papaya::HashMap<Arc<str>, Entry, Hasher>;
type NameListener = Arc<dyn Fn(&str, &Transition) + Send + Sync>;

/// What creating a breaker reads: the validated per-name configurations and the default.
/// Guarded by the writer lock.
struct Settings {
    configs: HashMap<Box<str>, Arc<Rules>>,
    default: Arc<Rules>,
    /// Whether [`Registry::breaker`] refuses names without a configuration.
    strict: bool,
}

impl Settings {
    /// Whether the breaker `name` is critical: its own configuration says so, or it has none
    /// and the default does.
    fn critical(&self, name: &str) -> bool {
        let rules = self.configs.get(name).unwrap_or(&self.default);
        rules.settings.critical == Some(true)
    }

    /// Whether `name` has a configuration of its own.
    fn configured(&self, name: &str) -> bool {
        self.configs.contains_key(name)
    }
}

/// Named breakers sharing a default configuration, with per-name overrides.
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use hotbreaker::{Config, Registry, State};
///
/// let registry = Registry::new(Config { consecutive_failures: Some(3), ..Config::default() })?;
/// let critical = Some(true); // `ready()` reads it
/// registry.set_config("payments", Config { consecutive_failures: Some(1), critical, ..Config::default() })?;
///
/// // Keep the handle: calls go through it, never through a lookup.
/// let payments: Arc<_> = registry.get_or_create("payments");
/// payments.try_acquire().unwrap().failure();
/// assert_eq!(payments.state(), State::Open);
/// assert!(Arc::ptr_eq(&payments, &registry.get("payments").unwrap()));
///
/// let health = registry.health();
/// assert!(!health.ready && !registry.ready());
/// # Ok::<(), hotbreaker::ConfigError>(())
/// ```
pub struct Registry {
    entries: Map,
    /// The writer lock: serialises creating breakers and setting configurations, so that a
    /// breaker is created once per name and with the configuration set last. Off the hot path:
    /// callers use their `Arc<Breaker>`, lookups read `entries` without it.
    settings: Mutex<Settings>,
    listeners: Vec<NameListener>,
    /// Cloned into each new breaker: making a real quanta clock asks the CPU about its counter,
    /// which costs microseconds in a virtual machine.
    clock: quanta::Clock,
    /// Whether the fleet link started on this registry is up, for `health` (set once).
    link: OnceLock<LinkProbe>,
    /// The id of the fleet link whose listener watches this registry (set once).
    watched_by: OnceLock<Box<str>>,
    /// The latest transitions of every breaker, for [`Registry::events`].
    events: Arc<EventRing>,
}

type LinkProbe = Box<dyn Fn() -> bool + Send + Sync>;

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("breakers", &self.entries.len())
            .finish_non_exhaustive()
    }
}

impl Default for Registry {
    /// A registry whose breakers take the [`Builder`](crate::Builder)'s defaults.
    fn default() -> Self {
        Registry::new(Config::default()).expect("the defaults are valid")
    }
}

/// A breaker that outlives its registry (its caller still holds its `Arc`) keeps its settings
/// packed, not a whole configuration that only it holds any more (see `kept_config.rs`).
impl Drop for Registry {
    fn drop(&mut self) {
        {
            let settings = self
                .settings
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner);
            settings.configs.clear();
            // The default's `Arc` cannot be emptied, only replaced: by the built-in defaults,
            // whose configuration no breaker holds.
            if let Ok(built_in) = Rules::validate(&Config::default(), None) {
                settings.default = Arc::new(built_in);
            }
        }
        for entry in self.entries.pin().values() {
            entry.breaker.settle_settings();
        }
    }
}

impl Registry {
    /// A registry whose breakers use `default` unless [`set_config`](Registry::set_config) gave
    /// their name one.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the invalid field of `default`.
    pub fn new(default: Config) -> Result<Registry, ConfigError> {
        let default = Rules::validate(&default, None)?;
        Ok(Registry {
            entries: Map::with_hasher(Hasher::default()),
            settings: Mutex::new(Settings {
                configs: HashMap::new(),
                default: Arc::new(default),
                strict: false,
            }),
            listeners: Vec::new(),
            clock: quanta::Clock::new(),
            link: OnceLock::new(),
            watched_by: OnceLock::new(),
            events: Arc::new(EventRing::default()),
        })
    }

    /// Calls `listener` with the breaker's name after every transition of every breaker this
    /// registry creates from now on (a panic in it is caught, as for any listener).
    #[must_use]
    pub fn on_transition(
        mut self,
        listener: impl Fn(&str, &Transition) + Send + Sync + 'static,
    ) -> Self {
        self.listeners.push(Arc::new(listener));
        self
    }

    /// Strict mode: [`breaker`](Registry::breaker) refuses a name that has no configuration
    /// of its own (from [`set_config`](Registry::set_config) or a file's `[breakers.NAME]`)
    /// and no breaker yet, so that a typo fails at start-up instead of guarding its calls with
    /// a default breaker. A registry file sets it with `strict = true` at its top level.
    #[must_use]
    pub fn strict(self) -> Self {
        self.set_strict(true);
        self
    }

    pub(crate) fn set_strict(&self, strict: bool) {
        self.writer().strict = strict;
    }

    /// The clock for breakers created from now on; [`Clock::mock`](crate::clock::Clock::mock) in tests.
    #[must_use]
    pub fn clock(mut self, clock: crate::clock::Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The writer lock. A poisoned lock only means a panic elsewhere while it was held; the
    /// settings it guards are always whole.
    fn writer(&self) -> MutexGuard<'_, Settings> {
        self.settings.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The breaker named `name`, if it exists. Lock-free.
    pub fn get(&self, name: &str) -> Option<Arc<Breaker>> {
        self.entries.pin().get(name).map(|e| e.breaker.clone())
    }

    /// The breaker named `name`, created with its configuration if it does not exist yet: the
    /// lookup a service makes at start-up for each dependency. In [strict](Registry::strict)
    /// mode a name with no configuration of its own and no breaker is an error, with the
    /// closest known name when it looks like a typo; otherwise such a name gets a breaker with
    /// the default configuration, as [`get_or_create`](Registry::get_or_create) does.
    /// Lock-free when the breaker exists.
    ///
    /// # Errors
    /// [`UnknownBreaker`] in strict mode, as above.
    ///
    /// # Examples
    /// ```
    /// use hotbreaker::{Config, Registry};
    ///
    /// let registry = Registry::default().strict();
    /// registry.set_config("inventory", Config { consecutive_failures: Some(3), ..Config::default() })?;
    /// assert!(registry.breaker("inventory").is_ok());
    /// let typo = registry.breaker("inventroy").unwrap_err();
    /// assert_eq!(typo.suggestion(), Some("inventory"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn breaker(&self, name: &str) -> Result<Arc<Breaker>, UnknownBreaker> {
        if let Some(breaker) = self.get(name) {
            return Ok(breaker);
        }
        let settings = self.writer();
        if settings.strict && !settings.configured(name) {
            let entries = self.entries.pin();
            if let Some(e) = entries.get(name) {
                return Ok(e.breaker.clone()); // created by another caller meanwhile
            }
            let configured = configured_names(&settings);
            drop(settings); // suggestions are computed without the lock
            return Err(self.unknown(&configured, name));
        }
        Ok(self.create(settings, name))
    }

    /// The error for `name`, suggesting among `configured` and the existing names.
    fn unknown(&self, configured: &[Box<str>], name: &str) -> UnknownBreaker {
        let entries = self.entries.pin();
        let existing = entries.keys().map(|k| &**k);
        UnknownBreaker::new(name, configured.iter().map(|k| &**k).chain(existing))
    }

    /// The breaker named `name`, created with its configuration (or the default) if it does not
    /// exist yet, whatever the mode: for names made at run time (one per host, say). Lock-free
    /// when it exists; creating one is O(1). A service's fixed dependencies are better looked
    /// up with [`breaker`](Registry::breaker), which a strict registry checks.
    pub fn get_or_create(&self, name: &str) -> Arc<Breaker> {
        if let Some(breaker) = self.get(name) {
            return breaker;
        }
        self.create(self.writer(), name)
    }

    /// Creates `name` under the writer lock `settings`, unless another writer just did.
    fn create(&self, settings: MutexGuard<'_, Settings>, name: &str) -> Arc<Breaker> {
        let entries = self.entries.pin();
        if let Some(e) = entries.get(name) {
            return e.breaker.clone(); // created by another writer meanwhile
        }
        let rules = settings
            .configs
            .get(name)
            .unwrap_or(&settings.default)
            .as_ref()
            .clone();
        let (name, entry) = self.build(name, rules);
        let breaker = entry.breaker.clone();
        entries.insert(name, entry);
        breaker
    }

    /// The breaker named `name` (created as [`get_or_create`](Registry::get_or_create) would),
    /// as a `&'static Breaker` that lives as long as the process, for the services and layers
    /// that hold it for theirs: a `BreakerLayer` (feature `tower`) over it, or a
    /// future that borrows it, reaches the breaker without an `Arc` clone per call, and so
    /// without a write per call to the line of the `Arc`'s count that every calling core
    /// shares. The breaker is the registry's (its state, configuration and reports are the
    /// same); it is never freed, even if the registry is dropped. Call it once per name at
    /// start-up, not per call: each call keeps a handle of a few bytes alive.
    ///
    /// # Examples
    /// ```
    /// use hotbreaker::{Breaker, Registry, State};
    ///
    /// let registry = Registry::default();
    /// let payments: &'static Breaker = registry.leak("payments");
    /// payments.isolate();
    /// assert_eq!(registry.get("payments").unwrap().state(), State::Isolated);
    /// ```
    pub fn leak(&self, name: &str) -> &'static Breaker {
        let handle: &'static Arc<Breaker> = Box::leak(Box::new(self.get_or_create(name)));
        handle
    }

    fn build(&self, name: &str, rules: Rules) -> (Arc<str>, Entry) {
        let transitions = Arc::new(TransitionCounts::default());
        let name: Arc<str> = Arc::from(name);
        let mut listeners: Vec<Listener> = Vec::with_capacity(1 + self.listeners.len());
        {
            let (transitions, name) = (transitions.clone(), name.clone());
            let events = Arc::clone(&self.events);
            listeners.push(Box::new(move |t: &Transition| {
                transitions.add(t);
                events.push(&name, t);
                #[cfg(feature = "tracing")]
                crate::trace::transition(&name, t);
                #[cfg(not(feature = "tracing"))]
                let _ = &name;
            }));
        }
        for listener in &self.listeners {
            let (listener, name) = (listener.clone(), name.clone());
            listeners.push(Box::new(move |t: &Transition| listener(&name, t)));
        }
        let clock = TimeSource::new(self.clock.clone());
        let entry = Entry {
            breaker: Arc::new(Breaker::new(rules, listeners.into_boxed_slice(), clock)),
            transitions,
        };
        (name, entry)
    }

    /// Sets the configuration of the breaker named `name`: used when it is created, and applied
    /// at once with [`Breaker::reconfigure`] if it exists.
    ///
    /// # Errors
    /// A [`ConfigError`] naming `name.field` if `config` is invalid, or if it changes an existing
    /// breaker's window shape (see [`Breaker::reconfigure`]); nothing changes then.
    pub fn set_config(&self, name: &str, config: Config) -> Result<(), ConfigError> {
        let rules = Rules::validate(&config, None).map_err(|e| e.within(name))?;
        self.set_validated(name, rules).map_err(|e| e.within(name))
    }

    /// [`set_config`](Registry::set_config) with `rules` already validated (their settings, the
    /// configuration, are shared with the breaker); errors are not yet prefixed with the name.
    pub(crate) fn set_validated(&self, name: &str, rules: Rules) -> Result<(), ConfigError> {
        let mut settings = self.writer();
        if let Some(breaker) = self.get(name) {
            breaker.reconfigure_shared(Arc::clone(&rules.settings))?;
        }
        settings.configs.insert(name.into(), Arc::new(rules));
        Ok(())
    }

    /// Sets the default configuration for breakers created from now on, and reconfigures every
    /// existing breaker that has no configuration of its own.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the field (prefixed with the breaker's name when an existing
    /// breaker refused it; the breakers before it in name order have taken it).
    pub fn set_default(&self, config: Config) -> Result<(), ConfigError> {
        let rules = Rules::validate(&config, None)?;
        self.set_default_validated(rules)
    }

    /// [`set_default`](Registry::set_default) with `rules` already validated (their settings are
    /// shared with the breakers that take them).
    pub(crate) fn set_default_validated(&self, rules: Rules) -> Result<(), ConfigError> {
        let mut settings = self.writer();
        for (name, breaker) in self.breakers() {
            if !settings.configs.contains_key(&*name) {
                breaker
                    .reconfigure_shared(Arc::clone(&rules.settings))
                    .map_err(|e| e.within(&name))?;
            }
        }
        settings.default = Arc::new(rules);
        Ok(())
    }

    /// Every breaker with its name, sorted by name: a snapshot (breakers created afterwards are
    /// not in it).
    pub fn breakers(&self) -> Vec<(Arc<str>, Arc<Breaker>)> {
        let mut all: Vec<_> = self
            .entries
            .pin()
            .iter()
            .map(|(name, e)| (name.clone(), e.breaker.clone()))
            .collect();
        all.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// The transitions of the breaker named `name` so far, as `(from, to, count)`, or `None` if
    /// there is no such breaker.
    pub fn transitions(&self, name: &str) -> Option<Vec<(State, State, u64)>> {
        let entries = self.entries.pin();
        Some(entries.get(name)?.transitions.nonzero().collect())
    }

    #[cfg_attr(not(any(feature = "metrics", feature = "redis")), allow(dead_code))]
    pub(crate) fn entries(&self) -> &Map {
        &self.entries
    }

    /// The latest transitions of this registry's breakers, oldest first: at most
    /// [`EVENTS_KEPT`], with the wall-clock time of each.
    ///
    /// # Examples
    /// ```
    /// use hotbreaker::{Registry, State};
    ///
    /// let registry = Registry::default();
    /// registry.get_or_create("db").isolate();
    /// let events = registry.events();
    /// assert_eq!((&*events[0].name, events[0].to), ("db", State::Isolated));
    /// assert_eq!(events[0].cause.to_string(), "manual");
    /// ```
    pub fn events(&self) -> Vec<TransitionEvent> {
        self.events.snapshot()
    }

    /// How many breakers there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the breakers and the registry's map hold on the heap: each breaker's struct and
    /// [`heap_bytes`](Breaker::heap_bytes), its transition counts, its name, its map entry, and
    /// the map's table (estimated: papaya does not report its size; we count two slots of a
    /// pointer and a metadata byte per breaker, rounded up to a power of two, as its growth
    /// rule keeps at most half the slots full). Listener closures and the allocator's own
    /// cost are not counted: resident memory is higher (see
    /// [`Breaker::heap_bytes`](crate::Breaker::heap_bytes)).
    ///
    /// Feature `test-util`: for tests and benchmarks, outside the semver promise.
    #[cfg(any(test, feature = "test-util"))]
    pub fn heap_bytes(&self) -> usize {
        let entries = self.entries.pin();
        let per_entry: usize = entries
            .iter()
            .map(|(name, e)| {
                std::mem::size_of::<Breaker>()
                    + e.breaker.heap_bytes()
                    + std::mem::size_of::<TransitionCounts>()
                    + name.len()
                    + 4 * std::mem::size_of::<usize>() // two Arc headers
                    + std::mem::size_of::<(Arc<str>, Entry)>() // the map's entry
            })
            .sum();
        let slots = entries.len().saturating_mul(2).next_power_of_two();
        let table = slots * (std::mem::size_of::<usize>() + 1);
        per_entry + table
    }

    /// Records that the fleet link `id` watches this registry's transitions; the first to
    /// watch it keeps it.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn mark_watched(&self, id: &str) {
        let _ = self.watched_by.set(id.into());
    }

    /// The fleet link that watches this registry's transitions, if any.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn watched_by(&self) -> Option<&str> {
        self.watched_by.get().map(|id| &**id)
    }

    /// Lets `health` report the fleet link's state through `up`; the first link started on a
    /// registry is the one reported. Returns whether `up` was taken.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn attach_link(&self, up: impl Fn() -> bool + Send + Sync + 'static) -> bool {
        self.link.set(Box::new(up)).is_ok()
    }
}

/// The names with a configuration of their own, to suggest from once the lock is released.
fn configured_names(settings: &Settings) -> Vec<Box<str>> {
    settings.configs.keys().cloned().collect()
}

#[cfg(test)]
mod settle_tests {
    use super::*;

    #[test]
    fn a_breaker_that_outlives_its_registry_keeps_its_settings_packed() {
        let default = Config {
            consecutive_failures: Some(3),
            ..Config::default()
        };
        let own = Config {
            failure_rate: Some(0.25),
            ..Config::default()
        };
        let registry = Registry::new(default.clone()).unwrap();
        registry.set_config("own", own.clone()).unwrap();
        let (a, b, own_breaker) = (
            registry.get_or_create("a"),
            registry.get_or_create("b"),
            registry.get_or_create("own"),
        );
        let (a_before, own_before) = (a.heap_bytes(), own_breaker.heap_bytes());
        drop(registry);
        // `own` holds its configuration alone now: packed, a few words instead of a `Config`.
        let own_after = own_breaker.heap_bytes();
        assert!(own_after + 100 < own_before, "{own_after} {own_before}");
        assert_eq!(own_breaker.config(), own);
        // `a` and `b` still share the default: kept shared, each now holding half of it
        // instead of a third.
        assert!(a.heap_bytes() > a_before, "{} {a_before}", a.heap_bytes());
        assert_eq!((a.config(), b.config()), (default.clone(), default));
    }
}
