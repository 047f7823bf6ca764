use super::*;

fn counts(calls: u64, failures: u64, slow: u64) -> Counts {
    Counts {
        calls,
        failures,
        slow,
    }
}

fn observed(calls: u64, failures: u64, state: State, generation: u64) -> Observed {
    Observed {
        totals: counts(calls, failures, 0),
        state,
        generation,
    }
}

#[test]
fn buckets_come_from_wall_clock_time_and_keys_share_a_hash_tag() {
    assert_eq!(bucket_of(1_763_955_000_999, 1_000), 1_763_955_000);
    assert_eq!(bucket_of(1_763_955_001_000, 1_000), 1_763_955_001);
    assert_eq!(bucket_of(5, 0), 5, "a zero width is treated as 1 ms");
    assert_eq!(key("hb", "payments", 1000, 17), "hb:{payments}:1000:17");
    let rule = FleetRule::failure_rate(0.5);
    assert_eq!(ttl_ms(&rule), 12_000);
}

#[test]
fn the_window_reads_the_last_buckets_but_none_before_the_last_close() {
    assert_eq!(window(100, 10, 0), 91..=100);
    assert_eq!(window(100, 10, 95), 95..=100);
    assert_eq!(window(3, 10, 0), 0..=3, "near zero: no underflow");
    assert_eq!(window(100, 0, 0), 100..=100);
    // A close in bucket 100 makes `since` 101: until bucket 101 starts, nothing is read.
    assert!(window(100, 10, 101).is_empty());
}

/// Clock skew: an instance whose clock runs 20 s ahead writes into buckets 20 ahead,
/// which an instance reading a 10-bucket window never reads: a skewed instance's calls are
/// lost to the fleet, never counted twice or in the wrong place.
#[test]
fn a_skewed_writer_lands_outside_the_readers_window() {
    let width = 1_000;
    let reader_now = 1_763_955_000_000;
    let skewed = bucket_of(reader_now + 20_000, width);
    assert!(!window(bucket_of(reader_now, width), 10, 0).contains(&skewed));
    let slight = bucket_of(reader_now + 300, width);
    assert!(window(bucket_of(reader_now + 1_000, width), 10, 0).contains(&slight));
}

#[test]
fn deltas_are_differences_of_lifetime_totals_and_the_first_sight_is_a_baseline() {
    let mut t = Tracker::default();
    let name: Arc<str> = Arc::from("db");
    assert_eq!(
        t.observe(&name, observed(1_000, 10, State::Closed, 0), 50, true),
        (Counts::default(), 0)
    );
    assert_eq!(
        t.observe(&name, observed(1_500, 60, State::Closed, 0), 51, true),
        (counts(500, 50, 0), 0)
    );
    // Opened (generation 1), then closed again (generation 3): the fleet window restarts
    // after the bucket of the close.
    assert_eq!(
        t.observe(&name, observed(1_510, 70, State::Open, 1), 52, true)
            .1,
        0
    );
    assert_eq!(
        t.observe(&name, observed(1_511, 70, State::Closed, 3), 60, true),
        (counts(1, 0, 0), 61)
    );
    assert_eq!(
        t.observe(&name, observed(1_511, 70, State::Closed, 3), 70, true)
            .1,
        61
    );
    // Totals that went backwards (cannot happen) give no delta rather than a huge one.
    assert_eq!(
        t.observe(&name, observed(5, 0, State::Closed, 3), 71, true)
            .0,
        Counts::default()
    );
}

