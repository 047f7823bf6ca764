//! The numbers a breaker decides with, readable by any thread without a lock or an allocation,
//! replaced whole by `reconfigure`.
//!
//! # Layout
//! Two copies of [`LiveRules`] encoded as [`WORDS`] `u64`s, a `version` whose parity names the copy
//! in force, and a `writing` word naming the version a writer is preparing. Writers are
//! serialized by the breaker's configuration mutex (off the hot path) and write the copy not in
//! force, then publish the new version. A reader loads the version, reads that copy, and checks
//! that no writer has started overwriting it (which only a writer two versions ahead does); if
//! one has, a newer version has been published and the reader simply reads again. A reader never
//! waits for a writer, so reading is lock-free, and it never sees a mix of two versions.
//!
//! # Orderings
//! - `version`: stored `Release` after the copy is written, loaded `Acquire` before it is read:
//!   a reader of version `v` sees all of copy `v`.
//! - `writing`: stored `Relaxed`, then a `Release` fence, then the copy's words; a reader reads
//!   the words, then an `Acquire` fence, then `writing`. If the reader saw any word of a writer
//!   that started after it loaded `version`, the fences make it see that writer's `writing` too,
//!   and it retries. The copy's words themselves are `Relaxed`: torn reads are detected, not
//!   prevented.

use std::time::Duration;

use super::backoff::Backoff;
use super::rate::Rate;
use super::{Rules, SlowRule};
use crate::state::Limits;
use crate::sync::{AtomicU64, Ordering, fence};
use crate::throttle::ThrottleRule;

/// The numeric part of [`Rules`]: everything a decision on the hot path or at a transition
/// needs. `Copy`, so a reader holds it without borrowing the cell.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct LiveRules {
    pub(crate) consecutive_failures: Option<u32>,
    pub(crate) failure_rate: Option<Rate>,
    pub(crate) minimum_calls: u32,
    pub(crate) slow: Option<SlowRule>,
    pub(crate) backoff: Backoff,
    pub(crate) limits: Limits,
    pub(crate) half_open_timeout_ns: Option<u64>,
    pub(crate) throttle: Option<ThrottleRule>,
}

impl LiveRules {
    pub(crate) fn of(rules: &Rules) -> LiveRules {
        LiveRules {
            consecutive_failures: rules.consecutive_failures,
            failure_rate: rules.failure_rate,
            minimum_calls: rules.minimum_calls,
            slow: rules.slow,
            backoff: rules.backoff,
            limits: rules.limits,
            half_open_timeout_ns: rules.half_open_timeout_ns,
            throttle: rules.throttle,
        }
    }

    /// The slow-call threshold in ns (the floor of a relative rule), `u64::MAX` when slow-call
    /// detection is off: not `u64::MAX` exactly when permits are timed.
    pub(crate) fn slow_ns(&self) -> u64 {
        self.slow.map_or(u64::MAX, |s| s.duration_ns)
    }

    fn encode(&self) -> [u64; WORDS] {
        let ns = |d: Duration| d.as_nanos().min(u128::from(u64::MAX)) as u64;
        [
            self.consecutive_failures.map_or(0, u64::from),
            self.failure_rate.map_or(0, Rate::ppb),
            u64::from(self.minimum_calls),
            self.slow_ns(),
            // The rate (at most 10^9) below, a relative rule's multiplier (an `f32` > 1, so never
            // the bits 0) above.
            self.slow.map_or(0, |s| {
                s.rate.ppb() | s.relative.map_or(0, |m| u64::from(m.to_bits()) << 32)
            }),
            ns(self.backoff.base),
            self.backoff.multiplier.to_bits(),
            ns(self.backoff.max),
            u64::from(self.backoff.jitter),
            u64::from(self.limits.half_open_permits),
            u64::from(self.limits.half_open_successes),
            self.half_open_timeout_ns.unwrap_or(0),
            // K ≥ 1, so 0 (the bits of 0.0) stands for "no throttle".
            self.throttle.map_or(0, |t| t.k.to_bits()),
            self.throttle.map_or(0, |t| t.max_rejection.to_bits()),
        ]
    }

