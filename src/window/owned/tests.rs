use super::*;
use crate::sync::Ordering;

const MS: u64 = 1_000_000;
const S: &[usize] = &[SUCCESSES];
const F: &[usize] = &[FAILURES];

#[test]
fn what_a_success_of_the_first_caller_reads_to_find_its_stripe_lies_in_32_bytes() {
    use std::mem::{offset_of, size_of};
    assert_eq!(std::mem::align_of::<Owned>(), 32);
    assert_eq!(offset_of!(Owned, home), 0);
    assert!(offset_of!(Owned, fast) + size_of::<Option<&RealTime>>() <= 32);
    assert!(offset_of!(Owned, home_slot) + size_of::<AtomicU32>() <= 32);
    // Other callers' cells: in the next 32 bytes, on the breaker's next line.
    assert_eq!(offset_of!(Owned, chunks), 32);
    // Written by rolls: off the breaker's line that every call reads (see `breaker/mod.rs`).
    assert!(offset_of!(Owned, newest) >= 32);
    // The home stripe's line: 128-byte aligned in the breaker (whose handle starts 32 bytes
    // in, see `breaker/mod.rs`), alone on its pair of lines.
    assert_eq!((32 + offset_of!(Owned, home_head)) % 128, 0);
    assert!(size_of::<OwnedLine>() <= 128);
    assert_eq!(size_of::<Owned>(), 96 + 128);
}

#[test]
fn the_first_stripe_to_take_a_block_takes_the_home_cell_and_the_others_their_own() {
    let o = Owned::new(4, 4, 0);
    let idle = o.heap_bytes();
    assert_eq!(o.home(), None);
    assert!(o.claim(2));
    assert_eq!(o.home(), Some(2));
    assert!(!o.in_cell(2), "the home stripe's cell stays empty");
    assert!(o.claim(2), "a second claim finds the home block");
    assert!(o.claim(0));
    assert_eq!(o.home(), Some(2), "taken once for the breaker's life");
    assert!(o.in_cell(0));
    assert_eq!(o.taken(), 2);
    assert!(o.head(1).is_none() && o.head(3).is_none());
    // Each stripe finds its own block, and counts on it alone.
    let (h0, h2) = (o.head(0).unwrap(), o.head(2).unwrap());
    assert!(!std::ptr::eq(h0, h2));
    o.record(2, 0, (1, 100), S, true);
    o.record(2, 0, (1, 100), S, true);
    o.record(0, 0, (1, 100), F, true);
    assert_eq!(o.window(2, 1, 1), Counts([2, 0, 0]));
    assert_eq!(o.window(0, 1, 1), Counts([0, 1, 0]));
    // Readers of every stripe see both blocks: the home one too.
    assert_eq!((o.total(SUCCESSES), o.total(FAILURES)), (2, 1));
    assert_eq!(o.heads().count(), 2);
    assert_eq!(
        o.heap_bytes(),
        idle + (128 + 128 * 2) + (256 + 128 * 2) + size_of::<Chunk>(),
        "the home tail, a block, and the chunk of the cell of the stripe that is not home"
    );
}

#[test]
fn the_home_stripe_counts_on_the_breakers_own_line_and_the_others_on_their_blocks() {
    let o = Owned::new(4, 4, 0);
    assert!(o.claim(2) && o.claim(0));
    let inside = |p: &OwnedLine| {
        let at = std::ptr::from_ref(p) as usize;
        let start = std::ptr::from_ref(&o) as usize;
        (start..start + size_of::<Owned>()).contains(&at)
    };
    assert!(inside(o.head(2).unwrap()), "the home line is the handle's");
    assert!(
        !inside(o.head(0).unwrap()),
        "another stripe's line is in its block"
    );
    // Both read back through the same paths.
    o.record(2, 0, (1, 100), S, true);
    o.record(0, 0, (1, 100), F, true);
    assert_eq!(o.window_total(1, 1, false), Counts([1, 1, 0]));
    assert_eq!(o.window_total(1, 1, true), Counts([1, 1, 0]));
    assert_eq!(o.head(0).unwrap().lengthen_run(0, 5, 5), 1);
    assert_eq!(o.run_view(0, 0).run, 1);
    assert_eq!(o.run_view(2, 0).successes, 1);
}

