//! The cells of a breaker's owned stripes (but the home stripe's, `owned.rs`), in chunks of
//! [`CHUNK`] taken from a process-wide reserve (one per block size, as the blocks'), never
//! allocated on a call: a breaker holds a
//! chunk only once a stripe of it other than the home one has called. An idle breaker, or one
//! that only its first caller calls, holds nothing per stripe.
//!
//! Chunk `c` holds the cells of stripes `CHUNK·c .. CHUNK·(c + 1)`. The breaker points to
//! chunk 0 and chunk `c` to chunk `c + 1`: a stripe past the first [`CHUNK`] is found `c`
//! links further, each a line read (on machines with more than [`CHUNK`] threads calling).
//!
//! # Orderings
//! - **A link** (`OnceLock`): set with a release by the one thread elected to set it, got with
//!   an acquire: the chunk as its last reset left it.
//! - **The election**: a flag beside each link (the breaker's for chunk 0, chunk `c`'s for
//!   chunk `c + 1`), swapped from 0 to 1 (`Relaxed`): it only picks who sets the link, which
//!   the link's own release publishes. A winner that finds the reserve empty or held stores 0
//!   back (`Relaxed`), so a later call tries again. Only a winner sets a link, so a set never
//!   waits on another (a `OnceLock` set waits while another set of it runs).
//!
//! # Shared writes
//! The swap and the set write a line that every call on the chunk's stripes reads (for chunk
//! 0, the breaker's first line): once per chunk in a breaker's life, plus a failed swap by
//! each thread that raced the winner (the flag is loaded first, so only threads that find it
//! clear try), and a swap and a store back by a winner whose take found the reserve's mutex
//! held or its last chunk just taken. A thread tries only when the reserve's count says it
//! holds a chunk: while it is empty, a call reads the count and writes nothing here (it asks
//! for a refill as a take does, `stripe_reserve.rs`).

use std::sync::OnceLock;

use super::block::Block;
#[cfg(not(hotbreaker_loom))]
use super::block::MAX_LINES;
#[cfg(not(hotbreaker_loom))]
use crate::stripe_reserve;
#[cfg(not(hotbreaker_loom))]
use crate::stripe_reserve::Reserve;
use crate::sync::AtomicU8;
#[cfg(not(hotbreaker_loom))]
use crate::sync::Ordering;

/// Cells per chunk: a chunk is 280 bytes.
pub(super) const CHUNK: usize = 16;

/// The cells of [`CHUNK`] owned stripes, and the link to the next chunk.
#[derive(Debug)]
pub(super) struct Chunk {
    cells: [OnceLock<Box<Block>>; CHUNK],
    next: OnceLock<Box<Chunk>>,
    /// Elects the thread that sets `next` (module docs): 1 while one is, or once it has.
    #[cfg_attr(hotbreaker_loom, allow(dead_code))] // loom models link every chunk at build
    linking: AtomicU8,
}

impl Chunk {
    pub(super) fn new() -> Chunk {
        Chunk {
            cells: std::array::from_fn(|_| OnceLock::new()),
            next: OnceLock::new(),
            linking: AtomicU8::new(0),
        }
    }
}

/// The cell of owned stripe `slot`, following the links from `first`: `None` when a chunk on
/// the way is not linked (no stripe of it, but the home one, has called).
#[inline(always)]
pub(super) fn cell(first: &OnceLock<Box<Chunk>>, slot: usize) -> Option<&OnceLock<Box<Block>>> {
    let mut chunk = first.get()?;
    let mut index = slot;
    while index >= CHUNK {
        chunk = chunk.next.get()?;
        index -= CHUNK;
    }
    Some(&chunk.cells[index])
}

/// The cell of owned stripe `slot`, linking the chunks that lead to it where they are missing,
/// each from the reserve by the one thread that wins its flag. `None` when a chunk is missing
/// and this thread cannot link it now (another is linking it, or the reserve is empty or held):
/// the caller then counts on a shared stripe this time. Never allocates, never waits.
#[cfg(not(hotbreaker_loom))]
pub(super) fn link<'a>(
    first: &'a OnceLock<Box<Chunk>>,
    linking: &AtomicU8,
    slot: usize,
    reserve: &Reserve<Chunk>,
) -> Option<&'a OnceLock<Box<Block>>> {
    let mut chunk = fetch(first, linking, reserve)?;
    for _ in 0..slot / CHUNK {
        chunk = fetch(&chunk.next, &chunk.linking, reserve)?;
    }
    Some(&chunk.cells[slot % CHUNK])
}

