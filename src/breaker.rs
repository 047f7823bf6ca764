//! The breaker: ties the state word, the deadline cell, the window, the rules and the clock
//! together. Decisions are made by pure functions (`state::next`, `policy::window_cause`); this
//! file only loads, swaps and publishes.
//!
//! # Orderings
//! - **State word** (`u128`). Loads are `Acquire` and successful swaps `AcqRel`: a thread that
//!   sees generation `g` also sees everything the thread that installed `g` did before its swap,
//!   and a swap's winner sees everything before the word it replaced. Failed swaps load `Acquire`
//!   for the same reason, since the loop decides again from the fresh word.
//! - **Deadline cell.** Published with `Release` after the state swap and read with `Acquire`
//!   (see `deadline.rs`); a reader that sees the state but not yet its deadline treats the
//!   deadline as unknown.
//! - **Window and lifetime totals.** See `window/mod.rs`: bucket words are self-contained, so no
//!   decision depends on reading them in any order with the state word.
//! - **Rules.** See `rules_cell.rs`: a reader gets one whole version. `slow_ns` mirrors the
//!   slow-call threshold for the success fast path (`Relaxed`: it only picks between the fast path
//!   and the path that reads the rules; a permit issued without a timestamp is never slow). Both
//!   are written under the configuration lock, so racing `reconfigure` calls leave them agreeing.
//! - **Typical latency** (relative slow calls). `Relaxed`: one self-contained word, see
//!   `latency.rs`.
//! - **Mirror.** See `mirror.rs`.
//! - **Consecutive-failure baselines, evaluation budget.** See `consecutive.rs` and
//!   `evaluation.rs`.
//! - **Throttle.** The published probability: see `throttle.rs` (`PublishedCell`). The
//!   interval of its last computation (`throttle_interval`) is `Relaxed`: a hint of when to
//!   compute again, ordered with nothing.
//!
//! # What a call writes
//! A Success writes only its own thread's line (`window/owned.rs`). A Closed Failure that does not
//! trip writes its own line too; a shared line only when its thread's local run is two or
//! more (the consecutive check renews its baseline, `consecutive.rs`) or its evaluation
//! budget is spent (`evaluation.rs`). The state word and its mirror, which every call reads,
//! change only on transitions and half-open admissions.
//! - **times_opened, window_generation, reported totals.** `Relaxed`: statistics for
//!   `metrics()`, ordered with nothing else.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_utils::CachePadded;

use crate::clock::Clock;
use crate::compact_deadline::{self, CompactDeadlineCell};
use crate::config::Config;
use crate::consecutive::Baselines;
use crate::deadline::{self, DeadlineCell};
use crate::error::{ConfigError, Rejected};
use crate::evaluation::{self, Evaluation, EvaluationCell};
use crate::health::HealthView;
use crate::latency::{self, TypicalCell};
use crate::metrics::Metrics;
use crate::mirror::{Mirror, MirrorCell};
use crate::outcome::Outcome;
use crate::policy;
use crate::rules::{Listener, Predicate, Rules};
use crate::rules_cell::{RuleSet, RulesCell};
use crate::state::{self, Cause, Event, State, Step, Word};
use crate::sync::{AtomicU64, AtomicU128, Mutex, Ordering}; // Mutex: off the hot path (config lock)
use crate::thread_slot;
use crate::throttle::{self, DrawSource, Published, PublishedCell};
use crate::ticket::Ticket;
use crate::transition::Transition;
use crate::window::owned::Head;
use crate::window::{
    CountWindow, Sample, Stripes, TimeRing, Total, Window, WindowSpec, WindowStats, Writer,
};

/// Read on every acquire; written by transitions, half-open admissions, the throttle's
/// computation and `reconfigure`. 32 bytes, first in the breaker: the owned stripes' handle
/// follows it on the same 64-byte line (see [`Breaker`]).
#[derive(Debug)]
#[repr(C)]
struct Hot {
    /// The kind and generation of the state word, for the fast paths (see `mirror.rs`).
    mirror: MirrorCell,
    /// The throttle's rejection probability, for Closed permits (see `throttle.rs`).
    throttle: PublishedCell,
    /// Slow-call threshold in ns (a relative rule's floor), `u64::MAX` when slow-call detection
    /// is off: a mirror of `rules` for the acquire and success fast paths, written by
    /// `reconfigure` only.
    slow_ns: AtomicU64,
    /// The deadline cell's content in 64 bits, for Open rejections (see `compact_deadline.rs`):
    /// written once per transition, after the deadline cell.
    compact_deadline: CompactDeadlineCell,
}

/// The exact state: read and swapped by transitions and by calls that leave the fast paths
/// (half-open admissions, a deadline reached); written on transitions only.
#[derive(Debug)]
struct Exact {
    /// The whole state: the one word every decision swaps (see [`Word`]).
    state: AtomicU128,
    deadline: DeadlineCell,
}

/// Written on transitions, snapshots, latency samples, consecutive-failure checks and window
/// evaluations only.
struct Stats {
    /// The last window evaluation and its budget (see `evaluation.rs`): read on every Closed
    /// Failure or slow call, written by an evaluation.
    evaluation: EvaluationCell,
    times_opened: AtomicU64,
    /// The generation of the last Closed or Disabled state: which window `metrics()` shows while
    /// Open, HalfOpen or Isolated.
    window_generation: AtomicU64,
    /// The highest lifetime Successes, Failures and slow calls reported so far: snapshots are
    /// lower bounds (see `window/mod.rs`), and these keep successive snapshots from going backwards.
    reported: [AtomicU64; 3],
    /// The bucket interval of the throttle's last computation (see `throttle.rs`).
    throttle_interval: AtomicU64,
    /// The dependency's typical latency, for a relative slow-call rule (see `latency.rs`):
    /// read by timed outcomes, written at most once per sampling period.
    typical: TypicalCell,
    /// The custom trip rule: fixed when the breaker is built, read when the window rules are
    /// evaluated (after a Failure or a slow call).
    predicate: Option<Predicate>,
}