#[test]
fn no_caller_takes_a_home_block_whose_slot_it_read_before_the_claim_for_its_own() {
    // What a caller sees when its load of the home slot comes before a claim and its look at
    // the home cell after it: the slot unclaimed, the cell set.
    let o = Owned::new(2, 4, 0);
    let _ = o.home.set(Box::new(block::Tail::home(2)));
    // Relaxed: this thread alone touches `o`.
    assert_eq!(o.home_slot.load(Ordering::Relaxed), NO_HOME);
    let overflow = thread_slot::POOL;
    for slot in [
        0,
        1,
        2,
        thread_slot::NONE,
        thread_slot::UNCLAIMED,
        overflow,
        overflow + (1 << 30) - 1,
    ] {
        assert!(o.head(slot).is_none(), "slot {slot}");
    }
}

#[test]
fn a_dropped_breaker_gives_its_home_block_back_too() {
    let ring = 250; // 84 lines: a reserve no other test uses
    let keep = Owned::new(1, ring, 0);
    let o = Owned::new(2, ring, 0);
    let (free, tails) = (o.reserve().free(), o.tail_reserve().free());
    assert!(o.claim(1) && o.claim(0));
    assert_eq!(o.home(), Some(1));
    assert_eq!(o.reserve().free(), free - 1);
    assert_eq!(o.tail_reserve().free(), tails - 1);
    let (reserve, tail_reserve) = (o.reserve(), o.tail_reserve());
    drop(o);
    assert_eq!(reserve.free(), free, "the block is back");
    assert_eq!(tail_reserve.free(), tails, "the home tail is back");
    drop(keep);
}

#[test]
fn threads_claiming_at_once_each_find_their_own_block_and_one_of_them_is_home() {
    for round in 0..100 {
        // 24 of 32 stripes: two chunks of cells to link while the blocks are taken.
        let o = Owned::new(32, 4, 0);
        let lines = 2;
        std::thread::scope(|s| {
            for slot in 0..24 {
                let o = &o;
                s.spawn(move || {
                    // A take only tries the reserve's lock, and one thread links a chunk
                    // while the others go on: a claim that gets nothing leaves the call to a
                    // shared stripe, and the next call tries again (after a refill, as the
                    // upkeep thread's, when a reserve ran dry).
                    while !o.claim(slot) {
                        o.reserve()
                            .refill(stripe_reserve::target(), || Block::new(lines));
                        o.tail_reserve()
                            .refill(stripe_reserve::target(), || block::Tail::home(lines));
                        o.chunk_reserve().refill(directory::target(), Chunk::new);
                        std::thread::yield_now();
                    }
                    // A stripe's own count: another stripe's block would show it too.
                    o.record(slot, 0, (1, 100), S, true);
                    for _ in 0..slot {
                        o.record(slot, 0, (1, 100), F, true);
                    }
                });
            }
        });
        let home = o.home().expect("one stripe holds the home cell");
        assert_eq!(o.taken(), 24);
        assert_eq!(directory::linked(&o.chunks), 2, "round {round}");
        for slot in 0..24 {
            assert_eq!(o.in_cell(slot), slot != home, "round {round}");
            assert_eq!(o.window(slot, 1, 1), Counts([1, slot as u64, 0]));
        }
    }
}

#[test]
fn only_a_time_window_on_a_real_clock_takes_the_fast_lookup() {
    let real = crate::clock::TimeSource::new(quanta::Clock::new());
    let (mock, _) = quanta::Clock::mock();
    let mock = crate::clock::TimeSource::new(mock);
    assert!(mock.real_time().is_none());
    let time = real.real_time();
    let mut timed = Owned::new(1, 4, 0);
    timed.claim_all();
    assert!(
        timed.fast_head(0).is_none(),
        "not before the clock is known"
    );
    timed.set_real_time(mock.real_time());
    assert!(timed.fast_head(0).is_none(), "a mock clock");
    timed.set_real_time(time);
    let (_, fast) = timed.fast_head(0).expect("a real clock and a time window");
    // The clock's own reading: quanta's global recent time (0 if no upkeep runs in this
    // process; an upkeep running beside this test moves it by a tick at most).
    let (a, b) = (fast.recent_at(), real.recent_at());
    assert!(a.abs_diff(b) <= 2_000_000, "{a} {b}");
    assert!(timed.fast_head(1).is_none(), "no such stripe");
    let mut counting = Owned::new(1, 0, 0);
    counting.claim_all();
    counting.set_real_time(time);
    assert!(counting.fast_head(0).is_none(), "a count window");
}

