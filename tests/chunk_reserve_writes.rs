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

#[test]
fn calls_that_find_the_chunk_reserve_empty_write_none_of_the_breakers_own_lines() {
    // Two breakers of one size: the build of each tops the chunk reserve up to one chunk (a
    // level, not one more each).
    let a = Breaker::builder().stripes(16).build().unwrap();
    let b = Breaker::builder().stripes(16).build().unwrap();
    // This thread is both breakers' home stripe.
    a.try_acquire().unwrap().success();
    b.try_acquire().unwrap().success();
    let calls = 1_000u64;
    let start = Barrier::new(4);
    let done = Barrier::new(4);
    let report = std::thread::scope(|s| {
        // Another thread calls `a` first: it links `a`'s chunk 0, the last free chunk.
        s.spawn(|| {
            a.try_acquire().unwrap().success();
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
        // Recording starts once `a`'s thread has its chunk (it waits on `start` after its call).
        write_count::start();
        start.wait();
        done.wait();
        write_count::stop_and_report()
    });
    let base = std::ptr::from_ref(&b) as usize;
    let end = base + std::mem::size_of::<Breaker>();
    let line = write_count::LINE_BYTES;
    let inline: Vec<_> = report
        .shared_lines()
        .filter(|l| l.line * line + line > base && l.line * line < end)
        .collect();
    for l in &inline {
        println!("breaker's own line written by several threads: {l}");
    }
    let writes: u64 = inline.iter().map(|l| l.writes).sum();
    println!(
        "{writes} shared writes to the breaker's own lines in {} calls",
        2 * calls
    );
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
    let calls = 1_000u64;
    let start = Barrier::new(3);
    let done = Barrier::new(3);
    let report = std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                start.wait();
                for _ in 0..calls {
                    b.try_acquire().unwrap().success();
                }
                done.wait();
            });
        }
        write_count::start();
        start.wait();
        done.wait();
        write_count::stop_and_report()
    });
    let base = std::ptr::from_ref(&b) as usize;
    let end = base + std::mem::size_of::<Breaker>();
    let line = write_count::LINE_BYTES;
    let writes: u64 = report
        .shared_lines()
        .filter(|l| l.line * line + line > base && l.line * line < end)
        .map(|l| l.writes)
        .sum();
    println!("control: {writes} shared writes to the breaker's own lines");
    assert_eq!(writes, 0);
}