/// A lock-free, allocation-free circuit breaker.
///
/// Cheap to share: put it in an `Arc` (or a `static`) and call it from any number of threads.
/// See the [crate documentation](crate) for the states and guarantees, and
/// [`Builder`](crate::Builder) for the
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
///
/// In this order, on 128-byte lines (`repr(C, align(128))`): the hot words, then the stripes,
/// whose first 32 bytes are the owned stripes' handle, so that a Success on its owned stripe
/// reads one 64-byte line of the breaker (a unit test holds the offsets); then the exact state,
/// and the statistics on lines of their own.
#[repr(C, align(128))]
pub struct Breaker {
    hot: Hot,
    stripes: Stripes,
    exact: Exact,
    // Cold words fill the rest of the exact state's line: three pointers read by Failures,
    // listeners' calls and throttled admissions, never written after the build, and the
    // configuration lock.
    /// The consecutive-failure check's baselines (see `consecutive.rs`), on lines of their own.
    baselines: Box<Baselines>,
    listeners: Box<[Listener]>,
    /// Where the throttle's draws come from: the calling thread's generator unless a test
    /// replays its own (a thin pointer: a breaker's inline size is budgeted).
    pub(crate) draws: Option<Arc<DrawSource>>,
    /// The settings in force as the user wrote them, shared with the breakers a registry built
    /// from the same configuration (its 300-odd bytes stay off the breaker's own lines).
    settings: Mutex<Arc<Config>>, // off the hot path: reconfigure() and config() only
    stats: CachePadded<Stats>,
    window: Window,
    rules: RulesCell,
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
    pub(crate) fn new(rules: Rules, listeners: Box<[Listener]>, clock: Clock) -> Breaker {
        let (window, buckets) = match rules.window {
            WindowSpec::Time { width_ns, buckets } => {
                (Window::Time(TimeRing::new(width_ns, buckets)), buckets)
            }
            WindowSpec::Count { size } => (Window::Count(Box::new(CountWindow::new(size))), 0),
        };
        let set = RuleSet::of(&rules);
        let mut stripes = Stripes::new(rules.stripes, buckets, clock.offset());
        stripes.owned_mut().set_real_time(clock.real_time());
        if rules.throttle.is_some() {
            stripes.prepare_throttle();
        }
        Breaker {
            hot: Hot {
                mirror: MirrorCell::new(Word::INITIAL),
                throttle: PublishedCell::new(),
                slow_ns: AtomicU64::new(set.slow_ns()),
                compact_deadline: CompactDeadlineCell::new(deadline::pack(0, deadline::NONE)),
            },
            exact: Exact {
                state: AtomicU128::new(Word::INITIAL.bits()),
                deadline: DeadlineCell::new(),
            },
            stats: CachePadded::new(Stats {
                evaluation: EvaluationCell::new(),
                times_opened: AtomicU64::new(0),
                window_generation: AtomicU64::new(0),
                reported: std::array::from_fn(|_| AtomicU64::new(0)),
                throttle_interval: AtomicU64::new(0),
                typical: TypicalCell::new(),
                predicate: rules.predicate.clone(),
            }),
            baselines: Box::new(Baselines::new(stripes.writers())),
            stripes,
            window,
            rules: RulesCell::new(set),
            settings: Mutex::new(rules.settings), // config lock: off the hot path
            listeners,
            clock,
            draws: None,
        }
    }

    #[inline]
    fn word(&self) -> Word {
        // Acquire: see the module's "Orderings".
        Word::from_bits(self.exact.state.load(Ordering::Acquire))
    }

    #[inline]
    fn mirror(&self) -> Mirror {
        self.hot.mirror.load()
    }

    /// The current state. Open stays Open until a call arrives at or after the deadline.
    pub fn state(&self) -> State {
        // The mirror, like `try_acquire`: a caller that sees a state is admitted by that state.
        self.mirror().kind()
    }

    /// A snapshot of the state, the window and the lifetime totals. Reads only the breaker's
    /// counters (and writes three high-water marks of its own): never blocks or slows a caller.
    ///
    /// Totals never go backwards from one snapshot to the next, and are exact once recording
    /// threads are quiescent; while they record, a snapshot may lag by the outcomes in flight.
    pub fn metrics(&self) -> Metrics {
        let now = self.clock.real_ns();
        let (word, window_generation) = self.observed_word();
        let monotonic = |i: usize, total: Total| self.monotonic_total(i, total);
        Metrics {
            state: word.kind(),
            generation: word.generation(),
            window: self.window_report(window_generation, now),
            successes: monotonic(0, Total::Successes),
            failures: monotonic(1, Total::Failures),
            ignored: self.stripes.total(Total::Ignored),
            slow: monotonic(2, Total::Slow),
            rejected: self.stripes.total(Total::Rejected),
            throttled: self.stripes.total(Total::Throttled),
            // Relaxed: a statistic.
            times_opened: self.stats.times_opened.load(Ordering::Relaxed),
            retry_after: (word.kind() == State::Open)
                .then(|| Duration::from_nanos(self.open_remaining(word, now))),
            typical_latency: self.typical_latency(),
        }
    }

    /// What the fleet link reads of this breaker at each flush: the state, the generation and
    /// the lifetime totals of [`metrics`](Breaker::metrics), without the window and the
    /// latency estimate (a fraction of the memory `metrics` reads, for links that go over
    /// every breaker of a large registry).
    #[cfg(feature = "redis")]
    pub(crate) fn fleet_totals(&self) -> crate::fleet::Observed {
        let (word, _) = self.observed_word();
        let monotonic = |i: usize, total: Total| self.monotonic_total(i, total);
        let (successes, failures) = (
            monotonic(0, Total::Successes),
            monotonic(1, Total::Failures),
        );
        crate::fleet::Observed {
            totals: crate::fleet::Counts {
                calls: successes.saturating_add(failures),
                failures,
                slow: monotonic(2, Total::Slow),
            },
            state: word.kind(),
            generation: word.generation(),
        }
    }

    /// Lifetime total `total`, never below what a snapshot reported before (`i` is its
    /// high-water mark: 0 successes, 1 failures, 2 slow calls).
    fn monotonic_total(&self, i: usize, total: Total) -> u64 {
        let now = self.stripes.total(total);
        // Relaxed: a statistic; fetch_max keeps it monotonic on its own. Written only when
        // the total grew, so that reading an idle breaker dirties none of its lines.
        let reported = self.stats.reported[i].load(Ordering::Relaxed);
        if now <= reported {
            return reported;
        }
        now.max(self.stats.reported[i].fetch_max(now, Ordering::Relaxed))
    }

    /// The state word a snapshot reports, and the generation whose window it reports.
    fn observed_word(&self) -> (Word, u64) {
        let mirror = self.mirror();
        let word = self.word();
        let word = if word.generation() == mirror.generation() {
            word
        } else {
            // The transition's winner has not published it yet: report the state `try_acquire`
            // still acts on, and nothing of the new generation.
            Word::pack(mirror.kind(), 0, 0, 0, mirror.generation())
        };
        let window_generation = match word.kind() {
            State::Closed | State::Disabled => word.generation(),
            // Relaxed: a statistic.
            _ => self.stats.window_generation.load(Ordering::Relaxed),
        };
        (word, window_generation)
    }

    /// What a health report shows of this breaker: the part of [`metrics`](Breaker::metrics)
    /// without the lifetime totals and the latency estimate (a third of the memory it reads).
    /// Whether a call now would be rejected by the state alone: Isolated, or Open before its
    /// deadline. An Open breaker past its deadline is not: the next call half-opens it.
    pub(crate) fn rejecting(&self) -> bool {
        let word = self.word();
        match word.kind() {
            State::Isolated => true,
            State::Open => self.open_remaining(word, self.clock.real_ns()) > 0,
            _ => false,
        }
    }