/// Ring of 4, a window of the last 2 tags.
fn owned() -> Owned {
    let o = Owned::new(2, 4, 0);
    o.claim_all();
    o
}

#[test]
fn the_first_outcome_rolls_and_the_fast_path_counts_after_it() {
    let o = owned();
    assert!(!o.try_success(0, 0, 5, || 5), "no bucket yet");
    o.record(0, 0, (10, 100), S, true);
    for i in 0..40 {
        assert!(o.try_success(0, 0, 50 + i, || 50 + i));
    }
    assert!(!o.try_success(0, 0, 100, || 100), "the interval is over");
    assert!(!o.try_success(0, 1, 90, || 90), "another generation");
    assert_eq!(o.window(0, 9, 10), Counts([41, 0, 0]));
    assert_eq!(o.window(1, 9, 10), Counts::default(), "stripes are apart");
    assert_eq!(o.total(SUCCESSES), 41);
}

#[test]
fn a_repeated_recent_time_is_checked_at_powers_of_two_then_every_64th() {
    let o = owned();
    o.record(0, 0, (10, 100), S, true);
    let checks = std::cell::Cell::new(0);
    let real = || {
        checks.set(checks.get() + 1);
        1
    };
    for _ in 0..1000 {
        assert!(o.try_success(0, 0, 1, real));
    }
    // The first read is fresh; repeats 1, 2, 4, ... 64 (7 checks), then 128, 192, ... 960
    // (14 more).
    assert_eq!(checks.get(), 7 + 14);
    assert_eq!(o.total(SUCCESSES), 1001);
}

/// The guard is the thread's, not the stripe's: a thread that calls many breakers, each
/// rarely, checks a repeated recent time as often as one that calls one breaker, not on the
/// first repeats of each.
#[test]
fn a_thread_checks_a_repeated_recent_time_per_64_of_its_calls_not_per_stripe() {
    let all: Vec<Owned> = (0..100)
        .map(|_| {
            let o = owned();
            o.record(0, 0, (10, 100), S, true);
            o
        })
        .collect();
    let checks = std::cell::Cell::new(0);
    let real = || {
        checks.set(checks.get() + 1);
        1
    };
    for i in 0..1000 {
        assert!(all[i % 100].try_success(0, 0, 1, real));
    }
    // As for one stripe: the first read is fresh; repeats 1, 2, 4, ... 64, then every 64th.
    // Stripe by stripe, 100 stripes would have checked their 1st, 2nd, 4th and 8th repeats:
    // 400 reads of the real clock.
    assert_eq!(checks.get(), 7 + 14);
    let total: u64 = all.iter().map(|o| o.total(SUCCESSES)).sum();
    assert_eq!(total, 100 + 1000);
}

/// A reading the thread found stale is not trusted on another stripe either, until it moves.
#[test]
fn a_stale_recent_time_found_on_one_stripe_is_stale_on_every_stripe_of_the_thread() {
    let (a, b) = (owned(), owned());
    a.record(0, 0, (0, 100 * MS), S, true);
    b.record(0, 0, (0, 100 * MS), S, true);
    let frozen = 1;
    assert!(a.try_success(0, 0, frozen, || unreachable!()), "fresh");
    assert!(
        !a.try_success(0, 0, frozen, || 11 * MS),
        "the first repeat: stale"
    );
    assert!(
        !b.try_success(0, 0, frozen, || 12 * MS),
        "checked again on the other stripe: still stale"
    );
    assert!(
        b.try_success(0, 0, 40 * MS, || unreachable!()),
        "moved: fresh"
    );
}

