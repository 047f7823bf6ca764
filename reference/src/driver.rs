//! Applies one sequence of operations to the model and to a real breaker, comparing after
//! every step: each acquire's verdict, state and `retry_after`, the window counts, the lifetime
//! totals, the generation.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hotbreaker::{Metrics, Outcome, Permit, State};

use crate::config::ModelConfig;
use crate::model::{Model, ModelMetrics, ModelPermit};

/// Permits held at once by a sequence (more are dropped straight away).
const HELD: usize = 8;

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
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for Op {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let outcome = |u: &mut arbitrary::Unstructured<'a>| -> arbitrary::Result<Outcome> {
            Ok([Outcome::Success, Outcome::Failure, Outcome::Ignored][u.choose_index(3)?])
        };
        Ok(match u.choose_index(9)? {
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
        successes: m.successes,
        failures: m.failures,
        ignored: m.ignored,
        slow: m.slow,
        rejected: m.rejected,
        times_opened: m.times_opened,
        retry_after_ns: m.retry_after.map(|d| d.as_nanos() as u64),
    }
}

/// Runs `ops` against both; `Err` describes the first disagreement.
pub fn run(config: &ModelConfig, ops: &[Op]) -> Result<(), String> {
    let (clock, mock) = quanta::Clock::mock();
    let heard = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&heard);
    let breaker = config
        .builder()
        .clock(clock)
        .on_transition(move |t| {
            sink.lock()
                .unwrap()
                .push((t.from, t.to, t.cause, t.generation))
        })
        .stripes(2)
        .build()
        .map_err(|e| format!("the breaker refused {config:?}: {e}"))?;
    let model = Model::new(*config);
    let mut now = 0u64;
    let mut held: Vec<(Permit<'_>, ModelPermit)> = Vec::new();
    for (step, op) in ops.iter().enumerate() {
        let t = now;
        let fail = |what: String| {
            Err(format!(
                "step {step} ({op:?}), t = {t} ns: {what}\nconfig: {config:?}"
            ))
        };
        match *op {
            Op::Acquire | Op::Call(_) => match (breaker.try_acquire(), model.acquire(now)) {
                (Ok(p), Ok(mp)) => {
                    if (p.state(), p.generation()) != (mp.state, mp.generation) {
                        return fail(format!(
                            "permit {:?}/{} vs model {mp:?}",
                            p.state(),
                            p.generation()
                        ));
                    }
                    if let Op::Call(outcome) = *op {
                        p.record(outcome);
                        model.record(mp, outcome, now);
                    } else if held.len() < HELD {
                        held.push((p, mp));
                    } else {
                        drop(p);
                        model.release(mp);
                    }
                }
                (Err(r), Err((state, retry))) => {
                    let want = retry.map(Duration::from_nanos);
                    if (r.state(), r.retry_after()) != (state, want) {
                        return fail(format!("rejected {r:?} vs model {state:?} retry {want:?}"));
                    }
                }
                (real, want) => return fail(format!("breaker {real:?} vs model {want:?}")),
            },
            Op::Record { index, outcome } => {
                if !held.is_empty() {
                    let (p, mp) = held.remove(usize::from(index) % held.len());
                    p.record(outcome);
                    model.record(mp, outcome, now);
                }
            }
            Op::Drop { index } => {
                if !held.is_empty() {
                    let (p, mp) = held.remove(usize::from(index) % held.len());
                    drop(p);
                    model.release(mp);
                }
            }
            Op::Advance { ns } => {
                mock.increment(ns);
                now += ns;
            }
            Op::Isolate => {
                breaker.isolate();
                model.manual(State::Isolated, now);
            }
            Op::Disable => {
                breaker.disable();
                model.manual(State::Disabled, now);
            }
            Op::Reset => {
                breaker.reset();
                model.manual(State::Closed, now);
            }
            Op::Metrics => {}
        }
        let (real, want) = (real_metrics(&breaker.metrics()), model.metrics(now));
        if real != want {
            return fail(format!(
                "metrics differ\n breaker {real:?}\n   model {want:?}"
            ));
        }
    }
    for (p, mp) in held.drain(..) {
        drop(p);
        model.release(mp);
    }
    let (real, want) = (real_metrics(&breaker.metrics()), model.metrics(now));
    if real != want {
        return Err(format!(
            "after dropping held permits\n breaker {real:?}\n   model {want:?}"
        ));
    }
    Ok(())
}
