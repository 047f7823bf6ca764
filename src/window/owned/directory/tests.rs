use super::*;
use crate::sync::Ordering;

fn block() -> Block {
    Block::new(1)
}

/// A reserve of its own with `n` free chunks, as a breaker's build leaves it.
fn reserve_of(n: usize) -> Reserve<Chunk> {
    let reserve = Reserve::new();
    reserve.enter(); // a breaker of this size lives: free chunks are kept
    reserve.top_up(n, Chunk::new);
    reserve
}

#[test]
fn a_stripe_past_the_first_chunk_is_found_through_the_links_and_links_only_what_it_needs() {
    let first = OnceLock::new();
    let flag = AtomicU8::new(0);
    let reserve = reserve_of(3);
    assert!(cell(&first, 40).is_none(), "nothing linked yet");
    let c = link(&first, &flag, 40, &reserve).expect("three chunks in the reserve");
    assert_eq!(linked(&first), 3, "chunks 0, 1 and 2");
    assert_eq!(reserve.free(), 0);
    assert!(c.set(Box::new(block())).is_ok());
    assert!(std::ptr::eq(cell(&first, 40).unwrap(), c), "found again");
    assert!(cell(&first, 40).unwrap().get().is_some());
    assert!(
        cell(&first, 39).unwrap().get().is_none(),
        "its neighbour's own"
    );
    assert!(cell(&first, 48).is_none(), "chunk 3 was never linked");
    assert!(
        link(&first, &flag, 17, &reserve).is_some(),
        "chunk 1 is there"
    );
    assert!(
        link(&first, &flag, 48, &reserve).is_none(),
        "the reserve is empty"
    );
}

#[test]
fn a_link_that_another_thread_is_setting_is_not_waited_for() {
    let first = OnceLock::new();
    let flag = AtomicU8::new(0);
    let reserve = reserve_of(1);
    // Another thread won the flag and has not set the link yet. Relaxed here and below: this
    // thread alone touches the flag.
    flag.store(1, Ordering::Relaxed);
    assert!(link(&first, &flag, 3, &reserve).is_none());
    assert_eq!((reserve.free(), linked(&first)), (1, 0), "nothing taken");
    // It let the flag go (its reserve was empty): the next call links.
    flag.store(0, Ordering::Relaxed);
    assert!(link(&first, &flag, 3, &reserve).is_some());
    assert_eq!((reserve.free(), linked(&first)), (0, 1));
}

#[test]
fn a_winner_that_finds_the_reserve_empty_lets_the_flag_go_for_a_later_call() {
    let first = OnceLock::new();
    let flag = AtomicU8::new(0);
    let reserve = reserve_of(0);
    assert!(link(&first, &flag, 0, &reserve).is_none());
    // Relaxed here and below: this thread alone touches the flag.
    assert_eq!(flag.load(Ordering::Relaxed), 0, "not left held");
    reserve.top_up(1, Chunk::new);
    assert!(link(&first, &flag, 0, &reserve).is_some());
    assert_eq!(flag.load(Ordering::Relaxed), 1, "set once, for good");
}

#[test]
fn a_drain_takes_every_chunk_and_every_block_out() {
    let mut first = OnceLock::new();
    fill(&first, 40, Some(5), block);
    assert_eq!(linked(&first), 3);
    assert!(
        cell(&first, 5).unwrap().get().is_none(),
        "the home stripe's cell"
    );
    let mut blocks = Vec::new();
    let chunks = drain(&mut first, &mut blocks);
    assert_eq!((chunks.len(), blocks.len()), (3, 39));
    assert!(chunks.iter().all(|chunk| chunk.is_empty()));
    assert!(first.get().is_none());
}

#[test]
fn threads_linking_at_once_each_find_their_own_cell() {
    for round in 0..200 {
        let first = OnceLock::new();
        let flag = AtomicU8::new(0);
        let reserve = reserve_of(4);
        let cells: Vec<usize> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|t| {
                    let (first, flag, reserve) = (&first, &flag, &reserve);
                    s.spawn(move || {
                        let slot = t * 7; // chunks 0 to 3
                        for _ in 0..1_000_000 {
                            // A loser counts on a shared stripe and tries on its next call.
                            if let Some(cell) = link(first, flag, slot, reserve) {
                                assert!(cell.set(Box::new(block())).is_ok(), "its own");
                                return std::ptr::from_ref(cell) as usize;
                            }
                            std::thread::yield_now();
                        }
                        panic!("slot {slot} never found its chunk linked");
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(linked(&first), 4, "round {round}: each chunk linked once");
        assert_eq!(reserve.free(), 0, "round {round}: no chunk taken twice");
        for (t, &c) in cells.iter().enumerate() {
            assert_eq!(
                cell(&first, t * 7).map(|c| std::ptr::from_ref(c) as usize),
                Some(c)
            );
        }
    }
}
