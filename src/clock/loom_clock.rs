//! A clock for loom models.

/// A clock for loom models, built on the shim's atomics so the checker sees every read
/// (quanta's own clock is invisible to loom). Clones share one time.
#[derive(Clone, Debug)]
pub struct LoomClock(std::sync::Arc<crate::sync::AtomicU64>);

impl Default for LoomClock {
    fn default() -> Self {
        Self::new()
    }
}

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

    pub(super) fn now_ns(&self) -> u64 {
        // SeqCst: pairs with `advance`.
        self.0.load(crate::sync::Ordering::SeqCst)
    }
}
