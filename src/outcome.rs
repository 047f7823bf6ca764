//! How a call went: what a permit reports.

/// How a call went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Outcome {
    /// The call worked.
    Success,
    /// The call failed in a way that says the dependency is unhealthy.
    Failure,
    /// Neither: a cancelled call, a client error you choose not to count. Not a window call;
    /// while HalfOpen it gives the probe slot back.
    Ignored,
}

impl Outcome {
    /// `Ok` is a Success, `Err` a Failure.
    pub(crate) fn of_result<T, E>(result: &Result<T, E>) -> Outcome {
        if result.is_ok() {
            Outcome::Success
        } else {
            Outcome::Failure
        }
    }

    /// The label the metrics and spans use: `success`, `failure`, `ignored`.
    #[cfg(any(feature = "tracing", feature = "metrics"))]
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Ignored => "ignored",
        }
    }
}