    fn decode(w: &[u64; WORDS]) -> LiveRules {
        let nonzero = |v: u64| (v != 0).then_some(v);
        LiveRules {
            consecutive_failures: nonzero(w[0]).map(|v| v as u32),
            failure_rate: nonzero(w[1]).map(Rate::from_ppb),
            minimum_calls: w[2] as u32,
            slow: (w[3] != u64::MAX).then(|| SlowRule {
                duration_ns: w[3],
                rate: Rate::from_ppb(w[4] & u64::from(u32::MAX)),
                relative: nonzero(w[4] >> 32).map(|m| f32::from_bits(m as u32)),
            }),
            backoff: Backoff {
                base: Duration::from_nanos(w[5]),
                multiplier: f64::from_bits(w[6]),
                max: Duration::from_nanos(w[7]),
                jitter: w[8] != 0,
            },
            limits: Limits {
                half_open_permits: w[9] as u32,
                half_open_successes: w[10] as u32,
            },
            half_open_timeout_ns: nonzero(w[11]),
            throttle: nonzero(w[12]).map(|k| ThrottleRule {
                k: f64::from_bits(k),
                max_rejection: f64::from_bits(w[13]),
            }),
        }
    }
}

/// Words per encoded [`LiveRules`].
const WORDS: usize = 14;

/// Two copies of the rules and the version in force (module docs).
#[derive(Debug)]
pub(crate) struct RulesCell {
    version: AtomicU64,
    writing: AtomicU64,
    copies: [[AtomicU64; WORDS]; 2],
}

impl RulesCell {
    pub(crate) fn new(rules: LiveRules) -> RulesCell {
        let words = rules.encode();
        RulesCell {
            version: AtomicU64::new(0),
            writing: AtomicU64::new(0),
            copies: std::array::from_fn(|_| std::array::from_fn(|i| AtomicU64::new(words[i]))),
        }
    }

    /// The rules in force.
    pub(crate) fn load(&self) -> LiveRules {
        loop {
            // Acquire: see the module's "Orderings".
            let version = self.version.load(Ordering::Acquire);
            let copy = &self.copies[(version & 1) as usize];
            // Relaxed: torn reads are detected below.
            let words: [u64; WORDS] = std::array::from_fn(|i| copy[i].load(Ordering::Relaxed));
            fence(Ordering::Acquire);
            // Relaxed: ordered by the fence above.
            if self.writing.load(Ordering::Relaxed) < version + 2 {
                return LiveRules::decode(&words);
            }
        }
    }

    /// Installs `rules`. Callers must be serialized (the breaker holds its configuration lock).
    pub(crate) fn store(&self, rules: LiveRules) {
        let words = rules.encode();
        // Relaxed: only this (serialized) writer stores the version.
        let next = self.version.load(Ordering::Relaxed) + 1;
        // Relaxed + Release fence: see the module's "Orderings".
        self.writing.store(next, Ordering::Relaxed);
        fence(Ordering::Release);
        for (cell, word) in self.copies[(next & 1) as usize].iter().zip(words) {
            cell.store(word, Ordering::Relaxed);
        }
        // Release: see the module's "Orderings".
        self.version.store(next, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> LiveRules {
        LiveRules {
            consecutive_failures: Some(7),
            failure_rate: Rate::new(0.25),
            minimum_calls: 1_000_000,
            slow: Some(SlowRule {
                duration_ns: 1_500_000,
                rate: Rate::new(1.0).unwrap(),
                relative: Some(4.5),
            }),
            backoff: Backoff::exponential(
                Duration::from_millis(3),
                1.5,
                Duration::from_secs(365 * 86_400),
            )
            .with_jitter(),
            limits: Limits {
                half_open_permits: 1_023,
                half_open_successes: 2,
            },
            half_open_timeout_ns: Some(9),
            throttle: Some(ThrottleRule {
                k: 1.25,
                max_rejection: 0.0,
            }),
        }
    }

    #[test]
    fn encodes_every_field_losslessly() {
        let r = sample();
        assert_eq!(LiveRules::decode(&r.encode()), r);
        let none = LiveRules {
            consecutive_failures: None,
            failure_rate: None,
            slow: None,
            half_open_timeout_ns: None,
            throttle: None,
            ..r
        };
        assert_eq!(LiveRules::decode(&none.encode()), none);
    }

    #[test]
    fn store_replaces_the_whole_set_every_time() {
        let cell = RulesCell::new(sample());
        for n in 1..=5u32 {
            let r = LiveRules {
                consecutive_failures: Some(n),
                minimum_calls: n,
                ..sample()
            };
            cell.store(r);
            assert_eq!(cell.load(), r);
        }
    }

    #[test]
    fn versions_past_2_pow_32_still_read_whole() {
        let cell = RulesCell::new(sample());
        cell.version
            .store(u64::from(u32::MAX) - 1, Ordering::Relaxed);
        cell.writing
            .store(u64::from(u32::MAX) - 1, Ordering::Relaxed);
        for n in 1..=4u32 {
            let r = LiveRules {
                minimum_calls: n,
                ..sample()
            };
            cell.store(r);
            assert_eq!(cell.load(), r);
        }
    }
}
