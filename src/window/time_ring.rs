//! The time window: the last `buckets` intervals of the breaker's clock.

use super::counters::{BucketKind, Sample, Total, kinds};
use super::owned;
use super::spec::WindowSpec;
use super::stats::WindowStats;
use super::stripes::{CallerStripe, Stripes};
use crate::bucket::{self, Decision};
use crate::fastdiv::FastDiv;
use crate::sync::{AtomicU128, Ordering};
use crate::thread_slot;

/// A window of the last `buckets × width` of time.
///
/// Interval `e` (the `e`-th interval of `width` since the breaker's start) of generation `g` is
/// counted under the [tag](crate::bucket) `g · 2B + e`, in ring slot `tag mod ring` of the
/// recording thread's stripe, where `ring` is `B + 1`: the window is the last `B` intervals of
/// the current generation, and any `B + 1` consecutive intervals of a generation fall in distinct
/// slots. The one slot to spare is for the interval after the window: a reader whose time lags
/// a writer that has just crossed into the next interval still finds each word of its oldest
/// bucket whole (the three kinds rotate by separate swaps; with `B` slots the writer's Success
/// could rotate that bucket's Success word away while the reader still counts its Failures). A
/// reader further behind finds a word of its oldest bucket rotated past it and counts none of
/// that bucket's words on that stripe, as an owned stripe whose mark was rewritten does. A
/// write for an interval older than the one its slot holds counts in the lifetime totals only.
#[derive(Debug)]
pub(crate) struct TimeRing {
    width: FastDiv,
    width_ns: u64,
    buckets: u64,
    stride: u64,
    /// Division by the ring's length, `B + 1` (exact; a multiply and a shift, see `fastdiv.rs`).
    ring: FastDiv,
}

impl TimeRing {
    pub(crate) fn new(width_ns: u64, buckets: u32) -> TimeRing {
        TimeRing {
            width: FastDiv::new(width_ns),
            width_ns,
            buckets: u64::from(buckets),
            stride: 2 * u64::from(buckets),
            ring: FastDiv::new(u64::from(buckets) + 1),
        }
    }

    /// The shape it was built for.
    pub(super) fn spec(&self) -> WindowSpec {
        WindowSpec::Time {
            width_ns: self.width_ns,
            buckets: self.buckets as u32,
        }
    }

    /// The interval number `now_ns` falls in. Intervals are aligned to the breaker's start; an
    /// instant exactly on a boundary belongs to the interval it starts.
    #[inline]
    fn epoch(&self, now_ns: u64) -> u64 {
        self.width.div(now_ns)
    }

    #[inline]
    pub(super) fn tag(&self, generation: u64, now_ns: u64) -> u64 {
        bucket::tag(self.stride, generation, self.epoch(now_ns))
    }

    #[inline]
    fn slot(&self, tag: u64) -> usize {
        self.ring.div_rem(tag).1 as usize
    }

    /// Records one sample of a permit of `generation` at time `now_ns`, read on the real clock,
    /// into `writer`'s stripe. `trust_recent`: whether quanta's recent time is within the
    /// tolerance of `now_ns` (it opens or closes an owned stripe's fast path, see `owned/head.rs`, "Time").
    pub(crate) fn record_as(
        &self,
        stripes: &Stripes,
        writer: CallerStripe,
        generation: u64,
        now_ns: u64,
        sample: Sample,
        trust_recent: bool,
    ) {
        let epoch = self.epoch(now_ns);
        let tag = bucket::tag(self.stride, generation, epoch);
        let stripe = match writer {
            CallerStripe::Owned(i) => {
                let end = epoch.saturating_add(1).saturating_mul(self.width_ns);
                let kinds = kinds(sample);
                if !stripes
                    .owned()
                    .record(i, generation, (tag, end), kinds, trust_recent)
                {
                    stripes.add_late(sample);
                }
                return;
            }
            CallerStripe::Shared(s) => s,
        };
        let kind = if sample.failure {
            BucketKind::Failure
        } else {
            stripes.shared_success(stripe);
            BucketKind::Success
        };
        self.add(stripes, stripe, kind, tag);
        if sample.slow {
            self.add(stripes, stripe, BucketKind::Slow, tag);
        }
    }

