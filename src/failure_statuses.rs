//! [`FailureStatuses`]: which HTTP statuses a registry's layer counts as Failures.

use std::fmt;

use crate::error::ConfigError;

/// The first status the set can hold (`400`): only client and server errors can be Failures.
const FIRST: u16 = 400;
/// One past the last (`599`).
const END: u16 = 600;

/// A set of HTTP statuses from 400 to 599 that count as Failures: the classifier of
/// [`Registry::layer`](crate::Registry::layer) (features `http`, `tokio`) reads it from the
/// configuration's `failure_statuses`, 5xx when it is not set. A response whose status is not in
/// the set is a Success (the dependency answered); a transport error or a timeout is always a
/// Failure.
///
/// Written as a list of codes and classes: in a file `failure_statuses = ["5xx", 429]` (or the
/// string `"5xx, 429"`), in the environment `PREFIX_FAILURE_STATUSES=5xx,429`. A class is `4xx` or
/// `5xx`; a code is a whole number from 400 to 599, three digits. `[]` (or `none`) is the empty
/// set: only transport errors and timeouts fail. Anything else is an error naming the entry.
///
/// # Examples
/// ```
/// use hotbreaker::FailureStatuses;
///
/// let statuses: FailureStatuses = "5xx, 429".parse()?;
/// assert!(statuses.contains(503) && statuses.contains(429));
/// assert!(!statuses.contains(404));
/// assert_eq!(statuses.to_string(), "429, 5xx");
/// assert!("5xx, 302".parse::<FailureStatuses>().is_err());
/// # Ok::<(), hotbreaker::ConfigError>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FailureStatuses {
    /// Bit `i` (of 200) stands for status `400 + i`.
    bits: [u64; 4],
}

impl FailureStatuses {
    /// No status: only transport errors and timeouts fail.
    pub const NONE: FailureStatuses = FailureStatuses { bits: [0; 4] };

    /// 500 to 599, the default.
    pub const SERVER_ERRORS: FailureStatuses = FailureStatuses::NONE.with_range(500, END);

    const fn with_range(mut self, from: u16, to: u16) -> FailureStatuses {
        let mut status = from;
        while status < to {
            let i = (status - FIRST) as usize;
            self.bits[i / 64] |= 1 << (i % 64);
            status += 1;
        }
        self
    }

    /// The set as four words, bit `i` standing for status `400 + i` (for packed settings).
    pub(crate) const fn words(self) -> [u64; 4] {
        self.bits
    }

    /// The set [`words`](FailureStatuses::words) gave, with any bit past status 599 dropped.
    pub(crate) fn from_words(mut bits: [u64; 4]) -> FailureStatuses {
        let last = usize::from(END - FIRST);
        bits[last / 64] &= (1 << (last % 64)) - 1;
        FailureStatuses { bits }
    }

    /// Whether `status` counts as a Failure.
    #[inline]
    pub fn contains(self, status: u16) -> bool {
        if !(FIRST..END).contains(&status) {
            return false;
        }
        let i = usize::from(status - FIRST);
        self.bits[i / 64] & (1 << (i % 64)) != 0
    }

    /// The set with `status` in it too.
    ///
    /// # Errors
    /// A status outside 400..=599.
    pub fn with(self, status: u16) -> Result<FailureStatuses, ConfigError> {
        if !(FIRST..END).contains(&status) {
            return Err(invalid(&status.to_string()));
        }
        Ok(self.with_range(status, status + 1))
    }

    /// One entry of the written form: `4xx`, `5xx` or a code from 400 to 599, three digits.
    fn with_entry(self, entry: &str) -> Result<FailureStatuses, ConfigError> {
        let entry = entry.trim();
        match entry.to_ascii_lowercase().as_str() {
            "4xx" => Ok(self.with_range(400, 500)),
            "5xx" => Ok(self.with_range(500, END)),
            code if code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit()) => {
                // Three ASCII digits: at most 999, parsed without fail.
                self.with(code.parse().map_err(|_| invalid(entry))?)
            }
            _ => Err(invalid(entry)),
        }
    }

    /// The entries of the written form, classes last: `429, 5xx` (none for the empty set).
    fn entries(self) -> Vec<String> {
        let class_full = |from: u16| (from..from + 100).all(|s| self.contains(s));
        let mut entries = Vec::new();
        let mut classes = Vec::new();
        for from in [400, 500] {
            if class_full(from) {
                classes.push(format!("{}xx", from / 100));
            } else {
                entries.extend(
                    (from..from + 100)
                        .filter(|&s| self.contains(s))
                        .map(|s| s.to_string()),
                );
            }
        }
        entries.extend(classes);
        entries
    }
}

fn invalid(entry: &str) -> ConfigError {
    ConfigError::owned(
        "failure_statuses".into(),
        "a list of 4xx, 5xx or codes from 400 to 599".into(),
        format!("{entry:?}"),
    )
}

impl Default for FailureStatuses {
    fn default() -> Self {
        FailureStatuses::SERVER_ERRORS
    }
}

impl std::str::FromStr for FailureStatuses {
    type Err = ConfigError;

