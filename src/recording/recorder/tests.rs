use super::*;

fn mocked(capacity: usize) -> (Recorder, Arc<quanta::Mock>) {
    let (clock, mock) = quanta::Clock::mock();
    (Recorder::with_clock(capacity, clock), mock)
}

#[test]
fn a_call_is_recorded_with_its_start_latency_and_outcome() {
    let (r, mock) = mocked(16);
    mock.increment(Duration::from_millis(5));
    let s = r.start();
    mock.increment(Duration::from_micros(1_500));
    r.finish(s, Recorded::Failure);
    let t = r.trace("db");
    assert_eq!(
        t.events,
        vec![Event {
            start: Duration::from_millis(5),
            latency: Duration::from_micros(1_500),
            outcome: Recorded::Failure,
            weight: 1,
        }]
    );
    assert_eq!(t.name, "db");
}

#[test]
fn the_ring_keeps_the_last_calls_and_a_fresh_ring_holds_none() {
    let (r, mock) = mocked(20); // 32 slots
    assert_eq!(r.capacity(), 32);
    assert!(r.trace("x").events.is_empty());
    for _ in 0..100 {
        mock.increment(Duration::from_micros(10));
        let s = r.start();
        r.finish(s, Recorded::Success);
    }
    let t = r.trace("x");
    assert_eq!(t.events.len(), 32);
    assert_eq!(t.events[0].start, Duration::from_micros(690));
    assert_eq!(t.events[31].start, Duration::from_micros(1_000));
    assert_eq!(r.recorded(), 100);
}

#[test]
fn a_slot_from_another_lap_or_half_written_is_skipped() {
    let (r, _mock) = mocked(16);
    for _ in 0..16 {
        let s = r.start();
        r.finish(s, Recorded::Success);
    }
    // Ticket 16 (lap 1) wrote only its first word to slot 0: neither it nor ticket 0 is
    // read from that slot.
    let (slot, lap) = r.ring.place(16);
    slot.when.store(lap, Ordering::Relaxed);
    r.ring.next.store(17, Ordering::Relaxed);
    assert_eq!(r.trace("x").events.len(), 15);
}

#[test]
fn sampling_records_about_one_in_n_each_standing_for_n() {
    let (r, _mock) = mocked(1 << 16);
    assert_eq!(r.set_sampling(0), Err(SamplingError(0)));
    assert_eq!(
        r.set_sampling(MAX_SAMPLING + 1),
        Err(SamplingError(MAX_SAMPLING + 1))
    );
    assert!(SamplingError(0).to_string().contains("1..=16383"));
    r.set_sampling(10).unwrap();
    for _ in 0..100_000 {
        let s = r.start();
        r.finish(s, Recorded::Success);
    }
    let t = r.trace("x");
    let n = t.events.len();
    assert!((9_000..11_000).contains(&n), "{n} sampled of 100 000");
    assert!(t.events.iter().all(|e| e.weight == 10));
    assert!((90_000..110_000).contains(&t.calls()));
}

#[test]
fn adaptive_sampling_follows_the_volume() {
    let (r, mock) = mocked(1 << 18);
    r.set_target_rate(10_000);
    let mut offered = 0u64;
    let burst = |r: &Recorder, per_sec: u64, secs: u64| {
        for _ in 0..per_sec * secs {
            mock.increment(Duration::from_nanos(1_000_000_000 / per_sec));
            let s = r.start();
            r.finish(s, Recorded::Success);
        }
        per_sec * secs
    };
    // 1 M calls a second for 2 s: about 1 in 100.
    offered += burst(&r, 1_000_000, 2);
    let high = r.sampling();
    assert!((70..=140).contains(&high), "1 in {high} at 1 M/s");
    // Then 20 000 a second for 10 s: back to about 1 in 2.
    offered += burst(&r, 20_000, 10);
    let low = r.sampling();
    assert!((1..=3).contains(&low), "1 in {low} at 20 000/s");
    // The weights account for every call.
    let t = r.trace("x");
    let calls = t.calls() as f64;
    assert!(
        (calls / offered as f64 - 1.0).abs() < 0.05,
        "{calls} of {offered}"
    );
    // Turned off: stays where it is.
    r.set_target_rate(0);
    burst(&r, 1_000_000, 1);
    assert_eq!(r.sampling(), low);
}

