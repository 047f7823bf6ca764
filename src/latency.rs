//! The typical latency of a dependency, for latency-relative slow calls
//! ([`SlowCalls::relative`](crate::SlowCalls::relative)).
//!
//! The reasoning behind it: `docs/internals.md`, "Design notes", `latency.rs`.
//!
//! # The word
//! One `u64`, updated by a single compare-and-swap (a thread that loses it leaves the sample to
//! the winner: wait-free):
//!
//! | bits | field |
//! |------|-------|
//! | 0..32 | the estimate, `log2(ns)` in fixed point with 24 fractional bits (0 ..= 64) |
//! | 32..40 | samples taken, saturating at 255 |
//! | 40..64 | the low 24 bits of the sampling period of the last sample |
//!
//! The period stamp wraps after 2^24 periods (194 days at 1 s, 4.6 hours at 1 ms): a sample whose
//! period has the same low bits as the last sample's is skipped, which only delays the estimate
//! by one period.
//!
//! # Ordering
//! `Relaxed` loads and compare-and-swap: the word is self-contained and publishes nothing else;
//! a reader that sees an older estimate judges one call against the estimate of one period
//! earlier.

use crate::sync::{AtomicU64, Ordering};

/// Samples taken before any call can be slow.
pub(crate) const WARM_UP: u32 = 4;
/// The sampling period with a count window: 100 ms.
pub(crate) const COUNT_WINDOW_PERIOD: u64 = 100_000_000;
/// The weight of a sample once the first ones are averaged: `1 / 2^ALPHA_SHIFT`.
const ALPHA_SHIFT: u32 = 3;
const FRAC_BITS: u32 = 24;
const ONE: f64 = (1u64 << FRAC_BITS) as f64;
const ESTIMATE_MASK: u64 = u32::MAX as u64;
const SAMPLES_SHIFT: u32 = 32;
const STAMP_SHIFT: u32 = 40;
const STAMP_MASK: u64 = (1 << 24) - 1;

/// The estimate as numbers: what the word holds, without the stamp. Pure: the estimator's tests
/// run on it without threads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Estimate {
    /// `log2(ns)`, 24 fractional bits.
    log2: u32,
    /// Samples taken, saturating.
    samples: u8,
}

impl Estimate {
    /// The estimate after one more sample of `ns` nanoseconds (0 counts as 1).
    pub(crate) fn observe(self, ns: u64) -> Estimate {
        let x = ((ns.max(1) as f64).log2() * ONE).round() as i64;
        let old = i64::from(self.log2);
        let n = i64::from(self.samples) + 1;
        let delta = x - old;
        let step = if n <= 1 << ALPHA_SHIFT {
            delta / n
        } else {
            delta >> ALPHA_SHIFT
        };
        Estimate {
            log2: (old + step).clamp(0, i64::from(u32::MAX)) as u32,
            samples: self.samples.saturating_add(1),
        }
    }

    /// Whether enough samples were taken for any call to be slow.
    pub(crate) fn warm(self) -> bool {
        u32::from(self.samples) >= WARM_UP
    }

    /// The typical latency in ns (`2^estimate`); 0 before the first sample.
    pub(crate) fn typical_ns(self) -> u64 {
        if self.samples == 0 {
            return 0;
        }
        (f64::from(self.log2) / ONE).exp2() as u64
    }

    /// A call longer than this is slow: `max(floor_ns, multiplier · typical)`, or `u64::MAX`
    /// (nothing is slow) while warming up.
    pub(crate) fn threshold_ns(self, multiplier: f64, floor_ns: u64) -> u64 {
        if !self.warm() {
            return u64::MAX;
        }
        let relative = (f64::from(self.log2) / ONE).exp2() * multiplier;
        // `as` saturates: a threshold past u64::MAX ns is never reached.
        (relative as u64).max(floor_ns)
    }

