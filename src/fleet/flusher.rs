//! The flusher task: every `flush_interval`, the deltas of the breakers' lifetime totals go to
//! Redis and the fleet's totals come back, in one pipeline; then the fleet rules are
//! evaluated. Reads only what `Breaker::metrics` reads: nothing is added to a call. The same
//! pipeline reads Redis's clock (the fleet's time, see [`FleetClock`](super::fleet_clock::FleetClock)) and keeps this
//! instance in the set of live instances that [`Quorum::Majority`](super::Quorum) counts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::Value;
use redis::aio::ConnectionManager;

use crate::fleet::stats::{self, Queue, Tracker};
use crate::fleet::status::Counters;
use crate::fleet::{Shared, backoff};

mod pipeline;
mod replies;
mod scan;

use pipeline::*;
use replies::*;
use scan::*;

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

#[cfg(test)]
mod tests;
