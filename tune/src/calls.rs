//! A trace made ready for replay: every call with an outcome to give the breaker.

use std::time::Duration;

use hotbreaker::recording::{Recorded, Trace};

/// One call to replay.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Call {
    pub start: Duration,
    pub latency: Duration,
    /// Success, Failure or Ignored; Rejected only when the trace has no answered call at all
    /// to borrow from (such calls are replayed as Ignored).
    pub outcome: Recorded,
    pub weight: u32,
}

/// How far from a rejected call the answered calls it may borrow from started.
pub const NEIGHBOURHOOD: Duration = Duration::from_secs(1);

/// An answered call near `t` (see [`Calls::from_trace`]), picked by `salt`.
fn neighbour(
    answered: &[(Duration, Recorded, Duration)],
    t: Duration,
    salt: usize,
) -> Option<(Duration, Recorded, Duration)> {
    if answered.is_empty() {
        return None;
    }
    let lo = answered.partition_point(|a| a.0.saturating_add(NEIGHBOURHOOD) < t);
    let hi = answered.partition_point(|a| a.0 <= t.saturating_add(NEIGHBOURHOOD));
    if lo < hi {
        let mut z = (salt as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        return Some(answered[lo + (z % (hi - lo) as u64) as usize]);
    }
    // None within reach: the nearest one.
    let after = answered.partition_point(|a| a.0 < t);
    let before = after.checked_sub(1).map(|i| answered[i]);
    let next = answered.get(after).copied();
    match (before, next) {
        (Some(b), Some(n)) => Some(if t - b.0 <= n.0 - t { b } else { n }),
        (b, n) => b.or(n),
    }
}

/// A trace's calls, with what a rejected call would have done filled in.
#[derive(Clone, Debug)]
pub struct Calls {
    pub calls: Vec<Call>,
    /// Whether the live breaker turned each call away (the trace recorded it as Rejected).
    pub live_rejected: Vec<bool>,
}

impl Calls {
    /// The calls of `trace`. A call the live breaker turned away never reached the dependency,
    /// so how it would have gone is unknown: it is given the outcome and latency of an
    /// answered call (Success or Failure) picked from those that started within
    /// [`NEIGHBOURHOOD`] of it, before or after (the nearest answered call if none did). The
    /// pick is a hash of the call's index, so the filled calls fail at the neighbourhood's
    /// rate and the fill is the same every time.
    ///
    /// The calls are sorted by start (a trace built by hand may not be), and times are moved
    /// so that the first call starts at 0: a recorder that ran long before the calls it still
    /// holds leaves no empty stretch in front of them.
    pub fn from_trace(trace: &Trace) -> Calls {
        let mut events = trace.events.clone();
        events.sort_by_key(|e| e.start);
        let first = events.first().map_or(Duration::ZERO, |e| e.start);
        for e in &mut events {
            e.start -= first;
        }
        let answered: Vec<(Duration, Recorded, Duration)> = events
            .iter()
            .filter(|e| matches!(e.outcome, Recorded::Success | Recorded::Failure))
            .map(|e| (e.start, e.outcome, e.latency))
            .collect();
        let mut calls = Vec::with_capacity(events.len());
        let mut live_rejected = Vec::with_capacity(events.len());
        for (i, e) in events.iter().enumerate() {
            let rejected = e.outcome == Recorded::Rejected;
            let (outcome, latency) = match (rejected, neighbour(&answered, e.start, i)) {
                (true, Some((_, outcome, latency))) => (outcome, latency),
                _ => (e.outcome, e.latency),
            };
            calls.push(Call {
                start: e.start,
                latency,
                outcome,
                weight: e.weight.max(1),
            });
            live_rejected.push(rejected);
        }
        Calls {
            calls,
            live_rejected,
        }
    }

    /// The calls that start in `[from, to)`, moved so that `from` is time 0.
    pub fn between(&self, from: Duration, to: Duration) -> Calls {
        let lo = self.calls.partition_point(|c| c.start < from);
        let hi = self.calls.partition_point(|c| c.start < to);
        Calls {
            calls: self.calls[lo..hi]
                .iter()
                .map(|c| Call {
                    start: c.start - from,
                    ..*c
                })
                .collect(),
            live_rejected: self.live_rejected[lo..hi].to_vec(),
        }
    }

    /// The calls these stand for.
    pub fn total(&self) -> u64 {
        self.calls.iter().map(|c| u64::from(c.weight)).sum()
    }

    /// From time 0 to the last call's start.
    pub fn span(&self) -> Duration {
        self.calls.last().map_or(Duration::ZERO, |c| c.start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotbreaker::recording::Event;

    #[test]
    fn a_rejected_call_borrows_from_answers_around_it_at_their_rate() {
        let mut events = Vec::new();
        for ms in 0..4_000u64 {
            let outcome = if ms % 1_000 < 500 {
                Recorded::Rejected
            } else if ms % 10 < 3 {
                Recorded::Failure
            } else {
                Recorded::Success
            };
            events.push(Event {
                start: Duration::from_millis(ms),
                latency: Duration::ZERO,
                outcome,
                weight: 1,
            });
        }
        let c = Calls::from_trace(&Trace {
            events,
            ..Trace::default()
        });
        let filled: Vec<&Call> = c
            .calls
            .iter()
            .zip(&c.live_rejected)
            .filter(|(_, r)| **r)
            .map(|(c, _)| c)
            .collect();
        let failed = filled
            .iter()
            .filter(|c| c.outcome == Recorded::Failure)
            .count();
        let share = failed as f64 / filled.len() as f64;
        assert!((0.25..0.35).contains(&share), "{share}");
    }

    #[test]
    fn a_rejected_call_borrows_the_nearest_answer_when_none_is_close() {
        let ev = |s: u64, outcome| Event {
            start: Duration::from_secs(s),
            latency: Duration::from_millis(if outcome == Recorded::Failure { 200 } else { 2 }),
            outcome,
            weight: 1,
        };
        let trace = Trace {
            events: vec![
                ev(0, Recorded::Success),
                ev(3, Recorded::Rejected),
                ev(7, Recorded::Rejected),
                ev(10, Recorded::Failure),
                ev(11, Recorded::Ignored),
            ],
            ..Trace::default()
        };
        let c = Calls::from_trace(&trace);
        assert_eq!(c.calls[1].outcome, Recorded::Success);
        assert_eq!(c.calls[2].outcome, Recorded::Failure);
        assert_eq!(c.calls[2].latency, Duration::from_millis(200));
        assert_eq!(c.live_rejected, vec![false, true, true, false, false]);
        let only_rejected = Trace {
            events: vec![ev(1, Recorded::Rejected)],
            ..Trace::default()
        };
        assert_eq!(
            Calls::from_trace(&only_rejected).calls[0].outcome,
            Recorded::Rejected
        );
        let mid = c.between(Duration::from_secs(3), Duration::from_secs(10));
        assert_eq!(mid.calls.len(), 2);
        assert_eq!(mid.calls[0].start, Duration::ZERO);
    }
}
