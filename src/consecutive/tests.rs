use std::cell::RefCell;

use super::*;

fn v(successes: u64, run: u64) -> RunView {
    RunView {
        successes,
        run,
        ..RunView::default()
    }
}

#[test]
fn without_a_success_since_the_baseline_every_failure_since_counts() {
    let mut f = Floor::new();
    f.add(v(10, 1), v(10, 3));
    f.add(v(4, 0), v(4, 2));
    f.add(v(0, 0), v(0, 0));
    assert_eq!(f.run(2, 0, &[]), 2 + 2 + 2);
}

#[test]
fn a_success_since_the_baseline_bounds_the_run_by_the_least_run_of_those_that_succeeded() {
    let mut f = Floor::new();
    f.add(v(10, 0), v(11, 3));
    f.add(v(4, 0), v(6, 2));
    f.add(
        v(7, 1),
        v(7, 5), /* no success: its growth does not count now */
    );
    assert_eq!(f.run(100, 0, &[]), 2);
    let mut f = Floor::new();
    f.add(v(10, 0), v(11, 3));
    f.add(v(4, 0), v(5, 0)); // its last outcome was a Success
    assert_eq!(f.run(100, 0, &[]), 0);
}

#[test]
fn a_run_that_shrank_without_a_success_adds_nothing() {
    let mut f = Floor::new();
    f.add(v(3, 5), v(3, 0));
    assert_eq!(f.run(1, 0, &[]), 1);
}

/// The cell: the first check of a breaker compares with generation 0's empty baseline, each
/// check renews it, another generation's baseline gives 0, a restart clears the run.
#[test]
fn the_cell_renews_its_baseline_and_starts_again_on_a_new_generation() {
    let stripes = RefCell::new([v(0, 0), v(0, 0)]);
    let cell = Baselines::new(2);
    let e = entries(2);
    let read = |i: usize| stripes.borrow()[i];
    stripes.borrow_mut()[0] = v(0, 2);
    assert_eq!(
        cell.check(0, 9, read, |i| e.get(i), || (0, 0), || usize::MAX),
        2
    );
    stripes.borrow_mut()[1] = v(0, 1);
    assert_eq!(
        cell.check(0, 9, read, |i| e.get(i), || (0, 0), || usize::MAX),
        3
    );
    // Stripe 1 succeeds, then fails twice: the bound is its own run.
    stripes.borrow_mut()[1] = v(1, 2);
    assert_eq!(
        cell.check(0, 9, read, |i| e.get(i), || (0, 0), || usize::MAX),
        2
    );
    stripes.borrow_mut()[1] = v(1, 3);
    assert_eq!(
        cell.check(0, 9, read, |i| e.get(i), || (0, 0), || usize::MAX),
        3
    );
    assert_eq!(
        cell.check(1, 9, read, |i| e.get(i), || (0, 0), || usize::MAX),
        0,
        "a baseline of generation 0 says nothing of 1"
    );
    stripes.borrow_mut()[0] = v(0, 0);
    stripes.borrow_mut()[1] = v(1, 0);
    cell.restart(2, read, |i| e.get(i), || (0, 0), || usize::MAX);
    stripes.borrow_mut()[0] = v(0, 1);
    stripes.borrow_mut()[1] = v(1, 1);
    assert_eq!(
        cell.check(2, 9, read, |i| e.get(i), || (0, 0), || usize::MAX),
        2
    );
}

/// A Success counted on stripe 0 after the scan read it, while stripe 1's Failures were
/// still to be read (a thread descheduled mid-scan): the scan is void, not a bound of 5.
#[test]
fn a_success_counted_during_the_scan_voids_it() {
    let reads = std::cell::Cell::new(0u32);
    let view = |i: usize| {
        if i == 0 {
            reads.set(reads.get() + 1);
            // Unchanged at the first read, a Success counted before the second.
            v(u64::from(reads.get() > 1), 0)
        } else {
            v(0, 5)
        }
    };
    let cell = Baselines::new(2);
    let e = entries(2);
    assert_eq!(
        cell.check(0, 9, view, |i| e.get(i), || (0, 0), || usize::MAX),
        0,
        "without the second look: 5"
    );
    let quiet = |i: usize| if i == 0 { v(0, 0) } else { v(0, 5) };
    assert_eq!(
        cell.check(0, 9, quiet, |i| e.get(i), || (0, 0), || usize::MAX),
        5,
        "no Success at all: the runs count"
    );
}