/// A mock clock's recent time, on a scale of its own, never resets the thread's memory: a
/// thread that calls a mock-clock breaker between the calls of a real-clock one still checks
/// the real one's frozen reading.
#[test]
fn a_mock_clocks_successes_leave_the_threads_guard_alone() {
    let (real_clock, mock_clock) = (owned(), owned());
    real_clock.record(0, 0, (0, 100 * MS), S, true);
    mock_clock.record(0, 0, (0, 100 * MS), S, true);
    let (frozen, head) = (1, real_clock.head(0).unwrap());
    let mock = mock_clock.head(0).unwrap();
    assert!(
        head.try_success(0, frozen, frozen, || unreachable!()),
        "fresh"
    );
    for t in 2..10 {
        // The mock's reading moves on every call, and is trusted as it is.
        assert!(mock.try_success_exact(0, t * MS, || unreachable!()));
        // The real one's frozen reading: a repeat, checked (first repeat) and stale, then
        // stale call after call.
        assert!(
            !head.try_success(0, frozen, frozen, || 11 * MS),
            "at {t} ms"
        );
    }
}

#[test]
fn a_frozen_recent_time_closes_the_fast_path_until_it_moves() {
    let o = owned();
    o.record(0, 0, (0, 100 * MS), S, true);
    let frozen = 1;
    assert!(o.try_success(0, 0, frozen, || unreachable!()), "fresh");
    // The first repeat is checked: the real clock is 11 ms on.
    assert!(!o.try_success(0, 0, frozen, || 11 * MS));
    o.record(0, 0, (0, 100 * MS), S, false);
    // Closed: each Success is placed by the real clock, in the bucket while it lasts...
    assert!(o.try_success(0, 0, frozen, || 20 * MS));
    assert!(o.try_success(0, 0, frozen, || 30 * MS));
    // ...and not past it.
    assert!(!o.try_success(0, 0, frozen, || 100 * MS));
    // The upkeep moves again: the next Success finds it fresh and opens the fast path.
    assert!(o.try_success(0, 0, 40 * MS, || 41 * MS));
    assert!(o.try_success(0, 0, 42 * MS, || unreachable!()));
    assert_eq!(o.total(SUCCESSES), 7);
}

#[test]
fn without_any_upkeep_successes_are_placed_by_the_real_clock() {
    let o = owned();
    o.record(0, 0, (0, 100 * MS), S, false);
    let no_upkeep = 0;
    for t in 1..50 {
        assert!(o.try_success(0, 0, no_upkeep, || t * MS));
    }
    assert!(
        !o.try_success(0, 0, no_upkeep, || 100 * MS),
        "the next bucket: a roll"
    );
    assert_eq!(o.window(0, 0, 0), Counts([50, 0, 0]));
}

#[test]
fn a_window_spans_exactly_its_buckets() {
    let o = owned();
    for (tag, n) in [(10u64, 3u64), (11, 5), (12, 7), (14, 11)] {
        for _ in 0..n {
            o.record(0, 0, (tag, (tag + 1) * 100), F, true);
        }
    }
    assert_eq!(o.window(0, 11, 12), Counts([0, 12, 0]));
    assert_eq!(o.window(0, 13, 14), Counts([0, 11, 0]));
    assert_eq!(
        o.window(0, 12, 13),
        Counts([0, 7, 0]),
        "ends at the next mark"
    );
    assert_eq!(o.window(0, 15, 16), Counts::default());
    // Tag 10's mark was overwritten by tag 14's (ring of 4): the window starts at 11.
    assert_eq!(o.window(0, 9, 12), Counts([0, 12, 0]));
    assert_eq!(o.total(FAILURES), 26, "lifetime totals are exact");
}

#[test]
fn a_late_generation_is_left_to_the_caller() {
    let o = owned();
    assert!(o.record(0, 5, (5 * 8 + 1, 100), S, true));
    assert!(
        !o.record(0, 4, (4 * 8 + 3, 100), F, true),
        "late: not counted here"
    );
    assert_eq!(o.window(0, 5 * 8, 5 * 8 + 3), Counts([1, 0, 0]));
    assert_eq!(o.window(0, 4 * 8, 4 * 8 + 3), Counts::default());
    assert_eq!((o.total(SUCCESSES), o.total(FAILURES)), (1, 0));
}

#[test]
fn an_earlier_instant_of_the_same_generation_stays_in_the_current_bucket() {
    let o = owned();
    o.record(0, 0, (12, 1300), S, true);
    o.record(0, 0, (11, 1200), S, true);
    assert_eq!(o.window(0, 12, 12), Counts([2, 0, 0]));
}

