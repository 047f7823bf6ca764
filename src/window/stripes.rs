//! The stripes of counters: the owned stripes' handle and the shared stripes.
//!
//! Counters live in [`Stripes`]: the owned stripes of `owned.rs`, each written by one thread at a
//! time with plain stores, and the shared stripes below, written with atomic read-modify-writes
//! by threads that hold no owned stripe (see `thread_slot.rs`). A breaker has as many owned
//! stripes as its `stripes` setting and one shared one ([`shared_stripes`]). Readers add both
//! up.
//!
//! Each shared stripe has a 128-byte block of lifetime counters
//! ([`Total`]: what rotations folded out of the buckets, plus Ignored, Rejected and Throttled), and, for a
//! time window, two rings of [`bucket`] words (Successes, Failures), padded to whole 128-byte
//! lines, and a third (slow calls) once a slow-call rule is configured. A thread writes only the
//! shared stripe `thread_slot::stripe() & mask`, so two threads on different stripes never write
//! the same line.
//!
//! Calls the throttle turns away (see `throttle/`) have one more ring of bucket words, with the
//! same tags, not striped: only throttled calls write it, and they are rejections, off the
//! success path. The window's requests are its calls plus this ring's count; the lifetime total
//! of throttled calls is a [`Total`] of the shared stripes (written there by every thread, owned
//! stripe or not).

use std::sync::OnceLock;

use crossbeam_utils::CachePadded;

use super::counters::{BucketKind, LINE, NEWEST, SUCCESS_EVENTS, Sample, Total, kinds};
use super::owned::{self, Owned, RunView};
use crate::bucket;
use crate::consecutive::BaselineEntry;
use crate::sync::{AtomicU64, AtomicU128, Ordering};
use crate::thread_slot;

/// A shared stripe's line of totals (one 128-byte line).
#[derive(Debug)]
struct SharedTotals {
    /// Indexed by [`Total`], then [`SUCCESS_EVENTS`] and [`NEWEST`].
    counters: [AtomicU64; 8],
    /// `generation 64 | run 64`: the stripe's consecutive Closed Failures of `generation` since
    /// its last Success, whichever of its threads recorded them (the stripe's own order of
    /// outcomes: its threads keep no local run of their own). Changed by compare-and-swap, by
    /// a Closed Failure and by the first Success after one. 64-bit fields: the generation is
    /// compared whole, the run saturates.
    run: AtomicU128,
    /// The stripe's part of the consecutive-failure check's baseline (`consecutive.rs`),
    /// written by the check that renews it.
    baseline: BaselineEntry,
}

/// How many shared stripes a breaker with `owned` owned stripes has: one per
/// [`POOL`](thread_slot::POOL) owned ones (the thread-slot pool), at least one: one, as a
/// breaker has at most that many owned stripes. They are what threads beyond the owned stripes
/// (past the pool, past a `stripes` set below the threads that call, or whose block is not there
/// yet) count on, and each costs its lines from the build (a line of totals and the success and
/// failure rings: 512 bytes with 10 buckets; the slow-call ring comes with a slow-call rule),
/// called or not: so few that an idle breaker stays small, at the price of more threads per
/// shared line when more threads than owned stripes call at once.
pub(crate) fn shared_stripes(owned: usize) -> usize {
    (owned / thread_slot::POOL as usize).max(1)
}

/// Which stripe the calling thread writes, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CallerStripe {
    /// An owned stripe: plain stores (`owned.rs`).
    Owned(usize),
    /// A shared stripe: atomic read-modify-writes.
    Shared(usize),
}

