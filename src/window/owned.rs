//! Owned stripes: counters that exactly one thread writes at a time, so that it counts with a
//! plain load and store (no lock prefix) instead of a read-modify-write.
//!
//! Owned stripe `i` is written only by the thread holding slot `i` of the process-wide pool
//! (`thread_slot.rs`); others only read it. A breaker holds nothing for an owned stripe until
//! that thread calls it: the call then takes a *block* (the stripe's line and its marks) from a
//! process-wide reserve without allocating or waiting (`stripe_reserve.rs`), and puts it in the
//! home cell (the breaker's first caller) or in the stripe's cell of a chunk taken the same way
//! (`directory.rs`); a dropped breaker gives both back reset. The owner's side is `write.rs`, the
//! readers' `read.rs`, the words and their horizons `head.rs`.
//!
//! # Orderings
//! - **A block's arrival**: its taker sets the stripe's cell (`OnceLock::set`, a release);
//!   readers get it with an acquire, so they see it as it was reset. The block came out of the
//!   reserve under its mutex, which the drop that reset it released (`stripe_reserve.rs`).
//! - **The home cell**: the first claimer swaps the home slot's number in (`Relaxed`), then
//!   takes a block and sets the home cell (a release). The number only picks which cell to look
//!   at; the cell's acquire publishes the block, and a reader that picks the home cell before it
//!   is set finds no block, as in a cell before its block arrived (see [`Owned::block`]).
//! - **The chunks of cells**: `directory.rs`.

use std::sync::OnceLock;

use crate::clock::RealTime;
use crate::consecutive::BaselineEntry;
#[cfg(not(hotbreaker_loom))]
use crate::stripe_reserve;
use crate::stripe_reserve::Reserve;
use crate::sync::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use crate::thread_slot;

mod block;
mod directory;
mod head;
mod read;
mod write;

#[cfg(not(hotbreaker_loom))]
use block::Tail;
#[cfg(not(hotbreaker_loom))]
pub(crate) use block::refill_reserves;
use block::{Block, HomeTail, StripeLines, reserve, tail_reserve};
use directory::Chunk;
use head::Mark;
pub(crate) use head::{OwnedLine, RunView, STAMPS};

/// A mark's tag while it is being rewritten, and before its first write.
const INVALID: u64 = u64::MAX;

/// The generation of an owned stripe that has not rolled into any bucket yet.
const NO_BUCKET: u64 = u64::MAX;

/// [`Owned::home_slot`] before any stripe took a block: a number no thread's slot ever is (not
/// even [`thread_slot::NONE`] or [`thread_slot::UNCLAIMED`]), so that [`Owned::block`] never
/// takes the home cell for a caller's own before it is claimed.
const NO_HOME: u32 = thread_slot::NEVER;

/// Marks per 128-byte line.
const MARKS_PER_LINE: usize = 3;

/// The three running counts, in this order.
pub(crate) const SUCCESSES: usize = 0;
pub(crate) const FAILURES: usize = 1;
pub(crate) const SLOW: usize = 2;

/// What one owned stripe counts between two marks, or up to now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Counts(pub(crate) [u64; 3]);

