//! The writes of calls that find no chunk of cells to take: threads other than a breaker's
//! first caller keep their blocks in chunks of cells, each taken from a reserve shared by the
//! breakers of one size. When that reserve is empty (another breaker took its chunks, and no
//! upkeep thread refilled it), such a thread counts on a shared stripe, and its call must not
//! write the breaker's own lines, in particular the flag beside the first chunk's link, on the
//! line that every call reads.
//!
//! Empty in a normal build. Run by `bash benches/shared_writes.sh`, which passes
//! `RUSTFLAGS="--cfg hotbreaker_count_writes"` and a target dir of its own.
#![cfg(all(hotbreaker_count_writes, not(hotbreaker_loom)))]

use std::sync::Barrier;

use hotbreaker::Breaker;
use hotbreaker::write_count;

/// Runs `first` on a thread of its own, then calls `b` `calls` times on each of two new
/// threads, recording atomic writes only while they call; returns the shared writes that landed
/// on `b`'s own lines (the struct, not its heap), printing each such line.
fn shared_writes_to_own_lines(b: &Breaker, calls: u64, first: impl Fn() + Sync) -> u64 {
    let start = Barrier::new(4);
    let done = Barrier::new(4);
    let report = std::thread::scope(|s| {
        s.spawn(|| {
            first();
            start.wait();
            done.wait();
        });
        for _ in 0..2 {
            s.spawn(|| {
                start.wait();
                for _ in 0..calls {
                    b.try_acquire().unwrap().success();
                }
                done.wait();
            });
        }
        // Recording starts once `first` has returned (its thread waits on `start` after it).
        write_count::start();
        start.wait();
        done.wait();
        write_count::stop_and_report()
    });
    let base = std::ptr::from_ref(b) as usize;
    let end = base + std::mem::size_of::<Breaker>();
    let line = write_count::LINE_BYTES;
    report
        .shared_lines()
        .filter(|l| l.line * line + line > base && l.line * line < end)
        .inspect(|l| println!("breaker's own line written by several threads: {l}"))
        .map(|l| l.writes)
        .sum()
}

#[test]
fn calls_that_find_the_chunk_reserve_empty_write_none_of_the_breakers_own_lines() {
    // Two breakers of one size: the build of each tops the chunk reserve up to one chunk (a
    // level, not one more each).
    let a = Breaker::builder().stripes(16).build().unwrap();
    let b = Breaker::builder().stripes(16).build().unwrap();
    // This thread is both breakers' home stripe.
    a.try_acquire().unwrap().success();
    b.try_acquire().unwrap().success();
    // Another thread calls `a` first: it links `a`'s chunk 0, the last free chunk, and `b`'s
    // two callers find none.
    let writes = shared_writes_to_own_lines(&b, 1_000, || a.try_acquire().unwrap().success());
    println!("{writes} shared writes to the breaker's own lines in 2 000 calls");
    assert_eq!(
        writes, 0,
        "calls that find no chunk write the breaker's hot line (the `linking` flag)"
    );
}

/// The same without chunks: the same two threads on the shared stripes of a breaker with
/// one owned stripe (their slots are past it, so they never try to link a chunk) write none of
/// the breaker's own lines.
#[test]
fn threads_past_the_owned_stripes_write_none_of_the_breakers_own_lines() {
    let b = Breaker::builder().stripes(1).build().unwrap();
    b.try_acquire().unwrap().success(); // home
    let writes = shared_writes_to_own_lines(&b, 1_000, || {});
    println!("without chunks: {writes} shared writes to the breaker's own lines");
    assert_eq!(writes, 0);
}
