//! The window's shape, as validated rules give it and a built window reports it.

use std::fmt;
use std::time::Duration;

/// The most buckets a time window may have.
pub(crate) const MAX_BUCKETS: u32 = 256;

/// The shape of the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WindowSpec {
    Time { width_ns: u64, buckets: u32 },
    Count { size: u32 },
}

impl WindowSpec {
    /// A time window's buckets; 0 for a count window.
    pub(crate) fn buckets(self) -> u32 {
        match self {
            WindowSpec::Time { buckets, .. } => buckets,
            WindowSpec::Count { .. } => 0,
        }
    }
}

impl fmt::Display for WindowSpec {
    /// As a user writes it: `time_window = 10s in 10 buckets`, `count_window = 100`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            WindowSpec::Time { width_ns, buckets } => {
                let window = Duration::from_nanos(width_ns.saturating_mul(u64::from(buckets)));
                write!(f, "time_window = {window:?} in {buckets} buckets")
            }
            WindowSpec::Count { size } => write!(f, "count_window = {size}"),
        }
    }
}
