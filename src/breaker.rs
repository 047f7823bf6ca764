//! The breaker: ties the state word, the deadline word, the window and the clock together.
//!
//! # Orderings
//! - **State word.** Loads are `Acquire` and successful swaps `AcqRel`: a thread that sees
//!   generation `g` also sees everything the thread that installed `g` did before its swap, and
//!   a swap's winner sees everything before the word it replaced. Failed swaps load `Acquire`
//!   for the same reason, since the loop decides again from the fresh word.
//! - **Deadline word.** Published with `Release` after the state swap and read with `Acquire`
//!   (see `deadline.rs`); a reader that sees the state but not yet its deadline treats the
//!   deadline as unknown (PITFALLS 1).
//! - **Consecutive-failure word.** `Acquire` loads / `AcqRel` swaps, so a thread that sees a run
//!   started by generation `g'` also sees the state word at `g'` or later (it decides from the
//!   state whether it may start a run of its own).
//! - **Window and lifetime totals.** `Relaxed`; see `window.rs`.
//! - **times_opened, window_generation.** `Relaxed`: statistics for `metrics()`, ordered with
//!   nothing else.
//! - **Rules.** One `ArcSwap<Rules>`: a caller loads the whole configuration at once (arc-swap
//!   orders the load after the store that published it), so each decision sees either the old
//!   or the new configuration, never a mix. `slow_ns` mirrors the slow-call threshold for the
//!   success fast path with `Relaxed` loads and stores: it only picks between the fast path and
//!   the path that loads the rules (a permit issued without a timestamp is never slow).

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use crossbeam_utils::CachePadded;

use crate::bucket::Sample;
use crate::builder::Builder;
use crate::clock::Clock;
use crate::config::Config;
use crate::deadline::{self, DeadlineCell};
use crate::error::ConfigError;
use crate::error::{Error, Rejected};
use crate::metrics::Metrics;
use crate::permit::{Outcome, OwnedPermit, Permit, Ticket};
use crate::rules::{Listener, Rules, WindowSpec};
use crate::state::{self, Cause, Event, State, Word};
use crate::sync::{AtomicU64, Ordering};
use crate::transition::Transition;
use crate::window::{CountWindow, Stripes, TimeWindow, Total, Window, WindowStats};

const NS_PER_MS: u64 = 1_000_000;

/// Read on every acquire; written only by transitions and half-open admissions.
struct Hot {
    state: AtomicU64,
    deadline: DeadlineCell,
}

/// Written on failures and transitions; read (not written) by the success path.
struct Rare {
    /// Consecutive failures of the current Closed generation: bits 0..32 the run length
    /// (saturating), bits 32..64 the low 32 bits of the generation that started the run. A run
    /// tagged with another generation counts as 0, so closing again needs no reset.
    consecutive: AtomicU64,
    times_opened: AtomicU64,
    /// The generation of the last Closed or Disabled state: which window `metrics()` shows while
    /// Open, HalfOpen or Isolated.
    window_generation: AtomicU64,
}

/// A lock-free, allocation-free circuit breaker.
///
/// Cheap to share: put it in an `Arc` (or a `static`) and call it from any number of threads.
/// See the [crate documentation](crate) for the states and guarantees, and [`Builder`] for the
/// settings and their defaults.
///
/// # Examples
/// ```
/// use hotbreaker::{Breaker, Error, State};
///
/// let breaker = Breaker::builder().consecutive_failures(2).build().unwrap();
/// let flaky = || -> Result<u32, &'static str> { Err("boom") };
/// assert!(matches!(breaker.call(flaky), Err(Error::Inner("boom"))));
/// assert!(matches!(breaker.call(flaky), Err(Error::Inner("boom"))));
/// assert_eq!(breaker.state(), State::Open);
/// assert!(matches!(breaker.call(flaky), Err(Error::Rejected(_))));
/// ```
pub struct Breaker {
    hot: CachePadded<Hot>,
    rare: CachePadded<Rare>,
    stripes: Stripes,
    window: Window,
    /// Slow-call threshold in ns, `u64::MAX` when slow-call detection is off: a mirror of
    /// `rules` for the success fast path.
    slow_ns: AtomicU64,
    /// The configuration in force; replaced whole by `reconfigure`.
    rules: ArcSwap<Rules>,
    listeners: Box<[Listener]>,
    clock: Clock,
}

