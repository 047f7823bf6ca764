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

    /// As [`new`](Recorder::new), reading time from `clock` ([`Clock::mock`](crate::clock::Clock::mock) in tests).
    pub fn with_clock(capacity: usize, clock: crate::clock::Clock) -> Recorder {
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
    ///
    /// Feature `test-util`: for tests and benchmarks, outside the semver promise.
    #[cfg(any(test, feature = "test-util"))]
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
mod tests;