#[test]
fn a_local_run_saturates_and_is_kept_per_generation() {
    let o = owned();
    o.record(0, 3, (3 * 8, 100), F, true);
    let head = o.head(0).unwrap();
    assert_eq!(head.lengthen_run(3, 10, 10), 1);
    assert_eq!(
        head.lengthen_run(2, 11, 11),
        0,
        "a late Failure lengthens nothing"
    );
    head.run.store(u64::from(u32::MAX), Ordering::Relaxed);
    assert_eq!(
        head.lengthen_run(3, 12, 12),
        u64::from(u32::MAX),
        "saturates"
    );
    let v = o.run_view(0, 3);
    assert_eq!(
        (v.run, v.run_start, v.last_failure),
        (u64::from(u32::MAX), 10, 12)
    );
    assert_eq!(o.run_view(0, 4).run, 0, "another generation's run is none");
    // A roll into a newer generation starts the run again.
    o.record(0, 4, (4 * 8, 100), S, true);
    assert_eq!(o.run_view(0, 4).run, 0);
    assert_eq!(head.lengthen_run(4, 20, 20), 1);
    // A Success ends it.
    o.record(0, 4, (4 * 8, 100), S, true);
    assert_eq!(o.run_view(0, 4).run, 0);
}

/// The budget keeps 16 bits of the evaluation round: 2^16 evaluations later the same bits
/// come round, and the owner counts on from its older spend (it evaluates sooner, never
/// later than a fresh count would plus the one unit a new round adds).
#[test]
fn a_budget_round_that_comes_round_after_2_16_evaluations_counts_on() {
    let o = owned();
    let head = o.head(0).unwrap();
    head.reset_budget(6);
    assert!(!head.spend_budget(7, 3), "a new round: 2 of 3");
    assert!(head.spend_budget(7, 3), "3 of 3: evaluate");
    head.reset_budget(7 + (1 << 16));
    assert!(!head.spend_budget(7, 3), "the same 16 bits: 1 of 3");
    assert!(!head.spend_budget(8, 3), "a new round: 2 of 3");
    assert!(head.spend_budget(8, 3));
}

/// A block taken after the published evaluation was computed is not in its quota's divisor:
/// every event on it evaluates until its owner's own evaluation publishes a round.
#[test]
fn a_fresh_block_evaluates_on_every_event_until_its_own_evaluation_publishes() {
    let o = owned();
    let head = o.head(0).unwrap();
    for _ in 0..3 {
        assert!(head.spend_budget(4, 1_000), "fresh: evaluate");
    }
    head.reset_budget(5);
    assert!(!head.spend_budget(5, 1_000), "its own round: 1 of 1 000");
    assert!(!head.spend_budget(6, 1_000), "another round: 2 of 1 000");
}

#[test]
fn counts_past_every_narrow_width() {
    let o = owned();
    o.record(0, 0, (1, 100), S, true);
    let head = o.head(0).unwrap();
    head.counts[SUCCESSES].store(u64::from(u32::MAX) + 5, Ordering::Relaxed);
    o.record(0, 0, (2, 200), S, true);
    assert!(o.try_success(0, 0, 150, || 150));
    assert_eq!(o.window(0, 2, 2), Counts([2, 0, 0]));
    assert_eq!(o.total(SUCCESSES), u64::from(u32::MAX) + 7);
}

#[test]
fn a_window_never_counts_a_bucket_past_its_end_when_the_next_mark_was_overwritten() {
    let o = owned(); // ring of 4
    o.record(0, 0, (13, 1400), F, true);
    for _ in 0..5 {
        o.record(0, 0, (14, 1500), F, true);
    }
    o.record(0, 0, (18, 1900), S, true); // overwrites 14's slot
    // Bucket 13 alone is 1, but its end is gone: the count is a lower bound, never more.
    assert!(o.window(0, 10, 13).0[FAILURES] <= 1);
    assert_eq!(o.window(0, 15, 18), Counts([1, 0, 0]), "18 alone");
}

#[test]
fn a_window_read_across_a_roll_counts_only_its_own_buckets() {
    let o = owned();
    o.record(0, 0, (12, 1300), F, true);
    o.record(0, 0, (13, 1400), F, true);
    for _ in 0..5 {
        o.record(0, 0, (14, 1500), F, true);
    }
    // A reader that scanned 14's slot before the roll sees no mark after the window, and
    // the owner already past it: it stops at the start of 13, the last bucket it saw.
    o.mark(o.block(0).unwrap(), 14)
        .tag
        .store(INVALID, Ordering::Relaxed);
    assert_eq!(o.window(0, 10, 13), Counts([0, 1, 0]));
}

