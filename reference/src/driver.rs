//! Applies one sequence of operations to the model and to a real breaker. Every acquire's
//! verdict, state and `retry_after` is compared as it happens; after every operation (a bulk
//! operation counts as one) the window counts, the lifetime totals, the generation and the
//! transitions the listener heard since the last comparison are compared too.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use std::sync::atomic::{AtomicU64, Ordering};

use hotbreaker::{Breaker, Cause, Metrics, Outcome, Permit, Reason, State};
use quanta::Mock;

use crate::config::{ModelConfig, draw_at};
use crate::model::{Model, ModelMetrics, ModelPermit};

/// Permits held at once by a sequence (more are dropped straight away).
const HELD: usize = 8;

/// Mock time never goes past 100 years after the start: the uptime the breaker must support.
/// An advance that would cross it stops there.
pub const HORIZON_NS: u64 = 100 * 365 * 24 * 3_600 * 1_000_000_000;

/// One step of a sequence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Acquire and hold the permit.
    Acquire,
    /// Acquire and record at once.
    Call(Outcome),
    /// Record an outcome through the `index % held`-th held permit.
    Record {
        index: u8,
        outcome: Outcome,
    },
    /// Drop a held permit unrecorded.
    Drop {
        index: u8,
    },
    /// Advance the mock clock.
    Advance {
        ns: u64,
    },
    Isolate,
    Disable,
    Reset,
    /// Only compare (every step compares anyway).
    Metrics,
    /// Advance the mock clock by `laps` whole laps of the window's ring
    /// (`ModelConfig::lap_ns`), then `extra_ns`: idle time long enough to wrap any lap counter.
    Idle {
        laps: u32,
        extra_ns: u64,
    },
    /// `n` manual resets in a row.
    Resets {
        n: u32,
    },
    /// `n` calls with the same outcome, each through a fresh permit, at the same instant.
    Burst {
        n: u32,
        outcome: Outcome,
    },
    /// `n` cycles of: failures until Open, advance to the Open deadline, a probe that fails. Each
    /// cycle after the first is two transitions (Open→HalfOpen→Open). Made of the single
    /// operations above; it stops early in Isolated or Disabled, or when failures do not trip
    /// this configuration.
    Flap {
        n: u32,
    },
    /// A peer's trip: `trip_from_fleet` for `ns`.
    FleetTrip {
        ns: u64,
    },
    /// A peer's recovery: `half_open_from_fleet`.
    FleetHalfOpen,
}

/// Repetition counts worth trying for bulk operations: around the 2^15, 2^16 and 2^17 marks
/// where narrow tags and counters wrap or fill.
pub const LONG_COUNTS: [u32; 9] = [
    32_767, 32_768, 32_769, 65_535, 65_536, 65_537, 131_071, 131_072, 131_073,
];

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for Op {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let outcome = |u: &mut arbitrary::Unstructured<'a>| -> arbitrary::Result<Outcome> {
            Ok([Outcome::Success, Outcome::Failure, Outcome::Ignored][u.choose_index(3)?])
        };
        // Mostly a few, sometimes one of the wrapping marks, sometimes anything up to 2^18.
        let count = |u: &mut arbitrary::Unstructured<'a>| -> arbitrary::Result<u32> {
            Ok(match u.choose_index(4)? {
                0 | 1 => u32::from(u.arbitrary::<u8>()?),
                2 => LONG_COUNTS[u.choose_index(LONG_COUNTS.len())?],
                _ => u.int_in_range(0..=1 << 18)?,
            })
        };
        Ok(match u.choose_index(15)? {
            0 => Op::Acquire,
            1 => Op::Call(outcome(u)?),
            2 => Op::Record {
                index: u.arbitrary()?,
                outcome: outcome(u)?,
            },
            3 => Op::Drop {
                index: u.arbitrary()?,
            },
            // Up to about 4.3 s per step: enough to cross any deadline the fuzzer configures.
            4 => Op::Advance {
                ns: u64::from(u.arbitrary::<u32>()?),
            },
            5 => Op::Isolate,
            6 => Op::Disable,
            7 => Op::Reset,
            8 => Op::Idle {
                laps: match u.choose_index(3)? {
                    0 => u32::from(u.arbitrary::<u16>()?),
                    1 => LONG_COUNTS[u.choose_index(LONG_COUNTS.len())?],
                    _ => u.arbitrary()?,
                },
                extra_ns: u64::from(u.arbitrary::<u32>()?),
            },
            9 => Op::Resets { n: count(u)? },
            10 => Op::Burst {
                n: count(u)?,
                outcome: outcome(u)?,
            },
            11 => Op::Flap { n: count(u)? },
            12 => Op::FleetTrip {
                ns: match u.choose_index(3)? {
                    0 => u64::from(u.arbitrary::<u32>()?),
                    1 => 0,
                    _ => u.arbitrary()?,
                },
            },
            13 => Op::FleetHalfOpen,
            _ => Op::Metrics,
        })
    }
}