    pub(crate) fn health_view(&self) -> HealthView {
        let now = self.clock.real_ns();
        let (word, window_generation) = self.observed_word();
        HealthView {
            state: word.kind(),
            window: self.window_report(window_generation, now),
            // Relaxed: a statistic.
            times_opened: self.stats.times_opened.load(Ordering::Relaxed),
            retry_after_ns: (word.kind() == State::Open).then(|| self.open_remaining(word, now)),
        }
    }

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
    pub fn reconfigure(&self, mut config: Config) -> Result<(), ConfigError> {
        // The configuration lock: serializes writers of the rules and their mirror (a lock off
        // every caller's path). A poisoned lock only means a panic elsewhere while it was held;
        // the settings it guards are always whole.
        let mut settings = self
            .settings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if config.time_window.is_none() && config.count_window.is_none() {
            config.time_window = settings.time_window;
            config.count_window = settings.count_window;
        }
        let stripes_given = config.stripes.is_some();
        let rules = Rules::validate(&config, self.stats.predicate.clone())?;
        let shape = self.window.spec();
        if rules.window != shape {
            let field = match config.count_window {
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
        let set = RuleSet::of(&rules);
        let was_relative = self.rules.load().slow.is_some_and(|s| s.relative.is_some());
        if !was_relative && set.slow.is_some_and(|s| s.relative.is_some()) {
            // Whatever was learned under an earlier relative rule is stale: warm up again.
            self.stats.typical.reset();
        }
        if set.throttle.is_some() {
            // The throttle's rings exist before any thread can see the rules that use them.
            self.stripes.prepare_throttle();
        }
        self.rules.store(set);
        // The budget published under the old rules is void (see `evaluation.rs`).
        self.stats.evaluation.invalidate();
        // Relaxed: a hint; see the module's "Orderings" (Rules).
        self.hot.slow_ns.store(set.slow_ns(), Ordering::Relaxed);
        if set.throttle.is_none() {
            // Off at once; a computation still running with the old rules fails its
            // compare-and-swap against this store.
            self.hot.throttle.clear(self.word().generation());
        }
        *settings = rules.settings;
        Ok(())
    }

    /// The settings in force, as data (see [`reconfigure`](Breaker::reconfigure)).
    pub fn config(&self) -> Config {
        self.settings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .as_ref()
            .clone()
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
            self.stripes() as u32,
            self.stats.predicate.is_some(),
        )
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
        let limits = self.rules.load().limits;
        self.install(limits, |_| Event::Manual { to });
    }

    /// Applies a trip learned from another instance of the fleet: a **Closed** breaker opens
    /// (cause [`Cause::Fleet`]) for `open_for`, capped at the longest opening its own backoff
    /// allows; any other state is left alone (see below). Returns whether it opened.
    ///
    /// This is the transition the `redis` feature's fleet link makes when a peer publishes a
    /// trip; call it yourself to carry trips over another channel. Off the call path: one
    /// compare-and-swap on the state word, like any transition, and listeners hear it.
    ///
    /// # Invariant
    /// The fleet never holds a breaker open longer than the peer that tripped said, and never
    /// overrides a local decision: an Open breaker keeps its own deadline, a HalfOpen one lets
    /// its own probes decide, and an Isolated or Disabled breaker (the operator's) is never
    /// moved. A zero `open_for` changes nothing.
    ///
    /// # Examples
    /// ```
    /// use std::time::Duration;
    /// use hotbreaker::{Breaker, Cause, State};
    ///
    /// let breaker = Breaker::builder().open_timeout(Duration::from_secs(30)).build()?;
    /// assert!(breaker.trip_from_fleet(Duration::from_secs(5)));
    /// assert_eq!(breaker.state(), State::Open);
    /// let retry = breaker.metrics().retry_after.unwrap();
    /// assert!(retry <= Duration::from_secs(5), "the peer's 5 s, not the local 30 s");
    /// assert!(!breaker.trip_from_fleet(Duration::from_secs(5)), "already Open");
    ///
    /// breaker.isolate();
    /// assert!(!breaker.trip_from_fleet(Duration::from_secs(5)));
    /// assert_eq!(breaker.state(), State::Isolated);
    /// # Ok::<(), hotbreaker::ConfigError>(())
    /// ```
    pub fn trip_from_fleet(&self, open_for: Duration) -> bool {
        let ns = u64::try_from(open_for.as_nanos()).unwrap_or(u64::MAX);
        if ns == 0 {
            return false;
        }
        let limits = self.rules.load().limits;
        let cause = Cause::Fleet;
        let (_, step) = self.install_with(limits, |_| Event::FleetOpen { cause }, Some(ns));
        step.cause.is_some()
    }

    /// Trips a Closed breaker because a fleet rule held on the fleet-wide window (cause
    /// [`Cause::FleetWindow`]), for the duration its own backoff gives. Returns whether it
    /// opened. Only in the Closed period of `generation`, the one whose window was read: any
    /// other state, or a breaker that closed again since (a new window), is left alone.
    #[cfg_attr(not(feature = "redis"), allow(dead_code))]
    pub(crate) fn trip_from_fleet_window(&self, generation: u64) -> bool {
        let limits = self.rules.load().limits;
        let cause = Cause::FleetWindow;
        let (_, step) = self.install(limits, |_| Event::Trip { generation, cause });
        step.cause.is_some()
    }

    /// Applies a recovery learned from another instance of the fleet (a peer's probe
    /// succeeded): an **Open** breaker half-opens now (cause [`Cause::Fleet`]) instead of waiting
    /// out its deadline, and its own probes decide whether it closes. Any other state is left
    /// alone. Returns whether it half-opened.
    ///
    /// # Examples
    /// ```
    /// use hotbreaker::{Breaker, State};
    ///
    /// let breaker = Breaker::builder()
    ///     .consecutive_failures(1)
    ///     .half_open_successes(1)
    ///     .build()?;
    /// assert!(!breaker.half_open_from_fleet(), "Closed: nothing to do");
    /// breaker.try_acquire().unwrap().failure();
    /// assert!(breaker.half_open_from_fleet());
    /// assert_eq!(breaker.state(), State::HalfOpen);
    /// breaker.try_acquire().expect("a local probe").success();
    /// assert_eq!(breaker.state(), State::Closed);
    /// # Ok::<(), hotbreaker::ConfigError>(())
    /// ```
    pub fn half_open_from_fleet(&self) -> bool {
        let limits = self.rules.load().limits;
        let (_, step) = self.install(limits, |_| Event::FleetHalfOpen);
        step.cause.is_some()
    }

    /// Keeps this breaker for the rest of the process and returns a `'static` reference to it.
    ///
    /// A `&'static Breaker` is `Copy`: a tower `service::BreakerLayer` (feature `tower`)
    /// built on one hands each call's response future a plain reference, where an
    /// `Arc<Breaker>` takes a reference-count increment and decrement per call, two atomic
    /// writes to one line that every calling core shares. On many cores that line, not the
    /// breaker, limits the calls per second; use this for breakers that live as long as the
    /// service (most do). The memory is never given back.
    ///
    /// # Examples
    /// ```
    /// use hotbreaker::Breaker;
    ///
    /// let breaker: &'static Breaker = Breaker::builder().consecutive_failures(5).build()?.leak();
    /// breaker.try_acquire().unwrap().success();
    /// # Ok::<(), hotbreaker::ConfigError>(())
    /// ```
    pub fn leak(self) -> &'static Breaker {
        Box::leak(Box::new(self))
    }

    /// Bytes this breaker asks the allocator for: its counter stripes (an owned stripe's lines
    /// only once a thread has called with it, see [Memory](crate#memory)), count-window slots,
    /// the consecutive-failure check's baselines, its share of its settings (see
    /// [`Registry`](crate::Registry): its breakers of one configuration share theirs) and
    /// listener table. Not counted:
    /// the listener and predicate closures themselves, and the allocator's own cost (each
    /// block's header and size-class rounding, and the padding before the cache-line-aligned
    /// blocks). Resident memory is therefore higher: with glibc's malloc, by about 310 to 440
    /// bytes per breaker in a registry of 100 000 (16 to 19 % in one run, see `docs/operations.md`).
    pub fn heap_bytes(&self) -> usize {
        let slots = match &self.window {
            Window::Count(c) => c.heap_bytes() + std::mem::size_of::<CountWindow>(),
            Window::Time(_) => 0,
        };
        self.stripes.heap_bytes()
            + slots
            + std::mem::size_of_val(&*self.listeners)
            + std::mem::size_of::<Baselines>()
            + self.baselines.heap_bytes()
            + self.settings_share()
    }

