//! Changing the rules of a live breaker, and reading them back.

use super::*;

impl Breaker {
    /// Replaces the configuration while callers keep calling: no lock on their path, no outcome
    /// lost, the state, its generation, the window's counts and the lifetime totals kept. Each
    /// decision a caller makes (admit a probe, trip, how long to stay Open) uses either the old
    /// or the new configuration as a whole, never a mix. Concurrent calls take effect one after
    /// the other, each whole.
    ///
    /// `config` replaces every setting; a field left `None` takes its default, except the
    /// window's shape (`time_window`, `count_window`) and `stripes`, which are kept. The window's
    /// shape is part of the breaker's memory layout and cannot change at runtime: a config that
    /// sets a different one is refused with a [`ConfigError`] naming the field (build a new
    /// breaker instead; a [`Registry`](crate::Registry) can swap it in under the same name). The
    /// custom trip rule ([`Builder::trip_when`](crate::Builder::trip_when)), the listeners and the clock are kept.
    ///
    /// When the changes take effect: trip rules at the next Failure or slow call recorded while
    /// Closed; the backoff at the next opening (the current Open deadline stands); half-open
    /// sizes at the next probe admitted or recorded (probes already out stay out); the slow-call
    /// threshold for calls that start after the change.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first invalid field; the configuration in force is unchanged.
    ///
    /// # Examples
    /// ```
    /// use hotbreaker::{Breaker, Config};
    ///
    /// let breaker = Breaker::builder().consecutive_failures(5).build()?;
    /// breaker.reconfigure(Config { consecutive_failures: Some(2), ..Config::default() })?;
    /// breaker.try_acquire().unwrap().failure();
    /// breaker.try_acquire().unwrap().failure();
    /// assert_eq!(breaker.state(), hotbreaker::State::Open);
    ///
    /// let err = breaker.reconfigure(Config { failure_rate: Some(2.0), ..Config::default() });
    /// assert_eq!(err.unwrap_err().field(), "failure_rate");
    /// # Ok::<(), hotbreaker::ConfigError>(())
    /// ```
    pub fn reconfigure(&self, config: Config) -> Result<(), ConfigError> {
        self.reconfigure_shared(Arc::new(config))
    }

    /// [`reconfigure`](Breaker::reconfigure) with settings that other breakers may hold too (a
    /// registry's configuration): kept as they are, shared, unless the window's shape has to be
    /// filled in from the breaker's own; packed when nothing else holds them.
    pub(crate) fn reconfigure_shared(&self, config: Arc<Config>) -> Result<(), ConfigError> {
        // The configuration lock: serializes writers of the rules and their mirror (a lock off
        // every caller's path). A poisoned lock only means a panic elsewhere while it was held;
        // the settings it guards are always whole.
        let mut settings = self
            .bookkeeping
            .settings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let keeps_shape = config.time_window.is_none() && config.count_window.is_none();
        let shape = keeps_shape
            .then(|| settings.config())
            .filter(|kept| kept.time_window.is_some() || kept.count_window.is_some());
        let config = match shape {
            Some(kept) => Arc::new(Config {
                time_window: kept.time_window,
                count_window: kept.count_window,
                ..Config::clone(&config)
            }),
            None => config,
        };
        let stripes_given = config.stripes.is_some();
        let rules = Rules::validate_shared(&config, self.bookkeeping.predicate.clone())?;
        // The rules hold the settings now: let go of this copy, so that settings nobody else
        // holds are packed below.
        drop(config);
        let shape = self.window.spec();
        if rules.window != shape {
            let field = match rules.settings.count_window {
                Some(_) => "count_window",
                None => "time_window",
            };
            return Err(ConfigError::described(
                field,
                "the window's shape is fixed when the breaker is built (build a new breaker to change it)",
                &format!("{}, the breaker's is {shape}", rules.window),
            ));
        }
        if stripes_given && rules.stripes != self.stripes.count() {
            return Err(ConfigError::described(
                "stripes",
                "fixed when the breaker is built (build a new breaker to change it)",
                &format!(
                    "{}, the breaker's is {}",
                    rules.stripes,
                    self.stripes.count()
                ),
            ));
        }
        let set = LiveRules::of(&rules);
        let was_relative = self.rules.load().slow.is_some_and(|s| s.relative.is_some());
        if !was_relative && set.slow.is_some_and(|s| s.relative.is_some()) {
            // Whatever was learned under an earlier relative rule is stale: warm up again.
            self.bookkeeping.typical.reset();
        }
        // The throttle's and the slow calls' rings exist before any thread can see the rules
        // that use them.
        if set.throttle.is_some() {
            self.stripes.prepare_throttle();
        }
        if set.slow.is_some() {
            self.stripes.prepare_slow();
        }
        self.rules.store(set);
        // The budget published under the old rules is void (see `evaluation.rs`).
        self.bookkeeping.evaluation.invalidate();
        // Relaxed: a hint; see the module's "Orderings" (Rules).
        self.hot.slow_ns.store(set.slow_ns(), Ordering::Relaxed);
        if set.throttle.is_none() {
            // Off at once; a computation still running with the old rules fails its
            // compare-and-swap against this store.
            self.hot.throttle.clear(self.word().generation());
        }
        *settings = KeptConfig::of(rules.settings);
        Ok(())
    }

    /// Packs the settings if this breaker now holds them alone (see `kept_config.rs`): for a
    /// registry that is dropped while its breakers live on. Off the hot path (the settings lock).
    pub(crate) fn settle_settings(&self) {
        self.bookkeeping
            .settings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .settle();
    }

    /// The settings in force, as data (see [`reconfigure`](Breaker::reconfigure)).
    pub fn config(&self) -> Config {
        self.bookkeeping
            .settings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .config()
    }

    /// The settings in force with every default filled in: what [`config`](Breaker::config)
    /// leaves as `None` because it was never set shows the value the breaker uses (the default
    /// trip rules, window, backoff, half-open settings, its stripes). Rules that are off stay
    /// `None`: `slow_calls`, `half_open_timeout`, `throttle`, and whichever of `open_timeout`
    /// and `backoff` is not in force. A custom trip rule (`trip_when`) is not data and is not
    /// shown, but with one the default trip rules are not shown either: they do not apply.
    ///
    /// # Examples
    /// ```
    /// let breaker = hotbreaker::Breaker::builder().build()?;
    /// assert_eq!(breaker.config().consecutive_failures, None);
    /// assert_eq!(breaker.effective_config().consecutive_failures, Some(5));
    /// # Ok::<(), hotbreaker::ConfigError>(())
    /// ```
    pub fn effective_config(&self) -> Config {
        crate::rules::effective(
            &self.config(),
            self.stripes.count() as u32,
            self.bookkeeping.predicate.is_some(),
        )
    }
}
