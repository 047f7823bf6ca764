//! Where the breaker reads the time: quanta, as nanoseconds since the breaker was built.
//!
//! The hot path reads [`quanta::Clock::recent`]: about a nanosecond, a load of a global that
//! quanta's upkeep thread refreshes. Without an upkeep thread that global is 0, which is earlier
//! than the breaker's start, so the breaker falls back to [`quanta::Clock::now`] (about 12 ns
//! here): correct either way, cheap when a service starts the upkeep once:
//!
//! ```
//! // In main(), once per process; keep the handle alive for as long as the process runs.
//! let _upkeep = quanta::Upkeep::new(std::time::Duration::from_millis(1)).start();
//! ```
//!
//! With upkeep running, time advances in steps of the upkeep interval, which bounds how precisely
//! slow calls and deadlines are measured. A mocked clock (`quanta::Clock::mock()`) answers both
//! `recent` and `now` from its mock, so tests drive time by hand and never sleep.

/// The breaker's time source.
#[derive(Clone, Debug)]
pub(crate) enum Clock {
    Quanta {
        clock: quanta::Clock,
        start: quanta::Instant,
    },
    #[cfg(all(loom, feature = "loom"))]
    Loom(LoomClock),
}

impl Clock {
    pub(crate) fn new(clock: quanta::Clock) -> Clock {
        let start = clock.now();
        Clock::Quanta { clock, start }
    }

    /// Nanoseconds since the breaker's start.
    #[inline]
    pub(crate) fn now_ns(&self) -> u64 {
        match self {
            Clock::Quanta { clock, start } => {
                let mut t = clock.recent();
                if t < *start {
                    // No upkeep thread (recent() is 0), or it has not ticked since we started.
                    t = clock.now();
                }
                // u64 arithmetic: shorter than `as_nanos()`'s u128 on this latency-bound path,
                // and exact for 584 years of uptime.
                let d = t.saturating_duration_since(*start);
                d.as_secs()
                    .wrapping_mul(1_000_000_000)
                    .wrapping_add(u64::from(d.subsec_nanos()))
            }
            #[cfg(all(loom, feature = "loom"))]
            Clock::Loom(c) => c.now_ns(),
        }
    }
}

/// A clock for loom models, built on the shim's atomics so the checker sees every read
/// (PITFALLS 8). Clones share one time.
#[cfg(all(loom, feature = "loom"))]
#[derive(Clone, Debug)]
pub struct LoomClock(std::sync::Arc<crate::sync::AtomicU64>);

#[cfg(all(loom, feature = "loom"))]
impl Default for LoomClock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(all(loom, feature = "loom"))]
impl LoomClock {
    /// A clock at t = 0.
    pub fn new() -> LoomClock {
        LoomClock(std::sync::Arc::new(crate::sync::AtomicU64::new(0)))
    }

    /// Moves time forward.
    pub fn advance(&self, by: std::time::Duration) {
        // SeqCst: tests advance time between steps and expect every thread to see it in order.
        self.0
            .fetch_add(by.as_nanos() as u64, crate::sync::Ordering::SeqCst);
    }

    fn now_ns(&self) -> u64 {
        // SeqCst: pairs with `advance`.
        self.0.load(crate::sync::Ordering::SeqCst)
    }
}