/// The owned stripes of one breaker.
///
/// In this order, 32-byte aligned (`repr(C)`): what a Success of the breaker's first caller
/// reads to find its stripe and its time (`home`, `fast`, `home_slot`) lies in one 32-byte
/// piece, so on one cache line, and that stripe's line, `home_head`, is in the breaker itself,
/// 128-byte aligned on a pair of lines of its own (the breaker places the handle so, a unit
/// test holds the offsets): its address needs no load, so the two lines a Success reads are
/// fetched at once, not one after the other. Other threads' Successes read `chunks` too, in
/// the next 32 bytes (on the breaker's next 64-byte line, in the same 128-byte pair), then
/// their cell in a chunk, then their block's line.
#[repr(C, align(32))]
pub(crate) struct Owned {
    /// The tail of the first owned stripe to claim its lines (stripe
    /// [`home_slot`](Owned::home_slot)), which then has no cell of its own in `chunks`: its head
    /// line is `home_head`, in the breaker. Most breakers are called mostly by the thread that
    /// called them first; its calls then find their lines without reading a cell.
    home: OnceLock<Box<HomeTail>>,
    /// With a time window and a real clock, that clock's recent time without the clock (one
    /// process-wide [`RealTime`]): a Success then takes the fast path through
    /// [`fast_head`](Owned::fast_head) and reads no other line of the breaker. `None` otherwise:
    /// other breakers' Successes take their owned stripe's fast path too, one call away (a mock
    /// clock's recent time is the clock's own). Set once, before the breaker is shared.
    fast: Option<&'static RealTime>,
    /// Which owned stripe's block `home` is: [`NO_HOME`] until a stripe first claims one, then
    /// that stripe's index for the breaker's life. Claimed by compare-and-swap, then `home` is
    /// set once a block is taken (see [`claim`](Owned::claim)): a write to the line every call
    /// reads, once per breaker, by its first caller (and a failed swap by a thread that raced
    /// it).
    home_slot: AtomicU32,
    /// Marks per stripe: the window's buckets plus one (the mark that ends the window), 0
    /// without a time window. At most [`MAX_BUCKETS`](crate::window::MAX_BUCKETS) + 1.
    ring: u16,
    /// Owned stripes: `1 << shift` (the `stripes` setting, a power of two).
    shift: u8,
    /// Elects the thread that links chunk 0 (`directory.rs`): swapped once in the breaker's
    /// life, by the first thread after the home one to claim (and a failed swap by each thread
    /// that raced it), a write to the line every call reads.
    linking: AtomicU8,
    /// The chunks of cells (`directory.rs`): owned stripe `i`'s block, once the holder of thread
    /// slot `i` has called the breaker (except the home stripe's, in `home`).
    chunks: OnceLock<Box<Chunk>>,
    /// One more than the newest tag any bucket of the breaker was started with (0 before any): by an owner's roll here, or
    /// by a rotation of a shared stripe's or the throttled ring's word (`window/`). Written
    /// with `fetch_max` at most once per bucket interval per stripe and word, never on the
    /// common path; reports skip a window no bucket of which was started. 64 bits of tags: see
    /// `owned/head.rs`, "Horizons". Not padded: its rare writes cost the readers of the fields beside it one
    /// miss per bucket interval at most. Past the handle's first 32 bytes, so on the 64-byte
    /// line after the breaker's hot one (in the same 128-byte pair): never on the line every
    /// call reads.
    newest: AtomicU64,
    /// The breaker's start on the clock's own scale (`owned/head.rs`, "Time").
    offset: u64,
    /// Puts `home_head` 96 bytes into the handle: 128-byte aligned in the breaker, whose
    /// handle starts 32 bytes in.
    _gap: [u64; 4],
    /// The home stripe's line (see `home`): written on every call of the home stripe's owner
    /// only, read by the consecutive check and reports.
    home_head: OwnedLine,
}

impl std::fmt::Debug for Owned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Owned")
            .field("stripes", &self.count())
            .field("ring", &self.ring)
            .finish_non_exhaustive()
    }
}

impl Owned {
    /// Marks per stripe: the window's buckets plus one, 0 without a time window (what the
    /// shared stripes' rings hold per kind too).
    pub(crate) fn ring(&self) -> usize {
        self.ring as usize
    }

