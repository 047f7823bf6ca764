//! The time window over its stripes: what a decision and a report read, across rotations,
//! generations, late writers and long idle gaps.

use super::counters::{BucketKind, LINE};
use super::*;
use crate::sync::AtomicU128;
use crossbeam_utils::CachePadded;

const MS: u64 = 1_000_000;
const S: Sample = Sample::SUCCESS;
const F: Sample = Sample::FAILURE;

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
                for slot in 0..ring {
                    assert!(st.word(stripe, BucketKind::Slow, slot).is_none());
                }
                for kind in [BucketKind::Success, BucketKind::Failure] {
                    for slot in 0..ring {
                        let c = st.cell(stripe, kind, slot) as *const AtomicU128 as usize;
                        let line_no = (c - base) / line;
                        assert!(line_no < st.lines.len());
                        assert_eq!(line_no / (st.cells_per_stripe() / LINE), stripe);
                        assert!(seen.insert(c), "aliased cell {stripe} {kind:?} {slot}");
                    }
                }
            }
            // The slow-call rings, once a slow-call rule asks for them: a stripe's on lines of
            // its own, apart from every other word.
            st.prepare_slow();
            let mut owner = std::collections::HashMap::new();
            for stripe in 0..st.shared() {
                for slot in 0..ring {
                    let word = st.word(stripe, BucketKind::Slow, slot).expect("prepared");
                    let c = word as *const AtomicU128 as usize;
                    assert!(seen.insert(c), "aliased slow word {stripe} {slot}");
                    let line_no = c / line;
                    assert_eq!(
                        *owner.entry(line_no).or_insert(stripe),
                        stripe,
                        "shared line"
                    );
                    assert!(
                        c < base || c >= base + st.lines.len() * line,
                        "inside `lines`"
                    );
                }
            }
        }
    }
}

fn window(width_ns: u64, buckets: u32, stripes: usize) -> (TimeRing, Stripes) {
    let s = Stripes::new(stripes, buckets, 0);
    s.owned().claim_all();
    s.prepare_throttle();
    s.prepare_slow();
    (TimeRing::new(width_ns, buckets), s)
}

#[test]
fn the_default_window_takes_five_line_pairs_for_the_first_caller_and_six_for_each_other() {
    let s = Stripes::new(8, 10, 0);
    // Shared (one for 8 owned): a line of totals and 2 rings of 11 words of 16 bytes, in 3
    // lines. Owned: nothing until a thread calls.
    let idle = 128 + 3 * 128;
    assert_eq!(s.heap_bytes(), idle);
    // The slow-call ring, 11 words in 2 lines (and the 16-byte pointer to them), once a
    // slow-call rule is configured.
    s.prepare_slow();
    s.prepare_slow();
    let idle = idle + 16 + 2 * 128;
    assert_eq!(s.heap_bytes(), idle);
    // The throttled and answered rings, 11 words each (and the pointer to them), once a
    // throttle is configured.
    s.prepare_throttle();
    s.prepare_throttle();
    let idle = idle + 16 + 2 * 11 * 16;
    assert_eq!(s.heap_bytes(), idle);
    // The first caller's tail, in the breaker's home cell (its head line is the breaker's):
    // the marks' pointer and the baseline entry, padded to a line, and 11 marks of 40 bytes,
    // three to a line.
    assert!(s.owned().claim(0), "a build leaves a tail in the reserve");
    let home = 128 + 4 * 128;
    assert_eq!(s.heap_bytes(), idle + home);
    // The others' blocks, a head line more each, in cells of a chunk of 16 (280 bytes).
    s.owned().claim_all();
    assert_eq!(s.heap_bytes(), idle + home + 7 * (256 + 4 * 128) + 280);
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
        0 => CallerStripe::Shared(next(s.shared() as u64) as usize),
        _ => CallerStripe::Owned(next(s.owned().count() as u64) as usize),
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
fn for_both(test: impl Fn(CallerStripe)) {
    test(CallerStripe::Owned(0));
    test(CallerStripe::Shared(0));
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
        w.record_as(&s, wr, 0, 11_500 * MS, F, true); // ring of 11: rotates slot 0, folds its two failures
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
                CallerStripe::Owned(i) => {
                    s.owned().head(i as u32).unwrap().try_success(0, 0, 0, || 0)
                }
                CallerStripe::Shared(i) => w.try_add_success(&s, i, 0, 0),
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
        // 2^16 and 2^17 laps of a ring of 11, and a multiple of 2^32 intervals later.
        for idle in [11u64 << 16, 11 << 17, 1 << 32, 3 << 32] {
            assert_eq!(w.stats(&s, 0, idle * 1_000 * MS).calls, 0, "{idle}");
        }
    });
}

