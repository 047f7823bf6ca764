//! Where the breaker reads the time: quanta, as nanoseconds since the breaker was built.
//!
//! Three readings:
//! - [`Clock::recent_at`]: quanta's recent time as it is, for the owned stripes' fast path, which
//!   guards it the same way as below with a memory per stripe (see `window/owned.rs`).
//! - [`Clock::now_ns`], where a little lag is harmless: the bucket a Success lands in on a shared
//!   stripe's fast path, and the start and end of a call timed for slow-call detection. It is quanta's *recent*
//!   time ([`quanta::Clock::recent`], a load of a global that quanta's upkeep thread refreshes,
//!   about a nanosecond), checked against the real clock so that it does not stay frozen
//!   (below).
//! - [`Clock::real_ns`], wherever something is decided: whether an Open deadline or a half-open
//!   timeout has passed, when a transition's deadline falls, where a Failure (or any outcome off
//!   the fast path) lands and what window the trip rules and `metrics()` read. It is quanta's raw
//!   counter scaled to nanoseconds since the start ([`quanta::Clock::raw`],
//!   [`quanta::Clock::delta_as_nanos`]): what [`quanta::Clock::now`] reads, without its
//!   conversions (11.4 ns for `Clock::now` in the benchmark floors on this project's machine).
//!
//! # A recent time that cannot freeze
//! quanta keeps answering `recent()` with the last value its upkeep thread wrote, even after the
//! upkeep handle is dropped or while the thread is starved. Without any upkeep, quanta's
//! `Clock::recent()` answers 0, and the breaker reads the real clock instead. So each thread
//! remembers the last recent value it saw and how many calls in a row saw it unchanged. A fresh value is trusted at once (the upkeep is
//! alive and at most one interval behind). An unchanged one is checked against the real clock on
//! the 1st, 2nd, 4th, ... 64th repeat and then every 64th: if it is more than
//! [`RECENT_TOLERANCE_NS`] behind, the thread reads the real clock on every call until the recent
//! value moves again. At a steady pace of calls a frozen recent time is noticed within about twice
//! the tolerance; after a pause, a thread may place at most 63 Successes by the frozen time before
//! its next check. Those land in an older bucket (never a newer one), so at worst the window
//! briefly undercounts a thread's Successes. The guard bounds calls, not time (a thread's first
//! sight of a frozen value is trusted however old it is), so no decision is ever made on the
//! recent time.
//!
//! Costs (measured by `benches/callgrind.sh`): with the upkeep running, a thread-local compare per
//! Success and one real-clock read per 64 repeats of a recent value; with it stopped, one
//! real-clock read per call, which is what quanta costs without an upkeep anyway. Open
//! rejections read the real clock every time.
//!
//! Start the upkeep once per process to get the cheap path:
//!
//! ```
//! // In main(), once per process; keep the handle alive for as long as the process runs.
//! let _upkeep = hotbreaker::start_upkeep(std::time::Duration::from_millis(1));
//! ```
//!
//! A mocked clock (`quanta::Clock::mock()`) answers both `recent` and `now` from its mock, so
//! tests drive time by hand and never sleep.

use std::cell::Cell;
use std::sync::OnceLock;

/// How far quanta's recent time may lag the real clock before a thread stops trusting it: 10 ms,
/// ten times the usual upkeep interval.
pub(crate) const RECENT_TOLERANCE_NS: u64 = 10_000_000;

/// After the repeats at powers of two up to this one, check every this many.
const CHECK_EVERY: u32 = 64;

/// What a thread remembers of the recent time (see the module docs). A `const` thread-local
/// without a destructor: reading it never allocates. Loom need not see it: it is per thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Seen<T> {
    recent: Option<T>,
    repeats: u32,
    stale: bool,
}

#[cfg(test)]
impl<T> Seen<T> {
    const NOTHING: Seen<T> = Seen {
        recent: None,
        repeats: 0,
        stale: false,
    };

    fn fresh(recent: T) -> Seen<T> {
        Seen {
            recent: Some(recent),
            repeats: 0,
            stale: false,
        }
    }
}

thread_local! {
    /// The last recent time this thread read, as nanoseconds since [`ORIGIN`] (`u64::MAX`:
    /// none yet), and, beside it, how many reads in a row saw it (bits 0..31) and whether it was
    /// found stale (bit 31). Plain scalars, read and written whole: a 24-byte struct here made
    /// every call stall on store forwarding.
    static SEEN_NS: Cell<u64> = const { Cell::new(u64::MAX) };
    static SEEN_STATE: Cell<u32> = const { Cell::new(0) };
}