    fn of(word: u64) -> Estimate {
        Estimate {
            log2: (word & ESTIMATE_MASK) as u32,
            samples: (word >> SAMPLES_SHIFT) as u8,
        }
    }

    fn with_stamp(self, period: u64) -> u64 {
        u64::from(self.log2)
            | (u64::from(self.samples) << SAMPLES_SHIFT)
            | ((period & STAMP_MASK) << STAMP_SHIFT)
    }
}

/// The estimator's word (module docs).
#[derive(Debug)]
pub(crate) struct TypicalCell(AtomicU64);

impl TypicalCell {
    pub(crate) fn new() -> TypicalCell {
        TypicalCell(AtomicU64::new(0))
    }

    /// The estimate in force.
    pub(crate) fn load(&self) -> Estimate {
        // Relaxed: see the module's "Ordering".
        Estimate::of(self.0.load(Ordering::Relaxed))
    }

    /// Learns `ns` if no sample was taken in sampling period `period` yet (one compare-and-swap;
    /// a lost race leaves the period's sample to the winner).
    pub(crate) fn sample(&self, ns: u64, period: u64) {
        // Relaxed: see the module's "Ordering".
        let word = self.0.load(Ordering::Relaxed);
        let old = Estimate::of(word);
        if old.samples > 0 && (word >> STAMP_SHIFT) == period & STAMP_MASK {
            return;
        }
        let new = old.observe(ns).with_stamp(period);
        // Relaxed (both): see the module's "Ordering".
        let _ = self
            .0
            .compare_exchange(word, new, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// Forgets everything learned: warm-up starts again.
    pub(crate) fn reset(&self) {
        // Relaxed: see the module's "Ordering".
        self.0.store(0, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn feed(mut e: Estimate, ns: u64, n: usize) -> Estimate {
        for _ in 0..n {
            e = e.observe(ns);
        }
        e
    }

    fn slow(e: Estimate, ns: u64) -> bool {
        ns > e.threshold_ns(4.0, MS / 2)
    }

    #[test]
    fn nothing_is_slow_during_warm_up() {
        let mut e = Estimate::default();
        for k in 0..WARM_UP {
            assert!(!slow(e, 10_000 * MS), "after {k} samples");
            e = e.observe(MS);
        }
        assert!(slow(e, 10_000 * MS));
        assert!(
            !slow(e, 4 * MS - 1000),
            "4 × 1 ms, within the fixed point's rounding"
        );
        assert!(slow(e, 4 * MS + 1000));
    }

    #[test]
    fn a_steady_stream_is_learned_exactly() {
        let e = feed(Estimate::default(), 2 * MS, 3);
        let t = e.typical_ns();
        assert!(t.abs_diff(2 * MS) < 2 * MS / 1000, "{t}");
    }

    #[test]
    fn the_floor_holds_for_a_fast_dependency() {
        let e = feed(Estimate::default(), 50_000, 20);
        assert!(!slow(e, 200_000 + 1), "4 × 50 µs is under the floor");
        assert!(!slow(e, MS / 2));
        assert!(slow(e, MS / 2 + 1));
    }

    /// 2 ms → 20 ms: calls at 20 ms stop being slow after 4 samples; calls at 200 ms stay
    /// slow for good.
    #[test]
    fn step_change_is_followed_in_four_samples() {
        let mut e = feed(Estimate::default(), 2 * MS, 50);
        assert!(slow(e, 20 * MS));
        let mut k = 0;
        while slow(e, 20 * MS) {
            e = e.observe(20 * MS);
            k += 1;
        }
        assert_eq!(k, 4);
        for _ in 0..1000 {
            assert!(slow(e, 200 * MS));
            e = e.observe(20 * MS);
        }
        let t = e.typical_ns();
        assert!(t.abs_diff(20 * MS) < 20 * MS / 100, "{t}");
    }

    /// 2 ms → 200 ms: nine samples.
    #[test]
    fn a_hundredfold_spike_is_slow_for_nine_samples() {
        let mut e = feed(Estimate::default(), 2 * MS, 50);
        let mut k = 0;
        while slow(e, 200 * MS) {
            e = e.observe(200 * MS);
            k += 1;
        }
        assert_eq!(k, 9);
    }

    /// Half the distance of a shift is covered in 5 to 6 samples.
    #[test]
    fn half_life_in_samples() {
        let mut e = feed(Estimate::default(), MS, 50);
        let mut k = 0;
        while e.typical_ns() < 16 * MS {
            e = e.observe(256 * MS); // 8 octaves away: half is 4 octaves, 16 ms
            k += 1;
        }
        assert!((5..=6).contains(&k), "{k}");
    }

    /// Latency doubling over 10 000 samples: the estimate lags by a few percent and the
    /// current latency is never slow.
    #[test]
    fn slow_drift_is_tracked_without_slow_calls() {
        let mut e = feed(Estimate::default(), 2 * MS, 10);
        for i in 0..10_000u64 {
            let ns = 2 * MS + 2 * MS * i / 10_000;
            assert!(!slow(e, ns), "sample {i}");
            e = e.observe(ns);
        }
        let t = e.typical_ns();
        assert!(t.abs_diff(4 * MS) < 4 * MS / 50, "{t}");
        assert!(slow(e, 40 * MS));
    }

    /// 90 % at 1 ms, 10 % at 50 ms: the estimate stays within the common mode's neighbourhood
    /// (about 1.5 ms, the geometric mean), the rare mode stays slow, the common mode never is.
    #[test]
    fn bimodal_stays_near_the_common_mode() {
        let mut e = feed(Estimate::default(), MS, 10);
        let (mut lo, mut hi) = (u64::MAX, 0);
        let (mut slow_fast, mut slow_rare) = (0, 0);
        for i in 0..10_000 {
            let ns = if i % 10 == 9 { 50 * MS } else { MS };
            if slow(e, ns) {
                if ns == MS {
                    slow_fast += 1;
                } else {
                    slow_rare += 1;
                }
            }
            e = e.observe(ns);
            if i > 100 {
                lo = lo.min(e.typical_ns());
                hi = hi.max(e.typical_ns());
            }
        }
        assert!(lo > MS && hi < 3 * MS, "{lo}..{hi}");
        assert_eq!(slow_fast, 0);
        assert_eq!(slow_rare, 1000);
    }

    #[test]
    fn one_sample_per_period() {
        let cell = TypicalCell::new();
        cell.sample(MS, 7);
        cell.sample(100 * MS, 7);
        assert_eq!(cell.load().samples, 1);
        assert!(cell.load().typical_ns().abs_diff(MS) < 1000);
        cell.sample(MS, 8);
        cell.sample(MS, 8 + (1 << 24)); // same low bits: skipped
        assert_eq!(cell.load().samples, 2);
        cell.reset();
        assert_eq!(cell.load(), Estimate::default());
    }

    /// Racing samplers of one period: exactly one sample is learned, and it is one of theirs.
    #[cfg(not(hotbreaker_loom))]
    #[test]
    fn racing_samplers_learn_one_sample_per_period() {
        for round in 0..200u64 {
            let cell = TypicalCell::new();
            std::thread::scope(|s| {
                for t in 1..=4u64 {
                    let cell = &cell;
                    s.spawn(move || cell.sample(t * MS, round));
                }
            });
            let e = cell.load();
            assert_eq!(e.samples, 1);
            assert!(
                (1..=4).any(|t| e.typical_ns().abs_diff(t * MS) < 1000),
                "{e:?}"
            );
        }
    }

    #[test]
    fn extremes_stay_in_range() {
        let e = feed(Estimate::default(), u64::MAX, 10);
        assert!(e.log2 <= 64 << FRAC_BITS);
        assert_eq!(e.threshold_ns(1e300, 0), u64::MAX);
        let e = feed(Estimate::default(), 0, 10);
        assert_eq!(e.typical_ns(), 1);
    }
}
