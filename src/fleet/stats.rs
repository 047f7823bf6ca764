//! The flusher's and the subscriber's bookkeeping, as pure data: wall-clock buckets, key
//! names, per-flush deltas of a breaker's lifetime totals, the bounded queue of deltas not yet
//! written, and which remote messages are fresh. No Redis, no clock reads, no threads.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::fleet::rule::{Counts, FleetRule};
use crate::fleet::settled::Settled;
use crate::state::State;

/// The fleet bucket holding wall-clock time `wall_ms` (milliseconds since the UNIX epoch):
/// the same on every instance whose clock agrees, whatever its process's start time.
pub(crate) fn bucket_of(wall_ms: u64, width_ms: u64) -> u64 {
    wall_ms / width_ms.max(1)
}

/// The Redis key of one breaker's bucket: `{prefix}:{{name}}:{width_ms}:{bucket}`. The braces
/// are a Redis Cluster hash tag: every key of one breaker hashes to one slot, so a flush's
/// commands for one breaker go to one node. The width is part of the key so that instances
/// configured with different widths never add into each other's buckets.
pub(crate) fn key(prefix: &str, name: &str, width_ms: u64, bucket: u64) -> String {
    format!("{prefix}:{{{name}}}:{width_ms}:{bucket}")
}

/// How long a bucket's key lives after its last write, in milliseconds: the window plus one
/// bucket (the bucket being written is still current for up to one width) plus a second of
/// margin for clock skew and flush delay.
pub(crate) fn ttl_ms(rule: &FleetRule) -> u64 {
    rule.window_ms() + rule.width_ms() + 1_000
}

/// The buckets a flush at `now_bucket` reads: the last `buckets` of them, but none before
/// `since` (the first whole bucket after the breaker last closed, see [`Seen`]).
pub(crate) fn window(now_bucket: u64, buckets: u32, since: u64) -> RangeInclusive<u64> {
    let first = now_bucket
        .saturating_sub(u64::from(buckets.max(1)) - 1)
        .max(since);
    first..=now_bucket
}

/// What the flusher last saw of one breaker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Seen {
    /// Lifetime successes + failures, failures and slow calls at the last flush.
    totals: Counts,
    generation: u64,
    /// The first fleet bucket the fleet rule may read: like the local window, the fleet
    /// window starts afresh when the breaker closes (otherwise the failures that opened it
    /// would trip it again at once).
    pub(crate) since: u64,
    /// The last bucket in which this instance made a call through the breaker (`None`: none
    /// since the link started).
    last_call_bucket: Option<u64>,
    /// The buckets whose key's expiry a flush of this instance set (the most recent
    /// [`EXPIRIES_KEPT`], newest last).
    expired: Vec<u64>,
    /// The window's buckets already read and final.
    pub(crate) settled: Settled,
}

/// A breaker's lifetime totals and state, as [`Breaker::metrics`](crate::Breaker::metrics)
/// gives them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Observed {
    pub(crate) totals: Counts,
    pub(crate) state: State,
    pub(crate) generation: u64,
}

/// Per-breaker deltas between flushes: `delta = totals now − totals at the last flush`.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    seen: HashMap<Arc<str>, Seen, foldhash::fast::RandomState>,
}

impl Tracker {
    /// The calls made since the last flush, and the bucket the fleet window may start from.
    /// A breaker seen for the first time gives no delta when `first_sight_is_baseline` (the
    /// link's first look at the registry: its totals may hold calls made long before the link
    /// started, which belong in no current bucket); later, a breaker seen for the first time
    /// was created since, and its totals are its first delta.
    pub(crate) fn observe(
        &mut self,
        name: &Arc<str>,
        now: Observed,
        now_bucket: u64,
        first_sight_is_baseline: bool,
    ) -> (Counts, u64) {
        let Some(seen) = self.seen.get_mut(name) else {
            // A breaker created since the link's first look counts its calls from its
            // creation, if it has known no transition: then they are all of its first Closed
            // period. One that opened (and maybe closed) already counts from now, its window
            // from the next bucket, like any breaker seen closing.
            let fresh = !first_sight_is_baseline && now.generation == 0;
            let delta = if fresh { now.totals } else { Counts::default() };
            let since = if fresh || first_sight_is_baseline {
                0
            } else {
                now_bucket + 1
            };
            let seen = Seen {
                totals: now.totals,
                generation: now.generation,
                since,
                last_call_bucket: (delta.calls > 0).then_some(now_bucket),
                expired: Vec::new(),
                settled: Settled::default(),
            };
            self.seen.insert(name.clone(), seen);
            return (delta, since);
        };
        // Totals never go backwards (see `Breaker::metrics`); saturating all the same.
        let delta = Counts {
            calls: now.totals.calls.saturating_sub(seen.totals.calls),
            failures: now.totals.failures.saturating_sub(seen.totals.failures),
            slow: now.totals.slow.saturating_sub(seen.totals.slow),
        };
        if now.generation != seen.generation && now.state == State::Closed {
            seen.since = now_bucket + 1;
        }
        // The close happened before now whatever the wall clock says: a clock set back after
        // it must not keep the window shut until the clock reaches the close's bucket again.
        seen.since = seen.since.min(now_bucket + 1);
        seen.totals = now.totals;
        seen.generation = now.generation;
        if delta.calls > 0 {
            seen.last_call_bucket = Some(now_bucket);
        }
        (delta, seen.since)
    }

