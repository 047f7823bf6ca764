//! Client-side adaptive throttling (the "SRE" throttle of Google's *Site Reliability
//! Engineering*, chapter "Handling Overload"): while Closed, turn away a fraction of calls that
//! grows with the share of calls the dependency failed to serve.
//!
//! # The probability
//! `p = max(0, (requests − K·accepts) / (requests + 1))`, at most `max_rejection`, and 0 while
//! the window holds fewer than `minimum_calls` requests ([`probability`]). `requests` counts
//! every call attempted in the window: those whose Success or Failure was recorded, and those
//! the throttle turned away; `accepts` counts the Successes.
//!
//! # Where it is computed
//! Never on the success path. It is recomputed when a Failure is recorded while Closed (after the
//! trip rules had their say), and when a throttled call is the first one the breaker sees in a
//! new bucket interval since the last computation: so it rises as soon as failures come in, and
//! falls, as successes come in and old buckets leave the window, within one bucket width of
//! traffic. Each computation reads the whole window and publishes the result as one word
//! ([`Published`]).
//!
//! # The draw
//! A call admitted while Closed loads the published word; only when its probability is non-zero
//! does it draw a number from a per-thread generator ([`draw`]: wyrand, a `const` thread-local
//! `Cell`, seeded from a process-wide counter on a thread's first draw) and compare. No lock, no
//! allocation, no system call.

use std::cell::Cell;
use std::sync::atomic::AtomicU64 as StdAtomicU64;

use crate::error::ConfigError;
use crate::sync::{AtomicU64, Ordering};

/// The default `K`.
pub(crate) const DEFAULT_K: f64 = 2.0;
/// The default `max_rejection`.
pub(crate) const DEFAULT_MAX_REJECTION: f64 = 0.9;

/// The probability's resolution: parts per 2^24.
const P_BITS: u32 = 24;
const P_ONE: f64 = (1u64 << P_BITS) as f64;
const P_MASK: u64 = (1 << P_BITS) - 1;
/// The generation's bits kept in a [`Published`] word.
const GENERATION_BITS: u32 = 64 - P_BITS;
const GENERATION_MASK: u64 = (1 << GENERATION_BITS) - 1;

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
    /// [`probability`]).
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

/// The rejection probability in parts per 2^24, rounded down:
/// `min(max_rejection, max(0, (requests − k·accepts) / (requests + 1)))`, and 0 when `requests`
/// is below `minimum_calls`. Always below 2^24, since `max_rejection < 1`.
pub(crate) fn probability(
    k: f64,
    max_rejection: f64,
    requests: u64,
    accepts: u64,
    minimum_calls: u32,
) -> u32 {
    if requests < u64::from(minimum_calls) {
        return 0;
    }
    let excess = requests as f64 - k * accepts as f64;
    if excess <= 0.0 {
        return 0;
    }
    let p = (excess / (requests as f64 + 1.0)).min(max_rejection);
    // In [0, 2^24): max_rejection < 1. The cast rounds down.
    ((p * P_ONE) as u32).min(P_MASK as u32)
}

/// Whether a draw (a uniformly random `u32`) rejects at `parts` per 2^24: its top 24 bits are
/// below `parts`, which happens with probability exactly `parts / 2^24`.
#[inline]
pub(crate) fn rejects(draw: u32, parts: u32) -> bool {
    (draw >> (32 - P_BITS)) < parts
}

/// The published probability: one `u64`.
///
/// | bits    | width | field |
/// |---------|-------|-------|
/// | 0..24   | 24    | `p` in parts per 2^24 (0: nothing is throttled) |
/// | 24..64  | 40    | the low 40 bits of the Closed generation it was computed for |
///
/// A caller applies `p` only when the generation bits match those of the generation its permit
/// is issued under, so a probability computed for an earlier Closed period is never applied to a
/// later one. Every transition's winner resets the word to its own generation with `p = 0`, so a
/// stale word lives at most until the next transition; the 40 bits alias only for a computation
/// that stalls across 2^40 transitions (30 hours at 10^7 transitions per second, without pause),
/// and even then it applies one outdated probability until the next computation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Published(u64);

impl Published {
    pub(crate) fn new(generation: u64, parts: u32) -> Published {
        Published(((generation & GENERATION_MASK) << P_BITS) | (u64::from(parts) & P_MASK))
    }

    /// Whether anything may be throttled: the one test on the hot path.
    #[inline(always)]
    pub(crate) fn is_active(self) -> bool {
        self.0 & P_MASK != 0
    }

    #[inline]
    pub(crate) fn parts(self) -> u32 {
        (self.0 & P_MASK) as u32
    }