const STALE_BIT: u32 = 1 << 31;

/// A real instant every real clock's readings are measured from, so that a thread's memory of
/// the recent time means the same for every breaker it calls (a thread serving many breakers
/// must still notice a frozen upkeep). Set once, by the first real clock a breaker is built on;
/// `OnceLock` initialisation allocates nothing.
static ORIGIN: OnceLock<quanta::Instant> = OnceLock::new();

/// The process's real clock: every real clock's `recent()` reads the same global (quanta's
/// recent time, 0 until an upkeep sets it), so this one reads it for all, from a line no breaker
/// owns (see [`RealTime`]). Also what a breaker built without a clock runs on, and what
/// [`is_real`] compares with: `quanta::Clock::new()` probes the CPU (`cpuid`, tens of
/// microseconds in a virtual machine), so it is made once.
static REAL: OnceLock<quanta::Clock> = OnceLock::new();

/// [`REAL`], made on first use.
pub(crate) fn process_clock() -> &'static quanta::Clock {
    REAL.get_or_init(quanta::Clock::new)
}

/// A real clock's recent time without reading the breaker's clock: quanta's global recent time,
/// through [`REAL`], measured from the clock's origin. What the Success fast path keeps beside
/// the owned stripes (`window/owned.rs`), so that it reads no other line of the breaker for the time.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RealTime {
    clock: &'static quanta::Clock,
    origin: quanta::Instant,
}

impl RealTime {
    /// [`Clock::recent_at`] of the real clock this was taken from: the same value, read the same
    /// way (0 when no upkeep has ever run).
    #[inline]
    pub(crate) fn recent_at(self) -> u64 {
        since(self.origin, self.clock.recent())
    }
}

/// Whether `clock` reads the real time (and not a `quanta::Clock::mock()`): a real clock agrees
/// with the process's real clock to within a second; a mock counts from zero. (Not `Instant::now()`,
/// which a `quanta::with_clock` mock on this thread would answer.)
fn is_real(clock: &quanta::Clock) -> bool {
    let (a, b) = (process_clock().now(), clock.now());
    let apart = if a > b {
        a.duration_since(b)
    } else {
        b.duration_since(a)
    };
    apart < std::time::Duration::from_secs(1)
}

/// Whether the `repeats`-th repeat of a recent value is checked against the real clock: the
/// 1st, 2nd, 4th, ... 64th, then every 64th (also the owned stripes' guard, `window/owned.rs`).
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

/// The breaker's time source.
#[derive(Clone, Debug)]
pub(crate) enum Clock {
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
    Split(std::sync::Arc<split::SplitClock>),
    #[cfg(hotbreaker_loom)]
    Loom(LoomClock),
}

/// Nanoseconds from `start` to `t`, 0 before it. Plain u64 arithmetic: exact for 584 years of
/// uptime, and shorter than `as_nanos()`'s u128 on the hot path.
#[inline]
fn since(start: quanta::Instant, t: quanta::Instant) -> u64 {
    let d = t.saturating_duration_since(start);
    d.as_secs()
        .wrapping_mul(1_000_000_000)
        .wrapping_add(u64::from(d.subsec_nanos()))
}

