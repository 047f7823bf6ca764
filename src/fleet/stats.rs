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
mod tests {
    use super::*;

    fn counts(calls: u64, failures: u64, slow: u64) -> Counts {
        Counts {
            calls,
            failures,
            slow,
        }
    }

    fn observed(calls: u64, failures: u64, state: State, generation: u64) -> Observed {
        Observed {
            totals: counts(calls, failures, 0),
            state,
            generation,
        }
    }

    #[test]
    fn buckets_come_from_wall_clock_time_and_keys_share_a_hash_tag() {
        assert_eq!(bucket_of(1_763_955_000_999, 1_000), 1_763_955_000);
        assert_eq!(bucket_of(1_763_955_001_000, 1_000), 1_763_955_001);
        assert_eq!(bucket_of(5, 0), 5, "a zero width is treated as 1 ms");
        assert_eq!(key("hb", "payments", 1000, 17), "hb:{payments}:1000:17");
        let rule = FleetRule::failure_rate(0.5);
        assert_eq!(ttl_ms(&rule), 12_000);
    }

    #[test]
    fn the_window_reads_the_last_buckets_but_none_before_the_last_close() {
        assert_eq!(window(100, 10, 0), 91..=100);
        assert_eq!(window(100, 10, 95), 95..=100);
        assert_eq!(window(3, 10, 0), 0..=3, "near zero: no underflow");
        assert_eq!(window(100, 0, 0), 100..=100);
        // A close in bucket 100 makes `since` 101: until bucket 101 starts, nothing is read.
        assert!(window(100, 10, 101).is_empty());
    }

    /// Clock skew: an instance whose clock runs 20 s ahead writes into buckets 20 ahead,
    /// which an instance reading a 10-bucket window never reads: a skewed instance's calls are
    /// lost to the fleet, never counted twice or in the wrong place.
    #[test]
    fn a_skewed_writer_lands_outside_the_readers_window() {
        let width = 1_000;
        let reader_now = 1_763_955_000_000;
        let skewed = bucket_of(reader_now + 20_000, width);
        assert!(!window(bucket_of(reader_now, width), 10, 0).contains(&skewed));
        let slight = bucket_of(reader_now + 300, width);
        assert!(window(bucket_of(reader_now + 1_000, width), 10, 0).contains(&slight));
    }

    #[test]
    fn deltas_are_differences_of_lifetime_totals_and_the_first_sight_is_a_baseline() {
        let mut t = Tracker::default();
        let name: Arc<str> = Arc::from("db");
        assert_eq!(
            t.observe(&name, observed(1_000, 10, State::Closed, 0), 50, true),
            (Counts::default(), 0)
        );
        assert_eq!(
            t.observe(&name, observed(1_500, 60, State::Closed, 0), 51, true),
            (counts(500, 50, 0), 0)
        );
        // Opened (generation 1), then closed again (generation 3): the fleet window restarts
        // after the bucket of the close.
        assert_eq!(
            t.observe(&name, observed(1_510, 70, State::Open, 1), 52, true)
                .1,
            0
        );
        assert_eq!(
            t.observe(&name, observed(1_511, 70, State::Closed, 3), 60, true),
            (counts(1, 0, 0), 61)
        );
        assert_eq!(
            t.observe(&name, observed(1_511, 70, State::Closed, 3), 70, true)
                .1,
            61
        );
        // Totals that went backwards (cannot happen) give no delta rather than a huge one.
        assert_eq!(
            t.observe(&name, observed(5, 0, State::Closed, 3), 71, true)
                .0,
            Counts::default()
        );
    }

