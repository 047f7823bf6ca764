//! The sliding window and the lifetime totals, striped so that threads do not share cache lines.
//!
//! - `counters.rs`: what an outcome adds, and the lifetime totals' names;
//! - `owned.rs` (and `owned/`): the owned stripes, one thread's lines each;
//! - `stripes.rs`: where the counts live (the owned stripes' handle and the shared stripes);
//! - `time_ring.rs` and `count_window.rs`: the two windows over them;
//! - `stats.rs`: what a window reads back; `spec.rs`: its shape.
//!
//! # Orderings
//! - **Bucket words** are self-contained (their tag and count change together in one CAS) and
//!   no decision reads another word to interpret them. In particular a rotation is decided by
//!   comparing full tags alone, never by reading the state word after a bucket word (on a weakly
//!   ordered machine that pair could disagree): the tag says which generation and interval the
//!   count belongs to. Loads are `Relaxed`. A successful swap is `AcqRel` (`Acquire` for the
//!   fast path's add, which never rotates) for one reason: before rotating a word to a new
//!   bucket, the rotating thread notes that the bucket started (`Owned::started`, which reports
//!   use to skip windows no bucket of which started); the rotation releases that note and every
//!   add into the bucket acquires it, so a report that happens-after any count in the bucket
//!   sees the note and reads the window. On x86-64 these are the same instructions as
//!   `Relaxed`.
//! - **Folded totals** are added with `Release` after the rotation that replaced the count, and
//!   read with `Acquire` *before* the live bucket words. A reader that sees a fold therefore sees
//!   the rotation that preceded it, so a count is never seen twice (once folded, once live); it
//!   can at worst be missed while its rotation is in flight. Snapshots are lower bounds, exact
//!   once writers are quiescent, and the breaker keeps them monotonic.
//! - **Ignored, Rejected, Throttled** are plain counters: nothing is published through them.

mod count_window;
mod counters;
pub(crate) mod owned;
mod spec;
mod stats;
mod stripes;
#[cfg(test)]
mod tests;
mod time_ring;

pub(crate) use count_window::CountWindow;
pub(crate) use counters::{Sample, Total};
pub(crate) use spec::{MAX_BUCKETS, WindowSpec};
pub use stats::WindowStats;
pub(crate) use stripes::{CallerStripe, Stripes};
pub(crate) use time_ring::TimeRing;

/// Either kind of window.
#[derive(Debug)]
pub(crate) enum Window {
    Time(TimeRing),
    // Boxed: its padded cursor would make every time-window breaker 200 bytes bigger.
    Count(Box<CountWindow>),
}

impl Window {
    /// The window `spec` describes, empty.
    pub(crate) fn of(spec: WindowSpec) -> Window {
        match spec {
            WindowSpec::Time { width_ns, buckets } => {
                Window::Time(TimeRing::new(width_ns, buckets))
            }
            WindowSpec::Count { size } => Window::Count(Box::new(CountWindow::new(size))),
        }
    }

    /// The time ring, if this is a time window (the throttle runs on a time window only).
    #[inline]
    pub(crate) fn time(&self) -> Option<&TimeRing> {
        match self {
            Window::Time(w) => Some(w),
            Window::Count(_) => None,
        }
    }

    /// Heap bytes held by the window itself (a time window's counts live in the stripes).
    #[cfg(any(test, feature = "test-util"))]
    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            Window::Time(_) => 0,
            Window::Count(c) => c.heap_bytes() + std::mem::size_of::<CountWindow>(),
        }
    }

    /// Records `sample` of a permit of `generation`, at `now_ns` on the real clock, into
    /// `writer`'s stripe. `trust_recent` is asked only by a time window: whether quanta's recent
    /// time is fresh at `now_ns` (see [`TimeRing::record_as`]).
    pub(crate) fn record(
        &self,
        stripes: &Stripes,
        writer: CallerStripe,
        generation: u64,
        now_ns: u64,
        sample: Sample,
        trust_recent: impl FnOnce() -> bool,
    ) {
        match self {
            Window::Time(w) => {
                w.record_as(stripes, writer, generation, now_ns, sample, trust_recent());
            }
            Window::Count(w) => {
                w.record(generation, sample);
                if let CallerStripe::Owned(i) = writer {
                    stripes.owned().enter(i, generation);
                }
                stripes.add_sample(writer, sample);
            }
        }
    }

    /// The window of `generation` at `now_ns`, for a decision.
    pub(crate) fn stats(&self, stripes: &Stripes, generation: u64, now_ns: u64) -> WindowStats {
        match self {
            Window::Time(w) => w.stats(stripes, generation, now_ns),
            Window::Count(w) => w.stats(generation),
        }
    }

    /// As [`stats`](Window::stats), for a report: reads less of the stripes whose owners are
    /// idle.
    pub(crate) fn report(&self, stripes: &Stripes, generation: u64, now_ns: u64) -> WindowStats {
        match self {
            Window::Time(w) => w.report(stripes, generation, now_ns),
            Window::Count(w) => w.stats(generation),
        }
    }

    /// What an evaluation of the window of `generation` at `now_ns` is valid for
    /// (`evaluation.rs`): a time window's bucket tag, a count window's generation.
    pub(crate) fn evaluation_tag(&self, generation: u64, now_ns: u64) -> u64 {
        match self {
            Window::Time(w) => w.tag(generation, now_ns),
            Window::Count(_) => generation,
        }
    }

    /// The most calls the window holds: a count window's size; `None` for a time window.
    pub(crate) fn cap(&self) -> Option<u64> {
        match self {
            Window::Time(_) => None,
            Window::Count(c) => Some(c.size() as u64),
        }
    }

    /// The shape it was built for.
    pub(crate) fn spec(&self) -> WindowSpec {
        match self {
            Window::Time(w) => w.spec(),
            Window::Count(c) => WindowSpec::Count {
                size: c.size() as u32,
            },
        }
    }
}
