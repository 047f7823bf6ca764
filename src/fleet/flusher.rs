//! The flusher task: every `flush_interval`, the deltas of the breakers' lifetime totals go to
//! Redis and the fleet's totals come back, in one pipeline; then the fleet rules are
//! evaluated. Reads only what `Breaker::metrics` reads: nothing is added to a call. The same
//! pipeline reads Redis's clock (the fleet's time, see [`FleetClock`](super::fleet_clock::FleetClock)) and keeps this
//! instance in the set of live instances that [`Quorum::Majority`](super::Quorum) counts.

use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Instant;

use redis::Value;
use redis::aio::ConnectionManager;

use crate::breaker::Breaker;
use crate::fleet::metrics::Counters;
use crate::fleet::rule::{Counts, FleetRule};
use crate::fleet::stats::{self, Observed, Queue, Tracker};
use crate::fleet::{Shared, backoff};
use crate::state::State;

/// One breaker whose fleet totals this flush reads.
struct Read {
    breaker: Arc<Breaker>,
    /// The breaker's generation when its window was listed: the totals read describe that
    /// Closed period only.
    generation: u64,
    rule: FleetRule,
    keys: Vec<String>,
}

pub(crate) async fn run(shared: Arc<Shared>, mut manager: ConnectionManager) {
    let options = &shared.options;
    let counters = &shared.counters;
    let mut interval = tokio::time::interval(options.flush_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut tracker = Tracker::default();
    let mut queue = Queue::new(options.queue_capacity);
    let mut failures = 0u32;
    let mut retry_at = Instant::now();
    loop {
        interval.tick().await;
        // Until Redis's clock is first read (Redis down since the start), the local wall
        // clock stands in: the deltas of those calls wait in the queue with its buckets.
        let now_ms = shared.fleet_ms();
        let reads = collect(&shared, &mut tracker, &mut queue, now_ms);
        queue.expire(now_ms);
        if Instant::now() < retry_at {
            // The deltas wait for a later flush: within the queue's capacity.
            queue.bound();
            Counters::set(&counters.deltas_pending, queue.len() as u64);
            Counters::set(&counters.deltas_dropped, queue.dropped());
            continue;
        }
        let mut pipe = membership(&shared, now_ms);
        let writes = writes_and_reads(&mut pipe, &options.prefix, &queue, &reads);
        let started = Instant::now();
        let reply = tokio::time::timeout(
            options.command_timeout,
            pipe.query_async::<Vec<Value>>(&mut manager),
        )
        .await;
        match reply {
            // A flush succeeds when every reply is there and Redis told its time: an error
            // there (a server refusing everything, `NOAUTH`, `LOADING`) fails the flush.
            Ok(Ok(values))
                if values.len()
                    == 2 + writes + reads.iter().map(|r| r.keys.len()).sum::<usize>()
                    && observe_time(&shared, started, &values[0]) =>
            {
                counters.flushed(started.elapsed());
                match count(&values[1]) {
                    Some(live) => Counters::set(&counters.instances, live),
                    None => Counters::add(&counters.garbage_replies, 1),
                }
                queue.clear();
                Counters::set(&counters.deltas_pending, 0);
                Counters::set(&counters.deltas_dropped, queue.dropped());
                failures = 0;
                Counters::flag(&counters.connected, true);
                let (written, read) = values[2..].split_at(writes);
                let failed_writes = written
                    .iter()
                    .filter(|v| !matches!(v, Value::Int(_)))
                    .count();
                Counters::add(&counters.key_errors, failed_writes as u64);
                evaluate(&shared, &reads, read);
            }
            outcome => {
                let refused = matches!(&outcome, Ok(Err(e)) if e.is_connection_refusal());
                if garbled(&outcome) {
                    Counters::add(&counters.garbage_replies, 1);
                }
                if refused {
                    queue.bound();
                } else {
                    // The pipeline may have been applied without its reply reaching us (a
                    // timeout, a connection cut mid-way): sending it again could count calls
                    // twice, so its deltas are dropped (at most once).
                    queue.drop_all();
                }
                Counters::set(&counters.deltas_dropped, queue.dropped());
                Counters::set(&counters.deltas_pending, queue.len() as u64);
                Counters::add(&counters.flush_errors, 1);
                Counters::flag(&counters.connected, false);
                failures = failures.saturating_add(1);
                retry_at = Instant::now() + backoff(failures, options.reconnect_max);
            }
        }
    }
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

/// Reads every breaker with a fleet rule: queues its delta in the current bucket and lists
/// the keys of its fleet window.
fn collect(shared: &Shared, tracker: &mut Tracker, queue: &mut Queue, now_ms: u64) -> Vec<Read> {
    let mut reads = Vec::new();
    // The map as it is, unsorted: no copy of the names on every flush.
    let entries = shared.registry.entries().pin();
    for (name, entry) in entries.iter() {
        let breaker = &entry.breaker;
        let Some(rule) = shared.options.rule_for(name) else {
            continue;
        };
        let m = breaker.metrics();
        let now_bucket = stats::bucket_of(now_ms, rule.width_ms());
        let observed = Observed {
            totals: Counts {
                calls: m.successes.saturating_add(m.failures),
                failures: m.failures,
                slow: m.slow,
            },
            state: m.state,
            generation: m.generation,
        };
        let (delta, since) = tracker.observe(name, observed, now_bucket);
        queue.add(name, now_bucket, &rule, delta);
        if m.state == State::Closed {
            let window: RangeInclusive<u64> = stats::window(now_bucket, rule.buckets(), since);
            let keys = window
                .map(|b| stats::key(&shared.options.prefix, name, rule.width_ms(), b))
                .collect();
            reads.push(Read {
                breaker: breaker.clone(),
                generation: m.generation,
                rule,
                keys,
            });
        }
    }
    reads
}

/// Takes the reply to the flush's `TIME`, sent at `sent` and answered now, into the link's
/// clock; whether it was a well-formed time.
fn observe_time(shared: &Shared, sent: Instant, reply: &Value) -> bool {
    // A poisoned lock still holds a valid clock (one `Copy` value, written whole).
    let mut clock = shared.clock.lock().unwrap_or_else(|e| e.into_inner());
    clock.observe(sent, Instant::now(), reply)
}

/// The start of every flush's pipeline, two replies: `TIME` (the fleet's clock), then this
/// instance's heartbeat in the set of live instances (`ZADD` scored by the fleet's time,
/// `ZREMRANGEBYSCORE` of those silent for the liveness period, `PEXPIRE`, replies ignored)
/// and `ZCARD`, the live count.
fn membership(shared: &Shared, now_ms: u64) -> redis::Pipeline {
    let options = &shared.options;
    let key = options.members_key();
    let liveness = options.liveness_ms();
    let mut pipe = redis::pipe();
    pipe.cmd("TIME");
    pipe.cmd("ZADD")
        .arg(&key)
        .arg(now_ms)
        .arg(&shared.instance)
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

/// The rest of the flush's pipeline: `HINCRBY` each nonzero count and `PEXPIRE` each written
/// key (replies ignored), then one `HMGET key c f s` per bucket of each Closed breaker's
/// window. Returns how many `HINCRBY`s it holds (their replies come first).
///
/// Each reply is checked on its own (`ignore_errors`): a key that fails (a key of another
/// type at a bucket's name, a field past 64 bits) costs its own breaker that bucket, counted
/// in `key_errors`, never the flush of every other breaker.
fn writes_and_reads(
    pipe: &mut redis::Pipeline,
    prefix: &str,
    queue: &Queue,
    reads: &[Read],
) -> usize {
    pipe.ignore_errors();
    let mut writes = 0;
    for (name, bucket, pending) in queue.iter() {
        let key = stats::key(prefix, name, pending.width_ms, bucket);
        for (field, n) in [
            ("c", pending.counts.calls),
            ("f", pending.counts.failures),
            ("s", pending.counts.slow),
        ] {
            if n > 0 {
                pipe.cmd("HINCRBY")
                    .arg(&key)
                    .arg(field)
                    .arg(i64::try_from(n).unwrap_or(i64::MAX));
                writes += 1;
            }
        }
        pipe.cmd("PEXPIRE").arg(&key).arg(pending.ttl_ms).ignore();
    }
    for read in reads {
        for key in &read.keys {
            pipe.cmd("HMGET").arg(key).arg("c").arg("f").arg("s");
        }
    }
    writes
}

/// Sums each breaker's buckets and trips those whose fleet rule holds, if still in the Closed
/// period whose window was read (a breaker that closed again meanwhile starts a new window).
fn evaluate(shared: &Shared, reads: &[Read], values: &[Value]) {
    let mut values = values.iter();
    for read in reads {
        let mut total = Counts::default();
        for value in values.by_ref().take(read.keys.len()) {
            match bucket_counts(value) {
                Some(c) => total.add(c),
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
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn bucket_replies_are_parsed_strictly() {
        let ok = Value::Array(vec![bulk("120"), Value::Nil, Value::Int(3)]);
        assert_eq!(
            bucket_counts(&ok),
            Some(Counts {
                calls: 120,
                failures: 0,
                slow: 3
            })
        );
        for garbage in [
            Value::Nil,
            Value::Int(5),
            bulk("12"),
            Value::Array(vec![bulk("1"), bulk("2")]),
            Value::Array(vec![bulk("-1"), Value::Nil, Value::Nil]),
            Value::Array(vec![Value::Int(-1), Value::Nil, Value::Nil]),
            Value::Array(vec![
                bulk("99999999999999999999999"),
                Value::Nil,
                Value::Nil,
            ]),
            Value::Array(vec![bulk("1e3"), Value::Nil, Value::Nil]),
            Value::Array(vec![bulk(""), Value::Nil, Value::Nil]),
            Value::Array(vec![Value::Array(vec![]), Value::Nil, Value::Nil]),
        ] {
            assert_eq!(bucket_counts(&garbage), None, "{garbage:?}");
        }
    }

    /// The fleet's totals come back a round trip after the flush read the breaker. If the
    /// breaker closed again meanwhile (its own probe succeeded, or `reset()`), those totals
    /// are of the window before the close, which the fleet window no longer reads (see
    /// `Tracker::observe`): they must not trip the freshly closed breaker.
    #[test]
    fn totals_read_before_a_close_never_trip_the_breaker_after_it() {
        use crate::config::Config;
        use crate::fleet::FleetOptions;
        use crate::registry::Registry;
        use std::time::Duration;

        let (clock, mock) = quanta::Clock::mock();
        mock.increment(Duration::from_secs(1));
        let config = Config {
            consecutive_failures: Some(1),
            open_timeout: Some(Duration::from_secs(1)),
            half_open_permits: Some(1),
            half_open_successes: Some(1),
            ..Config::default()
        };
        let rule = FleetRule::failure_rate(0.5)
            .minimum_calls(1)
            .window(Duration::from_secs(1), 1);
        let shared = Shared::new(
            FleetOptions::new("redis://127.0.0.1:1", "checkout").default_rule(rule),
            "me".into(),
            Arc::new(Registry::new(config).unwrap().clock(clock)),
            Arc::default(),
        );
        let b = shared.registry.get_or_create("db");
        let (mut tracker, mut queue) = (Tracker::default(), Queue::new(16));
        let reads = collect(&shared, &mut tracker, &mut queue, 5_000);
        assert_eq!(reads.len(), 1, "Closed: its window is read");
        // The fleet's answer: 10 calls, all failed.
        let failing = Value::Array(vec![bulk("10"), bulk("10"), Value::Nil]);

        // Meanwhile the breaker trips and closes again on its own probe.
        b.try_acquire().unwrap().failure();
        mock.increment(Duration::from_secs(1));
        b.try_acquire().unwrap().success();
        assert_eq!(b.state(), State::Closed);
        evaluate(&shared, &reads, std::slice::from_ref(&failing));
        assert_eq!(
            b.state(),
            State::Closed,
            "tripped on the window before its close"
        );

        // Read afresh while Closed, from the bucket after the close on, the same answer
        // trips it.
        collect(&shared, &mut tracker, &mut queue, 5_000);
        let reads = collect(&shared, &mut tracker, &mut queue, 6_000);
        assert_eq!(reads[0].keys.len(), 1);
        evaluate(&shared, &reads, &[failing]);
        assert_eq!(b.state(), State::Open);
    }

    /// With Redis healthy the queue is empty before each flush, and one flush's deltas are one
    /// per breaker with a rule and calls: a registry with more such breakers than
    /// `queue_capacity` sends them all (the capacity bounds what waits between flushes), and
    /// only what is left to wait is cut down to it.
    #[test]
    fn a_healthy_flush_drops_no_delta() {
        use crate::fleet::FleetOptions;
        use crate::registry::Registry;

        let rule = FleetRule::failure_rate(0.5);
        let shared = Shared::new(
            FleetOptions::new("redis://127.0.0.1:1", "checkout").default_rule(rule),
            "me".into(),
            Arc::new(Registry::default()),
            Arc::default(),
        );
        let names = ["a", "b", "c"];
        for name in names {
            shared.registry.get_or_create(name);
        }
        let (mut tracker, mut queue) = (Tracker::default(), Queue::new(2));
        collect(&shared, &mut tracker, &mut queue, 5_000); // baselines
        for name in names {
            shared
                .registry
                .get(name)
                .unwrap()
                .try_acquire()
                .unwrap()
                .failure();
        }
        collect(&shared, &mut tracker, &mut queue, 5_100);
        assert_eq!((queue.len(), queue.dropped()), (3, 0), "one flush's deltas");
        queue.bound(); // Redis away: they wait
        assert_eq!((queue.len(), queue.dropped()), (2, 1));
    }
}