impl Clock {
    pub(crate) fn new(clock: quanta::Clock) -> Clock {
        let start_raw = clock.raw();
        let start = clock.scaled(start_raw);
        let real = is_real(&clock);
        let origin = if real {
            *ORIGIN.get_or_init(|| start)
        } else {
            start
        };
        Clock::Quanta {
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
            Clock::Quanta {
                clock,
                start_raw,
                origin,
                start_ns,
                ..
            } => {
                let recent = clock.recent();
                let (start_ns, at) = (*start_ns, since(*origin, recent));
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
                        SEEN_STATE.set(repeats);
                    }
                } else {
                    SEEN_NS.set(at);
                    SEEN_STATE.set(0);
                }
                at - start_ns
            }
            #[cfg(test)]
            Clock::Split(c) => c.now_ns(),
            #[cfg(hotbreaker_loom)]
            Clock::Loom(c) => c.now_ns(),
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
        SEEN_STATE.set((seen.repeats & !STALE_BIT) | if seen.stale { STALE_BIT } else { 0 });
        real
    }

    /// For a real clock (not a mock or a test's clock), the same [`recent_at`] without this
    /// clock; `None` for any other.
    ///
    /// [`recent_at`]: Self::recent_at
    pub(crate) fn real_time(&self) -> Option<RealTime> {
        match self {
            Clock::Quanta { real, origin, .. } => match (real, REAL.get()) {
                (true, Some(clock)) => Some(RealTime {
                    clock,
                    origin: *origin,
                }),
                _ => None,
            },
            #[cfg(test)]
            Clock::Split(_) => None,
            #[cfg(hotbreaker_loom)]
            Clock::Loom(_) => None,
        }
    }

    /// quanta's recent time on the clock's own scale: nanoseconds since `origin`, unguarded,
    /// and 0 when no upkeep has ever run. For the owned stripes' fast path, which guards it
    /// itself (see `window/owned.rs`).
    #[inline]
    pub(crate) fn recent_at(&self) -> u64 {
        match self {
            Clock::Quanta { clock, origin, .. } => since(*origin, clock.recent()),
            #[cfg(test)]
            Clock::Split(c) => c.recent_ns(),
            #[cfg(hotbreaker_loom)]
            Clock::Loom(c) => c.now_ns(),
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
            Clock::Quanta { start_ns, .. } => *start_ns,
            #[cfg(test)]
            Clock::Split(_) => 0,
            #[cfg(hotbreaker_loom)]
            Clock::Loom(_) => 0,
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
            Clock::Quanta {
                clock, start_raw, ..
            } => clock.delta_as_nanos(*start_raw, clock.raw()),
            #[cfg(test)]
            Clock::Split(c) => c.real_ns(),
            #[cfg(hotbreaker_loom)]
            Clock::Loom(c) => c.now_ns(),
        }
    }
}

/// A clock whose recent and real readings are set by hand, run through the same guard.
#[cfg(test)]
pub(crate) mod split {
    use std::sync::Mutex; // test-only, off the hot path: stands in for a thread-local
    use std::sync::atomic::{AtomicU64, Ordering};

    use super::{Seen, repeated};

    /// `recent` is what quanta's global would say, `real` what `now()` would.
    #[derive(Debug)]
    pub(crate) struct SplitClock {
        pub(crate) recent: AtomicU64,
        pub(crate) real: AtomicU64,
        seen: Mutex<Seen<u64>>, // test-only, off the hot path
    }

    impl Default for SplitClock {
        fn default() -> Self {
            SplitClock {
                recent: AtomicU64::new(0),
                real: AtomicU64::new(0),
                seen: Mutex::new(Seen::NOTHING), // test-only, off the hot path
            }
        }
    }

    impl SplitClock {
        /// Both readings at `ns`.
        pub(crate) fn set(&self, ns: u64) {
            self.recent.store(ns, Ordering::SeqCst);
            self.real.store(ns, Ordering::SeqCst);
        }

        /// Only the real clock moves: the upkeep has stopped.
        pub(crate) fn advance_real(&self, ns: u64) {
            self.real.fetch_add(ns, Ordering::SeqCst);
        }

        pub(crate) fn real_ns(&self) -> u64 {
            self.real.load(Ordering::SeqCst)
        }

        /// `Clock::recent_ns`: the recent reading as it is.
        pub(crate) fn recent_ns(&self) -> u64 {
            self.recent.load(Ordering::SeqCst)
        }

        /// `Clock::now_ns` for one thread, on these two readings.
        pub(crate) fn now_ns(&self) -> u64 {
            let recent = self.recent.load(Ordering::SeqCst);
            let mut seen = self.seen.lock().unwrap();
            if seen.recent != Some(recent) {
                *seen = Seen::fresh(recent);
                return recent;
            }
            let (next, real) = repeated(*seen, || {
                let real = self.real_ns();
                (real, real.saturating_sub(recent))
            });
            *seen = next;
            real.unwrap_or(recent)
        }
    }
}

/// A clock for loom models, built on the shim's atomics so the checker sees every read
/// (quanta's own clock is invisible to loom). Clones share one time.
#[cfg(hotbreaker_loom)]
#[derive(Clone, Debug)]
pub struct LoomClock(std::sync::Arc<crate::sync::AtomicU64>);

