//! Replaying calls through a real `Breaker` on a mock clock.
//!
//! Each call asks the breaker for a permit at its recorded start; an admitted call holds its
//! permit until its recorded end (start + latency) and then records its outcome, so calls
//! overlap as they did live, probes count as probes, and a slow-call rule sees the recorded
//! latencies. The clock only moves forward, to the next start or end, whichever comes first. A
//! call of weight `w` (recorded at 1-in-`w` sampling) is replayed as `w` calls at its start.
//! The throttle draws from a generator seeded with the replay's seed, and backoff jitter
//! depends only on the breaker's own state and clock, so a replay is deterministic.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use hotbreaker::recording::Recorded;
use hotbreaker::{Breaker, Config, ConfigError, Permit, State};

use crate::calls::Calls;
use crate::incidents::Incident;

/// What a configuration did with a replayed stretch of calls.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Score {
    /// Calls replayed (weights counted).
    pub calls: u64,
    /// Calls the breaker turned away (Open, HalfOpen full, or throttled).
    pub rejected: u64,
    /// Calls turned away during an incident: backend calls saved while it was failing.
    pub saved: u64,
    /// Calls during incidents: what could have been saved.
    pub incident_calls: u64,
    /// Calls turned away outside incidents whose recorded outcome was Success: good calls
    /// lost while the dependency was healthy (the false-positive cost).
    pub wrongly_rejected: u64,
    /// Calls outside incidents whose recorded outcome was Success.
    pub good: u64,
    /// Times it opened.
    pub opens: u32,
    /// Transitions of any kind.
    pub transitions: u32,
    /// Per incident: from its start to the first call turned away in it (`None`: none was).
    pub detect: Vec<Option<Duration>>,
    /// Per incident: from its end to the first moment the breaker was Closed again, seen at a
    /// call (`None`: not before the next incident or the end of the calls).
    pub recover: Vec<Option<Duration>>,
}

impl Score {
    /// Share of incident calls saved, in [0, 1] (1 when there was no incident call).
    pub fn saved_share(&self) -> f64 {
        if self.incident_calls == 0 {
            1.0
        } else {
            self.saved as f64 / self.incident_calls as f64
        }
    }

    /// Share of good calls turned away, in [0, 1].
    pub fn wrong_share(&self) -> f64 {
        if self.good == 0 {
            0.0
        } else {
            self.wrongly_rejected as f64 / self.good as f64
        }
    }
}

/// Replays `calls` through a breaker built from `config`, judging savings against `incidents`
/// (on the same clock as the calls). `verdicts`, when given, receives per call whether it
/// was turned away (its first copy, for a weighted call).
///
/// # Errors
/// The configuration's own error if it does not build.
pub fn replay(
    calls: &Calls,
    incidents: &[Incident],
    config: &Config,
    seed: u64,
    mut verdicts: Option<&mut Vec<bool>>,
) -> Result<Score, ConfigError> {
    let (clock, mock) = quanta::Clock::mock();
    let opens = Arc::new(AtomicU32::new(0));
    let transitions = Arc::new(AtomicU32::new(0));
    let (o, t) = (Arc::clone(&opens), Arc::clone(&transitions));
    let breaker = Breaker::builder()
        .config(config.clone())
        .clock(clock)
        .throttle_seed(seed)
        .on_transition(move |tr| {
            // Relaxed: counters read after the replay, on this thread.
            t.fetch_add(1, Ordering::Relaxed);
            if tr.to == State::Open {
                o.fetch_add(1, Ordering::Relaxed);
            }
        })
        .build()?;

    let mut score = Score {
        detect: vec![None; incidents.len()],
        recover: vec![None; incidents.len()],
        ..Score::default()
    };
    let mut now = 0u64;
    let advance = |now: &mut u64, to: u64| {
        if to > *now {
            mock.increment(Duration::from_nanos(to - *now));
            *now = to;
        }
    };
    let mut in_flight: Vec<Option<(Permit<'_>, Recorded)>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut ends: BinaryHeap<Reverse<(u64, usize)>> = BinaryHeap::new();
    let mut incident = 0usize;
    // The incident whose recovery is still looked for.
    let mut recovering: Option<usize> = None;

    for c in &calls.calls {
        let start = nanos(c.start);
        while let Some(&Reverse((end, slot))) = ends.peek() {
            if end > start {
                break;
            }
            ends.pop();
            advance(&mut now, end);
            if let Some((permit, outcome)) = in_flight[slot].take() {
                finish(permit, outcome);
            }
            free.push(slot);
        }
        advance(&mut now, start);

        while incident < incidents.len() && incidents[incident].end <= c.start {
            recovering = Some(incident);
            incident += 1;
        }
        // Recovery is looked for up to the next incident only.
        if incidents.get(incident).is_some_and(|i| i.start <= c.start) {
            recovering = None;
        }
        if let Some(i) = recovering
            && breaker.state() == State::Closed
        {
            score.recover[i] = Some(c.start.saturating_sub(incidents[i].end));
            recovering = None;
        }
        let inside = incidents.get(incident).filter(|i| i.contains(c.start));

        let weight = u64::from(c.weight);
        score.calls += weight;
        let good = inside.is_none() && c.outcome == Recorded::Success;
        if good {
            score.good += weight;
        }
        if inside.is_some() {
            score.incident_calls += weight;
        }
        let mut first_rejected = false;
        for copy in 0..c.weight {
            match breaker.try_acquire() {
                Ok(permit) => {
                    if c.latency.is_zero() {
                        finish(permit, c.outcome);
                    } else {
                        let slot = free.pop().unwrap_or_else(|| {
                            in_flight.push(None);
                            in_flight.len() - 1
                        });
                        in_flight[slot] = Some((permit, c.outcome));
                        ends.push(Reverse((start.saturating_add(nanos(c.latency)), slot)));
                    }
                }
                Err(_) => {
                    first_rejected |= copy == 0;
                    score.rejected += 1;
                    if good {
                        score.wrongly_rejected += 1;
                    }
                    if let Some(i) = inside {
                        score.saved += 1;
                        let d = &mut score.detect[incident];
                        if d.is_none() {
                            *d = Some(c.start - i.start);
                        }
                    }
                }
            }
        }
        if let Some(v) = verdicts.as_deref_mut() {
            v.push(first_rejected);
        }
    }
    while let Some(Reverse((end, slot))) = ends.pop() {
        advance(&mut now, end);
        if let Some((permit, outcome)) = in_flight[slot].take() {
            finish(permit, outcome);
        }
    }
    // Relaxed: written by listeners on this thread.
    score.opens = opens.load(Ordering::Relaxed);
    score.transitions = transitions.load(Ordering::Relaxed);
    Ok(score)
}

fn finish(permit: Permit<'_>, outcome: Recorded) {
    match outcome {
        Recorded::Success => permit.success(),
        Recorded::Failure => permit.failure(),
        Recorded::Ignored | Recorded::Rejected => permit.ignore(),
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
