//! Client-side adaptive throttling (the "SRE" throttle of Google's *Site Reliability
//! Engineering*, chapter "Handling Overload"): while Closed, turn away a fraction of calls that
//! grows with the share of calls the dependency failed to serve.
//!
//! The probability (`probability.rs`) is never computed on the success path: it is recomputed
//! when a Failure is recorded while Closed (after the trip rules had their say), and when a
//! throttled call is the first one the breaker sees in a new bucket interval since the last
//! computation. So it rises as soon as failures come in, and falls within one bucket width of
//! traffic as successes come in and old buckets leave the window. Each computation reads the
//! whole window and publishes the result as one word (`published.rs`). A call admitted while
//! Closed loads that word; only when its probability is non-zero does it draw from a per-thread
//! generator (`draw.rs`) and compare. No lock, no allocation, no system call.

mod draw;
mod probability;
mod published;
#[cfg(test)]
mod tests;

pub(crate) use draw::{DrawSource, draw};
pub(crate) use probability::{probability, rejects};
pub(crate) use published::{Published, PublishedCell};

use crate::error::ConfigError;

/// The default `K`.
pub(crate) const DEFAULT_K: f64 = 2.0;
/// The default `max_rejection`.
pub(crate) const DEFAULT_MAX_REJECTION: f64 = 0.9;

/// Client-side adaptive throttling: while the breaker is Closed, reject a growing fraction of
/// calls locally as the dependency stops serving them, before (or instead of) opening.
///
/// The fraction rejected is `p = max(0, (requests − K·accepts) / (requests + 1))`, capped at
/// `max_rejection`, where `requests` counts every call attempted in the window (recorded ones and
/// throttled ones) and `accepts` the Successes. Nothing is throttled while the window holds fewer
/// than [`minimum_calls`](crate::Builder::minimum_calls) requests. A throttled call gets a
/// [`Rejected`](crate::Rejected) whose [`reason`](crate::Rejected::reason) is
/// [`Reason::Throttled`](crate::Reason::Throttled). Only Closed calls are throttled: half-open
/// probes never are. The guide `docs/throttle.md` in the repository explains each setting.
///
/// With the `serde` feature it is a table `{ k = 2.0, max_rejection = 0.9 }`, either field
/// optional.
///
/// # Examples
/// ```
/// use hotbreaker::{Breaker, Throttle};
///
/// // Shed load during a brownout, never open.
/// let breaker = Breaker::builder()
///     .throttle(Throttle::sre().k(1.5).max_rejection(0.8))
///     .build()?;
/// # Ok::<(), hotbreaker::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(default, deny_unknown_fields)
)]
#[non_exhaustive]
pub struct Throttle {
    /// `K`: how many requests per Success the dependency may be sent before the throttle
    /// starts rejecting. A finite number ≥ 1.5; lower is stricter and slower to let go. Default 2.
    pub k: f64,
    /// The largest fraction of calls ever rejected, in [0, 1): some calls always reach the
    /// dependency, so its recovery is seen at once. Default 0.9.
    pub max_rejection: f64,
}

impl Throttle {
    /// The throttle with `K = 2` and `max_rejection = 0.9`.
    pub const fn sre() -> Throttle {
        Throttle {
            k: DEFAULT_K,
            max_rejection: DEFAULT_MAX_REJECTION,
        }
    }

    /// Sets `K` (a finite number ≥ 1.5). Lower rejects sooner: with `K = 2`, throttling starts
    /// once fewer than half of the requests succeed.
    pub const fn k(mut self, k: f64) -> Throttle {
        self.k = k;
        self
    }

    /// Sets the largest fraction of calls rejected (in [0, 1)).
    pub const fn max_rejection(mut self, max_rejection: f64) -> Throttle {
        self.max_rejection = max_rejection;
        self
    }
}

impl Default for Throttle {
    fn default() -> Throttle {
        Throttle::sre()
    }
}

/// The smallest `k` accepted: with a 10 s window, a throttle with K = 1.5 lets go within about
/// a minute of a recovery (docs/throttle.md); K = 1.25 takes several minutes, 1.01 hours.
pub(crate) const MIN_K: f64 = 1.5;

/// A validated [`Throttle`]: `K` and the cap in parts per 2^24.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct ThrottleRule {
    pub(crate) k: f64,
    pub(crate) max_rejection: f64,
}

impl ThrottleRule {
    /// Checks `t`; the error names the field.
    pub(crate) fn validate(t: &Throttle) -> Result<ThrottleRule, ConfigError> {
        // K below MIN_K is refused: the calls turned away keep the window's requests up, and the
        // share let through grows by about a factor of K per window, so a K near 1 hardly ever
        // lets go (K = 1 never does; docs/throttle.md).
        if !(t.k.is_finite() && t.k >= MIN_K) {
            return Err(ConfigError::new(
                "throttle.k",
                "must be a finite number ≥ 1.5",
                t.k,
            ));
        }
        if !(0.0..1.0).contains(&t.max_rejection) {
            return Err(ConfigError::new(
                "throttle.max_rejection",
                "must be in [0, 1)",
                t.max_rejection,
            ));
        }
        Ok(ThrottleRule {
            k: t.k,
            max_rejection: t.max_rejection,
        })
    }

    /// The probability for a window of `requests` and `accepts`, in parts per 2^24 (see
    /// [`probability()`]).
    pub(crate) fn parts(&self, requests: u64, accepts: u64, minimum_calls: u32) -> u32 {
        probability(self.k, self.max_rejection, requests, accepts, minimum_calls)
    }

    /// The fewest Failures that, added to a window of `requests` and `accepts`, could make the
    /// probability non-zero (at least 1): until then it is 0 whatever else happens, since a
    /// Success adds to both counts and lowers `requests − k·accepts` (k > 1). One less than the
    /// exact figure, rounded down, so that floating point can only make it smaller.
    pub(crate) fn failures_until_active(&self, requests: u64, accepts: u64) -> u64 {
        let slack = self.k * accepts as f64 - requests as f64 - 1.0;
        if slack >= crate::evaluation::LOOKAHEAD as f64 {
            crate::evaluation::LOOKAHEAD
        } else if slack >= 1.0 {
            slack as u64
        } else {
            1
        }
    }
}
