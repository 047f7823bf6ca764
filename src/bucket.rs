//! One time-window bucket of one stripe, packed into a `u64`, and the pure decision of what
//! recording an outcome does to it (PITFALLS 2: epoch and counts in one word, rotation by CAS).

/// Bit layout of a bucket word, least significant bit first:
///
/// | bits   | width | field    | meaning |
/// |--------|-------|----------|---------|
/// | 0..16  | 16    | calls    | Successes + Failures recorded here (at most 65 535) |
/// | 16..32 | 16    | failures | Failures among them |
/// | 32..48 | 16    | slow     | slow calls among them |
/// | 48..64 | 16    | vlap     | `(lap + 2 · generation) mod 2^16` the counts belong to |
///
/// `lap` is `bucket_index / buckets`: how many times the ring has gone round since the breaker's
/// start, and `generation` is the state generation of the permits that recorded here. A reader
/// in generation `g` at time `t` counts a bucket only if its vlap is the one `(t, g)` expects for
/// that slot; so when the breaker closes again (a new generation) or is reset, every old bucket
/// stops counting at once without being touched, and a late permit of an older generation can
/// only write into buckets nobody reads (SPEC rules 2 and 6).
///
/// Each change to a bucket is one compare-and-swap of the whole word, so a rotation (a new lap
/// or generation replacing the old counts) can never lose or misplace a concurrent add. The
/// counts a rotation replaces are handed back (see [`Decision::Rotate`]) and added to the
/// stripe's lifetime totals by the thread that won the swap: lifetime totals are the sum of those
/// folded counts and the live buckets, exact whatever the interleaving (SPEC rule 7).
///
/// A bucket whose call count is full halves all three counts (rounding down) before adding,
/// and the halves it drops are folded into the lifetime totals like a rotation's: past 65 535
/// calls per bucket and stripe, the window keeps the rates and a scaled-down count, and the
/// lifetime totals stay exact (PITFALLS 4: no counter ever wraps into a wrong answer).
///
/// A bucket untouched for exactly a multiple of 2^16 laps would alias; the default 10 s window
/// needs 7.6 days of silence on one slot for that, and the effect is one bucket's old counts
/// rejoining the window until the slot is next written.
pub(crate) const CALLS_MAX: u64 = 0xFFFF;
const FIELD: u64 = 0xFFFF;
const FAILURES_SHIFT: u32 = 16;
const SLOW_SHIFT: u32 = 32;
const VLAP_SHIFT: u32 = 48;
/// vlap values wrap at this modulus.
pub(crate) const VLAP_MODULUS: u64 = 1 << 16;
/// How far ahead of the writer a bucket may be and still count as newer (two laps): the slack
/// for two threads that read the clock a moment apart, one on each side of a lap boundary.
const NEWER_SLACK: u64 = 2;

/// What one recorded outcome adds to a bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sample {
    pub(crate) failure: bool,
    pub(crate) slow: bool,
}

impl Sample {
    /// A Success that was not slow.
    pub(crate) const SUCCESS: Sample = Sample {
        failure: false,
        slow: false,
    };
}

/// The counts held by a bucket word.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts {
    pub(crate) calls: u64,
    pub(crate) failures: u64,
    pub(crate) slow: u64,
}

pub(crate) fn vlap(lap: u64, generation: u64) -> u64 {
    lap.wrapping_add(generation.wrapping_mul(2)) % VLAP_MODULUS
}

pub(crate) fn vlap_of(word: u64) -> u64 {
    word >> VLAP_SHIFT
}

pub(crate) fn counts(word: u64) -> Counts {
    Counts {
        calls: word & FIELD,
        failures: (word >> FAILURES_SHIFT) & FIELD,
        slow: (word >> SLOW_SHIFT) & FIELD,
    }
}

#[cfg(test)]
pub(crate) fn pack(vlap: u64, c: Counts) -> u64 {
    debug_assert!(c.calls <= CALLS_MAX && c.failures <= c.calls && c.slow <= c.calls);
    pack_unchecked(vlap, c)
}

fn pack_unchecked(vlap: u64, c: Counts) -> u64 {
    ((vlap % VLAP_MODULUS) << VLAP_SHIFT)
        | (c.slow << SLOW_SHIFT)
        | (c.failures << FAILURES_SHIFT)
        | c.calls
}

fn delta(s: Sample) -> u64 {
    1 | (u64::from(s.failure) << FAILURES_SHIFT) | (u64::from(s.slow) << SLOW_SHIFT)
}

/// What recording a sample at `vlap` does to a bucket holding `word`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Same lap and generation: install this word (the sample added).
    Add(u64),
    /// The bucket is from an older lap or generation: install this word (the sample alone) and
    /// fold the returned counts into the lifetime totals.
    Rotate(u64, Counts),
    /// The bucket's call count is full: install this word (counts halved, the sample added)
    /// and fold the returned counts (the halves dropped) into the lifetime totals.
    Rescale(u64, Counts),
    /// The bucket already belongs to a newer lap: the sample only counts in the lifetime totals.
    Newer,
}

