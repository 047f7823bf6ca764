//! Human-readable durations (feature `serde`): `"30s"`, `"1m 30s"`, `"250ms"`, `"1.5h"`.
//!
//! The parser is our own so that no input can panic or overflow: every step is checked
//! arithmetic on nanoseconds, and a value past what a [`Duration`] holds is an error. It reads
//! every unit `humantime` writes, so a serialized [`Config`](crate::Config) reads back as it was.
//! Units: `ns`, `us`/`µs`, `ms`, `s`, `m`/`min`, `h`, `d`, `w`, `M` (months of 30.44 days),
//! `y` (years of 365.25 days), with their long forms (`seconds`, `minutes`, `hours`, ...).

use std::time::Duration;

use crate::error::excerpt;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// The longest fraction kept: finer digits are below a nanosecond for every unit.
const MAX_FRACTION_DIGITS: u32 = 20;

/// What a duration looks like, for error messages.
pub(crate) const EXPECTED: &str = "a duration such as \"30s\", \"1m 30s\" or \"250ms\"";

/// Nanoseconds in one `unit`, if it is one.
fn unit_nanos(unit: &str) -> Option<u128> {
    let secs = |s: u128| Some(s * NANOS_PER_SEC);
    match unit {
        "nanos" | "nsec" | "ns" => Some(1),
        "usec" | "us" | "µs" => Some(1_000),
        "millis" | "msec" | "ms" => Some(1_000_000),
        "seconds" | "second" | "secs" | "sec" | "s" => secs(1),
        "minutes" | "minute" | "min" | "mins" | "m" => secs(60),
        "hours" | "hour" | "hr" | "hrs" | "h" => secs(3_600),
        "days" | "day" | "d" => secs(86_400),
        "weeks" | "week" | "wk" | "wks" | "w" => secs(7 * 86_400),
        "months" | "month" | "M" => secs(2_630_016),
        "years" | "year" | "yr" | "yrs" | "y" => secs(31_557_600),
        _ => None,
    }
}

/// Parses `text` as a sum of `<number><unit>` terms, e.g. `"1h 30m"`, `"1.5s"`, `"250 ms"`.
///
/// # Errors
/// Why `text` is not a duration, in a few words (it quotes at most an excerpt of the unit).
pub(crate) fn parse(text: &str) -> Result<Duration, String> {
    let too_large = || "too large".to_owned();
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err("empty".to_owned());
    }
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let digits = rest.len() - rest.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        if digits == 0 {
            return Err("each part must start with a number".to_owned());
        }
        let (whole, after) = rest.split_at(digits);
        let (fraction, after) = match after.strip_prefix('.') {
            Some(f) => {
                let n = f.len() - f.trim_start_matches(|c: char| c.is_ascii_digit()).len();
                if n == 0 {
                    return Err("digits must follow the decimal point".to_owned());
                }
                f.split_at(n)
            }
            None => ("", after),
        };
        let after = after.trim_start();
        let unit_len = after.len()
            - after
                .trim_start_matches(|c: char| c.is_ascii_alphabetic() || c == 'µ')
                .len();
        let (unit, after) = after.split_at(unit_len);
        if unit.is_empty() {
            return Err("each number needs a unit (ns, us, ms, s, m, h, d, w, M, y)".to_owned());
        }
        let per = unit_nanos(unit)
            .ok_or_else(|| format!("unknown unit {}", excerpt(&format!("{unit:?}"))))?;
        let term = term_nanos(whole, fraction, per).ok_or_else(too_large)?;
        total = total.checked_add(term).ok_or_else(too_large)?;
        rest = after.trim_start();
    }
    let secs = u64::try_from(total / NANOS_PER_SEC).map_err(|_| too_large())?;
    Ok(Duration::new(secs, (total % NANOS_PER_SEC) as u32))
}