    /// A comma-separated list: `5xx, 429`; `none` for the empty set.
    fn from_str(s: &str) -> Result<Self, ConfigError> {
        if s.trim().eq_ignore_ascii_case("none") {
            return Ok(FailureStatuses::NONE);
        }
        s.split(',')
            .try_fold(FailureStatuses::NONE, |set, entry| set.with_entry(entry))
    }
}

impl fmt::Display for FailureStatuses {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if *self == FailureStatuses::NONE {
            return f.write_str("none");
        }
        f.write_str(&self.entries().join(", "))
    }
}

impl fmt::Debug for FailureStatuses {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FailureStatuses({self})")
    }
}

/// In files: a list of codes (numbers) and classes (strings), or the same as one string.
#[cfg(feature = "serde")]
mod serde_list {
    use std::fmt;

    use serde::de::{self, SeqAccess, Visitor};

    use super::FailureStatuses;

    /// What a list holds, as the message of a wrong element says.
    const ENTRY: &str = "4xx, 5xx or a code from 400 to 599";

    impl serde::Serialize for FailureStatuses {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeSeq;
            let entries = self.entries();
            let mut seq = s.serialize_seq(Some(entries.len()))?;
            for entry in entries {
                match entry.parse::<u16>() {
                    Ok(code) => seq.serialize_element(&code)?,
                    Err(_) => seq.serialize_element(&entry)?,
                }
            }
            seq.end()
        }
    }

    /// One entry: a number or a string, each checked by `with_entry`.
    struct Entry(String);

    impl<'de> serde::Deserialize<'de> for Entry {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct EntryVisitor;
            impl Visitor<'_> for EntryVisitor {
                type Value = Entry;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    f.write_str(ENTRY)
                }
                fn visit_i64<E: de::Error>(self, v: i64) -> Result<Entry, E> {
                    Ok(Entry(v.to_string()))
                }
                fn visit_u64<E: de::Error>(self, v: u64) -> Result<Entry, E> {
                    Ok(Entry(v.to_string()))
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<Entry, E> {
                    Ok(Entry(v.to_owned()))
                }
            }
            d.deserialize_any(EntryVisitor)
        }
    }

    impl<'de> serde::Deserialize<'de> for FailureStatuses {
        fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            struct ListVisitor;
            impl<'de> Visitor<'de> for ListVisitor {
                type Value = FailureStatuses;
                fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    write!(f, "a list of {ENTRY}, such as [\"5xx\", 429]")
                }
                fn visit_str<E: de::Error>(self, v: &str) -> Result<FailureStatuses, E> {
                    v.parse().map_err(|e: crate::ConfigError| {
                        E::custom(format!("{}, got {}", e.expected(), e.got()))
                    })
                }
                fn visit_seq<A: SeqAccess<'de>>(
                    self,
                    mut seq: A,
                ) -> Result<FailureStatuses, A::Error> {
                    let mut set = FailureStatuses::NONE;
                    while let Some(Entry(entry)) = seq.next_element()? {
                        set = set.with_entry(&entry).map_err(|e| {
                            de::Error::custom(format!("{}, got {}", e.expected(), e.got()))
                        })?;
                    }
                    Ok(set)
                }
            }
            d.deserialize_any(ListVisitor)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_from_400_to_599_is_held_alone_and_nothing_else_is() {
        for status in 0..=u16::MAX {
            match FailureStatuses::NONE.with(status) {
                Ok(set) => {
                    assert!((400..600).contains(&status));
                    assert!(set.contains(status));
                    assert_eq!((0..=u16::MAX).filter(|&s| set.contains(s)).count(), 1);
                    assert_eq!(set.to_string(), status.to_string());
                    assert_eq!(set.to_string().parse::<FailureStatuses>().unwrap(), set);
                }
                Err(e) => {
                    assert!(!(400..600).contains(&status));
                    assert_eq!(e.field(), "failure_statuses");
                }
            }
        }
    }

    #[test]
    fn classes_codes_and_their_written_form() {
        let set: FailureStatuses = " 5XX ,429,408".parse().unwrap();
        assert_eq!(set.to_string(), "408, 429, 5xx");
        assert!(set.contains(500) && set.contains(599) && set.contains(408));
        assert!(!set.contains(404) && !set.contains(600) && !set.contains(399));
        assert_eq!(FailureStatuses::default(), "5xx".parse().unwrap());
        assert_eq!(
            "4xx,5xx".parse::<FailureStatuses>().unwrap().to_string(),
            "4xx, 5xx"
        );
        assert_eq!(FailureStatuses::NONE.to_string(), "none");
        assert_eq!(
            "None".parse::<FailureStatuses>().unwrap(),
            FailureStatuses::NONE
        );
    }

    #[test]
    fn bad_entries_are_errors_naming_them() {
        for bad in [
            "", "6xx", "302", "abc", "5xx,", "600", "-1", "65536", "4 29",
        ] {
            let e = bad.parse::<FailureStatuses>().unwrap_err();
            assert_eq!(e.field(), "failure_statuses", "{bad:?}");
            assert!(e.to_string().contains("4xx, 5xx or codes"), "{bad:?}: {e}");
        }
    }
}
