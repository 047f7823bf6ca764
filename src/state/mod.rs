//! The packed state word and the pure function that decides every change to it.
//!
//! The breaker keeps its state, generation and half-open counters in one
//! 128-bit atomic (see [`Word`]); each change is one compare-and-swap from a word to
//! [`next()`]`(word, event)`. This file holds no atomics: everything here is tested without threads.
//!
//! `kind.rs` (the states), `cause.rs` (why a transition happened), `word.rs` (the packed word),
//! `next.rs` (the decision); beside them, what publishes a word's consequences for the fast
//! paths: `mirror.rs` (its kind and generation in 64 bits), `deadline.rs` and
//! `compact_deadline.rs` (when Open or HalfOpen ends).

mod cause;
pub(crate) mod compact_deadline;
pub(crate) mod deadline;
mod kind;
pub(crate) mod mirror;
mod next;
#[cfg(test)]
mod tests;
mod word;

pub use cause::Cause;
pub use kind::State;
pub(crate) use next::{Event, Limits, Step, next};
pub(crate) use word::{MAX_ATTEMPT, MAX_HALF_OPEN, Word};
