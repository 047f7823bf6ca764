//! The breaker: ties the state word, the deadline cell, the window, the rules and the clock
//! together. Decisions are made by pure functions (`state::next`, `policy::window_cause`); this
//! module only loads, swaps and publishes. Here the struct, its lines and its size; then one file
//! a step: `acquire.rs`, `record.rs` (with `slow.rs` and `shedding.rs`, the throttle's side),
//! `transitions.rs`, and the operator's side: `control.rs`, `reconfigure.rs`, `snapshot.rs`.
//!
//! # Orderings
//! - **State word** (`u128`). Loads are `Acquire` and successful swaps `AcqRel`: a thread that
//!   sees generation `g` also sees everything the thread that installed `g` did before its swap,
//!   and a swap's winner sees everything before the word it replaced. Failed swaps load `Acquire`
//!   for the same reason, since the loop decides again from the fresh word.
//! - **Deadline cell.** Published with `Release` after the state swap and read with `Acquire`
//!   (see `state/deadline.rs`); a reader that sees the state but not yet its deadline treats the
//!   deadline as unknown.
//! - **Window and lifetime totals.** See `window/mod.rs`: bucket words are self-contained, so no
//!   decision depends on reading them in any order with the state word.
//! - **Rules.** See `rules/cell.rs`: a reader gets one whole version. `slow_ns` mirrors the
//!   slow-call threshold for the success fast path (`Relaxed`: it only picks between the fast path
//!   and the path that reads the rules; a permit issued without a timestamp is never slow). Both
//!   are written under the configuration lock, so racing `reconfigure` calls leave them agreeing.
//! - **Typical latency** (relative slow calls). `Relaxed`: one self-contained word, see
//!   `latency.rs`.
//! - **StateMirror.** See `state/mirror.rs`.
//! - **Consecutive-failure baselines, evaluation budget.** See `consecutive.rs` and
//!   `evaluation.rs`.
//! - **Throttle.** The published probability: see `throttle/published.rs` (`PublishedCell`). The
//!   interval of its last computation (`throttle_interval`) is `Relaxed`: a hint of when to
//!   compute again, ordered with nothing.
//! - **times_opened, window_generation, reported totals.** `Relaxed`: statistics for
//!   `metrics()`, ordered with nothing else.
//!
//! # What a call writes
//! A Success writes only its own thread's line (`window/owned.rs`). A Closed Failure that does not
//! trip writes its own line too; a shared line only when its thread's local run is two or
//! more (the consecutive check renews its baseline, `consecutive.rs`) or its evaluation
//! budget is spent (`evaluation.rs`). The state word and its mirror, which every call reads,
//! change only on transitions and half-open admissions.

use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_utils::CachePadded;

use crate::clock::TimeSource;
use crate::config::Config;
use crate::consecutive::Baselines;
use crate::error::{ConfigError, Rejected};
use crate::evaluation::{self, Evaluation, EvaluationCell};
use crate::kept_config::KeptConfig;
use crate::latency::{self, TypicalCell};
use crate::metrics::Metrics;
use crate::outcome::Outcome;
use crate::registry::health::HealthView;
use crate::rules::policy;
use crate::rules::{Listener, Predicate, Rules};
use crate::rules::{LiveRules, RulesCell};
use crate::state::compact_deadline::{self, CompactDeadlineCell};
use crate::state::deadline::{self, DeadlineCell};
use crate::state::mirror::{StateMirror, StateMirrorCell};
use crate::state::{self, Cause, Event, State, Step, Word};
use crate::sync::{AtomicU64, AtomicU128, Mutex, Ordering}; // Mutex: off the hot path (config lock)
use crate::thread_slot;
use crate::throttle::{self, DrawSource, Published, PublishedCell};
use crate::ticket::Ticket;
use crate::transition::Transition;
use crate::window::owned::OwnedLine;
use crate::window::{CallerStripe, Sample, Stripes, Total, Window, WindowSpec, WindowStats};