/// Per-stripe counters: lifetime totals and, for a time window, the bucket rings.
///
/// `repr(C)`, the owned stripes first: their handle's first 32 bytes are what a Success reads
/// (see `owned.rs`), and the breaker places them beside its hot words.
#[repr(C)]
pub(crate) struct Stripes {
    owned: Owned,
    /// Per shared stripe: the lifetime totals, indexed by [`Total`], and at [`NEWEST`] one
    /// more than the newest tag a word of its rings (or of the throttled ring, written by
    /// threads of this stripe) was rotated to.
    totals: Box<[CachePadded<SharedTotals>]>,
    /// Per shared stripe, its Success ring then its Failure ring, padded to whole lines.
    pub(super) lines: Box<[CachePadded<[AtomicU128; LINE]>]>,
    /// Per shared stripe, its slow-call ring, padded to whole lines. Allocated only once a
    /// slow-call rule is configured (at build or by a reconfiguration, off every call's path,
    /// see [`Stripes::prepare_slow`]), and only for a time window: no call is slow before that,
    /// so a breaker without the rule does not carry the ring.
    slow: OnceLock<Box<SlowRings>>,
    /// Calls the throttle turned away: one ring of bucket words, not striped. Their lifetime
    /// total is [`Total::Throttled`] of the shared stripes.
    ///
    /// After it, in the same allocation, the *answered* ring: calls admitted while Closed that
    /// ended Ignored or whose permit was dropped, counted only with a throttle (see
    /// `throttle/`: the backend did not refuse them, so they are accepts); not striped either
    /// (one compare-and-swap per such outcome).
    ///
    /// Allocated only once a throttle is configured (at build or by a reconfiguration, off every
    /// call's path, see [`Stripes::prepare_throttle`]), and only for a time window: only a
    /// throttle writes them, so a breaker without one does not carry them.
    rings: OnceLock<Box<ThrottleRings>>,
}

/// The shared stripes' slow-call rings (see `Stripes::slow`). Behind a thin pointer: the
/// breaker's inline size is budgeted, and slow calls are off the success path.
struct SlowRings(Box<[CachePadded<[AtomicU128; LINE]>]>);

/// The throttled and answered rings (see `Stripes::rings`), behind a thin pointer as
/// [`SlowRings`].
struct ThrottleRings(Box<[AtomicU128]>);

impl std::fmt::Debug for Stripes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stripes")
            .field("owned", &self.owned)
            .field("shared", &self.shared())
            .field("ring", &self.ring())
            .finish_non_exhaustive()
    }
}

impl Stripes {
    /// `stripes` owned stripes (a power of two) and [`shared_stripes`] shared ones, for a time window of `buckets` buckets (0 without a time window); `offset` is the
    /// breaker's start on its clock's own scale (see `owned/head.rs`, "Time"). A shared stripe's rings have
    /// `buckets + 1` slots, as an owned stripe keeps `buckets + 1` marks.
    pub(crate) fn new(stripes: usize, buckets: u32, offset: u64) -> Stripes {
        debug_assert!(stripes.is_power_of_two());
        let (ring, marks) = match buckets {
            0 => (0, 0),
            // One ring slot per bucket and one to spare (see `time_ring.rs`), as many as an
            // owned stripe's marks.
            b => (b as usize + 1, b + 1),
        };
        let owned = Owned::new(stripes, marks, offset);
        let stripes = shared_stripes(stripes);
        let lines_per_stripe = (2 * ring).div_ceil(LINE);
        Stripes {
            owned,
            totals: (0..stripes)
                .map(|_| {
                    CachePadded::new(SharedTotals {
                        counters: std::array::from_fn(|_| AtomicU64::new(0)),
                        run: AtomicU128::new(0),
                        baseline: BaselineEntry::new(),
                    })
                })
                .collect(),
            lines: (0..stripes * lines_per_stripe)
                .map(|_| CachePadded::new(std::array::from_fn(|_| AtomicU128::new(0))))
                .collect(),
            slow: OnceLock::new(),
            rings: OnceLock::new(),
        }
    }