    /// Whether this instance made a call through `name` within the last `buckets` buckets:
    /// only then does a flush read its fleet window. An idle breaker's held buckets are
    /// forgotten (its first call makes it active again, and the next flush reads it).
    pub(crate) fn active(&mut self, name: &str, now_bucket: u64, buckets: u32) -> bool {
        let Some(seen) = self.seen.get_mut(name) else {
            return false;
        };
        let active = seen
            .last_call_bucket
            .is_some_and(|b| now_bucket < b.saturating_add(u64::from(buckets.max(1))));
        if !active && seen.settled.len() > 0 {
            seen.settled.clear();
        }
        active
    }

    /// The buckets already read of `name`'s window.
    pub(crate) fn settled(&mut self, name: &str) -> Option<&mut Settled> {
        self.seen.get_mut(name).map(|s| &mut s.settled)
    }

    /// Whether a write to `name`'s `bucket` must set the key's expiry: only the first write
    /// of each bucket from this instance does (the expiry runs from the first write; see
    /// [`ttl_ms`]). By bucket, not by the newest one: after a clock stepped back, or for deltas
    /// put back after a failed flush, an older bucket is still a bucket of its own.
    pub(crate) fn needs_expiry(&self, name: &str, bucket: u64) -> bool {
        self.seen
            .get(name)
            .is_none_or(|s| !s.expired.contains(&bucket))
    }

    /// Records that a flush that reached Redis set the expiry of `name`'s `bucket`.
    pub(crate) fn expiry_set(&mut self, name: &str, bucket: u64) {
        if let Some(seen) = self.seen.get_mut(name) {
            if !seen.expired.contains(&bucket) {
                if seen.expired.len() >= EXPIRIES_KEPT {
                    seen.expired.remove(0);
                }
                seen.expired.push(bucket);
            }
        }
    }
}

/// Buckets per breaker whose expiry is remembered as set: a breaker writes one bucket at a
/// time, a few more after Redis was away; forgetting one only costs a second `PEXPIRE`.
pub(crate) const EXPIRIES_KEPT: usize = 8;

/// One breaker's delta for one bucket, not yet written to Redis.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Pending {
    pub(crate) counts: Counts,
    pub(crate) width_ms: u64,
    /// The key's time to live (see [`ttl_ms`]).
    pub(crate) ttl_ms: u64,
    /// When the bucket leaves every fleet window (wall-clock ms): a delta still pending then
    /// is worthless and dropped.
    pub(crate) useless_at_ms: u64,
}

/// The bounded queue of deltas waiting for Redis: deltas of one breaker and bucket merged,
/// at most `capacity` (breaker, bucket) entries left waiting between flushes. One flush's
/// deltas (one per breaker with calls) are all sent, however many; while Redis is away,
/// [`bound`](Queue::bound) evicts the entries that leave the window first down to capacity,
/// and entries whose bucket has left the window are dropped; both are counted.
#[derive(Debug)]
pub(crate) struct Queue {
    entries: HashMap<(Arc<str>, u64), Pending>,
    capacity: usize,
    dropped: u64,
}

impl Queue {
    pub(crate) fn new(capacity: usize) -> Queue {
        Queue {
            entries: HashMap::new(),
            capacity: capacity.max(1),
            dropped: 0,
        }
    }

