//! Which breakers a flush looks at: the active ones every time, the idle ones in turns.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::sync::Arc;

use super::pipeline::Read;
use crate::breaker::Breaker;
use crate::fleet::Shared;
use crate::fleet::quorum::LiveCount;
use crate::fleet::rule::FleetRule;
use crate::fleet::settled;
use crate::fleet::stats::{self, Queue, Tracker};
use crate::state::State;

/// How the flusher goes over the registry. The breakers called from here within their
/// window (the active ones) are looked at every flush; the others, idle, one flush in
/// [`IDLE_EVERY`], each in its turn, to find those called again (and those created since).
/// A large registry of mostly idle breakers then costs a tenth of a scan per flush: looking
/// at a breaker reads a few of its cache lines, and most of those reads would find nothing.
#[derive(Default)]
pub(crate) struct Scan {
    /// Flushes so far (the first looks at every breaker).
    pub(super) flushes: u64,
    /// Breakers looked at by the last flush.
    pub(super) looked: usize,
    /// The fleet's size as the quorum counts it.
    pub(super) live: LiveCount,
    /// Keys whose first write went out in a pipeline that failed after it may have been
    /// applied: the write may have landed without its `PEXPIRE` (a connection cut between
    /// them), so the next flush sets their expiry (a no-op on a key that does not exist).
    /// At most [`MAX_PIPELINE`](super::pipeline::MAX_PIPELINE).
    pub(super) expire_later: Vec<(String, u64)>,
    pub(super) active: HashMap<Arc<str>, Arc<Breaker>, foldhash::fast::RandomState>,
}

/// An idle breaker is looked at once in this many flushes (once a second at the default
/// 100 ms interval): the first calls after an idle spell reach the fleet's buckets up to that
/// much later, in the bucket of the flush that saw them.
pub(crate) const IDLE_EVERY: u64 = 10;

/// Which of the [`IDLE_EVERY`] turns looks at the breaker whose name is at `name` (its
/// address, stable for the entry's life, spread by a multiplicative hash): no read of the
/// breaker or of its name.
pub(super) fn turn(name: &Arc<str>) -> u64 {
    let address = Arc::as_ptr(name).cast::<u8>() as usize as u64;
    (address.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) % IDLE_EVERY
}

/// Goes over the breakers with a fleet rule that this flush looks at (see [`Scan`]): queues
/// each one's delta in the current bucket, and lists the buckets of its fleet window still to
/// read if it is Closed and active (called from here within its window; an idle breaker's
/// window is not read).
pub(super) fn collect(
    shared: &Shared,
    scan: &mut Scan,
    tracker: &mut Tracker,
    queue: &mut Queue,
    now_ms: u64,
) -> Vec<Read> {
    let mut reads = Vec::new();
    let first = scan.flushes == 0;
    let this_turn = scan.flushes % IDLE_EVERY;
    scan.flushes += 1;
    let mut looked = 0;
    let mut look = |name: &Arc<str>, breaker: &Arc<Breaker>| -> bool {
        looked += 1;
        let Some(rule) = shared.options.rule_for(name) else {
            return false;
        };
        let observed = breaker.fleet_totals();
        let now_bucket = stats::bucket_of(now_ms, rule.width_ms());
        let (delta, since) = tracker.observe(name, observed, now_bucket, first);
        queue.add(name, now_bucket, &rule, delta);
        if !tracker.active(name, now_bucket, rule.buckets()) {
            return false;
        }
        if observed.state == State::Closed {
            let window: RangeInclusive<u64> = stats::window(now_bucket, rule.buckets(), since);
            let (start, width) = (*window.start(), rule.width_ms());
            let margin = settle_margin_ms(shared, &rule);
            if let Some(settled) = tracker.settled(name) {
                settled.retain(|b| b >= start && settled::is_settled(b, width, now_ms, margin));
                let (known, buckets) = settled.split(window);
                reads.push(Read {
                    name: name.clone(),
                    breaker: breaker.clone(),
                    generation: observed.generation,
                    rule,
                    known,
                    buckets,
                });
            }
        }
        true
    };
    scan.active.retain(|name, breaker| look(name, breaker));
    // The map as it is, unsorted: no copy of the names on every flush.
    let entries = shared.registry.entries().pin();
    for (name, entry) in entries.iter() {
        if (first || turn(name) == this_turn)
            && !scan.active.contains_key(name)
            && look(name, &entry.breaker)
        {
            scan.active.insert(name.clone(), entry.breaker.clone());
        }
    }
    scan.looked = looked;
    reads
}

/// How long after a bucket ends its counts are final: the last flush that collected calls in
/// it may be up to a flush interval and a command timeout late, and a bucket's own width
/// (at least) is left as margin.
pub(super) fn settle_margin_ms(shared: &Shared, rule: &FleetRule) -> u64 {
    let o = &shared.options;
    let late = o.flush_interval.saturating_mul(2) + o.command_timeout;
    u64::try_from(late.as_millis())
        .unwrap_or(u64::MAX)
        .max(rule.width_ms())
}
