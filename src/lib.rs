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
//! ## Time
//! The breaker reads `quanta::Clock::recent()` (about 1 ns) when an upkeep thread sets it and
//! `Clock::now()` otherwise. Start the upkeep once per process, and keep its handle:
//!
//! ```
//! let _upkeep = hotbreaker::start_upkeep(std::time::Duration::from_millis(1))?;
//! # Ok::<(), hotbreaker::UpkeepError>(())
//! ```
//!
//! A stopped or starved upkeep cannot freeze the breaker: every decision (deadlines, half-open
//! timeouts, where a Failure lands, the window the trip rules read) is made on the real clock.
//! The recent time only places a Success on the fast path, times slow calls and rejects Open
//! calls well before their deadline; it is checked against the real clock on its 1st, 2nd, 4th,
//! ... 64th repeat and every 64th after, and not used while it is more than 10 ms behind.
//!
//! ## Memory
//! A breaker's counters are striped: each calling thread counts on a line of its own (up to
//! [`Builder::stripes`] threads, one per CPU by default), and the others share a few lines (one
//! shared stripe per 16 owned ones: more threads than owned stripes contend on them). A
//! thread's own lines exist only once it has called the breaker: its first call takes them from
//! a process-wide reserve, without allocating or waiting, and a dropped breaker gives them back.
//! A build fills the reserve up to as many blocks as the breaker has stripes, and the upkeep
//! thread ([`start_upkeep`]) refills it when calls find it empty; until then (without that
//! thread: for good), a thread that finds none counts on the shared lines. A call that is only
//! rejected takes its lines too. With the upkeep thread, the reserve keeps about one block per
//! CPU between bursts (a block is 768 bytes with the default window); without it, what builds
//! left stays while a breaker of that size lives. The last breaker of a size frees them all. So
//! a breaker that few threads call stays small on a large machine, and a breaker without a
//! throttle carries none of the throttle's counters (figures in
//! `docs/internals.md` and `docs/operations.md`).
//!
//! ## Features (all off by default)
//! | feature | adds |
//! |---|---|
//! | `future` | `Breaker::call_future` and `future::CallFuture`: cancellation-safe, no `Box` |
//! | `tokio` | per-call deadlines (`call_future_timeout`, the layer's `timeout`) |
//! | `tower` | `service::BreakerLayer` / `BreakerService`, with classifiers and fallbacks |
//! | `http` | `http::HttpClassifier`, `http::Unavailable` (503 with `Retry-After`), `http::response_for`; with `serde`, the [`endpoints`] handlers |
//! | `axum` | [`endpoints::router`]: the endpoints as an axum `Router` (with `http` and `serde`) |
//! | `reqwest` | `reqwest::ReqwestClassifier` for `reqwest::Client` behind the layer or in a future |
//! | `tonic` | `grpc::GrpcClassifier` by status code, `grpc::status_for`, `grpc::StatusFallback` |
//! | `serde` | [`Config`] (de)serialization with human durations, registry files, `Config::from_env` |
//! | `metrics` | `Registry::publish_metrics` and `publish_metrics_every` through the `metrics` facade (the series are listed on `publish_metrics`); with [`telemetry`], a call-duration histogram and a timeouts counter |
//! | `tracing` | a `tracing` event per transition of a [`Registry`]'s breakers; with [`telemetry`], a span per call (OpenTelemetry through `tracing-opentelemetry`) |
//! | `redis` | `fleet`: instances that trip together through Redis, off the call path |
//!
//! Without features: [`Registry`] (named breakers, lock-free and strict lookups, health and
//! readiness, recent transitions) and [`Breaker::reconfigure`].
//!
//! ## Where next
//! - [`service_guide`]: a service with a registry, a layer, a fallback, telemetry, metrics and
//!   health, in one example.
//! - [`guarantees`]: what the breaker promises, exactly, under any concurrency.
//! - [`Builder`] for every setting and its default; [`Registry`] for named breakers.
//! - The guides in the repository's `docs/` folder: configuration, tower, operations (metrics,
//!   health, alerts, dashboard), fleet, throttle, slow calls, tuning, internals, performance.
//!
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

// `Breaker`'s page lists its methods in the order of these modules: calls first, then futures,
// the builder, and the rest.
mod permit;

#[cfg(feature = "future")]
pub mod future;

mod builder;

mod breaker;
mod bucket;
pub mod classify;
mod clock;
mod config;
mod consecutive;
#[cfg(all(feature = "http", feature = "serde"))]
pub mod endpoints;
mod error;
mod evaluation;
mod failure_statuses;
mod fastdiv;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod fleet;
#[cfg(feature = "tonic")]
pub mod grpc;
pub mod guarantees;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "serde")]
mod human_duration;
mod latency;
mod metrics;
mod outcome;
mod publish;
pub mod recording;
mod registry;
#[cfg(feature = "reqwest")]
pub mod reqwest;
mod rules;
#[cfg(feature = "tower")]
pub mod service;
pub mod service_guide;
mod state;
#[cfg(any(feature = "http", feature = "reqwest"))]
mod status_rule;
mod stripe_reserve;
mod sync;
pub mod telemetry;
mod thread_slot;
mod throttle;
mod ticket;
#[cfg(feature = "tracing")]
mod trace;
mod transition;
mod upkeep;
mod window;

pub use breaker::Breaker;
pub use builder::Builder;
pub use classify::Classify;
#[cfg(hotbreaker_loom)]
pub use clock::LoomClock;
pub use config::{Config, SlowCalls, TimeWindow};
pub use error::{ConfigError, Error, Reason, Rejected};
pub use failure_statuses::FailureStatuses;
pub use metrics::Metrics;
pub use outcome::Outcome;
pub use permit::{OwnedPermit, Permit};
#[cfg(feature = "metrics")]
pub use registry::MetricsPublisher;
pub use registry::Registry;
pub use registry::UnknownBreaker;
pub use registry::{BreakerHealth, Health};
pub use registry::{EVENTS_KEPT, TransitionEvent};
pub use rules::Backoff;
pub use rules::MAX_DURATION;
pub use state::{Cause, State};
pub use throttle::Throttle;
pub use transition::Transition;
pub use upkeep::{Upkeep, UpkeepError, start_upkeep};
pub use window::WindowStats;

/// The clock crate the breaker reads: `quanta::Clock::mock()` for tests (with
/// [`Builder::clock`]), without a dependency of your own. [`start_upkeep`] runs quanta's
/// upkeep (and the breaker's own).
pub use quanta;

/// Counts the core's atomic writes per cache line: only under
/// `RUSTFLAGS="--cfg hotbreaker_count_writes"` (see `tests/shared_writes.rs`). For tests only.
#[cfg(all(hotbreaker_count_writes, not(hotbreaker_loom)))]
#[doc(hidden)]
pub use sync::write_count;