impl fmt::Debug for Breaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Breaker")
            .field("state", &self.word())
            .field("rules", &self.rules.load())
            .finish_non_exhaustive()
    }
}

impl Breaker {
    /// A builder with every setting at its default.
    pub fn builder() -> Builder {
        Builder::default()
    }

    pub(crate) fn new(config: Rules, listeners: Box<[Listener]>, clock: Clock) -> Breaker {
        let (window, buckets) = match config.window {
            WindowSpec::Time { width_ns, buckets } => (
                Window::Time(TimeWindow::new(width_ns, buckets)),
                TimeWindow::ring(buckets),
            ),
            WindowSpec::Count { size } => (Window::Count(Box::new(CountWindow::new(size))), 0),
        };
        Breaker {
            hot: CachePadded::new(Hot {
                state: AtomicU64::new(Word::INITIAL.bits()),
                deadline: DeadlineCell::new(),
            }),
            rare: CachePadded::new(Rare {
                consecutive: AtomicU64::new(0),
                times_opened: AtomicU64::new(0),
                window_generation: AtomicU64::new(0),
            }),
            stripes: Stripes::new(config.stripes, buckets),
            window,
            slow_ns: AtomicU64::new(config.slow.map_or(u64::MAX, |s| s.duration_ns)),
            rules: ArcSwap::from_pointee(config),
            listeners,
            clock,
        }
    }

    #[inline]
    fn word(&self) -> Word {
        // Acquire: see the module's "Orderings".
        Word::from_bits(self.hot.state.load(Ordering::Acquire))
    }

