//! Time: quanta's clock, read as nanoseconds since the breaker was built.
//!
//! Tests drive a breaker's time by hand with [`Clock::mock`] and
//! [`Builder::clock`](crate::Builder::clock): a mock answers every reading from its [`Mock`],
//! so no test sleeps. [`start_upkeep`](crate::start_upkeep) runs quanta's upkeep thread, which
//! makes the recent time (about 1 ns a read) available.

#[cfg(hotbreaker_loom)]
mod loom_clock;
mod process;
mod recent_guard;
#[cfg(test)]
pub(crate) mod split;
#[cfg(test)]
mod tests;
mod time_source;

/// quanta's clock: [`Clock::mock`] gives a clock and its [`Mock`] for tests.
pub use quanta::Clock;
/// The hand of a mock [`Clock`]: [`Mock::increment`] moves its time.
pub use quanta::Mock;

#[cfg(hotbreaker_loom)]
pub use loom_clock::LoomClock;
pub(crate) use process::{RealTime, process_clock, tick, ticks};
pub(crate) use recent_guard::RECENT_TOLERANCE_NS;
pub(crate) use time_source::{TimeSource, trust_recent};
