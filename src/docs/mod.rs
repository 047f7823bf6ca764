//! Guides: how the breaker behaves and how to use it, beyond one item's documentation.
//!
//! - [`service`]: a service in one example: a registry from a file, a layer with a fallback,
//!   telemetry, metrics and the health endpoints.
//! - [`guarantees`]: what a breaker promises, exactly, under any number of callers.
//! - [`time`]: the clock the breaker reads, the upkeep thread, and time in tests.
//! - [`memory`]: what a breaker holds, per thread and idle.
//! - [`features`]: the cargo features and what each adds.

pub mod features;
pub mod guarantees;
pub mod memory;
pub mod service;
pub mod time;
