//! What a trace holds: one event per sampled call.

use std::time::Duration;

/// What became of a recorded call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Recorded {
    /// The dependency served it.
    Success,
    /// It failed in a way that says the dependency is unhealthy.
    Failure,
    /// It counted as neither (a client error, a cancelled call).
    Ignored,
    /// The breaker turned it away: the dependency never saw it, so how it would have gone is
    /// unknown.
    Rejected,
}

impl Recorded {
    /// The two-bit code of the format.
    pub(crate) fn code(self) -> u8 {
        match self {
            Recorded::Success => 0,
            Recorded::Failure => 1,
            Recorded::Ignored => 2,
            Recorded::Rejected => 3,
        }
    }

    /// The outcome of a two-bit code (only the low two bits are read).
    pub(crate) fn from_code(code: u8) -> Recorded {
        match code & 3 {
            0 => Recorded::Success,
            1 => Recorded::Failure,
            2 => Recorded::Ignored,
            _ => Recorded::Rejected,
        }
    }
}

/// One recorded call.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Event {
    /// When the call started, after the trace's start.
    pub start: Duration,
    /// How long it took (0 for a rejected call).
    pub latency: Duration,
    /// How it went.
    pub outcome: Recorded,
    /// How many calls it stands for: the sampling rate when it was recorded (1 when every call
    /// was recorded). At least 1.
    pub weight: u32,
}

/// A recorded trace: a breaker's name, when recording started, and its calls sorted by start.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Trace {
    /// The name of the breaker (or dependency) it was recorded for.
    pub name: String,
    /// When the trace's time 0 was, in milliseconds since the Unix epoch (0 if unknown).
    pub started_unix_ms: u64,
    /// The calls, sorted by [`Event::start`].
    pub events: Vec<Event>,
}

impl Trace {
    /// The calls the trace stands for: the sum of the weights.
    pub fn calls(&self) -> u64 {
        self.events.iter().map(|e| u64::from(e.weight)).sum()
    }

    /// From the first call's start to the last call's end.
    pub fn span(&self) -> Duration {
        let first = self.events.first().map_or(Duration::ZERO, |e| e.start);
        let last = self
            .events
            .iter()
            .map(|e| e.start.saturating_add(e.latency))
            .max()
            .unwrap_or(Duration::ZERO);
        last.saturating_sub(first)
    }
}