    /// Allocates the shared stripes' slow-call rings if this is a time window and they are not
    /// there yet: called when a slow-call rule is configured, before the rules that hold it are
    /// published, so that a call classified slow finds them. Allocates: never on a call's path.
    pub(crate) fn prepare_slow(&self) {
        if self.ring() > 0 {
            self.slow.get_or_init(|| {
                let lines = self.shared() * self.ring().div_ceil(LINE);
                Box::new(SlowRings(
                    (0..lines)
                        .map(|_| CachePadded::new(std::array::from_fn(|_| AtomicU128::new(0))))
                        .collect(),
                ))
            });
        }
    }

    /// Allocates the throttled and answered rings if this is a time window and they are not
    /// there yet: called when a throttle is configured, before the rules that hold it are
    /// published. Allocates: never on a call's path.
    pub(crate) fn prepare_throttle(&self) {
        if self.ring() > 0 {
            self.rings.get_or_init(|| {
                Box::new(ThrottleRings(
                    (0..2 * self.ring()).map(|_| AtomicU128::new(0)).collect(),
                ))
            });
        }
    }

    /// The throttled ring (see `rings`): `None` until a throttle was configured.
    pub(super) fn throttled(&self) -> Option<&[AtomicU128]> {
        self.rings.get().map(|rings| &rings.0[..self.ring()])
    }

    /// The answered ring (see `rings`): `None` until a throttle was configured.
    pub(super) fn answered(&self) -> Option<&[AtomicU128]> {
        self.rings.get().map(|rings| &rings.0[self.ring()..])
    }

    /// The `stripes` setting: how many owned stripes.
    pub(crate) fn count(&self) -> usize {
        self.owned.count()
    }

    pub(super) fn shared(&self) -> usize {
        self.totals.len()
    }

    /// Slots in each ring.
    pub(super) fn ring(&self) -> usize {
        self.owned.ring()
    }

    /// Which shared stripes a thread stripe maps to (their count is a power of two).
    pub(super) fn mask(&self) -> usize {
        self.shared() - 1
    }

    /// Bucket words per stripe in `lines`: its Success and Failure rings, rounded up to whole
    /// lines.
    pub(super) fn cells_per_stripe(&self) -> usize {
        (2 * self.ring()).next_multiple_of(LINE)
    }

    pub(crate) fn owned(&self) -> &Owned {
        &self.owned
    }

    /// The owned stripes, before the breaker is shared.
    pub(crate) fn owned_mut(&mut self) -> &mut Owned {
        &mut self.owned
    }

    /// Heap bytes held.
    #[cfg(any(test, feature = "test-util"))]
    pub(crate) fn heap_bytes(&self) -> usize {
        self.owned.heap_bytes()
            + std::mem::size_of_val(&*self.totals)
            + std::mem::size_of_val(&*self.lines)
            + self.slow.get().map_or(0, |slow| {
                std::mem::size_of::<SlowRings>() + std::mem::size_of_val(&*slow.0)
            })
            + self.rings.get().map_or(0, |rings| {
                std::mem::size_of::<ThrottleRings>() + std::mem::size_of_val(&*rings.0)
            })
    }

    /// The stripe the calling thread writes: its owned stripe if it holds one of this breaker's,
    /// else a shared one.
    #[inline(always)]
    pub(crate) fn caller_stripe(&self) -> CallerStripe {
        let slot = thread_slot::current();
        if self.owned.head(slot).is_some() {
            CallerStripe::Owned(slot as usize)
        } else {
            self.caller_stripe_otherwise()
        }
    }

    /// A thread without one of this breaker's owned stripes, without its block yet, or without
    /// a slot yet: claims what it can (never allocating, see `owned.rs`).
    #[inline(never)]
    fn caller_stripe_otherwise(&self) -> CallerStripe {
        let slot = thread_slot::claimed() as usize;
        if self.owned.claim(slot) {
            CallerStripe::Owned(slot)
        } else {
            CallerStripe::Shared(slot & self.mask())
        }
    }