    /// `stripes` owned stripes (a power of two, at most the thread-slot pool) with `ring` marks
    /// each (at least the window's buckets plus one, or 0), for a breaker that started `offset`
    /// ns after its clock's origin.
    pub(crate) fn new(stripes: usize, ring: u32, offset: u64) -> Owned {
        debug_assert!(stripes.is_power_of_two() && ring <= crate::window::MAX_BUCKETS + 1);
        let lines = (ring as usize).div_ceil(MARKS_PER_LINE);
        let owned = Owned {
            home: OnceLock::new(),
            fast: None,
            home_slot: AtomicU32::new(NO_HOME),
            ring: ring as u16,
            shift: stripes.trailing_zeros() as u8,
            linking: AtomicU8::new(0),
            chunks: OnceLock::new(),
            newest: AtomicU64::new(0),
            offset,
            _gap: [0; 4],
            home_head: OwnedLine::new(),
        };
        // Loom's atomics live only as long as one run of a model: no block may outlive its
        // breaker in a reserve, so under loom every stripe gets a cell and a block of its own at
        // once.
        #[cfg(hotbreaker_loom)]
        directory::fill(&owned.chunks, stripes, None, || Block::new(lines));
        #[cfg(not(hotbreaker_loom))]
        {
            owned.reserve().enter();
            // Free blocks up to as many as this breaker has owned stripes other than the home
            // one, home tails up to as many as it has owned stripes (enough for the first
            // callers of that many breakers built one after the other: a slot that won a
            // breaker's home slot waits for a tail, not a block), and chunks up to as many as
            // all but the home one's need (with the default stripes, four per CPU, 255 blocks
            // of 768 bytes and 256 tails of 640 once for the default window on 64 CPUs or
            // more): a level that breakers of this size share, not a number set aside for this
            // one. Without an upkeep thread it is what their threads' first calls can count on;
            // a call that finds a reserve empty counts on a shared stripe and asks for a refill.
            owned.reserve().top_up(stripes - 1, || Block::new(lines));
            owned.tail_reserve().enter();
            owned.tail_reserve().top_up(stripes, || Tail::home(lines));
            owned.chunk_reserve().enter();
            owned
                .chunk_reserve()
                .top_up((stripes - 1).div_ceil(directory::CHUNK), Chunk::new);
        }
        owned
    }

    /// Notes the breaker's clock's recent time if it is a real clock (see `fast`): before the
    /// breaker is shared.
    pub(crate) fn set_real_time(&mut self, time: Option<&'static RealTime>) {
        self.fast = time.filter(|_| self.ring != 0);
    }

    /// Owned stripe `slot`'s line, as [`head`](Self::head) finds it, and the breaker's real
    /// clock's recent time, when the breaker has a time window and a real clock (see `fast`):
    /// the Success fast path's lookup.
    #[inline(always)]
    pub(crate) fn fast_head(&self, slot: u32) -> Option<(&OwnedLine, &'static RealTime)> {
        match self.fast {
            Some(time) => self.head(slot).map(|head| (head, time)),
            None => None,
        }
    }

