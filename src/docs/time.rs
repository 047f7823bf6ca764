//! Time: where the breaker reads it, and why a stopped upkeep cannot freeze it.
//!
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
//! calls well before their deadline; each thread checks it against the real clock on its 1st,
//! 2nd, 4th, ... 64th repeat and every 64th after (repeats counted over every breaker the thread
//! calls), and does not use it while it is more than 10 ms behind.
//!
//! Tests inject time: [`Clock::mock`](crate::clock::Clock::mock) with
//! [`Builder::clock`](crate::Builder::clock), and the mock's
//! [`increment`](crate::clock::Mock::increment) moves it. No test needs to sleep.