fn real_metrics(m: &Metrics) -> ModelMetrics {
    ModelMetrics {
        state: m.state,
        generation: m.generation,
        window_calls: m.window.calls,
        window_failures: m.window.failures,
        window_slow: m.window.slow,
        window_throttled: m.window.throttled,
        successes: m.successes,
        failures: m.failures,
        ignored: m.ignored,
        slow: m.slow,
        rejected: m.rejected,
        throttled: m.throttled,
        times_opened: m.times_opened,
        retry_after_ns: m.retry_after.map(|d| d.as_nanos() as u64),
    }
}

type Heard = Arc<Mutex<Vec<(State, State, Cause, u64)>>>;

/// The breaker and the model side by side, on the same mock time.
struct Pair<'a> {
    config: &'a ModelConfig,
    breaker: &'a Breaker,
    mock: &'a Mock,
    heard: &'a Heard,
    model: Model,
    now: u64,
    held: Vec<(Permit<'a>, ModelPermit)>,
    /// Transitions already compared.
    compared: usize,
}

impl<'a> Pair<'a> {
    /// Applies a single (not bulk) operation to both, comparing an acquire's verdict.
    fn single(&mut self, op: Op) -> Result<(), String> {
        match op {
            Op::Acquire | Op::Call(_) => {
                match (self.breaker.try_acquire(), self.model.acquire(self.now)) {
                    (Ok(p), Ok(mp)) => {
                        if (p.state(), p.generation()) != (mp.state, mp.generation) {
                            return Err(format!(
                                "permit {:?}/{} vs model {mp:?}",
                                p.state(),
                                p.generation()
                            ));
                        }
                        if let Op::Call(outcome) = op {
                            p.record(outcome);
                            self.model.record(mp, outcome, self.now);
                        } else if self.held.len() < HELD {
                            self.held.push((p, mp));
                        } else {
                            drop(p);
                            self.model.release(mp, self.now);
                        }
                    }
                    (Err(r), Err((state, retry))) => {
                        let want = retry.map(Duration::from_nanos);
                        let reason = match state {
                            State::Open => Reason::Open,
                            State::HalfOpen => Reason::HalfOpenFull,
                            State::Isolated => Reason::Isolated,
                            _ => Reason::Throttled,
                        };
                        if (r.state(), r.retry_after(), r.reason()) != (state, want, reason) {
                            return Err(format!(
                                "rejected {r:?} vs model {state:?} retry {want:?}"
                            ));
                        }
                    }
                    (real, want) => return Err(format!("breaker {real:?} vs model {want:?}")),
                }
            }
            Op::Record { index, outcome } => {
                if !self.held.is_empty() {
                    let (p, mp) = self.held.remove(usize::from(index) % self.held.len());
                    p.record(outcome);
                    self.model.record(mp, outcome, self.now);
                }
            }
            Op::Drop { index } => {
                if !self.held.is_empty() {
                    let (p, mp) = self.held.remove(usize::from(index) % self.held.len());
                    drop(p);
                    self.model.release(mp, self.now);
                }
            }
            Op::Advance { ns } => self.advance(ns),
            Op::Idle { laps, extra_ns } => self.advance(
                u64::from(laps)
                    .saturating_mul(self.config.lap_ns())
                    .saturating_add(extra_ns),
            ),
            Op::Isolate => {
                self.breaker.isolate();
                self.model.manual(State::Isolated, self.now);
            }
            Op::Disable => {
                self.breaker.disable();
                self.model.manual(State::Disabled, self.now);
            }
            Op::Reset => {
                self.breaker.reset();
                self.model.manual(State::Closed, self.now);
            }
            Op::FleetTrip { ns } => {
                let real = self.breaker.trip_from_fleet(Duration::from_nanos(ns));
                let want = self.model.fleet_trip(ns, self.now);
                if real != want {
                    return Err(format!("trip_from_fleet: breaker {real} vs model {want}"));
                }
            }
            Op::FleetHalfOpen => {
                let real = self.breaker.half_open_from_fleet();
                let want = self.model.fleet_half_open(self.now);
                if real != want {
                    return Err(format!(
                        "half_open_from_fleet: breaker {real} vs model {want}"
                    ));
                }
            }
            Op::Metrics => {}
            Op::Resets { .. } | Op::Burst { .. } | Op::Flap { .. } => {
                unreachable!("bulk operations go through apply")
            }
        }
        Ok(())
    }

    fn advance(&mut self, ns: u64) {
        let ns = ns.min(HORIZON_NS - self.now);
        self.mock.increment(ns);
        self.now += ns;
    }

