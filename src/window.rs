//! The sliding window and the lifetime totals, striped so that threads do not share cache lines.
//!
//! # Layout
//! Counters live in [`Stripes`]: the owned stripes of `owned.rs`, each written by one thread at a
//! time with plain stores, and the shared stripes below, written with atomic read-modify-writes
//! by threads that hold no owned stripe (see `thread_slot.rs`). A breaker has as many owned
//! stripes as its `stripes` setting and one shared one per 16 of them (at least one). Readers
//! add both up.
//!
//! Each shared stripe has a 128-byte block of lifetime counters
//! ([`Total`]: what rotations folded out of the buckets, plus Ignored, Rejected and Throttled), and, for a
//! time window, three rings of [`bucket`](crate::bucket) words (Successes, Failures, slow calls),
//! padded to whole 128-byte lines. A thread writes only the shared stripe
//! `thread_stripe() & mask`, so two threads on different stripes never write the same line.
//!
//! Calls the throttle turns away (see `throttle.rs`) have one more ring of bucket words, with the
//! same tags, not striped: only throttled calls write it, and they are rejections, off the
//! success path. The window's requests are its calls plus this ring's count; the lifetime total
//! of throttled calls is a [`Total`] of the shared stripes (written there by every thread, owned
//! stripe or not).
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

use std::sync::OnceLock;

use crossbeam_utils::CachePadded;

use crate::bucket::{self, Decision};
use crate::fastdiv::FastDiv;
use crate::owned::{self, Owned, RunView};
use crate::rules::WindowSpec;
use crate::sync::{AtomicU64, AtomicU128, Ordering, thread_stripe};
use crate::thread_slot;

/// Bucket words per 128-byte line.
const LINE: usize = 8;

/// What one recorded outcome adds to the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sample {
    pub(crate) failure: bool,
    pub(crate) slow: bool,
}

/// The three counters a bucket keeps, in ring order within a stripe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Success = 0,
    Failure = 1,
    Slow = 2,
}

/// Lifetime counters kept per stripe, in this order in the stripe's block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Total {
    /// Successes folded out of the buckets (or recorded without a window).
    Successes = 0,
    Failures = 1,
    Slow = 2,
    Ignored = 3,
    Rejected = 4,
    /// Calls the throttle turned away: counted on the shared stripes only, whatever the
    /// thread (they are off the success path).
    Throttled = 5,
}

/// Where a shared stripe's totals line counts every Success recorded on the stripe, in any
/// bucket or none: a count that only grows, for the consecutive-failure check
/// (`consecutive.rs`), which must see any Success as a change (the folded totals plus the live
/// words can briefly read the same across a rotation). 64 bits: 584 years at 10^9 Successes per
/// second.
const SUCCESS_EVENTS: usize = 6;

/// Where a shared stripe's totals line keeps the newest tag its rings were rotated to (after the
/// [`Total`]s): a report skips the rings when no shared stripe rotated into its window.
const NEWEST: usize = 7;

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
}

/// How many shared stripes a breaker with `owned` owned stripes has: one per 16 owned ones, at
/// least one. They are what threads beyond the owned stripes (or whose block is not there yet)
/// count on, and each costs its lines from the build (a line of totals and the rings: 640
/// bytes with 10 buckets), called or not: so few that an idle breaker stays small, at the price
/// of more threads per shared line when more threads than owned stripes call at once.
pub(crate) fn shared_stripes(owned: usize) -> usize {
    (owned / 16).max(1)
}

/// Which stripe the calling thread writes, and how.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Writer {
    /// An owned stripe: plain stores (`owned.rs`).
    Owned(usize),
    /// A shared stripe: atomic read-modify-writes.
    Shared(usize),
}

/// The running counts of `owned.rs` a sample adds one to.
fn kinds(sample: Sample) -> &'static [usize] {
    match (sample.failure, sample.slow) {
        (false, false) => &[owned::SUCCESSES],
        (true, false) => &[owned::FAILURES],
        (false, true) => &[owned::SUCCESSES, owned::SLOW],
        (true, true) => &[owned::FAILURES, owned::SLOW],
    }
}

impl Kind {
    fn total(self) -> Total {
        match self {
            Kind::Success => Total::Successes,
            Kind::Failure => Total::Failures,
            Kind::Slow => Total::Slow,
        }
    }
}

/// The counts of the window the trip rules look at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WindowStats {
    /// Successes and Failures in the window (Ignored outcomes are not calls).
    pub calls: u64,
    /// Failures in the window.
    pub failures: u64,
    /// Slow calls in the window (successes or failures that took longer than the slow-call
    /// duration).
    pub slow: u64,
    /// Calls the [throttle](crate::Throttle) turned away in the window. Not in `calls`: they
    /// never ran, and the trip rules do not see them (0 with a count window, which the throttle
    /// does not run on).
    pub throttled: u64,
    /// With a throttle: calls admitted while Closed that ended [`Ignored`](crate::Outcome::Ignored)
    /// or whose permit was dropped without an outcome. Not in `calls` (the trip rules do not see
    /// them); the throttle counts them among its requests and its accepts, since the dependency
    /// did not refuse them. 0 without a throttle.
    pub answered: u64,
}

