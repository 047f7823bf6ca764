//! A block: one owned stripe's lines (its head line, then its *tail*: its ring of bucket marks
//! and its part of the consecutive check's baseline), and the process-wide reserves, one per
//! block size, that a thread's first call on a breaker takes its block from
//! (`stripe_reserve.rs`). The home stripe, whose head line is the breaker's own
//! (`owned.rs`), takes a tail alone, from reserves of tails.
//!
//! # Orderings
//! A reset stores `Relaxed`: only a dropped breaker resets its blocks and tails, when no other
//! thread can reach them, and the reserve's mutex publishes the stores to the next taker.

use std::sync::OnceLock;

use crossbeam_utils::CachePadded;

#[cfg(not(hotbreaker_loom))]
use super::NO_BUCKET;
#[cfg(not(hotbreaker_loom))]
use super::head::FRESH_BUDGET;
use super::{INVALID, MARKS_PER_LINE, Mark, OwnedLine};
use crate::consecutive::BaselineEntry;
#[cfg(not(hotbreaker_loom))]
use crate::stripe_reserve;
use crate::stripe_reserve::Reserve;
use crate::sync::AtomicU64;
#[cfg(not(hotbreaker_loom))]
use crate::sync::Ordering;

/// What an owned stripe keeps past its head line, on a line of its own (padded): its ring of
/// marks and its baseline entry.
#[derive(Debug)]
pub(crate) struct Tail {
    pub(super) marks: Box<[CachePadded<[Mark; MARKS_PER_LINE]>]>,
    /// The stripe's part of the consecutive-failure check's baseline (`consecutive.rs`): off the
    /// head line, beside the marks' pointer, which its owner reads only when it rolls into a
    /// bucket. Written by the check that renews the baseline.
    pub(super) baseline: BaselineEntry,
}

/// A home stripe's tail: padded to a line pair of its own, as it is a heap block of its own.
pub(crate) type HomeTail = CachePadded<Tail>;

impl Tail {
    pub(super) fn new(lines: usize) -> Tail {
        let zero = || AtomicU64::new(0);
        Tail {
            marks: (0..lines)
                .map(|_| {
                    CachePadded::new(std::array::from_fn(|_| Mark {
                        tag: AtomicU64::new(INVALID),
                        prev: zero(),
                        base: std::array::from_fn(|_| zero()),
                    }))
                })
                .collect(),
            baseline: BaselineEntry::new(),
        }
    }

    /// A home stripe's tail (see [`HomeTail`]).
    #[cfg(not(hotbreaker_loom))]
    pub(super) fn home(lines: usize) -> HomeTail {
        CachePadded::new(Tail::new(lines))
    }

    /// Back to [`Tail::new`]'s state, for its next breaker. Only by the breaker's drop, when
    /// no other thread can reach the tail.
    #[cfg(not(hotbreaker_loom))]
    pub(super) fn reset(&self) {
        self.baseline.reset();
        for mark in self.marks.iter().flat_map(|line| line.iter()) {
            // Relaxed: nobody else holds the tail; the reserve's push publishes the stores.
            mark.tag.store(INVALID, Ordering::Relaxed);
            mark.prev.store(0, Ordering::Relaxed);
            for base in &mark.base {
                base.store(0, Ordering::Relaxed);
            }
        }
    }

    /// Heap bytes of the marks.
    #[cfg(any(test, feature = "test-util"))]
    pub(super) fn marks_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.marks)
    }
}

/// One owned stripe other than the home one: its line and its tail, each on a line pair of its
/// own. A breaker takes one from the process-wide reserve on its owner's first call
/// (`stripe_reserve.rs`) and gives it back, reset, when it is dropped.
#[derive(Debug)]
pub(crate) struct Block {
    pub(super) head: CachePadded<OwnedLine>,
    pub(super) tail: CachePadded<Tail>,
}

impl Block {
    pub(super) fn new(lines: usize) -> Block {
        Block {
            head: CachePadded::new(OwnedLine::new()),
            tail: CachePadded::new(Tail::new(lines)),
        }
    }

    /// Back to [`Block::new`]'s state, for its next breaker. Only by the breaker's drop, when
    /// no other thread can reach the block.
    #[cfg(not(hotbreaker_loom))]
    pub(super) fn reset(&self) {
        // Every field named, none with `..`: a field added to `OwnedLine` must be reset here too.
        let OwnedLine {
            generation,
            end,
            tag,
            bucket_end,
            counts,
            ignored,
            rejected,
            run,
            last_success,
            run_start,
            last_failure,
            run_start_at,
            last_failure_at,
            budget,
        } = &*self.head;
        // Relaxed: nobody else holds the block; the reserve's push publishes the stores.
        generation.store(NO_BUCKET, Ordering::Relaxed);
        budget.store(FRESH_BUDGET, Ordering::Relaxed);
        for word in [
            end,
            tag,
            bucket_end,
            ignored,
            rejected,
            run,
            last_success,
            run_start,
            last_failure,
            run_start_at,
            last_failure_at,
        ]
        .into_iter()
        .chain(counts)
        {
            word.store(0, Ordering::Relaxed);
        }
        self.tail.reset();
    }

    #[cfg(any(test, feature = "test-util"))]
    pub(super) fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Block>() + self.tail.marks_bytes()
    }
}

/// One owned stripe's lines as its owner and its readers find them: its head line (the home
/// stripe's inline in the breaker, any other's in its block) and its tail.
#[derive(Clone, Copy, Debug)]
pub(super) struct StripeLines<'a> {
    pub(super) head: &'a OwnedLine,
    pub(super) tail: &'a Tail,
}

/// The most lines of marks a stripe has: a window's buckets plus one.
pub(super) const MAX_LINES: usize =
    (crate::window::MAX_BUCKETS as usize + 1).div_ceil(MARKS_PER_LINE);

/// One reserve of blocks per number of lines of marks, each created by the first build that
/// needs it.
static RESERVES: [OnceLock<Reserve<Block>>; MAX_LINES + 1] =
    [const { OnceLock::new() }; MAX_LINES + 1];

/// One reserve of home tails per number of lines of marks, as the blocks'.
static TAILS: [OnceLock<Reserve<HomeTail>>; MAX_LINES + 1] =
    [const { OnceLock::new() }; MAX_LINES + 1];

/// The reserve of blocks with `lines` lines of marks. Off the call path (a build).
pub(super) fn reserve(lines: usize) -> &'static Reserve<Block> {
    RESERVES[lines.min(MAX_LINES)].get_or_init(Reserve::new)
}

/// The reserve of home tails with `lines` lines of marks. Off the call path (a build).
pub(super) fn tail_reserve(lines: usize) -> &'static Reserve<HomeTail> {
    TAILS[lines.min(MAX_LINES)].get_or_init(Reserve::new)
}

/// Refills every reserve of blocks or home tails a call found empty since the last refill, to
/// [`stripe_reserve::target`] free ones, and the reserve of chunks of cells (`directory.rs`).
/// Off the call path: `start_upkeep`'s thread.
#[cfg(not(hotbreaker_loom))]
pub(crate) fn refill_reserves() {
    for (lines, reserve) in RESERVES.iter().enumerate() {
        // A reserve no build created yet has nothing to refill: not created here.
        if let Some(r) = reserve.get() {
            r.refill(stripe_reserve::target(), || Block::new(lines));
        }
    }
    for (lines, reserve) in TAILS.iter().enumerate() {
        if let Some(r) = reserve.get() {
            r.refill(stripe_reserve::target(), || Tail::home(lines));
        }
    }
    super::directory::refill();
}
