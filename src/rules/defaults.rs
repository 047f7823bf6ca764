//! What a setting left as `None` becomes. [`Builder`](crate::Builder)'s documentation lists
//! them; a test keeps that table and the README's in step with these values.

use std::time::Duration;

use super::backoff::Backoff;

/// The consecutive-failure rule when no trip rule is configured.
pub(crate) const CONSECUTIVE_FAILURES: u32 = 5;
/// The failure-rate rule when no trip rule is configured.
pub(crate) const FAILURE_RATE: f64 = 0.5;
pub(crate) const MINIMUM_CALLS: u32 = 20;
/// The time window: `TIME_WINDOW` in `BUCKETS` buckets.
pub(crate) const TIME_WINDOW: Duration = Duration::from_secs(10);
pub(crate) const BUCKETS: u32 = 10;
/// Kept beside [`Backoff`] so that its serde form fills missing fields from the same value.
pub(crate) const BACKOFF: Backoff = Backoff::DEFAULT;
pub(crate) const HALF_OPEN_PERMITS: u32 = 3;
/// `half_open_successes` is `min(HALF_OPEN_SUCCESSES, half_open_permits)`.
pub(crate) const HALF_OPEN_SUCCESSES: u32 = 3;
/// `stripes` is [`STRIPES_PER_CPU`] per CPU, rounded up to a power of two, at most `MAX_STRIPES`
/// (the thread-slot pool); 1 under loom.
pub(crate) const MAX_STRIPES: u32 = crate::thread_slot::POOL;
/// The floor of a relative slow-call rule.
pub(crate) const SLOW_MIN_DURATION: Duration = Duration::from_millis(1);

/// Owned stripes per CPU in an unset `stripes`: room for every thread a service runs beside
/// one per CPU (its runtime's workers, a main thread, blocking and helper threads), up to four
/// times as many threads as CPUs, each on a line of its own.
pub(crate) const STRIPES_PER_CPU: usize = 4;

/// What an unset `stripes` becomes: [`STRIPES_PER_CPU`] owned stripes per CPU the process saw
/// the first time it asked (rounded up to a power of two; one CPU when it cannot tell), up to
/// the thread-slot pool (1 under loom). A stripe costs nothing until a thread calls on it (`window/owned/directory.rs`), so
/// the setting is only a ceiling: a cap chosen on a small machine is a cliff on a big one, as
/// the threads beyond it all count on one shared stripe with an atomic read-modify-write each.
/// Threads take the lowest free slot of a process-wide pool, so a service that runs more
/// threads than CPUs (a runtime's workers and its main thread, a blocking pool, a thread per
/// connection) numbers them past the CPUs. Resolved once: asking costs a system call and a
/// read of the cgroup limits (tens of microseconds), and the answer may differ from thread to
/// thread (affinity). Only a breaker's construction uses it;
/// [`Breaker::reconfigure`](crate::Breaker::reconfigure) compares stripes only when the user
/// set them, so a reload never fails over a CPU count.
pub(super) fn default_stripes() -> u32 {
    if cfg!(hotbreaker_loom) {
        return 1;
    }
    static STRIPES: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *STRIPES.get_or_init(|| {
        std::thread::available_parallelism()
            .map_or(1, usize::from)
            .saturating_mul(STRIPES_PER_CPU)
            .next_power_of_two()
            .min(MAX_STRIPES as usize) as u32
    })
}