/// The message for `text`, which [`parse`] refused with `why`: the value is quoted, cut to an
/// excerpt.
pub(crate) fn refused(text: &str, why: &str) -> String {
    format!("{EXPECTED} ({why}), got {}", excerpt(&format!("{text:?}")))
}

/// `whole.fraction` units of `per` nanoseconds each, truncated to whole nanoseconds.
fn term_nanos(whole: &str, fraction: &str, per: u128) -> Option<u128> {
    let whole: u128 = whole.parse().ok()?;
    let mut nanos = whole.checked_mul(per)?;
    let mut scale: u128 = 1;
    let mut numerator: u128 = 0;
    for digit in fraction.bytes().take(MAX_FRACTION_DIGITS as usize) {
        scale *= 10;
        numerator = numerator * 10 + u128::from(digit - b'0');
    }
    if numerator > 0 {
        // numerator < scale ≤ 10^20 and per ≤ 3.2·10^16: the product fits in u128.
        nanos = nanos.checked_add(numerator * per / scale)?;
    }
    Some(nanos)
}

/// `d` as `humantime` writes it (`"1m 30s"`), which [`parse`] reads back.
pub(crate) fn format(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

/// A duration read from its human form, with an error message that says what one looks like.
struct Human(Duration);

impl<'de> serde::Deserialize<'de> for Human {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Human, D::Error> {
        d.deserialize_str(HumanVisitor)
    }
}

struct HumanVisitor;

impl serde::de::Visitor<'_> for HumanVisitor {
    type Value = Human;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(EXPECTED)
    }

    fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Human, E> {
        parse(text)
            .map(Human)
            .map_err(|why| E::custom(refused(text, &why)))
    }
}

/// `#[serde(with = "crate::human_duration::required")]` for a `Duration` field.
pub(crate) mod required {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format(*d))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        super::Human::deserialize(d).map(|h| h.0)
    }
}

/// `#[serde(with = "crate::human_duration::optional")]` for an `Option<Duration>` field.
pub(crate) mod optional {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_some(&super::format(*d)),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        Option::<super::Human>::deserialize(d).map(|h| h.map(|h| h.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_people_write() {
        let ms = Duration::from_millis;
        for (text, d) in [
            ("30s", ms(30_000)),
            ("1m 30s", ms(90_000)),
            ("1m30s", ms(90_000)),
            ("250ms", ms(250)),
            ("250 ms", ms(250)),
            (" 2h ", ms(7_200_000)),
            ("1.5s", ms(1_500)),
            ("0.25m", ms(15_000)),
            ("1d", ms(86_400_000)),
            ("3us 4ns", Duration::from_nanos(3_004)),
            ("5µs", Duration::from_nanos(5_000)),
            ("1.0000000000000000000000001s", ms(1_000)),
        ] {
            assert_eq!(parse(text), Ok(d), "{text:?}");
        }
    }

    #[test]
    fn reads_back_what_it_writes() {
        for d in [
            Duration::from_nanos(1),
            Duration::from_millis(1_500),
            Duration::from_secs(90),
            Duration::new(400 * 86_400 + 7, 123_456_789),
            Duration::new(u64::MAX, 999_999_999),
        ] {
            assert_eq!(parse(&format(d)), Ok(d), "{}", format(d));
        }
    }

    #[test]
    fn refuses_without_panicking() {
        for text in [
            "",
            "soon",
            "5",
            "5 parsecs",
            "1.s",
            "-1s",
            "1s -",
            "18446744073709551615s 1000000000ns",
            "18446744073709551616s",
            "99999999999999999999999999999999999999999y",
            "584542046091y",
            "18446744073709551615s 18446744073709551615s",
        ] {
            assert!(parse(text).is_err(), "{text:?}");
        }
        let long = "x".repeat(1 << 20);
        assert!(refused(&long, &parse(&long).unwrap_err()).len() < 200);
        let unit = format!("1{long}");
        assert!(parse(&unit).unwrap_err().len() < 100);
    }
}
