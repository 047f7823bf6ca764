//! Bad periods: where the recorded dependency was failing, judged from the trace alone.

use std::collections::BTreeMap;
use std::time::Duration;

use hotbreaker::recording::Recorded;

use crate::calls::Call;

/// What makes a stretch of the trace an incident: buckets of `bucket` in which at least
/// `min_calls` calls were answered and at least `failure_share` of them failed. Adjacent bad
/// buckets make one incident.
#[derive(Clone, Copy, Debug)]
pub struct IncidentRule {
    pub bucket: Duration,
    pub min_calls: u64,
    pub failure_share: f64,
}

impl Default for IncidentRule {
    fn default() -> Self {
        IncidentRule {
            bucket: Duration::from_secs(1),
            min_calls: 5,
            failure_share: 0.5,
        }
    }
}

/// An incident: `[start, end)` on the trace's clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Incident {
    pub start: Duration,
    pub end: Duration,
}

impl Incident {
    pub fn contains(&self, t: Duration) -> bool {
        self.start <= t && t < self.end
    }

    pub fn length(&self) -> Duration {
        self.end - self.start
    }
}

/// The incidents of `calls` (sorted by start), by `rule`.
pub fn find(calls: &[Call], rule: &IncidentRule) -> Vec<Incident> {
    let width = rule.bucket.as_nanos().max(1);
    // Only the buckets that hold calls: a trace with a long quiet stretch, or a tiny bucket,
    // costs memory in proportion to its calls, never to its span.
    let mut buckets: BTreeMap<u128, (u64, u64)> = BTreeMap::new();
    for c in calls {
        let (answered, failed) = buckets.entry(c.start.as_nanos() / width).or_default();
        match c.outcome {
            Recorded::Success => *answered += u64::from(c.weight),
            Recorded::Failure => {
                *answered += u64::from(c.weight);
                *failed += u64::from(c.weight);
            }
            Recorded::Ignored | Recorded::Rejected => {}
        }
    }
    let at =
        |i: u128| Duration::from_nanos(u64::try_from(i.saturating_mul(width)).unwrap_or(u64::MAX));
    let mut out: Vec<Incident> = Vec::new();
    let mut last_bad: Option<u128> = None;
    for (&i, &(answered, failed)) in &buckets {
        let bad =
            answered >= rule.min_calls && failed as f64 >= rule.failure_share * answered as f64;
        if !bad {
            continue;
        }
        match out.last_mut() {
            Some(last) if last_bad == Some(i.wrapping_sub(1)) => last.end = at(i + 1),
            _ => out.push(Incident {
                start: at(i),
                end: at(i + 1),
            }),
        }
        last_bad = Some(i);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(ms: u64, outcome: Recorded) -> Call {
        Call {
            start: Duration::from_millis(ms),
            latency: Duration::ZERO,
            outcome,
            weight: 1,
        }
    }

    #[test]
    fn adjacent_bad_buckets_make_one_incident_and_quiet_buckets_none() {
        let mut calls = Vec::new();
        for ms in (0..10_000).step_by(10) {
            let bad = (3_000..5_000).contains(&ms) || (8_000..8_200).contains(&ms);
            calls.push(call(
                ms,
                if bad {
                    Recorded::Failure
                } else {
                    Recorded::Success
                },
            ));
        }
        let found = find(&calls, &IncidentRule::default());
        assert_eq!(
            found,
            vec![Incident {
                start: Duration::from_secs(3),
                end: Duration::from_secs(5)
            }]
        );
        assert!(find(&[], &IncidentRule::default()).is_empty());
    }
}
