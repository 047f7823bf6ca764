//! The pub/sub message: what one instance tells the others about a transition. Pure: encoding
//! and decoding, tested without Redis.
//!
//! One line of UTF-8, fields separated by `|`, the name last (so a name may contain `|`):
//!
//! ```text
//! hb1|open|9f3c2a71d0e4b815|42|30000000|failure-rate|payments
//! ```
//!
//! | field | meaning |
//! |---|---|
//! | `hb1` | format version |
//! | kind | `open`, `isolate`, `close` (a probe succeeded) or `reset` |
//! | instance | the sender's id: 1 to 64 of `A-Z a-z 0-9 _ . -` |
//! | generation | the sender's generation of that breaker (decimal `u64`) |
//! | open for | microseconds until the sender's deadline (`open` only; 0 otherwise) |
//! | cause | the sender's cause, as in [`cause_name`] (1 to 32 of `a-z -`) |
//! | name | the breaker's name: 1 to [`MAX_NAME`] bytes |
//!
//! The whole message is at most [`MAX_MESSAGE`] bytes. Anything else is a [`DecodeError`]:
//! counted by the receiver and ignored, never a panic.

use std::fmt;
use std::time::Duration;

use crate::state::{Cause, State};
use crate::transition::Transition;

/// The format's version tag, the first field.
const VERSION: &str = "hb1";
/// Longest breaker name a message carries.
pub(crate) const MAX_NAME: usize = 256;
/// Longest message accepted.
pub(crate) const MAX_MESSAGE: usize = 512;
const MAX_INSTANCE: usize = 64;
const MAX_CAUSE: usize = 32;

/// What happened on the sender.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MessageKind {
    /// A transition to Open (any cause but [`Cause::Fleet`]).
    Open,
    /// A manual `isolate()`.
    Isolate,
    /// A half-open breaker closed: its probes succeeded.
    Close,
    /// A manual `reset()`.
    Reset,
}

impl MessageKind {
    fn as_str(self) -> &'static str {
        match self {
            MessageKind::Open => "open",
            MessageKind::Isolate => "isolate",
            MessageKind::Close => "close",
            MessageKind::Reset => "reset",
        }
    }

    fn parse(s: &str) -> Option<MessageKind> {
        Some(match s {
            "open" => MessageKind::Open,
            "isolate" => MessageKind::Isolate,
            "close" => MessageKind::Close,
            "reset" => MessageKind::Reset,
            _ => return None,
        })
    }
}

/// One decoded message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Message {
    pub(crate) kind: MessageKind,
    pub(crate) instance: String,
    pub(crate) generation: u64,
    /// Time until the sender's open deadline (zero unless `kind` is Open).
    pub(crate) open_for: Duration,
    pub(crate) cause: String,
    pub(crate) name: String,
}

/// Why a payload is not a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DecodeError {
    TooLong,
    NotUtf8,
    Version,
    Fields,
    MessageKind,
    Instance,
    Generation,
    OpenFor,
    Cause,
    Name,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self {
            DecodeError::TooLong => "longer than 512 bytes",
            DecodeError::NotUtf8 => "not UTF-8",
            DecodeError::Version => "not an hb1 message",
            DecodeError::Fields => "fewer than 7 fields",
            DecodeError::MessageKind => "unknown kind",
            DecodeError::Instance => "bad instance id",
            DecodeError::Generation => "bad generation",
            DecodeError::OpenFor => "bad open duration",
            DecodeError::Cause => "bad cause",
            DecodeError::Name => "bad breaker name",
        };
        write!(f, "fleet message: {what}")
    }
}

impl std::error::Error for DecodeError {}

/// The cause as it travels: its [`Display`](std::fmt::Display) name.
pub(crate) fn cause_name(cause: Cause) -> &'static str {
    cause.name()
}

/// What a local transition tells the fleet, if anything: a trip (a transition to Open, but for
/// a half-open timeout, where no probe gave a verdict), a close its probes confirmed, an
/// `isolate()` or a `reset()`. A transition caused by the fleet itself is never sent on (no
/// echo between instances), nor is anything else (a half-opening, `disable()`).
pub(crate) fn outgoing(t: &Transition) -> Option<MessageKind> {
    match (t.cause, t.to) {
        (Cause::Fleet, _) => None,
        // No probe gave a verdict in time: nothing learned about the dependency, and a peer
        // whose probe just succeeded must not be tripped by it.
        (Cause::HalfOpenTimeout, _) => None,
        (_, State::Open) => Some(MessageKind::Open),
        (Cause::HalfOpenSuccesses, State::Closed) => Some(MessageKind::Close),
        (Cause::Manual, State::Isolated) => Some(MessageKind::Isolate),
        (Cause::Manual, State::Closed) => Some(MessageKind::Reset),
        _ => None,
    }
}

