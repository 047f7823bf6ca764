//! The process's real clock, and the origin every real clock's readings are measured from.

use std::sync::OnceLock;

/// A real instant every real clock's readings are measured from, so that a thread's memory of
/// the recent time means the same for every breaker it calls (a thread serving many breakers
/// must still notice a frozen upkeep). Set once, by the first real clock a breaker is built on;
/// `OnceLock` initialisation allocates nothing.
pub(super) static ORIGIN: OnceLock<quanta::Instant> = OnceLock::new();

/// The process's real clock: every real clock's `recent()` reads the same global (quanta's
/// recent time, 0 until an upkeep sets it), so this one reads it for all, from a line no breaker
/// owns (see [`RealTime`]). Also what a breaker built without a clock runs on, and what
/// [`is_real`] compares with: `quanta::Clock::new()` probes the CPU (`cpuid`, tens of
/// microseconds in a virtual machine), so it is made once.
pub(super) static REAL: OnceLock<quanta::Clock> = OnceLock::new();

/// [`REAL`], made on first use.
pub(crate) fn process_clock() -> &'static quanta::Clock {
    REAL.get_or_init(quanta::Clock::new)
}

/// Ticks of the upkeep thread started by [`start_upkeep`](crate::start_upkeep), one per
/// interval, since the process started: what a real clock's outcomes are stamped with for the
/// consecutive-failure rule (`window/owned/head.rs`, `last_success`). Only that thread adds to it
/// (one at a time, `start_upkeep` says), one at a time, so it only grows, unlike quanta's recent
/// time, which a second writer (quanta's own upkeep, or any `quanta::set_recent`) preempted
/// between its clock read and its store can set back. 0 while no upkeep runs: stamps then order
/// nothing. 64 bits: 584 million years at one tick per millisecond. A `std` atomic: one per
/// process, written once per interval, read by every Success on the fast path of a real clock:
/// padded to a 128-byte pair of lines of its own, so that nothing else written beside it makes
/// those reads miss (they miss once per tick per core).
static TICKS: crossbeam_utils::CachePadded<std::sync::atomic::AtomicU64> =
    crossbeam_utils::CachePadded::new(std::sync::atomic::AtomicU64::new(0));

/// Adds one tick ([`TICKS`]): the upkeep thread, after it sets the recent time.
pub(crate) fn tick() {
    // Relaxed: the stamps rely on this one word's order alone (its reads by different threads
    // are ordered by the values they return), nothing is published through it.
    TICKS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

/// [`TICKS`] as it is now.
#[inline(always)]
pub(crate) fn ticks() -> u64 {
    // Relaxed: see `tick`.
    TICKS.load(std::sync::atomic::Ordering::Relaxed)
}

/// A real clock's recent time without reading the breaker's clock: quanta's global recent time,
/// through [`REAL`], measured from [`ORIGIN`]. Every real clock's is the same, so there is one,
/// [`real_time`]; the Success fast path keeps a pointer to it beside the owned stripes
/// (`window/owned.rs`), so that it reads no other line of the breaker for the time.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RealTime {
    pub(super) clock: &'static quanta::Clock,
    pub(super) origin: quanta::Instant,
}

/// [`REAL`] and [`ORIGIN`] together: set once, by the first breaker built on a real clock.
static REAL_TIME: OnceLock<RealTime> = OnceLock::new();

/// The [`RealTime`] of every real clock, once [`REAL`] and [`ORIGIN`] are set (by the build of
/// a breaker on a real clock); `None` before. Off the call path (a build).
pub(super) fn real_time() -> Option<&'static RealTime> {
    let (clock, origin) = (REAL.get()?, *ORIGIN.get()?);
    Some(REAL_TIME.get_or_init(|| RealTime { clock, origin }))
}

impl RealTime {
    /// [`TimeSource::recent_at`](super::TimeSource::recent_at) of the real clock this was taken from: the same value, read the same
    /// way (0 when no upkeep has ever run).
    #[inline]
    pub(crate) fn recent_at(self) -> u64 {
        since(self.origin, self.clock.recent())
    }
}

/// Whether `clock` reads the real time (and not a `quanta::Clock::mock()`): a real clock agrees
/// with the process's real clock to within a second; a mock counts from zero. (Not `Instant::now()`,
/// which a `quanta::with_clock` mock on this thread would answer.)
pub(super) fn is_real(clock: &quanta::Clock) -> bool {
    let (a, b) = (process_clock().now(), clock.now());
    let apart = if a > b {
        a.duration_since(b)
    } else {
        b.duration_since(a)
    };
    apart < std::time::Duration::from_secs(1)
}

/// Nanoseconds from `start` to `t`, 0 before it. Plain u64 arithmetic: exact for 584 years of
/// uptime, and shorter than `as_nanos()`'s u128 on the hot path.
#[inline]
pub(super) fn since(start: quanta::Instant, t: quanta::Instant) -> u64 {
    let d = t.saturating_duration_since(start);
    d.as_secs()
        .wrapping_mul(1_000_000_000)
        .wrapping_add(u64::from(d.subsec_nanos()))
}