    /// The Success or Failure word of ring slot `slot` of shared stripe `stripe` (not for
    /// slow calls: see [`word`](Stripes::word)).
    #[inline]
    pub(super) fn cell(&self, stripe: usize, kind: BucketKind, slot: usize) -> &AtomicU128 {
        debug_assert!(kind != BucketKind::Slow);
        let index = stripe * self.cells_per_stripe() + kind as usize * self.ring() + slot;
        &self.lines[index / LINE][index % LINE]
    }

    /// The `kind` word of ring slot `slot` of shared stripe `stripe`: `None` for a slow-call
    /// word before a slow-call rule was configured (no call was slow, see `slow`).
    #[inline]
    pub(super) fn word(&self, stripe: usize, kind: BucketKind, slot: usize) -> Option<&AtomicU128> {
        match kind {
            BucketKind::Success | BucketKind::Failure => Some(self.cell(stripe, kind, slot)),
            BucketKind::Slow => {
                let index = stripe * self.ring().next_multiple_of(LINE) + slot;
                self.slow
                    .get()
                    .map(|lines| &lines.0[index / LINE][index % LINE])
            }
        }
    }

    /// Counts a rejection of the calling thread: on its owned stripe's line when it has one (a
    /// plain increment, the common case), else as [`add_one`](Stripes::add_one) does.
    #[inline(always)]
    pub(crate) fn add_rejected(&self) {
        match self.owned.head(thread_slot::current()) {
            Some(head) => head.add_rejected(),
            None => {
                self.add_one(self.caller_stripe(), Total::Rejected);
            }
        }
    }

    /// Adds one to a lifetime total (not to any bucket). Returns, for Rejected, how many this
    /// stripe has counted so far.
    #[inline]
    pub(crate) fn add_one(&self, writer: CallerStripe, total: Total) -> u64 {
        match writer {
            CallerStripe::Owned(i) => match total {
                Total::Throttled => self.add_one(
                    CallerStripe::Shared(thread_slot::stripe() & self.mask()),
                    total,
                ),
                Total::Ignored => {
                    self.owned.add_ignored(i);
                    0
                }
                Total::Rejected => self.owned.add_rejected(i),
                Total::Successes => {
                    self.owned.add_outside(i, &[owned::SUCCESSES]);
                    0
                }
                Total::Failures => {
                    self.owned.add_outside(i, &[owned::FAILURES]);
                    0
                }
                Total::Slow => {
                    self.owned.add_outside(i, &[owned::SLOW]);
                    0
                }
            },
            // Release: see `add`. The value returned is the count after this one.
            CallerStripe::Shared(s) => {
                if total == Total::Successes {
                    self.shared_success(s);
                }
                self.totals[s].counters[total as usize]
                    .fetch_add(1, Ordering::Release)
                    .wrapping_add(1)
            }
        }
    }

    #[inline]
    pub(super) fn add(&self, stripe: usize, total: Total, n: u64) {
        if n != 0 {
            // Release: a fold must be seen after the rotation that produced it (`window/mod.rs`, "Orderings");
            // for Ignored, Rejected and Throttled it orders nothing and costs nothing extra on x86.
            self.totals[stripe].counters[total as usize].fetch_add(n, Ordering::Release);
        }
    }

    /// Notes, before the swap, that a word of shared stripe `stripe` (or of the throttled ring)
    /// is being rotated to `tag`: for the breaker (`Owned::started`) and for the stripe.
    pub(super) fn rotating(&self, stripe: usize, tag: u64) {
        self.owned.started(tag);
        // Relaxed: as `Owned::started`, whose argument this word follows.
        self.totals[stripe].counters[NEWEST].fetch_max(tag.saturating_add(1), Ordering::Relaxed);
    }