#[test]
fn a_check_that_finds_the_writer_flag_taken_still_decides() {
    let stripes = [v(0, 4), v(0, 0)];
    let cell = Baselines::new(2);
    let e = entries(2);
    cell.writer.store(1, Ordering::Relaxed);
    assert_eq!(
        cell.check(0, 9, |i| stripes[i], |i| e.get(i), || (0, 0), || usize::MAX),
        4
    );
    assert_eq!(
        cell.check(0, 9, |i| stripes[i], |i| e.get(i), || (0, 0), || usize::MAX),
        4,
        "nothing renewed, same answer"
    );
    cell.writer.store(0, Ordering::Relaxed);
    assert_eq!(
        cell.check(0, 9, |i| stripes[i], |i| e.get(i), || (0, 0), || usize::MAX),
        4
    );
    assert_eq!(
        cell.check(0, 9, |i| stripes[i], |i| e.get(i), || (0, 0), || usize::MAX),
        4,
        "renewed: no growth since"
    );
}

/// A stripe whose thread had not called when the baseline was renewed has no entry: it reads
/// as nothing counted, and once its lines arrive (with a new entry) its first Success since
/// still ends the run.
#[test]
fn a_stripe_that_gets_its_lines_after_a_renewal_reads_as_nothing_counted_before() {
    let stripes = RefCell::new([v(0, 2), v(0, 0)]);
    let cell = Baselines::new(2);
    let e = entries(2);
    let arrived = std::cell::Cell::new(false);
    let entry = |i: usize| (i == 0 || arrived.get()).then(|| &e[i]);
    let read = |i: usize| stripes.borrow()[i];
    assert_eq!(
        cell.check(0, 9, read, entry, || (0, 0), || usize::MAX),
        2,
        "renewed without stripe 1"
    );
    assert!(
        e[1].is_new(),
        "no entry written for a stripe without its lines"
    );
    arrived.set(true);
    stripes.borrow_mut()[1] = v(1, 0);
    stripes.borrow_mut()[0] = v(0, 3);
    assert_eq!(
        cell.check(0, 9, read, entry, || (0, 0), || usize::MAX),
        0,
        "its Success came after the renewal"
    );
    stripes.borrow_mut()[1] = v(1, 0);
    stripes.borrow_mut()[0] = v(0, 4);
    assert_eq!(
        cell.check(0, 9, read, entry, || (0, 0), || usize::MAX),
        1,
        "the renewal that saw its Success wrote its entry: only stripe 0's Failure since counts"
    );
}

/// A check reads only the stripes its reach says may have lines: a breaker of 256 stripes that
/// two threads call costs two stripes' reads, not 256.
#[test]
fn a_check_reads_only_the_stripes_within_its_reach() {
    let cell = Baselines::new(MAX_STRIPES);
    let e = entries(MAX_STRIPES);
    let reads = std::cell::Cell::new(0usize);
    let read = |i: usize| {
        reads.set(reads.get() + 1);
        assert!(i < 2, "stripe {i} is past the reach");
        v(0, 2)
    };
    assert_eq!(cell.check(0, 9, read, |i| e.get(i), || (0, 0), || 2), 4);
    // The scan and the second look at the Success counts: two reads per stripe.
    assert_eq!(reads.get(), 4);
}

/// A stripe that gets its lines while a check scans, past the part of the reach it scanned,
/// and counts a Success: the second look reads the reach again and sees it, so the scan
/// proves nothing. Without that, the run would count stripe 0's Failures across a Success.
#[test]
fn a_success_on_a_stripe_that_arrived_past_the_scanned_reach_voids_the_check() {
    let cell = Baselines::new(4);
    let e = entries(4);
    let arrived = std::cell::Cell::new(false);
    let read = |i: usize| match i {
        0 => {
            arrived.set(true); // stripe 1 takes its lines and succeeds during the scan
            v(0, 3)
        }
        _ if arrived.get() => v(1, 0),
        _ => v(0, 0),
    };
    let reach = || if arrived.get() { 2 } else { 1 };
    assert_eq!(cell.check(0, 9, read, |i| e.get(i), || (0, 0), reach), 0);
}

