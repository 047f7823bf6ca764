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
//! ## Where next
//! - [`docs`]: guides. [`docs::service`] is a service with a registry, a layer, a fallback,
//!   telemetry, metrics and health in one example; [`docs::guarantees`] says what the breaker
//!   promises under any concurrency; [`docs::time`], [`docs::memory`] and [`docs::features`]
//!   cover the clock, the memory a breaker takes and the cargo features.
//! - [`Builder`] for every setting and its default; [`Registry`] for named breakers.
//! - The repository's `docs/` folder: configuration, tower, operations (metrics, health, alerts,
//!   dashboard), fleet, throttle, slow calls, tuning, internals, performance.
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
pub mod clock;
mod config;
mod consecutive;
pub mod docs;
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
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "serde")]
mod human_duration;
mod kept_config;
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

/// Counts the core's atomic writes per cache line: only under
/// `RUSTFLAGS="--cfg hotbreaker_count_writes"` (see `tests/shared_writes.rs`). For tests only.
#[cfg(all(hotbreaker_count_writes, not(hotbreaker_loom)))]
#[doc(hidden)]
pub use sync::write_count;