    /// The common case alone on a shared stripe: a Success into a bucket that already holds its
    /// tag. One load and one CAS; false if anything else has to happen.
    #[inline]
    pub(crate) fn try_add_success(
        &self,
        stripes: &Stripes,
        stripe: usize,
        generation: u64,
        now_ns: u64,
    ) -> bool {
        let tag = self.tag(generation, now_ns);
        let cell = stripes.cell(stripe, BucketKind::Success, self.slot(tag));
        // Relaxed: the CAS re-checks the value (`window/mod.rs`, "Orderings").
        let word = cell.load(Ordering::Relaxed);
        match bucket::add(word, tag) {
            // Acquire on success: the add reads the rotation that started the bucket (module
            // docs, "Orderings"); the same instruction as Relaxed on x86-64. Relaxed on failure:
            // nothing is read on the strength of a lost swap.
            Some(new) => {
                let added = cell
                    .compare_exchange(word, new, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok();
                if added {
                    stripes.shared_success(stripe);
                }
                added
            }
            None => false,
        }
    }

    /// Adds one to the `kind` word of the bucket tagged `tag`: add, rotate (folding the count
    /// the rotation replaced into the lifetime totals), or (the bucket holds a newer tag) count
    /// in the lifetime totals only.
    #[cold]
    fn add(&self, stripes: &Stripes, stripe: usize, kind: BucketKind, tag: u64) {
        let Some(cell) = stripes.word(stripe, kind, self.slot(tag)) else {
            // A slow call before the slow-call rings exist: not reached, since they are
            // allocated before any rules that make a call slow are published; counted in the
            // lifetime total all the same.
            stripes.add(stripe, kind.total(), 1);
            return;
        };
        let to_total = match swap_in(stripes, stripe, cell, tag) {
            Swapped::Added => 0,
            Swapped::Rotated(replaced) => replaced,
            Swapped::Newer => 1,
        };
        stripes.add(stripe, kind.total(), to_total);
    }

    /// The interval `now_ns` falls in (see [`epoch`](Self::epoch)).
    pub(crate) fn interval(&self, now_ns: u64) -> u64 {
        self.epoch(now_ns)
    }

    /// Counts one call the throttle turned away under a permit of `generation` at `now_ns` (real
    /// clock): in the lifetime total, then in the throttled ring's bucket of that interval
    /// (add, rotate, or nothing if the bucket already holds a newer tag: the window count is
    /// bounded, the total exact).
    pub(crate) fn add_throttled(&self, stripes: &Stripes, generation: u64, now_ns: u64) {
        let stripe = thread_slot::stripe() & stripes.mask();
        stripes.add_one(CallerStripe::Shared(stripe), Total::Throttled);
        if let Some(ring) = stripes.throttled() {
            self.add_to_ring(stripes, ring, stripe, generation, now_ns);
        }
    }

    /// Counts one Closed call of `generation` that ended Ignored or whose permit was dropped, at
    /// `now_ns` (real clock), in the answered ring (a throttle's accepts; see `throttle/`).
    pub(crate) fn add_answered(&self, stripes: &Stripes, generation: u64, now_ns: u64) {
        if let Some(ring) = stripes.answered() {
            let stripe = thread_slot::stripe() & stripes.mask();
            self.add_to_ring(stripes, ring, stripe, generation, now_ns);
        }
    }

    /// Adds one to the bucket of `ring` (the throttled or the answered ring) for `generation`
    /// at `now_ns`: add, rotate, or nothing if the bucket already holds a newer tag. A
    /// rotation's replaced count needs no fold: the lifetime total was counted apart.
    fn add_to_ring(
        &self,
        stripes: &Stripes,
        ring: &[AtomicU128],
        stripe: usize,
        generation: u64,
        now_ns: u64,
    ) {
        let tag = self.tag(generation, now_ns);
        swap_in(stripes, stripe, &ring[self.slot(tag)], tag);
    }

    /// The window of `generation` as seen at `now_ns`: the last `buckets` intervals.
    pub(crate) fn stats(&self, stripes: &Stripes, generation: u64, now_ns: u64) -> WindowStats {
        self.read(stripes, generation, now_ns, Reader::Decision)
    }

    /// [`stats`](TimeRing::stats) for a report: an owned stripe whose owner has not rolled into
    /// the window costs one load instead of its marks (`Owned::rolled_since`).
    pub(crate) fn report(&self, stripes: &Stripes, generation: u64, now_ns: u64) -> WindowStats {
        self.read(stripes, generation, now_ns, Reader::Report)
    }

    fn read(&self, stripes: &Stripes, generation: u64, now_ns: u64, reader: Reader) -> WindowStats {
        let current = self.epoch(now_ns);
        let first = current.saturating_sub(self.buckets - 1);
        let mut successes = 0u64;
        let mut stats = WindowStats::default();
        let (lo, hi) = (
            bucket::tag(self.stride, generation, first),
            bucket::tag(self.stride, generation, current),
        );
        if reader == Reader::Report && !stripes.owned().started_since(lo) {
            // No bucket of the window has been started (see `Owned::started`).
            return stats;
        }
        let owned::Counts(c) = stripes
            .owned()
            .window_total(lo, hi, reader == Reader::Report);
        successes = successes.saturating_add(c[owned::SUCCESSES]);
        stats.failures = stats.failures.saturating_add(c[owned::FAILURES]);
        stats.slow = stats.slow.saturating_add(c[owned::SLOW]);
        // A report skips the rings when no shared word was rotated into the window.
        if reader == Reader::Decision || stripes.shared_started_since(lo) {
            for epoch in first..=current {
                let tag = bucket::tag(self.stride, generation, epoch);
                let slot = self.slot(tag);
                for stripe in 0..stripes.shared() {
                    // Relaxed: a statistic (`window/mod.rs`, "Orderings").
                    // A slow-call ring not allocated yet reads as an empty word.
                    let words =
                        [BucketKind::Success, BucketKind::Failure, BucketKind::Slow].map(|kind| {
                            stripes
                                .word(stripe, kind, slot)
                                .map_or(0, |word| word.load(Ordering::Relaxed))
                        });
                    // A word already rotated past this bucket (a writer in a later interval,
                    // this reader's time behind it): the bucket is leaving the window, so none
                    // of its words count, never some kinds without the others.
                    if words.iter().any(|&word| bucket::tag_of(word) > tag) {
                        continue;
                    }
                    let count = |word: u128| {
                        if bucket::tag_of(word) == tag {
                            bucket::count(word)
                        } else {
                            0
                        }
                    };
                    successes = successes.saturating_add(count(words[0]));
                    stats.failures = stats.failures.saturating_add(count(words[1]));
                    stats.slow = stats.slow.saturating_add(count(words[2]));
                }
            }
            if let (Some(throttled), Some(answered)) = (stripes.throttled(), stripes.answered()) {
                for epoch in first..=current {
                    let tag = bucket::tag(self.stride, generation, epoch);
                    let read = |ring: &[AtomicU128]| {
                        // Relaxed: a statistic (`window/mod.rs`, "Orderings").
                        let word = ring[self.slot(tag)].load(Ordering::Relaxed);
                        if bucket::tag_of(word) == tag {
                            bucket::count(word)
                        } else {
                            0
                        }
                    };
                    stats.throttled = stats.throttled.saturating_add(read(throttled));
                    stats.answered = stats.answered.saturating_add(read(answered));
                }
            }
        }
        stats.calls = successes.saturating_add(stats.failures);
        // A slow call's two words are separate swaps: never report more slow calls than calls.
        stats.slow = stats.slow.min(stats.calls);
        stats
    }
}

/// What [`swap_in`] did to a bucket word.
enum Swapped {
    Added,
    /// Started the bucket, replacing this count of an older one.
    Rotated(u64),
    /// Left it: the word holds a newer tag.
    Newer,
}

/// Adds one for `tag` to the bucket word `cell` of shared stripe `stripe` (or of a ring its
/// threads write): add, rotate, or nothing if the word holds a newer tag. The winner of a
/// rotation alone gets the replaced count.
fn swap_in(stripes: &Stripes, stripe: usize, cell: &AtomicU128, tag: u64) -> Swapped {
    // Relaxed: the CAS below re-checks the value (`window/mod.rs`, "Orderings").
    let mut word = cell.load(Ordering::Relaxed);
    loop {
        let (new, swapped) = match bucket::decide(word, tag) {
            Decision::Add(new) => (new, Swapped::Added),
            Decision::Rotate(new, replaced) => {
                // Before the swap, so the counts in the new bucket come after it.
                stripes.rotating(stripe, tag);
                (new, Swapped::Rotated(replaced))
            }
            Decision::Newer => return Swapped::Newer,
        };
        // AcqRel on success: a rotation releases its bucket's start, an add acquires it
        // (`window/mod.rs`, "Orderings"). Relaxed on failure: the loop decides again on the
        // fresh word.
        match cell.compare_exchange_weak(word, new, Ordering::AcqRel, Ordering::Relaxed) {
            Ok(_) => return swapped,
            Err(fresh) => word = fresh,
        }
    }
}

/// Who reads a time window: a decision (trip rules, throttle) or a report (metrics, health).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reader {
    Decision,
    Report,
}