    /// This breaker's share of its settings' allocation (the `Arc`'s two counts and the
    /// [`Config`]), divided among the holders: a registry's breakers of one configuration share
    /// one.
    fn settings_share(&self) -> usize {
        let settings = self
            .settings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (2 * std::mem::size_of::<usize>() + std::mem::size_of::<Config>())
            / Arc::strong_count(&settings)
    }

    /// Number of counter stripes (after rounding up to a power of two).
    pub fn stripes(&self) -> usize {
        self.stripes.count()
    }

    // ---- acquiring -------------------------------------------------------------------------

    #[inline(always)]
    pub(crate) fn acquire(&self) -> Result<Ticket, Rejected> {
        let mirror = self.mirror();
        if mirror.passes_freely() {
            let throttle = self.hot.throttle.load();
            if throttle.is_active() {
                return self.acquire_throttled(mirror, throttle);
            }
            Ok(Ticket::from_mirror(mirror, self.issue_time()))
        } else {
            self.acquire_other(mirror)
        }
    }

    /// Acquire while Closed or Disabled with a throttle probability published: draw, and turn
    /// the call away if the draw says so. A probability computed for another generation (or a
    /// Disabled breaker) throttles nothing.
    #[cold]
    #[inline(never)]
    fn acquire_throttled(&self, mirror: Mirror, throttle: Published) -> Result<Ticket, Rejected> {
        if mirror.kind() == State::Closed && throttle.is_for(mirror.generation()) {
            let draw = match &self.draws {
                Some(source) => (**source)(),
                None => throttle::draw(),
            };
            if throttle::rejects(draw, throttle.parts()) {
                self.throttled(mirror.generation());
                return Err(Rejected::THROTTLED);
            }
            // Admitted while it sheds: its Success recomputes the probability (`shed_less`).
            return Ok(Ticket::from_mirror(mirror, self.issue_time()).while_shedding());
        }
        Ok(Ticket::from_mirror(mirror, self.issue_time()))
    }

    /// After a Closed outcome of `generation` that the dependency did not refuse (the Success of
    /// a call admitted while it shed, an Ignored outcome, a dropped permit) was counted at `now`:
    /// while the throttle sheds, its probability is computed again, so that it comes down as
    /// soon as the window does (with few requests, one outcome moves it a lot). Sums the window:
    /// every such outcome while it sheds, none while it does not. A Success of a call admitted
    /// before it began to shed takes the fast path and leaves it to the next one.
    #[cold]
    #[inline(never)]
    fn shed_less(&self, generation: u64, now: u64) {
        let published = self.hot.throttle.load();
        if published.is_active() && published.is_for(generation) {
            self.rethrottle(generation, now);
        }
    }

    /// A Closed call of `generation` ended Ignored, or its permit was dropped: with a throttle,
    /// one of the window's accepts (see `throttle.rs`).
    #[cold]
    #[inline(never)]
    fn answered(&self, generation: u64) {
        let Window::Time(w) = &self.window else {
            return; // The throttle runs on a time window only.
        };
        if self.rules.load().throttle.is_none() || self.mirror().generation() != generation {
            return;
        }
        let now = self.clock.real_ns();
        w.add_answered(&self.stripes, generation, now);
        self.shed_less(generation, now);
    }

    /// Counts a throttled call of `generation` (lifetime total and the window's requests), and
    /// computes the probability again if this is the first throttled call of a new interval.
    fn throttled(&self, generation: u64) {
        let Window::Time(w) = &self.window else {
            return; // The throttle runs on a time window only.
        };
        let now = self.clock.real_ns();
        w.add_throttled(&self.stripes, generation, now);
        // Relaxed: a hint (module docs).
        if w.interval(now) != self.stats.throttle_interval.load(Ordering::Relaxed) {
            self.rethrottle(generation, now);
        }
    }

    /// Computes the throttle's probability for Closed `generation` from the window at `now` and
    /// publishes it (see `throttle.rs`). Does nothing without a throttle (beyond clearing a
    /// probability a reconfiguration left behind) or once `generation` has ended.
    #[cold]
    #[inline(never)]
    fn rethrottle(&self, generation: u64, now: u64) {
        let before = self.hot.throttle.load_for_update();
        // The rules as of that load: a `clear` it saw was stored after the rules that switched
        // the throttle off (see `throttle.rs`).
        let rules = &self.rules.load();
        if rules.throttle.is_none() && !before.is_active() {
            return;
        }
        let word = self.word();
        if word.kind() != State::Closed || word.generation() != generation {
            return;
        }
        let stats = self.window_stats(generation, now);
        self.publish_throttle(before, rules, generation, now, &stats);
    }

    /// Publishes the throttle's probability for Closed `generation`, computed from `stats`: the
    /// window read at `now`, after `before` was loaded. Returns it.
    fn publish_throttle(
        &self,
        before: Published,
        rules: &RuleSet,
        generation: u64,
        now: u64,
        stats: &WindowStats,
    ) -> u32 {
        let Window::Time(w) = &self.window else {
            return 0; // The throttle runs on a time window only.
        };
        let parts = match rules.throttle {
            Some(t) => t.parts(stats.requests(), stats.accepts(), rules.minimum_calls),
            None => 0,
        };
        // Relaxed: a hint (module docs).
        self.stats
            .throttle_interval
            .store(w.interval(now), Ordering::Relaxed);
        if self
            .hot
            .throttle
            .replace(before, Published::new(generation, parts))
            && parts != 0
            && self.rules.load().throttle.is_none()
        {
            // Switched off while this was computed: its `clear` may have been overwritten.
            self.hot.throttle.clear(generation);
        }
        parts
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
        self.hot.slow_ns.load(Ordering::Relaxed)
    }

    /// Acquire while Open, HalfOpen or Isolated. The common Open case (before the deadline) is a
    /// real-clock read, a load and one counter increment. Whether the deadline has passed is
    /// always decided on the real clock: quanta's recent time, guarded by counting repeats, can
    /// be old by any amount of time on a thread's first sight of it, so a stopped upkeep could
    /// otherwise keep the breaker Open.
    ///
    /// The mirror may lag the state word; a rejection decided from it is one that raced the
    /// transition it has not seen yet (a transition out of Open needs its deadline passed, or a
    /// manual call still in progress).
    ///
    /// The compact deadline answers first (a 64-bit load on every host); the exact 128-bit cell
    /// only when it cannot: just after a transition, at the deadline, or past its horizon.
    #[inline]
    fn acquire_other(&self, mirror: Mirror) -> Result<Ticket, Rejected> {
        if mirror.kind() == State::Open {
            let now = self.clock.real_ns();
            let compact = self.hot.compact_deadline.load();
            if let Some(left) = compact_deadline::remaining(compact, mirror.generation(), now) {
                self.stripes.add_rejected();
                return Err(Rejected {
                    state: State::Open,
                    retry_after_ns: Some(left),
                });
            }
            return self.acquire_open_exact(mirror, now);
        }
        self.acquire_decide(self.clock.real_ns())
    }

