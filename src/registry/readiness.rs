//! A registry's health report and readiness verdict.

use super::*;

impl Registry {
    /// Each breaker's state, window failure rate, retry_after and times opened, and the
    /// readiness verdict of [`ready`](Registry::ready): ready unless a breaker marked critical
    /// (`critical = true` in its configuration, or in the default for the breakers without
    /// one) is down (Isolated, or Open before its deadline). Sorted by name.
    ///
    /// Its cost is a read of each breaker's state and window (not its lifetime totals, as
    /// [`Breaker::metrics`] does): a breaker with no bucket started in its window costs one
    /// word of it. With more than 8 192 breakers the reads are shared among scoped threads, one
    /// per CPU. [`ready`](Registry::ready) reads the critical breakers' states only.
    pub fn health(&self) -> Health {
        let entries = self.entries.pin();
        let mut sorted: Vec<(u128, &Arc<str>, &Entry, bool)> = {
            // The writer lock, off every caller's path: which breakers are critical.
            let settings = self.writer();
            entries
                .iter()
                .map(|(name, e)| (name_prefix(name), name, e, settings.critical(name)))
                .collect()
        };
        sorted.sort_unstable_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
        let row = |&(_, name, e, critical): &(u128, &Arc<str>, &Entry, bool)| {
            let v = e.breaker.health_view();
            BreakerHealth {
                critical,
                down: down(v.state, v.retry_after_ns),
                name: name.to_string(),
                state: v.state,
                failure_rate: v.window.failure_rate(),
                calls_in_window: v.window.calls,
                retry_after_ms: v.retry_after_ns.map(|ns| ns / 1_000_000),
                times_opened: v.times_opened,
            }
        };
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(sorted.len() / HEALTH_ROWS_PER_THREAD)
            .max(1);
        let chunk = sorted.len().div_ceil(threads).max(1);
        // Large registries are read by one scoped thread per CPU (reading a breaker is a few
        // cache misses, which threads overlap). A thread that cannot be started leaves its
        // share to the calling thread.
        let breakers: Vec<BreakerHealth> = std::thread::scope(|s| {
            let mut parts = sorted.chunks(chunk);
            let first = parts.next().unwrap_or_default();
            let helpers: Vec<_> = parts
                .map(|part| {
                    let job = move || part.iter().map(row).collect::<Vec<_>>();
                    (part, std::thread::Builder::new().spawn_scoped(s, job).ok())
                })
                .collect();
            let mut all: Vec<BreakerHealth> = first.iter().map(row).collect();
            for (part, helper) in helpers {
                match helper.map(|h| h.join()) {
                    Some(Ok(rows)) => all.extend(rows),
                    Some(Err(panic)) => std::panic::resume_unwind(panic),
                    None => all.extend(part.iter().map(row)),
                }
            }
            all
        });
        let ready = breakers.iter().all(|b| !b.critical || !b.down);
        Health {
            ready,
            breakers,
            fleet_link_up: self.link.get().map(|up| up()),
        }
    }

    /// The readiness verdict of [`health`](Registry::health) alone: false while a breaker
    /// marked critical (`critical = true` in its configuration, or in the default for the
    /// breakers without one) is Isolated, or Open before its deadline. A breaker Open past its
    /// deadline counts as ready: its next call is a probe, and an instance taken out of its load
    /// balancer would never send it. A HalfOpen breaker counts as ready (it is letting probes
    /// through to decide), and a critical name with no breaker yet too (nothing has failed).
    /// `critical` is read from the registry's configurations ([`set_config`](Registry::set_config),
    /// a file), not from a [`Breaker::reconfigure`] made on the breaker itself.
    ///
    /// What it is for: a readiness probe that takes an instance out of its load balancer when
    /// it cannot serve anything, because a dependency every request needs is down. What it is
    /// not for: a dependency that only some routes need. Taking the instance out for it takes
    /// out the routes that still work, and every instance sees the same dependency down, so
    /// the whole service goes out at once. Leave such breakers uncritical and answer their
    /// routes with a 503 and Retry-After instead.
    ///
    /// # Examples
    /// ```
    /// use hotbreaker::{Config, Registry};
    ///
    /// let registry = Registry::default();
    /// registry.set_config("db", Config { critical: Some(true), ..Config::default() })?;
    /// registry.get_or_create("cache").isolate(); // not critical
    /// assert!(registry.ready());
    /// registry.get_or_create("db").isolate();
    /// assert!(!registry.ready());
    /// # Ok::<(), hotbreaker::ConfigError>(())
    /// ```
    pub fn ready(&self) -> bool {
        // The writer lock, off every caller's path: which names are critical.
        let settings = self.writer();
        let entries = self.entries.pin();
        let named = settings
            .configs
            .iter()
            .filter(|(_, rules)| rules.settings.critical == Some(true))
            .filter_map(|(name, _)| entries.get(&**name));
        let mut all = named.map(|e| &e.breaker);
        if settings.default.settings.critical == Some(true) {
            // Every breaker without a configuration of its own is critical too.
            let unconfigured = entries
                .iter()
                .filter(|(name, _)| !settings.configured(name))
                .map(|(_, e)| &e.breaker);
            return all.chain(unconfigured).all(|b| !b.rejecting());
        }
        all.all(|b| !b.rejecting())
    }

    /// Whether none of the breakers named in `names` is down (Isolated, or Open before its
    /// deadline), whether or not they are marked critical (a HalfOpen breaker, and a configured name with no breaker yet, count
    /// as ready). One lookup and one state read per name.
    ///
    /// # Errors
    /// [`UnknownBreaker`] for the first name that has neither a breaker nor a configuration:
    /// a typo would otherwise always read as ready.
    ///
    /// # Examples
    /// ```
    /// let registry = hotbreaker::Registry::default();
    /// registry.get_or_create("db").isolate();
    /// registry.get_or_create("cache");
    /// assert_eq!(registry.ready_for(&["db", "cache"]), Ok(false));
    /// assert_eq!(registry.ready_for(&["cache"]), Ok(true));
    /// assert!(registry.ready_for(&["cahce"]).is_err());
    /// ```
    pub fn ready_for(&self, names: &[&str]) -> Result<bool, UnknownBreaker> {
        let entries = self.entries.pin();
        let mut ready = true;
        for name in names {
            match entries.get(*name) {
                Some(e) => ready &= !e.breaker.rejecting(),
                None => {
                    // The writer lock, off every caller's path: is the name configured?
                    let settings = self.writer();
                    if !settings.configured(name) {
                        let configured = configured_names(&settings);
                        drop(settings); // suggestions are computed without the lock
                        return Err(self.unknown(&configured, name));
                    }
                }
            }
        }
        Ok(ready)
    }
}

/// `health` starts a thread per this many breakers (up to one per CPU).
const HEALTH_ROWS_PER_THREAD: usize = 4096;

/// The first 16 bytes of `name` as a big-endian number (zero-padded): comparing two of these
/// orders names as comparing the names does, up to a tie.
fn name_prefix(name: &str) -> u128 {
    let mut bytes = [0u8; 16];
    let n = name.len().min(16);
    bytes[..n].copy_from_slice(&name.as_bytes()[..n]);
    u128::from_be_bytes(bytes)
}

/// Whether a breaker in `state`, with `retry_after_ns` left while Open, rejects calls now (see
/// [`BreakerHealth::down`]).
fn down(state: State, retry_after_ns: Option<u64>) -> bool {
    match state {
        State::Isolated => true,
        State::Open => retry_after_ns != Some(0),
        _ => false,
    }
}
