//! Whether a Success must end a consecutive-failure run, known without reading the state word.
//!
//! The run itself lives in the state word (see `state.rs`); a Success that finds no run to end
//! should not have to load or swap that 128-bit word. Two counters that only grow tell it:
//! `lengthened` counts Failures that lengthened a run (after their swap), `ended` is the largest
//! value of `lengthened` that a Success read before ending the run of the generation still in
//! force (a late Success, which found a newer generation, ends nothing and records nothing). While they are equal, every
//! run a Failure lengthened was ended by a later Success. Neither ever decreases, so a stale value
//! can never make them look equal again (a flag cleared by compare-and-swap could be raised again
//! in between, and the swap would then clear the new run's flag). 64 bits each: 584 years
//! at 10^9 Failures per second.
//!
//! # Orderings
//! `lengthened` is added with `Release` after the Failure's swap and read with `Acquire` by a
//! Success about to end a run, so that Success's swap sees every run counted in the value it
//! read. The fast path reads both `Relaxed`: a Success that sees them equal is ordered before
//! every Failure it did not see, which any interleaving may do (the two calls overlap).

use crate::sync::{AtomicU64, Ordering};

/// The two counters (module docs).
#[derive(Debug)]
pub(crate) struct RunHint {
    lengthened: AtomicU64,
    ended: AtomicU64,
}

impl RunHint {
    pub(crate) fn new() -> RunHint {
        RunHint {
            lengthened: AtomicU64::new(0),
            ended: AtomicU64::new(0),
        }
    }

    /// The fast path's test: whether a Failure may have lengthened a run no Success has ended.
    #[inline]
    pub(crate) fn may_need_ending(&self) -> bool {
        // Relaxed: see the module's "Orderings".
        self.lengthened.load(Ordering::Relaxed) != self.ended.load(Ordering::Relaxed)
    }

    /// A Failure lengthened a run; call after its swap.
    pub(crate) fn lengthened(&self) {
        // Release: see the module's "Orderings".
        self.lengthened.fetch_add(1, Ordering::Release);
    }

    /// Before a Success ends the run: `Some(token)` when there may be one to end; pass the token
    /// to [`ended`](Self::ended) after the swap.
    pub(crate) fn to_end(&self) -> Option<u64> {
        // Acquire: see the module's "Orderings".
        let lengthened = self.lengthened.load(Ordering::Acquire);
        // Relaxed: only decides whether to do the work.
        (lengthened != self.ended.load(Ordering::Relaxed)).then_some(lengthened)
    }

    /// The run a Success read `token` for has been ended (or was already).
    pub(crate) fn ended(&self, token: u64) {
        // Relaxed: read only to decide whether a Success goes the slow way.
        self.ended.fetch_max(token, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_until_a_failure_then_until_a_success_ends_it() {
        let h = RunHint::new();
        assert!(!h.may_need_ending() && h.to_end().is_none());
        h.lengthened();
        assert!(h.may_need_ending());
        let token = h.to_end().unwrap();
        h.ended(token);
        assert!(!h.may_need_ending());
    }

    #[test]
    fn a_stale_token_never_hides_a_newer_run() {
        let h = RunHint::new();
        h.lengthened();
        let early = h.to_end().unwrap(); // read before a second Success and a new Failure
        let second = h.to_end().unwrap();
        h.ended(second);
        h.lengthened(); // a new run
        h.ended(early); // the early Success finishes last
        assert!(h.may_need_ending(), "the new run still needs ending");
    }

    #[test]
    fn counters_past_2_pow_32_keep_working() {
        let start = u64::from(u32::MAX) - 1;
        let h = RunHint {
            lengthened: AtomicU64::new(start),
            ended: AtomicU64::new(start),
        };
        assert!(!h.may_need_ending());
        for _ in 0..4 {
            h.lengthened();
            assert!(
                h.may_need_ending(),
                "a run past 2^32 failures is still seen"
            );
            let token = h.to_end().unwrap();
            h.ended(token);
            assert!(!h.may_need_ending());
        }
        assert!(h.lengthened.load(Ordering::Relaxed) > u64::from(u32::MAX));
    }
}
