//! The trace's binary format (see the module docs for the layout): writing and reading.

use std::fmt;
use std::time::Duration;

use super::event::{Event, Recorded, Trace};

const MAGIC: &[u8; 7] = b"hbtrace";
const VERSION: u8 = 1;
/// The longest name a trace may carry.
const MAX_NAME: usize = 1024;
/// Bit 2 of an event's outcome byte: a weight follows.
const WEIGHTED: u8 = 4;

/// Why a trace could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TraceError {
    /// The input does not start with the trace magic `hbtrace`.
    NotATrace,
    /// A version this build does not read.
    UnsupportedVersion(u8),
    /// The input ended inside the named field.
    Truncated(&'static str),
    /// The named field is malformed: a varint of more than 64 bits, a name over 1 024 bytes or
    /// not UTF-8, an outcome byte with unknown bits, a weight of 0 or 1 written out, times past
    /// the largest `Duration`.
    Malformed(&'static str),
    /// Bytes after the last event.
    TrailingBytes(usize),
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TraceError::NotATrace => write!(f, "not a hotbreaker trace (no `hbtrace` magic)"),
            TraceError::UnsupportedVersion(v) => {
                write!(
                    f,
                    "trace format version {v} is not supported (this build reads {VERSION})"
                )
            }
            TraceError::Truncated(field) => write!(f, "trace truncated in {field}"),
            TraceError::Malformed(field) => write!(f, "trace malformed: {field}"),
            TraceError::TrailingBytes(n) => write!(f, "trace has {n} bytes after its last event"),
        }
    }
}

impl std::error::Error for TraceError {}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

struct Reader<'a> {
    bytes: &'a [u8],
}

impl Reader<'_> {
    fn byte(&mut self, field: &'static str) -> Result<u8, TraceError> {
        let (&b, rest) = self
            .bytes
            .split_first()
            .ok_or(TraceError::Truncated(field))?;
        self.bytes = rest;
        Ok(b)
    }

    fn varint(&mut self, field: &'static str) -> Result<u64, TraceError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte(field)?;
            let part = u64::from(b & 0x7f);
            if shift == 63 && part > 1 {
                return Err(TraceError::Malformed(field));
            }
            v |= part << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(TraceError::Malformed(field))
    }
}

