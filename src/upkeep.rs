//! Starting quanta's upkeep thread, which makes the breaker's fast path cheaper.

use std::time::Duration;

/// Starts quanta's upkeep thread, refreshing the recent time every `interval` (1 ms is usual),
/// so a Success on the fast path reads the time in about a nanosecond instead of a dozen (see
/// [Time](crate#time)). Call it once per process, in `main`, and keep the handle: dropping it
/// stops the thread. The breaker stays correct without it, and when it stops.
///
/// The same as `quanta::Upkeep::new(interval).start()`, without a dependency on quanta of your
/// own ([`quanta`](crate::quanta) is re-exported for the mock clock and the rest).
///
/// # Errors
/// [`quanta::Error::UpkeepRunning`] if an upkeep thread already runs in this process,
/// [`quanta::Error::FailedToSpawnUpkeepThread`] if the thread could not be started.
///
/// # Examples
/// ```
/// use std::time::Duration;
///
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     // Keep the handle for as long as the process runs.
///     let _upkeep = hotbreaker::start_upkeep(Duration::from_millis(1))?;
///     // ... build breakers, serve ...
///     Ok(())
/// }
/// ```
pub fn start_upkeep(interval: Duration) -> Result<quanta::Handle, quanta::Error> {
    quanta::Upkeep::new(interval).start()
}