/// 10 buckets of 1 s: 100 Successes and 60 Failures in the first one, by `wr`.
fn oldest_bucket_of_160_calls(wr: CallerStripe) -> (TimeRing, Stripes) {
    let (w, s) = window(1_000 * MS, 10, 1);
    for _ in 0..100 {
        w.record_as(&s, wr, 0, 0, S, true);
    }
    for _ in 0..60 {
        w.record_as(&s, wr, 0, 0, F, true);
    }
    (w, s)
}

#[test]
fn a_reader_one_interval_behind_a_writer_sees_its_oldest_bucket_whole() {
    for_both(|wr| {
        let (w, s) = oldest_bucket_of_160_calls(wr);
        let before = w.stats(&s, 0, 9_999 * MS);
        assert_eq!((before.calls, before.failures), (160, 60));
        // Another thread crosses into the next interval: its Success starts that bucket. A
        // reader whose time is still in the last one must see the same window, not one whose
        // oldest bucket lost its Successes but kept its Failures.
        w.record_as(&s, wr, 0, 10_000 * MS, S, true);
        let lagging = w.stats(&s, 0, 9_999 * MS);
        assert_eq!((lagging.calls, lagging.failures), (160, 60));
        assert_eq!(w.stats(&s, 0, 10_000 * MS).calls, 1);
    });
}

#[test]
fn a_reader_two_intervals_behind_drops_its_oldest_bucket_whole() {
    for_both(|wr| {
        let (w, s) = oldest_bucket_of_160_calls(wr);
        // A writer two intervals past the window's newest starts the bucket in the oldest
        // bucket's slot: a reader still at 9.999 s counts that bucket whole or not at all.
        w.record_as(&s, wr, 0, 11_000 * MS, S, true);
        let lagging = w.stats(&s, 0, 9_999 * MS);
        assert!(
            matches!((lagging.calls, lagging.failures), (160, 60) | (0, 0)),
            "{wr:?}: {lagging:?}"
        );
    });
}

/// The slow-call ring of a shared stripe exists only once a slow-call rule asks for it: until
/// then the window reads no slow calls and holds no slow-call ring; from then on a slow call on a
/// shared stripe is in the window like any other, across a rotation.
#[test]
fn a_shared_stripes_slow_ring_arrives_with_the_rule() {
    let slow = Sample {
        failure: false,
        slow: true,
    };
    let s = Stripes::new(1, 10, 0);
    let w = TimeRing::new(1_000 * MS, 10);
    let shared = CallerStripe::Shared(0);
    w.record_as(&s, shared, 0, 100 * MS, S, true);
    assert_eq!(w.stats(&s, 0, 200 * MS).slow, 0);
    s.prepare_slow();
    w.record_as(&s, shared, 0, 300 * MS, slow, true);
    w.record_as(&s, shared, 0, 1_300 * MS, slow, true);
    let stats = w.stats(&s, 0, 1_400 * MS);
    assert_eq!((stats.calls, stats.slow), (3, 2));
    // Eleven seconds on, the same slot: the first slow call is folded into the lifetime total.
    w.record_as(&s, shared, 0, 11_300 * MS, slow, true);
    assert_eq!(w.stats(&s, 0, 11_400 * MS).slow, 1);
    assert_eq!(s.total(Total::Slow), 3);
}
