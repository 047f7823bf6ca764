//! Per-call telemetry, opt-in: a `tracing` span per call (feature `tracing`), and a duration
//! histogram with a timeouts counter (feature `metrics`).
//!
//! Without it nothing is added to a call: the layer, the service and `CallFuture` (feature `future`) take a
//! [`Telemetry`] type parameter that defaults to [`NoTelemetry`], a zero-sized type whose hooks
//! are empty and compile away. With a [`CallTelemetry`] each call gets a span named
//! `hotbreaker.call` (target `hotbreaker`, level INFO), which `tracing-opentelemetry` turns into
//! an OpenTelemetry span, with these attributes:
//!
//! | attribute | value |
//! |---|---|
//! | `breaker.name` | the name given to [`CallTelemetry::new`] |
//! | `breaker.state` | the state that admitted or rejected the call: `closed`, `half-open`, `open`, `isolated`, `disabled` |
//! | `breaker.rejected` | `true` when the breaker turned the call away (the span then ends at once) |
//! | `breaker.throttled` | `true` when it was the throttle, while Closed, that turned it away |
//! | `breaker.outcome` | `success`, `failure`, `ignored` (the classifier's verdict), `rejected` or `cancelled` (dropped before it finished: nothing is recorded) |
//! | `breaker.slow` | whether the slow-call rule judged the call slow (`false` without one) |
//! | `breaker.timed_out` | whether the call ran past its deadline |
//! | `otel.status_code` | `error` for a Failure (`tracing-opentelemetry` sets the span's status from it) |
//!
//! The inner call runs inside the span, so its own spans are children of it. The transitions of
//! a [`Registry`](crate::Registry)'s breakers are `tracing` events (feature `tracing`); one
//! that a call causes is emitted inside that call's span and so becomes a span event.
//!
//! With the `metrics` feature, a completed call also records, on the installed recorder:
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `hotbreaker_call_duration_seconds` | histogram | `name`, `outcome` = `success` \| `failure` \| `ignored` |
//! | `hotbreaker_call_timeouts_total` | counter | `name`: calls that ran past their deadline (registered at 0) |
//!
//! The duration runs from admission to the outcome, on the breaker's clock. Rejected calls are
//! not timed; they are counted by [`Registry::publish_metrics`](crate::Registry::publish_metrics).
//!
//! # Cost
//! Off, none. On, a span per call (what the installed subscriber makes of it), a clock read at
//! each end, one histogram record, and one reference-count increment per call where the
//! telemetry is cloned into a `'static` future (the tower service).
//!
//! # Examples
//! ```
//! # #[cfg(any(feature = "tracing", feature = "metrics"))] {
//! use hotbreaker::{Breaker, telemetry::CallTelemetry};
//!
//! let breaker = Breaker::builder().build().unwrap();
//! let telemetry = CallTelemetry::new("inventory");
//! let stock = telemetry.call(&breaker, || Ok::<_, std::io::Error>(12));
//! assert_eq!(stock.unwrap(), 12);
//! # }
//! ```
//! With futures, `breaker.call_future(fut).telemetry(&telemetry)`; with tower,
//! `BreakerLayer::new(breaker).telemetry(telemetry)`.

#[cfg(any(feature = "tracing", feature = "metrics"))]
mod call;

#[cfg(any(feature = "tracing", feature = "metrics"))]
pub use call::CallTelemetry;

use crate::breaker::Breaker;
use crate::error::Rejected;
use crate::outcome::Outcome;
use crate::state::State;

/// How a call that was let through ended, as telemetry sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallEnd {
    /// Classified and recorded.
    Done {
        /// The recorded outcome.
        outcome: Outcome,
        /// Judged slow by the slow-call rule.
        slow: bool,
        /// Ran past its deadline.
        timed_out: bool,
    },
    /// Dropped before it finished: nothing recorded.
    Cancelled,
}