    /// Acquire while Open when the compact deadline could not answer: from the exact cell.
    #[cold]
    #[inline(never)]
    fn acquire_open_exact(&self, mirror: Mirror, now: u64) -> Result<Ticket, Rejected> {
        match self.exact.deadline.read(mirror.generation()) {
            Some(deadline) if now < deadline => {
                self.stripes.add_rejected();
                Err(Rejected {
                    state: State::Open,
                    retry_after_ns: Some(deadline - now),
                })
            }
            _ => self.acquire_decide(now),
        }
    }

    /// Acquire by the state machine: half-opening, half-open admission, timeouts, lost races.
    #[cold]
    #[inline(never)]
    fn acquire_decide(&self, now: u64) -> Result<Ticket, Rejected> {
        let rules = self.rules.load();
        let (installed, step) = self.install(rules.limits, |word| Event::Acquire {
            deadline_passed: word.kind() == State::Open
                && self
                    .exact
                    .deadline
                    .read(word.generation())
                    .is_some_and(|deadline| now >= deadline),
            half_open_expired: word.kind() == State::HalfOpen
                && self.half_open_expired(&rules, word.generation(), now),
        });
        if step.admit {
            return Ok(Ticket::new(
                installed.generation(),
                installed.kind(),
                self.issue_time(),
            ));
        }
        Err(self.reject(installed, now))
    }

    #[inline]
    fn reject(&self, word: Word, now: u64) -> Rejected {
        self.stripes.add_rejected();
        let retry_after_ns = match word.kind() {
            State::Open => Some(self.open_remaining(word, now)),
            _ => None,
        };
        Rejected {
            state: word.kind(),
            retry_after_ns,
        }
    }

    /// Time left until an Open word's deadline; before the deadline is published, the nominal
    /// duration of this opening (an upper bound).
    fn open_remaining(&self, word: Word, now: u64) -> u64 {
        match self.exact.deadline.read(word.generation()) {
            Some(deadline) => deadline.saturating_sub(now),
            None => self.rules.load().backoff.nanos(word.attempt()),
        }
    }

    fn half_open_expired(&self, rules: &RuleSet, generation: u64, now: u64) -> bool {
        rules.half_open_timeout_ns.is_some()
            && self
                .exact
                .deadline
                .read(generation)
                .is_some_and(|deadline| deadline != deadline::NONE && now >= deadline)
    }

    // ---- recording -------------------------------------------------------------------------

    /// Records an outcome. The common case, an untimed Success of a Closed or Disabled permit
    /// with a time window, is inlined. On the caller's owned stripe it is a recent-time read,
    /// two compares, a look at the thread's own failure run and a plain increment (see
    /// `window/owned.rs`); on a shared stripe, a load of the mirror, a guarded recent-time read and one
    /// CAS. Nothing shared is written on an owned stripe, except by a thread's first call on the
    /// breaker, which takes its stripe's lines from the process-wide reserve
    /// (`stripe_reserve.rs`).
    #[inline(always)]
    pub(crate) fn record_ticket(&self, ticket: Ticket, outcome: Outcome) {
        // An untimed permit (`issued_ns == 0`) is never slow, whatever the rules say now.
        // A late permit (the mirror has moved on) goes the slow way: its outcome counts in no
        // window.
        if outcome == Outcome::Success
            && ticket.issued_ns == 0
            && ticket.passed_freely()
            && ticket.issued_by(self.mirror())
        {
            let generation = ticket.generation();
            let owned = self.stripes.owned();
            // The owned stripes' handle says whether there is a time window and whether the
            // clock is real, so that the common case reads no other line of the breaker.
            let counted = match owned.fast_head(thread_slot::current()) {
                Some((head, time)) => {
                    head.try_success(generation, time.recent_at(), || self.clock.real_at())
                }
                None => self.try_success_elsewhere(generation),
            };
            if counted {
                return;
            }
        }
        self.record_other(ticket, outcome);
    }

    /// A Success of a Closed `generation` that [`fast_head`](crate::window::owned::Owned::fast_head)
    /// did not place: on the thread's owned stripe by the clock's own recent time (a mock or a
    /// test's clock), on a shared stripe if the thread has no owned one, else left to the slow
    /// way (false): a count window, or a stripe just claimed.
    #[inline(never)]
    fn try_success_elsewhere(&self, generation: u64) -> bool {
        let Window::Time(w) = &self.window else {
            return false;
        };
        if let Some(head) = self.stripes.owned().head(thread_slot::current()) {
            return head.try_success(generation, self.clock.recent_at(), || self.clock.real_at());
        }
        match self.stripes.mine() {
            Writer::Shared(s) => {
                w.try_add_success(&self.stripes, s, generation, self.clock.now_ns())
            }
            // Just claimed: the slow way this once.
            Writer::Owned(_) => false,
        }
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
        match ticket.state() {
            State::HalfOpen => self.release_slot(ticket.generation()),
            State::Closed => self.answered(ticket.generation()),
            _ => {}
        }
    }

    #[inline(never)]
    fn release_slot(&self, generation: u64) {
        let limits = self.rules.load().limits;
        self.install(limits, |_| Event::Release { generation });
    }

    /// Whether a call of `ticket` that ends now is slow under the current rules (for telemetry;
    /// the recording judges it again itself).
    #[cfg(any(feature = "future", feature = "tracing", feature = "metrics"))]
    pub(crate) fn judge_slow(&self, ticket: Ticket) -> bool {
        ticket.issued_ns != 0 && self.is_slow(&self.rules.load(), ticket, self.clock.now_ns())
    }

    /// Nanoseconds on the breaker's clock (for telemetry).
    #[cfg(feature = "metrics")]
    pub(crate) fn clock_now_ns(&self) -> u64 {
        self.clock.now_ns()
    }

    /// Whether a call of `ticket` that ended at `now` was slow under `rules`.
    fn is_slow(&self, rules: &RuleSet, ticket: Ticket, now: u64) -> bool {
        if ticket.issued_ns == 0 {
            return false;
        }
        let took = now.saturating_sub(ticket.issued_ns);
        rules.slow.is_some_and(|s| match s.relative {
            None => took > s.duration_ns,
            Some(multiplier) => {
                took > s.duration_ns
                    && took
                        > self
                            .stats
                            .typical
                            .load()
                            .threshold_ns(f64::from(multiplier), s.duration_ns)
            }
        })
    }

    /// The learned typical latency, with a relative slow-call rule and at least one sample.
    fn typical_latency(&self) -> Option<Duration> {
        let relative = self.rules.load().slow.is_some_and(|s| s.relative.is_some());
        let typical = self.stats.typical.load().typical_ns();
        (relative && typical > 0).then(|| Duration::from_nanos(typical))
    }

    /// Offers the duration of a timed Success to the typical-latency estimator of a relative
    /// slow-call rule: the first one of each sampling period is learned (see `latency.rs`).
    fn learn_latency(&self, rules: &RuleSet, ticket: Ticket, now: u64) {
        if ticket.issued_ns == 0 || rules.slow.is_none_or(|s| s.relative.is_none()) {
            return;
        }
        let period = match self.window.spec() {
            WindowSpec::Time { width_ns, .. } => width_ns,
            WindowSpec::Count { .. } => latency::COUNT_WINDOW_PERIOD,
        };
        self.stats
            .typical
            .sample(now.saturating_sub(ticket.issued_ns), now / period);
    }

