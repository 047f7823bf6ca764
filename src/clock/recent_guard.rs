//! The guard that keeps a frozen recent time from being trusted.
//!
//! quanta answers `recent()` with the last value its upkeep thread wrote, even after the upkeep
//! stopped or while it is starved (0 if it never ran: the breaker then reads the real clock).
//! So each thread remembers the last recent value it saw and how many calls in a row saw it. A
//! fresh value is trusted at once; an unchanged one is checked against the real clock on the
//! 1st, 2nd, 4th, ... 64th repeat and every 64th after: more than [`RECENT_TOLERANCE_NS`]
//! behind, the thread reads the real clock on every call until the value moves. A frozen time
//! is noticed within about twice the tolerance at a steady pace; after a pause a thread places
//! at most 63 Successes by it, in an older bucket (never a newer one). No decision is made on
//! the recent time. Cost: a thread-local compare per Success and one real-clock read per 64
//! repeats (`benches/callgrind.sh`).

/// How far quanta's recent time may lag the real clock before a thread stops trusting it: 10 ms,
/// ten times the usual upkeep interval.
pub(crate) const RECENT_TOLERANCE_NS: u64 = 10_000_000;

/// After the repeats at powers of two up to this one, check every this many.
pub(super) const CHECK_EVERY: u32 = 64;

/// What a thread remembers of the recent time (see the module docs). A `const` thread-local
/// without a destructor: reading it never allocates. Loom need not see it: it is per thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Seen<T> {
    pub(super) recent: Option<T>,
    pub(super) repeats: u32,
    pub(super) stale: bool,
}

#[cfg(test)]
impl<T> Seen<T> {
    pub(super) const NOTHING: Seen<T> = Seen {
        recent: None,
        repeats: 0,
        stale: false,
    };

    pub(super) fn fresh(recent: T) -> Seen<T> {
        Seen {
            recent: Some(recent),
            repeats: 0,
            stale: false,
        }
    }
}

/// Whether the `repeats`-th repeat of a recent value is checked against the real clock: the
/// 1st, 2nd, 4th, ... 64th, then every 64th (also [`trust_recent`](super::trust_recent), the
/// owned stripes' fast path's guard).
#[inline(always)]
pub(crate) fn check_due(repeats: u64) -> bool {
    repeats & repeats.wrapping_sub(1) == 0 || repeats.is_multiple_of(u64::from(CHECK_EVERY))
}

/// The guard's decision when a thread reads the same recent value again (module docs): the new
/// memory, and `Some(real time)` when the recent value is stale. `real_and_lag` reads the real
/// clock and says how far the recent value is behind it; it is called only when a check is due.
pub(crate) fn repeated<T: Copy>(
    mut seen: Seen<T>,
    real_and_lag: impl FnOnce() -> (u64, u64),
) -> (Seen<T>, Option<u64>) {
    seen.repeats = seen.repeats.wrapping_add(1);
    if !(seen.stale || check_due(u64::from(seen.repeats))) {
        return (seen, None);
    }
    let (real, lag) = real_and_lag();
    seen.stale = lag > RECENT_TOLERANCE_NS;
    (seen, seen.stale.then_some(real))
}
