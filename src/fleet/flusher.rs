//! The flusher task: every `flush_interval`, the deltas of the breakers' lifetime totals go to
//! Redis and the fleet's totals come back, in one pipeline; then the fleet rules are
//! evaluated. Reads only what `Breaker::metrics` reads: nothing is added to a call. The same
//! pipeline reads Redis's clock (the fleet's time, see [`FleetClock`](super::fleet_clock::FleetClock)) and keeps this
//! instance in the set of live instances that [`Quorum::Majority`](super::Quorum) counts.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::Value;
use redis::aio::ConnectionManager;

use crate::breaker::Breaker;
use crate::fleet::message;
use crate::fleet::quorum::LiveCount;
use crate::fleet::rule::{Counts, FleetRule};
use crate::fleet::settled;
use crate::fleet::stats::{self, Pending, Queue, Tracker};
use crate::fleet::status::Counters;
use crate::fleet::{Shared, backoff};
use crate::state::State;

/// The most commands one pipeline carries. A flush with more is sent as several pipelines,
/// one after the other, each within the command timeout: a large registry makes a flush
/// longer, never a single request that cannot finish in time.
pub(crate) const MAX_PIPELINE: usize = 2_048;

/// One breaker whose fleet totals this flush reads.
struct Read {
    name: Arc<str>,
    breaker: Arc<Breaker>,
    /// The breaker's generation when its window was listed: the totals read describe that
    /// Closed period only.
    generation: u64,
    rule: FleetRule,
    /// The total of the window's buckets already read and final.
    known: Counts,
    /// The buckets to read.
    buckets: Vec<u64>,
}

/// One (breaker, bucket) delta this flush writes.
struct Write {
    name: Arc<str>,
    bucket: u64,
    pending: Pending,
    /// Whether this write sets the key's expiry (the first write of the bucket from here).
    expire: bool,
}

impl Write {
    /// Its nonzero counts, as (field, count): one `HINCRBY` each.
    fn fields(&self) -> impl Iterator<Item = (&'static str, u64)> {
        let c = self.pending.counts;
        [("c", c.calls), ("f", c.failures), ("s", c.slow)]
            .into_iter()
            .filter(|(_, n)| *n > 0)
    }

    fn commands(&self) -> usize {
        self.fields().count() + usize::from(self.expire)
    }
}

/// The part of a flush one pipeline carries: a run of the writes, then a run of the reads
/// (each breaker's reads in one pipeline).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Part {
    pub(crate) writes: std::ops::Range<usize>,
    pub(crate) reads: std::ops::Range<usize>,
}

/// Splits a flush into pipelines of at most `max` commands (besides the first one's five for
/// the clock and the membership), given each write's and each read's command count, in
/// order. A unit larger than `max` (a window of more buckets) goes alone. Always at least one
/// part: the first carries the clock and the heartbeat even with nothing else to send.
pub(crate) fn plan(writes: &[usize], reads: &[usize], max: usize) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut current = Part {
        writes: 0..0,
        reads: 0..0,
    };
    let (mut size, mut units) = (0, 0);
    for (i, &n) in writes.iter().enumerate() {
        if units > 0 && size + n > max {
            parts.push(current);
            current = Part {
                writes: i..i,
                reads: 0..0,
            };
            (size, units) = (0, 0);
        }
        current.writes.end = i + 1;
        (size, units) = (size + n, units + 1);
    }
    for (i, &n) in reads.iter().enumerate() {
        if units > 0 && size + n > max {
            parts.push(current);
            current = Part {
                writes: writes.len()..writes.len(),
                reads: i..i,
            };
            (size, units) = (0, 0);
        }
        current.reads.end = i + 1;
        (size, units) = (size + n, units + 1);
    }
    parts.push(current);
    parts
}