#[test]
fn the_mark_after_the_window_ends_it_exactly() {
    let o = owned();
    o.record(0, 0, (13, 1400), F, true);
    o.record(0, 0, (13, 1400), F, true);
    for _ in 0..5 {
        o.record(0, 0, (14, 1500), F, true);
    }
    assert_eq!(o.window(0, 10, 13), Counts([0, 2, 0]));
    assert_eq!(o.window(0, 10, 14), Counts([0, 7, 0]));
}

#[test]
fn a_mark_being_rewritten_is_skipped() {
    let o = owned();
    o.record(0, 0, (3, 100), S, true);
    o.mark(o.block(0).unwrap(), 3)
        .tag
        .store(INVALID, Ordering::Relaxed);
    assert_eq!(o.window(0, 0, 10), Counts::default());
}

// Each test below uses a ring no other test uses, so that no other test running at the same
// time takes from or gives to its reserve.

#[test]
fn a_stripe_has_no_lines_until_its_thread_calls_and_reads_as_empty_meanwhile() {
    let o = Owned::new(4, 241, 0);
    assert_eq!(o.taken(), 0);
    let idle = o.heap_bytes();
    assert_eq!(idle, 0, "nothing per stripe");
    assert!(o.head(1).is_none());
    assert_eq!(o.window(1, 0, 100), Counts::default());
    assert_eq!(o.run_view(1, 0), RunView::default());
    assert!(!o.rolled_since(1, 0));
    assert_eq!(o.total(SUCCESSES), 0);
    assert!(o.claim(1), "the build left a tail in the reserve");
    assert!(o.claim(1), "a second claim keeps the same tail");
    assert_eq!((o.taken(), o.head(0).is_none()), (1, true));
    assert_eq!(o.heap_bytes(), idle + 128 + 81 * 128, "the home tail");
    assert!(!o.claim(4), "no such stripe");
}

#[test]
fn a_stripe_past_the_first_chunk_claims_and_counts_as_the_others() {
    let ring = 238; // 80 lines: a reserve no other test uses
    let o = Owned::new(64, ring, 0);
    assert_eq!(o.heap_bytes(), 0);
    assert_eq!(o.reach(), 0, "no stripe has a block");
    assert!(o.claim(3), "home");
    assert_eq!(
        directory::linked(&o.chunks),
        0,
        "the home stripe needs no chunk"
    );
    assert_eq!(o.reach(), 4, "up to the home stripe");
    assert!(o.claim(40));
    assert_eq!(directory::linked(&o.chunks), 3, "chunks 0, 1 and 2");
    assert_eq!(o.reach(), 48, "the stripes of the linked chunks");
    assert!(o.claim(5));
    assert_eq!(o.reach(), 48, "a stripe in a linked chunk adds none");
    assert!(o.in_cell(40) && !o.in_cell(41));
    o.record(40, 0, (1, 100), F, true);
    o.record(3, 0, (1, 100), S, true);
    assert_eq!(o.window(40, 1, 1), Counts([0, 1, 0]));
    assert_eq!((o.total(SUCCESSES), o.total(FAILURES)), (1, 1));
    assert!(o.run_view(40, 0).run == 0 && o.baseline(40).is_some());
    assert!(!o.claim(64), "no such stripe");
    let chunks = o.chunk_reserve().free();
    let reserve = o.chunk_reserve();
    let keep = Owned::new(1, ring, 0);
    drop(o);
    assert!(
        reserve.free() >= chunks.min(directory::target()),
        "its chunks are back"
    );
    drop(keep);
}

/// The lookup does not compare a slot with the stripes: a slot past them, in a linked chunk or
/// past every one, finds no block, and cannot claim one.
#[test]
fn a_slot_past_the_stripes_finds_no_block_even_in_a_linked_chunk() {
    let ring = 232; // 78 lines: a reserve no other test uses
    let o = Owned::new(8, ring, 0);
    assert!(o.claim(3), "home");
    assert!(o.claim(5));
    assert_eq!(directory::linked(&o.chunks), 1, "chunk 0: cells 0 to 15");
    for slot in [8u32, 12, 15, 16, 40, u32::MAX] {
        assert!(o.head(slot).is_none(), "slot {slot}");
        assert!(!o.claim(slot as usize), "slot {slot}");
    }
    assert_eq!(directory::linked(&o.chunks), 1, "no chunk linked for them");
    assert!(o.head(5).is_some() && o.head(3).is_some());
}