    /// Applies any operation; a bulk one names its failing inner step.
    fn apply(&mut self, op: Op) -> Result<(), String> {
        let repeat = |pair: &mut Pair<'a>, n: u32, each: Op| {
            (0..n).try_for_each(|i| {
                pair.single(each)
                    .map_err(|e| format!("repetition {i} ({each:?}): {e}"))
            })
        };
        match op {
            Op::Resets { n } => repeat(self, n, Op::Reset),
            Op::Burst { n, outcome } => repeat(self, n, Op::Call(outcome)),
            Op::Flap { n } => {
                for i in 0..n {
                    if !self.flap_once().map_err(|e| format!("cycle {i}: {e}"))? {
                        break; // Stopped early: the remaining cycles would do nothing.
                    }
                }
                Ok(())
            }
            op => self.single(op),
        }
    }

    /// One flap cycle; `Ok(false)` when this state or configuration cannot flap.
    fn flap_once(&mut self) -> Result<bool, String> {
        let window_size = match self.config.window {
            crate::config::Window::Count(n) => u64::from(n),
            crate::config::Window::Time { .. } => 0,
        };
        let bound = u64::from(self.config.minimum_calls) + window_size + 64;
        let mut failures = 0;
        loop {
            match self.model.state() {
                State::Open => break,
                State::Isolated | State::Disabled => return Ok(false),
                State::HalfOpen => {
                    // A failed probe: through a permit held in this generation, if any (it may
                    // hold the last slot), else through a fresh one.
                    let generation = self.model.generation();
                    match self
                        .held
                        .iter()
                        .position(|(_, mp)| mp.generation == generation)
                    {
                        Some(i) => self.single(Op::Record {
                            index: i as u8,
                            outcome: Outcome::Failure,
                        })?,
                        None => self.single(Op::Call(Outcome::Failure))?,
                    }
                    if self.model.generation() == generation {
                        return Err("a failed probe left HalfOpen unchanged".into());
                    }
                }
                State::Closed => {
                    if failures == bound {
                        // Successes may hold the rate down: let the window forget them.
                        match self.config.window_ns() {
                            Some(span) => self.single(Op::Advance { ns: span })?,
                            None => return Ok(false),
                        }
                    }
                    if failures == 2 * bound {
                        return Ok(false); // Failures alone do not trip this configuration.
                    }
                    self.single(Op::Call(Outcome::Failure))?;
                    failures += 1;
                }
                // A state this driver does not know.
                _ => return Ok(false),
            }
        }
        let deadline = self.model.open_deadline_ns().expect("Open has a deadline");
        self.single(Op::Advance {
            ns: deadline.saturating_sub(self.now),
        })?;
        if self.now < deadline {
            return Ok(false); // At the end of mock time.
        }
        self.single(Op::Call(Outcome::Failure))?;
        Ok(true)
    }

    /// Compares everything observable, and the transitions heard since the last comparison.
    fn compare(&mut self) -> Result<(), String> {
        let (real, want) = (
            real_metrics(&self.breaker.metrics()),
            self.model.metrics(self.now),
        );
        if real != want {
            return Err(format!(
                "metrics differ\n breaker {real:?}\n   model {want:?}"
            ));
        }
        let heard = self.heard.lock().unwrap();
        let expected = self.model.log_since(self.compared);
        let got = heard.get(self.compared..).unwrap_or_default();
        if got != expected.as_slice() {
            let at = got
                .iter()
                .zip(&expected)
                .take_while(|(a, b)| a == b)
                .count();
            return Err(format!(
                "transitions differ after {} of them: listener heard {:?} (of {}), model made {:?} (of {})",
                self.compared + at,
                got.get(at),
                got.len(),
                expected.get(at),
                expected.len(),
            ));
        }
        self.compared = heard.len();
        Ok(())
    }
}

/// Runs `ops` against both; `Err` describes the first disagreement.
pub fn run(config: &ModelConfig, ops: &[Op]) -> Result<(), String> {
    let (clock, mock) = quanta::Clock::mock();
    let heard: Heard = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&heard);
    // The throttle's draws, replayed: the model takes `draw_at(0)`, `draw_at(1)`, ... in turn.
    let draws = AtomicU64::new(0);
    let breaker = config
        .builder()
        .throttle_draws_for_tests(move || draw_at(draws.fetch_add(1, Ordering::Relaxed)))
        .clock(clock)
        .on_transition(move |t| {
            sink.lock()
                .unwrap()
                .push((t.from, t.to, t.cause, t.generation))
        })
        .stripes(2)
        .build()
        .map_err(|e| format!("the breaker refused {config:?}: {e}"))?;
    let mut pair = Pair {
        config,
        breaker: &breaker,
        mock: &mock,
        heard: &heard,
        model: Model::new(*config),
        now: 0,
        held: Vec::new(),
        compared: 0,
    };
    for (step, op) in ops.iter().enumerate() {
        let t = pair.now;
        if let Err(what) = pair.apply(*op).and_then(|()| pair.compare()) {
            return Err(format!(
                "step {step} ({op:?}), t = {t} ns (now {} ns): {what}\nconfig: {config:?}",
                pair.now
            ));
        }
    }
    for (p, mp) in std::mem::take(&mut pair.held) {
        drop(p);
        pair.model.release(mp, pair.now);
    }
    pair.compare()
        .map_err(|what| format!("after dropping held permits: {what}\nconfig: {config:?}"))
}
