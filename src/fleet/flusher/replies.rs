//! What a flush does with Redis's replies: the fleet's clock, and the fleet rules' verdicts.

use std::time::Instant;

use redis::Value;

use super::pipeline::Read;
use super::scan::settle_margin_ms;
use crate::fleet::Shared;
use crate::fleet::rule::Counts;
use crate::fleet::settled;
use crate::fleet::stats::Tracker;
use crate::fleet::status::Counters;

/// Takes the reply to the flush's `TIME`, sent at `sent` and answered now, into the link's
/// clock; whether it was a well-formed time.
pub(super) fn observe_time(shared: &Shared, sent: Instant, reply: &Value) -> bool {
    // A poisoned lock still holds a valid clock (one `Copy` value, written whole).
    let mut clock = shared.clock.lock().unwrap_or_else(|e| e.into_inner());
    clock.observe(sent, Instant::now(), reply)
}

/// Sums each breaker's buckets (those held and those just read, holding the ones now final)
/// and trips those whose fleet rule holds, if still in the Closed period whose window was
/// read (a breaker that closed again meanwhile starts a new window).
pub(super) fn evaluate(
    shared: &Shared,
    tracker: &mut Tracker,
    reads: &[Read],
    values: &[Value],
    now_ms: u64,
) {
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

pub(super) fn count(value: &Value) -> Option<u64> {
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