#[test]
fn a_dropped_breaker_gives_its_blocks_back_reset() {
    let ring = 244; // 82 lines
    // Another breaker of the same size lives on: the blocks are kept for it.
    let other = Owned::new(1, ring, 0);
    // Stripe 0 is not the home one: its line is its block's.
    let a = Owned::new(2, ring, 7);
    assert!(a.claim(1) && a.claim(0));
    assert_eq!(a.home(), Some(1));
    a.record(0, 3, (20, 2000), F, true);
    a.record(0, 3, (21, 2100), S, true);
    a.add_rejected(0);
    a.add_ignored(0);
    a.head(0).unwrap().lengthen_run(3, 50, 50);
    a.head(0).unwrap().reset_budget(1);
    assert!(!a.head(0).unwrap().spend_budget(1, 9));
    a.baseline(0).unwrap().fill(4);
    // The home stripe's tail: marks and baseline entry.
    a.record(1, 3, (22, 2200), F, true);
    a.record(1, 3, (23, 2300), S, true);
    a.baseline(1).unwrap().fill(5);
    let (free, tails) = (a.reserve().free(), a.tail_reserve().free());
    drop(a);
    let b = Owned::new(2, ring, 0);
    assert!(b.reserve().free() > free, "the block is back");
    assert!(b.tail_reserve().free() > tails, "the home tail is back");
    // Every free block and tail of this size is now a reset one: whichever the claims take,
    // they read as new, the head line of the stripe that is not home too.
    assert!(b.claim(1) && b.claim(0));
    assert_eq!(b.window(1, 0, u64::MAX - 1), Counts::default());
    assert!(b.baseline(1).unwrap().is_new(), "the home tail's entry too");
    let head = b.head(0).unwrap();
    assert_eq!(b.window(0, 0, u64::MAX - 1), Counts::default());
    assert_eq!((b.total(SUCCESSES), b.total(FAILURES)), (0, 0));
    assert_eq!((b.ignored(), b.rejected()), (0, 0));
    assert_eq!(b.run_view(0, 3), RunView::default());
    assert!(!b.rolled_since(0, 0));
    assert!(!head.try_success(3, 10, 10, || 10), "no bucket yet");
    assert!(
        head.spend_budget(1, 3),
        "fresh again: its first event evaluates"
    );
    assert!(
        b.baseline(0).unwrap().is_new(),
        "no baseline of another breaker"
    );
    b.record(0, 0, (5, 500), S, true);
    assert_eq!(b.window(0, 5, 5), Counts([1, 0, 0]));
    let (reserve, tail_reserve) = (b.reserve(), b.tail_reserve());
    drop((other, b));
    assert_eq!(
        (reserve.free(), tail_reserve.free()),
        (0, 0),
        "no breaker of this size left: nothing kept"
    );
}

#[test]
fn a_thread_that_calls_breakers_built_one_after_the_other_gets_its_lines_in_each() {
    let ring = 229; // 77 lines: a reserve no other test uses
    // No upkeep thread: only what the builds left. As many breakers as each has stripes, all
    // built before any is called (as a service builds its breakers at start), then one thread
    // calls each: it is each one's first caller.
    let all: Vec<Owned> = (0..8).map(|_| Owned::new(8, ring, 0)).collect();
    for (i, o) in all.iter().enumerate() {
        assert!(o.claim(0), "breaker {i}: the first caller's lines");
        assert_eq!(o.home(), Some(0), "breaker {i}");
    }
    // And another thread, a block of its own beside the home tail.
    assert!(all[0].claim(1));
    assert_eq!(all[0].taken(), 2);
}