    #[test]
    fn the_queue_merges_bounds_and_expires_counting_what_it_drops() {
        let rule = FleetRule::failure_rate(0.5).window(std::time::Duration::from_secs(10), 10);
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("a"), Arc::from("b"));
        let mut q = Queue::new(2);
        q.add(&a, 100, &rule, counts(1, 1, 0));
        q.add(&a, 100, &rule, counts(2, 0, 1));
        q.add(&a, 101, &rule, Counts::default());
        assert_eq!(q.len(), 1, "merged, and a zero delta adds nothing");
        let taken = q.take_all();
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].2.counts, counts(3, 1, 1));
        for (name, bucket, pending) in taken {
            q.restore(name, bucket, pending);
        }
        assert_eq!(q.len(), 1, "restored");
        q.add(&b, 101, &rule, counts(1, 0, 0));
        q.add(&a, 102, &rule, counts(1, 0, 0));
        assert_eq!(
            (q.len(), q.dropped()),
            (3, 0),
            "one flush's deltas, all kept"
        );
        q.bound();
        assert_eq!(
            (q.len(), q.dropped()),
            (2, 1),
            "left to wait: the oldest bucket was evicted"
        );
        let taken = q.take_all();
        assert!(taken.iter().all(|(_, bucket, _)| *bucket != 100));
        for (name, bucket, pending) in taken {
            q.restore(name, bucket, pending);
        }
        // Bucket 101 (ms 101 000..102 000) leaves a 10 s window at 112 000.
        q.expire(111_999);
        assert_eq!(q.len(), 2);
        q.expire(112_000);
        assert_eq!((q.len(), q.dropped()), (1, 2));
        // A flush takes the last entry; its pipeline fails after it may have been applied.
        let lost = q.take_all().len();
        q.count_dropped(lost);
        assert_eq!((q.len(), q.dropped()), (0, 3));
        q.add(&a, 200, &rule, counts(1, 0, 0));
        q.take_all(); // written
        assert_eq!((q.len(), q.dropped()), (0, 3), "written, not dropped");
        // An entry put back merges with one added since.
        q.add(&a, 300, &rule, counts(1, 0, 0));
        let taken = q.take_all();
        q.add(&a, 300, &rule, counts(2, 1, 0));
        for (name, bucket, pending) in taken {
            q.restore(name, bucket, pending);
        }
        assert_eq!(q.take_all()[0].2.counts, counts(3, 1, 0));
    }

    #[test]
    fn only_newer_generations_from_a_sender_are_fresh() {
        let now = Instant::now();
        let mut d = Dedup::new(3, None);
        assert!(d.fresh("db", "i1", 5, now));
        assert!(!d.fresh("db", "i1", 5, now), "duplicate");
        assert!(!d.fresh("db", "i1", 4, now), "older, arriving late");
        assert!(d.fresh("db", "i1", 7, now));
        assert!(
            d.fresh("db", "i2", 1, now),
            "another sender has its own generations"
        );
        assert!(d.fresh("cache", "i1", 1, now), "another breaker too");
        // Full: cleared, still bounded.
        assert!(d.fresh("x", "i3", 1, now));
        assert!(d.last.len() <= 3);
    }

    /// With signed messages, a full table lets go of the pairs heard longest ago (past the
    /// replay window a replay is refused anyway) and keeps the recent ones, whose replays stay
    /// duplicates.
    #[test]
    fn a_full_table_lets_go_of_old_pairs_first() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut d = Dedup::new(3, Some(s(20)));
        assert!(d.fresh("a", "p", 1, t0));
        assert!(d.fresh("b", "p", 1, t0 + s(25)));
        assert!(d.fresh("c", "p", 1, t0 + s(30)));
        // Full at 40 s: `a` (40 s old) goes; `b` and `c` (15 and 10 s) stay.
        assert!(d.fresh("d", "p", 1, t0 + s(40)));
        assert!(!d.fresh("b", "p", 1, t0 + s(40)), "still a duplicate");
        assert!(!d.fresh("c", "p", 1, t0 + s(40)), "still a duplicate");
        assert_eq!(d.last.len(), 3);
        // All recent: cleared as a last resort, still bounded.
        assert!(d.fresh("e", "p", 1, t0 + s(41)));
        assert!(d.last.len() <= 3);
    }

    /// A wall clock set back (an NTP step, a VM resumed) after a close: the close is in the
    /// past whatever the clock now says, so the fleet window opens again one bucket later, not
    /// when the clock catches up with the bucket of the close.
    #[test]
    fn a_clock_set_back_after_a_close_does_not_blind_the_fleet_window() {
        let mut t = Tracker::default();
        let name: Arc<str> = Arc::from("db");
        t.observe(&name, observed(100, 0, State::Closed, 0), 5_000, true);
        t.observe(&name, observed(110, 10, State::Open, 1), 5_001, true);
        let (_, since) = t.observe(&name, observed(111, 10, State::Closed, 3), 5_002, true);
        assert_eq!(since, 5_003);
        // An hour back (3 600 buckets of 1 s).
        let (_, since) = t.observe(&name, observed(120, 10, State::Closed, 3), 1_403, true);
        assert!(since <= 1_404, "blind until bucket {since}");
        let (_, since) = t.observe(&name, observed(130, 10, State::Closed, 3), 1_410, true);
        assert!(!window(1_410, 10, since).is_empty());
    }
}
