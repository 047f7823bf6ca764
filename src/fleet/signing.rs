//! Signed messages: an HMAC-SHA256 over each message, with a shared key, so that only holders
//! of the key can move a breaker from the channel. Pure: tested without Redis.
//!
//! A signed payload is the message (see [`message`](super::message)) behind an envelope:
//!
//! ```text
//! hbs1|1733390000123|<64 hex digits>|hb1|open|web-1.3fa9c2d1|42|30000000|failure-rate|payments
//! ```
//!
//! | field | meaning |
//! |---|---|
//! | `hbs1` | envelope version |
//! | sent at | the fleet's time when it was signed, in ms since the UNIX epoch (decimal `u64`) |
//! | MAC | HMAC-SHA256, in lower-case hex, over the prefix, a zero byte, the sent-at field, `|` and the message |
//!
//! The prefix is in the MAC so that a message signed for one fleet (`checkout-staging`) is
//! refused by another sharing the key (`checkout`). The sent-at time bounds replays: a signed
//! message is accepted for [`Keys::replay_window`] around the receiver's time (both read the
//! fleet's clock, Redis's `TIME`, so wall clocks need not agree), and within that window a
//! replay is a duplicate that deduplication drops (same sender, name and generation). Each
//! send, a retry or a repeat included, is signed afresh.
//!
//! Two keys may be accepted at once, for rotation: the one that signs, and an older or newer
//! one (see [`FleetOptions::accept_key`](super::FleetOptions::accept_key)).

use std::fmt;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::message::MAX_MESSAGE;

const ENVELOPE: &str = "hbs1";
/// A MAC in hex.
const MAC_HEX: usize = 64;
/// The longest signed payload: the envelope (version, a 20-digit time, the MAC, three `|`)
/// and the longest message.
pub(crate) const MAX_SIGNED: usize = ENVELOPE.len() + 20 + MAC_HEX + 3 + MAX_MESSAGE;
/// The shortest key accepted, in bytes.
pub(crate) const MIN_KEY: usize = 32;

/// A shared key. Its bytes never appear in `Debug` output.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Key(Vec<u8>);

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({} bytes, redacted)", self.0.len())
    }
}

impl Key {
    pub(crate) fn new(bytes: impl Into<Vec<u8>>) -> Key {
        Key(bytes.into())
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    fn mac(&self, prefix: &str, sent_ms: &str, message: &str) -> Hmac<Sha256> {
        // HMAC takes a key of any length: this never fails.
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes any key length");
        mac.update(prefix.as_bytes());
        mac.update(&[0]);
        mac.update(sent_ms.as_bytes());
        mac.update(b"|");
        mac.update(message.as_bytes());
        mac
    }
}

/// The keys of a fleet link: the one that signs and, during a rotation, one more accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Keys {
    pub(crate) signing: Key,
    pub(crate) also_accepted: Option<Key>,
    pub(crate) replay_window: Duration,
}

/// Why a payload was refused by an instance that holds a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// Not in a signed envelope.
    Unsigned,
    /// A signed envelope that does not parse.
    Malformed,
    /// The MAC matches no accepted key (a forgery, a tampered message, another fleet's).
    BadMac,
    /// Signed further from the receiver's time than the replay window.
    OutsideWindow,
}

/// Wraps `message` (an encoded message) in a signed envelope, sent at `now_ms`.
pub(crate) fn sign(key: &Key, prefix: &str, now_ms: u64, message: &str) -> String {
    let sent = now_ms.to_string();
    let tag = key.mac(prefix, &sent, message).finalize().into_bytes();
    let mut hex = String::with_capacity(MAC_HEX);
    for b in tag {
        hex.push(char::from(HEX[usize::from(b >> 4)]));
        hex.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    format!("{ENVELOPE}|{sent}|{hex}|{message}")
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A signed envelope, taken apart (not checked yet).
struct Envelope<'a> {
    /// The sent-at field, as sent (it is part of what the MAC covers).
    sent: &'a str,
    tag: [u8; 32],
    message: &'a [u8],
}

/// `None` if `payload` is not in a signed envelope; else the envelope, or why it does not
/// parse.
fn open_envelope(payload: &[u8]) -> Option<Result<Envelope<'_>, Refused>> {
    let rest = payload
        .strip_prefix(ENVELOPE.as_bytes())?
        .strip_prefix(b"|")?;
    Some(parse_envelope(rest))
}

