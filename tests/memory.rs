//! Memory per breaker as threads call it. Its own binary: the reserve that a thread's first call
//! takes its lines from is process-wide, and other tests' threads would take from it too.

use hotbreaker::Breaker;

/// A breaker holds counter lines only for the threads that have called it: the first calling
/// thread adds its *tail* (a line with the marks' pointer, padded, and the ring of bucket marks:
/// its head line is the breaker's own), each other one a block of lines (a head line, padded,
/// and a tail), up to the
/// breaker's owned stripes, and the threads after the first their cells, in chunks of 16
/// (280 bytes); threads beyond the owned stripes share its shared stripes and add nothing.
/// Every call is counted wherever it lands.
#[test]
fn memory_per_breaker_grows_with_its_calling_threads_up_to_its_stripes() {
    // The default window: 10 buckets, 11 marks of three to a 128-byte line.
    let tail: usize = 128 + 4 * 128;
    let block: usize = 128 + tail;
    let chunk: usize = 280;
    for stripes in [1usize, 8, 16, 64, 256] {
        let b = Breaker::builder().stripes(stripes as u32).build().unwrap();
        let idle = b.heap_bytes();
        let inline = std::mem::size_of::<Breaker>();
        // Idle: the struct (896, with the home stripe's line), the settings packed (16: which fields are set, and the stripe
        // count), one shared stripe (a breaker has one: its totals line and the 11 success
        // and 11 failure words in three lines, 512) and the baselines' cell (88: each stripe's
        // part lives with the stripe's lines). Nothing per owned stripe.
        assert_eq!(
            idle + inline,
            1520,
            "idle with {stripes} stripes: within 1.5 KB"
        );
        let mut row = format!("stripes({stripes}): idle {} B", idle + inline);
        let mut calls = 0;
        for threads in [1, 16, 64] {
            // Every thread stays until all have called: alive together, they hold distinct
            // thread slots (a thread that exited would give its slot to the next one).
            let together = std::sync::Barrier::new(threads);
            std::thread::scope(|s| {
                let handles: Vec<_> = (0..threads)
                    .map(|_| {
                        s.spawn(|| {
                            for i in 0..100 {
                                let _ = b.call(|| if i % 10 == 0 { Err(()) } else { Ok(()) });
                            }
                            together.wait();
                        })
                    })
                    .collect();
                // Joined one by one: a join waits for the thread's exit, which gives its slot
                // back, so each round's threads find the slots free.
                for h in handles {
                    h.join().unwrap();
                }
            });
            calls += threads * 100;
            let heap = b.heap_bytes();
            let extra = heap - idle;
            // The home tail, whole blocks, and whole chunks for the stripes past the home one.
            let chunks = (0..=stripes.div_ceil(16))
                .find(|c| {
                    extra >= tail + c * chunk && (extra - tail - c * chunk).is_multiple_of(block)
                })
                .unwrap_or_else(|| panic!("{threads} threads: {extra} B over idle"));
            let blocks = 1 + (extra - tail - chunks * chunk) / block;
            assert!(
                (1..=stripes).contains(&blocks),
                "{threads} threads: {blocks} blocks"
            );
            // A chunk for each 16 stripes that some thread past the first called: which ones
            // depends on the threads' slots, so at least one as soon as a second thread took a
            // block, and at most one per such thread and per 16 stripes.
            let most = (blocks - 1).min(stripes.div_ceil(16));
            assert!(
                (usize::from(blocks > 1)..=most).contains(&chunks),
                "{threads} threads: {chunks} chunks for {blocks} blocks"
            );
            let m = b.metrics();
            assert_eq!(m.successes + m.failures + m.rejected, calls as u64);
            row += &format!(
                ", after {threads} calling threads {} B ({blocks} blocks, {chunks} chunks)",
                heap + inline,
            );
        }
        println!("{row}");
    }
}

/// With the default settings a breaker keeps no settings of its own (nothing was set) and has
/// four owned stripes per CPU, rounded up to a power of two, and one shared stripe: 1 504 bytes
/// whatever the CPUs.
#[test]
fn an_idle_default_breaker_holds_nothing_per_cpu() {
    let b = Breaker::builder().build().unwrap();
    let idle = b.heap_bytes() + std::mem::size_of::<Breaker>();
    let stripes = b.stripes();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    assert_eq!(stripes, (4 * cpus).next_power_of_two().min(256));
    println!("default ({stripes} stripes here): idle {idle} B");
    assert_eq!(idle, 1504);
}