/// Read on every acquire; written by transitions, half-open admissions, the throttle's
/// computation and `reconfigure`. 32 bytes, first in the breaker: the owned stripes' handle
/// follows it on the same 64-byte line (see [`Breaker`]).
#[derive(Debug)]
#[repr(C)]
struct Hot {
    /// The kind and generation of the state word, for the fast paths (see `state/mirror.rs`).
    mirror: StateMirrorCell,
    /// The throttle's rejection probability, for Closed permits (see `throttle/`).
    throttle: PublishedCell,
    /// Slow-call threshold in ns (a relative rule's floor), `u64::MAX` when slow-call detection
    /// is off: a mirror of `rules` for the acquire and success fast paths, written by
    /// `reconfigure` only.
    slow_ns: AtomicU64,
    /// The deadline cell's content in 64 bits, for Open rejections (see `state/compact_deadline.rs`):
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
/// evaluations only; with the two cold fields that fill the rest of its pair of lines.
struct Bookkeeping {
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
    /// The bucket interval of the throttle's last computation (see `throttle/`).
    throttle_interval: AtomicU64,
    /// The dependency's typical latency, for a relative slow-call rule (see `latency.rs`):
    /// read by timed outcomes, written at most once per sampling period.
    typical: TypicalCell,
    /// The custom trip rule: fixed when the breaker is built, read when the window rules are
    /// evaluated (after a Failure or a slow call).
    predicate: Option<Predicate>,
    /// Called by transitions, which write the words above too: never written after the build.
    listeners: Box<[Listener]>,
    /// The settings in force as the user wrote them: packed, or shared with the breakers a
    /// registry built from the same configuration (see `kept_config.rs`). Locked by
    /// `reconfigure` and `config` only, off every call's path.
    settings: Mutex<KeptConfig>, // off the hot path: reconfigure() and config() only
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
/// whose first 32 bytes are the owned stripes' handle with the home cell, and whose home line
/// (the breaker's first caller's stripe) has the second 128 bytes to itself, so that a Success
/// of that caller reads the breaker's first 64-byte line and its own line, both at fixed offsets
/// (a unit test holds them); then the exact state, the rules, the window and the clock, and the
/// statistics on lines of their own.
#[repr(C, align(128))]
pub struct Breaker {
    hot: Hot,
    stripes: Stripes,
    exact: Exact,
    // Cold words fill the rest of the exact state's line: two pointers read by Failures and
    // throttled admissions, never written after the build.
    /// The consecutive-failure check's baselines (see `consecutive.rs`), on lines of their own.
    baselines: Box<Baselines>,
    /// Where the throttle's draws come from: the calling thread's generator unless a test
    /// replays its own (a thin pointer: a breaker's inline size is budgeted).
    pub(crate) draws: Option<Arc<DrawSource>>,
    window: Window,
    rules: RulesCell,
    clock: TimeSource,
    bookkeeping: CachePadded<Bookkeeping>,
}

impl fmt::Debug for Breaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Breaker")
            .field("state", &self.word())
            .field("rules", &self.rules.load())
            .finish_non_exhaustive()
    }
}

mod acquire;
mod control;
mod reconfigure;
mod record;
mod shedding;
mod slow;
mod snapshot;
#[cfg(test)]
mod tests;
mod transitions;

