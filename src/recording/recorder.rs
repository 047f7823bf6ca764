//! The recorder: a ring of the last sampled calls, written without a lock.
//!
//! # Layout
//! Each slot is two 64-bit words, written by the thread that took the slot's *ticket* (the
//! running count of recorded calls, taken with one `fetch_add`; ticket `t` goes to slot
//! `t mod capacity`, on lap `t / capacity`):
//!
//! | word | bits 63–48 | the rest |
//! |---|---|---|
//! | `when` | lap + 1 (mod 2^16) | bits 47–0: the call's start, microseconds since the recorder was made |
//! | `what` | lap + 1 (mod 2^16) | bits 47–34 the weight, 33–32 the outcome code, 31–0 the latency in microseconds |
//!
//! **Horizons.** Tickets are 64 bits: never wrap (584 years at 10^9 recorded calls per
//! second). Starts are 48 bits of microseconds: 8.9 years after the recorder was made; later
//! starts are kept at that limit. Latencies are 32 bits of microseconds: 71 minutes, longer
//! ones are kept at that limit. Weights are 14 bits, which is why sampling is at most 1 in
//! 16 383. The lap is stored plus one, so that a slot never written (both words 0) matches no
//! lap; laps repeat every 2^16, see "Orderings".
//!
//! # Orderings
//! Every store and load is `Relaxed`. Each word is written whole and carries its writer's lap,
//! so a reader takes a slot for ticket `t` only when both words carry `t`'s lap: both then
//! come from the one writer that held ticket `t`, whatever order the stores became visible
//! in. A slot still being written, or already rewritten by a later lap, is skipped. Two
//! writers on the same slot carry the same lap only if one of them paused for 2^16 whole laps
//! of the ring (at least a million recorded calls) between its two stores, or a reader paused
//! as long between its two loads; a reader could then pair their words. Nothing else reads the ring: no decision of a breaker depends on it.
//!
//! # Shared writes
//! A call that is not sampled writes nothing shared: it draws one number from its thread's
//! generator. A sampled call writes the ticket counter (one `fetch_add` on a line every
//! recording thread writes) and its slot's two words (slots of threads recording at once may
//! share a line). Choose the sampling so that recorded calls stay well under a million per
//! second on many cores. With adaptive sampling on, a sampled call also reads the clock once
//! more, and a look (at most one per 1 024 recorded calls or per second) writes the control
//! word and the look's two words.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crossbeam_utils::CachePadded;

use super::event::{Event, Recorded, Trace};
use crate::sync::{AtomicU64, Ordering};
use crate::{Breaker, Error, Outcome};

const LAP_SHIFT: u32 = 48;
const START_MASK: u64 = (1 << 48) - 1;
const WEIGHT_SHIFT: u32 = 34;
const WEIGHT_MASK: u64 = (1 << 14) - 1;
const OUTCOME_SHIFT: u32 = 32;
/// The most calls one sampled call may stand for: the largest 14-bit weight.
pub const MAX_SAMPLING: u32 = (1 << 14) - 1;
const MIN_CAPACITY: usize = 16;
/// Recorded calls between two looks of the adaptive sampling.
const ADJUST_EVERY: u64 = 1024;
const MAX_CAPACITY: usize = 1 << 28;

/// A sampling rate out of range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SamplingError(pub u32);

impl std::fmt::Display for SamplingError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "invalid sampling: must record 1 call in 1..={MAX_SAMPLING}, got 1 in {}",
            self.0
        )
    }
}

impl std::error::Error for SamplingError {}

#[derive(Debug)]
struct Slot {
    when: AtomicU64,
    what: AtomicU64,
}