/// `n` calls `every` apart on the mock clock.
fn calls(r: &Recorder, mock: &quanta::Mock, n: u64, every: Duration) {
    for _ in 0..n {
        mock.increment(every);
        let s = r.start();
        r.finish(s, Recorded::Success);
    }
}

#[test]
fn a_target_set_after_calls_measures_from_when_it_was_set() {
    let (r, mock) = mocked(1 << 16);
    let ms = Duration::from_millis(1);
    calls(&r, &mock, 1_000, ms);
    r.set_target_rate(100);
    // The 1 024th recorded call comes 24 calls later: that look counts those 24 only.
    calls(&r, &mock, 24, ms);
    let n = r.sampling();
    assert!((8..=12).contains(&n), "1 in {n} after the first look");
    // From here calls are sampled at random: a look after a second sees about 1 000 / n
    // recorded calls of the previous sampling n (8..=12), a binomial count whose standard
    // deviation is about 10 % of it. The bounds are four of those either way.
    calls(&r, &mock, 3_000, ms);
    let n = r.sampling();
    assert!((6..=15).contains(&n), "1 in {n} at 1 000/s for 100/s");
}

#[test]
fn after_a_burst_the_sampling_comes_back_at_the_next_recorded_call() {
    let (r, mock) = mocked(1 << 16);
    r.set_target_rate(100);
    calls(&r, &mock, 2_000_000, Duration::from_micros(1));
    assert!(r.sampling() > 1_000, "1 in {} at 1 M/s", r.sampling());
    // 1 000 a second at 1 in n (n > 1 000): the first recorded call (expected after n calls,
    // all but certainly within 120 000) is a look, and sets the sampling back.
    calls(&r, &mock, 120_000, Duration::from_millis(1));
    let n = r.sampling();
    assert!((5..=20).contains(&n), "1 in {n} 120 s after the burst");
}

#[test]
fn a_stopped_clock_or_a_manual_sampling_leaves_the_sampling_alone() {
    let (r, mock) = mocked(1 << 16);
    r.set_target_rate(10);
    calls(&r, &mock, 5_000, Duration::ZERO);
    assert_eq!(r.sampling(), 1, "a stopped clock measured a rate");
    r.set_sampling(7).unwrap();
    calls(&r, &mock, 50_000, Duration::from_micros(100));
    assert_eq!(
        r.sampling(),
        7,
        "set_sampling did not turn the adaptive sampling off"
    );
}

#[test]
fn widths_saturate_at_their_horizons() {
    let (r, mock) = mocked(16);
    // 9 years idle, then a call of 2 hours.
    mock.increment(Duration::from_secs(9 * 365 * 86_400));
    let s = r.start();
    mock.increment(Duration::from_secs(7_200));
    r.finish(s, Recorded::Ignored);
    let e = r.trace("x").events[0];
    assert_eq!(e.start, Duration::from_micros(START_MASK));
    assert_eq!(e.latency, Duration::from_micros(u64::from(u32::MAX)));
    assert_eq!(e.outcome, Recorded::Ignored);
}

#[test]
fn a_stopped_clock_records_zero_latencies() {
    let (r, _mock) = mocked(16);
    let s = r.start();
    r.finish(s, Recorded::Success);
    assert_eq!(r.trace("x").events[0].latency, Duration::ZERO);
}

#[test]
fn laps_alias_only_after_2_16_laps() {
    let (r, _) = mocked(16);
    let (_, a) = r.ring.place(5);
    let (_, b) = r.ring.place(5 + 16 * 0xFFFF);
    let (_, c) = r.ring.place(5 + 16 * 0x1_0000);
    assert_ne!(a, b);
    assert_eq!(a, c);
    // Lap 0xFFFF stores 0: still no match for a never-written slot at lap 0 (stored as 1).
    let (_, d) = r.ring.place(16 * 0xFFFF);
    assert_eq!(d, 0);
}

#[test]
fn threads_recording_at_once_lose_nothing_the_ring_can_hold() {
    let r = Recorder::new(1 << 16);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for i in 0..10_000u32 {
                    let st = r.start();
                    r.finish(st, Recorded::from_code((i % 4) as u8));
                }
            });
        }
    });
    let t = r.trace("x");
    assert_eq!(t.events.len(), 40_000);
    let failures = t
        .events
        .iter()
        .filter(|e| e.outcome == Recorded::Failure)
        .count();
    assert_eq!(failures, 10_000);
}