pub(crate) async fn run(shared: Arc<Shared>, mut manager: ConnectionManager) {
    let options = &shared.options;
    let counters = &shared.counters;
    let mut interval = tokio::time::interval(options.flush_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut tracker = Tracker::default();
    let mut scan = Scan::default();
    let mut queue = Queue::new(options.queue_capacity);
    let mut failures = 0u32;
    let mut retry_at = Instant::now();
    loop {
        interval.tick().await;
        // Until Redis's clock is first read (Redis down since the start), the local wall
        // clock stands in: the deltas of those calls wait in the queue with its buckets.
        let now_ms = shared.fleet_ms();
        let reads = collect(&shared, &mut scan, &mut tracker, &mut queue, now_ms);
        queue.expire(now_ms);
        if Instant::now() < retry_at {
            // The deltas wait for a later flush: within the queue's capacity.
            queue.bound();
            Counters::set(&counters.deltas_pending, queue.len() as u64);
            Counters::set(&counters.deltas_dropped, queue.dropped());
            continue;
        }
        let writes: Vec<Write> = queue
            .take_all()
            .into_iter()
            .map(|(name, bucket, pending)| Write {
                expire: tracker.needs_expiry(&name, bucket),
                name,
                bucket,
                pending,
            })
            .collect();
        let started = Instant::now();
        let sent = flush(
            &shared,
            &mut manager,
            (&mut scan, &mut tracker),
            (&writes, &reads),
            now_ms,
        )
        .await;
        match sent {
            Ok(commands) => {
                counters.flushed(started.elapsed());
                Counters::set(&counters.last_flush_commands, commands as u64);
                Counters::set(&counters.deltas_pending, 0);
                failures = 0;
                Counters::flag(&counters.connected, true);
            }
            Err(Failed { part, refused }) => {
                // The parts before `part` were written. `part` itself may have been applied
                // without its reply reaching us (a timeout, a connection cut mid-way):
                // sending it again could count calls twice, so its deltas are dropped (at
                // most once), unless the connection was refused outright. The parts after
                // it were never sent: their deltas wait for the next flush.
                let mut lost = 0;
                for (i, w) in writes.into_iter().enumerate() {
                    if i < part.writes.start {
                        continue;
                    }
                    if i < part.writes.end && !refused {
                        lost += 1;
                        if w.expire && scan.expire_later.len() < MAX_PIPELINE {
                            let key =
                                stats::key(&options.prefix, &w.name, w.pending.width_ms, w.bucket);
                            scan.expire_later.push((key, w.pending.ttl_ms));
                        }
                    } else {
                        queue.restore(w.name, w.bucket, w.pending);
                    }
                }
                queue.count_dropped(lost);
                queue.bound();
                Counters::set(&counters.deltas_pending, queue.len() as u64);
                Counters::add(&counters.flush_errors, 1);
                Counters::flag(&counters.connected, false);
                scan.live.interrupted();
                failures = failures.saturating_add(1);
                retry_at = Instant::now() + backoff(failures, options.reconnect_max);
            }
        }
        Counters::set(&counters.deltas_dropped, queue.dropped());
    }
}

/// Why a flush stopped: the part whose pipeline failed, and whether the connection was
/// refused outright (then nothing of it reached Redis).
struct Failed {
    part: Part,
    refused: bool,
}

/// Sends one flush as its parts' pipelines, in order, and applies each reply as it comes:
/// the clock and the live count, the writes' key errors, the reads' verdicts. Stops at the
/// first pipeline that fails. Returns the number of commands sent.
async fn flush(
    shared: &Shared,
    manager: &mut ConnectionManager,
    (scan, tracker): (&mut Scan, &mut Tracker),
    (writes, reads): (&[Write], &[Read]),
    now_ms: u64,
) -> Result<usize, Failed> {
    let options = &shared.options;
    let counters = &shared.counters;
    let write_sizes: Vec<usize> = writes.iter().map(Write::commands).collect();
    let read_sizes: Vec<usize> = reads.iter().map(|r| r.buckets.len()).collect();
    let parts = plan(&write_sizes, &read_sizes, MAX_PIPELINE);
    Counters::set(&counters.last_flush_pipelines, parts.len() as u64);
    let mut commands = 0;
    for (i, part) in parts.iter().enumerate() {
        let (mut pipe, head) = if i == 0 {
            let mut pipe = membership(shared, now_ms);
            for (key, ttl_ms) in &scan.expire_later {
                pipe.cmd("PEXPIRE").arg(key).arg(*ttl_ms).ignore();
            }
            (pipe, 2)
        } else {
            (redis::pipe(), 0)
        };
        let (w, r) = (&writes[part.writes.clone()], &reads[part.reads.clone()]);
        let hincrbys = writes_and_reads(&mut pipe, &options.prefix, w, r);
        let expected = head + hincrbys + r.iter().map(|r| r.buckets.len()).sum::<usize>();
        commands += pipe.cmd_iter().count();
        let sent = Instant::now();
        let reply = tokio::time::timeout(
            options.command_timeout,
            pipe.query_async::<Vec<Value>>(manager),
        )
        .await;
        let values = match reply {
            // A part succeeds when every reply is there (and, in the first, Redis told its
            // time: an error there, from a server refusing everything, `NOAUTH` or
            // `LOADING`, fails the flush).
            Ok(Ok(values))
                if values.len() == expected
                    && (i > 0 || observe_time(shared, sent, &values[0])) =>
            {
                values
            }
            outcome => {
                if garbled(&outcome) {
                    Counters::add(&counters.garbage_replies, 1);
                }
                let refused = matches!(&outcome, Ok(Err(e)) if e.is_connection_refusal());
                return Err(Failed {
                    part: part.clone(),
                    refused,
                });
            }
        };
        let values = if i == 0 {
            scan.expire_later.clear();
            match count(&values[1]) {
                Some(live) => {
                    let hold = Duration::from_millis(options.liveness_ms());
                    let size = scan.live.observe(live, Instant::now(), hold);
                    Counters::set(&counters.instances, size);
                }
                None => Counters::add(&counters.garbage_replies, 1),
            }
            &values[2..]
        } else {
            &values[..]
        };
        let (written, read) = values.split_at(hincrbys);
        let failed_writes = written
            .iter()
            .filter(|v| !matches!(v, Value::Int(_)))
            .count();
        Counters::add(&counters.key_errors, failed_writes as u64);
        for write in w.iter().filter(|w| w.expire) {
            tracker.expiry_set(&write.name, write.bucket);
        }
        evaluate(shared, tracker, r, read, now_ms);
    }
    Ok(commands)
}

/// Whether a failed flush got an answer, but not the one asked for: a wrong number of
/// replies, no time in the first, a reply the client could not parse, or one of an
/// unexpected type. (A timeout, a
/// refused or broken connection is no answer at all.)
fn garbled(outcome: &Result<redis::RedisResult<Vec<Value>>, tokio::time::error::Elapsed>) -> bool {
    match outcome {
        Ok(Ok(_)) => true, // reached only with a wrong count or no time
        Ok(Err(e)) => matches!(
            e.kind(),
            redis::ErrorKind::Parse | redis::ErrorKind::UnexpectedReturnType
        ),
        Err(_) => false,
    }
}

/// How the flusher goes over the registry. The breakers called from here within their
/// window (the active ones) are looked at every flush; the others, idle, one flush in
/// [`IDLE_EVERY`], each in its turn, to find those called again (and those created since).
/// A large registry of mostly idle breakers then costs a tenth of a scan per flush: looking
/// at a breaker reads a few of its cache lines, and most of those reads would find nothing.
#[derive(Default)]
pub(crate) struct Scan {
    /// Flushes so far (the first looks at every breaker).
    flushes: u64,
    /// Breakers looked at by the last flush.
    looked: usize,
    /// The fleet's size as the quorum counts it.
    live: LiveCount,
    /// Keys whose first write went out in a pipeline that failed after it may have been
    /// applied: the write may have landed without its `PEXPIRE` (a connection cut between
    /// them), so the next flush sets their expiry (a no-op on a key that does not exist).
    /// At most [`MAX_PIPELINE`].
    expire_later: Vec<(String, u64)>,
    active: HashMap<Arc<str>, Arc<Breaker>, foldhash::fast::RandomState>,
}

/// An idle breaker is looked at once in this many flushes (once a second at the default
/// 100 ms interval): the first calls after an idle spell reach the fleet's buckets up to that
/// much later, in the bucket of the flush that saw them.
pub(crate) const IDLE_EVERY: u64 = 10;

/// Which of the [`IDLE_EVERY`] turns looks at the breaker whose name is at `name` (its
/// address, stable for the entry's life, spread by a multiplicative hash): no read of the
/// breaker or of its name.
fn turn(name: &Arc<str>) -> u64 {
    let address = Arc::as_ptr(name).cast::<u8>() as usize as u64;
    (address.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) % IDLE_EVERY
}

/// Goes over the breakers with a fleet rule that this flush looks at (see [`Scan`]): queues
/// each one's delta in the current bucket, and lists the buckets of its fleet window still to
/// read if it is Closed and active (called from here within its window; an idle breaker's
/// window is not read).
fn collect(
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
fn settle_margin_ms(shared: &Shared, rule: &FleetRule) -> u64 {
    let o = &shared.options;
    let late = o.flush_interval.saturating_mul(2) + o.command_timeout;
    u64::try_from(late.as_millis())
        .unwrap_or(u64::MAX)
        .max(rule.width_ms())
}

/// Takes the reply to the flush's `TIME`, sent at `sent` and answered now, into the link's
/// clock; whether it was a well-formed time.
fn observe_time(shared: &Shared, sent: Instant, reply: &Value) -> bool {
    // A poisoned lock still holds a valid clock (one `Copy` value, written whole).
    let mut clock = shared.clock.lock().unwrap_or_else(|e| e.into_inner());
    clock.observe(sent, Instant::now(), reply)
}

/// The start of every flush's pipeline, two replies: `TIME` (the fleet's clock), then this
/// instance's heartbeat (under its name) in the set of live instances (`ZADD` scored by the fleet's time,
/// `ZREMRANGEBYSCORE` of those silent for the liveness period, `PEXPIRE`, replies ignored)
/// and `ZCARD`, the live count.
fn membership(shared: &Shared, now_ms: u64) -> redis::Pipeline {
    let options = &shared.options;
    let key = options.members_key();
    let liveness = options.liveness_ms();
    let mut pipe = redis::pipe();
    pipe.cmd("TIME");
    // By name, like the quorum's claims: a restarted instance is the same member, not a
    // second one that would never vote.
    pipe.cmd("ZADD")
        .arg(&key)
        .arg(now_ms)
        .arg(message::instance_name(&shared.instance))
        .ignore();
    pipe.cmd("ZREMRANGEBYSCORE")
        .arg(&key)
        .arg("-inf")
        .arg(now_ms.saturating_sub(liveness))
        .ignore();
    pipe.cmd("PEXPIRE")
        .arg(&key)
        .arg(liveness.saturating_mul(2))
        .ignore();
    pipe.cmd("ZCARD").arg(&key);
    pipe
}

/// A part's writes and reads: `HINCRBY` each nonzero count and, on the first write of a
/// bucket from here, `PEXPIRE` its key (reply ignored); then one `HMGET key c f s` per bucket
/// to read. Returns how many `HINCRBY`s it holds (their replies come first).
///
/// Each reply is checked on its own (`ignore_errors`): a key that fails (a key of another
/// type at a bucket's name, a field past 64 bits) costs its own breaker that bucket, counted
/// in `key_errors`, never the flush of every other breaker.
fn writes_and_reads(
    pipe: &mut redis::Pipeline,
    prefix: &str,
    writes: &[Write],
    reads: &[Read],
) -> usize {
    pipe.ignore_errors();
    let mut hincrbys = 0;
    for write in writes {
        let key = stats::key(prefix, &write.name, write.pending.width_ms, write.bucket);
        for (field, n) in write.fields() {
            pipe.cmd("HINCRBY")
                .arg(&key)
                .arg(field)
                .arg(i64::try_from(n).unwrap_or(i64::MAX));
            hincrbys += 1;
        }
        if write.expire {
            pipe.cmd("PEXPIRE")
                .arg(&key)
                .arg(write.pending.ttl_ms)
                .ignore();
        }
    }
    for read in reads {
        for &bucket in &read.buckets {
            let key = stats::key(prefix, &read.name, read.rule.width_ms(), bucket);
            pipe.cmd("HMGET").arg(key).arg("c").arg("f").arg("s");
        }
    }
    hincrbys
}

/// Sums each breaker's buckets (those held and those just read, holding the ones now final)
/// and trips those whose fleet rule holds, if still in the Closed period whose window was
/// read (a breaker that closed again meanwhile starts a new window).
fn evaluate(shared: &Shared, tracker: &mut Tracker, reads: &[Read], values: &[Value], now_ms: u64) {
    let mut values = values.iter();
    for read in reads {
        let mut total = read.known;
        let margin = settle_margin_ms(shared, &read.rule);
        for (&bucket, value) in read.buckets.iter().zip(values.by_ref()) {
            match bucket_counts(value) {
                Some(c) => {
                    total.add(c);
                    if settled::is_settled(bucket, read.rule.width_ms(), now_ms, margin) {
                        if let Some(held) = tracker.settled(&read.name) {
                            held.keep(bucket, c);
                        }
                    }
                }
                None if matches!(value, Value::ServerError(_)) => {
                    Counters::add(&shared.counters.key_errors, 1);
                }
                None => Counters::add(&shared.counters.garbage_replies, 1),
            }
        }
        if read.rule.holds(total).is_some() && read.breaker.trip_from_fleet_window(read.generation)
        {
            Counters::add(&shared.counters.fleet_trips, 1);
        }
    }
}

/// The counts in one `HMGET key c f s` reply; `None` for anything but three missing or
/// non-negative integer fields.
pub(crate) fn bucket_counts(value: &Value) -> Option<Counts> {
    let Value::Array(fields) = value else {
        return None;
    };
    let [c, f, s] = fields.as_slice() else {
        return None;
    };
    Some(Counts {
        calls: count(c)?,
        failures: count(f)?,
        slow: count(s)?,
    })
}

fn count(value: &Value) -> Option<u64> {
    match value {
        Value::Nil => Some(0),
        Value::Int(n) => u64::try_from(*n).ok(),
        Value::BulkString(bytes) => {
            if bytes.is_empty() || bytes.len() > 20 || !bytes.iter().all(u8::is_ascii_digit) {
                return None;
            }
            std::str::from_utf8(bytes).ok()?.parse().ok()
        }
        Value::SimpleString(s) => count(&Value::BulkString(s.as_bytes().to_vec())),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