#[test]
fn an_empty_reserve_leaves_the_stripe_to_the_shared_lines_until_a_refill() {
    let ring = 247; // 83 lines
    let o = Owned::new(2, ring, 0);
    while o.tail_reserve().take().is_some() {}
    while o.reserve().take().is_some() {}
    assert!(!o.claim(0), "nothing to take: never allocated on a call");
    assert_eq!(o.taken(), 0);
    // These reserves' refills, as the upkeep thread's `refill_reserves` does for each one (not
    // that: it would refill and trim the reserves of tests running beside this one).
    let lines = (ring as usize).div_ceil(MARKS_PER_LINE);
    o.tail_reserve()
        .refill(stripe_reserve::target(), || block::Tail::home(lines));
    assert!(o.claim(0), "the refill asked for by the empty take");
    assert_eq!(o.tail_reserve().free(), stripe_reserve::target() - 1);
    // The same for a stripe that is not home: its block.
    assert!(!o.claim(1), "no block to take");
    o.reserve()
        .refill(stripe_reserve::target(), || Block::new(lines));
    assert!(o.claim(1));
    assert_eq!(o.reserve().free(), stripe_reserve::target() - 1);
}

/// Real thread slots (reused as threads exit), reserves emptied by other owners of the same
/// size built and dropped meanwhile, and a reader checking all along that no block is reachable
/// from two stripes and that a block once found stays its stripe's.
mod churn {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU64};

    #[test]
    fn blocks_stay_unique_and_in_place_while_slots_are_reused_and_reserves_churn() {
        let ring = 235; // 79 lines: a reserve no other test uses
        let lines = (ring as usize).div_ceil(MARKS_PER_LINE);
        for round in 0..30 {
            let o = Owned::new(64, ring, 0);
            let per_slot: Vec<AtomicU64> = (0..64).map(|_| AtomicU64::new(0)).collect();
            let stop = AtomicBool::new(false);
            std::thread::scope(|s| {
                // Reader: distinct blocks, and each stripe's block never changes.
                s.spawn(|| {
                    let mut seen = vec![0usize; 64];
                    while !stop.load(Ordering::Relaxed) {
                        let mut now: Vec<usize> = (0..64)
                            .map(|i| {
                                o.block(i)
                                    .map_or(0, |lines| std::ptr::from_ref(lines.tail) as usize)
                            })
                            .collect();
                        for i in 0..64 {
                            assert!(
                                seen[i] == 0 || seen[i] == now[i],
                                "round {round}: stripe {i}'s block changed or vanished"
                            );
                            seen[i] = now[i];
                        }
                        now.retain(|&p| p != 0);
                        let n = now.len();
                        now.sort_unstable();
                        now.dedup();
                        assert_eq!(n, now.len(), "round {round}: a block under two stripes");
                        // Churn the reserves: another owner of this size takes and gives back.
                        let other = Owned::new(16, ring, 0);
                        let _ = other.claim(3);
                        let _ = other.claim(9);
                        drop(other);
                    }
                });
                // Upkeep.
                s.spawn(|| {
                    while !stop.load(Ordering::Relaxed) {
                        o.reserve()
                            .refill(stripe_reserve::target(), || Block::new(lines));
                        o.tail_reserve()
                            .refill(stripe_reserve::target(), || block::Tail::home(lines));
                        o.chunk_reserve().refill(directory::target(), Chunk::new);
                        std::thread::yield_now();
                    }
                });
                // Waves of short threads: slots are reused.
                for _wave in 0..4 {
                    std::thread::scope(|w| {
                        for _ in 0..20 {
                            w.spawn(|| {
                                let slot = crate::thread_slot::claimed() as usize;
                                if slot >= 64 {
                                    return;
                                }
                                let mut tries = 0u32;
                                while !o.claim(slot) {
                                    tries += 1;
                                    assert!(
                                        tries < 10_000_000,
                                        "round {round}: slot {slot} never got a block"
                                    );
                                    std::thread::yield_now();
                                }
                                o.record(slot, 0, (1, 100), S, true);
                                per_slot[slot].fetch_add(1, Ordering::Relaxed);
                            });
                        }
                    });
                }
                stop.store(true, Ordering::Relaxed);
            });
            for (slot, count) in per_slot.iter().enumerate() {
                let n = count.load(Ordering::Relaxed);
                assert_eq!(
                    o.window(slot, 1, 1),
                    Counts([n, 0, 0]),
                    "round {round}: slot {slot}"
                );
            }
        }
    }
}