#[test]
fn the_queue_merges_bounds_and_expires_counting_what_it_drops() {
    let rule = FleetRule::failure_rate(0.5).window(std::time::Duration::from_secs(10), 10);
    let (a, b): (Arc<str>, Arc<str>) = (Arc::from("a"), Arc::from("b"));
    let mut q = Queue::new(2);
    q.add(&a, 100, &rule, counts(1, 1, 0));
    q.add(&a, 100, &rule, counts(2, 0, 1));
    q.add(&a, 101, &rule, Counts::default());
    assert_eq!(q.len(), 1, "merged, and a zero delta adds nothing");
    let taken = q.take_all();
    assert_eq!(taken.len(), 1);
    assert_eq!(taken[0].2.counts, counts(3, 1, 1));
    for (name, bucket, pending) in taken {
        q.restore(name, bucket, pending);
    }
    assert_eq!(q.len(), 1, "restored");
    q.add(&b, 101, &rule, counts(1, 0, 0));
    q.add(&a, 102, &rule, counts(1, 0, 0));
    assert_eq!(
        (q.len(), q.dropped()),
        (3, 0),
        "one flush's deltas, all kept"
    );
    q.bound();
    assert_eq!(
        (q.len(), q.dropped()),
        (2, 1),
        "left to wait: the oldest bucket was evicted"
    );
    let taken = q.take_all();
    assert!(taken.iter().all(|(_, bucket, _)| *bucket != 100));
    for (name, bucket, pending) in taken {
        q.restore(name, bucket, pending);
    }
    // Bucket 101 (ms 101 000..102 000) leaves a 10 s window at 112 000.
    q.expire(111_999);
    assert_eq!(q.len(), 2);
    q.expire(112_000);
    assert_eq!((q.len(), q.dropped()), (1, 2));
    // A flush takes the last entry; its pipeline fails after it may have been applied.
    let lost = q.take_all().len();
    q.count_dropped(lost);
    assert_eq!((q.len(), q.dropped()), (0, 3));
    q.add(&a, 200, &rule, counts(1, 0, 0));
    q.take_all(); // written
    assert_eq!((q.len(), q.dropped()), (0, 3), "written, not dropped");
    // An entry put back merges with one added since.
    q.add(&a, 300, &rule, counts(1, 0, 0));
    let taken = q.take_all();
    q.add(&a, 300, &rule, counts(2, 1, 0));
    for (name, bucket, pending) in taken {
        q.restore(name, bucket, pending);
    }
    assert_eq!(q.take_all()[0].2.counts, counts(3, 1, 0));
}

#[test]
fn only_newer_generations_from_a_sender_are_fresh() {
    let now = Instant::now();
    let mut d = Dedup::new(3, None);
    assert!(d.fresh("db", "i1", 5, now));
    assert!(!d.fresh("db", "i1", 5, now), "duplicate");
    assert!(!d.fresh("db", "i1", 4, now), "older, arriving late");
    assert!(d.fresh("db", "i1", 7, now));
    assert!(
        d.fresh("db", "i2", 1, now),
        "another sender has its own generations"
    );
    assert!(d.fresh("cache", "i1", 1, now), "another breaker too");
    // Full: cleared, still bounded.
    assert!(d.fresh("x", "i3", 1, now));
    assert!(d.last.len() <= 3);
}

/// With signed messages, a full table lets go of the pairs heard longest ago (past the
/// replay window a replay is refused anyway) and keeps the recent ones, whose replays stay
/// duplicates.
#[test]
fn a_full_table_lets_go_of_old_pairs_first() {
    let t0 = Instant::now();
    let s = Duration::from_secs;
    let mut d = Dedup::new(3, Some(s(20)));
    assert!(d.fresh("a", "p", 1, t0));
    assert!(d.fresh("b", "p", 1, t0 + s(25)));
    assert!(d.fresh("c", "p", 1, t0 + s(30)));
    // Full at 40 s: `a` (40 s old) goes; `b` and `c` (15 and 10 s) stay.
    assert!(d.fresh("d", "p", 1, t0 + s(40)));
    assert!(!d.fresh("b", "p", 1, t0 + s(40)), "still a duplicate");
    assert!(!d.fresh("c", "p", 1, t0 + s(40)), "still a duplicate");
    assert_eq!(d.last.len(), 3);
    // All recent: cleared as a last resort, still bounded.
    assert!(d.fresh("e", "p", 1, t0 + s(41)));
    assert!(d.last.len() <= 3);
}

/// A wall clock set back (an NTP step, a VM resumed) after a close: the close is in the
/// past whatever the clock now says, so the fleet window opens again one bucket later, not
/// when the clock catches up with the bucket of the close.
#[test]
fn a_clock_set_back_after_a_close_does_not_blind_the_fleet_window() {
    let mut t = Tracker::default();
    let name: Arc<str> = Arc::from("db");
    t.observe(&name, observed(100, 0, State::Closed, 0), 5_000, true);
    t.observe(&name, observed(110, 10, State::Open, 1), 5_001, true);
    let (_, since) = t.observe(&name, observed(111, 10, State::Closed, 3), 5_002, true);
    assert_eq!(since, 5_003);
    // An hour back (3 600 buckets of 1 s).
    let (_, since) = t.observe(&name, observed(120, 10, State::Closed, 3), 1_403, true);
    assert!(since <= 1_404, "blind until bucket {since}");
    let (_, since) = t.observe(&name, observed(130, 10, State::Closed, 3), 1_410, true);
    assert!(!window(1_410, 10, since).is_empty());
}
