//! A configuration both the model and the real breaker can be built from.

use std::time::Duration;

use hotbreaker::{Backoff, Breaker, Builder, Throttle};

/// The window's shape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Window {
    Time { width_ns: u64, buckets: u32 },
    Count(u32),
}

/// Every setting the differential test varies (no jitter: the model has no randomness).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModelConfig {
    pub consecutive: Option<u32>,
    /// The failure rate in billionths (the breaker holds rates exactly so).
    pub failure_rate_ppb: Option<u64>,
    pub minimum_calls: u32,
    pub window: Window,
    /// (slow if longer than, ns; slow-call rate in billionths).
    pub slow: Option<(u64, u64)>,
    /// A custom rule: trip when the window holds at least this many failures.
    pub trip_at_failures: Option<u64>,
    pub backoff_base_ns: u64,
    pub backoff_multiplier: f64,
    pub backoff_max_ns: u64,
    pub half_open_permits: u32,
    pub half_open_successes: u32,
    pub half_open_timeout: Option<u64>,
    /// The throttle: (K, max_rejection). Time windows only.
    pub throttle: Option<(f64, f64)>,
}

/// The `n`-th draw of the throttle's replayed random source (splitmix64 of `n`, low 32 bits):
/// the breaker and the model each take them in order.
pub fn draw_at(n: u64) -> u32 {
    let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    (z ^ (z >> 31)) as u32
}

fn rate(ppb: u64) -> f64 {
    ppb as f64 / 1e9
}

impl ModelConfig {
    /// The open duration of opening number `attempt`: `Backoff::exponential` without jitter.
    pub fn open_ns(&self, attempt: u32) -> u64 {
        self.backoff().duration(attempt).as_nanos() as u64
    }

    /// One lap of a time window's ring: `buckets + 1` slots (as the breaker's rings and marks
    /// keep), times the bucket width. A count window has no ring; one second stands in for it.
    pub fn lap_ns(&self) -> u64 {
        match self.window {
            Window::Time { width_ns, buckets } => width_ns.saturating_mul(u64::from(buckets) + 1),
            Window::Count(_) => 1_000_000_000,
        }
    }

    /// How long a time window spans (none for a count window).
    pub fn window_ns(&self) -> Option<u64> {
        match self.window {
            Window::Time { width_ns, buckets } => Some(width_ns * u64::from(buckets)),
            Window::Count(_) => None,
        }
    }

    fn backoff(&self) -> Backoff {
        Backoff::exponential(
            Duration::from_nanos(self.backoff_base_ns),
            self.backoff_multiplier,
            Duration::from_nanos(self.backoff_max_ns),
        )
        .without_jitter()
    }

    /// The same configuration for the real breaker (clock and stripes left to the caller).
    pub fn builder(&self) -> Builder {
        let mut b = Breaker::builder()
            .minimum_calls(self.minimum_calls)
            .backoff(self.backoff())
            .half_open_permits(self.half_open_permits)
            .half_open_successes(self.half_open_successes);
        b = match self.window {
            Window::Time { width_ns, buckets } => {
                b.time_window(Duration::from_nanos(width_ns * u64::from(buckets)), buckets)
            }
            Window::Count(n) => b.count_window(n),
        };
        if let Some(n) = self.consecutive {
            b = b.consecutive_failures(n);
        }
        if let Some(r) = self.failure_rate_ppb {
            b = b.failure_rate(rate(r));
        }
        if let Some((d, r)) = self.slow {
            b = b.slow_calls(Duration::from_nanos(d), rate(r));
        }
        if let Some(k) = self.trip_at_failures {
            b = b.trip_when(move |w| w.failures >= k);
        }
        if let Some(t) = self.half_open_timeout {
            b = b.half_open_timeout(Duration::from_nanos(t));
        }
        if let Some((k, max)) = self.throttle {
            b = b.throttle(Throttle::sre().k(k).max_rejection(max));
        }
        b
    }
}
