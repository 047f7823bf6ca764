//! The fleet's one clock: Redis's `TIME`, read in every flush. Fleet-window buckets and
//! membership scores come from it, so that instances whose wall clocks disagree still write a
//! call made at the same moment into the same bucket. Pure: tested without Redis.
//!
//! Each flush sends `TIME` first; the reply is taken as Redis's time at the midpoint of the
//! round trip, and this instance's monotonic clock carries it forward until the next flush.
//! Two instances then disagree by at most half of the longer of their round trips plus the
//! drift of their monotonic clocks over one flush interval (microseconds), whatever their
//! wall clocks say. Before the first reply (Redis down since the start) the fleet's time is
//! unknown, and the flusher falls back on the local wall clock.

use std::time::Instant;

use redis::Value;

/// Redis's time as last read, anchored to this instance's monotonic clock.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FleetClock {
    anchor: Option<(Instant, u64)>,
}

impl FleetClock {
    /// The fleet's time at `now`, in milliseconds since the UNIX epoch by Redis's clock;
    /// `None` before the first reply to `TIME`.
    pub(crate) fn now_ms(&self, now: Instant) -> Option<u64> {
        let (at, redis_ms) = self.anchor?;
        let since = now.saturating_duration_since(at).as_millis();
        Some(redis_ms.saturating_add(u64::try_from(since).unwrap_or(u64::MAX)))
    }

    /// Takes the reply to a `TIME` sent at `sent` and answered at `received`. Returns
    /// whether it was a well-formed time (anything else leaves the clock as it was).
    pub(crate) fn observe(&mut self, sent: Instant, received: Instant, reply: &Value) -> bool {
        let Some(redis_ms) = time_ms(reply) else {
            return false;
        };
        let midpoint = sent + received.saturating_duration_since(sent) / 2;
        self.anchor = Some((midpoint, redis_ms));
        true
    }
}

/// The milliseconds in a `TIME` reply (`[seconds, microseconds]`, both decimal strings).
fn time_ms(reply: &Value) -> Option<u64> {
    let Value::Array(parts) = reply else {
        return None;
    };
    let [secs, micros] = parts.as_slice() else {
        return None;
    };
    let number = |v: &Value| -> Option<u64> {
        match v {
            Value::BulkString(b) if !b.is_empty() && b.len() <= 19 => {
                std::str::from_utf8(b).ok()?.parse().ok()
            }
            Value::Int(n) => u64::try_from(*n).ok(),
            _ => None,
        }
    };
    let (secs, micros) = (number(secs)?, number(micros)?);
    if micros >= 1_000_000 {
        return None;
    }
    secs.checked_mul(1_000)?.checked_add(micros / 1_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn time(secs: &str, micros: &str) -> Value {
        Value::Array(vec![
            Value::BulkString(secs.as_bytes().to_vec()),
            Value::BulkString(micros.as_bytes().to_vec()),
        ])
    }

    #[test]
    fn unknown_until_the_first_reply_then_carried_by_the_monotonic_clock() {
        let t0 = Instant::now();
        let mut c = FleetClock::default();
        assert_eq!(c.now_ms(t0), None);
        let ms = Duration::from_millis;
        assert!(c.observe(t0, t0 + ms(4), &time("1700000000", "250000")));
        assert_eq!(c.now_ms(t0 + ms(2)), Some(1_700_000_000_250));
        assert_eq!(c.now_ms(t0 + ms(102)), Some(1_700_000_000_350));
        // Earlier than the anchor (not possible with one monotonic clock): no going back.
        assert_eq!(c.now_ms(t0), Some(1_700_000_000_250));
    }

    /// The reproduction of a skewed peer: two instances whose wall clocks are 3 s apart read
    /// the same Redis and put a call made at the same moment in the same 1 s bucket.
    #[test]
    fn instances_with_skewed_wall_clocks_share_buckets() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let (mut ahead, mut behind) = (FleetClock::default(), FleetClock::default());
        // Their wall clocks play no part; each reads TIME with its own round trip.
        assert!(ahead.observe(t0, t0 + ms(2), &time("1700000000", "900000")));
        assert!(behind.observe(t0 + ms(1), t0 + ms(9), &time("1700000000", "904000")));
        let at = t0 + ms(50);
        let (a, b) = (ahead.now_ms(at).unwrap(), behind.now_ms(at).unwrap());
        assert!(a.abs_diff(b) <= 4, "{a} vs {b}: within half a round trip");
    }

    #[test]
    fn a_garbled_time_is_refused_and_changes_nothing() {
        let t0 = Instant::now();
        let mut c = FleetClock::default();
        for bad in [
            Value::Nil,
            Value::Int(5),
            time("-1", "0"),
            time("1", "1000000"),
            time("99999999999999999999", "0"),
            time("", "0"),
            Value::Array(vec![Value::Int(1)]),
        ] {
            assert!(!c.observe(t0, t0, &bad), "{bad:?}");
        }
        assert_eq!(c.now_ms(t0), None);
        assert!(c.observe(
            t0,
            t0,
            &Value::Array(vec![Value::Int(2), Value::Int(5_000)])
        ));
        assert_eq!(c.now_ms(t0), Some(2_005));
    }
}