#[derive(Debug)]
struct Ring {
    slots: Box<[Slot]>,
    /// log2 of the capacity.
    shift: u32,
    /// The next ticket (module docs). Written once per sampled call.
    next: CachePadded<AtomicU64>,
    /// `target 32 | one_in 32`: record 1 call in `one_in` (1..=16 383); the recorded calls per
    /// second the adaptive sampling aims at, 0 when it is off. One word, so that a look of the
    /// adaptive sampling changes it only if no setter did since the look read it. Written by
    /// the setters and by looks (at most one per [`ADJUST_EVERY`] recorded calls or per
    /// second); read by every call.
    control: AtomicU64,
    /// When the adaptive sampling last looked (ns since `origin`), and the ticket it looked at:
    /// written by looks and by [`Recorder::set_target_rate`] only.
    look_at: AtomicU64,
    look_ticket: AtomicU64,
    clock: quanta::Clock,
    origin: quanta::Instant,
    started_unix_ms: u64,
}

/// Records a sample of a dependency's calls (start, latency, outcome) into a ring of fixed size.
/// Clones share the ring. See the [module docs](crate::recording).
#[derive(Clone, Debug)]
pub struct Recorder {
    ring: Arc<Ring>,
}

/// A call being recorded: from [`Recorder::start`] to [`Recorder::finish`].
#[derive(Clone, Copy, Debug)]
#[must_use = "pass it to Recorder::finish"]
pub struct Started {
    /// When it started, and the sampling rate then; `None` when it is not sampled.
    at: Option<(quanta::Instant, u32)>,
}

impl Started {
    /// Whether this call will be recorded.
    pub fn is_sampled(&self) -> bool {
        self.at.is_some()
    }
}

impl Recorder {
    /// A recorder keeping the last `capacity` sampled calls (rounded up to a power of two, at
    /// least 16 and at most 2^28): 16 bytes each, allocated now. Records every call until
    /// [`set_sampling`](Recorder::set_sampling) says otherwise. Reads time from quanta's clock.
    pub fn new(capacity: usize) -> Recorder {
        Recorder::with_clock(capacity, quanta::Clock::new())
    }

    /// As [`new`](Recorder::new), reading time from `clock` (`quanta::Clock::mock()` in tests).
    pub fn with_clock(capacity: usize, clock: quanta::Clock) -> Recorder {
        let capacity = capacity
            .clamp(MIN_CAPACITY, MAX_CAPACITY)
            .next_power_of_two();
        let origin = clock.now();
        let started_unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Recorder {
            ring: Arc::new(Ring {
                slots: (0..capacity)
                    .map(|_| Slot {
                        when: AtomicU64::new(0),
                        what: AtomicU64::new(0),
                    })
                    .collect(),
                shift: capacity.trailing_zeros(),
                next: CachePadded::new(AtomicU64::new(0)),
                control: AtomicU64::new(1),
                look_at: AtomicU64::new(0),
                look_ticket: AtomicU64::new(0),
                clock,
                origin,
                started_unix_ms,
            }),
        }
    }

    /// Record 1 call in `one_in` from now on (1 records all), and turn the adaptive sampling
    /// off. Each recorded call then stands for `one_in` calls in the trace (its
    /// [weight](Event::weight)).
    ///
    /// # Errors
    /// [`SamplingError`] unless `one_in` is in 1..=16 383.
    pub fn set_sampling(&self, one_in: u32) -> Result<(), SamplingError> {
        if !(1..=MAX_SAMPLING).contains(&one_in) {
            return Err(SamplingError(one_in));
        }
        // Relaxed: a call sampled at the old rate carries the old weight; nothing else is
        // ordered by it.
        self.ring
            .control
            .store(u64::from(one_in), Ordering::Relaxed);
        Ok(())
    }

