use super::*;
use crate::fleet::rule::{Counts, FleetRule};
use crate::state::State;

/// Flushes at `now_ms` until one lists a read (an idle breaker is looked at in its turn,
/// within [`IDLE_EVERY`] flushes); the reads, or none after that many.
fn until_read(
    shared: &Shared,
    scan: &mut Scan,
    tracker: &mut Tracker,
    queue: &mut Queue,
    now_ms: u64,
) -> Vec<Read> {
    for _ in 0..IDLE_EVERY {
        let reads = collect(shared, scan, tracker, queue, now_ms);
        if !reads.is_empty() {
            return reads;
        }
    }
    Vec::new()
}

fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

#[test]
fn bucket_replies_are_parsed_strictly() {
    let ok = Value::Array(vec![bulk("120"), Value::Nil, Value::Int(3)]);
    assert_eq!(
        bucket_counts(&ok),
        Some(Counts {
            calls: 120,
            failures: 0,
            slow: 3
        })
    );
    for garbage in [
        Value::Nil,
        Value::Int(5),
        bulk("12"),
        Value::Array(vec![bulk("1"), bulk("2")]),
        Value::Array(vec![bulk("-1"), Value::Nil, Value::Nil]),
        Value::Array(vec![Value::Int(-1), Value::Nil, Value::Nil]),
        Value::Array(vec![
            bulk("99999999999999999999999"),
            Value::Nil,
            Value::Nil,
        ]),
        Value::Array(vec![bulk("1e3"), Value::Nil, Value::Nil]),
        Value::Array(vec![bulk(""), Value::Nil, Value::Nil]),
        Value::Array(vec![Value::Array(vec![]), Value::Nil, Value::Nil]),
    ] {
        assert_eq!(bucket_counts(&garbage), None, "{garbage:?}");
    }
}

/// The fleet's totals come back a round trip after the flush read the breaker. If the
/// breaker closed again meanwhile (its own probe succeeded, or `reset()`), those totals
/// are of the window before the close, which the fleet window no longer reads (see
/// `Tracker::observe`): they must not trip the freshly closed breaker.
#[test]
fn totals_read_before_a_close_never_trip_the_breaker_after_it() {
    use crate::config::Config;
    use crate::fleet::FleetOptions;
    use crate::registry::Registry;
    use std::time::Duration;

    let (clock, mock) = quanta::Clock::mock();
    mock.increment(Duration::from_secs(1));
    let config = Config {
        consecutive_failures: Some(1),
        open_timeout: Some(Duration::from_secs(1)),
        half_open_permits: Some(1),
        half_open_successes: Some(1),
        ..Config::default()
    };
    let rule = FleetRule::failure_rate(0.5)
        .minimum_calls(1)
        .window(Duration::from_secs(1), 1);
    let shared = Shared::new(
        FleetOptions::new("redis://127.0.0.1:1", "checkout").default_rule(rule),
        "me".into(),
        Arc::new(Registry::new(config).unwrap().clock(clock)),
        Arc::default(),
    );
    let b = shared.registry.get_or_create("db");
    let (mut tracker, mut queue) = (Tracker::default(), Queue::new(16));
    let mut scan = Scan::default();
    let reads = collect(&shared, &mut scan, &mut tracker, &mut queue, 5_000);
    assert!(reads.is_empty(), "no call from here yet: idle, not read");
    b.try_acquire().unwrap().success();
    let reads = until_read(&shared, &mut scan, &mut tracker, &mut queue, 5_000);
    assert_eq!(reads.len(), 1, "Closed and called: its window is read");
    // The fleet's answer: 10 calls, all failed.
    let failing = Value::Array(vec![bulk("10"), bulk("10"), Value::Nil]);

    // Meanwhile the breaker trips and closes again on its own probe.
    b.try_acquire().unwrap().failure();
    mock.increment(Duration::from_secs(1));
    b.try_acquire().unwrap().success();
    assert_eq!(b.state(), State::Closed);
    evaluate(
        &shared,
        &mut tracker,
        &reads,
        std::slice::from_ref(&failing),
        5_000,
    );
    assert_eq!(
        b.state(),
        State::Closed,
        "tripped on the window before its close"
    );

    // Read afresh while Closed, from the bucket after the close on, the same answer
    // trips it.
    collect(&shared, &mut scan, &mut tracker, &mut queue, 5_000);
    b.try_acquire().unwrap().success(); // still in use: read
    let reads = collect(&shared, &mut scan, &mut tracker, &mut queue, 6_000);
    assert_eq!(reads[0].buckets, [6]);
    evaluate(&shared, &mut tracker, &reads, &[failing], 6_000);
    assert_eq!(b.state(), State::Open);
}