impl Trace {
    /// The trace in format version 1 (module docs). Times are cut to whole microseconds;
    /// events are written in the order they are in, which must be sorted by start (a start
    /// earlier than the one before is written as the one before).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + self.name.len() + self.events.len() * 5);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        put_varint(&mut out, self.started_unix_ms);
        let name = truncate_utf8(&self.name, MAX_NAME);
        put_varint(&mut out, name.len() as u64);
        out.extend_from_slice(name.as_bytes());
        put_varint(&mut out, self.events.len() as u64);
        let mut previous = 0u64;
        for e in &self.events {
            let start = micros(e.start).max(previous);
            put_varint(&mut out, start - previous);
            previous = start;
            put_varint(&mut out, micros(e.latency));
            let weight = e.weight.max(1);
            let weighted = if weight > 1 { WEIGHTED } else { 0 };
            out.push(e.outcome.code() | weighted);
            if weight > 1 {
                put_varint(&mut out, u64::from(weight));
            }
        }
        out
    }

    /// Reads a trace written by [`encode`](Trace::encode).
    ///
    /// # Errors
    /// A [`TraceError`] saying what is wrong with the input; never a panic, whatever the bytes.
    pub fn decode(bytes: &[u8]) -> Result<Trace, TraceError> {
        let rest = bytes.strip_prefix(MAGIC).ok_or(TraceError::NotATrace)?;
        let mut r = Reader { bytes: rest };
        let version = r.byte("version")?;
        if version != VERSION {
            return Err(TraceError::UnsupportedVersion(version));
        }
        let started_unix_ms = r.varint("start")?;
        let len = r.varint("name length")?;
        if len > MAX_NAME as u64 {
            return Err(TraceError::Malformed("name longer than 1024 bytes"));
        }
        let len = len as usize;
        if r.bytes.len() < len {
            return Err(TraceError::Truncated("name"));
        }
        let (name, rest) = r.bytes.split_at(len);
        r.bytes = rest;
        let name = std::str::from_utf8(name)
            .map_err(|_| TraceError::Malformed("name is not UTF-8"))?
            .to_owned();
        let count = r.varint("event count")?;
        // Each event takes at least 3 bytes: never reserve more than the input can hold.
        let mut events = Vec::with_capacity((count as usize).min(r.bytes.len() / 3));
        let mut start = 0u64;
        for _ in 0..count {
            start = start
                .checked_add(r.varint("event start")?)
                .ok_or(TraceError::Malformed("event start past 2^64 microseconds"))?;
            let latency = r.varint("event latency")?;
            let code = r.byte("event outcome")?;
            if code & !(3 | WEIGHTED) != 0 {
                return Err(TraceError::Malformed("event outcome has unknown bits"));
            }
            let weight = if code & WEIGHTED != 0 {
                let w = r.varint("event weight")?;
                if w < 2 || w > u64::from(u32::MAX) {
                    return Err(TraceError::Malformed("event weight not in 2..=2^32-1"));
                }
                w as u32
            } else {
                1
            };
            events.push(Event {
                start: Duration::from_micros(start),
                latency: Duration::from_micros(latency),
                outcome: Recorded::from_code(code),
                weight,
            });
        }
        if !r.bytes.is_empty() {
            return Err(TraceError::TrailingBytes(r.bytes.len()));
        }
        Ok(Trace {
            name,
            started_unix_ms,
            events,
        })
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn truncate_utf8(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Trace {
        let mut events = Vec::new();
        let mut x = 0x2545_f491_4f6c_dd1du64;
        let mut t = 0u64;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            t += x % 1_000;
            events.push(Event {
                start: Duration::from_micros(t),
                latency: Duration::from_micros(x % 16_000),
                outcome: Recorded::from_code((x >> 20) as u8),
                weight: if x.is_multiple_of(100) {
                    1 + (x >> 40) as u32 % 1000
                } else {
                    1
                },
            });
        }
        Trace {
            name: "inventory ☃".to_owned(),
            started_unix_ms: 1_764_000_000_000,
            events,
        }
    }

    #[test]
    fn a_trace_round_trips() {
        let t = sample();
        let bytes = t.encode();
        assert_eq!(Trace::decode(&bytes).unwrap(), t);
        // Compact: at most 5 bytes per event at over 1 000 calls/s with latencies under 16 ms,
        // plus the rare weight.
        assert!(
            bytes.len() < 51 * t.events.len() / 10,
            "{} bytes",
            bytes.len()
        );
    }

    #[test]
    fn extreme_values_round_trip() {
        let t = Trace {
            name: String::new(),
            started_unix_ms: u64::MAX,
            events: vec![
                Event {
                    start: Duration::ZERO,
                    latency: Duration::ZERO,
                    outcome: Recorded::Rejected,
                    weight: u32::MAX,
                },
                Event {
                    start: Duration::from_micros(u64::MAX),
                    latency: Duration::from_micros(u64::MAX),
                    outcome: Recorded::Ignored,
                    weight: 1,
                },
            ],
        };
        assert_eq!(Trace::decode(&t.encode()).unwrap(), t);
    }

    #[test]
    fn every_truncation_and_every_byte_flip_is_an_error_or_a_trace_never_a_panic() {
        let mut t = sample();
        t.events.truncate(50);
        let bytes = t.encode();
        for n in 0..bytes.len() {
            assert!(
                Trace::decode(&bytes[..n]).is_err(),
                "a prefix of {n} bytes was read"
            );
        }
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut b = bytes.clone();
                b[i] ^= 1 << bit;
                let _ = Trace::decode(&b);
            }
        }
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert_eq!(Trace::decode(b"nope"), Err(TraceError::NotATrace));
        assert_eq!(
            Trace::decode(b"hbtrace\x02"),
            Err(TraceError::UnsupportedVersion(2))
        );
        assert_eq!(
            Trace::decode(b"hbtrace\x01\x00\x00\x01\x00\x00\x08"),
            Err(TraceError::Malformed("event outcome has unknown bits"))
        );
        assert_eq!(
            Trace::decode(b"hbtrace\x01\x00\x00\x01\x00\x00\x04\x01"),
            Err(TraceError::Malformed("event weight not in 2..=2^32-1"))
        );
        // A count of 2^63 events over 3 bytes: refused without reserving memory for them.
        let mut huge = b"hbtrace\x01\x00\x00".to_vec();
        put_varint(&mut huge, 1 << 63);
        huge.extend_from_slice(&[0, 0, 0]);
        assert_eq!(
            Trace::decode(&huge),
            Err(TraceError::Truncated("event start"))
        );
        assert_eq!(
            Trace::decode(b"hbtrace\x01\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f"),
            Err(TraceError::Malformed("start"))
        );
        let e = TraceError::UnsupportedVersion(9).to_string();
        assert_eq!(
            e,
            "trace format version 9 is not supported (this build reads 1)"
        );
    }

    #[test]
    fn a_long_name_is_cut_on_a_character_boundary() {
        let t = Trace {
            name: "é".repeat(700),
            ..Trace::default()
        };
        let back = Trace::decode(&t.encode()).unwrap();
        assert_eq!(back.name, "é".repeat(512));
    }
}