    /// A permit issued while Closed or Disabled.
    fn record_closed(&self, ticket: Ticket, outcome: Outcome) {
        let failure = match outcome {
            Outcome::Success => false,
            Outcome::Failure => true,
            Outcome::Ignored => {
                self.stripes.add_one(self.stripes.mine(), Total::Ignored);
                if ticket.state() == State::Closed {
                    self.answered(ticket.generation());
                }
                return;
            }
        };
        // Slow calls are timed on the clock that timed their start; where the outcome lands and
        // what the trip rules see are decided on the real clock (see `clock.rs`).
        let rules = self.rules.load();
        let ended = self.clock.now_ns();
        let sample = Sample {
            failure,
            slow: self.is_slow(&rules, ticket, ended),
        };
        if !failure {
            // After the verdict: a call is judged against what was learned before it.
            self.learn_latency(&rules, ticket, ended);
        }
        let now = self.clock.real_ns();
        let generation = ticket.generation();
        let writer = self.stripes.mine();
        // The 64-bit mirror, not the 128-bit state word: on x86-64 without AVX a 128-bit load is
        // a locked `cmpxchg16b`, a write to the line every call reads. The mirror may lag a
        // transition for a moment; a Failure that passes this check for a generation just ended
        // lands in that generation's bucket (no rule reads it) and its trip finds the word moved.
        if self.mirror().generation() != generation {
            // Late: lifetime totals only. A transition racing past this check can
            // still let the sample into a bucket of the old generation, which no trip rule reads.
            self.stripes.add_late(sample);
            return;
        }
        match &self.window {
            Window::Time(w) => {
                let trust_recent = self.clock.recent_is_fresh(now);
                w.record_as(&self.stripes, writer, generation, now, sample, trust_recent);
            }
            Window::Count(w) => {
                w.record(generation, sample);
                if let Writer::Owned(i) = writer {
                    self.stripes.owned().enter(i, generation);
                }
                self.stripes.add_sample(writer, sample);
            }
        }
        if ticket.state() != State::Closed {
            return; // Disabled: counted, never trips.
        }
        if failure && self.consecutive_trip(&rules, writer, generation, now) {
            return;
        }
        if failure || sample.slow {
            self.evaluate(&rules, writer, generation, now, failure);
        }
        if !failure && ticket.issued_while_shedding() {
            self.shed_less(generation, now);
        }
    }

    /// The owned stripe's line of `writer`, if it writes one.
    fn head(&self, writer: Writer) -> Option<&Head> {
        match writer {
            Writer::Owned(i) => self.stripes.owned().head(i as u32),
            Writer::Shared(_) => None,
        }
    }

    /// After a Closed Failure of `generation` counted on `writer`'s stripe: the
    /// consecutive-failure rule (see `consecutive.rs`). Returns whether it tripped (by this
    /// call's swap or, racing it, another's).
    fn consecutive_trip(&self, rules: &RuleSet, writer: Writer, generation: u64, now: u64) -> bool {
        let Some(k) = rules.consecutive_failures else {
            return false;
        };
        // `claimed`: the owner's stripe never counted a Success, so its run may have begun on a
        // shared stripe before the block was claimed (`window/owned.rs`, "Lines on first call"): its
        // first Failure here checks too (see `consecutive.rs`, "When a check runs").
        let (local, claimed) = match writer {
            Writer::Owned(i) => self
                .stripes
                .owned()
                .head(i as u32)
                .map_or((0, false), |head| {
                    (head.lengthen_run(generation, now), head.never_succeeded())
                }),
            Writer::Shared(s) => (self.stripes.lengthen_shared_run(s, generation), false),
        };
        let run = if k == 1 {
            1
        } else if local >= 2 || (local == 1 && claimed) {
            self.baselines.check(
                generation,
                local,
                |i| self.stripes.run_view(i, generation),
                || self.clock.real_ns(),
            )
        } else {
            return false; // it starts a local run after a Success: nothing to check
        };
        if run < u64::from(k) {
            return false;
        }
        let cause = Cause::ConsecutiveFailures;
        self.install(rules.limits, |_| Event::Trip { generation, cause });
        true
    }

    /// After a Closed Failure or slow call of `generation` counted on `writer`'s stripe: reads
    /// the window and applies the window rules and the throttle, when the evaluation budget
    /// says a rule could hold or the last evaluation is of another bucket interval (see
    /// `evaluation.rs`).
    fn evaluate(&self, rules: &RuleSet, writer: Writer, generation: u64, now: u64, failure: bool) {
        let predicate = self.stats.predicate.as_ref();
        if !policy::reads_window(rules, predicate) && rules.throttle.is_none() {
            return;
        }
        let tag = self.window.evaluation_tag(generation, now);
        let seen = self.stats.evaluation.load();
        let head = self.head(writer);
        let due =
            !seen.is_of(tag) || head.is_none_or(|head| head.spend_budget(seen.round, seen.quota));
        if due {
            self.evaluate_now(rules, head, (seen, tag), generation, now, failure);
        }
    }

    /// Reads the window of Closed `generation` once: trips if a window rule holds, else
    /// recomputes the throttle (after a Failure: a slow Success leaves it as it is) and
    /// publishes the next evaluation budget.
    #[cold]
    #[inline(never)]
    fn evaluate_now(
        &self,
        rules: &RuleSet,
        head: Option<&Head>,
        (seen, tag): (Evaluation, u64),
        generation: u64,
        now: u64,
        failure: bool,
    ) {
        // The rules as of now, read after the published evaluation (see `evaluation.rs`,
        // "Reconfiguration"): a quota is never computed under rules replaced before it.
        let fresh = self.rules.load();
        let rules = if fresh == *rules { rules } else { &fresh };
        let predicate = self.stats.predicate.as_ref();
        let word = self.word();
        if word.kind() != State::Closed || word.generation() != generation {
            return;
        }
        // Loaded before the window, as `rethrottle` does (see `throttle.rs`).
        let throttle_before = self.hot.throttle.load_for_update();
        let stats = self.window_stats(generation, now);
        if let Some(cause) = policy::window_cause(rules, predicate, &stats) {
            self.install(rules.limits, |_| Event::Trip { generation, cause });
            return;
        }
        let mut events = policy::events_until_possible(rules, predicate, &stats, self.window.cap());
        if rules.throttle.is_some() || throttle_before.is_active() {
            let parts = if failure {
                self.publish_throttle(throttle_before, rules, generation, now, &stats)
            } else {
                throttle_before.parts()
            };
            // Recomputed on every Failure while it sheds; while it does not, only once enough
            // Failures could start it.
            let until = match rules.throttle {
                Some(t) if parts == 0 => t.failures_until_active(stats.requests(), stats.accepts()),
                _ => 1,
            };
            events = events.min(until);
        }
        let quota = evaluation::quota(events, self.stripes.count() as u64);
        if let Some(round) = self.stats.evaluation.publish(seen, tag, quota) {
            if let Some(head) = head {
                head.reset_budget(round);
            }
        }
    }

