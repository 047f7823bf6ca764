//! A clock whose recent and real readings are set by hand, run through the same guard.

use std::sync::Mutex; // test-only, off the hot path: stands in for a thread-local
use std::sync::atomic::{AtomicU64, Ordering};

use super::recent_guard::{Seen, repeated};

/// `recent` is what quanta's global would say, `real` what `now()` would.
#[derive(Debug)]
pub(crate) struct SplitClock {
    pub(crate) recent: AtomicU64,
    pub(crate) real: AtomicU64,
    seen: Mutex<Seen<u64>>, // test-only, off the hot path
}

impl Default for SplitClock {
    fn default() -> Self {
        SplitClock {
            recent: AtomicU64::new(0),
            real: AtomicU64::new(0),
            seen: Mutex::new(Seen::NOTHING), // test-only, off the hot path
        }
    }
}

impl SplitClock {
    /// Both readings at `ns`.
    pub(crate) fn set(&self, ns: u64) {
        self.recent.store(ns, Ordering::SeqCst);
        self.real.store(ns, Ordering::SeqCst);
    }

    /// Only the real clock moves: the upkeep has stopped.
    pub(crate) fn advance_real(&self, ns: u64) {
        self.real.fetch_add(ns, Ordering::SeqCst);
    }

    pub(crate) fn real_ns(&self) -> u64 {
        self.real.load(Ordering::SeqCst)
    }

    /// `TimeSource::recent_at`: the recent reading as it is.
    pub(crate) fn recent_ns(&self) -> u64 {
        self.recent.load(Ordering::SeqCst)
    }

    /// `TimeSource::now_ns` for one thread, on these two readings.
    pub(crate) fn now_ns(&self) -> u64 {
        let recent = self.recent.load(Ordering::SeqCst);
        let mut seen = self.seen.lock().unwrap();
        if seen.recent != Some(recent) {
            *seen = Seen::fresh(recent);
            return recent;
        }
        let (next, real) = repeated(*seen, || {
            let real = self.real_ns();
            (real, real.saturating_sub(recent))
        });
        *seen = next;
        real.unwrap_or(recent)
    }
}