    /// Whether a word of a shared stripe's rings or of the throttled ring may hold a tag of `lo`
    /// or later: as `Owned::started_since`, for the shared words alone.
    pub(super) fn shared_started_since(&self, lo: u64) -> bool {
        // Relaxed: see `rotating`.
        lo == 0
            || self
                .totals
                .iter()
                .any(|t| t.counters[NEWEST].load(Ordering::Relaxed) > lo)
    }

    /// Shared and owned stripes together, as the consecutive-failure check numbers them: the
    /// shared stripes first, then owned stripe `i` as `shared + i`.
    pub(crate) fn writers(&self) -> usize {
        self.shared() + self.owned.count()
    }

    /// How many of the first [`writers`](Self::writers) may have their lines now: the shared
    /// stripes, and the owned stripes up to the last that may have its block (`Owned::reach`).
    /// Never falls while the breaker lives.
    pub(crate) fn reach(&self) -> usize {
        self.shared() + self.owned.reach()
    }

    /// Stripe `i`'s part of the consecutive-failure check's baseline, numbered as in
    /// [`writers`](Self::writers): none for an owned stripe whose thread has not called.
    pub(crate) fn baseline(&self, i: usize) -> Option<&BaselineEntry> {
        match i.checked_sub(self.shared()) {
            None => self.totals.get(i).map(|line| &line.baseline),
            Some(o) => self.owned.baseline(o),
        }
    }

    /// Stripe `i` of [`writers`](Self::writers) as the consecutive-failure check reads it in
    /// `generation`: an owned stripe's Successes and local run (`owned/read.rs`), a shared stripe's
    /// Success events and no run (its threads keep none).
    pub(crate) fn run_view(&self, i: usize, generation: u64) -> RunView {
        match i.checked_sub(self.shared()) {
            Some(o) => self.owned.run_view(o, generation),
            None => {
                let line = &self.totals[i];
                // Acquire, then the run: as an owned stripe's (`owned/read.rs`, "Local
                // run"), so a Success seen comes with the run it ended.
                let successes = line.counters[SUCCESS_EVENTS].load(Ordering::Acquire);
                let word = line.run.load(Ordering::Acquire);
                RunView {
                    successes,
                    run: if (word >> 64) as u64 == generation {
                        word as u64
                    } else {
                        0
                    },
                    // Kept for all of the stripe's threads: not ordered against other stripes.
                    run_start: crate::consecutive::UNKNOWN_START,
                    last_failure: 0,
                    last_success_at: crate::consecutive::UNKNOWN_START,
                    run_start_at: crate::consecutive::UNKNOWN_START,
                    last_failure_at: 0,
                }
            }
        }
    }

    /// A Closed Failure of `generation` on shared stripe `stripe`: the stripe's run grows by one
    /// (starting again in a newer generation). Returns the run.
    pub(crate) fn lengthen_shared_run(&self, stripe: usize, generation: u64) -> u64 {
        let cell = &self.totals[stripe].run;
        // Relaxed: the CAS below re-checks it.
        let mut word = cell.load(Ordering::Relaxed);
        loop {
            let current = (word >> 64) as u64;
            let run = match current {
                g if g == generation => (word as u64).saturating_add(1),
                g if g < generation => 1,
                _ => return 0, // the stripe is in a later generation: this Failure is late
            };
            let new = (u128::from(generation) << 64) | u128::from(run);
            // Relaxed: nothing is published through the run but itself.
            match cell.compare_exchange_weak(word, new, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return run,
                Err(fresh) => word = fresh,
            }
        }
    }

    /// A Success recorded on shared stripe `stripe`: ends the stripe's run, then counts (see
    /// [`SUCCESS_EVENTS`]).
    #[inline]
    pub(super) fn shared_success(&self, stripe: usize) {
        let line = &self.totals[stripe];
        // Relaxed: a look, then a CAS that re-checks (published by the Release below).
        let word = line.run.load(Ordering::Relaxed);
        if word as u64 != 0 {
            self.end_shared_run(stripe, word);
        }
        // Release: publishes the ended run (see `run_view`). A shared write, but on the
        // stripe's own totals line, which only this stripe's threads write: one more per
        // Success of a thread without an owned stripe.
        line.counters[SUCCESS_EVENTS].fetch_add(1, Ordering::Release);
    }

