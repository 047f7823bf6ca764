//! What the window counts: an outcome's sample, the bucket kinds and the lifetime totals.

use super::owned;

/// Bucket words per 128-byte line.
pub(super) const LINE: usize = 8;

/// What one recorded outcome adds to the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sample {
    pub(crate) failure: bool,
    pub(crate) slow: bool,
}

#[cfg(test)]
impl Sample {
    /// A Success that was not slow (tests).
    pub(super) const SUCCESS: Sample = Sample {
        failure: false,
        slow: false,
    };
    /// A Failure that was not slow (tests).
    pub(super) const FAILURE: Sample = Sample {
        failure: true,
        slow: false,
    };
}

/// The three counters a bucket keeps, in ring order within a stripe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BucketKind {
    Success = 0,
    Failure = 1,
    Slow = 2,
}

/// Lifetime counters kept per stripe, in this order in the stripe's block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Total {
    /// Successes folded out of the buckets (or recorded without a window).
    Successes = 0,
    Failures = 1,
    Slow = 2,
    Ignored = 3,
    Rejected = 4,
    /// Calls the throttle turned away: counted on the shared stripes only, whatever the
    /// thread (they are off the success path).
    Throttled = 5,
}

/// Where a shared stripe's totals line counts every Success recorded on the stripe, in any
/// bucket or none: a count that only grows, for the consecutive-failure check
/// (`consecutive.rs`), which must see any Success as a change (the folded totals plus the live
/// words can briefly read the same across a rotation). 64 bits: 584 years at 10^9 Successes per
/// second.
pub(super) const SUCCESS_EVENTS: usize = 6;

/// Where a shared stripe's totals line keeps the newest tag its rings were rotated to (after the
/// [`Total`]s): a report skips the rings when no shared stripe rotated into its window.
pub(super) const NEWEST: usize = 7;

/// The running counts of `owned.rs` a sample adds one to.
pub(super) fn kinds(sample: Sample) -> &'static [usize] {
    match (sample.failure, sample.slow) {
        (false, false) => &[owned::SUCCESSES],
        (true, false) => &[owned::FAILURES],
        (false, true) => &[owned::SUCCESSES, owned::SLOW],
        (true, true) => &[owned::FAILURES, owned::SLOW],
    }
}

impl BucketKind {
    pub(super) fn total(self) -> Total {
        match self {
            BucketKind::Success => Total::Successes,
            BucketKind::Failure => Total::Failures,
            BucketKind::Slow => Total::Slow,
        }
    }
}