impl Breaker {
    pub(crate) fn new(rules: Rules, listeners: Box<[Listener]>, clock: TimeSource) -> Breaker {
        let window = Window::of(rules.window);
        let set = LiveRules::of(&rules);
        let mut stripes = Stripes::new(rules.stripes, rules.window.buckets(), clock.offset());
        stripes.owned_mut().set_real_time(clock.real_time());
        if rules.throttle.is_some() {
            stripes.prepare_throttle();
        }
        if set.slow.is_some() {
            stripes.prepare_slow();
        }
        Breaker {
            hot: Hot {
                mirror: StateMirrorCell::new(Word::INITIAL),
                throttle: PublishedCell::new(),
                slow_ns: AtomicU64::new(set.slow_ns()),
                compact_deadline: CompactDeadlineCell::new(deadline::pack(0, deadline::NONE)),
            },
            exact: Exact {
                state: AtomicU128::new(Word::INITIAL.bits()),
                deadline: DeadlineCell::new(),
            },
            bookkeeping: CachePadded::new(Bookkeeping {
                evaluation: EvaluationCell::new(),
                times_opened: AtomicU64::new(0),
                window_generation: AtomicU64::new(0),
                reported: std::array::from_fn(|_| AtomicU64::new(0)),
                throttle_interval: AtomicU64::new(0),
                typical: TypicalCell::new(),
                predicate: rules.predicate.clone(),
                listeners,
                settings: Mutex::new(KeptConfig::of(rules.settings)), // config lock: off the hot path
            }),
            baselines: Box::new(Baselines::new(stripes.writers())),
            stripes,
            window,
            rules: RulesCell::new(set),
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
    fn mirror(&self) -> StateMirror {
        self.hot.mirror.load()
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
    /// only once a thread has called with it, see [Memory](crate::docs::memory)), count-window slots,
    /// the consecutive-failure check's baselines, its share of its settings (see
    /// [`Registry`](crate::Registry): its breakers of one configuration share theirs) and
    /// listener table. Not counted:
    /// the listener and predicate closures themselves, and the allocator's own cost (each
    /// block's header and size-class rounding, and the padding before the cache-line-aligned
    /// blocks). Resident memory is therefore higher: with glibc's malloc, by about 310 to 440
    /// bytes per breaker in a registry of 100 000 (17 to 21 % in one run, see `docs/operations.md`).
    ///
    /// Feature `test-util`: for tests and benchmarks, outside the semver promise.
    #[cfg(any(test, feature = "test-util"))]
    pub fn heap_bytes(&self) -> usize {
        self.stripes.heap_bytes()
            + self.window.heap_bytes()
            + std::mem::size_of_val(&*self.bookkeeping.listeners)
            + std::mem::size_of::<Baselines>()
            + self.settings_share()
    }

    /// This breaker's share of its settings' allocation (see `kept_config.rs`).
    #[cfg(any(test, feature = "test-util"))]
    fn settings_share(&self) -> usize {
        self.bookkeeping
            .settings
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .heap_bytes()
    }

    /// Number of counter stripes (after rounding up to a power of two).
    ///
    /// Feature `test-util`: for tests and benchmarks, outside the semver promise.
    #[cfg(any(test, feature = "test-util"))]
    pub fn stripes(&self) -> usize {
        self.stripes.count()
    }

    /// Builds a breaker on a clock whose recent and real readings are set by hand.
    #[cfg(test)]
    pub(crate) fn on_split_clock(
        builder_config: &Config,
        clock: std::sync::Arc<crate::clock::split::SplitClock>,
    ) -> Breaker {
        let rules = Rules::validate(builder_config, None).expect("valid test configuration");
        Breaker::new(rules, Box::new([]), TimeSource::Split(clock))
    }
}

/// The lines of a breaker, as docs/internals.md lists them ("Which line each word is on").
#[cfg(test)]
mod line_layout {
    use std::mem::{align_of, offset_of, size_of};

    use super::{Bookkeeping, Breaker, Exact, Hot};

    const LINE: usize = 128;

    #[test]
    fn a_success_reads_the_first_64_bytes_of_the_breaker_only() {
        assert_eq!(align_of::<Breaker>(), LINE);
        assert_eq!(offset_of!(Breaker, hot), 0);
        assert!(size_of::<Hot>() <= 32);
        // The owned stripes' handle: the first 32 bytes of the stripes (see `window/owned.rs`).
        assert_eq!(offset_of!(Breaker, stripes), 32);
        assert_eq!(size_of::<Breaker>(), 896);
    }

    #[test]
    fn the_home_stripes_line_has_the_second_pair_of_lines_to_itself() {
        // The home line sits 96 bytes into the handle (`window/owned.rs` holds that offset):
        // from byte 128, 128 bytes at most, and what follows it starts on the next pair.
        let home = offset_of!(Breaker, stripes) + 96;
        assert_eq!(home, LINE);
        assert!(offset_of!(Breaker, exact) >= 2 * LINE);
    }

    #[test]
    fn the_exact_state_and_the_statistics_stay_off_the_hot_line() {
        assert!(size_of::<Bookkeeping>() <= LINE && size_of::<Exact>() <= 32);
        let stats = offset_of!(Breaker, bookkeeping);
        assert_eq!(stats % LINE, 0);
        // The exact state is swapped by transitions and half-open admissions: not on the
        // 64 bytes every call reads.
        let exact = offset_of!(Breaker, exact);
        assert!(exact >= 64 && exact / LINE != stats / LINE, "{exact}");
        let others = [
            offset_of!(Breaker, baselines),
            offset_of!(Breaker, window),
            offset_of!(Breaker, rules),
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