/// What a call's telemetry does at admission, rejection and completion; [`NoTelemetry`] (the
/// default, free) or [`CallTelemetry`]. Sealed: implemented in this crate only.
pub trait Telemetry: sealed::Sealed {
    /// What one call carries from admission to its end.
    type Call: Default;
    /// Held while the call runs (a span's entry guard).
    type Entered<'a>
    where
        Self: 'a;
    /// Whether the hooks do anything (false: the caller skips the work of filling them in).
    const ON: bool;
    /// A call let through in `state`.
    fn admitted(&self, breaker: &Breaker, state: State) -> Self::Call;
    /// A call turned away.
    fn rejected(&self, breaker: &Breaker, rejected: &Rejected);
    /// Enters the call's context for as long as the guard lives.
    fn enter(call: &Self::Call) -> Self::Entered<'_>;
    /// The call ended.
    fn ended(&self, breaker: &Breaker, call: &Self::Call, end: CallEnd);
}

mod sealed {
    pub trait Sealed {}
}

/// `telemetry.admitted(..)` for a call holding `ticket`, giving the ticket back to `breaker`
/// if the telemetry panics (a half-open slot must not be lost to a subscriber's panic).
#[cfg(any(feature = "future", feature = "tracing", feature = "metrics"))]
#[inline]
pub(crate) fn admit<T: Telemetry>(
    telemetry: &T,
    breaker: &Breaker,
    ticket: crate::ticket::Ticket,
) -> T::Call {
    if !T::ON {
        return T::Call::default();
    }
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        telemetry.admitted(breaker, ticket.state())
    })) {
        Ok(call) => call,
        Err(panic) => {
            breaker.release_ticket(ticket);
            std::panic::resume_unwind(panic)
        }
    }
}

/// `telemetry.ended(..)` where a panic must not escape: from a destructor (perhaps while the
/// thread unwinds) or after the call's own panic. The telemetry's panic is dropped; the
/// breaker has recorded the outcome already.
#[cfg(any(feature = "future", feature = "tracing", feature = "metrics"))]
#[inline]
pub(crate) fn end_quietly<T: Telemetry>(
    telemetry: &T,
    breaker: &Breaker,
    call: &T::Call,
    end: CallEnd,
) {
    if T::ON {
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            telemetry.ended(breaker, call, end)
        }));
    }
}

/// Whether the breaker counts a call of `ticket` ending now with `outcome` as slow (only for
/// telemetry that is on; an Ignored outcome is never judged).
#[cfg(any(feature = "future", feature = "tracing", feature = "metrics"))]
#[inline]
pub(crate) fn judged_slow<T: Telemetry>(
    breaker: &Breaker,
    ticket: crate::ticket::Ticket,
    outcome: Outcome,
) -> bool {
    T::ON && outcome != Outcome::Ignored && breaker.judge_slow(ticket)
}

/// No per-call telemetry: every hook is empty and the type has no size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NoTelemetry;

impl sealed::Sealed for NoTelemetry {}

impl Telemetry for NoTelemetry {
    type Call = ();
    type Entered<'a> = ();
    const ON: bool = false;
    #[inline(always)]
    fn admitted(&self, _: &Breaker, _: State) {}
    #[inline(always)]
    fn rejected(&self, _: &Breaker, _: &Rejected) {}
    #[inline(always)]
    fn enter(_: &()) {}
    #[inline(always)]
    fn ended(&self, _: &Breaker, _: &(), _: CallEnd) {}
}

impl<T: Telemetry> sealed::Sealed for &T {}

impl<T: Telemetry> Telemetry for &T {
    type Call = T::Call;
    type Entered<'a>
        = T::Entered<'a>
    where
        Self: 'a;
    const ON: bool = T::ON;
    #[inline]
    fn admitted(&self, breaker: &Breaker, state: State) -> T::Call {
        (**self).admitted(breaker, state)
    }
    #[inline]
    fn rejected(&self, breaker: &Breaker, rejected: &Rejected) {
        (**self).rejected(breaker, rejected)
    }
    #[inline]
    fn enter(call: &T::Call) -> T::Entered<'_> {
        T::enter(call)
    }
    #[inline]
    fn ended(&self, breaker: &Breaker, call: &T::Call, end: CallEnd) {
        (**self).ended(breaker, call, end)
    }
}
