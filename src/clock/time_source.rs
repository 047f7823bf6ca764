//! [`TimeSource`]: the three readings a breaker makes.
//!
//! - [`TimeSource::recent_at`]: quanta's recent time as it is, for the owned stripes' fast
//!   path, which guards it with [`trust_recent`] (`window/owned/head.rs`, "Time").
//! - [`TimeSource::now_ns`], where a little lag is harmless (a Success's bucket on a shared
//!   stripe, the ends of a timed call): the recent time behind the freeze guard.
//! - [`TimeSource::real_ns`], wherever something is decided (deadlines, where a Failure lands,
//!   the window the trip rules read): quanta's raw counter scaled to nanoseconds since the
//!   start, what `quanta::Clock::now` reads without its conversions.

use std::cell::Cell;

#[cfg(hotbreaker_loom)]
use super::loom_clock::LoomClock;
use super::process::{self, ORIGIN, RealTime, is_real, since};
use super::recent_guard::RECENT_TOLERANCE_NS;
use super::recent_guard::{Seen, check_due, repeated};

thread_local! {
    /// The last recent time this thread read, as nanoseconds since [`ORIGIN`] (`u64::MAX`:
    /// none yet), and, beside it, how many reads in a row saw it (bits 0..31) and whether it was
    /// found stale (bit 31). Plain scalars, read and written whole: a 24-byte struct here made
    /// every call stall on store forwarding. Written through `with` (`LocalKey::set` is a call
    /// that checks for a first use).
    static SEEN_NS: Cell<u64> = const { Cell::new(u64::MAX) };
    static SEEN_STATE: Cell<u32> = const { Cell::new(0) };
}

const STALE_BIT: u32 = 1 << 31;

/// Whether a recent time `recent` (on the clock's own scale, as [`TimeSource::recent_at`]
/// reads it) may be trusted, by this thread's memory of the recent time: the guard
/// [`TimeSource::now_ns`] keeps (`recent_guard.rs`), shared by every breaker the thread calls.
/// A value that moved is trusted; a repeat is checked against `real` (the real clock on the same
/// scale) on the 1st, 2nd, 4th, ... 64th repeat and every 64th after, and every time once found
/// stale, until the value moves. So a thread that calls many breakers, each rarely, reads the
/// real clock once per 64 of its calls between two upkeep ticks, not on the first repeats of
/// each breaker. The owned stripes' fast path: a thread-local compare, and a store of the
/// repeat count.
#[inline(always)]
pub(crate) fn trust_recent(recent: u64, real: impl FnOnce() -> u64) -> bool {
    if cfg!(hotbreaker_loom) {
        return true; // a loom clock's recent time is its real time
    }
    if SEEN_NS.get() != recent {
        SEEN_NS.with(|seen| seen.set(recent));
        SEEN_STATE.with(|state| state.set(0));
        return true;
    }
    let state = SEEN_STATE.get();
    let repeats = (state & !STALE_BIT).wrapping_add(1) & !STALE_BIT;
    if state & STALE_BIT == 0 && !check_due(u64::from(repeats)) {
        SEEN_STATE.with(|state| state.set(repeats));
        return true;
    }
    recheck(recent, repeats, real)
}

/// A due check of [`trust_recent`]: the real clock read, the verdict kept with the count.
#[cold]
#[inline(never)]
fn recheck(recent: u64, repeats: u32, real: impl FnOnce() -> u64) -> bool {
    let fresh = real().saturating_sub(recent) <= RECENT_TOLERANCE_NS;
    SEEN_STATE.with(|state| state.set(if fresh { repeats } else { repeats | STALE_BIT }));
    fresh
}

