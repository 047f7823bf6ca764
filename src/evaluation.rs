//! When a Failure (or a slow call) must read the whole window: the window rules' and the
//! throttle's evaluation budget, after Linux's `percpu_counter_compare`.
//!
//! The reasoning behind it: `docs/internals.md`, "Design notes", `evaluation.rs`.
//!
//! # The word
//! One 64-bit word, `tag 32 | round 16 | quota 16` (64 bits, not 128: a 128-bit load is a locked
//! `cmpxchg16b` on x86-64 without AVX, a write to a line every failing thread reads), replaced by
//! compare-and-swap from the value
//! the evaluation started from (a concurrent evaluation that published first wins; both read
//! the same window). Otherwise the word carries only numbers, and a stale read only
//! makes an evaluation happen sooner or (for one event per stripe, see the design notes) one
//! event later than the quota says.
//!
//! # Orderings
//! `load` is `Acquire`, and the two writes, `invalidate`'s swap and `publish`'s, are `Release`:
//! - an evaluation that starts from the invalidated word reads the rules `reconfigure` stored
//!   before invalidating it;
//! - an evaluation that starts from a word some stripe's owner published (or a later one: each
//!   write is a read-modify-write, so it continues the release sequence) sees that owner's block,
//!   taken before it published: its count of the stripes that share the quota includes every
//!   stripe whose budget is no longer fresh ("Quotas").
//!
//! Every other access is `Relaxed`.
//!
//! # Quotas
//! The quota is shared among the owned stripes that have their block when the evaluation counts
//! them, after loading the word it starts from. A block taken later starts *fresh*
//! (`window/owned/head.rs`, `FRESH_BUDGET`): every event on it evaluates until an evaluation of
//! its own owner publishes, and that evaluation counts it. So the stripes that spend a quota are
//! at most the stripes it was divided among, however many threads claim blocks meanwhile, and
//! a breaker that only a few threads call divides by those few, not by its `stripes` setting.
//!
//! # Shared writes
//! One per exact evaluation: at 1 % Failures against a 50 % rule that is about once per bucket
//! interval per thread that fails in it, plus once per `stripes × quota` events.
//!
//! # Horizons
//! The word keeps the low 32 bits of the bucket tag (`bucket.rs`). An evaluation is taken for the
//! current window's only if no evaluation was published for 2^32 bucket intervals and
//! transitions while the tags' low bits came round to the same value (50 days of 1 ms buckets
//! without a single evaluation; and then exactly on one interval): its quota then stands until
//! spent, one quota of events at most. The round is 16 bits here and in each stripe's budget: an
//! owner could mistake an evaluation for the one it last saw only if exactly a multiple of 2^16
//! evaluations happened in between while it added no event; it would then count from an older
//! spend, which makes it evaluate sooner, or at worst one quota later, never past the end of the
//! bucket interval. The quota saturates at 2^16 − 1, which only makes evaluations more frequent.
//! The word as a whole can repeat too: an evaluation that loaded it, then stalled while exactly
//! a multiple of 2^16 others published within the same bucket interval, the last with the same
//! quota, publishes its own over them from its older read of the window. Its quota then stands
//! for one quota of events at most, as a stale read's does (the design notes' staleness).

use crate::sync::{AtomicU64, Ordering};

/// The most events a rule's `events_until_possible` (`rules/policy.rs`) or the throttle looks
/// ahead: past it, evaluate anyway.
pub(crate) const LOOKAHEAD: u64 = 1 << 24;

const TAG_BITS: u32 = 32;
const ROUND_BITS: u32 = 16;
const QUOTA_BITS: u32 = 16;
const QUOTA_MAX: u64 = (1 << QUOTA_BITS) - 1;
pub(crate) const ROUND_MASK: u64 = (1 << ROUND_BITS) - 1;
const TAG_MASK: u64 = (1 << TAG_BITS) - 1;

/// The events any one stripe may add before the window is read again, when the window needs
/// `events` more before a rule could hold and `stripes` stripes keep a budget (`docs/internals.md`, "Design notes", `evaluation.rs`).
pub(crate) fn quota(events: u64, stripes: u64) -> u64 {
    let stripes = stripes.max(1);
    (events.max(1) - 1)
        .checked_div(stripes)
        .unwrap_or(0)
        .saturating_add(1)
        .min(QUOTA_MAX)
}

/// A tag that marks the published evaluation void. A real window's tag can share its low 32
/// bits, which only means that evaluation's quota is spent before the next one (see "Horizons").
const STALE: u64 = TAG_MASK;

/// The last published evaluation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Evaluation {
    pub(crate) tag: u64,
    pub(crate) round: u64,
    pub(crate) quota: u64,
}

