//! The sliding window and the lifetime totals, striped so that threads do not share cache lines.
//!
//! # Layout
//! Counters live in [`Stripes`]: `stripes` runs of 128-byte-aligned chunks of 16 words, one run
//! per stripe. Each run starts with the stripe's lifetime counters ([`Total`]), followed, for a
//! time window, by one [`bucket`](crate::bucket) word per bucket. A thread writes only the stripe
//! `thread_stripe() & mask`, so two threads on different stripes never write the same line.
//! The default window (10 buckets, a ring of 16) takes two 128-byte chunks per stripe.
//!
//! # Orderings
//! All window and total operations are `Relaxed`. Each word is self-contained (a bucket's counts
//! and its tag change together in one CAS); the window is a statistic summed word by word, and no
//! other memory is published through it. Decisions that must be ordered (transitions) are made on
//! the state word, whose operations carry their own orderings.

use crossbeam_utils::CachePadded;

use crate::bucket::{self, Counts, Decision, Sample};
use crate::fastdiv::FastDiv;
use crate::sync::{AtomicU32, AtomicU64, Ordering, thread_stripe};

const CHUNK: usize = 16;

/// Lifetime counters kept per stripe, in this order at the start of each stripe's run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Total {
    /// Successes not (or no longer) held in a bucket.
    Successes = 0,
    Failures = 1,
    Slow = 2,
    Ignored = 3,
    Rejected = 4,
}
const TOTAL_WORDS: usize = 5;

/// The counts of the window the trip rules look at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WindowStats {
    /// Successes and Failures in the window (Ignored outcomes are not calls).
    pub calls: u64,
    /// Failures in the window.
    pub failures: u64,
    /// Slow calls in the window (successes or failures that took longer than the slow-call
    /// duration).
    pub slow: u64,
}

impl WindowStats {
    /// Successes in the window.
    pub fn successes(&self) -> u64 {
        self.calls - self.failures
    }

    /// `failures / calls`, or 0 for an empty window.
    pub fn failure_rate(&self) -> f64 {
        ratio(self.failures, self.calls)
    }

    /// `slow / calls`, or 0 for an empty window.
    pub fn slow_call_rate(&self) -> f64 {
        ratio(self.slow, self.calls)
    }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

/// Per-stripe counters: lifetime totals and, for a time window, the buckets.
pub(crate) struct Stripes {
    chunks: Box<[CachePadded<[AtomicU64; CHUNK]>]>,
    chunks_per_stripe: usize,
    mask: usize,
}

impl Stripes {
    /// `stripes` must be a power of two.
    pub(crate) fn new(stripes: usize, buckets: usize) -> Stripes {
        debug_assert!(stripes.is_power_of_two());
        let chunks_per_stripe = (TOTAL_WORDS + buckets).div_ceil(CHUNK);
        let chunks = (0..stripes * chunks_per_stripe)
            .map(|_| CachePadded::new(std::array::from_fn(|_| AtomicU64::new(0))))
            .collect();
        Stripes {
            chunks,
            chunks_per_stripe,
            mask: stripes - 1,
        }
    }

    pub(crate) fn count(&self) -> usize {
        self.mask + 1
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.chunks)
    }

    /// The calling thread's stripe.
    #[inline]
    pub(crate) fn mine(&self) -> usize {
        thread_stripe() & self.mask
    }

    #[inline]
    fn word(&self, stripe: usize, index: usize) -> &AtomicU64 {
        &self.chunks[stripe * self.chunks_per_stripe + index / CHUNK][index % CHUNK]
    }

    #[inline]
    fn bucket(&self, stripe: usize, slot: usize) -> &AtomicU64 {
        self.word(stripe, TOTAL_WORDS + slot)
    }

