//! How long the breaker stays Open.

use std::time::Duration;

/// How long each opening lasts.
///
/// `attempt` counts openings since the breaker was last Closed (1 for the trip from Closed, 2 for
/// the first failed probe, ...), so an exponential backoff grows while a dependency stays sick
/// and starts again from `base` once it has recovered.
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use hotbreaker::Backoff;
///
/// let b = Backoff::exponential(Duration::from_secs(1), 2.0, Duration::from_secs(5));
/// assert_eq!(b.duration(1), Duration::from_secs(1));
/// assert_eq!(b.duration(3), Duration::from_secs(4));
/// assert_eq!(b.duration(4), Duration::from_secs(5)); // capped
/// assert_eq!(Backoff::fixed(Duration::from_secs(30)).duration(9), Duration::from_secs(30));
/// ```
///
/// **Jitter is on by default** for every exponential backoff, however it is made:
/// [`Backoff::exponential`], the default backoff, a `backoff` table in a file and the
/// environment's `PREFIX_BACKOFF_*`; [`without_jitter`](Backoff::without_jitter) (or
/// `jitter = false`) turns it off. Only [`Backoff::fixed`] (`open_timeout`) is exact by default.
///
/// With the `serde` feature it is a table `{ base = "1s", multiplier = 2.0, max = "30s",
/// jitter = true }`; a field left out takes the default backoff's value (5 s, ×2, 60 s, jitter).
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(from = "BackoffData", into = "BackoffData")
)]
pub struct Backoff {
    pub(crate) base: Duration,
    pub(crate) multiplier: f64,
    pub(crate) max: Duration,
    pub(crate) jitter: bool,
}

impl Backoff {
    /// The default: exponential from 5 s, ×2 per reopening, at most 60 s, with jitter. The one
    /// place this value is written; a serialized backoff fills missing fields from it.
    pub(crate) const DEFAULT: Backoff = Backoff {
        base: Duration::from_secs(5),
        multiplier: 2.0,
        max: Duration::from_secs(60),
        jitter: true,
    };

    /// Every opening lasts `duration`.
    pub fn fixed(duration: Duration) -> Backoff {
        Backoff {
            base: duration,
            multiplier: 1.0,
            max: duration,
            jitter: false,
        }
    }

    /// Opening number `attempt` lasts `base × multiplier^(attempt − 1)`, capped at `max`, with
    /// jitter (see [`with_jitter`](Backoff::with_jitter); [`without_jitter`](Backoff::without_jitter)
    /// for exact durations).
    pub fn exponential(base: Duration, multiplier: f64, max: Duration) -> Backoff {
        Backoff {
            base,
            multiplier,
            max,
            jitter: Backoff::DEFAULT.jitter,
        }
    }

    /// Each opening lasts a random duration between half the computed one and the computed one
    /// ("equal jitter"), so that many breakers tripped by one outage do not probe in lockstep.
    /// Never longer than without jitter.
    pub fn with_jitter(mut self) -> Backoff {
        self.jitter = true;
        self
    }

    /// Each opening lasts exactly the computed duration.
    pub fn without_jitter(mut self) -> Backoff {
        self.jitter = false;
        self
    }

    /// Whether openings are jittered.
    pub fn jitter(&self) -> bool {
        self.jitter
    }

    /// The duration of opening number `attempt` (≥ 1), before jitter.
    pub fn duration(&self, attempt: u32) -> Duration {
        Duration::from_nanos(self.nanos(attempt))
    }

    pub(crate) fn nanos(&self, attempt: u32) -> u64 {
        let base = self.base.as_nanos() as f64;
        let max = self.max.as_nanos() as f64;
        let exponent = attempt.saturating_sub(1).min(i32::MAX as u32) as i32;
        let d = (base * self.multiplier.powi(exponent)).min(max);
        if d.is_finite() { d as u64 } else { max as u64 }
    }

    /// The duration of opening number `attempt`, with jitter drawn from `seed` when enabled.
    pub(crate) fn nanos_jittered(&self, attempt: u32, seed: u64) -> u64 {
        let d = self.nanos(attempt);
        if !self.jitter {
            return d;
        }
        let half = d / 2;
        half + mix(seed) % (d - half + 1)
    }
}

/// splitmix64's finaliser: a well-spread number from a seed, with no state and no lock.
pub(crate) fn mix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// [`Backoff`] as it appears in a file.
#[cfg(feature = "serde")]
#[derive(Clone, Copy, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct BackoffData {
    #[serde(with = "crate::human_duration::required")]
    base: Duration,
    multiplier: f64,
    #[serde(with = "crate::human_duration::required")]
    max: Duration,
    jitter: bool,
}

#[cfg(feature = "serde")]
impl Default for BackoffData {
    fn default() -> Self {
        Backoff::DEFAULT.into()
    }
}

#[cfg(feature = "serde")]
impl From<BackoffData> for Backoff {
    fn from(d: BackoffData) -> Backoff {
        Backoff {
            base: d.base,
            multiplier: d.multiplier,
            max: d.max,
            jitter: d.jitter,
        }
    }
}

#[cfg(feature = "serde")]
impl From<Backoff> for BackoffData {
    fn from(b: Backoff) -> BackoffData {
        BackoffData {
            base: b.base,
            multiplier: b.multiplier,
            max: b.max,
            jitter: b.jitter,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponential_grows_and_caps() {
        let b = Backoff::exponential(Duration::from_secs(1), 2.0, Duration::from_secs(5));
        assert!(b.jitter() && !b.without_jitter().jitter() && !Backoff::fixed(b.max).jitter());
        let secs: Vec<u64> = (1..=6).map(|a| b.duration(a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 5, 5, 5]);
        assert_eq!(
            b.duration(255),
            Duration::from_secs(5),
            "no overflow at the attempt cap"
        );
    }

    #[test]
    fn jitter_stays_between_half_and_full() {
        let b = Backoff::fixed(Duration::from_secs(10)).with_jitter();
        let mut seen_low = false;
        for seed in 0..1_000 {
            let d = b.nanos_jittered(1, seed);
            assert!((5_000_000_000..=10_000_000_000).contains(&d));
            seen_low |= d < 7_500_000_000;
        }
        assert!(seen_low, "jitter actually varies");
        assert_eq!(
            Backoff::fixed(Duration::from_secs(3)).nanos_jittered(1, 7),
            3_000_000_000
        );
    }
}