/// The envelope's fields after its version.
fn parse_envelope(rest: &[u8]) -> Result<Envelope<'_>, Refused> {
    let bar = rest
        .iter()
        .position(|&b| b == b'|')
        .ok_or(Refused::Malformed)?;
    let sent = std::str::from_utf8(&rest[..bar]).map_err(|_| Refused::Malformed)?;
    if sent.is_empty() || sent.len() > 20 || !sent.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Refused::Malformed);
    }
    let rest = &rest[bar + 1..];
    if rest.len() < MAC_HEX + 1 || rest[MAC_HEX] != b'|' {
        return Err(Refused::Malformed);
    }
    let digit = |c: u8| {
        HEX.iter()
            .position(|&h| h == c)
            .and_then(|d| u8::try_from(d).ok())
            .ok_or(Refused::Malformed)
    };
    let mut tag = [0u8; 32];
    for (byte, pair) in tag.iter_mut().zip(rest[..MAC_HEX].chunks_exact(2)) {
        // Two digits below 16: at most 255.
        *byte = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Ok(Envelope {
        sent,
        tag,
        message: &rest[MAC_HEX + 1..],
    })
}

/// The message inside `payload`, as an instance with `keys` (or none) accepts it at `now_ms`
/// on the fleet `prefix`:
/// - with keys, only a signed envelope whose MAC matches one of them and whose time is within
///   the replay window of `now_ms`;
/// - without keys, an unsigned message, or the message inside a signed envelope (unchecked:
///   an instance without the key cannot check it, and this lets a fleet turn signing on one
///   instance at a time).
pub(crate) fn accept<'a>(
    keys: Option<&Keys>,
    prefix: &str,
    now_ms: u64,
    payload: &'a [u8],
) -> Result<&'a [u8], Refused> {
    let Some(keys) = keys else {
        return Ok(match open_envelope(payload) {
            Some(Ok(envelope)) => envelope.message,
            _ => payload,
        });
    };
    let Envelope { sent, tag, message } = open_envelope(payload).ok_or(Refused::Unsigned)??;
    let Ok(text) = std::str::from_utf8(message) else {
        return Err(Refused::BadMac);
    };
    let good = |key: &Key| key.mac(prefix, sent, text).verify_slice(&tag).is_ok();
    if !good(&keys.signing) && !keys.also_accepted.as_ref().is_some_and(good) {
        return Err(Refused::BadMac);
    }
    let sent_ms: u64 = sent.parse().map_err(|_| Refused::Malformed)?;
    let window = u64::try_from(keys.replay_window.as_millis()).unwrap_or(u64::MAX);
    if sent_ms.abs_diff(now_ms) > window {
        return Err(Refused::OutsideWindow);
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &str = "hb1|isolate|web-1.3fa9c2d1|7|0|manual|payments|eu";
    const NOW: u64 = 1_733_390_000_123;

    fn key(b: u8) -> Key {
        Key::new(vec![b; MIN_KEY])
    }

    fn keys(signing: u8, also: Option<u8>) -> Keys {
        Keys {
            signing: key(signing),
            also_accepted: also.map(key),
            replay_window: Duration::from_secs(10),
        }
    }

    #[test]
    fn a_signed_message_is_accepted_by_holders_of_the_key_only() {
        let signed = sign(&key(1), "checkout", NOW, MSG);
        assert!(signed.len() <= MAX_SIGNED);
        let k = keys(1, None);
        assert_eq!(
            accept(Some(&k), "checkout", NOW, signed.as_bytes()),
            Ok(MSG.as_bytes())
        );
        assert_eq!(
            accept(Some(&keys(2, None)), "checkout", NOW, signed.as_bytes()),
            Err(Refused::BadMac)
        );
        assert_eq!(
            accept(Some(&k), "checkout", NOW, MSG.as_bytes()),
            Err(Refused::Unsigned),
            "an unsigned message is refused once a key is set"
        );
    }

    #[test]
    fn any_change_to_a_signed_message_is_refused() {
        let signed = sign(&key(1), "checkout", NOW, MSG);
        let k = keys(1, None);
        // Every single-byte change after the envelope's version, of every kind of byte.
        for i in ENVELOPE.len() + 1..signed.len() {
            for to in [b'0', b'9', b'a', b'f', b'|', b'x', 0xff] {
                let mut forged = signed.clone().into_bytes();
                if forged[i] == to {
                    continue;
                }
                forged[i] = to;
                let verdict = accept(Some(&k), "checkout", NOW, &forged);
                assert!(
                    verdict.is_err(),
                    "byte {i} changed to {to:#x} was accepted: {:?}",
                    String::from_utf8_lossy(&forged)
                );
            }
        }
        // Another fleet sharing the key.
        assert_eq!(
            accept(Some(&k), "checkout-staging", NOW, signed.as_bytes()),
            Err(Refused::BadMac)
        );
        // Cut short, or with bytes added.
        for cut in 0..signed.len() {
            assert!(accept(Some(&k), "checkout", NOW, &signed.as_bytes()[..cut]).is_err());
        }
        let longer = format!("{signed}x");
        assert!(accept(Some(&k), "checkout", NOW, longer.as_bytes()).is_err());
    }

    #[test]
    fn two_keys_are_accepted_during_a_rotation() {
        let old = sign(&key(1), "checkout", NOW, MSG);
        let new = sign(&key(2), "checkout", NOW, MSG);
        // Step 1: still signing with the old key, the new one accepted.
        // Step 2: signing with the new key, the old one accepted.
        for k in [keys(1, Some(2)), keys(2, Some(1))] {
            for signed in [&old, &new] {
                assert_eq!(
                    accept(Some(&k), "checkout", NOW, signed.as_bytes()),
                    Ok(MSG.as_bytes())
                );
            }
        }
        // Step 3: the old key retired.
        assert_eq!(
            accept(Some(&keys(2, None)), "checkout", NOW, old.as_bytes()),
            Err(Refused::BadMac)
        );
    }

    #[test]
    fn replays_outside_the_window_are_refused_either_side() {
        let k = keys(1, None);
        let window = 10_000;
        for (sent, ok) in [
            (NOW, true),
            (NOW - window, true),
            (NOW + window, true),
            (NOW - window - 1, false),
            (NOW + window + 1, false),
            (0, false),
            (u64::MAX, false),
        ] {
            let signed = sign(&key(1), "checkout", sent, MSG);
            let verdict = accept(Some(&k), "checkout", NOW, signed.as_bytes());
            if ok {
                assert_eq!(verdict, Ok(MSG.as_bytes()), "sent at {sent}");
            } else {
                assert_eq!(verdict, Err(Refused::OutsideWindow), "sent at {sent}");
            }
        }
    }

    #[test]
    fn without_a_key_both_forms_are_read() {
        let signed = sign(&key(1), "checkout", NOW, MSG);
        assert_eq!(
            accept(None, "checkout", NOW, signed.as_bytes()),
            Ok(MSG.as_bytes())
        );
        assert_eq!(
            accept(None, "checkout", NOW, MSG.as_bytes()),
            Ok(MSG.as_bytes())
        );
    }

    #[test]
    fn garbage_never_panics_and_is_never_accepted_with_a_key() {
        let k = keys(1, None);
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let signed = sign(&key(1), "checkout", NOW, MSG).into_bytes();
        for _ in 0..50_000 {
            let mut p = if next() % 2 == 0 {
                signed.clone()
            } else {
                b"hbs1|".to_vec()
            };
            for _ in 0..next() % 4 + 1 {
                let at = (next() as usize) % (p.len() + 1);
                match next() % 3 {
                    0 if at < p.len() => p[at] = next() as u8,
                    1 => p.insert(at, next() as u8),
                    _ => p.truncate(at),
                }
            }
            let _ = accept(None, "checkout", NOW, &p);
            if let Ok(m) = accept(Some(&k), "checkout", NOW, &p) {
                assert_eq!(m, MSG.as_bytes(), "only the genuine message passes");
            }
        }
    }

    #[test]
    fn a_key_never_shows_in_debug_output() {
        let k = Key::new(b"correct horse battery staple 0123".to_vec());
        let shown = format!("{:?}", keys(1, Some(2)));
        assert!(!shown.contains("1, 1"), "{shown}");
        assert!(!format!("{k:?}").contains("horse"));
    }
}
