//! The rejection probability:
//! `p = max(0, (requests − K·accepts) / (requests + 1))`, at most `max_rejection`, and 0 while
//! the window holds fewer than `minimum_calls` requests. `requests` counts every call attempted
//! in the window (those whose Success or Failure was recorded, and those the throttle turned
//! away); `accepts` counts the Successes.

/// The probability's resolution: parts per 2^24.
pub(super) const P_BITS: u32 = 24;
const P_ONE: f64 = (1u64 << P_BITS) as f64;
pub(super) const P_MASK: u64 = (1 << P_BITS) - 1;

/// The rejection probability in parts per 2^24, rounded down:
/// `min(max_rejection, max(0, (requests − k·accepts) / (requests + 1)))`, and 0 when `requests`
/// is below `minimum_calls`. Always below 2^24, since `max_rejection < 1`.
pub(crate) fn probability(
    k: f64,
    max_rejection: f64,
    requests: u64,
    accepts: u64,
    minimum_calls: u32,
) -> u32 {
    if requests < u64::from(minimum_calls) {
        return 0;
    }
    let excess = requests as f64 - k * accepts as f64;
    if excess <= 0.0 {
        return 0;
    }
    let p = (excess / (requests as f64 + 1.0)).min(max_rejection);
    // In [0, 2^24): max_rejection < 1. The cast rounds down.
    ((p * P_ONE) as u32).min(P_MASK as u32)
}

/// Whether a draw (a uniformly random `u32`) rejects at `parts` per 2^24: its top 24 bits are
/// below `parts`, which happens with probability exactly `parts / 2^24`.
#[inline]
pub(crate) fn rejects(draw: u32, parts: u32) -> bool {
    (draw >> (32 - P_BITS)) < parts
}