impl WindowStats {
    /// Successes in the window.
    pub fn successes(&self) -> u64 {
        self.calls - self.failures
    }

    /// Every call attempted in the window: `calls + throttled + answered` (what the throttle
    /// calls its requests).
    pub fn requests(&self) -> u64 {
        self.calls
            .saturating_add(self.throttled)
            .saturating_add(self.answered)
    }

    /// The calls the dependency did not refuse: `successes + answered` (what the throttle calls
    /// its accepts).
    pub fn accepts(&self) -> u64 {
        self.successes().saturating_add(self.answered)
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
    lines: Box<[CachePadded<[AtomicU128; LINE]>]>,
    /// Calls the throttle turned away: one ring of bucket words, not striped. Their lifetime
    /// total is [`Total::Throttled`] of the shared stripes.
    ///
    /// After it, in the same allocation, the *answered* ring: calls admitted while Closed that
    /// ended Ignored or whose permit was dropped, counted only with a throttle (see
    /// `throttle.rs`: the backend did not refuse them, so they are accepts); not striped either
    /// (one compare-and-swap per such outcome).
    ///
    /// Allocated only once a throttle is configured (at build or by a reconfiguration, off every
    /// call's path, see [`Stripes::prepare_throttle`]), and only for a time window: only a
    /// throttle writes them, so a breaker without one does not carry them.
    rings: OnceLock<Box<[AtomicU128]>>,
    /// Slots in each ring: the window's buckets (at most `rules::MAX_BUCKETS`), in 32 bits as a
    /// breaker's inline size is budgeted. The shared stripes' count is `totals.len()`.
    ring: u32,
}

impl std::fmt::Debug for Stripes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stripes")
            .field("owned", &self.owned)
            .field("shared", &self.shared())
            .field("ring", &self.ring)
            .finish_non_exhaustive()
    }
}

impl Stripes {
    /// `stripes` owned stripes (a power of two) and [`shared_stripes`] shared ones, for a time window of `buckets` buckets (0 without a time window); `offset` is the
    /// breaker's start on its clock's own scale (see `owned.rs`). A shared stripe's rings have
    /// `buckets` slots; an owned stripe keeps `buckets + 1` marks.
    pub(crate) fn new(stripes: usize, buckets: u32, offset: u64) -> Stripes {
        debug_assert!(stripes.is_power_of_two());
        let (ring, marks) = match buckets {
            0 => (0, 0),
            b => (TimeRing::ring(b), b + 1),
        };
        let owned = Owned::new(stripes, marks, offset);
        let stripes = shared_stripes(stripes);
        let lines_per_stripe = (3 * ring).div_ceil(LINE);
        Stripes {
            owned,
            totals: (0..stripes)
                .map(|_| {
                    CachePadded::new(SharedTotals {
                        counters: std::array::from_fn(|_| AtomicU64::new(0)),
                        run: AtomicU128::new(0),
                    })
                })
                .collect(),
            lines: (0..stripes * lines_per_stripe)
                .map(|_| CachePadded::new(std::array::from_fn(|_| AtomicU128::new(0))))
                .collect(),
            rings: OnceLock::new(),
            ring: ring as u32,
        }
    }

    /// Allocates the throttled and answered rings if this is a time window and they are not
    /// there yet: called when a throttle is configured, before the rules that hold it are
    /// published. Allocates: never on a call's path.
    pub(crate) fn prepare_throttle(&self) {
        if self.ring > 0 {
            self.rings
                .get_or_init(|| (0..2 * self.ring()).map(|_| AtomicU128::new(0)).collect());
        }
    }

    /// The throttled ring (see `rings`): `None` until a throttle was configured.
    fn throttled(&self) -> Option<&[AtomicU128]> {
        self.rings.get().map(|rings| &rings[..self.ring()])
    }

    /// The answered ring (see `rings`): `None` until a throttle was configured.
    fn answered(&self) -> Option<&[AtomicU128]> {
        self.rings.get().map(|rings| &rings[self.ring()..])
    }

    /// The `stripes` setting: how many owned stripes.
    pub(crate) fn count(&self) -> usize {
        self.owned.count()
    }

    fn shared(&self) -> usize {
        self.totals.len()
    }

    /// Slots in each ring.
    fn ring(&self) -> usize {
        self.ring as usize
    }

    /// Which shared stripes a thread stripe maps to (their count is a power of two).
    fn mask(&self) -> usize {
        self.shared() - 1
    }

    /// Bucket words per stripe: its three rings, rounded up to whole lines.
    fn cells_per_stripe(&self) -> usize {
        (3 * self.ring()).next_multiple_of(LINE)
    }

    pub(crate) fn owned(&self) -> &Owned {
        &self.owned
    }

    /// The owned stripes, before the breaker is shared.
    pub(crate) fn owned_mut(&mut self) -> &mut Owned {
        &mut self.owned
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.owned.heap_bytes()
            + std::mem::size_of_val(&*self.totals)
            + std::mem::size_of_val(&*self.lines)
            + self
                .rings
                .get()
                .map_or(0, |rings| std::mem::size_of_val(&**rings))
    }