/// The breaker's time source.
#[derive(Clone, Debug)]
pub(crate) enum TimeSource {
    Quanta {
        clock: quanta::Clock,
        /// `clock.raw()` at the breaker's start: real time is the scaled distance from it, with no
        /// `Instant` or `Duration` round trip.
        start_raw: u64,
        /// What the freeze check measures recent times from, and `start` in nanoseconds since
        /// it: [`ORIGIN`] for a real clock; for a mock, the breaker's start (a mock's recent time
        /// is its real time, so the check never finds it stale).
        origin: quanta::Instant,
        /// The breaker's start, in nanoseconds since `origin`.
        start_ns: u64,
        /// Whether `clock` reads the real time (see [`RealTime`]).
        real: bool,
    },
    /// A clock whose recent and real readings are set separately: unit tests of the freeze guard.
    #[cfg(test)]
    Split(std::sync::Arc<super::split::SplitClock>),
    #[cfg(hotbreaker_loom)]
    Loom(LoomClock),
}

impl TimeSource {
    pub(crate) fn new(clock: quanta::Clock) -> TimeSource {
        let start_raw = clock.raw();
        let start = clock.scaled(start_raw);
        let real = is_real(&clock);
        let origin = if real {
            *ORIGIN.get_or_init(|| start)
        } else {
            start
        };
        TimeSource::Quanta {
            clock,
            start_raw,
            origin,
            start_ns: since(origin, start),
            real,
        }
    }

    /// Nanoseconds since the breaker's start: quanta's recent time, unless this thread has seen
    /// it stop (module docs).
    #[inline]
    pub(crate) fn now_ns(&self) -> u64 {
        match self {
            TimeSource::Quanta {
                clock,
                start_raw,
                origin,
                start_ns,
                real,
            } => {
                let recent = clock.recent();
                let (start_ns, at) = (*start_ns, since(*origin, recent));
                if !*real {
                    // A mock's recent time is its real time: nothing to guard, and the thread's
                    // memory, kept on the real clocks' scale, is left alone.
                    return at.saturating_sub(start_ns);
                }
                if at <= start_ns {
                    // No upkeep has ever run (quanta's recent time is 0, which measures as 0
                    // from any origin, the start of the breaker that set the origin included),
                    // or it has not ticked since this breaker was built.
                    return clock.delta_as_nanos(*start_raw, clock.raw());
                }
                if SEEN_NS.get() == at {
                    let state = SEEN_STATE.get();
                    let repeats = (state & !STALE_BIT).wrapping_add(1) & !STALE_BIT;
                    if state & STALE_BIT != 0 || check_due(u64::from(repeats)) {
                        if let Some(real) =
                            Self::quanta_repeated(clock, *start_raw, at - start_ns, state)
                        {
                            return real;
                        }
                    } else {
                        SEEN_STATE.with(|state| state.set(repeats));
                    }
                } else {
                    SEEN_NS.with(|seen| seen.set(at));
                    SEEN_STATE.with(|state| state.set(0));
                }
                at - start_ns
            }
            #[cfg(test)]
            TimeSource::Split(c) => c.now_ns(),
            #[cfg(hotbreaker_loom)]
            TimeSource::Loom(c) => c.now_ns(),
        }
    }

    #[cold]
    #[inline(never)]
    fn quanta_repeated(
        clock: &quanta::Clock,
        start_raw: u64,
        recent_ns: u64,
        state: u32,
    ) -> Option<u64> {
        let seen = Seen {
            recent: Some(recent_ns),
            repeats: state & !STALE_BIT,
            stale: state & STALE_BIT != 0,
        };
        let (seen, real) = repeated(seen, || {
            let real = clock.delta_as_nanos(start_raw, clock.raw());
            (real, real.saturating_sub(recent_ns))
        });
        let state = (seen.repeats & !STALE_BIT) | if seen.stale { STALE_BIT } else { 0 };
        SEEN_STATE.with(|cell| cell.set(state));
        real
    }

    /// Whether [`recent_at`](Self::recent_at) is this clock's real time (a mock's, a loom
    /// model's): the owned stripes' fast path then trusts it without the thread's guard, and
    /// leaves the guard's memory, kept on the real clocks' scale, alone.
    pub(crate) fn recent_is_exact(&self) -> bool {
        match self {
            TimeSource::Quanta { real, .. } => !*real,
            #[cfg(test)]
            TimeSource::Split(_) => false,
            #[cfg(hotbreaker_loom)]
            TimeSource::Loom(_) => true,
        }
    }

