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
/// `stripes` is the number of CPUs rounded up to a power of two, at most `MAX_STRIPES` (the
/// thread-slot pool); 1 under loom.
pub(crate) const MAX_STRIPES: u32 = crate::thread_slot::POOL;
/// The floor of a relative slow-call rule.
pub(crate) const SLOW_MIN_DURATION: Duration = Duration::from_millis(1);

/// What an unset `stripes` becomes: one owned stripe per CPU the process saw the first time it
/// asked (rounded up to a power of two), up to the thread-slot pool (1 under loom): as many
/// threads as the machine runs at once each count on a line of their own. A cap chosen on a
/// small machine is a cliff on a big one: with 8 stripes, the 8 threads beyond them share one
/// shared stripe with a compare-and-swap each. Resolved once: asking costs a system call and a read of the cgroup
/// limits (tens of microseconds), and the answer may differ from thread to thread (affinity).
/// Only a breaker's construction uses it; [`Breaker::reconfigure`](crate::Breaker::reconfigure)
/// compares stripes only when the user set them, so a reload never fails over a CPU count.
pub(super) fn default_stripes() -> u32 {
    if cfg!(hotbreaker_loom) {
        return 1;
    }
    static CPUS: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *CPUS.get_or_init(|| {
        std::thread::available_parallelism().map_or(2, |n| {
            n.get().next_power_of_two().min(MAX_STRIPES as usize) as u32
        })
    })
}