#[cfg(hotbreaker_loom)]
impl Default for LoomClock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(hotbreaker_loom)]
impl LoomClock {
    /// A clock at t = 0.
    pub fn new() -> LoomClock {
        LoomClock(std::sync::Arc::new(crate::sync::AtomicU64::new(0)))
    }

    /// Moves time forward.
    pub fn advance(&self, by: std::time::Duration) {
        // SeqCst: tests advance time between steps and expect every thread to see it in order.
        self.0
            .fetch_add(by.as_nanos() as u64, crate::sync::Ordering::SeqCst);
    }

    fn now_ns(&self) -> u64 {
        // SeqCst: pairs with `advance`.
        self.0.load(crate::sync::Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mock_clock_is_never_stale() {
        let (q, mock) = quanta::Clock::mock();
        let clock = Clock::new(q);
        for i in 0..5_000u64 {
            if i % 1_000 == 0 {
                mock.increment(std::time::Duration::from_secs(1));
            }
            assert_eq!(clock.now_ns(), (i / 1_000 + 1) * 1_000_000_000);
        }
    }

    #[test]
    fn a_mock_clock_is_a_mock_even_inside_quanta_with_clock() {
        let (q, _mock) = quanta::Clock::mock();
        // `quanta::Instant::now()` answers with the mock here: the check must not ask it.
        let inside = quanta::with_clock(&q, || Clock::new(q.clone()));
        assert!(inside.real_time().is_none());
        assert!(Clock::new(q).real_time().is_none());
        let real = Clock::new(quanta::Clock::new());
        assert!(real.real_time().is_some());
        let inside_real =
            quanta::with_clock(
                &quanta::Clock::mock().0,
                || Clock::new(quanta::Clock::new()),
            );
        assert!(inside_real.real_time().is_some());
    }

    #[test]
    fn checks_are_due_at_powers_of_two_then_every_64() {
        let mut seen = Seen::fresh(7u64);
        let mut checked = Vec::new();
        for call in 1..=320u32 {
            let (next, _) = repeated(seen, || {
                checked.push(call);
                (0, 0)
            });
            seen = next;
        }
        let expected = [1, 2, 4, 8, 16, 32, 64, 128, 192, 256, 320];
        assert_eq!(checked, expected);
    }

    #[test]
    fn once_stale_every_call_reads_the_real_clock() {
        let (seen, real) = repeated(Seen::fresh(1u64), || (50_000_000, 40_000_000));
        assert_eq!(real, Some(50_000_000));
        assert!(seen.stale);
        let (_, real) = repeated(seen, || (50_000_001, 40_000_001));
        assert_eq!(real, Some(50_000_001), "not only when a check is due");
        let (seen, real) = repeated(Seen::fresh(1u64), || (5, RECENT_TOLERANCE_NS));
        assert_eq!(
            (seen.stale, real),
            (false, None),
            "a lag of exactly the tolerance is fine"
        );
    }

    #[test]
    fn the_split_guard_follows_a_stopped_upkeep_within_twice_the_tolerance() {
        let c = split::SplitClock::default();
        c.set(5_000_000_000);
        assert_eq!(c.now_ns(), 5_000_000_000);
        // The upkeep stops; calls keep coming every 100 µs of real time.
        let mut followed_at = None;
        for i in 1..=1_000u64 {
            c.advance_real(100_000);
            let t = c.now_ns();
            if t == c.real_ns() && t > 5_000_000_000 {
                followed_at = Some(i * 100_000);
                break;
            }
        }
        let lag = followed_at.expect("the guard switched to the real clock");
        assert!(lag <= 2 * RECENT_TOLERANCE_NS + 100_000, "{lag}");
        // Once stale, every call reads the real clock until the recent time moves again.
        c.advance_real(1);
        assert_eq!(c.now_ns(), c.real_ns());
        c.recent
            .store(c.real_ns(), std::sync::atomic::Ordering::SeqCst);
        assert_eq!(c.now_ns(), c.real_ns());
    }

    #[test]
    fn the_repeat_count_wraps_into_a_check() {
        // 2^31 repeats of one recent value (the hot path keeps 31 bits): the count wraps to 0,
        // which is due for a check, and nothing panics.
        assert!(check_due(0));
        let seen = Seen {
            recent: Some(3u64),
            repeats: u32::MAX,
            stale: false,
        };
        let (seen, real) = repeated(seen, || (20_000_000, 20_000_000));
        assert_eq!(
            (seen.repeats, seen.stale, real),
            (0, true, Some(20_000_000))
        );
    }
}
