//! Exact unsigned division by a divisor fixed at build time, by multiplication.
//!
//! The success path maps a timestamp to its bucket (`t / width`, then `/ buckets`). A hardware
//! `div` costs about 2 ns here, as much as the whole rest of the path, so the divisor's
//! reciprocal is computed once (libdivide's "branchfull" u64 algorithm) and each division becomes
//! one 64×64→128 multiply and a shift. Exact for every `u64` numerator; see the tests.

#[derive(Clone, Copy, Debug)]
pub(crate) struct FastDiv {
    divisor: u64,
    magic: u64,
    shift: u32,
    /// libdivide's "add marker": the magic number needed 65 bits.
    add: bool,
}

impl FastDiv {
    /// Precomputes division by `divisor` (clamped to at least 1).
    pub(crate) fn new(divisor: u64) -> FastDiv {
        let d = divisor.max(1);
        let log = 63 - d.leading_zeros();
        if d.is_power_of_two() {
            return FastDiv {
                divisor: d,
                magic: 0,
                shift: log,
                add: false,
            };
        }
        // 2^(64+log) / d fits in 64 bits because d > 2^log.
        let numerator = 1u128 << (64 + log);
        let proposed = (numerator / u128::from(d)) as u64;
        let rem = (numerator % u128::from(d)) as u64;
        let e = d - rem;
        let (magic, add) = if e < (1u64 << log) {
            (proposed + 1, false)
        } else {
            let mut doubled = proposed.wrapping_add(proposed);
            let twice_rem = rem.wrapping_add(rem);
            if twice_rem >= d || twice_rem < rem {
                doubled = doubled.wrapping_add(1);
            }
            (doubled.wrapping_add(1), true)
        };
        FastDiv {
            divisor: d,
            magic,
            shift: log,
            add,
        }
    }

    /// `n / divisor`, exactly.
    #[inline]
    pub(crate) fn div(&self, n: u64) -> u64 {
        if self.magic == 0 {
            return n >> self.shift;
        }
        let q = ((u128::from(n) * u128::from(self.magic)) >> 64) as u64;
        if self.add {
            (((n - q) >> 1) + q) >> self.shift
        } else {
            q >> self.shift
        }
    }

    /// `(n / divisor, n % divisor)`.
    #[inline]
    pub(crate) fn div_rem(&self, n: u64) -> (u64, u64) {
        let q = self.div(n);
        (q, n - q * self.divisor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// splitmix64: a tiny deterministic generator for the tests.
    fn next(state: &mut u64) -> u64 {
        *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = *state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn check(d: u64, n: u64) {
        let f = FastDiv::new(d);
        assert_eq!(f.div(n), n / d, "{n} / {d}");
        assert_eq!(f.div_rem(n), (n / d, n % d), "{n} % {d}");
    }

    #[test]
    fn matches_hardware_division_on_edges() {
        let divisors = [
            1,
            2,
            3,
            7,
            10,
            641,
            1_000_000,
            1_000_000_000,
            999_999_937,
            (1 << 32) - 1,
            1 << 40,
            u64::MAX / 3,
            u64::MAX - 1,
            u64::MAX,
        ];
        for &d in &divisors {
            for n in [
                0,
                1,
                d - 1,
                d,
                d.wrapping_add(1),
                u64::MAX,
                u64::MAX - 1,
                u64::MAX / 2,
            ] {
                check(d, n);
            }
        }
    }

    #[test]
    fn matches_hardware_division_on_random_values() {
        let mut s = 42;
        for _ in 0..200_000 {
            let shift = next(&mut s) % 64;
            let d = (next(&mut s) >> shift).max(1);
            let n = next(&mut s) >> (next(&mut s) % 64);
            check(d, n);
            check(d, n - n % d); // exact multiples, where an off-by-one would show
        }
    }
}