/// Every write and read lands in exactly one part, in order; no part holds more than the
/// bound unless a single unit does; a breaker's reads are never split.
#[test]
fn a_flush_is_split_into_bounded_pipelines() {
    assert_eq!(
        plan(&[], &[], 10),
        [Part {
            writes: 0..0,
            reads: 0..0
        }],
        "the clock and heartbeat go even with nothing else"
    );
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    let mut next = |m: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % m) as usize
    };
    for _ in 0..2_000 {
        let max = 1 + next(40);
        let writes: Vec<usize> = (0..next(60)).map(|_| 1 + next(4)).collect();
        let reads: Vec<usize> = (0..next(60)).map(|_| next(12)).collect();
        let parts = plan(&writes, &reads, max);
        let (mut w, mut r) = (0, 0);
        for part in &parts {
            assert_eq!(part.writes.start, w, "{parts:?}");
            assert_eq!(part.reads.start, r, "{parts:?}");
            let size: usize = writes[part.writes.clone()].iter().sum::<usize>()
                + reads[part.reads.clone()].iter().sum::<usize>();
            let units = part.writes.len() + part.reads.len();
            assert!(size <= max || units == 1, "{size} > {max} in {parts:?}");
            (w, r) = (part.writes.end, part.reads.end);
        }
        assert_eq!((w, r), (writes.len(), reads.len()), "everything sent once");
    }
    // 10 000 busy breakers of a 10-bucket window, two of which are read.
    let parts = plan(&[2; 10_000], &[2; 10_000], MAX_PIPELINE);
    assert_eq!(parts.len(), 40_000usize.div_ceil(MAX_PIPELINE));
}

/// A breaker is read only while this instance calls it: idle ones cost no `HMGET`, and
/// the buckets that are final are read once.
#[test]
fn idle_breakers_are_not_read_and_final_buckets_are_read_once() {
    use crate::fleet::FleetOptions;
    use crate::registry::Registry;
    use std::time::Duration;

    let rule = FleetRule::failure_rate(0.5).window(Duration::from_secs(10), 10);
    let shared = Shared::new(
        FleetOptions::new("redis://127.0.0.1:1", "checkout").default_rule(rule),
        "me".into(),
        Arc::new(Registry::default()),
        Arc::default(),
    );
    let busy = shared.registry.get_or_create("busy");
    for i in 0..1_000 {
        shared.registry.get_or_create(&format!("idle-{i}"));
    }
    let (mut tracker, mut queue) = (Tracker::default(), Queue::new(16));
    let mut scan = Scan::default();
    assert!(collect(&shared, &mut scan, &mut tracker, &mut queue, 100_000).is_empty());
    busy.try_acquire().unwrap().success();
    let reads = until_read(&shared, &mut scan, &mut tracker, &mut queue, 100_000);
    assert_eq!(reads.len(), 1, "only the breaker called from here");
    assert_eq!(reads[0].buckets, (91..=100).collect::<Vec<_>>());
    let empty = Value::Array(vec![bulk("4"), bulk("1"), Value::Nil]);
    let replies = vec![empty; 10];
    evaluate(&shared, &mut tracker, &reads, &replies, 100_000);
    // Buckets ending 1.7 s (twice the 100 ms interval, the 500 ms timeout, and at least a
    // width: 1 s) before now are final: up to bucket 98 at 100 000 ms.
    let reads = collect(&shared, &mut scan, &mut tracker, &mut queue, 100_100);
    assert_eq!(reads[0].buckets, [99, 100]);
    assert_eq!(reads[0].known.calls, 4 * 8);
    // Idle for a whole window: not read, and what it held is forgotten.
    assert!(collect(&shared, &mut scan, &mut tracker, &mut queue, 111_000).is_empty());
    busy.try_acquire().unwrap().success();
    let reads = until_read(&shared, &mut scan, &mut tracker, &mut queue, 111_100);
    assert_eq!(reads[0].buckets.len(), 10, "read whole again");
    // A bucket's expiry is set by its first write from here only.
    assert!(tracker.needs_expiry("busy", 111));
    tracker.expiry_set("busy", 111);
    assert!(!tracker.needs_expiry("busy", 111));
    assert!(
        tracker.needs_expiry("busy", 110),
        "an older bucket, first written late (after a clock step back, or put back after a \
         failed flush), is a bucket of its own"
    );
    assert!(tracker.needs_expiry("busy", 112));
    for b in 200..220 {
        tracker.expiry_set("busy", b);
    }
    assert!(!tracker.needs_expiry("busy", 219));
    assert!(
        tracker.needs_expiry("busy", 200),
        "only the last few are remembered"
    );
}