impl Evaluation {
    fn pack(self) -> u64 {
        ((self.tag & TAG_MASK) << (ROUND_BITS + QUOTA_BITS))
            | ((self.round & ROUND_MASK) << QUOTA_BITS)
            | self.quota.min(QUOTA_MAX)
    }

    fn unpack(word: u64) -> Evaluation {
        Evaluation {
            tag: word >> (ROUND_BITS + QUOTA_BITS),
            round: (word >> QUOTA_BITS) & ROUND_MASK,
            quota: word & QUOTA_MAX,
        }
    }

    /// Whether this evaluation is of the window whose tag is `tag` (compared on the low 32 bits
    /// the word keeps; see the module's "Horizons").
    pub(crate) fn is_of(self, tag: u64) -> bool {
        self.tag == tag & TAG_MASK
    }
}

/// The published evaluation (module docs).
#[derive(Debug)]
pub(crate) struct EvaluationCell(AtomicU64);

impl EvaluationCell {
    /// No evaluation yet: a tag no window has (the first event evaluates).
    pub(crate) fn new() -> EvaluationCell {
        EvaluationCell(AtomicU64::new(
            Evaluation {
                tag: STALE,
                round: 0,
                quota: 1,
            }
            .pack(),
        ))
    }

    pub(crate) fn load(&self) -> Evaluation {
        // A 64-bit load: a plain `mov` on every 64-bit target. Acquire: pairs with `invalidate`'s swap, so an evaluation that started from the
        // invalidated word reads the rules stored before it (see `docs/internals.md`, "Design notes", `evaluation.rs`, "Reconfiguration").
        Evaluation::unpack(self.0.load(Ordering::Acquire))
    }

    /// The rules changed: the budget published under the old ones is void, and the next event
    /// evaluates. Off the call path (`reconfigure`).
    pub(crate) fn invalidate(&self) {
        let mut word = self.0.load(Ordering::Relaxed);
        loop {
            let seen = Evaluation::unpack(word);
            let stale = Evaluation {
                tag: STALE,
                round: (seen.round + 1) & ROUND_MASK,
                quota: 1,
            };
            // Release: see `load`. Relaxed on failure: the loop decides again.
            match self
                .0
                .compare_exchange(word, stale.pack(), Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return,
                Err(fresh) => word = fresh,
            }
        }
    }

    /// Publishes an evaluation of the window at `tag` with `quota`, unless another was published
    /// since `seen` was loaded. Returns the new round when published.
    pub(crate) fn publish(&self, seen: Evaluation, tag: u64, quota: u64) -> Option<u64> {
        let round = (seen.round + 1) & ROUND_MASK;
        let new = Evaluation {
            tag: tag & TAG_MASK,
            round,
            quota,
        };
        // Release: see the module's "Orderings". Relaxed on failure: nothing is published.
        self.0
            .compare_exchange(
                seen.pack(),
                new.pack(),
                Ordering::Release,
                Ordering::Relaxed,
            )
            .ok()
            .map(|_| round)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotas_never_let_the_stripes_together_reach_the_events_needed() {
        for events in 1..200u64 {
            for stripes in 1..40u64 {
                let q = quota(events, stripes);
                assert!(q >= 1);
                assert!(stripes * (q - 1) < events, "{events} {stripes} {q}");
            }
        }
        assert_eq!(quota(5, 1), 5, "one stripe: exactly the events needed");
        assert_eq!(quota(1, 64), 1);
        assert_eq!(quota(u64::MAX, 1), QUOTA_MAX);
        assert_eq!(quota(0, 0), 1);
    }

    #[test]
    fn the_word_round_trips_and_a_stale_publish_loses() {
        let cell = EvaluationCell::new();
        let seen = cell.load();
        assert!(
            !seen.is_of(0) && !seen.is_of(7),
            "no window's evaluation yet"
        );
        assert_eq!(cell.publish(seen, 7, 3), Some(1));
        assert_eq!(
            cell.publish(seen, 8, 3),
            None,
            "published from a stale read"
        );
        let now = cell.load();
        assert_eq!((now.tag, now.round, now.quota), (7, 1, 3));
        let last = Evaluation {
            tag: TAG_MASK - 1,
            round: ROUND_MASK,
            quota: QUOTA_MAX,
        };
        assert_eq!(Evaluation::unpack(last.pack()), last);
        // Tags are compared on their low 32 bits.
        assert!(Evaluation::unpack(last.pack()).is_of(TAG_MASK - 1 + (5 << 32)));
        cell.invalidate();
        assert!(!cell.load().is_of(7), "void after a reconfiguration");
    }
}