    /// Asks to make a call. `Ok` carries the permit to report the outcome through.
    ///
    /// # Errors
    /// [`Rejected`] while Open (before the deadline), HalfOpen with every probe slot taken, or
    /// Isolated.
    #[inline]
    pub fn try_acquire(&self) -> Result<Permit<'_>, Rejected> {
        match self.acquire() {
            Ok(ticket) => Ok(Permit::new(self, ticket)),
            Err(rejected) => Err(rejected),
        }
    }

    /// Like [`try_acquire`](Breaker::try_acquire), with a permit that owns a clone of the `Arc`.
    ///
    /// # Errors
    /// As for `try_acquire`.
    pub fn try_acquire_owned(self: &Arc<Self>) -> Result<OwnedPermit, Rejected> {
        self.acquire()
            .map(|ticket| OwnedPermit::new(Arc::clone(self), ticket))
    }

    /// Runs `f` if the breaker lets it through; `Ok` counts as Success, `Err` as Failure.
    ///
    /// A panic inside `f` is recorded as a Failure and then resumed.
    ///
    /// # Errors
    /// [`Error::Rejected`] if the call was not let through, [`Error::Inner`] with `f`'s error.
    #[inline]
    pub fn call<T, E>(&self, f: impl FnOnce() -> Result<T, E>) -> Result<T, Error<E>> {
        self.call_with(
            |r: &Result<T, E>| {
                if r.is_ok() {
                    Outcome::Success
                } else {
                    Outcome::Failure
                }
            },
            f,
        )
    }

    /// Runs `f` if the breaker lets it through and records `classify(&result)`.
    ///
    /// # Examples
    /// ```
    /// use hotbreaker::{Breaker, Outcome};
    ///
    /// let breaker = Breaker::builder().build().unwrap();
    /// // A 404 is the caller's problem, not the dependency's: don't count it.
    /// let status = breaker.call_with(
    ///     |r: &Result<u16, u16>| match r {
    ///         Ok(_) => Outcome::Success,
    ///         Err(s) if *s < 500 => Outcome::Ignored,
    ///         Err(_) => Outcome::Failure,
    ///     },
    ///     || Err(404),
    /// );
    /// assert!(status.is_err());
    /// assert_eq!(breaker.metrics().ignored, 1);
    /// ```
    ///
    /// # Errors
    /// As for [`call`](Breaker::call).
    #[inline]
    pub fn call_with<T, E>(
        &self,
        classify: impl FnOnce(&Result<T, E>) -> Outcome,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, Error<E>> {
        let permit = self.try_acquire().map_err(Error::Rejected)?;
        let guard = FailOnUnwind(Some(permit));
        let result = f();
        let outcome = classify(&result);
        guard.finish(outcome);
        result.map_err(Error::Inner)
    }

    /// The current state. Open stays Open until a call arrives at or after the deadline.
    pub fn state(&self) -> State {
        self.word().kind()
    }

    /// Forces the breaker open until [`reset`](Breaker::reset): every call is rejected with no
    /// `retry_after`.
    pub fn isolate(&self) {
        self.manual(State::Isolated);
    }

    /// Switches the breaker off until [`reset`](Breaker::reset): every call is let through and
    /// counted, nothing trips.
    pub fn disable(&self) {
        self.manual(State::Disabled);
    }

    /// Closes the breaker with an empty window and the backoff attempt count cleared. Always a
    /// transition (listeners hear Closed → Closed too), so outstanding permits become late.
    pub fn reset(&self) {
        self.manual(State::Closed);
    }

    fn manual(&self, to: State) {
        let now = self.clock.now_ns();
        self.apply(&self.rules.load(), self.word(), Event::Manual { to }, now);
    }

    /// A snapshot of the state, the window and the lifetime totals. Reads only: never blocks or
    /// slows a caller. Totals are exact once recording threads are quiescent; while they record,
    /// a snapshot may lag by the outcomes in flight.
    pub fn metrics(&self) -> Metrics {
        let now = self.clock.now_ns();
        let word = self.word();
        let window_generation = match word.kind() {
            State::Closed | State::Disabled => word.generation(),
            // Relaxed: a statistic.
            _ => self.rare.window_generation.load(Ordering::Relaxed),
        };
        let buckets = self.window.striped_buckets();
        Metrics {
            state: word.kind(),
            generation: word.generation(),
            window: self.window_stats(window_generation, now),
            successes: self.stripes.total(Total::Successes, buckets),
            failures: self.stripes.total(Total::Failures, buckets),
            ignored: self.stripes.total(Total::Ignored, buckets),
            slow: self.stripes.total(Total::Slow, buckets),
            rejected: self.stripes.total(Total::Rejected, buckets),
            // Relaxed: a statistic.
            times_opened: self.rare.times_opened.load(Ordering::Relaxed),
            retry_after: (word.kind() == State::Open)
                .then(|| Duration::from_nanos(self.open_remaining(word, now))),
        }
    }

    /// Replaces the configuration while callers keep calling: no lock on their path, no outcome
    /// lost, the state, its generation, the window's counts and the lifetime totals kept. Each
    /// decision a caller makes (admit a probe, trip, how long to stay Open) uses either the old
    /// or the new configuration as a whole, never a mix.
    ///
    /// `config` replaces every setting; a field left `None` takes its default, except the
    /// window's shape (`time_window`, `count_window`) and `stripes`, which are kept. The window's
    /// shape is part of the breaker's memory layout and cannot change at runtime: a config that
    /// sets a different one is refused with a [`ConfigError`] naming the field (build a new
    /// breaker instead; a [`Registry`](crate::Registry) can swap it in under the same name). The
    /// custom trip rule ([`Builder::trip_when`]), the listeners and the clock are kept.
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
    pub fn reconfigure(&self, mut config: Config) -> Result<(), ConfigError> {
        let current = self.rules.load_full();
        if config.time_window.is_none() && config.count_window.is_none() {
            config.time_window = current.settings.time_window;
            config.count_window = current.settings.count_window;
        }
        if config.stripes.is_none() {
            config.stripes = current.settings.stripes;
        }
        let rules = Rules::validate(&config, current.predicate.clone())?;
        if rules.window != current.window {
            let field = match config.count_window {
                Some(_) => "count_window",
                None => "time_window",
            };
            return Err(ConfigError::new(
                field,
                "the window's shape is fixed when the breaker is built (build a new breaker to change it)",
                (rules.window, current.window),
            ));
        }
        if rules.stripes != current.stripes {
            return Err(ConfigError::new(
                "stripes",
                "fixed when the breaker is built (build a new breaker to change it)",
                (rules.stripes, current.stripes),
            ));
        }
        let slow_ns = rules.slow.map_or(u64::MAX, |s| s.duration_ns);
        self.rules.store(std::sync::Arc::new(rules));
        // Relaxed: a hint; see the module's "Orderings" (Rules).
        self.slow_ns.store(slow_ns, Ordering::Relaxed);
        Ok(())
    }

    /// The settings in force, as data (see [`reconfigure`](Breaker::reconfigure)).
    pub fn config(&self) -> Config {
        self.rules.load().settings.clone()
    }

    /// Bytes this breaker holds on the heap: its counter stripes, count-window slots, validated
    /// configuration and listener table (the listener and predicate closures themselves are not
    /// counted).
    pub fn heap_bytes(&self) -> usize {
        let slots = match &self.window {
            Window::Count(c) => c.heap_bytes() + std::mem::size_of::<CountWindow>(),
            Window::Time(_) => 0,
        };
        // The rules live behind arc-swap's Arc: two reference counts, then the value.
        let rules = 2 * std::mem::size_of::<usize>() + std::mem::size_of::<Rules>();
        self.stripes.heap_bytes() + slots + std::mem::size_of_val(&*self.listeners) + rules
    }

    /// Number of counter stripes (after rounding up to a power of two).
    pub fn stripes(&self) -> usize {
        self.stripes.count()
    }

    // ---- acquiring -------------------------------------------------------------------------

    #[inline(always)]
    pub(crate) fn acquire(&self) -> Result<Ticket, Rejected> {
        let word = self.word();
        match word.kind() {
            State::Closed | State::Disabled => Ok(Ticket::new(
                word.generation(),
                word.kind(),
                self.issue_time(),
            )),
            _ => self.acquire_other(word),
        }
    }

    #[inline]
    fn issue_time(&self) -> u64 {
        if self.slow_threshold() == u64::MAX {
            0 // untimed: never slow
        } else {
            self.clock.now_ns().max(1)
        }
    }

    #[inline]
    fn slow_threshold(&self) -> u64 {
        // Relaxed: a hint; see the module's "Orderings" (Rules).
        self.slow_ns.load(Ordering::Relaxed)
    }

    /// Acquire while Open, HalfOpen or Isolated. The common Open case (before the deadline) is a
    /// clock read, a load and one counter increment.
    #[inline(never)]
    fn acquire_other(&self, word: Word) -> Result<Ticket, Rejected> {
        let now = self.clock.now_ns();
        if word.kind() == State::Open {
            if let Some(ms) = self.hot.deadline.read(word.generation()) {
                let deadline = ms.saturating_mul(NS_PER_MS);
                if now < deadline {
                    self.stripes.add(self.stripes.mine(), Total::Rejected, 1);
                    return Err(Rejected {
                        state: State::Open,
                        retry_after: Some(Duration::from_nanos(deadline - now)),
                    });
                }
            }
        }
        self.acquire_decide(word, now)
    }

    /// Acquire by the state machine: half-opening, half-open admission, timeouts, lost races.
    #[cold]
    #[inline(never)]
    fn acquire_decide(&self, mut word: Word, now: u64) -> Result<Ticket, Rejected> {
        let rules = self.rules.load();
        loop {
            let event = Event::Acquire {
                deadline_passed: word.kind() == State::Open
                    && self
                        .hot
                        .deadline
                        .read(word.generation())
                        .is_some_and(|ms| now >= ms.saturating_mul(NS_PER_MS)),
                half_open_expired: word.kind() == State::HalfOpen
                    && self.half_open_expired(&rules, word.generation(), now),
            };
            let step = state::next(word, event, rules.limits);
            let installed = match step.next {
                None => word,
                Some(new) => {
                    // AcqRel / Acquire: see the module's "Orderings".
                    match self.hot.state.compare_exchange_weak(
                        word.bits(),
                        new.bits(),
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => {
                            if let Some(cause) = step.cause {
                                self.after_transition(&rules, word, new, cause, now);
                            }
                            new
                        }
                        Err(fresh) => {
                            word = Word::from_bits(fresh);
                            continue;
                        }
                    }
                }
            };
            if step.admit {
                return Ok(Ticket::new(
                    installed.generation(),
                    installed.kind(),
                    self.issue_time(),
                ));
            }
            return Err(self.reject(installed, now));
        }
    }

    #[inline]
    fn reject(&self, word: Word, now: u64) -> Rejected {
        self.stripes.add(self.stripes.mine(), Total::Rejected, 1);
        let retry_after = match word.kind() {
            State::Open => Some(Duration::from_nanos(self.open_remaining(word, now))),
            _ => None,
        };
        Rejected {
            state: word.kind(),
            retry_after,
        }
    }

    /// Time left until an Open word's deadline; before the deadline is published, the nominal
    /// duration of this opening (an upper bound).
    fn open_remaining(&self, word: Word, now: u64) -> u64 {
        match self.hot.deadline.read(word.generation()) {
            Some(ms) => ms.saturating_mul(NS_PER_MS).saturating_sub(now),
            None => self.rules.load().backoff.nanos(word.attempt()),
        }
    }

    fn half_open_expired(&self, rules: &Rules, generation: u64, now: u64) -> bool {
        rules.half_open_timeout_ns.is_some()
            && self
                .hot
                .deadline
                .read(generation)
                .is_some_and(|ms| ms != deadline::NONE && now >= ms * NS_PER_MS)
    }

    // ---- recording -------------------------------------------------------------------------

    /// Records an outcome. The common case, a Success of a Closed permit with a time window and
    /// no slow-call detection, is inlined: a clock read, one CAS on the caller's stripe and one
    /// load of the consecutive-failure word.
    #[inline]
    pub(crate) fn record_ticket(&self, ticket: Ticket, outcome: Outcome) {
        if outcome == Outcome::Success && self.slow_threshold() == u64::MAX {
            if let (Window::Time(w), State::Closed | State::Disabled) =
                (&self.window, ticket.state())
            {
                let generation = ticket.generation();
                // A late permit goes the slow way (lifetime totals only): its generation's
                // window may still be on show in metrics() (SPEC rule 2).
                if self.word().generation() == generation {
                    let now = self.clock.now_ns();
                    if w.try_add(&self.stripes, generation, now, Sample::SUCCESS) {
                        self.end_run(generation);
                        return;
                    }
                }
            }
        }
        self.record_other(ticket, outcome);
    }

    #[inline(never)]
    fn record_other(&self, ticket: Ticket, outcome: Outcome) {
        if ticket.state() == State::HalfOpen {
            self.record_probe(ticket, outcome);
        } else {
            self.record_closed(ticket, outcome);
        }
    }

    #[inline]
    pub(crate) fn release_ticket(&self, ticket: Ticket) {
        if ticket.state() == State::HalfOpen {
            self.release_slot(ticket.generation());
        }
    }

    #[inline(never)]
    fn release_slot(&self, generation: u64) {
        self.apply(
            &self.rules.load(),
            self.word(),
            Event::Release { generation },
            0,
        );
    }

    #[inline]
    fn is_slow(&self, ticket: Ticket, now: u64) -> bool {
        ticket.issued_ns != 0
            && self
                .rules
                .load()
                .slow
                .is_some_and(|s| now.saturating_sub(ticket.issued_ns) > s.duration_ns)
    }

    /// A permit issued while Closed or Disabled.
    fn record_closed(&self, ticket: Ticket, outcome: Outcome) {
        let failure = match outcome {
            Outcome::Success => false,
            Outcome::Failure => true,
            Outcome::Ignored => {
                self.stripes.add(self.stripes.mine(), Total::Ignored, 1);
                return;
            }
        };
        let now = self.clock.now_ns();
        let slow = self.is_slow(ticket, now);
        let sample = Sample { failure, slow };
        let generation = ticket.generation();
        if self.word().generation() != generation {
            // Late: lifetime totals only (SPEC rule 2). A transition racing past this check can
            // still let the sample into a bucket of the old generation, which no trip rule reads.
            self.stripes.add_sample(self.stripes.mine(), sample);
            return;
        }
        match &self.window {
            Window::Time(w) => w.record(
                &self.stripes,
                generation,
                now,
                sample,
                || self.clock.now_ns(),
                || self.word().generation() == generation,
            ),
            Window::Count(w) => {
                w.record(generation, sample);
                self.stripes.add_sample(self.stripes.mine(), sample);
            }
        }
        if ticket.state() != State::Closed {
            return; // Disabled: counted, never trips.
        }
        if failure {
            let run = self.extend_run(generation);
            self.evaluate(generation, run, now);
        } else {
            self.end_run(generation);
            if slow {
                self.evaluate(generation, None, now);
            }
        }
    }

    /// Counts a failure in the run of `generation`; the run's length, or `None` if the permit
    /// is late.
    fn extend_run(&self, generation: u64) -> Option<u32> {
        let tag = generation & 0xFFFF_FFFF;
        // Acquire: see the module's "Orderings".
        let mut v = self.rare.consecutive.load(Ordering::Acquire);
        loop {
            let new = if v >> 32 == tag {
                (tag << 32) | u64::from((v as u32).saturating_add(1))
            } else if self.word().generation() == generation {
                (tag << 32) | 1
            } else {
                return None; // Late: may not overwrite a newer generation's run.
            };
            // AcqRel / Acquire: see the module's "Orderings".
            match self.rare.consecutive.compare_exchange_weak(
                v,
                new,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(new as u32),
                Err(fresh) => v = fresh,
            }
        }
    }

    /// A Success ends the run of `generation`. Only a load when there is no run to end, so the
    /// success path writes nothing shared.
    #[inline]
    fn end_run(&self, generation: u64) {
        // Relaxed: deciding whether to try; the CAS re-checks.
        let v = self.rare.consecutive.load(Ordering::Relaxed);
        if v as u32 != 0 {
            self.end_run_slow(generation, v);
        }
    }

    #[inline(never)]
    fn end_run_slow(&self, generation: u64, mut v: u64) {
        let tag = generation & 0xFFFF_FFFF;
        while v >> 32 == tag && v as u32 != 0 {
            // AcqRel / Relaxed: see the module's "Orderings"; a failure just re-checks.
            match self.rare.consecutive.compare_exchange_weak(
                v,
                tag << 32,
                Ordering::AcqRel,
                Ordering::Relaxed,
            ) {
                Ok(_) => return,
                Err(fresh) => v = fresh,
            }
        }
    }

    /// Evaluates the trip rules after a Failure (`run` = its consecutive count) or a slow
    /// Success (`run` = `None`) of a Closed permit of `generation` (SPEC rule 3).
    #[cold]
    fn evaluate(&self, generation: u64, run: Option<u32>, now: u64) {
        let word = self.word();
        if word.kind() != State::Closed || word.generation() != generation {
            return;
        }
        let rules = self.rules.load();
        let c = &**rules;
        let cause = if run.is_some_and(|r| c.consecutive_failures.is_some_and(|n| r >= n)) {
            Cause::ConsecutiveFailures
        } else if c.failure_rate.is_none() && c.slow.is_none() && c.predicate.is_none() {
            return; // Only the consecutive rule: no need to sum the window.
        } else {
            let stats = self.window_stats(generation, now);
            let enough = stats.calls >= u64::from(c.minimum_calls);
            if enough
                && c.failure_rate
                    .is_some_and(|r| r.reached(stats.failures, stats.calls))
            {
                Cause::FailureRate
            } else if enough
                && c.slow
                    .is_some_and(|s| s.rate.reached(stats.slow, stats.calls))
            {
                Cause::SlowCallRate
            } else if c.predicate.as_ref().is_some_and(|p| p(&stats)) {
                Cause::CustomRule
            } else {
                return;
            }
        };
        self.apply(c, word, Event::Trip { generation, cause }, now);
    }

    /// A permit issued while HalfOpen: a probe.
    fn record_probe(&self, ticket: Ticket, outcome: Outcome) {
        let rules = self.rules.load();
        let now = self.clock.now_ns();
        let stripe = self.stripes.mine();
        let generation = ticket.generation();
        let event = match outcome {
            Outcome::Ignored => {
                self.stripes.add(stripe, Total::Ignored, 1);
                Event::Release { generation }
            }
            Outcome::Success | Outcome::Failure => {
                let failure = outcome == Outcome::Failure;
                let slow = self.is_slow(ticket, now);
                self.stripes.add_sample(stripe, Sample { failure, slow });
                if failure {
                    Event::ProbeFailure { generation }
                } else {
                    Event::ProbeSuccess {
                        generation,
                        expired: self.half_open_expired(&rules, generation, now),
                    }
                }
            }
        };
        self.apply(&rules, self.word(), event, now);
    }

    fn window_stats(&self, generation: u64, now: u64) -> WindowStats {
        match &self.window {
            Window::Time(w) => w.stats(&self.stripes, generation, now),
            Window::Count(w) => w.stats(generation),
        }
    }

    // ---- transitions -----------------------------------------------------------------------

    /// Runs `next` in a compare-and-swap loop from `word`; the winner of a transition publishes
    /// its deadline and calls the listeners.
    fn apply(&self, rules: &Rules, mut word: Word, event: Event, now: u64) {
        loop {
            let step = state::next(word, event, rules.limits);
            let Some(new) = step.next else { return };
            // AcqRel / Acquire: see the module's "Orderings".
            match self.hot.state.compare_exchange_weak(
                word.bits(),
                new.bits(),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    if let Some(cause) = step.cause {
                        self.after_transition(rules, word, new, cause, now);
                    }
                    return;
                }
                Err(fresh) => word = Word::from_bits(fresh),
            }
        }
    }

    /// Called once per transition, by the thread whose swap installed `to`.
    #[cold]
    fn after_transition(&self, rules: &Rules, from: Word, to: Word, cause: Cause, now: u64) {
        let generation = to.generation();
        let deadline_ms = match to.kind() {
            State::Open => {
                let seed = crate::backoff::mix(generation ^ now.rotate_left(32));
                let d = rules.backoff.nanos_jittered(to.attempt(), seed);
                now.saturating_add(d).div_ceil(NS_PER_MS)
            }
            State::HalfOpen => rules.half_open_timeout_ns.map_or(deadline::NONE, |t| {
                now.saturating_add(t).div_ceil(NS_PER_MS)
            }),
            _ => deadline::NONE,
        };
        self.hot.deadline.publish(generation, deadline_ms);
        match to.kind() {
            // Relaxed: statistics (module docs).
            State::Open => {
                self.rare.times_opened.fetch_add(1, Ordering::Relaxed);
            }
            State::Closed | State::Disabled => {
                // Relaxed: which window metrics() shows while not Closed; display only.
                self.rare
                    .window_generation
                    .store(generation, Ordering::Relaxed);
            }
            _ => {}
        }
        let transition = Transition {
            from: from.kind(),
            to: to.kind(),
            cause,
            generation,
        };
        for listener in self.listeners.iter() {
            // A panicking listener is contained: the transition is already installed and
            // published, and nothing here holds a lock (SPEC rule 8, PITFALLS 6).
            let _ = catch_unwind(AssertUnwindSafe(|| listener(&transition)));
        }
    }
}

/// Records a Failure if the protected call (or its classifier) panics.
struct FailOnUnwind<'a>(Option<Permit<'a>>);

impl FailOnUnwind<'_> {
    #[inline]
    fn finish(mut self, outcome: Outcome) {
        if let Some(permit) = self.0.take() {
            permit.record(outcome);
        }
    }
}

impl Drop for FailOnUnwind<'_> {
    fn drop(&mut self) {
        if let Some(permit) = self.0.take() {
            permit.failure();
        }
    }
}