/// A registry of idle breakers costs a tenth of a scan per flush, each breaker in its
/// turn; one called again is found within [`IDLE_EVERY`] flushes, and then looked at every
/// flush; one created after the first scan has its calls counted from its creation.
#[test]
fn idle_breakers_are_looked_at_in_turn() {
    use crate::fleet::FleetOptions;
    use crate::registry::Registry;

    let shared = Shared::new(
        FleetOptions::new("redis://127.0.0.1:1", "checkout")
            .default_rule(FleetRule::failure_rate(0.5)),
        "me".into(),
        Arc::new(Registry::default()),
        Arc::default(),
    );
    for i in 0..10_000 {
        shared.registry.get_or_create(&format!("idle-{i}"));
    }
    let (mut tracker, mut queue) = (Tracker::default(), Queue::new(16));
    let mut scan = Scan::default();
    collect(&shared, &mut scan, &mut tracker, &mut queue, 5_000);
    assert_eq!(scan.looked, 10_000, "the first scan sees every breaker");
    let mut looked = 0;
    for _ in 0..IDLE_EVERY {
        collect(&shared, &mut scan, &mut tracker, &mut queue, 5_000);
        assert!(
            (500..=1_500).contains(&scan.looked),
            "about a tenth per flush: {}",
            scan.looked
        );
        looked += scan.looked;
    }
    assert_eq!(looked, 10_000, "each exactly once in IDLE_EVERY flushes");

    // Created after the first scan, called at once: its calls are its first delta.
    let late = shared.registry.get_or_create("late");
    for i in 0..7 {
        let permit = late.try_acquire().unwrap();
        if i % 2 == 0 {
            permit.failure();
        } else {
            permit.success();
        }
    }
    let reads = until_read(&shared, &mut scan, &mut tracker, &mut queue, 5_100);
    assert_eq!(reads.len(), 1);
    let written = queue.take_all();
    assert_eq!(written.len(), 1);
    assert_eq!(
        (written[0].2.counts.calls, written[0].2.counts.failures),
        (7, 4)
    );
    // Active now: looked at every flush.
    for _ in 0..3 {
        assert_eq!(
            collect(&shared, &mut scan, &mut tracker, &mut queue, 5_200).len(),
            1
        );
    }
}

/// Redis's clock steps back 5 s: the buckets held as final on the old reading that are
/// current or ahead on the new one are read afresh, not answered from what was held.
#[test]
fn held_buckets_are_dropped_when_the_fleet_clock_steps_back() {
    use crate::fleet::FleetOptions;
    use crate::registry::Registry;
    use std::time::Duration;

    let rule = FleetRule::failure_rate(0.5)
        .minimum_calls(10)
        .window(Duration::from_secs(10), 10);
    let shared = Shared::new(
        FleetOptions::new("redis://127.0.0.1:1", "checkout").default_rule(rule),
        "me".into(),
        Arc::new(Registry::default()),
        Arc::default(),
    );
    let busy = shared.registry.get_or_create("busy");
    let (mut tracker, mut queue) = (Tracker::default(), Queue::new(16));
    let mut scan = Scan::default();
    collect(&shared, &mut scan, &mut tracker, &mut queue, 100_000);
    busy.try_acquire().unwrap().success();
    let reads = until_read(&shared, &mut scan, &mut tracker, &mut queue, 100_000);
    let healthy = Value::Array(vec![bulk("10"), Value::Nil, Value::Nil]);
    evaluate(&shared, &mut tracker, &reads, &vec![healthy; 10], 100_000);
    assert_eq!(busy.state(), State::Closed);
    busy.try_acquire().unwrap().success();
    let reads = collect(&shared, &mut scan, &mut tracker, &mut queue, 95_000);
    // Held: 91 to 93, final on either reading (the same keys in Redis). Read: the rest of
    // the window, 94 and 95 among them, which were held as final before the step.
    assert_eq!(reads[0].buckets, [86, 87, 88, 89, 90, 94, 95]);
    let failing = Value::Array(vec![bulk("100"), bulk("100"), Value::Nil]);
    let empty = Value::Array(vec![Value::Nil, Value::Nil, Value::Nil]);
    let replies: Vec<Value> = reads[0]
        .buckets
        .iter()
        .map(|&b| {
            if b >= 94 {
                failing.clone()
            } else {
                empty.clone()
            }
        })
        .collect();
    evaluate(&shared, &mut tracker, &reads, &replies, 95_000);
    assert_eq!(busy.state(), State::Open, "the fleet's failures are seen");
}

/// With Redis healthy the queue is empty before each flush, and one flush's deltas are one
/// per breaker with a rule and calls: a registry with more such breakers than
/// `queue_capacity` sends them all (the capacity bounds what waits between flushes), and
/// only what is left to wait is cut down to it.
#[test]
fn a_healthy_flush_drops_no_delta() {
    use crate::fleet::FleetOptions;
    use crate::registry::Registry;

    let rule = FleetRule::failure_rate(0.5);
    let shared = Shared::new(
        FleetOptions::new("redis://127.0.0.1:1", "checkout").default_rule(rule),
        "me".into(),
        Arc::new(Registry::default()),
        Arc::default(),
    );
    let names = ["a", "b", "c"];
    for name in names {
        shared.registry.get_or_create(name);
    }
    let (mut tracker, mut queue) = (Tracker::default(), Queue::new(2));
    let mut scan = Scan::default();
    collect(&shared, &mut scan, &mut tracker, &mut queue, 5_000); // baselines
    for name in names {
        shared
            .registry
            .get(name)
            .unwrap()
            .try_acquire()
            .unwrap()
            .failure();
    }
    for _ in 0..IDLE_EVERY {
        // Each idle breaker is looked at in its turn: all three within IDLE_EVERY flushes.
        collect(&shared, &mut scan, &mut tracker, &mut queue, 5_100);
    }
    assert_eq!((queue.len(), queue.dropped()), (3, 0), "one flush's deltas");
    queue.bound(); // Redis away: they wait
    assert_eq!((queue.len(), queue.dropped()), (2, 1));
}
