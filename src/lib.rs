//! # hotbreaker
//!
//! A circuit breaker for hot paths: no lock and no allocation on `try_acquire` or on recording an
//! outcome; a Success while Closed is a plain load and store on a cache line only the calling
//! thread writes.
//!
//! ```
//! use std::time::Duration;
//! use hotbreaker::{Breaker, Error};
//!
//! let breaker = Breaker::builder()
//!     .consecutive_failures(5)
//!     .open_timeout(Duration::from_secs(30))
//!     .build()
//!     .expect("valid configuration");
//!
//! match breaker.call(|| -> Result<&str, std::io::Error> { Ok("response") }) {
//!     Ok(body) => assert_eq!(body, "response"),
//!     Err(Error::Rejected(r)) => eprintln!("open, retry in {:?}", r.retry_after()),
//!     Err(Error::Inner(e)) => eprintln!("call failed: {e}"),
//!     // A synchronous call has no deadline: the other variants are for timed calls.
//!     Err(other) => eprintln!("{other}"),
//! }
//! ```
//!
//! ## States
//! | state | calls | left when |
//! |---|---|---|
//! | Closed | pass | a trip rule fires → Open |
//! | Open | rejected with `retry_after` | the first call at or after the deadline → HalfOpen (and it passes) |
//! | HalfOpen | up to `half_open_permits` probes pass | a probe fails → Open; `half_open_successes` succeed → Closed; optional timeout → Open |
//! | Isolated | rejected | [`Breaker::reset`] |
//! | Disabled | pass, counted, never trips | [`Breaker::reset`] |
//!
//! ## Guarantees
//! 1. **Transitions are atomic and unique**: each is one compare-and-swap that bumps the generation;
//!    the one thread that wins it calls the listeners once, after the swap, with
//!    `{from, to, cause, generation}`.
//! 2. **Late outcomes are dropped**: an outcome from a permit of an older generation changes no state
//!    and no window, and still counts in the lifetime totals.
//! 3. **Trip rules run when a Failure or a slow call is recorded while Closed**, never on a plain
//!    Success; any rule that holds trips (consecutive failures, failure rate, slow-call rate, your
//!    predicate), and rates compare exactly with ≥ (see "Rates are exact decimals" below).
//! 4. **Open lasts** `open_duration(attempt)` (fixed, or exponential with optional jitter, reset by
//!    closing); at `opened_at + duration` the breaker is ready to half-open.
//! 5. **Half-open admission is exact**: never more than `half_open_permits` probes per half-open
//!    generation, and a dropped or Ignored probe gives its slot back.
//! 6. **Time-window buckets** are aligned to the breaker's start; an outcome lands in the bucket of
//!    its record time and leaves the window a whole bucket at a time.
//! 7. **Lifetime totals are exact** (successes, failures, ignored, slow, rejected, times opened) under
//!    any concurrency, once recorders are quiescent.
//! 8. **Panics**: a panic in `call` is recorded as a Failure and resumed; a panicking listener is
//!    caught and the breaker stays consistent.
//! 9. **Configuration is validated by `build()`**, which returns a `ConfigError` naming the field and
//!    the range it accepts.
//!
//! Beyond these rules:
//! - **Rates are exact decimals.** A rate is held as the fraction `ppb / 10⁹` (rounded to the nearest
//!   billionth, so `0.1` is exactly 1/10) and compared by integer cross-multiplication. Floating point
//!   gets boundaries wrong both ways: `7.0 >= 0.07 * 100.0` is false in f64.
//! - **Deadlines are exact to the nanosecond**: a breaker opened at `t` for `d` admits the first call
//!   at `t + d` exactly, measured on the real clock.
//! - **Lifetime totals in [`Breaker::metrics`] never go backwards** from one snapshot to the next; while
//!   outcomes are being recorded a snapshot may lag by the outcomes in flight.
//! - **`reset()` is always a transition** (Closed → Closed included): it empties the window and makes
//!   outstanding permits late. `isolate()` and `disable()` are transitions too.
//! - **Half-open timeout** is checked when a permit is asked for and when a probe reports; a probe that
//!   succeeds after the timeout reopens the breaker instead of closing it.
//! - **While HalfOpen with every slot taken**, `retry_after` is `None` (the probes' verdict decides);
//!   while Isolated it is `None` too.
//! - **A slow Success in HalfOpen counts as a success** for the verdict (and as slow in the totals).
//! - **Listeners may read the breaker** (no lock is held when they run), unlike gobreaker's.
//! - **A peer's news moves a breaker one way only** ([`Breaker::trip_from_fleet`],
//!   [`Breaker::half_open_from_fleet`], used by the `redis` feature's fleet link): a Closed
//!   breaker opens for no longer than the peer said, an Open one half-opens early; nothing else
//!   moves, Isolated and Disabled never. These are ordinary transitions (one compare-and-swap,
//!   a new generation, listeners hear [`Cause::Fleet`]). The fleet link applies a peer's trip
//!   only once a quorum of instances agrees (a majority by default), so a sick minority never
//!   opens a healthy instance.
//! - **Nothing wears out**: generations, bucket tags, counts and deadlines are compared at full
//!   width (64 bits, or 61 for generations in permits), so no number of transitions, calls or
//!   idle time makes an old count, run or deadline look current, and no count is halved or
//!   saturated. The shortest horizon, a bucket tag at 10^7 transitions per second with 256
//!   buckets, is 114 years.
//!
//! ## Time
//! The breaker reads `quanta::Clock::recent()` (about 1 ns) when quanta's upkeep thread runs and
//! `Clock::now()` otherwise. Start the upkeep once per process, and keep its handle:
//!
//! ```
//! let _upkeep = hotbreaker::start_upkeep(std::time::Duration::from_millis(1));
//! ```
//!
//! A stopped or starved upkeep cannot freeze the breaker: every decision (deadlines, half-open
//! timeouts, where a Failure lands, the window the trip rules read) is made on the real clock.
//! The recent time only places a Success on the fast path, times slow calls and rejects Open
//! calls well before their deadline; it is checked against the real clock on its 1st, 2nd, 4th,
//! ... 64th repeat and every 64th after, and not used while it is more than 10 ms behind.
//!
//! ## Features (all off by default)
//! | feature | adds |
//! |---|---|
//! | `future` | `Breaker::call_future` and `future::CallFuture`: cancellation-safe, no `Box` |
//! | `tokio` | per-call deadlines (`call_future_timeout`, the layer's `timeout`) |
//! | `tower` | `service::BreakerLayer` / `BreakerService`, with classifiers and fallbacks |
//! | `http` | `http::HttpClassifier` and `http::retry_after` |
//! | `reqwest` | `reqwest::ReqwestClassifier` for `reqwest::Client` behind the layer or in a future |
//! | `tonic` | `grpc::GrpcClassifier` by status code, `grpc::status_for`, `grpc::StatusFallback` |
//! | `serde` | [`Config`] (de)serialization with human durations, registry files, `Config::from_env` |
//! | `metrics` | `Registry::publish_metrics` through the `metrics` facade |
//! | `tracing` | a `tracing` event per transition of a [`Registry`]'s breakers |
//! | `redis` | `fleet`: instances that trip together through Redis, off the call path |
//!
//! Without features: [`Registry`] (named breakers, lock-free lookups, health) and
//! [`Breaker::reconfigure`].
//!
//! ## Map of the crate
//! In the order data flows through a call:
//!
//! | file | holds |
//! |---|---|
//! | `builder.rs` | [`Builder`]: settings as methods, `build()` |
//! | `config.rs` | [`Config`], [`TimeWindow`], [`SlowCalls`]: settings as data |
//! | `rules.rs` | validation, every default and limit, the validated `Rules` |
//! | `rules_cell.rs` | the rules in force, read lock-free, replaced whole by `reconfigure` |
//! | `breaker.rs` | [`Breaker`]: loads, swaps and publishes; no decisions of its own |
//! | `state.rs` | the 128-bit state word and `next(word, event)`, the whole state machine |
//! | `mirror.rs` | the state word's kind and generation in 64 bits, for the fast paths |
//! | `consecutive.rs` | the consecutive-failure rule from each thread's local run and a baseline |
//! | `evaluation.rs` | when a Failure must read the whole window: the per-stripe budget |
//! | `deadline.rs` | the deadline cell: when the current Open or HalfOpen generation ends |
//! | `clock.rs` | time since the breaker's start; the frozen-upkeep check |
//! | `permit.rs` | [`Permit`], [`OwnedPermit`]; `try_acquire`, `call`, `call_with` |
//! | `ticket.rs` | what a permit carries: its generation, issuing state and issue time |
//! | `outcome.rs` | [`Outcome`]: Success, Failure or Ignored |
//! | `thread_slot.rs` | which owned stripe the calling thread may write, from a process-wide pool |
//! | `owned.rs` | owned stripes: counted with plain stores, bucket marks read by a seqlock |
//! | `window.rs` | shared stripes, the time ring, the count window, [`WindowStats`] |
//! | `bucket.rs` | one tagged 128-bit bucket counter and the add / rotate / newer decision |
//! | `fastdiv.rs` | division by a constant as a multiply, for the bucket interval |
//! | `policy.rs` | which window rule trips, and how many events before one could, as pure functions |
//! | `latency.rs` | the typical latency of a relative slow-call rule: the estimator and its word |
//! | `throttle.rs` | [`Throttle`]: the shedding probability, its published word, the per-thread draw |
//! | `rate.rs` | rates as exact fractions |
//! | `backoff.rs` | [`Backoff`]: how long each opening lasts |
//! | `transition.rs`, `metrics.rs`, `health.rs` | what listeners, snapshots and health checks see |
//! | `error.rs` | [`Error`], [`Rejected`], [`Reason`], [`ConfigError`] |
//! | `registry.rs`, `export.rs`, `trace.rs` | named breakers, metrics and tracing export |
//! | `files.rs`, `env.rs`, `human_duration.rs` | config files, environment variables, durations as text |
//! | `classify.rs`, `future.rs`, `service/`, `http.rs` | classifiers, futures, tower middleware, HTTP |
//! | `reqwest.rs`, `grpc.rs` | reqwest's and tonic's results classified; rejections as gRPC statuses |
//! | `fleet/` | a fleet of instances through Redis: rules, messages, the flusher, the subscriber |
//! | `upkeep.rs` | [`start_upkeep`]: quanta's upkeep thread, for the cheap recent time |
//! | `sync.rs` | the atomics and the lock the core uses (loom's under `--cfg hotbreaker_loom`) |
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod backoff;
mod breaker;
mod bucket;
mod builder;
pub mod classify;
mod clock;
mod compact_deadline;
mod config;
mod consecutive;
mod deadline;
mod edit_distance;
#[cfg(all(feature = "http", feature = "serde"))]
pub mod endpoints;
#[cfg(feature = "serde")]
mod env;
mod error;
mod evaluation;
mod events;
#[cfg(feature = "metrics")]
mod export;
mod fastdiv;
#[cfg(feature = "serde")]
mod files;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod fleet;
#[cfg(feature = "future")]
pub mod future;
#[cfg(feature = "tonic")]
pub mod grpc;
mod health;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "serde")]
mod human_duration;
mod latency;
mod metrics;
mod mirror;
mod outcome;
mod owned;
mod permit;
mod policy;
mod rate;
pub mod recording;
mod registry;
#[cfg(feature = "reqwest")]
pub mod reqwest;
mod rules;
mod rules_cell;
#[cfg(feature = "tower")]
pub mod service;
mod state;
mod sync;
mod thread_slot;
mod throttle;
mod ticket;
#[cfg(feature = "tracing")]
mod trace;
mod transition;
mod unknown_breaker;
mod upkeep;
mod window;