/// A Failure counted during a renewing scan on a stripe already read, then a Success on a
/// stripe read later: the Success is in the baseline, the Failure came before it. The entries
/// hold the runs as the second look read them, so that Failure is not counted as growth after
/// the renewal; from the first reads' runs, the next check would count it across the Success.
#[test]
fn a_failure_counted_during_a_renewing_scan_before_a_later_success_is_not_growth() {
    // Stripes 0 and 1: two other threads; stripe 2: the checking thread. All succeeded.
    let stripes = RefCell::new([v(5, 0), v(5, 0), v(6, 3)]);
    let armed = std::cell::Cell::new(true);
    let read = |i: usize| {
        if i == 1 && armed.replace(false) {
            // After the scan read stripe 0: a Failure there, then a Success on stripe 1.
            stripes.borrow_mut()[0] = v(5, 1);
            stripes.borrow_mut()[1] = v(6, 0);
        }
        stripes.borrow()[i]
    };
    let cell = Baselines::new(3);
    let e = entries(3);
    // The third Failure in a row: bound 0 (stripe 1 succeeded), a renewal.
    assert_eq!(
        cell.check(0, 3, read, |i| e.get(i), || (0, 0), || usize::MAX),
        0
    );
    // One more Failure of the checking thread. In the order outcomes were counted: its three
    // Failures, stripe 0's, stripe 1's Success, then this one: a run of 1.
    stripes.borrow_mut()[2] = v(6, 4);
    assert_eq!(
        cell.check(0, 4, read, |i| e.get(i), || (0, 0), || usize::MAX),
        1,
        "stripe 0's Failure came before stripe 1's Success"
    );
}

/// A check reads into a buffer sized to the stripes that may have lines when it starts (16, 64
/// or all). Stripes past it that get their lines during the check make it prove nothing: bound
/// 0, no renewal. A breaker with more stripes than 64 is read whole.
#[test]
fn a_reach_that_outgrows_the_checks_buffer_voids_it_and_a_large_one_is_read_whole() {
    let cell = Baselines::new(100);
    let e = entries(100);
    let calls = std::cell::Cell::new(0u32);
    // 16 at the size choice, then 17: a 17th stripe got its lines.
    let reach = || {
        calls.set(calls.get() + 1);
        if calls.get() == 1 { 16 } else { 17 }
    };
    let read = |_: usize| v(0, 3);
    assert_eq!(cell.check(0, 9, read, |i| e.get(i), || (0, 0), reach), 0);
    assert!(e.iter().all(BaselineEntry::is_new), "nothing renewed");
    for stripes in [16usize, 64, 100] {
        let cell = Baselines::new(stripes);
        let e = entries(stripes);
        let bound = cell.check(0, 9, read, |i| e.get(i), || (0, 0), || stripes);
        assert_eq!(
            bound,
            3 * stripes as u64,
            "{stripes} stripes, every run counted"
        );
    }
}

/// The stamps' bound as a pure function, with stamps past 2^32: a run that started after every
/// other stripe's latest Success counts whole (its own stripe's Success came before it), one
/// that started before counts its latest Failure if that is later, equal stamps order nothing,
/// `shared_at` is a floor, a Success on a stripe without stamps voids it, and a stripe without
/// stamps is left out.
#[test]
fn the_stamps_bound_counts_failures_after_every_other_stripes_latest_success() {
    let s = |successes, run, last_success_at, run_start_at, last_failure_at| RunView {
        successes,
        run,
        last_success_at,
        run_start_at,
        last_failure_at,
        ..RunView::default()
    };
    let big = 1u64 << 32;
    let now = [
        s(5, 3, big + 10, big + 11, big + 13),
        s(2, 2, big + 5, big + 12, big + 14),
    ];
    assert_eq!(after_every_success(0, false, &now), 5);
    let now = [s(5, 3, big + 10, big + 4, big + 13), s(2, 0, big + 8, 0, 0)];
    assert_eq!(after_every_success(0, false, &now), 1);
    let now = [s(5, 3, big, big + 1, big + 2), s(2, 0, big + 2, 0, 0)];
    assert_eq!(after_every_success(0, false, &now), 0, "equal stamps");
    let one = [s(1, 4, big, big + 50, big + 60)];
    assert_eq!(after_every_success(big + 100, false, &one), 0, "shared_at");
    assert_eq!(after_every_success(0, true, &one), 0, "a shared Success");
    let now = [s(9, 2, UNKNOWN_START, UNKNOWN_START, 0), s(1, 2, 0, 5, 6)];
    assert_eq!(after_every_success(0, false, &now), 2);
    assert_eq!(after_every_success(0, false, &[]), 0);
}
