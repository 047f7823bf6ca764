//! Test code, not part of hotbreaker's API: a reference model of the breaker (one `Mutex`
//! around a plain struct, the guarantees written out) and a differential driver that applies the same
//! operations to the model and to a real `hotbreaker::Breaker` on a mock clock, comparing
//! everything observable after every step. Bulk steps (a run of resets, a burst of calls, flapping,
//! idle laps) reach the horizons where narrow counters and tags would wrap in one step each.
//!
//! Used by `tests/differential.rs` (a seeded generator, thousands of sequences per `cargo test`)
//! and by the cargo-fuzz targets in `fuzz/` (inputs decoded with `arbitrary`).

mod config;
mod driver;
mod model;
mod rng;

pub use config::{ModelConfig, Window, draw_at};
pub use driver::{HORIZON_NS, LONG_COUNTS, Op, run};
pub use model::{Model, ModelMetrics, ModelPermit};
pub use rng::{Rng, random_config, random_long_config, random_long_ops, random_ops};
