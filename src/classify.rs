//! Classifiers: how the result of a protected call becomes an [`Outcome`].

use crate::outcome::Outcome;

/// Turns a call's result into the [`Outcome`] the breaker records.
///
/// Implemented for every `Fn(&Result<T, E>) -> Outcome`, so a closure is a classifier. A call
/// given a deadline (the `tokio` feature, or the tower layer's `timeout`) that runs past it never
/// produces a result; the breaker then records [`Classify::timed_out`], a Failure unless a
/// classifier says otherwise.
///
/// # Examples
/// ```
/// use hotbreaker::{Outcome, classify::Classify};
///
/// // A "not found" is an answer, not a sick dependency.
/// let classify = |r: &Result<u32, std::io::Error>| match r {
///     Err(e) if e.kind() == std::io::ErrorKind::NotFound => Outcome::Ignored,
///     Err(_) => Outcome::Failure,
///     Ok(_) => Outcome::Success,
/// };
/// assert_eq!(classify.classify(&Ok(1)), Outcome::Success);
/// assert_eq!(classify.timed_out(), Outcome::Failure);
/// ```
pub trait Classify<T, E> {
    /// The outcome of a call that finished with `result`.
    fn classify(&self, result: &Result<T, E>) -> Outcome;

    /// The outcome of a call that ran past its deadline. Failure by default: a hung dependency
    /// is what breakers exist for.
    fn timed_out(&self) -> Outcome {
        Outcome::Failure
    }
}

impl<T, E, F> Classify<T, E> for F
where
    F: Fn(&Result<T, E>) -> Outcome,
{
    fn classify(&self, result: &Result<T, E>) -> Outcome {
        self(result)
    }
}

/// The default classifier: `Ok` is a Success, `Err` a Failure, a timeout a Failure.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Errors;

impl<T, E> Classify<T, E> for Errors {
    #[inline]
    fn classify(&self, result: &Result<T, E>) -> Outcome {
        if result.is_ok() {
            Outcome::Success
        } else {
            Outcome::Failure
        }
    }
}