    /// Owned stripe `slot`'s lines, if the breaker has that many and the slot's holder has
    /// taken them (its block, or the home tail).
    #[inline(always)]
    fn block(&self, slot: usize) -> Option<StripeLines<'_>> {
        // Relaxed: the home slot only picks the cell. The home stripe's cell in its chunk is
        // never set, so a reader that finds the slot not yet claimed finds no block there
        // either, as it would a moment before the claim; one that finds it claimed but `home`
        // not yet set finds no block, as it would a moment before the set. A home slot found
        // unclaimed (`NO_HOME`) matches no caller's slot, so `home`, set just after that load,
        // is never taken for the caller's.
        // Under loom every stripe has its cell set from the build (see `new`): no home cell to
        // look at, and no extra atomic load in every model.
        if !cfg!(hotbreaker_loom) && self.home_slot.load(Ordering::Relaxed) as usize == slot {
            // Acquire (inside `get`): the tail as its taker found it. The home line is the
            // breaker's own, written by no one before the home stripe's owner took the tail.
            return self.home.get().map(|tail| StripeLines {
                head: &self.home_head,
                tail,
            });
        }
        // No check of `slot` against the stripes: chunks are linked and cells set only for
        // stripes the breaker has (`claim`), so a thread past them (or without a slot) finds a
        // link or a cell missing, after at most the linked chunks.
        // Acquire (inside `get`): the block's contents as its taker found them.
        let block = &**directory::cell(&self.chunks, slot)?.get()?;
        Some(StripeLines {
            head: &block.head,
            tail: &block.tail,
        })
    }

    /// Owned stripe `slot`'s line, if the breaker has that many and the slot's holder has taken
    /// its block.
    #[inline(always)]
    pub(crate) fn head(&self, slot: u32) -> Option<&OwnedLine> {
        self.block(slot as usize).map(|lines| lines.head)
    }

    /// Owned stripe `slot`'s part of the consecutive-failure check's baseline, if the slot's
    /// holder has taken its block.
    pub(crate) fn baseline(&self, slot: usize) -> Option<&BaselineEntry> {
        self.block(slot).map(|lines| &lines.tail.baseline)
    }

    /// Whether owned stripe `slot` has its block: the caller, the holder of thread slot `slot`,
    /// takes one from the reserve if not. False when the breaker has no such stripe or the
    /// reserve is empty or held (the caller then counts on a shared stripe, and the reserve is
    /// refilled off the call path, see `stripe_reserve.rs`). Never allocates, never waits.
    pub(crate) fn claim(&self, slot: usize) -> bool {
        if slot >= self.count() {
            return false;
        }
        if self.block(slot).is_some() {
            return true;
        }
        // The first stripe to claim makes itself the home one. The load first: a swap that
        // fails still takes the line every call reads, so only threads that find no home yet
        // try. Relaxed: `home.set` below publishes the slot with the block (see `block`).
        let home = self.home_slot.load(Ordering::Relaxed);
        if home as usize == slot
            || (home == NO_HOME
                && self
                    .home_slot
                    .compare_exchange(NO_HOME, slot as u32, Ordering::Relaxed, Ordering::Relaxed)
                    .is_ok())
        {
            // Won now, or earlier by this slot when the reserve had no tail for it.
            let Some(tail) = self.tail_reserve().take() else {
                return false;
            };
            // Only the holder of the home slot sets `home`: never found set.
            let set = self.home.set(tail);
            debug_assert!(
                set.is_ok(),
                "only the home slot's holder sets the home cell"
            );
            return true;
        }
        #[cfg(hotbreaker_loom)]
        return false; // every cell was filled at build
        #[cfg(not(hotbreaker_loom))]
        {
            let Some(cell) =
                directory::link(&self.chunks, &self.linking, slot, self.chunk_reserve())
            else {
                return false;
            };
            let Some(block) = self.reserve().take() else {
                return false;
            };
            // Only the slot's holder sets its cell: a set never waits on another, and never
            // finds its cell set.
            let set = cell.set(block);
            debug_assert!(set.is_ok(), "only the slot's holder sets its cell");
            true
        }
    }

    /// Lines of marks in each of this breaker's blocks: its block size.
    fn lines(&self) -> usize {
        (self.ring as usize).div_ceil(MARKS_PER_LINE)
    }

    /// Where this breaker's blocks come from and go back to: the process-wide reserve of blocks
    /// of its size (created by its build, so no call creates it).
    #[cfg_attr(hotbreaker_loom, allow(dead_code))] // loom's blocks are never pooled
    pub(crate) fn reserve(&self) -> &'static Reserve<Block> {
        reserve(self.lines())
    }

    /// Where this breaker's home tail comes from and goes back to, as [`reserve`](Self::reserve).
    pub(crate) fn tail_reserve(&self) -> &'static Reserve<HomeTail> {
        tail_reserve(self.lines())
    }

    /// Where this breaker's chunks of cells come from and go back to (`directory.rs`): the
    /// reserve for its block size (created by its build).
    #[cfg(not(hotbreaker_loom))]
    fn chunk_reserve(&self) -> &'static Reserve<Chunk> {
        directory::reserve(self.lines())
    }

    /// Whether owned stripe `slot`'s cell in a chunk holds a block.
    #[cfg(test)]
    fn in_cell(&self, slot: usize) -> bool {
        directory::cell(&self.chunks, slot).is_some_and(|cell| cell.get().is_some())
    }

    /// Gives every owned stripe a block of its own, not from the reserve (which tests running
    /// at the same time share).
    #[cfg(test)]
    pub(crate) fn claim_all(&self) {
        let lines = self.lines();
        // Relaxed: this thread's own claims, or none.
        let home = self.home_slot.load(Ordering::Relaxed);
        let home = (home != NO_HOME).then_some(home as usize);
        directory::fill(&self.chunks, self.count(), home, || Block::new(lines));
    }

    /// Owned stripes the breaker may have: the `stripes` setting.
    #[inline]
    pub(crate) fn count(&self) -> usize {
        1 << self.shift
    }

    /// How many of the first owned stripes may have their block now: those of the linked
    /// chunks, and the home stripe. A stripe past it has none (its chunk is not linked and it is
    /// not the home one). Never falls while the breaker lives: links and the home slot are set
    /// once. Relaxed, as [`block`](Owned::block) reads the home slot; the links are read with
    /// the acquire of `get`.
    pub(crate) fn reach(&self) -> usize {
        if cfg!(hotbreaker_loom) {
            return self.count(); // every cell filled at build
        }
        let home = match self.home_slot.load(Ordering::Relaxed) {
            NO_HOME => 0,
            slot => slot as usize + 1,
        };
        (directory::linked(&self.chunks) * directory::CHUNK)
            .max(home)
            .min(self.count())
    }

    /// Owned stripes that have their block: the number of budgets an evaluation's quota is
    /// shared among (`evaluation.rs`, "Quotas"). One read of the home cell, and one of each
    /// linked chunk's cells: no walk from the first chunk per stripe.
    pub(crate) fn taken(&self) -> usize {
        self.blocks().count()
    }

    /// The lines of the owned stripes that have their block: the home stripe's, then those
    /// whose blocks are in the chunks' cells (the home stripe's cell in its chunk is never set,
    /// so none comes twice).
    fn blocks(&self) -> impl Iterator<Item = StripeLines<'_>> {
        // Acquire (inside `get`): each block as its taker found it.
        self.home
            .get()
            .map(|tail| StripeLines {
                head: &self.home_head,
                tail,
            })
            .into_iter()
            .chain(directory::blocks(&self.chunks).map(|block| StripeLines {
                head: &block.head,
                tail: &block.tail,
            }))
    }

    /// Which owned stripe's block sits in the home cell, if any has one yet.
    #[cfg(test)]
    pub(crate) fn home(&self) -> Option<usize> {
        // Relaxed: `get`'s acquire already saw the set, and the slot was stored before it.
        self.home
            .get()
            .map(|_| self.home_slot.load(Ordering::Relaxed) as usize)
    }

    #[cfg(any(test, feature = "test-util"))]
    pub(crate) fn heap_bytes(&self) -> usize {
        let home = self.home.get().map_or(0, |tail| {
            std::mem::size_of::<HomeTail>() + tail.marks_bytes()
        });
        home + directory::linked(&self.chunks) * std::mem::size_of::<Chunk>()
            + directory::blocks(&self.chunks)
                .map(Block::heap_bytes)
                .sum::<usize>()
    }
}

impl Owned {
    /// The lines of the owned stripes that have their block.
    fn heads(&self) -> impl Iterator<Item = &OwnedLine> {
        self.blocks().map(|lines| lines.head)
    }
}

/// Gives the home tail and the blocks back to their reserves, reset, for the next breaker (see
/// `docs/internals.md`, "Design notes", `stripe_reserve.rs`, "Size").
impl Drop for Owned {
    fn drop(&mut self) {
        // Under loom the blocks are the breaker's own (see `new`).
        #[cfg(not(hotbreaker_loom))]
        {
            let home: Vec<_> = self.home.take().into_iter().collect();
            self.tail_reserve()
                .leave(home, stripe_reserve::target(), |tail| tail.reset());
            let mut blocks = Vec::new();
            let chunks = directory::drain(&mut self.chunks, &mut blocks);
            self.reserve()
                .leave(blocks, stripe_reserve::target(), Block::reset);
            self.chunk_reserve()
                .leave(chunks, directory::target(), Chunk::reset);
        }
    }
}

#[cfg(test)]
mod tests;
