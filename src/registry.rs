//! A registry of named breakers: get-or-create with per-name configuration, lock-free lookups,
//! snapshots, health, and (features) metrics export and configuration files.
//!
//! The per-call path is the `Arc<Breaker>` handle you keep, never a lookup. Lookups by name
//! are still lock-free: the map sits behind an [`ArcSwap`], readers load it without a lock or a
//! wait, and writers (creating a breaker, setting a config) copy it, change the copy and swap it
//! in, one writer at a time under a mutex. Creating a breaker is O(breakers); lookups are one
//! hash probe.

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use crate::breaker::Breaker;
use crate::clock::Clock;
use crate::config::Config;
use crate::error::ConfigError;
use crate::health::{BreakerHealth, Health};
use crate::rules::{Listener, Rules};
use crate::state::State;
use crate::sync::Ordering;
use crate::transition::Transition;

const STATES: usize = 5;

/// Transitions of one breaker counted by `(from, to)`: the listener a registry gives each
/// breaker adds one here (a `Relaxed` increment on a transition, never on a call), and
/// [`Registry::publish_metrics`] reads them.
#[derive(Default)]
pub(crate) struct TransitionCounts([AtomicU64; STATES * STATES]);

impl TransitionCounts {
    fn add(&self, t: &Transition) {
        // Relaxed: a statistic, ordered with nothing.
        self.0[t.from as usize * STATES + t.to as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Every `(from, to, count)` with a count above zero.
    pub(crate) fn nonzero(&self) -> impl Iterator<Item = (State, State, u64)> + '_ {
        self.0.iter().enumerate().filter_map(|(i, n)| {
            // Relaxed: a statistic.
            let n = n.load(Ordering::Relaxed);
            (n > 0).then(|| {
                (
                    State::from_code((i / STATES) as u64),
                    State::from_code((i % STATES) as u64),
                    n,
                )
            })
        })
    }
}

#[derive(Clone)]
pub(crate) struct Entry {
    pub(crate) breaker: Arc<Breaker>,
    pub(crate) transitions: Arc<TransitionCounts>,
}

type Map = HashMap<Arc<str>, Entry>;
type NameListener = Arc<dyn Fn(&str, &Transition) + Send + Sync>;

/// Named breakers sharing a default configuration, with per-name overrides.
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use hotbreaker::{Config, Registry, State};
///
/// let registry = Registry::new(Config { consecutive_failures: Some(3), ..Config::default() })?;
/// registry.set_config("payments", Config { consecutive_failures: Some(1), ..Config::default() })?;
///
/// // Keep the handle: calls go through it, never through a lookup.
/// let payments: Arc<_> = registry.get_or_create("payments");
/// payments.try_acquire().unwrap().failure();
/// assert_eq!(payments.state(), State::Open);
/// assert!(Arc::ptr_eq(&payments, &registry.get("payments").unwrap()));
///
/// let health = registry.health(&["payments"]);
/// assert!(!health.ready);
/// # Ok::<(), hotbreaker::ConfigError>(())
/// ```
pub struct Registry {
    entries: ArcSwap<Map>,
    /// Validated per-name configurations, used when the name's breaker is created.
    configs: ArcSwap<HashMap<String, Arc<Rules>>>,
    default: ArcSwap<Rules>,
    listeners: Vec<NameListener>,
    clock: Option<quanta::Clock>,
    /// Serialises writers (creating breakers, setting configs). Off the hot path: callers use
    /// their `Arc<Breaker>`, lookups load `entries` without it.
    write: Mutex<()>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("breakers", &self.entries.load().len())
            .finish_non_exhaustive()
    }
}