    #[cold]
    fn end_shared_run(&self, stripe: usize, mut word: u128) {
        let cell = &self.totals[stripe].run;
        while word as u64 != 0 {
            let ended = word & !u128::from(u64::MAX);
            // Relaxed: see `shared_success`.
            match cell.compare_exchange_weak(word, ended, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return,
                Err(fresh) => word = fresh,
            }
        }
    }

    /// Adds one Success/Failure outcome of the current generation straight to the lifetime
    /// totals (count windows, Disabled): a Success ends the stripe's failure run.
    pub(crate) fn add_sample(&self, writer: CallerStripe, sample: Sample) {
        let stripe = match writer {
            CallerStripe::Owned(i) => return self.owned.add_outside(i, kinds(sample)),
            CallerStripe::Shared(s) => s,
        };
        if !sample.failure {
            self.shared_success(stripe);
        }
        self.add_folded(stripe, sample);
    }

    /// Adds a late outcome (a permit of an older generation) or a probe's to the lifetime totals
    /// only, on the calling thread's shared stripe's totals line (a shared write, on a rare
    /// path): not among the Successes the consecutive-failure check reads (`run_view`), since a
    /// late Success must neither end a run nor be taken for a Success counted in the middle of
    /// one (rule 2: late outcomes change no state).
    pub(crate) fn add_late(&self, sample: Sample) {
        self.add_folded(thread_slot::stripe() & self.mask(), sample);
    }

    fn add_folded(&self, stripe: usize, sample: Sample) {
        let total = if sample.failure {
            Total::Failures
        } else {
            Total::Successes
        };
        self.add(stripe, total, 1);
        self.add(stripe, Total::Slow, u64::from(sample.slow));
    }

    /// A lifetime total: the folded counter of every stripe plus, for successes, failures and
    /// slow calls, what the live bucket words still hold. Never counts an outcome twice; may miss
    /// one whose rotation is in flight (`window/mod.rs`, "Orderings").
    pub(crate) fn total(&self, total: Total) -> u64 {
        let mut sum = match total {
            Total::Successes => self.owned.total(owned::SUCCESSES),
            Total::Failures => self.owned.total(owned::FAILURES),
            Total::Slow => self.owned.total(owned::SLOW),
            Total::Ignored => self.owned.ignored(),
            Total::Rejected => self.owned.rejected(),
            Total::Throttled => 0,
        };
        for stripe in 0..self.shared() {
            // Acquire: read the folds before the live words (`window/mod.rs`, "Orderings").
            sum = sum
                .wrapping_add(self.totals[stripe].counters[total as usize].load(Ordering::Acquire));
        }
        let kind = match total {
            Total::Successes => BucketKind::Success,
            Total::Failures => BucketKind::Failure,
            Total::Slow => BucketKind::Slow,
            Total::Ignored | Total::Rejected | Total::Throttled => return sum,
        };
        for stripe in 0..self.shared() {
            for slot in 0..self.ring() {
                // Relaxed: ordered after the folds by their Acquire loads.
                if let Some(word) = self.word(stripe, kind, slot) {
                    sum = sum.wrapping_add(bucket::count(word.load(Ordering::Relaxed)));
                }
            }
        }
        sum
    }
}

#[cfg(test)]
mod layout {
    /// The breaker places the stripes right after its hot words and counts on the owned
    /// stripes' handle, and the home line in it, being where `breaker/mod.rs` says.
    #[test]
    fn the_owned_stripes_come_first() {
        assert_eq!(std::mem::offset_of!(super::Stripes, owned), 0);
    }
}