    /// The stripe the calling thread writes: its owned stripe if it holds one of this breaker's,
    /// else a shared one.
    #[inline(always)]
    pub(crate) fn mine(&self) -> Writer {
        let slot = thread_slot::current();
        if self.owned.head(slot).is_some() {
            Writer::Owned(slot as usize)
        } else {
            self.mine_otherwise()
        }
    }

    /// A thread without one of this breaker's owned stripes, without its block yet, or without
    /// a slot yet: claims what it can (never allocating, see `owned.rs`).
    #[inline(never)]
    fn mine_otherwise(&self) -> Writer {
        let slot = thread_slot::claimed() as usize;
        if self.owned.claim(slot) {
            Writer::Owned(slot)
        } else {
            Writer::Shared(thread_stripe() & self.mask())
        }
    }

    #[inline]
    fn cell(&self, stripe: usize, kind: Kind, slot: usize) -> &AtomicU128 {
        let index = stripe * self.cells_per_stripe() + kind as usize * self.ring() + slot;
        &self.lines[index / LINE][index % LINE]
    }

    /// Counts a rejection of the calling thread: on its owned stripe's line when it has one (a
    /// plain increment, the common case), else as [`add_one`](Stripes::add_one) does.
    #[inline(always)]
    pub(crate) fn add_rejected(&self) {
        match self.owned.head(thread_slot::current()) {
            Some(head) => head.add_rejected(),
            None => {
                self.add_one(self.mine(), Total::Rejected);
            }
        }
    }

