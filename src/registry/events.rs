//! The registry's recent transitions: a bounded ring of timestamped events, newest last.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError}; // Mutex: off the hot path (once per transition)
use std::time::{SystemTime, UNIX_EPOCH};

use crate::state::{Cause, State};
use crate::transition::Transition;

/// How many transitions a registry keeps: the oldest go first.
pub const EVENTS_KEPT: usize = 256;

/// One transition of a registry's breaker, as [`Registry::events`](crate::Registry::events)
/// lists it. Serializable with the `serde` feature (`cause` as its `Display` name, `unix_ms`
/// the wall-clock time in milliseconds since 1970).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TransitionEvent {
    /// The breaker's name (shared with the registry: an event does not copy it).
    pub name: Arc<str>,
    /// The state before.
    pub from: State,
    /// The state after.
    pub to: State,
    /// Why.
    pub cause: Cause,
    /// The generation the transition started.
    pub generation: u64,
    /// When, in milliseconds since the Unix epoch (the system's wall clock; 0 if it reads
    /// before 1970).
    pub unix_ms: u64,
}

#[cfg(feature = "serde")]
impl serde::Serialize for TransitionEvent {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut e = s.serialize_struct("TransitionEvent", 6)?;
        e.serialize_field("name", &*self.name)?;
        e.serialize_field("from", &self.from)?;
        e.serialize_field("to", &self.to)?;
        e.serialize_field("cause", self.cause.name())?;
        e.serialize_field("generation", &self.generation)?;
        e.serialize_field("unix_ms", &self.unix_ms)?;
        e.end()
    }
}

/// The ring. A lock, off every caller's path: taken by a transition's listener (once per
/// transition) and by [`Registry::events`](crate::Registry::events).
#[derive(Default)]
pub(crate) struct EventRing {
    events: Mutex<VecDeque<TransitionEvent>>, // off the hot path: once per transition
}

impl EventRing {
    pub(crate) fn push(&self, name: &Arc<str>, t: &Transition) {
        let unix_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let event = TransitionEvent {
            name: Arc::clone(name),
            from: t.from,
            to: t.to,
            cause: t.cause,
            generation: t.generation,
            unix_ms,
        };
        let mut events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        if events.len() == EVENTS_KEPT {
            events.pop_front();
        }
        events.push_back(event);
    }

    pub(crate) fn snapshot(&self) -> Vec<TransitionEvent> {
        let events = self.events.lock().unwrap_or_else(PoisonError::into_inner);
        events.iter().cloned().collect()
    }
}
