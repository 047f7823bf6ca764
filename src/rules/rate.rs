//! Exact rate thresholds.
//!
//! A rate rule compares `failures / calls >= rate`. Floating point gets the boundary wrong:
//! `7.0 >= 0.07 * 100.0` is false (the product is 7.000000000000001), and an exact comparison with
//! the binary value of `0.1` (a little above 1/10) would say one failure in ten misses it. So a
//! rate is held as the exact fraction `ppb / 10^9` (the rate rounded to the nearest billionth,
//! which is the decimal the user wrote for any rate with up to nine decimals) and compared by
//! integer cross-multiplication: `failures · 10^9 >= ppb · calls`. No rounding happens after that.

const SCALE: u64 = 1_000_000_000;

/// A rate in (0, 1] held as the exact fraction `ppb / 10^9`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Rate {
    ppb: u64,
}

impl Rate {
    /// `None` unless `rate` is a finite number in (0, 1]. Rates below one billionth act as one
    /// billionth (any failure reaches them).
    pub(crate) fn new(rate: f64) -> Option<Rate> {
        if !(rate > 0.0 && rate <= 1.0) {
            return None;
        }
        let ppb = ((rate * SCALE as f64).round() as u64).clamp(1, SCALE);
        Some(Rate { ppb })
    }

    /// The rate in billionths.
    pub(crate) fn ppb(self) -> u64 {
        self.ppb
    }

    /// The rate of `ppb` billionths, clamped to (0, 1].
    pub(crate) fn from_ppb(ppb: u64) -> Rate {
        Rate {
            ppb: ppb.clamp(1, SCALE),
        }
    }

    /// Whether `part / whole >= self`, exactly. `false` when `whole` is 0.
    pub(crate) fn reached(&self, part: u64, whole: u64) -> bool {
        whole != 0
            && u128::from(part) * u128::from(SCALE) >= u128::from(self.ppb) * u128::from(whole)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_out_of_range() {
        for r in [
            0.0,
            -0.1,
            1.0000001,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
            -0.0,
        ] {
            assert!(Rate::new(r).is_none(), "{r}");
        }
        for r in [1.0, 0.5, 0.3, f64::MIN_POSITIVE, 5e-324] {
            assert!(Rate::new(r).is_some(), "{r}");
        }
    }

    #[test]
    fn holds_the_decimal_the_user_wrote() {
        assert_eq!(Rate::new(0.1).unwrap().ppb, 100_000_000);
        assert_eq!(Rate::new(0.9).unwrap().ppb, 900_000_000);
        assert_eq!(Rate::new(1.0 / 3.0).unwrap().ppb, 333_333_333);
        assert_eq!(Rate::new(5e-324).unwrap().ppb, 1);
    }

    #[test]
    fn boundary_is_inclusive_and_exact_where_floats_are_not() {
        let naive = |part: f64, whole: f64, rate: f64| part >= std::hint::black_box(rate) * whole;
        // 7/100 is the rate 0.07, but 0.07 × 100 = 7.000000000000001 in f64.
        assert!(!naive(7.0, 100.0, 0.07));
        assert!(Rate::new(0.07).unwrap().reached(7, 100));
        assert!(!Rate::new(0.07).unwrap().reached(6, 100));
        assert!(!naive(55.0, 100.0, 0.55));
        assert!(Rate::new(0.55).unwrap().reached(55, 100));
        // 1/10 reaches 0.1 here, although the f64 0.1 is slightly above 1/10.
        assert!(Rate::new(0.1).unwrap().reached(1, 10));
        assert!(!Rate::new(0.1).unwrap().reached(1, 11));
        let half = Rate::new(0.5).unwrap();
        assert!(half.reached(2, 4));
        assert!(!half.reached(1, 3));
        assert!(!half.reached(0, 0));
        assert!(Rate::new(1.0).unwrap().reached(7, 7));
        assert!(!Rate::new(1.0).unwrap().reached(6, 7));
        // 1/3 reaches 0.333333333 (the nearest billionth), 333 332/1 000 000 does not.
        let third = Rate::new(1.0 / 3.0).unwrap();
        assert!(third.reached(1, 3));
        assert!(!third.reached(333_332, 1_000_000));
    }

    #[test]
    fn agrees_with_rational_arithmetic_for_every_percent() {
        for pct in 1..=100u64 {
            let r = Rate::new(pct as f64 / 100.0).unwrap();
            for whole in 1..=60u64 {
                for part in 0..=whole {
                    assert_eq!(
                        r.reached(part, whole),
                        part * 100 >= pct * whole,
                        "{part}/{whole} vs {pct}%"
                    );
                }
            }
        }
    }

    #[test]
    fn no_overflow_at_the_largest_counts() {
        let r = Rate::new(1.0).unwrap();
        assert!(r.reached(u64::MAX, u64::MAX));
        assert!(!r.reached(u64::MAX - 1, u64::MAX));
    }
}
