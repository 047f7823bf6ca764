//! The range each setting accepts, and the checks that hold a value to it. Each error message is
//! built from the same constant the check uses, so the two cannot drift apart.

use std::time::Duration;

use super::rate::Rate;
use crate::error::ConfigError;

/// The longest duration any setting accepts: 365 days.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * SECS_PER_DAY);
/// The shortest open duration, half-open timeout and bucket width: 1 ms.
pub(super) const MIN_DURATION: Duration = Duration::from_millis(1);
/// The largest `consecutive_failures` and `minimum_calls`.
pub(super) const MAX_COUNT: u32 = 1_000_000;
/// The largest count window.
pub(super) const MAX_COUNT_WINDOW: u32 = 65_536;
/// The most stripes of counters.
pub(super) const MAX_STRIPES: u32 = crate::thread_slot::POOL;

pub(super) const SECS_PER_DAY: u64 = 24 * 60 * 60;

// The range messages print these in whole days and whole milliseconds.
const _: () = assert!(MAX_DURATION.as_secs().is_multiple_of(SECS_PER_DAY));
const _: () = assert!(MAX_DURATION.subsec_nanos() == 0);
const _: () = assert!(MIN_DURATION.as_nanos().is_multiple_of(1_000_000));

/// `(0, 365 days]`, from [`MAX_DURATION`].
pub(super) fn positive_duration_range() -> String {
    format!("(0, {} days]", MAX_DURATION.as_secs() / SECS_PER_DAY)
}

/// `[1 ms, 365 days]`, from [`MIN_DURATION`] and [`MAX_DURATION`].
pub(super) fn duration_range() -> String {
    format!(
        "[{} ms, {} days]",
        MIN_DURATION.as_millis(),
        MAX_DURATION.as_secs() / SECS_PER_DAY
    )
}

/// `n` if it is in `1..=max`.
pub(super) fn count(field: &'static str, n: u32, max: u32) -> Result<u32, ConfigError> {
    if (1..=max).contains(&n) {
        Ok(n)
    } else {
        Err(ConfigError::new(field, format!("must be in 1..={max}"), n))
    }
}

/// `r` as an exact [`Rate`] if it is in (0, 1].
pub(super) fn rate(field: &'static str, r: f64) -> Result<Rate, ConfigError> {
    Rate::new(r).ok_or_else(|| ConfigError::new(field, "must be in (0, 1]", r))
}

/// `d` in nanoseconds if it is in `[MIN_DURATION, MAX_DURATION]`.
pub(super) fn duration(field: &'static str, d: Duration) -> Result<u64, ConfigError> {
    if d < MIN_DURATION || d > MAX_DURATION {
        Err(ConfigError::new(
            field,
            format!("must be in {}", duration_range()),
            d,
        ))
    } else {
        Ok(d.as_nanos() as u64)
    }
}