    /// Adds `counts` to breaker `name`'s bucket `bucket` of `rule`.
    pub(crate) fn add(&mut self, name: &Arc<str>, bucket: u64, rule: &FleetRule, counts: Counts) {
        if counts.is_zero() {
            return;
        }
        let k = (name.clone(), bucket);
        if let Some(p) = self.entries.get_mut(&k) {
            p.counts.add(counts);
            return;
        }
        let width_ms = rule.width_ms();
        let useless_at_ms = (bucket + 1)
            .saturating_mul(width_ms)
            .saturating_add(rule.window_ms());
        self.entries.insert(
            k,
            Pending {
                counts,
                width_ms,
                ttl_ms: ttl_ms(rule),
                useless_at_ms,
            },
        );
    }

    /// Evicts the entries that leave the window first until at most `capacity` are left, to
    /// wait for the next flush; counts them. One pass and a partial sort: no work per entry
    /// added.
    pub(crate) fn bound(&mut self) {
        let excess = self.entries.len().saturating_sub(self.capacity);
        if excess == 0 {
            return;
        }
        let mut by_end: Vec<(u64, (Arc<str>, u64))> = self
            .entries
            .iter()
            .map(|(k, p)| (p.useless_at_ms, k.clone()))
            .collect();
        by_end.select_nth_unstable_by_key(excess - 1, |(end, _)| *end);
        for (_, k) in by_end.drain(..excess) {
            self.entries.remove(&k);
        }
        self.dropped += excess as u64;
    }

    /// Drops the entries no fleet window reads any more at `wall_ms`.
    pub(crate) fn expire(&mut self, wall_ms: u64) {
        let before = self.entries.len();
        self.entries.retain(|_, p| p.useless_at_ms > wall_ms);
        self.dropped += (before - self.entries.len()) as u64;
    }

    /// Takes every entry out, to write: those a flush does not get to are
    /// [`restore`](Queue::restore)d, those lost with a failed pipeline
    /// [`count_dropped`](Queue::count_dropped).
    pub(crate) fn take_all(&mut self) -> Vec<(Arc<str>, u64, Pending)> {
        self.entries.drain().map(|((n, b), p)| (n, b, p)).collect()
    }

    /// Puts back an entry that was not sent (merged with any added since).
    pub(crate) fn restore(&mut self, name: Arc<str>, bucket: u64, pending: Pending) {
        self.entries
            .entry((name, bucket))
            .and_modify(|p| p.counts.add(pending.counts))
            .or_insert(pending);
    }

    /// Counts `n` entries lost: whether they were written is unknown.
    pub(crate) fn count_dropped(&mut self, n: usize) {
        self.dropped += n as u64;
    }

    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Entries dropped so far (evicted or expired).
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped
    }
}

/// Which remote messages are new: per (breaker name, sender), the highest generation applied.
/// A message is fresh only with a higher generation than that sender's last one for that
/// name: a duplicate or a late, older message is ignored. A sender's generations only grow
/// (each process starts a new sender id), so this is exact.
///
/// Bounded: at most `capacity` senders × names. When it is full, pairs last heard longer ago
/// than `keep_for` go first: with signed messages, that is past the replay window, after which
/// the signature check refuses a replay anyway. If none is that old (or messages are not
/// signed), the table is cleared; then at worst one old message per pair applies again.
#[derive(Debug)]
pub(crate) struct Dedup {
    last: HashMap<(Box<str>, Box<str>), (u64, Instant)>,
    capacity: usize,
    keep_for: Option<Duration>,
}

impl Dedup {
    pub(crate) fn new(capacity: usize, keep_for: Option<Duration>) -> Dedup {
        Dedup {
            last: HashMap::new(),
            capacity: capacity.max(1),
            keep_for,
        }
    }

    /// Whether `(name, instance, generation)`, heard at `now`, is newer than anything heard
    /// from that sender for that name; records it if so.
    pub(crate) fn fresh(
        &mut self,
        name: &str,
        instance: &str,
        generation: u64,
        now: Instant,
    ) -> bool {
        let k = (Box::<str>::from(name), Box::<str>::from(instance));
        match self.last.get_mut(&k) {
            Some((last, _)) if *last >= generation => false,
            Some(last) => {
                *last = (generation, now);
                true
            }
            None => {
                if self.last.len() >= self.capacity {
                    if let Some(keep_for) = self.keep_for {
                        self.last
                            .retain(|_, (_, at)| now.saturating_duration_since(*at) <= keep_for);
                    }
                    if self.last.len() >= self.capacity {
                        self.last.clear();
                    }
                }
                self.last.insert(k, (generation, now));
                true
            }
        }
    }
}

#[cfg(test)]
mod tests;