    /// A permit issued while HalfOpen: a probe.
    fn record_probe(&self, ticket: Ticket, outcome: Outcome) {
        let rules = self.rules.load();
        let now = self.clock.real_ns();
        let stripe = self.stripes.mine();
        let generation = ticket.generation();
        let event = match outcome {
            Outcome::Ignored => {
                self.stripes.add_one(stripe, Total::Ignored);
                Event::Release { generation }
            }
            Outcome::Success | Outcome::Failure => {
                let failure = outcome == Outcome::Failure;
                let slow = self.is_slow(&rules, ticket, self.clock.now_ns());
                // A probe belongs to a HalfOpen generation, never to a Closed failure run.
                self.stripes.add_late(Sample { failure, slow });
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
        self.install(rules.limits, |_| event);
    }

    fn window_stats(&self, generation: u64, now: u64) -> WindowStats {
        match &self.window {
            Window::Time(w) => w.stats(&self.stripes, generation, now),
            Window::Count(w) => w.stats(generation),
        }
    }

    /// The window as a report shows it: as [`window_stats`](Breaker::window_stats), reading
    /// less of the stripes whose owners are idle.
    fn window_report(&self, generation: u64, now: u64) -> WindowStats {
        match &self.window {
            Window::Time(w) => w.report(&self.stripes, generation, now),
            Window::Count(w) => w.stats(generation),
        }
    }

    // ---- transitions -----------------------------------------------------------------------

    /// The one path by which the state word changes: runs `state::next` on the current word and
    /// `event(word)` in a compare-and-swap loop, re-deciding on the fresh word after every
    /// conflict. The winner of a transition publishes its deadline and calls the listeners.
    /// Returns the word in force afterwards and the step that produced it.
    fn install(&self, limits: state::Limits, event: impl Fn(Word) -> Event) -> (Word, Step) {
        self.install_with(limits, event, None)
    }

    /// [`install`](Breaker::install), with the duration of an opening this transition makes
    /// given by the caller (a fleet trip) instead of the backoff. Always inlined: `install`
    /// passes a constant `None`, so the callers' paths are what they were without it.
    #[inline(always)]
    fn install_with(
        &self,
        limits: state::Limits,
        event: impl Fn(Word) -> Event,
        open_for: Option<u64>,
    ) -> (Word, Step) {
        // Decided on a fresh word: a decision to leave the word alone is final, so it must not
        // be made on a stale one.
        let mut word = self.word();
        loop {
            let step = state::next(word, event(word), limits);
            let Some(new) = step.next else {
                return (word, step);
            };
            // AcqRel / Acquire: see the module's "Orderings".
            match self.exact.state.compare_exchange_weak(
                word.bits(),
                new.bits(),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    if let Some(cause) = step.cause {
                        self.hot.mirror.publish(new);
                        self.after_transition(word, new, cause, open_for);
                    }
                    return (new, step);
                }
                Err(fresh) => word = Word::from_bits(fresh),
            }
        }
    }

    /// Called once per transition, by the thread whose swap installed `to`. Deadlines are
    /// measured from the real clock, exactly: `opened at + duration`, in nanoseconds.
    ///
    /// `open_for`: a fleet trip's duration, capped at the longest opening the backoff allows.
    #[cold]
    fn after_transition(&self, from: Word, to: Word, cause: Cause, open_for: Option<u64>) {
        let now = self.clock.real_ns();
        let rules = self.rules.load();
        let generation = to.generation();
        let deadline = match to.kind() {
            State::Open => match open_for {
                Some(ns) => now.saturating_add(ns.min(rules.backoff.nanos(state::MAX_ATTEMPT))),
                None => {
                    let seed = crate::backoff::mix(generation ^ now.rotate_left(32));
                    now.saturating_add(rules.backoff.nanos_jittered(to.attempt(), seed))
                }
            },
            State::HalfOpen => rules
                .half_open_timeout_ns
                .map_or(deadline::NONE, |t| now.saturating_add(t)),
            _ => deadline::NONE,
        };
        self.exact.deadline.publish(generation, deadline);
        self.hot
            .compact_deadline
            .follow(|| self.exact.deadline.word());
        // Unless a later transition has already published itself (it resets the word too).
        if self.mirror().generation() == generation {
            self.hot.throttle.reset(generation);
        }
        match to.kind() {
            // Relaxed: statistics (module docs).
            State::Open => {
                self.stats.times_opened.fetch_add(1, Ordering::Relaxed);
            }
            State::Closed | State::Disabled => {
                // Relaxed: which window metrics() shows while not Closed; display only.
                self.stats
                    .window_generation
                    .store(generation, Ordering::Relaxed);
                if to.kind() == State::Closed {
                    self.baselines.restart(
                        generation,
                        |i| self.stripes.run_view(i, generation),
                        || self.clock.real_ns(),
                    );
                }
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
            // published, and nothing here holds a lock.
            let _ = catch_unwind(AssertUnwindSafe(|| listener(&transition)));
        }
    }

    /// Builds a breaker on a clock whose recent and real readings are set by hand.
    #[cfg(test)]
    pub(crate) fn on_split_clock(
        builder_config: &Config,
        clock: std::sync::Arc<crate::clock::split::SplitClock>,
    ) -> Breaker {
        let rules = Rules::validate(builder_config, None).expect("valid test configuration");
        Breaker::new(rules, Box::new([]), Clock::Split(clock))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering as StdOrdering;

    use super::*;
    use crate::clock::split::SplitClock;

    const MS: u64 = 1_000_000;

    fn open_for_20ms(clock: &Arc<SplitClock>) -> Breaker {
        let config = Config {
            consecutive_failures: Some(1),
            open_timeout: Some(Duration::from_millis(20)),
            half_open_permits: Some(1),
            ..Config::default()
        };
        let b = Breaker::on_split_clock(&config, Arc::clone(clock));
        b.try_acquire().unwrap().failure();
        assert_eq!(b.state(), State::Open);
        b
    }

    #[test]
    fn a_run_begun_on_a_shared_stripe_goes_on_on_the_block_claimed_mid_run() {
        let clock = Arc::new(SplitClock::default());
        clock.set(1_000 * MS);
        let config = Config {
            consecutive_failures: Some(3),
            // A ring of 251 marks: a block size no other test uses, so no other test takes
            // from or gives to this reserve.
            time_window: Some(crate::TimeWindow {
                window: Duration::from_secs(250),
                buckets: 250,
            }),
            stripes: Some(crate::rules::defaults::MAX_STRIPES),
            ..Config::default()
        };
        let b = Breaker::on_split_clock(&config, Arc::clone(&clock));
        let reserve = b.stripes.owned().reserve();
        let mut held = Vec::new();
        while let Some(block) = reserve.take() {
            held.push(block);
        }
        for _ in 0..2 {
            b.try_acquire().unwrap().failure();
            clock.advance_real(MS);
        }
        assert_eq!(b.state(), State::Closed);
        assert_eq!(b.stripes.owned().taken(), 0, "both on a shared stripe");
        reserve.give(held, usize::MAX);
        b.try_acquire().unwrap().failure();
        assert_eq!(
            b.stripes.owned().taken(),
            1,
            "the third on the thread's own block"
        );
        assert_eq!(
            b.state(),
            State::Open,
            "the third Failure in a row opens, across the two stripes"
        );
    }

    #[test]
    fn a_stopped_upkeep_cannot_keep_the_breaker_open() {
        let clock = Arc::new(SplitClock::default());
        clock.set(1_000 * MS);
        let b = open_for_20ms(&clock);
        // The upkeep stops: quanta's recent time stays at 1 s while real time moves on.
        clock.advance_real(19 * MS);
        assert!(b.try_acquire().is_err(), "before the deadline");
        clock.advance_real(MS);
        let permit = b
            .try_acquire()
            .expect("admitted at the deadline in real time");
        assert_eq!(b.state(), State::HalfOpen);
        permit.success();
        clock.advance_real(300 * MS);
        assert_eq!(b.state(), State::Closed);
    }

    #[test]
    fn a_stopped_upkeep_cannot_stop_the_window_sliding() {
        let clock = Arc::new(SplitClock::default());
        clock.set(0);
        let config = Config {
            failure_rate: Some(0.5),
            minimum_calls: Some(3),
            ..Config::default()
        };
        let b = Breaker::on_split_clock(&config, Arc::clone(&clock));
        for _ in 0..2 {
            b.try_acquire().unwrap().failure();
        }
        assert_eq!(b.metrics().window.failures, 2);
        // Recent time frozen at 0; eleven seconds of real time pass in 1 ms calls.
        for _ in 0..11_000 {
            clock.advance_real(MS);
            b.try_acquire().unwrap().success();
        }
        let w = b.metrics().window;
        assert_eq!(w.failures, 0, "the old failures left the window: {w:?}");
        assert!(w.calls < 11_000, "only the last 10 s count: {w:?}");
        assert_eq!(clock.recent.load(StdOrdering::SeqCst), 0);
    }

    #[test]
    fn an_open_deadline_is_exact_to_the_nanosecond() {
        let clock = Arc::new(SplitClock::default());
        clock.set(MS / 2); // opened at 0.5 ms
        let config = Config {
            consecutive_failures: Some(1),
            open_timeout: Some(Duration::from_secs(60)),
            ..Config::default()
        };
        let b = Breaker::on_split_clock(&config, Arc::clone(&clock));
        b.try_acquire().unwrap().failure();
        clock.set(MS / 2 + 60_000 * MS - 1);
        let r = b.try_acquire().unwrap_err();
        assert_eq!(r.retry_after(), Some(Duration::from_nanos(1)));
        clock.set(MS / 2 + 60_000 * MS);
        assert!(
            b.try_acquire().is_ok(),
            "inclusive deadline at exactly +60 s"
        );
    }

    const HOUR: u64 = 3_600_000 * MS;

    /// The upkeep stops at t = 0, and a thread's next reading of the frozen recent value is one
    /// the freeze check skips: failures are still placed and judged on the real clock, so an hour
    /// later the old failures are out of the window.
    #[test]
    fn sparse_calls_on_a_frozen_recent_time_never_trip_on_hour_old_failures() {
        let clock = Arc::new(SplitClock::default());
        clock.set(0);
        let config = Config {
            failure_rate: Some(0.5),
            minimum_calls: Some(4),
            time_window: Some(crate::TimeWindow {
                window: Duration::from_secs(10),
                buckets: 10,
            }),
            ..Config::default()
        };
        let b = Breaker::on_split_clock(&config, Arc::clone(&clock));
        // Each record reads the clock once: fresh, repeat 1 (checked), repeat 2 (checked).
        b.try_acquire().unwrap().failure();
        b.try_acquire().unwrap().failure();
        b.try_acquire().unwrap().success();
        // An hour of real time passes with the upkeep stopped.
        clock.advance_real(HOUR);
        // Repeat 3: not checked. At real time 1 h the window holds this one call only.
        b.try_acquire().unwrap().failure();
        assert_eq!(
            b.state(),
            State::Closed,
            "tripped on failures recorded an hour ago: {:?}",
            b.metrics()
        );
    }

    /// Same schedule for the half-open timeout: an acquire an hour after a 5 s half-open timeout
    /// reopens the breaker instead of admitting another probe.
    #[test]
    fn sparse_calls_on_a_frozen_recent_time_still_time_half_open_out() {
        let clock = Arc::new(SplitClock::default());
        clock.set(0);
        let config = Config {
            consecutive_failures: Some(1),
            open_timeout: Some(Duration::from_secs(1)),
            half_open_permits: Some(2),
            half_open_successes: Some(2),
            half_open_timeout: Some(Duration::from_secs(5)),
            ..Config::default()
        };
        let b = Breaker::on_split_clock(&config, Arc::clone(&clock));
        b.try_acquire().unwrap().failure(); // clock: fresh
        assert_eq!(b.state(), State::Open);
        clock.advance_real(1_000 * MS); // upkeep already stopped: recent stays 0
        let p1 = b.try_acquire().unwrap(); // real clock for Open
        assert_eq!(b.state(), State::HalfOpen);
        let _ = b.clock.now_ns(); // repeat 1 (checked, lag 1 s -> stale)...
        // ... unless the recent time moves again: the upkeep ticks once, then stops for good.
        clock
            .recent
            .store(1_000 * MS, std::sync::atomic::Ordering::SeqCst);
        let _ = b.clock.now_ns(); // fresh
        let _ = b.clock.now_ns(); // repeat 1, checked, lag 0
        let _ = b.clock.now_ns(); // repeat 2, checked, lag 0
        clock.advance_real(HOUR);
        // Repeat 3, unchecked: the half-open deadline (6 s) passed an hour ago.
        let second = b.try_acquire();
        assert!(
            second.is_err() && b.state() == State::Open,
            "half-open timeout ignored an hour late: state {:?}, second probe admitted: {}",
            b.state(),
            second.is_ok()
        );
        drop(p1);
    }
}
/// The lines of a breaker, as docs/internals.md lists them ("Which line each word is on").
#[cfg(test)]
mod line_layout {
    use std::mem::{align_of, offset_of, size_of};

    use super::{Breaker, Exact, Hot, Stats};

    const LINE: usize = 128;

    #[test]
    fn a_success_reads_the_first_64_bytes_of_the_breaker_only() {
        assert_eq!(align_of::<Breaker>(), LINE);
        assert_eq!(offset_of!(Breaker, hot), 0);
        assert!(size_of::<Hot>() <= 32);
        // The owned stripes' handle: the first 32 bytes of the stripes (see `window/owned.rs`).
        assert_eq!(offset_of!(Breaker, stripes), 32);
        assert_eq!(size_of::<Breaker>(), 768);
    }

    #[test]
    fn the_exact_state_and_the_statistics_stay_off_the_hot_line() {
        assert!(size_of::<Stats>() <= LINE && size_of::<Exact>() <= 32);
        let stats = offset_of!(Breaker, stats);
        assert_eq!(stats % LINE, 0);
        // The exact state is swapped by transitions and half-open admissions: not on the
        // 64 bytes every call reads.
        let exact = offset_of!(Breaker, exact);
        assert!(exact >= 64 && exact / LINE != stats / LINE, "{exact}");
        let others = [
            offset_of!(Breaker, baselines),
            offset_of!(Breaker, window),
            offset_of!(Breaker, rules),
            offset_of!(Breaker, settings),
            offset_of!(Breaker, listeners),
            offset_of!(Breaker, clock),
            offset_of!(Breaker, draws),
        ];
        for offset in others {
            assert!(
                offset / LINE != 0 && offset / LINE != stats / LINE,
                "{offset}"
            );
        }
    }
}