/// The common case, inlined on the success path: same lap and generation, room left.
#[inline]
pub(crate) fn add(word: u64, vlap: u64, sample: Sample) -> Option<u64> {
    // Cannot carry between fields: calls < 65 535 and failures, slow ≤ calls.
    (vlap_of(word) == vlap && word & FIELD != CALLS_MAX).then(|| word + delta(sample))
}

pub(crate) fn decide(word: u64, vlap: u64, sample: Sample) -> Decision {
    let held = vlap_of(word);
    if held == vlap {
        match add(word, vlap, sample) {
            Some(new) => Decision::Add(new),
            None => {
                let c = counts(word);
                let kept = Counts {
                    calls: c.calls / 2,
                    failures: c.failures / 2,
                    slow: c.slow / 2,
                };
                let dropped = Counts {
                    calls: c.calls - kept.calls,
                    failures: c.failures - kept.failures,
                    slow: c.slow - kept.slow,
                };
                Decision::Rescale(pack_unchecked(vlap, kept) + delta(sample), dropped)
            }
        }
    } else {
        let ahead = held.wrapping_sub(vlap) % VLAP_MODULUS;
        if ahead <= NEWER_SLACK {
            Decision::Newer
        } else {
            Decision::Rotate((vlap << VLAP_SHIFT) | delta(sample), counts(word))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: Sample = Sample {
        failure: true,
        slow: false,
    };
    const S: Sample = Sample {
        failure: false,
        slow: false,
    };
    const SLOW_F: Sample = Sample {
        failure: true,
        slow: true,
    };

    fn apply(word: u64, vlap: u64, s: Sample) -> u64 {
        match decide(word, vlap, s) {
            Decision::Add(w) | Decision::Rotate(w, _) | Decision::Rescale(w, _) => w,
            d => panic!("unexpected {d:?}"),
        }
    }

    #[test]
    fn pack_round_trips() {
        let c = Counts {
            calls: 65_535,
            failures: 65_535,
            slow: 12,
        };
        let w = pack(0xFFFF, c);
        assert_eq!(counts(w), c);
        assert_eq!(vlap_of(w), 0xFFFF);
        assert_eq!(pack(0xFFFF, c) | 0xFFFF_0000_0000, u64::MAX);
        assert_eq!(vlap(3, 5), 13);
        assert_eq!(vlap(VLAP_MODULUS - 1, 1), 1, "wraps");
    }

    #[test]
    fn adds_within_the_same_lap() {
        let mut w = pack(7, Counts::default());
        for s in [S, F, SLOW_F, S] {
            w = apply(w, 7, s);
        }
        assert_eq!(
            counts(w),
            Counts {
                calls: 4,
                failures: 2,
                slow: 1
            }
        );
    }

    #[test]
    fn rotates_an_older_lap_and_hands_back_its_counts() {
        let old = pack(
            7,
            Counts {
                calls: 9,
                failures: 4,
                slow: 2,
            },
        );
        match decide(old, 8 + NEWER_SLACK, F) {
            Decision::Rotate(w, folded) => {
                assert_eq!(vlap_of(w), 8 + NEWER_SLACK);
                assert_eq!(
                    counts(w),
                    Counts {
                        calls: 1,
                        failures: 1,
                        slow: 0
                    }
                );
                assert_eq!(folded, counts(old));
            }
            d => panic!("{d:?}"),
        }
        // Far older, across the wrap, still rotates.
        assert!(matches!(decide(old, 3, S), Decision::Rotate(..)));
    }

    #[test]
    fn never_rotates_back_a_newer_bucket() {
        let newer = pack(10, Counts::default());
        assert_eq!(decide(newer, 9, S), Decision::Newer);
        assert_eq!(decide(newer, 8, S), Decision::Newer);
        let wrapped = pack(1, Counts::default());
        assert_eq!(decide(wrapped, VLAP_MODULUS - 1, S), Decision::Newer);
    }

    #[test]
    fn a_full_bucket_halves_and_hands_back_the_dropped_halves() {
        let full = pack(
            4,
            Counts {
                calls: CALLS_MAX,
                failures: 1_001,
                slow: 7,
            },
        );
        match decide(full, 4, SLOW_F) {
            Decision::Rescale(w, dropped) => {
                let kept = counts(w);
                assert_eq!(
                    kept,
                    Counts {
                        calls: CALLS_MAX / 2 + 1,
                        failures: 500 + 1,
                        slow: 3 + 1
                    }
                );
                assert_eq!(vlap_of(w), 4, "no carry into the tag");
                // Nothing is lost: kept (without the new sample) + dropped = before.
                assert_eq!(kept.calls - 1 + dropped.calls, CALLS_MAX);
                assert_eq!(kept.failures - 1 + dropped.failures, 1_001);
                assert_eq!(kept.slow - 1 + dropped.slow, 7);
            }
            d => panic!("{d:?}"),
        }
        assert_eq!(add(full, 4, S), None);
        let almost = pack(
            4,
            Counts {
                calls: CALLS_MAX - 1,
                failures: CALLS_MAX - 1,
                slow: CALLS_MAX - 1,
            },
        );
        let w = apply(almost, 4, SLOW_F);
        assert_eq!(
            counts(w),
            Counts {
                calls: CALLS_MAX,
                failures: CALLS_MAX,
                slow: CALLS_MAX
            }
        );
        assert_eq!(vlap_of(w), 4);
    }
}