    /// Whether this word was computed for `generation`.
    #[inline]
    pub(crate) fn is_for(self, generation: u64) -> bool {
        self.0 >> P_BITS == generation & GENERATION_MASK
    }

    /// Whether the word belongs to a generation after `generation`, comparing the low bits
    /// modulo their width (the word's generations are never half that range apart).
    pub(crate) fn is_after(self, generation: u64) -> bool {
        let ahead = (self.0 >> P_BITS).wrapping_sub(generation) & GENERATION_MASK;
        ahead != 0 && ahead < (GENERATION_MASK >> 1)
    }
}

/// The atomic cell holding the [`Published`] word, in the breaker's hot block.
///
/// # Orderings
/// - The caller's load is `Relaxed`: the word is self-contained (its generation bits say which
///   Closed period it belongs to, checked against the permit's), and it orders nothing else.
/// - A computation loads the word `Acquire` before it checks the state word, and installs its
///   result with a compare-and-swap from that value (`Release`). A transition's winner resets
///   the word (`Release`) after its swap of the state word. So a computation that saw the reset
///   also sees the transition, and finds its generation gone; one that did not see it fails its
///   compare-and-swap. A computation for an ended generation therefore never overwrites the
///   reset of the generation after it.
#[derive(Debug)]
pub(crate) struct PublishedCell(AtomicU64);

impl PublishedCell {
    pub(crate) fn new() -> PublishedCell {
        PublishedCell(AtomicU64::new(0))
    }

    /// The word a caller tests.
    #[inline(always)]
    pub(crate) fn load(&self) -> Published {
        // Relaxed: self-contained, see the type's "Orderings".
        Published(self.0.load(Ordering::Relaxed))
    }

    /// The word a computation starts from.
    pub(crate) fn load_for_update(&self) -> Published {
        // Acquire: pairs with the reset's Release (type docs).
        Published(self.0.load(Ordering::Acquire))
    }

    /// Installs `new` if the word still holds `before`; true if it did. A computation that
    /// loses the race drops its result: the word was reset, or another computation just
    /// published a fresh one.
    pub(crate) fn replace(&self, before: Published, new: Published) -> bool {
        before == new
            // AcqRel: Release as in the type's "Orderings"; Acquire so that a computation whose
            // swap lands after a `clear` sees the rules that clear followed (the caller checks
            // them again). Relaxed on failure: nothing is read.
            || self
                .0
                .compare_exchange(before.0, new.0, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
    }

    /// Resets the word to `generation` with nothing throttled, unless it already belongs to it
    /// or to a later generation (a reset that comes late must not wipe a newer `p`).
    pub(crate) fn reset(&self, generation: u64) {
        // Release: see the type's "Orderings".
        crate::publish::unless_newer(&self.0, Published::new(generation, 0).0, |current| {
            let current = Published(current);
            !current.is_for(generation) && !current.is_after(generation)
        });
    }

    /// Sets the word to "nothing throttled" for `generation` (the throttle was switched off).
    pub(crate) fn clear(&self, generation: u64) {
        // Release: as a reset.
        self.0
            .store(Published::new(generation, 0).0, Ordering::Release);
    }
}

/// A source of uniformly random `u32`s for the throttle's draws, set only by tests that need to
/// replay them.
pub(crate) type DrawSource = std::sync::Arc<dyn Fn() -> u32 + Send + Sync>;

thread_local! {
    /// The calling thread's wyrand state; 0 until its first draw. `const`: no lazy
    /// initialisation, no destructor.
    static STATE: Cell<u64> = const { Cell::new(0) };
}

/// Hands each thread a different seed. `std`'s atomic: a process-wide counter that no decision
/// depends on, out of loom's sight.
static SEEDS: StdAtomicU64 = StdAtomicU64::new(0);

/// A uniformly random `u32` from the calling thread's generator (wyrand: one add, one 64×64→128
/// multiply, one xor).
#[inline]
pub(crate) fn draw() -> u32 {
    STATE.with(|state| {
        let mut s = state.get();
        if s == 0 {
            // Relaxed: any distinct value will do; nothing is published through it.
            let n = SEEDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            s = crate::rules::backoff::mix(n ^ (state as *const Cell<u64> as u64)) | 1;
        }
        s = s.wrapping_add(0xa076_1d64_78bd_642f);
        state.set(s);
        let t = u128::from(s) * u128::from(s ^ 0xe703_7ed1_a0b4_28db);
        ((t >> 64) as u64 ^ t as u64) as u32
    })
}

#[cfg(test)]
mod failures_until_active_tests {
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

#[cfg(test)]
mod tests {
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