impl Default for Registry {
    /// A registry whose breakers take the [`Builder`](crate::Builder)'s defaults.
    fn default() -> Self {
        Registry::new(Config::default()).expect("the defaults are valid")
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
            entries: ArcSwap::from_pointee(HashMap::new()),
            configs: ArcSwap::from_pointee(HashMap::new()),
            default: ArcSwap::from_pointee(default),
            listeners: Vec::new(),
            clock: None,
            write: Mutex::new(()),
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

    /// The clock for breakers created from now on; `quanta::Clock::mock()` in tests.
    #[must_use]
    pub fn clock(mut self, clock: quanta::Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The breaker named `name`, if it exists. Lock-free.
    pub fn get(&self, name: &str) -> Option<Arc<Breaker>> {
        self.entries.load().get(name).map(|e| e.breaker.clone())
    }

    /// The breaker named `name`, created with its configuration (or the default) if it does not
    /// exist yet. Lock-free when it exists.
    pub fn get_or_create(&self, name: &str) -> Arc<Breaker> {
        if let Some(breaker) = self.get(name) {
            return breaker;
        }
        let _writer = self.write.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(breaker) = self.get(name) {
            return breaker; // created by another writer meanwhile
        }
        let rules = self
            .configs
            .load()
            .get(name)
            .cloned()
            .unwrap_or_else(|| self.default.load_full());
        let entry = self.build(name, (*rules).clone());
        let breaker = entry.breaker.clone();
        let mut map = Map::clone(&self.entries.load());
        map.insert(Arc::from(name), entry);
        self.entries.store(Arc::new(map));
        breaker
    }

    fn build(&self, name: &str, rules: Rules) -> Entry {
        let transitions = Arc::new(TransitionCounts::default());
        let name: Arc<str> = Arc::from(name);
        let mut listeners: Vec<Listener> = Vec::with_capacity(1 + self.listeners.len());
        {
            let (transitions, name) = (transitions.clone(), name.clone());
            listeners.push(Box::new(move |t: &Transition| {
                transitions.add(t);
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
        let clock = Clock::new(self.clock.clone().unwrap_or_default());
        Entry {
            breaker: Arc::new(Breaker::new(rules, listeners.into_boxed_slice(), clock)),
            transitions,
        }
    }

    /// Sets the configuration of the breaker named `name`: used when it is created, and applied
    /// at once with [`Breaker::reconfigure`] if it exists.
    ///
    /// # Errors
    /// A [`ConfigError`] naming `name.field` if `config` is invalid, or if it changes an existing
    /// breaker's window shape (see [`Breaker::reconfigure`]); nothing changes then.
    pub fn set_config(&self, name: &str, config: Config) -> Result<(), ConfigError> {
        let rules = Rules::validate(&config, None).map_err(|e| e.within(name))?;
        let _writer = self.write.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(breaker) = self.get(name) {
            breaker.reconfigure(config).map_err(|e| e.within(name))?;
        }
        let mut configs = HashMap::clone(&self.configs.load());
        configs.insert(name.to_owned(), Arc::new(rules));
        self.configs.store(Arc::new(configs));
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
        let _writer = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let configs = self.configs.load();
        for (name, breaker) in self.breakers() {
            if !configs.contains_key(&*name) {
                breaker
                    .reconfigure(config.clone())
                    .map_err(|e| e.within(&name))?;
            }
        }
        self.default.store(Arc::new(rules));
        Ok(())
    }

    /// Every breaker with its name, sorted by name: a snapshot (breakers created afterwards are
    /// not in it).
    pub fn breakers(&self) -> Vec<(Arc<str>, Arc<Breaker>)> {
        let mut all: Vec<_> = self
            .entries
            .load()
            .iter()
            .map(|(name, e)| (name.clone(), e.breaker.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// The transitions of the breaker named `name` so far, as `(from, to, count)`, or `None` if
    /// there is no such breaker.
    pub fn transitions(&self, name: &str) -> Option<Vec<(State, State, u64)>> {
        let entries = self.entries.load();
        Some(entries.get(name)?.transitions.nonzero().collect())
    }

    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) fn entries(&self) -> Arc<Map> {
        self.entries.load_full()
    }

    /// How many breakers there are.
    pub fn len(&self) -> usize {
        self.entries.load().len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes the breakers and the registry's map hold on the heap: each breaker's struct and
    /// [`heap_bytes`](Breaker::heap_bytes), its transition counts, its name, and the map's
    /// table. Listener closures are not counted.
    pub fn heap_bytes(&self) -> usize {
        let entries = self.entries.load();
        let per_entry: usize = entries
            .iter()
            .map(|(name, e)| {
                std::mem::size_of::<Breaker>()
                    + e.breaker.heap_bytes()
                    + std::mem::size_of::<TransitionCounts>()
                    + name.len()
                    + 4 * std::mem::size_of::<usize>() // two Arc headers
            })
            .sum();
        let table = entries.capacity() * (std::mem::size_of::<(Arc<str>, Entry)>() + 1);
        per_entry + table
    }

    /// Each breaker's state, window failure rate, retry_after and times opened, and a readiness
    /// verdict: ready unless a breaker named in `critical` is Open or Isolated. A HalfOpen
    /// critical breaker counts as ready (it is letting probes through to decide), and a critical
    /// name with no breaker yet counts as ready (nothing has failed).
    pub fn health(&self, critical: &[&str]) -> Health {
        let breakers: Vec<BreakerHealth> = self
            .breakers()
            .into_iter()
            .map(|(name, breaker)| {
                let m = breaker.metrics();
                BreakerHealth {
                    critical: critical.contains(&&*name),
                    name: name.to_string(),
                    state: m.state,
                    failure_rate: m.failure_rate(),
                    calls_in_window: m.window.calls,
                    retry_after_ms: m.retry_after.map(|d| d.as_millis() as u64),
                    times_opened: m.times_opened,
                }
            })
            .collect();
        let ready = breakers
            .iter()
            .all(|b| !b.critical || !matches!(b.state, State::Open | State::Isolated));
        Health { ready, breakers }
    }
}
