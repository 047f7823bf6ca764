//! The probability, its published word and the draw.

use super::probability::P_BITS;
use super::published::GENERATION_MASK;
use super::*;

mod failures_until_active {
    use super::*;

    #[test]
    fn fewer_failures_than_the_answer_never_make_the_probability_non_zero() {
        for k in [1.5, 2.0, 3.7] {
            let rule = ThrottleRule::validate(&Throttle::sre().k(k)).unwrap();
            for accepts in 0..300u64 {
                for requests in accepts..accepts + 300 {
                    if rule.parts(requests, accepts, 0) != 0 {
                        continue; // shedding already: recomputed on every Failure
                    }
                    let d = rule.failures_until_active(requests, accepts);
                    assert!(d >= 1);
                    for extra in 1..d {
                        assert_eq!(
                            rule.parts(requests + extra, accepts, 0),
                            0,
                            "k {k}: {requests} requests, {accepts} accepts, {extra} failures"
                        );
                    }
                }
            }
        }
    }
}

mod rest {
    use super::*;

    const ONE: u32 = 1 << P_BITS;

    fn p(requests: u64, accepts: u64) -> u32 {
        probability(2.0, 0.9, requests, accepts, 1)
    }

    #[test]
    fn the_formula_at_known_points() {
        // Everything served: nothing rejected.
        assert_eq!(p(100, 100), 0);
        // Exactly half served with K = 2: the edge, still nothing.
        assert_eq!(p(100, 50), 0);
        // 100 requests, 10 served: (100 − 20) / 101.
        let expected = (80.0 / 101.0 * f64::from(ONE)) as u32;
        assert_eq!(p(100, 10), expected);
        // Nothing served: 100 / 101 capped at 0.9.
        assert_eq!(p(100, 0), (0.9 * f64::from(ONE)) as u32);
        // K = 1: rejects as soon as anything fails.
        assert!(probability(1.0, 0.9, 100, 99, 1) > 0);
        // A cap of 0 turns it off.
        assert_eq!(probability(2.0, 0.0, 100, 0, 1), 0);
        // An empty window.
        assert_eq!(p(0, 0), 0);
    }

    #[test]
    fn nothing_below_minimum_calls() {
        assert_eq!(probability(2.0, 0.9, 19, 0, 20), 0);
        assert!(probability(2.0, 0.9, 20, 0, 20) > 0);
    }

    #[test]
    fn always_below_one_and_monotonic_in_failures() {
        for requests in [1u64, 2, 10, 1_000, 1 << 40] {
            let mut last = u32::MAX;
            for accepts in 0..=requests.min(1_000) {
                let v = probability(1.0, 0.999_999_999, requests, accepts, 1);
                assert!(v < ONE);
                assert!(v <= last, "{requests} {accepts}");
                last = v;
            }
        }
    }

    #[test]
    fn validation_names_the_field() {
        let bad = |t: Throttle| ThrottleRule::validate(&t).unwrap_err().field().to_owned();
        assert_eq!(bad(Throttle::sre().k(0.99)), "throttle.k");
        assert_eq!(bad(Throttle::sre().k(f64::INFINITY)), "throttle.k");
        assert_eq!(bad(Throttle::sre().k(f64::NAN)), "throttle.k");
        assert_eq!(
            bad(Throttle::sre().max_rejection(1.0)),
            "throttle.max_rejection"
        );
        assert_eq!(
            bad(Throttle::sre().max_rejection(-0.1)),
            "throttle.max_rejection"
        );
        assert_eq!(
            bad(Throttle::sre().max_rejection(f64::NAN)),
            "throttle.max_rejection"
        );
        assert_eq!(bad(Throttle::sre().k(1.0)), "throttle.k", "never lets go");
        assert_eq!(
            bad(Throttle::sre().k(1.01)),
            "throttle.k",
            "hardly ever lets go"
        );
        assert!(ThrottleRule::validate(&Throttle::sre().k(1.5).max_rejection(0.0)).is_ok());
    }

    #[test]
    fn a_draw_rejects_with_probability_parts_over_2_pow_24() {
        assert!(!rejects(0, 0));
        assert!(rejects(0, 1));
        assert!(!rejects(1 << 8, 1));
        assert!(rejects(u32::MAX, ONE - 1) == ((u32::MAX >> 8) < ONE - 1));
        assert!(!rejects(u32::MAX, ONE - 1));
    }

    #[test]
    fn published_words_keep_their_generation() {
        let w = Published::new(7, 123);
        assert!(w.is_active() && w.is_for(7) && !w.is_for(8));
        assert_eq!(w.parts(), 123);
        assert!(!Published::new(7, 0).is_active());
        let high = Published::new(GENERATION_MASK + 5, ONE - 1);
        assert!(high.is_for(GENERATION_MASK + 5) && high.parts() == ONE - 1);
        let cell = PublishedCell::new();
        cell.replace(Published(0), Published::new(3, 9));
        assert_eq!(cell.load(), Published::new(3, 9));
        cell.reset(4);
        assert_eq!(cell.load(), Published::new(4, 0));
        // A computation that started before the reset loses.
        cell.replace(Published::new(3, 9), Published::new(3, 50));
        assert_eq!(cell.load(), Published::new(4, 0));
        cell.replace(Published::new(4, 0), Published::new(4, 50));
        cell.reset(4); // already this generation's: kept
        assert_eq!(cell.load().parts(), 50);
    }

    #[test]
    fn draws_look_uniform() {
        let n = 1 << 16;
        let mut buckets = [0u32; 16];
        for _ in 0..n {
            buckets[(draw() >> 28) as usize] += 1;
        }
        for b in buckets {
            assert!((3_500..4_700).contains(&b), "{buckets:?}");
        }
    }
}