    /// Adds one to a lifetime total (not to any bucket). Returns, for Rejected, how many this
    /// stripe has counted so far.
    #[inline]
    pub(crate) fn add_one(&self, writer: Writer, total: Total) -> u64 {
        match writer {
            Writer::Owned(i) => match total {
                Total::Throttled => {
                    self.add_one(Writer::Shared(thread_stripe() & self.mask()), total)
                }
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
            Writer::Shared(s) => {
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
    fn add(&self, stripe: usize, total: Total, n: u64) {
        if n != 0 {
            // Release: a fold must be seen after the rotation that produced it (module docs);
            // for Ignored, Rejected and Throttled it orders nothing and costs nothing extra on x86.
            self.totals[stripe].counters[total as usize].fetch_add(n, Ordering::Release);
        }
    }

    /// Notes, before the swap, that a word of shared stripe `stripe` (or of the throttled ring)
    /// is being rotated to `tag`: for the breaker (`Owned::started`) and for the stripe.
    fn rotating(&self, stripe: usize, tag: u64) {
        self.owned.started(tag);
        // Relaxed: as `Owned::started`, whose argument this word follows.
        self.totals[stripe].counters[NEWEST].fetch_max(tag.saturating_add(1), Ordering::Relaxed);
    }

    /// Whether a word of a shared stripe's rings or of the throttled ring may hold a tag of `lo`
    /// or later: as `Owned::started_since`, for the shared words alone.
    fn shared_started_since(&self, lo: u64) -> bool {
        // Relaxed: see `rotating`.
        lo == 0
            || self
                .totals
                .iter()
                .any(|t| t.counters[NEWEST].load(Ordering::Relaxed) > lo)
    }

    /// Owned and shared stripes together, as the consecutive-failure check numbers them.
    pub(crate) fn writers(&self) -> usize {
        self.owned.count() + self.shared()
    }

    /// Stripe `i` of [`writers`](Self::writers) as the consecutive-failure check reads it in
    /// `generation`: an owned stripe's Successes and local run (`owned.rs`), a shared stripe's
    /// Success events and no run (its threads keep none).
    pub(crate) fn run_view(&self, i: usize, generation: u64) -> RunView {
        match i.checked_sub(self.owned.count()) {
            None => self.owned.run_view(i, generation),
            Some(s) => {
                let line = &self.totals[s];
                // Acquire, then the run: as an owned stripe's (`owned.rs`, "Local run and
                // Successes"), so a Success seen comes with the run it ended.
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
    fn shared_success(&self, stripe: usize) {
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
    pub(crate) fn add_sample(&self, writer: Writer, sample: Sample) {
        let stripe = match writer {
            Writer::Owned(i) => return self.owned.add_outside(i, kinds(sample)),
            Writer::Shared(s) => s,
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
        self.add_folded(thread_stripe() & self.mask(), sample);
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
    /// one whose rotation is in flight (module docs).
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
            // Acquire: read the folds before the live words (module docs).
            sum = sum
                .wrapping_add(self.totals[stripe].counters[total as usize].load(Ordering::Acquire));
        }
        let kind = match total {
            Total::Successes => Kind::Success,
            Total::Failures => Kind::Failure,
            Total::Slow => Kind::Slow,
            Total::Ignored | Total::Rejected | Total::Throttled => return sum,
        };
        for stripe in 0..self.shared() {
            for slot in 0..self.ring() {
                // Relaxed: ordered after the folds by their Acquire loads.
                let word = self.cell(stripe, kind, slot).load(Ordering::Relaxed);
                sum = sum.wrapping_add(bucket::count(word));
            }
        }
        sum
    }
}

/// A window of the last `buckets × width` of time.
///
/// Interval `e` (the `e`-th interval of `width` since the breaker's start) of generation `g` is
/// counted under the [tag](crate::bucket) `g · 2B + e`, in ring slot `tag mod ring` of the
/// recording thread's stripe, where `ring` is `B`: the window is the last `B` intervals of the
/// current generation, and those fall in `B` distinct slots (`tag mod B = e mod B`, as the
/// stride `2B` is a multiple of `B`). A write for an interval older than the one its slot holds
/// counts in the lifetime totals only.
#[derive(Debug)]
pub(crate) struct TimeRing {
    width: FastDiv,
    width_ns: u64,
    buckets: u64,
    stride: u64,
    /// Division by the ring's length, `B` (exact; a multiply and a shift, see `fastdiv.rs`).
    ring: FastDiv,
}

impl TimeRing {
    pub(crate) fn new(width_ns: u64, buckets: u32) -> TimeRing {
        TimeRing {
            width: FastDiv::new(width_ns),
            width_ns,
            buckets: u64::from(buckets),
            stride: 2 * u64::from(buckets),
            ring: FastDiv::new(u64::from(buckets)),
        }
    }

    /// Slots in each stripe's ring.
    pub(crate) fn ring(buckets: u32) -> usize {
        buckets as usize
    }

    /// The interval number `now_ns` falls in. Intervals are aligned to the breaker's start; an
    /// instant exactly on a boundary belongs to the interval it starts.
    #[inline]
    fn epoch(&self, now_ns: u64) -> u64 {
        self.width.div(now_ns)
    }

    #[inline]
    fn tag(&self, generation: u64, now_ns: u64) -> u64 {
        bucket::tag(self.stride, generation, self.epoch(now_ns))
    }

    #[inline]
    fn slot(&self, tag: u64) -> usize {
        self.ring.div_rem(tag).1 as usize
    }

    /// Records one sample of a permit of `generation` at time `now_ns`, read on the real clock,
    /// into `writer`'s stripe. `trust_recent`: whether quanta's recent time is within the
    /// tolerance of `now_ns` (it opens or closes an owned stripe's fast path, see `owned.rs`).
    pub(crate) fn record_as(
        &self,
        stripes: &Stripes,
        writer: Writer,
        generation: u64,
        now_ns: u64,
        sample: Sample,
        trust_recent: bool,
    ) {
        let epoch = self.epoch(now_ns);
        let tag = bucket::tag(self.stride, generation, epoch);
        let stripe = match writer {
            Writer::Owned(i) => {
                let end = epoch.saturating_add(1).saturating_mul(self.width_ns);
                let kinds = kinds(sample);
                if !stripes
                    .owned
                    .record(i, generation, (tag, end), kinds, trust_recent)
                {
                    stripes.add_late(sample);
                }
                return;
            }
            Writer::Shared(s) => s,
        };
        let kind = if sample.failure {
            Kind::Failure
        } else {
            stripes.shared_success(stripe);
            Kind::Success
        };
        self.add(stripes, stripe, kind, tag);
        if sample.slow {
            self.add(stripes, stripe, Kind::Slow, tag);
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
        let cell = stripes.cell(stripe, Kind::Success, self.slot(tag));
        // Relaxed: the CAS re-checks the value (module docs).
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

    /// Adds one to the `kind` word of the bucket tagged `tag`: add, rotate, or (the bucket holds a
    /// newer tag) count in the lifetime totals only.
    #[cold]
    fn add(&self, stripes: &Stripes, stripe: usize, kind: Kind, tag: u64) {
        let cell = stripes.cell(stripe, kind, self.slot(tag));
        // Relaxed: the CAS below re-checks the value (module docs).
        let mut word = cell.load(Ordering::Relaxed);
        loop {
            let (new, folded) = match bucket::decide(word, tag) {
                Decision::Add(new) => (new, 0),
                Decision::Rotate(new, replaced) => {
                    // Before the swap, so the counts in the new bucket come after it.
                    stripes.rotating(stripe, tag);
                    (new, replaced)
                }
                Decision::Newer => {
                    stripes.add(stripe, kind.total(), 1);
                    return;
                }
            };
            // AcqRel on success: a rotation releases its bucket's start, an add acquires it
            // (module docs, "Orderings"). Relaxed on failure: the loop decides again on the
            // fresh word. The winner alone folds the count its swap replaced.
            match cell.compare_exchange_weak(word, new, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => {
                    stripes.add(stripe, kind.total(), folded);
                    return;
                }
                Err(fresh) => word = fresh,
            }
        }
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
        let stripe = thread_stripe() & stripes.mask();
        stripes.add_one(Writer::Shared(stripe), Total::Throttled);
        if let Some(ring) = stripes.throttled() {
            self.add_to_ring(stripes, ring, stripe, generation, now_ns);
        }
    }

    /// Counts one Closed call of `generation` that ended Ignored or whose permit was dropped, at
    /// `now_ns` (real clock), in the answered ring (a throttle's accepts; see `throttle.rs`).
    pub(crate) fn add_answered(&self, stripes: &Stripes, generation: u64, now_ns: u64) {
        if let Some(ring) = stripes.answered() {
            let stripe = thread_stripe() & stripes.mask();
            self.add_to_ring(stripes, ring, stripe, generation, now_ns);
        }
    }

    /// Adds one to the bucket of `ring` (the throttled or the answered ring) for `generation`
    /// at `now_ns`: add, rotate, or nothing if the bucket already holds a newer tag.
    fn add_to_ring(
        &self,
        stripes: &Stripes,
        ring: &[AtomicU128],
        stripe: usize,
        generation: u64,
        now_ns: u64,
    ) {
        let tag = self.tag(generation, now_ns);
        let cell = &ring[self.slot(tag)];
        // Relaxed: the CAS below re-checks the value; a bucket word is self-contained (module
        // docs).
        let mut word = cell.load(Ordering::Relaxed);
        loop {
            let new = match bucket::decide(word, tag) {
                Decision::Add(new) => new,
                Decision::Rotate(new, _) => {
                    // Before the swap, as in `add`.
                    stripes.rotating(stripe, tag);
                    new
                }
                Decision::Newer => return,
            };
            // AcqRel on success, Relaxed on failure: as in `add`. A rotation's replaced count
            // needs no fold: the lifetime total was counted apart.
            match cell.compare_exchange_weak(word, new, Ordering::AcqRel, Ordering::Relaxed) {
                Ok(_) => return,
                Err(fresh) => word = fresh,
            }
        }
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
        if reader == Reader::Report && !stripes.owned.started_since(lo) {
            // No bucket of the window has been started (see `Owned::started`).
            return stats;
        }
        for stripe in 0..stripes.owned.count() {
            if reader == Reader::Report && !stripes.owned.rolled_since(stripe, lo) {
                continue;
            }
            let owned::Counts(c) = stripes.owned.window(stripe, lo, hi);
            successes = successes.saturating_add(c[owned::SUCCESSES]);
            stats.failures = stats.failures.saturating_add(c[owned::FAILURES]);
            stats.slow = stats.slow.saturating_add(c[owned::SLOW]);
        }
        // A report skips the rings when no shared word was rotated into the window.
        if reader == Reader::Decision || stripes.shared_started_since(lo) {
            for epoch in first..=current {
                let tag = bucket::tag(self.stride, generation, epoch);
                let slot = self.slot(tag);
                for stripe in 0..stripes.shared() {
                    let read = |kind| {
                        // Relaxed: a statistic (module docs).
                        let word = stripes.cell(stripe, kind, slot).load(Ordering::Relaxed);
                        if bucket::tag_of(word) == tag {
                            bucket::count(word)
                        } else {
                            0
                        }
                    };
                    successes = successes.saturating_add(read(Kind::Success));
                    stats.failures = stats.failures.saturating_add(read(Kind::Failure));
                    stats.slow = stats.slow.saturating_add(read(Kind::Slow));
                }
            }
            if let (Some(throttled), Some(answered)) = (stripes.throttled(), stripes.answered()) {
                for epoch in first..=current {
                    let tag = bucket::tag(self.stride, generation, epoch);
                    let read = |ring: &[AtomicU128]| {
                        // Relaxed: a statistic (module docs).
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

/// Who reads a time window: a decision (trip rules, throttle) or a report (metrics, health).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Reader {
    Decision,
    Report,
}

/// A window of the last `size` outcomes.
///
/// A shared cursor hands each outcome a position; the outcome is stored, tagged with its
/// permit's generation, in slot `position % size`. Reading sums the slots tagged with the
/// current generation, so closing the breaker again empties the window without touching it.
/// Costlier than the time window: a shared compare-and-swap per outcome, and reading is O(size).
///
/// The cursor (`u128`) holds the newest generation that took a position (bits 64..128) and the
/// next position (bits 0..64, 584 years at 10^9 outcomes per second). A permit of an older
/// generation than the cursor's gets no position, so a late outcome can never take a place among
/// the last `size` of a newer generation; one that takes its position first sits before them.
///
/// Slot layout (`u64`): bits 0..3 code (1 = call, 2 = failure, 4 = slow; 0 = empty), bits 3..64
/// the generation (61 bits: at 10^7 transitions per second, 7 300 years before it wraps). A slot
/// is written by a compare-and-swap that refuses to replace a newer generation's outcome, so a
/// late permit can never overwrite what the current generation stored.
#[derive(Debug)]
pub(crate) struct CountWindow {
    cursor: CachePadded<AtomicU128>,
    slots: Box<[AtomicU64]>,
    size: FastDiv,
}

const SLOT_GENERATION_SHIFT: u32 = 3;
const SLOT_GENERATION_MASK: u64 = u64::MAX >> SLOT_GENERATION_SHIFT;

fn slot_word(generation: u64, sample: Sample) -> u64 {
    let code = 1 | (u64::from(sample.failure) << 1) | (u64::from(sample.slow) << 2);
    ((generation & SLOT_GENERATION_MASK) << SLOT_GENERATION_SHIFT) | code
}

fn slot_generation(word: u64) -> u64 {
    word >> SLOT_GENERATION_SHIFT
}

impl CountWindow {
    pub(crate) fn new(size: u32) -> CountWindow {
        CountWindow {
            cursor: CachePadded::new(AtomicU128::new(0)),
            slots: (0..size).map(|_| AtomicU64::new(0)).collect(),
            size: FastDiv::new(u64::from(size)),
        }
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.slots)
    }

    /// Stores one outcome of `generation`. False if the slot it was given already holds a newer
    /// generation's outcome: the permit is late and the outcome belongs to the lifetime totals
    /// only.
    pub(crate) fn record(&self, generation: u64, sample: Sample) -> bool {
        // Relaxed: the cursor only hands out positions; the slot CAS carries the data.
        let mut cursor = self.cursor.load(Ordering::Relaxed);
        let position = loop {
            if (cursor >> 64) as u64 > generation {
                return false;
            }
            let position = cursor as u64;
            let next = (u128::from(generation) << 64) | u128::from(position.wrapping_add(1));
            // Relaxed both ways: a position orders nothing; the generation check is in the value
            // the CAS compares, not in any other memory.
            match self.cursor.compare_exchange_weak(
                cursor,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break position,
                Err(fresh) => cursor = fresh,
            }
        };
        let (_, slot) = self.size.div_rem(position);
        let cell = &self.slots[slot as usize];
        let new = slot_word(generation, sample);
        let mine = generation & SLOT_GENERATION_MASK;
        // Relaxed: the CAS re-checks the value; a slot is self-contained (like a bucket word).
        let mut word = cell.load(Ordering::Relaxed);
        loop {
            if word != 0 && slot_generation(word) > mine {
                return false;
            }
            match cell.compare_exchange_weak(word, new, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(fresh) => word = fresh,
            }
        }
    }

    pub(crate) fn stats(&self, generation: u64) -> WindowStats {
        let tag = generation & SLOT_GENERATION_MASK;
        let mut stats = WindowStats::default();
        for slot in self.slots.iter() {
            // Relaxed: a statistic (module docs).
            let word = slot.load(Ordering::Relaxed);
            if word != 0 && slot_generation(word) == tag {
                stats.calls += 1;
                stats.failures += u64::from(word & 2 != 0);
                stats.slow += u64::from(word & 4 != 0);
            }
        }
        stats
    }
}

/// Either kind of window.
#[derive(Debug)]
pub(crate) enum Window {
    Time(TimeRing),
    // Boxed: its padded cursor would make every time-window breaker 200 bytes bigger.
    Count(Box<CountWindow>),
}

impl Window {
    /// The shape it was built for.
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
            Window::Count(c) => Some(c.slots.len() as u64),
        }
    }

    pub(crate) fn spec(&self) -> WindowSpec {
        match self {
            Window::Time(w) => WindowSpec::Time {
                width_ns: w.width_ns,
                buckets: w.buckets as u32,
            },
            Window::Count(c) => WindowSpec::Count {
                size: c.slots.len() as u32,
            },
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

    #[test]
    fn every_cell_is_in_bounds_distinct_and_inside_its_stripe() {
        for buckets in [1u32, 2, 3, 4, 5, 256] {
            for stripes in [1usize, 2, 4, 8, 16, 32, 64] {
                let st = Stripes::new(stripes, buckets, 0);
                let ring = st.ring();
                let base = st.lines.as_ptr() as usize;
                let line = std::mem::size_of::<CachePadded<[AtomicU128; LINE]>>();
                let mut seen = std::collections::HashSet::new();
                for stripe in 0..st.shared() {
                    for kind in [Kind::Success, Kind::Failure, Kind::Slow] {
                        for slot in 0..ring {
                            let c = st.cell(stripe, kind, slot) as *const AtomicU128 as usize;
                            let line_no = (c - base) / line;
                            assert!(line_no < st.lines.len());
                            assert_eq!(line_no / (st.cells_per_stripe() / LINE), stripe);
                            assert!(seen.insert(c), "aliased cell {stripe} {kind:?} {slot}");
                        }
                    }
                }
            }
        }
    }

    fn window(width_ns: u64, buckets: u32, stripes: usize) -> (TimeRing, Stripes) {
        let s = Stripes::new(stripes, buckets, 0);
        s.owned.claim_all();
        s.prepare_throttle();
        (TimeRing::new(width_ns, buckets), s)
    }

    #[test]
    fn default_window_takes_seven_lines_per_calling_thread() {
        let s = Stripes::new(8, 10, 0);
        // Shared (one for 8 owned): a line of totals and 3 rings of 10 words of 16 bytes, in 4
        // lines. Owned: a cell per stripe, 16 bytes, until its thread calls.
        let idle = 8 * 16 + (128 + 4 * 128);
        assert_eq!(s.heap_bytes(), idle);
        // The throttled and answered rings, 10 words each, once a throttle is configured.
        s.prepare_throttle();
        s.prepare_throttle();
        let idle = idle + 2 * 10 * 16;
        assert_eq!(s.heap_bytes(), idle);
        // A taken block: the head's line (and the marks' pointer, padded to a second line), and
        // 11 marks of 40 bytes, three to a line.
        assert!(s.owned.claim(0), "a build leaves blocks in the reserve");
        assert_eq!(s.heap_bytes(), idle + 256 + 4 * 128);
        s.owned.claim_all();
        assert_eq!(s.heap_bytes(), idle + 8 * (256 + 4 * 128));
    }

    /// A small deterministic generator: `next(n)` is in `0..n`.
    fn xorshift(mut seed: u64) -> impl FnMut(u64) -> u64 {
        move |n| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        }
    }

    /// Moves time on (mostly within a bucket, sometimes by whole seconds) or starts a new
    /// generation.
    fn step(next: &mut impl FnMut(u64) -> u64, generation: &mut u64, now: &mut u64) {
        match next(10) {
            0 => *generation += 1 + next(3),
            1 => *now += next(40) * 1_000 * MS,
            _ => *now += next(700) * MS,
        }
    }

    /// One random write under `generation` at `now`: a throttled call, or an outcome on a random
    /// owned or shared stripe.
    fn random_write(
        w: &TimeRing,
        s: &Stripes,
        next: &mut impl FnMut(u64) -> u64,
        generation: u64,
        now: u64,
    ) {
        let writer = match next(3) {
            0 => Writer::Shared(next(s.shared() as u64) as usize),
            _ => Writer::Owned(next(s.owned.count() as u64) as usize),
        };
        if next(8) == 0 {
            w.add_throttled(s, generation, now);
        } else {
            let sample = Sample {
                failure: next(2) == 0,
                slow: next(4) == 0,
            };
            w.record_as(s, writer, generation, now, sample, true);
        }
    }

    /// A report (which skips what no started bucket can hold) reads what a decision reads, once
    /// the writers are quiescent: random outcomes on owned and shared stripes, throttled calls,
    /// new generations and idle gaps, checked after every step at several later times.
    #[test]
    fn a_report_reads_what_a_decision_reads() {
        let mut next = xorshift(0x9E37_79B9_7F4A_7C15u64);
        for case in 0..200 {
            let buckets = [1u32, 2, 3, 10][case % 4];
            let (w, s) = window(1_000 * MS, buckets, 4);
            let (mut generation, mut now) = (0u64, 0u64);
            for _ in 0..60 {
                step(&mut next, &mut generation, &mut now);
                random_write(&w, &s, &mut next, generation, now);
                for later in [0, 400 * MS, 3_000 * MS, 20_000 * MS] {
                    for g in [generation, generation + 1] {
                        assert_eq!(
                            w.report(&s, g, now + later),
                            w.stats(&s, g, now + later),
                            "case {case}, generation {g}, at {} ms",
                            (now + later) / MS
                        );
                    }
                }
            }
        }
    }

    /// Late in a breaker's life: 2^32 generations and a month in, then a month idle (no write,
    /// the clock stopped at one instant for the reports in between), a report still reads what
    /// a decision reads, and the idle window is empty.
    #[test]
    fn a_report_reads_what_a_decision_reads_late_in_life_and_after_a_month_idle() {
        const MONTH: u64 = 30 * 24 * 3_600 * 1_000 * MS;
        let mut next = xorshift(0xD1B5_4A32_D192_ED03);
        for case in 0..40 {
            let (w, s) = window(1_000 * MS, [1u32, 10, 256][case % 3], 4);
            let (mut generation, mut now) = (1u64 << 32, MONTH);
            for _ in 0..40 {
                step(&mut next, &mut generation, &mut now);
                random_write(&w, &s, &mut next, generation, now);
                for _ in 0..3 {
                    assert_eq!(w.report(&s, generation, now), w.stats(&s, generation, now));
                }
            }
            let later = now + MONTH;
            assert_eq!(
                w.report(&s, generation, later),
                w.stats(&s, generation, later)
            );
            assert_eq!(w.report(&s, generation, later).calls, 0, "case {case}");
            random_write(&w, &s, &mut next, generation, later);
            assert_eq!(
                w.report(&s, generation, later),
                w.stats(&s, generation, later)
            );
        }
    }

    /// As `a_report_reads_what_a_decision_reads`, with late permits (older generations, earlier
    /// instants of the current one), one or 64 stripes, and reports of older generations and of
    /// instants before the last write.
    #[test]
    fn a_report_reads_what_a_decision_reads_with_late_permits() {
        let mut next = xorshift(0x2545_F491_4F6C_DD1Du64);
        for case in 0..90 {
            let buckets = [1u32, 2, 3, 10, 256][case % 5];
            let stripes = [1usize, 4, 64][case % 3];
            let (w, s) = window(1_000 * MS, buckets, stripes);
            let (mut generation, mut now) = (0u64, 0u64);
            for _ in 0..60 {
                step(&mut next, &mut generation, &mut now);
                let g = generation.saturating_sub(if next(4) == 0 { next(3) } else { 0 });
                let t = now.saturating_sub(if next(4) == 0 { next(3_000) * MS } else { 0 });
                random_write(&w, &s, &mut next, g, t);
                for at in [
                    now.saturating_sub(1_500 * MS),
                    now,
                    now + 400 * MS,
                    now + 3_000 * MS,
                ] {
                    for g in generation.saturating_sub(3)..=generation + 1 {
                        assert_eq!(
                            w.report(&s, g, at),
                            w.stats(&s, g, at),
                            "case {case}, generation {g}, at {} ms",
                            at / MS
                        );
                    }
                }
            }
        }
    }

    /// Runs a test as an owned stripe's writer and as a shared stripe's.
    fn for_both(test: impl Fn(Writer)) {
        test(Writer::Owned(0));
        test(Writer::Shared(0));
    }

    #[test]
    fn time_window_slides_by_whole_buckets() {
        for_both(|wr| {
            // 10 buckets of 1 s.
            let (w, s) = window(1_000 * MS, 10, 1);
            w.record_as(&s, wr, 0, 500 * MS, F, true);
            w.record_as(&s, wr, 0, 999 * MS, F, true);
            w.record_as(&s, wr, 0, 1_000 * MS, S, true); // exactly on a boundary: the bucket it starts
            assert_eq!(w.stats(&s, 0, 9_999 * MS).calls, 3);
            let at_10s = w.stats(&s, 0, 10_000 * MS);
            assert_eq!(
                (at_10s.calls, at_10s.failures),
                (1, 0),
                "first bucket left the window"
            );
            assert_eq!(w.stats(&s, 0, 11_000 * MS).calls, 0);
            assert_eq!(s.total(Total::Failures), 2);
            w.record_as(&s, wr, 0, 10_500 * MS, F, true); // ring of 10: rotates slot 0, folds its two failures
            assert_eq!(s.total(Total::Failures), 3);
            assert_eq!(s.total(Total::Successes), 1);
        });
    }

    #[test]
    fn another_generation_sees_an_empty_window() {
        for_both(|wr| {
            let (w, s) = window(1_000 * MS, 10, 2);
            w.record_as(&s, wr, 4, 0, F, true);
            assert_eq!(w.stats(&s, 4, 0).calls, 1);
            assert_eq!(w.stats(&s, 5, 0).calls, 0);
            w.record_as(&s, wr, 7, 0, S, true);
            assert_eq!(
                w.stats(&s, 7, 0),
                WindowStats {
                    calls: 1,
                    failures: 0,
                    slow: 0,
                    throttled: 0,
                    answered: 0
                }
            );
            assert_eq!(s.total(Total::Failures), 1);
        });
    }

    #[test]
    fn a_late_writer_does_not_rotate_a_newer_generation_away() {
        for_both(|wr| {
            let (w, s) = window(1_000 * MS, 10, 1);
            w.record_as(&s, wr, 9, 0, S, true);
            w.record_as(&s, wr, 5, 0, S, true); // generation 5 is older: its tag is lower
            assert_eq!(w.stats(&s, 9, 0).calls, 1);
            assert_eq!(s.total(Total::Successes), 2);
        });
    }

    #[test]
    fn a_million_calls_in_one_bucket_keep_their_exact_rate() {
        for_both(|wr| {
            let (w, s) = window(1_000 * MS, 1, 1);
            for _ in 0..1_000_000 {
                let fast = match wr {
                    Writer::Owned(i) => s.owned.head(i as u32).unwrap().try_success(0, 0, || 0),
                    Writer::Shared(i) => w.try_add_success(&s, i, 0, 0),
                };
                assert!(
                    fast || {
                        w.record_as(&s, wr, 0, 0, S, true);
                        true
                    }
                );
            }
            for _ in 0..32_768 {
                w.record_as(&s, wr, 0, 0, F, true);
            }
            let stats = w.stats(&s, 0, 0);
            assert_eq!(stats.calls, 1_032_768);
            assert_eq!(stats.failures, 32_768);
            assert_eq!(s.total(Total::Successes), 1_000_000);
        });
    }

    #[test]
    fn old_counts_never_come_back_after_any_idle_gap() {
        for_both(|wr| {
            let (w, s) = window(1_000 * MS, 10, 1);
            w.record_as(&s, wr, 0, 0, F, true);
            // 2^16 and 2^17 laps of a ring of 10, and a multiple of 2^32 intervals later.
            for idle in [10u64 << 16, 10 << 17, 1 << 32, 3 << 32] {
                assert_eq!(w.stats(&s, 0, idle * 1_000 * MS).calls, 0, "{idle}");
            }
        });
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
                slow: 0,
                throttled: 0,
                answered: 0
            }
        );
        assert_eq!(c.stats(2).calls, 0);
        c.record(2, F);
        assert_eq!(
            c.stats(2),
            WindowStats {
                calls: 1,
                failures: 1,
                slow: 0,
                throttled: 0,
                answered: 0
            }
        );
        assert_eq!(c.stats(1).calls, 2);
    }

    #[test]
    fn a_late_count_window_store_never_replaces_a_newer_outcome() {
        let c = CountWindow::new(1);
        assert!(c.record(3, F));
        assert!(!c.record(2, S), "a late permit gets no position");
        // Had it taken a position before the newer generation's outcome, the slot CAS would
        // still refuse to replace that outcome.
        let slot = &c.slots[0];
        let newer = slot.load(Ordering::Relaxed);
        assert_eq!(slot_generation(newer), 3);
        assert_eq!(
            c.stats(3),
            WindowStats {
                calls: 1,
                failures: 1,
                slow: 0,
                throttled: 0,
                answered: 0
            }
        );
        // 2^24 generations later (the old tag width) nothing aliases.
        assert_eq!(c.stats(3 + (1 << 24)).calls, 0);
    }
}