/// The instance's name in a sender id: the id without the suffix drawn at each start
/// (`web-1` in `web-1.3fa9c2d1`). All the lives of one instance share it.
pub(crate) fn instance_name(id: &str) -> &str {
    id.rsplit_once('.').map_or(id, |(name, _)| name)
}

/// Whether `id` is a valid instance id (1 to 64 of `A-Z a-z 0-9 _ . -`).
pub(crate) fn valid_instance(id: &str) -> bool {
    (1..=MAX_INSTANCE).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn valid_cause(cause: &str) -> bool {
    (1..=MAX_CAUSE).contains(&cause.len())
        && cause.bytes().all(|b| b.is_ascii_lowercase() || b == b'-')
}

fn valid_name(name: &str) -> bool {
    (1..=MAX_NAME).contains(&name.len()) && !name.chars().any(char::is_control)
}

/// Encodes `message`; `None` if a field is out of range (a name too long to send, say).
pub(crate) fn encode(message: &Message) -> Option<String> {
    if !valid_instance(&message.instance)
        || !valid_cause(&message.cause)
        || !valid_name(&message.name)
    {
        return None;
    }
    let micros = u64::try_from(message.open_for.as_micros()).unwrap_or(u64::MAX);
    let text = format!(
        "{VERSION}|{}|{}|{}|{micros}|{}|{}",
        message.kind.as_str(),
        message.instance,
        message.generation,
        message.cause,
        message.name
    );
    (text.len() <= MAX_MESSAGE).then_some(text)
}

/// A decimal `u64`: digits only (no sign, no spaces), at most 20 of them, no overflow.
fn parse_u64(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > 20 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Decodes a payload from the channel.
pub(crate) fn decode(payload: &[u8]) -> Result<Message, DecodeError> {
    if payload.len() > MAX_MESSAGE {
        return Err(DecodeError::TooLong);
    }
    let text = std::str::from_utf8(payload).map_err(|_| DecodeError::NotUtf8)?;
    let mut fields = text.splitn(7, '|');
    let mut field = || fields.next().ok_or(DecodeError::Fields);
    if field()? != VERSION {
        return Err(DecodeError::Version);
    }
    let kind = MessageKind::parse(field()?).ok_or(DecodeError::MessageKind)?;
    let instance = field()?;
    if !valid_instance(instance) {
        return Err(DecodeError::Instance);
    }
    let generation = parse_u64(field()?).ok_or(DecodeError::Generation)?;
    let micros = parse_u64(field()?).ok_or(DecodeError::OpenFor)?;
    let cause = field()?;
    if !valid_cause(cause) {
        return Err(DecodeError::Cause);
    }
    let name = field()?;
    if !valid_name(name) {
        return Err(DecodeError::Name);
    }
    Ok(Message {
        kind,
        instance: instance.to_owned(),
        generation,
        open_for: Duration::from_micros(micros),
        cause: cause.to_owned(),
        name: name.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Message {
        Message {
            kind: MessageKind::Open,
            instance: "9f3c2a71d0e4b815".into(),
            generation: 42,
            open_for: Duration::from_secs(30),
            cause: "failure-rate".into(),
            name: "payments|eu west".into(),
        }
    }

    #[test]
    fn round_trips_every_kind_and_extreme_values() {
        for kind in [
            MessageKind::Open,
            MessageKind::Isolate,
            MessageKind::Close,
            MessageKind::Reset,
        ] {
            for (generation, open_for) in [
                (0, Duration::ZERO),
                (u64::MAX, Duration::from_micros(u64::MAX)),
            ] {
                let m = Message {
                    kind,
                    generation,
                    open_for,
                    ..sample()
                };
                let text = encode(&m).unwrap();
                assert_eq!(decode(text.as_bytes()), Ok(m), "{text}");
            }
        }
        let text = encode(&sample()).unwrap();
        assert_eq!(
            text,
            "hb1|open|9f3c2a71d0e4b815|42|30000000|failure-rate|payments|eu west"
        );
    }

    #[test]
    fn what_a_transition_tells_the_fleet() {
        let t = |from, to, cause| Transition {
            from,
            to,
            cause,
            generation: 3,
        };
        use Cause::*;
        use State::*;
        let cases = [
            (t(Closed, Open, FailureRate), Some(MessageKind::Open)),
            (
                t(Closed, Open, ConsecutiveFailures),
                Some(MessageKind::Open),
            ),
            (t(HalfOpen, Open, HalfOpenFailure), Some(MessageKind::Open)),
            (t(HalfOpen, Open, HalfOpenTimeout), None),
            (t(Closed, Open, FleetWindow), Some(MessageKind::Open)),
            (
                t(HalfOpen, Closed, HalfOpenSuccesses),
                Some(MessageKind::Close),
            ),
            (t(Open, Isolated, Manual), Some(MessageKind::Isolate)),
            (t(Open, Closed, Manual), Some(MessageKind::Reset)),
            (t(Closed, Disabled, Manual), None),
            (t(Open, HalfOpen, OpenDeadlinePassed), None),
            // What the fleet caused is never sent on.
            (t(Closed, Open, Fleet), None),
            (t(Open, HalfOpen, Fleet), None),
        ];
        for (transition, want) in cases {
            assert_eq!(outgoing(&transition), want, "{transition:?}");
        }
    }

    #[test]
    fn every_cause_has_a_valid_name() {
        use Cause::*;
        for c in [
            ConsecutiveFailures,
            FailureRate,
            SlowCallRate,
            CustomRule,
            OpenDeadlinePassed,
            HalfOpenFailure,
            HalfOpenSuccesses,
            HalfOpenTimeout,
            Manual,
            Fleet,
            FleetWindow,
        ] {
            assert!(valid_cause(cause_name(c)), "{c:?}");
        }
    }

    #[test]
    fn refuses_what_it_cannot_send() {
        let long = Message {
            name: "x".repeat(MAX_NAME + 1),
            ..sample()
        };
        assert_eq!(encode(&long), None);
        let bad_id = Message {
            instance: "a b".into(),
            ..sample()
        };
        assert_eq!(encode(&bad_id), None);
        assert_eq!(
            encode(&Message {
                name: String::new(),
                ..sample()
            }),
            None
        );
    }

    #[test]
    fn malformed_payloads_name_what_is_wrong() {
        let cases: [(&[u8], DecodeError); 14] = [
            (b"", DecodeError::Version),
            (b"hb2|open|a|1|0|manual|x", DecodeError::Version),
            (b"hb1|open|a|1|0|manual", DecodeError::Fields),
            (b"hb1|shut|a|1|0|manual|x", DecodeError::MessageKind),
            (b"hb1|open||1|0|manual|x", DecodeError::Instance),
            (b"hb1|open|a b|1|0|manual|x", DecodeError::Instance),
            (b"hb1|open|a|-1|0|manual|x", DecodeError::Generation),
            (b"hb1|open|a|+1|0|manual|x", DecodeError::Generation),
            (
                b"hb1|open|a|18446744073709551616|0|manual|x",
                DecodeError::Generation,
            ),
            (b"hb1|open|a|1|1e9|manual|x", DecodeError::OpenFor),
            (b"hb1|open|a|1|0|Manual|x", DecodeError::Cause),
            (b"hb1|open|a|1|0|manual|", DecodeError::Name),
            (b"hb1|open|a|1|0|manual|a\nb", DecodeError::Name),
            (b"hb1|open|a|1|0|manual|\xff", DecodeError::NotUtf8),
        ];
        for (payload, want) in cases {
            assert_eq!(
                decode(payload),
                Err(want),
                "{:?}",
                String::from_utf8_lossy(payload)
            );
        }
        assert_eq!(decode(&[b'a'; MAX_MESSAGE + 1]), Err(DecodeError::TooLong));
        assert!(DecodeError::Cause.to_string().contains("bad cause"));
    }

    /// Fuzz-like: random bytes, and valid messages with random bytes flipped, cut or
    /// inserted. The decoder must answer every one without panicking, and whatever it accepts
    /// must satisfy every field's rule (it can be encoded again, to the same message).
    #[test]
    fn the_decoder_never_panics_on_garbage() {
        let mut seed = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let valid = encode(&sample()).unwrap().into_bytes();
        let alphabet = b"hb1|opencls0123456789-_.az\xff\x00\n ";
        let mut accepted = 0;
        for round in 0..200_000 {
            let payload: Vec<u8> = if round % 2 == 0 {
                let len = (next() % 80) as usize;
                (0..len)
                    .map(|_| alphabet[(next() % alphabet.len() as u64) as usize])
                    .collect()
            } else {
                let mut p = valid.clone();
                for _ in 0..(1 + next() % 3) {
                    let at = (next() % (p.len() as u64 + 1)) as usize;
                    let byte = alphabet[(next() % alphabet.len() as u64) as usize];
                    match next() % 3 {
                        0 if at < p.len() => p[at] = byte,
                        1 => p.insert(at, byte),
                        _ => p.truncate(at.max(1)),
                    }
                }
                p
            };
            if let Ok(m) = decode(&payload) {
                accepted += 1;
                let again = encode(&m).expect("an accepted message can be sent");
                assert_eq!(decode(again.as_bytes()), Ok(m));
            }
        }
        assert!(
            accepted > 0,
            "some mutations stay valid (a changed name or digit)"
        );
    }
}