    #[inline]
    pub(crate) fn add(&self, stripe: usize, total: Total, n: u64) {
        if n != 0 {
            // Relaxed: an independent counter (module docs).
            self.word(stripe, total as usize)
                .fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Adds one Success/Failure outcome straight to the lifetime totals.
    pub(crate) fn add_sample(&self, stripe: usize, sample: Sample) {
        let total = if sample.failure {
            Total::Failures
        } else {
            Total::Successes
        };
        self.add(stripe, total, 1);
        self.add(stripe, Total::Slow, u64::from(sample.slow));
    }

    fn fold(&self, stripe: usize, c: Counts) {
        self.add(stripe, Total::Successes, c.calls - c.failures);
        self.add(stripe, Total::Failures, c.failures);
        self.add(stripe, Total::Slow, c.slow);
    }

    fn sum(&self, index: usize) -> u64 {
        (0..self.count())
            // Relaxed: a statistic (module docs).
            .map(|s| self.word(s, index).load(Ordering::Relaxed))
            .fold(0, u64::wrapping_add)
    }

    /// A lifetime total: the folded counter of every stripe plus, for successes, failures and
    /// slow calls, what the live buckets still hold.
    pub(crate) fn total(&self, total: Total, buckets: usize) -> u64 {
        let mut sum = self.sum(total as usize);
        if matches!(total, Total::Successes | Total::Failures | Total::Slow) {
            for stripe in 0..self.count() {
                for slot in 0..buckets {
                    // Relaxed: a statistic (module docs).
                    let c = bucket::counts(self.bucket(stripe, slot).load(Ordering::Relaxed));
                    sum += match total {
                        Total::Successes => c.calls - c.failures,
                        Total::Failures => c.failures,
                        _ => c.slow,
                    };
                }
            }
        }
        sum
    }
}

/// A window of the last `buckets × width` of time.
///
/// Bucket `e` (the `e`-th interval of `width` since the breaker's start) lives in ring slot
/// `e mod ring` of the recording thread's stripe, where `ring` is `buckets` rounded up to a power
/// of two, so `lap = e / ring` and the slot are a shift and a mask. The window is the last
/// `buckets` intervals; the extra slots of the ring simply hold older buckets.
pub(crate) struct TimeWindow {
    width: FastDiv,
    buckets: u64,
    ring_bits: u32,
}

impl TimeWindow {
    pub(crate) fn new(width_ns: u64, buckets: u32) -> TimeWindow {
        TimeWindow {
            width: FastDiv::new(width_ns),
            buckets: u64::from(buckets),
            ring_bits: buckets.next_power_of_two().trailing_zeros(),
        }
    }

    /// Slots in each stripe's ring.
    pub(crate) fn ring(buckets: u32) -> usize {
        buckets.next_power_of_two() as usize
    }

    pub(crate) fn ring_len(&self) -> usize {
        1 << self.ring_bits
    }

    /// The interval number `now_ns` falls in. Intervals are aligned to the breaker's start; an
    /// instant exactly on a boundary belongs to the interval it starts.
    #[inline]
    fn epoch(&self, now_ns: u64) -> u64 {
        self.width.div(now_ns)
    }

    #[inline]
    fn locate(&self, epoch: u64) -> (u64, usize) {
        (
            epoch >> self.ring_bits,
            (epoch & ((1 << self.ring_bits) - 1)) as usize,
        )
    }

    /// Records one sample of a permit of `generation` at time `now_ns`.
    ///
    /// The common case (the bucket is current and has room) is one load and one CAS; anything
    /// else goes to [`record_slow`](Self::record_slow).
    #[inline]
    pub(crate) fn record(
        &self,
        stripes: &Stripes,
        generation: u64,
        now_ns: u64,
        sample: Sample,
        clock: impl Fn() -> u64,
        current: impl Fn() -> bool,
    ) {
        if !self.try_add(stripes, generation, now_ns, sample) {
            let stripe = stripes.mine();
            self.record_slow(
                stripes, stripe, generation, now_ns, sample, &clock, &current,
            );
        }
    }

    /// The common case alone: the bucket is current and has room. One load and one CAS; false
    /// if anything else has to happen.
    #[inline]
    pub(crate) fn try_add(
        &self,
        stripes: &Stripes,
        generation: u64,
        now_ns: u64,
        sample: Sample,
    ) -> bool {
        let (lap, slot) = self.locate(self.epoch(now_ns));
        let cell = stripes.bucket(stripes.mine(), slot);
        // Relaxed: the CAS re-checks the value (module docs).
        let word = cell.load(Ordering::Relaxed);
        match bucket::add(word, bucket::vlap(lap, generation), sample) {
            // Relaxed: the bucket word is self-contained (module docs).
            Some(new) => cell
                .compare_exchange(word, new, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok(),
            None => false,
        }
    }

    /// Everything but the common case: a conflict, a rotation, a full bucket, a late permit.
    ///
    /// `current` says whether `generation` is still the breaker's generation; it is asked before
    /// every rotation, the one write that could disturb a newer generation's bucket. `clock`
    /// re-reads the time before the first rotation, so a thread that stalled between reading the
    /// clock and writing does not rotate a bucket back to a lap that has already passed.
    #[cold]
    #[inline(never)]
    #[allow(clippy::too_many_arguments)]
    fn record_slow(
        &self,
        stripes: &Stripes,
        stripe: usize,
        generation: u64,
        now_ns: u64,
        sample: Sample,
        clock: &dyn Fn() -> u64,
        current: &dyn Fn() -> bool,
    ) {
        let mut now = now_ns;
        let mut refreshed = false;
        'time: loop {
            let (lap, slot) = self.locate(self.epoch(now));
            let vlap = bucket::vlap(lap, generation);
            let cell = stripes.bucket(stripe, slot);
            // Relaxed: the CAS below re-checks the value (module docs).
            let mut word = cell.load(Ordering::Relaxed);
            loop {
                let (new, folded) = match bucket::decide(word, vlap, sample) {
                    Decision::Add(new) => (new, None),
                    Decision::Rescale(new, dropped) => (new, Some(dropped)),
                    Decision::Newer => {
                        stripes.add_sample(stripe, sample);
                        return;
                    }
                    Decision::Rotate(new, replaced) => {
                        if !current() {
                            // A late outcome: lifetime totals only (SPEC rule 2).
                            stripes.add_sample(stripe, sample);
                            return;
                        }
                        if !refreshed {
                            refreshed = true;
                            let fresh = clock().max(now);
                            if fresh != now {
                                now = fresh;
                                continue 'time;
                            }
                        }
                        (new, Some(replaced))
                    }
                };
                // Relaxed: the bucket word is self-contained (module docs). The winner alone
                // folds the counts its swap replaced.
                match cell.compare_exchange_weak(word, new, Ordering::Relaxed, Ordering::Relaxed) {
                    Ok(_) => {
                        if let Some(c) = folded {
                            stripes.fold(stripe, c);
                        }
                        return;
                    }
                    Err(fresh) => word = fresh,
                }
            }
        }
    }

    /// The window of `generation` as seen at `now_ns`: the last `buckets` intervals.
    pub(crate) fn stats(&self, stripes: &Stripes, generation: u64, now_ns: u64) -> WindowStats {
        let current = self.epoch(now_ns);
        let mut stats = WindowStats::default();
        for epoch in current.saturating_sub(self.buckets - 1)..=current {
            let (lap, slot) = self.locate(epoch);
            let expected = bucket::vlap(lap, generation);
            for stripe in 0..stripes.count() {
                // Relaxed: a statistic (module docs).
                let word = stripes.bucket(stripe, slot).load(Ordering::Relaxed);
                if bucket::vlap_of(word) == expected {
                    let c = bucket::counts(word);
                    stats.calls += c.calls;
                    stats.failures += c.failures;
                    stats.slow += c.slow;
                }
            }
        }
        stats
    }
}

/// A window of the last `size` outcomes.
///
/// A shared cursor hands each outcome a position; the outcome is stored, tagged with its
/// permit's generation, in slot `position % size`. Reading sums the slots tagged with the
/// current generation, so closing the breaker again empties the window without touching it, and
/// a late permit's store is invisible. Costlier than the time window: a shared `fetch_add` per
/// outcome, plus a lifetime counter, and reading is O(size).
///
/// Slot layout (`u32`): bits 0..8 code (1 = call, 2 = failure, 4 = slow; 0 = empty), bits 8..32
/// the low 24 bits of the generation.
pub(crate) struct CountWindow {
    cursor: CachePadded<AtomicU64>,
    slots: Box<[AtomicU32]>,
    size: FastDiv,
}

const SLOT_TAG_MASK: u64 = 0xFF_FFFF;

fn slot_word(generation: u64, sample: Sample) -> u32 {
    let code = 1 | (u32::from(sample.failure) << 1) | (u32::from(sample.slow) << 2);
    (((generation & SLOT_TAG_MASK) as u32) << 8) | code
}

impl CountWindow {
    pub(crate) fn new(size: u32) -> CountWindow {
        CountWindow {
            cursor: CachePadded::new(AtomicU64::new(0)),
            slots: (0..size).map(|_| AtomicU32::new(0)).collect(),
            size: FastDiv::new(u64::from(size)),
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.slots)
    }

    pub(crate) fn record(&self, generation: u64, sample: Sample) {
        // Relaxed: only hands out distinct positions; the slot store carries the data.
        let position = self.cursor.fetch_add(1, Ordering::Relaxed);
        let (_, slot) = self.size.div_rem(position);
        // Relaxed: a self-contained slot (module docs).
        self.slots[slot as usize].store(slot_word(generation, sample), Ordering::Relaxed);
    }

    pub(crate) fn stats(&self, generation: u64) -> WindowStats {
        let tag = (generation & SLOT_TAG_MASK) as u32;
        let mut stats = WindowStats::default();
        for slot in self.slots.iter() {
            // Relaxed: a statistic (module docs).
            let word = slot.load(Ordering::Relaxed);
            if word & 0xFF != 0 && word >> 8 == tag {
                stats.calls += 1;
                stats.failures += u64::from(word & 2 != 0);
                stats.slow += u64::from(word & 4 != 0);
            }
        }
        stats
    }
}

/// Either kind of window.
pub(crate) enum Window {
    Time(TimeWindow),
    // Boxed: its padded cursor would make every time-window breaker 200 bytes bigger.
    Count(Box<CountWindow>),
}

impl Window {
    /// Bucket words held in each stripe (0 for a count window).
    pub(crate) fn striped_buckets(&self) -> usize {
        match self {
            Window::Time(t) => t.ring_len(),
            Window::Count(_) => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;
    const S: Sample = Sample {
        failure: false,
        slow: false,
    };
    const F: Sample = Sample {
        failure: true,
        slow: false,
    };

    fn window(width_ns: u64, buckets: u32, stripes: usize) -> (TimeWindow, Stripes) {
        (
            TimeWindow::new(width_ns, buckets),
            Stripes::new(stripes, TimeWindow::ring(buckets)),
        )
    }

    fn record(w: &TimeWindow, s: &Stripes, generation: u64, t: u64, sample: Sample) {
        w.record(s, generation, t, sample, || t, || true);
    }

    #[test]
    fn default_window_takes_two_chunks_per_stripe() {
        let s = Stripes::new(8, TimeWindow::ring(10));
        assert_eq!(s.heap_bytes(), 8 * 256);
    }

    #[test]
    fn time_window_slides_by_whole_buckets() {
        // 10 buckets of 1 s.
        let (w, s) = window(1_000 * MS, 10, 1);
        record(&w, &s, 0, 500 * MS, F);
        record(&w, &s, 0, 999 * MS, F);
        record(&w, &s, 0, 1_000 * MS, S); // exactly on a boundary: the bucket it starts
        assert_eq!(w.stats(&s, 0, 9_999 * MS).calls, 3);
        let at_10s = w.stats(&s, 0, 10_000 * MS);
        assert_eq!(
            (at_10s.calls, at_10s.failures),
            (1, 0),
            "first bucket left the window"
        );
        assert_eq!(w.stats(&s, 0, 11_000 * MS).calls, 0);
        // Lifetime totals keep everything, whether still in a bucket or folded.
        assert_eq!(s.total(Total::Failures, 16), 2);
        record(&w, &s, 0, 16_500 * MS, S); // ring of 16: rotates slot 0, folds its two failures
        assert_eq!(s.total(Total::Failures, 16), 2);
        assert_eq!(s.total(Total::Successes, 16), 2);
    }

    #[test]
    fn another_generation_sees_an_empty_window() {
        let (w, s) = window(1_000 * MS, 10, 2);
        record(&w, &s, 4, 0, F);
        assert_eq!(w.stats(&s, 4, 0).calls, 1);
        assert_eq!(w.stats(&s, 5, 0).calls, 0);
        assert_eq!(w.stats(&s, 7, 0).calls, 0);
        // The new generation takes the slot over; the old failure is folded, not lost.
        record(&w, &s, 7, 0, S);
        assert_eq!(
            w.stats(&s, 7, 0),
            WindowStats {
                calls: 1,
                failures: 0,
                slow: 0
            }
        );
        assert_eq!(s.total(Total::Failures, 10), 1);
    }

    #[test]
    fn a_late_writer_does_not_rotate_a_newer_generation_away() {
        let (w, s) = window(1_000 * MS, 10, 1);
        record(&w, &s, 9, 0, F);
        // Generation 5 is stale: `current` says so, and its sample goes to the totals.
        w.record(&s, 5, 0, S, || 0, || false);
        assert_eq!(w.stats(&s, 9, 0).calls, 1);
        assert_eq!(s.total(Total::Successes, 16), 1);
    }

    #[test]
    fn a_full_bucket_keeps_its_rate_and_exact_totals() {
        let (w, s) = window(1_000 * MS, 1, 1);
        for i in 0..200_000 {
            record(&w, &s, 0, 0, if i % 4 == 0 { F } else { S });
        }
        let stats = w.stats(&s, 0, 0);
        assert!(stats.calls > bucket::CALLS_MAX / 2 && stats.calls <= bucket::CALLS_MAX);
        assert!((stats.failure_rate() - 0.25).abs() < 0.001, "{stats:?}");
        assert_eq!(
            s.total(Total::Failures, 1),
            50_000,
            "lifetime totals stay exact"
        );
        assert_eq!(s.total(Total::Successes, 1), 150_000);
    }

    #[test]
    fn count_window_keeps_the_last_n_of_the_generation() {
        let c = CountWindow::new(3);
        c.record(1, F);
        c.record(1, F);
        c.record(1, S);
        c.record(1, S);
        assert_eq!(
            c.stats(1),
            WindowStats {
                calls: 3,
                failures: 1,
                slow: 0
            }
        );
        assert_eq!(c.stats(2).calls, 0);
        c.record(2, F);
        assert_eq!(
            c.stats(2),
            WindowStats {
                calls: 1,
                failures: 1,
                slow: 0
            }
        );
        assert_eq!(c.stats(1).calls, 2);
    }
}
