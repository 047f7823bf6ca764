//! One tagged counter of a time-window bucket, packed into a `u128`, and the pure decision of
//! what adding to it does: tag and count in one word, so a rotation is one compare-and-swap.

/// Bit layout of a bucket word, least significant bit first:
///
/// | bits    | width | field | meaning |
/// |---------|-------|-------|---------|
/// | 0..64   | 64    | count | outcomes of one kind (Successes, Failures or slow calls) recorded here |
/// | 64..128 | 64    | tag   | the [`tag`] of the bucket and generation the count belongs to |
///
/// A bucket of the time window keeps three such words, one per kind, each changed only by its
/// own compare-and-swap: a Success touches one word, a Failure one, a slow call one more.
///
/// **Tags.** Interval `e` (the `e`-th bucket width since the breaker's start) of generation `g`
/// has the tag `g · 2B + e`, where `B` is the number of buckets in the window. Tags grow with time
/// and with every transition, and the stride `2B` keeps the tags of different generations apart:
/// the window of generation `G` at interval `E` holds the tags `G · 2B + [E − B + 1, E]`, and an
/// older generation `g < G` could only produce one of them from an interval more than `B`
/// intervals (a whole window) later than `E`, that is, from a clock reading later than the
/// reader's own by more than the window. Readers (the trip rules, `metrics()`) and every writer
/// but a Success on the fast path read the real clock; that Success reads quanta's recent time,
/// which is never ahead of the real clock. So no writer's interval is later than the interval of
/// any reader that comes after it, and the tags of an older generation never reach a newer
/// generation's window.
///
/// **Horizons.** The count is 64 bits: 584 years of 10^9 calls per second into one bucket. The
/// tag grows by `2B ≤ 512` per transition and by one per bucket width (≥ 1 ms): at 10^7
/// transitions per second with 256 buckets it wraps after 114 years, at the default 10 buckets
/// after 2 900 years, and by time alone after 584 million years. Tags are compared in full, never
/// truncated.
///
/// Each change is one compare-and-swap of the whole word, so a rotation (a newer tag replacing an
/// older one) never loses or misplaces a concurrent add. The count a rotation replaces is handed
/// back (see [`Decision::Rotate`]) and added to the stripe's folded totals by the thread whose
/// swap won: lifetime totals are the folded counts plus the live words, exact whatever the
/// interleaving. Nothing is ever halved or saturated.
pub(crate) const COUNT_MASK: u128 = u64::MAX as u128;

/// The tag of interval `epoch` in `generation`, for a window of `stride / 2` buckets.
#[inline]
pub(crate) fn tag(stride: u64, generation: u64, epoch: u64) -> u64 {
    generation.wrapping_mul(stride).wrapping_add(epoch)
}

#[inline]
pub(crate) fn tag_of(word: u128) -> u64 {
    (word >> 64) as u64
}

#[inline]
pub(crate) fn count(word: u128) -> u64 {
    word as u64
}

pub(crate) fn pack(tag: u64, count: u64) -> u128 {
    (u128::from(tag) << 64) | u128::from(count)
}

/// What adding one to a bucket word holding `word` does, for a writer whose tag is `tag`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Same tag: install this word (the count plus one).
    Add(u128),
    /// The word holds an older tag: install this word (a count of one) and fold the returned
    /// count into the lifetime totals.
    Rotate(u128, u64),
    /// The word already holds a newer tag: the outcome only counts in the lifetime totals.
    Newer,
}

/// The common case, inlined on the success path: same tag.
#[inline]
pub(crate) fn add(word: u128, tag: u64) -> Option<u128> {
    // The count cannot carry into the tag within its horizon (584 years at 10^9 per second);
    // the wrapping add keeps even that case from touching the tag.
    (tag_of(word) == tag).then(|| (word & !COUNT_MASK) | u128::from(count(word).wrapping_add(1)))
}

pub(crate) fn decide(word: u128, tag: u64) -> Decision {
    let held = tag_of(word);
    if let Some(new) = add(word, tag) {
        Decision::Add(new)
    } else if held < tag {
        Decision::Rotate(pack(tag, 1), count(word))
    } else {
        Decision::Newer
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pack_round_trips_at_full_width() {
        let w = pack(u64::MAX, u64::MAX);
        assert_eq!((tag_of(w), count(w)), (u64::MAX, u64::MAX));
        assert_eq!(tag(20, 3, 5), 65);
        assert_eq!(tag(512, u64::MAX / 512, 0), u64::MAX / 512 * 512);
    }

    #[test]
    fn adds_within_the_same_tag_past_every_narrow_width() {
        let w = pack(7, u64::from(u32::MAX));
        let Decision::Add(w) = decide(w, 7) else {
            panic!()
        };
        assert_eq!(
            count(w),
            1 << 32,
            "no halving, no saturation at 16 or 32 bits"
        );
        assert_eq!(tag_of(w), 7);
    }

    #[test]
    fn rotates_an_older_tag_and_hands_back_its_count() {
        let old = pack(7, 9);
        assert_eq!(decide(old, 8), Decision::Rotate(pack(8, 1), 9));
        // However far older: no modulus, no aliasing.
        assert_eq!(
            decide(old, 7 + (1 << 16)),
            Decision::Rotate(pack(7 + (1 << 16), 1), 9)
        );
        assert_eq!(
            decide(pack(0, 3), u64::MAX),
            Decision::Rotate(pack(u64::MAX, 1), 3)
        );
    }

    #[test]
    fn never_rotates_back_a_newer_tag() {
        let newer = pack(10 + (1 << 16), 4);
        assert_eq!(decide(newer, 9 + (1 << 16)), Decision::Newer);
        assert_eq!(
            decide(newer, 10),
            Decision::Newer,
            "2^16 older: no aliasing"
        );
        assert_eq!(decide(pack(u64::MAX, 1), 0), Decision::Newer);
    }

    #[test]
    fn generations_never_share_a_window_tag() {
        // B = 10 buckets: stride 20. The window of generation g at interval e holds
        // tags g·20 + [e − 9, e]; an older generation reaches them only from an interval more
        // than 10 intervals later.
        let stride = 20;
        for g in 1..50u64 {
            for e in 9..200u64 {
                let window = tag(stride, g, e - 9)..=tag(stride, g, e);
                for old in g.saturating_sub(3)..g {
                    for e_old in 0..=e + 10 {
                        assert!(!window.contains(&tag(stride, old, e_old)), "{old} {e_old}");
                    }
                }
            }
        }
    }
}