pub use backoff::Backoff;
pub use breaker::Breaker;
pub use builder::Builder;
pub use classify::Classify;
#[cfg(hotbreaker_loom)]
pub use clock::LoomClock;
pub use config::{Config, SlowCalls, TimeWindow};
pub use error::{ConfigError, Error, Reason, Rejected};
pub use events::{EVENTS_KEPT, TransitionEvent};
#[cfg(feature = "metrics")]
pub use export::MetricsPublisher;
pub use health::{BreakerHealth, Health};
pub use metrics::Metrics;
pub use outcome::Outcome;
pub use permit::{OwnedPermit, Permit};
pub use registry::Registry;
pub use rules::MAX_DURATION;
pub use state::{Cause, State};
pub use throttle::Throttle;
pub use transition::Transition;
pub use unknown_breaker::UnknownBreaker;
pub use upkeep::start_upkeep;
pub use window::WindowStats;

/// The clock crate the breaker reads: `quanta::Clock::mock()` for tests (with
/// [`Builder::clock`]), `quanta::Upkeep` for the upkeep thread (or [`start_upkeep`]), without a
/// dependency of your own.
pub use quanta;

/// Counts the core's atomic writes per cache line: only under
/// `RUSTFLAGS="--cfg hotbreaker_count_writes"` (see `tests/shared_writes.rs`). For tests only.
#[cfg(all(hotbreaker_count_writes, not(hotbreaker_loom)))]
#[doc(hidden)]
pub use sync::write_count;
