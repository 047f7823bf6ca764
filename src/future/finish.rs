//! What a finished inner future gives: a result, or "ran past its deadline".

use std::time::Duration;

use crate::classify::Classify;
use crate::error::Error;
use crate::outcome::Outcome;

mod sealed {
    /// Keeps [`Finish`](super::Finish) to the crate's own output types.
    pub trait Sealed {}
}

/// What a finished inner future gives: a result, or "ran past its deadline". Implemented for
/// `Result<T, E>` and [`Timed`]; sealed.
pub trait Finish: sealed::Sealed {
    /// The call's value.
    type Ok;
    /// The call's error.
    type Err;
    /// The outcome to record, and the caller's result.
    fn finish<C: Classify<Self::Ok, Self::Err>>(
        self,
        classify: &C,
    ) -> (Outcome, Result<Self::Ok, Error<Self::Err>>);
}

impl<T, E> sealed::Sealed for Result<T, E> {}

impl<T, E> Finish for Result<T, E> {
    type Ok = T;
    type Err = E;
    #[inline]
    fn finish<C: Classify<T, E>>(self, classify: &C) -> (Outcome, Result<T, Error<E>>) {
        (classify.classify(&self), self.map_err(Error::Inner))
    }
}

/// The output of a [`Deadline`](super::Deadline) future.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Timed<O> {
    /// The inner future finished in time with this output.
    Done(O),
    /// The deadline, this long after the start, passed first.
    Elapsed(Duration),
}

impl<T, E> sealed::Sealed for Timed<Result<T, E>> {}

impl<T, E> Finish for Timed<Result<T, E>> {
    type Ok = T;
    type Err = E;
    #[inline]
    fn finish<C: Classify<T, E>>(self, classify: &C) -> (Outcome, Result<T, Error<E>>) {
        match self {
            Timed::Done(result) => result.finish(classify),
            Timed::Elapsed(after) => (classify.timed_out(), Err(Error::Timeout(after))),
        }
    }
}
