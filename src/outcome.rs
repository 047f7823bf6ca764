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