    /// For a real clock (not a mock or a test's clock), the same [`recent_at`] without this
    /// clock; `None` for any other.
    ///
    /// [`recent_at`]: Self::recent_at
    pub(crate) fn real_time(&self) -> Option<&'static RealTime> {
        match self {
            // A real clock's origin is `ORIGIN` (see `new`): the process-wide one.
            TimeSource::Quanta { real: true, .. } => process::real_time(),
            TimeSource::Quanta { .. } => None,
            #[cfg(test)]
            TimeSource::Split(_) => None,
            #[cfg(hotbreaker_loom)]
            TimeSource::Loom(_) => None,
        }
    }

    /// quanta's recent time on the clock's own scale: nanoseconds since `origin`, unguarded,
    /// and 0 when no upkeep has ever run. For the owned stripes' fast path, which guards it
    /// itself (see `window/owned/head.rs`, "Time").
    #[inline]
    pub(crate) fn recent_at(&self) -> u64 {
        match self {
            TimeSource::Quanta { clock, origin, .. } => since(*origin, clock.recent()),
            #[cfg(test)]
            TimeSource::Split(c) => c.recent_ns(),
            #[cfg(hotbreaker_loom)]
            TimeSource::Loom(c) => c.now_ns(),
        }
    }

    /// What this clock's outcomes are stamped with for the consecutive-failure rule
    /// (`window/owned/head.rs`, `last_success`): a value that only grows, so that a stamp
    /// strictly below another was read before it. A real clock's is the upkeep's tick count
    /// ([`ticks`](super::ticks), 0 while no upkeep started by `start_upkeep` runs); a mock's, its
    /// recent time (which only a test sets back).
    pub(crate) fn stamp(&self) -> u64 {
        match self {
            TimeSource::Quanta { real: true, .. } => super::ticks(),
            TimeSource::Quanta { .. } => self.recent_at(),
            #[cfg(test)]
            TimeSource::Split(c) => c.recent_ns(),
            #[cfg(hotbreaker_loom)]
            TimeSource::Loom(_) => 0,
        }
    }

    /// The real time on the clock's own scale (see [`recent_at`](Self::recent_at)).
    pub(crate) fn real_at(&self) -> u64 {
        self.real_ns().saturating_add(self.offset())
    }

    /// The breaker's start on the clock's own scale: what turns nanoseconds since the start into
    /// that scale.
    pub(crate) fn offset(&self) -> u64 {
        match self {
            TimeSource::Quanta { start_ns, .. } => *start_ns,
            #[cfg(test)]
            TimeSource::Split(_) => 0,
            #[cfg(hotbreaker_loom)]
            TimeSource::Loom(_) => 0,
        }
    }

    /// Whether quanta's recent time is within [`RECENT_TOLERANCE_NS`] of `real_ns`, a reading of
    /// the real clock in nanoseconds since the breaker's start. False when no upkeep runs.
    pub(crate) fn recent_is_fresh(&self, real_ns: u64) -> bool {
        let recent = self.recent_at();
        recent != 0
            && real_ns.saturating_add(self.offset()).saturating_sub(recent) <= RECENT_TOLERANCE_NS
    }

    /// Nanoseconds since the breaker's start from the real clock, for decisions about deadlines.
    #[inline]
    pub(crate) fn real_ns(&self) -> u64 {
        match self {
            TimeSource::Quanta {
                clock, start_raw, ..
            } => clock.delta_as_nanos(*start_raw, clock.raw()),
            #[cfg(test)]
            TimeSource::Split(c) => c.real_ns(),
            #[cfg(hotbreaker_loom)]
            TimeSource::Loom(c) => c.now_ns(),
        }
    }
}