/// The chunk behind `link`, linked from `reserve` if this thread wins `flag`.
#[cfg(not(hotbreaker_loom))]
fn fetch<'a>(
    link: &'a OnceLock<Box<Chunk>>,
    flag: &AtomicU8,
    reserve: &Reserve<Chunk>,
) -> Option<&'a Chunk> {
    if let Some(chunk) = link.get() {
        return Some(chunk);
    }
    // The reserve's count first: while it is empty, a winner would only let the flag go again,
    // two writes to the line every call reads on every call. Then the flag's load: a swap
    // that fails still takes the line. Relaxed: module docs.
    if !reserve.available()
        || flag.load(Ordering::Relaxed) != 0
        || flag
            .compare_exchange(0, 1, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
    {
        return None;
    }
    match reserve.take() {
        Some(chunk) => {
            let set = link.set(chunk);
            debug_assert!(set.is_ok(), "only the flag's winner sets the link");
            link.get().map(|chunk| &**chunk)
        }
        None => {
            // Relaxed: module docs.
            flag.store(0, Ordering::Relaxed);
            None
        }
    }
}

/// Links every chunk for `count` stripes and gives every empty cell but `home`'s a block of
/// its own from `make`, not from the reserve: loom models (whose atomics live only as long as
/// one run) and tests.
#[cfg(any(test, hotbreaker_loom))]
pub(super) fn fill(
    first: &OnceLock<Box<Chunk>>,
    count: usize,
    home: Option<usize>,
    make: impl Fn() -> Block,
) {
    let mut link = first;
    for c in 0..count.div_ceil(CHUNK) {
        let chunk = link.get_or_init(|| Box::new(Chunk::new()));
        for (i, cell) in chunk.cells.iter().enumerate().take(count - c * CHUNK) {
            if home != Some(c * CHUNK + i) {
                let _ = cell.get_or_init(|| Box::new(make()));
            }
        }
        link = &chunk.next;
    }
}

/// The blocks in the cells of the chunks linked from `first`, chunk by chunk.
pub(super) fn blocks(first: &OnceLock<Box<Chunk>>) -> impl Iterator<Item = &Block> {
    std::iter::successors(first.get(), |chunk| chunk.next.get())
        .flat_map(|chunk| chunk.cells.iter())
        .filter_map(|cell| cell.get().map(|block| &**block))
}

/// The chunks linked from `first`.
pub(super) fn linked(first: &OnceLock<Box<Chunk>>) -> usize {
    std::iter::successors(first.get(), |chunk| chunk.next.get()).count()
}

/// Takes every chunk out of the chain from `first`, and every block out of their cells into
/// `blocks`: a dropped breaker's, for the reserves. The chunks come out with empty cells and
/// no link; their flags are reset by [`Chunk::reset`].
#[cfg(not(hotbreaker_loom))]
#[allow(clippy::vec_box)] // the reserves keep chunks and blocks boxed: they move by pointer
pub(super) fn drain(
    first: &mut OnceLock<Box<Chunk>>,
    blocks: &mut Vec<Box<Block>>,
) -> Vec<Box<Chunk>> {
    let mut chunks = Vec::new();
    let mut next = first.take();
    while let Some(mut chunk) = next {
        blocks.extend(chunk.cells.iter_mut().filter_map(OnceLock::take));
        next = chunk.next.take();
        chunks.push(chunk);
    }
    chunks
}

#[cfg(not(hotbreaker_loom))]
impl Chunk {
    /// Whether the chunk is as [`drain`] leaves it: no block, no link.
    #[cfg(test)]
    pub(super) fn is_empty(&self) -> bool {
        self.cells.iter().all(|cell| cell.get().is_none()) && self.next.get().is_none()
    }

    /// Back to [`Chunk::new`]'s state, once [`drain`] emptied it. Only by a dropped breaker,
    /// when no other thread can reach the chunk.
    pub(super) fn reset(&self) {
        // Relaxed: nobody else holds the chunk; the reserve's mutex publishes the store.
        self.linking.store(0, Ordering::Relaxed);
    }
}

/// One reserve of chunks per block size, as the blocks' (`block.rs`), each created by the
/// first build that needs it: breakers of different window sizes do not take from one
/// another's.
#[cfg(not(hotbreaker_loom))]
static CHUNKS: [OnceLock<Reserve<Chunk>>; MAX_LINES + 1] =
    [const { OnceLock::new() }; MAX_LINES + 1];

/// The reserve of chunks for breakers whose blocks have `lines` lines of marks (created by
/// their build, so no call creates it).
#[cfg(not(hotbreaker_loom))]
pub(super) fn reserve(lines: usize) -> &'static Reserve<Chunk> {
    CHUNKS[lines.min(MAX_LINES)].get_or_init(Reserve::new)
}

/// Free chunks a refill leaves and a drop keeps: one per [`CHUNK`] of the blocks' target, at
/// least 2.
#[cfg(not(hotbreaker_loom))]
pub(super) fn target() -> usize {
    stripe_reserve::target().div_ceil(CHUNK).max(2)
}

/// Refills every reserve of chunks a take found empty since the last refill. Off the call
/// path: the upkeep thread's.
#[cfg(not(hotbreaker_loom))]
pub(super) fn refill() {
    for reserve in CHUNKS.iter().filter_map(OnceLock::get) {
        reserve.refill(target(), Chunk::new);
    }
}

#[cfg(all(test, not(hotbreaker_loom)))]
mod tests;
