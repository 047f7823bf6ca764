//! The fleet-window buckets of one breaker that a flush already read and that no longer
//! change: they are not read again while they stay in the window. Pure: tested without Redis.
//!
//! A bucket is written by every instance's flushes while it is current, and for at most a
//! flush interval and a command timeout after it ends (the flush that collected its last
//! calls). Once it ended longer ago than that margin, what a flush reads of it is final, and
//! later flushes read only the newer buckets: about two per breaker instead of the whole
//! window. Deltas that an instance kept while Redis was away and writes later into such a
//! bucket are not seen by instances that already hold it; they are the same deltas the queue
//! keeps at most a window, and are counted by the instances that read the bucket later.

use std::ops::RangeInclusive;

use crate::fleet::rule::Counts;

/// Whether `bucket` (of `width_ms`) is settled at `now_ms`: it ended at least `margin_ms` ago.
pub(crate) fn is_settled(bucket: u64, width_ms: u64, now_ms: u64, margin_ms: u64) -> bool {
    bucket
        .saturating_add(1)
        .saturating_mul(width_ms)
        .saturating_add(margin_ms)
        <= now_ms
}

/// The settled buckets of one breaker's window, oldest first, each at most once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Settled {
    buckets: Vec<(u64, Counts)>,
}

impl Settled {
    /// Splits `window` into the total of the buckets held and the buckets still to read.
    pub(crate) fn split(&self, window: RangeInclusive<u64>) -> (Counts, Vec<u64>) {
        let mut known = Counts::default();
        let mut to_read = Vec::new();
        for bucket in window {
            match self.buckets.iter().find(|(b, _)| *b == bucket) {
                Some((_, counts)) => known.add(*counts),
                None => to_read.push(bucket),
            }
        }
        (known, to_read)
    }

    /// Holds `counts` of a settled `bucket`.
    pub(crate) fn keep(&mut self, bucket: u64, counts: Counts) {
        if self.buckets.iter().any(|(b, _)| *b == bucket) {
            return;
        }
        let at = self.buckets.partition_point(|(b, _)| *b < bucket);
        self.buckets.insert(at, (bucket, counts));
    }

    /// Keeps only the buckets for which `keep` holds: those still in the window and still
    /// final by the clock's reading now (after the fleet's clock stepped back, buckets held
    /// as final may be current or ahead again, and are read afresh).
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(u64) -> bool) {
        self.buckets.retain(|(b, _)| keep(*b));
    }

    /// Forgets everything (the breaker went idle).
    pub(crate) fn clear(&mut self) {
        self.buckets = Vec::new();
    }

    pub(crate) fn len(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(calls: u64, failures: u64) -> Counts {
        Counts {
            calls,
            failures,
            slow: 0,
        }
    }

    #[test]
    fn a_bucket_settles_a_margin_after_it_ends() {
        // Bucket 10 of 1 s ends at 11 000 ms.
        assert!(!is_settled(10, 1_000, 11_000, 700));
        assert!(!is_settled(10, 1_000, 11_699, 700));
        assert!(is_settled(10, 1_000, 11_700, 700));
        assert!(
            !is_settled(u64::MAX, 1_000, u64::MAX - 1, 700),
            "no overflow"
        );
    }

    #[test]
    fn held_buckets_are_not_read_again_and_leave_with_the_window() {
        let mut s = Settled::default();
        assert_eq!(s.split(91..=100), (Counts::default(), (91..=100).collect()));
        for b in 91..=98 {
            s.keep(b, c(10, 1));
        }
        s.keep(95, c(999, 999)); // kept once: the first read stands
        assert_eq!(s.split(91..=100), (c(80, 8), vec![99, 100]));
        // The window slides by three buckets.
        s.retain(|b| b >= 94);
        assert_eq!(s.len(), 5);
        assert_eq!(s.split(94..=103), (c(50, 5), vec![99, 100, 101, 102, 103]));
        // Kept out of order, still found.
        s.keep(100, c(1, 1));
        s.keep(99, c(2, 0));
        assert_eq!(s.split(94..=103), (c(53, 6), vec![101, 102, 103]));
        s.clear();
        assert_eq!(s.len(), 0);
    }
}