    /// Let the recorder choose the sampling so that about `per_second` calls a second are
    /// recorded (0 turns this off and keeps the sampling where it is). It looks every 1 024
    /// recorded calls, and at the first recorded call a second or more after its last look:
    /// it measures how fast calls came since then and sets the sampling to the calls a second
    /// divided by `per_second`, rounded up, within 1..=16 383. Where volume is high a trace
    /// then covers a longer time in the same memory; each call still carries the sampling it
    /// was recorded at. A look that spans less than a millisecond (a stopped clock) changes
    /// nothing.
    pub fn set_target_rate(&self, per_second: u32) {
        let ring = &*self.ring;
        // Relaxed, all three: the look's window starts now; nothing else is ordered by them.
        ring.look_ticket
            .store(ring.next.load(Ordering::Relaxed), Ordering::Relaxed);
        ring.look_at.store(ring.since_origin(), Ordering::Relaxed);
        let _ = ring
            .control
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| {
                Some(u64::from(per_second) << 32 | (c & u64::from(u32::MAX)))
            });
    }

    /// Calls recorded: 1 in this many.
    pub fn sampling(&self) -> u32 {
        // Relaxed: see set_sampling.
        self.ring.control.load(Ordering::Relaxed) as u32
    }

    /// How many calls the ring keeps.
    pub fn capacity(&self) -> usize {
        self.ring.slots.len()
    }

    /// Calls recorded so far, including those the ring no longer holds.
    pub fn recorded(&self) -> u64 {
        // Relaxed: a count for display.
        self.ring.next.load(Ordering::Relaxed)
    }

    /// Bytes the recorder holds on the heap.
    pub fn heap_bytes(&self) -> usize {
        std::mem::size_of::<Ring>() + std::mem::size_of_val(&*self.ring.slots)
    }

    /// A call starts: decides whether it is sampled and, if it is, reads the clock.
    #[inline]
    pub fn start(&self) -> Started {
        // Relaxed: see set_sampling.
        let one_in = self.ring.control.load(Ordering::Relaxed) & u64::from(u32::MAX);
        if u64::from(crate::throttle::draw()) * one_in >= 1 << 32 {
            return Started { at: None };
        }
        Started {
            at: Some((self.ring.clock.now(), one_in as u32)),
        }
    }

    /// The call that [`start`](Recorder::start) returned `started` for ended with `outcome`
    /// (a call the breaker turned away is [`Recorded::Rejected`]).
    #[inline]
    pub fn finish(&self, started: Started, outcome: Recorded) {
        if let Some((at, weight)) = started.at {
            let end = self.ring.clock.now();
            self.write(at, end.saturating_duration_since(at), outcome, weight);
        }
    }

    #[cold]
    fn write(&self, at: quanta::Instant, latency: Duration, outcome: Recorded, weight: u32) {
        let ring = &*self.ring;
        // Relaxed: a ticket only has to be unique; the slot's words carry their own lap.
        let ticket = ring.next.fetch_add(1, Ordering::Relaxed);
        let (slot, lap) = ring.place(ticket);
        let start = micros(at.saturating_duration_since(ring.origin)).min(START_MASK);
        let latency = micros(latency).min(u64::from(u32::MAX));
        let what = lap
            | (u64::from(weight) & WEIGHT_MASK) << WEIGHT_SHIFT
            | u64::from(outcome.code()) << OUTCOME_SHIFT
            | latency;
        // Relaxed: see "Orderings".
        slot.when.store(lap | start, Ordering::Relaxed);
        slot.what.store(what, Ordering::Relaxed);
        ring.look(ticket);
    }

    /// Runs `f` through `breaker` and records it: `Ok` as Success, `Err` as Failure, a
    /// rejection as [`Recorded::Rejected`]. What [`Breaker::call`] returns.
    ///
    /// # Errors
    /// As for [`Breaker::call`].
    pub fn call<T, E>(
        &self,
        breaker: &Breaker,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, Error<E>> {
        let started = self.start();
        let result = breaker.call(f);
        self.finish(
            started,
            match &result {
                Ok(_) => Recorded::Success,
                Err(Error::Rejected(_)) => Recorded::Rejected,
                Err(_) => Recorded::Failure,
            },
        );
        result
    }

    /// As [`call`](Recorder::call), recording what `classify` makes of the result, as
    /// [`Breaker::call_with`] does.
    ///
    /// # Errors
    /// As for [`Breaker::call_with`].
    pub fn call_with<T, E>(
        &self,
        breaker: &Breaker,
        classify: impl FnOnce(&Result<T, E>) -> Outcome,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, Error<E>> {
        let started = self.start();
        let mut seen = Recorded::Rejected;
        let result = breaker.call_with(
            |r: &Result<T, E>| {
                let outcome = classify(r);
                seen = match outcome {
                    Outcome::Success => Recorded::Success,
                    Outcome::Failure => Recorded::Failure,
                    Outcome::Ignored => Recorded::Ignored,
                };
                outcome
            },
            f,
        );
        self.finish(started, seen);
        result
    }

    /// The calls the ring holds now, sorted by start, as a trace named `name`. Calls being
    /// written at this moment may be left out.
    pub fn trace(&self, name: &str) -> Trace {
        let ring = &*self.ring;
        // Relaxed: see "Orderings"; tickets taken after this load are not looked for.
        let next = ring.next.load(Ordering::Relaxed);
        let first = next.saturating_sub(ring.slots.len() as u64);
        let mut events: Vec<Event> = (first..next)
            .filter_map(|ticket| {
                let (slot, lap) = ring.place(ticket);
                let when = slot.when.load(Ordering::Relaxed);
                let what = slot.what.load(Ordering::Relaxed);
                let mine = |word: u64| word >> LAP_SHIFT << LAP_SHIFT == lap;
                (mine(when) && mine(what)).then(|| Event {
                    start: Duration::from_micros(when & START_MASK),
                    latency: Duration::from_micros(what & u64::from(u32::MAX)),
                    outcome: Recorded::from_code((what >> OUTCOME_SHIFT) as u8),
                    weight: ((what >> WEIGHT_SHIFT) & WEIGHT_MASK).max(1) as u32,
                })
            })
            .collect();
        events.sort_by_key(|e| e.start);
        Trace {
            name: name.to_owned(),
            started_unix_ms: ring.started_unix_ms,
            events,
        }
    }
}

impl Ring {
    /// Nanoseconds since the recorder was made.
    fn since_origin(&self) -> u64 {
        nanos(self.clock.now().saturating_duration_since(self.origin))
    }

    /// The adaptive sampling's look after recording `ticket` (see
    /// [`Recorder::set_target_rate`]). Racing looks: one claims the window (a compare-and-swap
    /// of `look_at`), the others return. A setter that changed the control word since the look
    /// read it wins: the look's swap of it fails.
    #[cold]
    fn look(&self, ticket: u64) {
        // Relaxed: see `control`.
        let control = self.control.load(Ordering::Relaxed);
        let target = control >> 32;
        if target == 0 {
            return;
        }
        let now = self.since_origin();
        // Relaxed: a timestamp only looks read back; the claim below is the CAS.
        let then = self.look_at.load(Ordering::Relaxed);
        let elapsed = now.saturating_sub(then);
        let due = ticket % ADJUST_EVERY == ADJUST_EVERY - 1 || elapsed >= 1_000_000_000;
        if !due || elapsed < 1_000_000 {
            return;
        }
        if self
            .look_at
            .compare_exchange(then, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        // Relaxed: only the claiming look swaps it.
        let since = self.look_ticket.swap(ticket + 1, Ordering::Relaxed);
        let recorded = (ticket + 1).saturating_sub(since).max(1);
        // Offered calls a second: recorded ones times the sampling, over the time they took.
        let one_in_now = control & u64::from(u32::MAX);
        let offered =
            u128::from(recorded) * u128::from(one_in_now) * 1_000_000_000 / u128::from(elapsed);
        let one_in = offered
            .div_ceil(u128::from(target))
            .clamp(1, u128::from(MAX_SAMPLING)) as u64;
        // Relaxed: see `control`. Fails if a setter wrote it since: the setter's word stays.
        let _ = self.control.compare_exchange(
            control,
            target << 32 | one_in,
            Ordering::Relaxed,
            Ordering::Relaxed,
        );
    }

    /// The slot of `ticket` and its lap field (module docs).
    fn place(&self, ticket: u64) -> (&Slot, u64) {
        let mask = self.slots.len() as u64 - 1;
        let lap = ((ticket >> self.shift).wrapping_add(1) & 0xFFFF) << LAP_SHIFT;
        (&self.slots[(ticket & mask) as usize], lap)
    }
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
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
}
