//! [`CallTelemetry`]: a span per call and, with `metrics`, a duration histogram.

use std::fmt;
use std::sync::Arc;

use super::{CallEnd, Telemetry};
use crate::breaker::Breaker;
use crate::error::{Error, Reason, Rejected};
use crate::outcome::Outcome;
use crate::state::State;

/// Per-call telemetry under one breaker name; see the [module documentation](super). Cheap to
/// clone (one `Arc`).
///
/// With the `metrics` feature its histogram and counter handles are taken from the recorder
/// installed when it is made: make it after installing the recorder.
#[derive(Clone)]
pub struct CallTelemetry {
    inner: Arc<Inner>,
}

struct Inner {
    name: Box<str>,
    #[cfg(feature = "metrics")]
    metrics: CallMetrics,
}

impl fmt::Debug for CallTelemetry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallTelemetry")
            .field("name", &self.inner.name)
            .finish_non_exhaustive()
    }
}

impl CallTelemetry {
    /// Telemetry for the calls of the breaker called `name`.
    pub fn new(name: &str) -> Self {
        CallTelemetry {
            inner: Arc::new(Inner {
                name: name.into(),
                #[cfg(feature = "metrics")]
                metrics: CallMetrics::new(name),
            }),
        }
    }

    /// The name its spans and series carry.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// [`Breaker::call`] with this telemetry: `Ok` is a Success, `Err` a Failure.
    ///
    /// # Errors
    /// As for [`Breaker::call`].
    pub fn call<T, E>(
        &self,
        breaker: &Breaker,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, Error<E>> {
        self.call_with(breaker, Outcome::of_result, f)
    }

    /// [`Breaker::call_with`] with this telemetry. A panic in `f` or `classify` is recorded as a
    /// Failure and resumed.
    ///
    /// # Errors
    /// As for [`Breaker::call`].
    pub fn call_with<T, E>(
        &self,
        breaker: &Breaker,
        classify: impl FnOnce(&Result<T, E>) -> Outcome,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, Error<E>> {
        let ticket = match breaker.acquire() {
            Ok(ticket) => ticket,
            Err(rejected) => {
                self.rejected(breaker, &rejected);
                return Err(Error::Rejected(rejected));
            }
        };
        let call = super::admit(self, breaker, ticket);
        let _entered = Self::enter(&call);
        let mut unwinding = FailOnUnwind {
            breaker,
            ticket: Some(ticket),
            telemetry: self,
            call: &call,
        };
        let result = f();
        let outcome = classify(&result);
        let ticket = unwinding.ticket.take().expect("taken once");
        let slow = super::judged_slow::<Self>(breaker, ticket, outcome);
        breaker.record_ticket(ticket, outcome);
        // After the breaker: a panicking subscriber cannot lose the outcome.
        self.ended(
            breaker,
            &call,
            CallEnd::Done {
                outcome,
                slow,
                timed_out: false,
            },
        );
        result.map_err(Error::Inner)
    }
}

/// Records a Failure if the call or its classifier panics.
struct FailOnUnwind<'a> {
    breaker: &'a Breaker,
    ticket: Option<crate::ticket::Ticket>,
    telemetry: &'a CallTelemetry,
    call: &'a CallTrace,
}

impl Drop for FailOnUnwind<'_> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            let end = CallEnd::Done {
                outcome: Outcome::Failure,
                slow: super::judged_slow::<CallTelemetry>(self.breaker, ticket, Outcome::Failure),
                timed_out: false,
            };
            self.breaker.record_ticket(ticket, Outcome::Failure);
            super::end_quietly(self.telemetry, self.breaker, self.call, end);
        }
    }
}

/// One call's span and start time.
#[derive(Debug, Default)]
pub struct CallTrace {
    #[cfg(feature = "tracing")]
    span: Option<tracing::Span>,
    #[cfg(feature = "metrics")]
    started_ns: u64,
}

impl super::sealed::Sealed for CallTelemetry {}

impl Telemetry for CallTelemetry {
    type Call = CallTrace;
    #[cfg(feature = "tracing")]
    type Entered<'a> = Option<tracing::span::Entered<'a>>;
    #[cfg(not(feature = "tracing"))]
    type Entered<'a> = ();
    const ON: bool = true;

    fn admitted(&self, breaker: &Breaker, state: State) -> CallTrace {
        let _ = (breaker, state);
        CallTrace {
            #[cfg(feature = "tracing")]
            span: Some(span(&self.inner.name, state, None)),
            #[cfg(feature = "metrics")]
            started_ns: breaker.clock_now_ns(),
        }
    }

    fn rejected(&self, _: &Breaker, rejected: &Rejected) {
        #[cfg(feature = "tracing")]
        {
            let throttled = rejected.reason() == Reason::Throttled;
            span(&self.inner.name, rejected.state(), Some(throttled));
        }
        #[cfg(not(feature = "tracing"))]
        let _ = (rejected, Reason::Throttled);
    }

    #[cfg(feature = "tracing")]
    fn enter(call: &CallTrace) -> Option<tracing::span::Entered<'_>> {
        call.span.as_ref().map(tracing::Span::enter)
    }

    #[cfg(not(feature = "tracing"))]
    fn enter(_: &CallTrace) {}

    fn ended(&self, breaker: &Breaker, call: &CallTrace, end: CallEnd) {
        let _ = (breaker, call);
        match end {
            CallEnd::Done {
                outcome,
                slow,
                timed_out,
            } => {
                #[cfg(feature = "tracing")]
                if let Some(span) = &call.span {
                    span.record("breaker.outcome", outcome.as_str());
                    span.record("breaker.slow", slow);
                    span.record("breaker.timed_out", timed_out);
                    if outcome == Outcome::Failure {
                        span.record("otel.status_code", "error");
                    }
                }
                #[cfg(feature = "metrics")]
                {
                    let took = breaker.clock_now_ns().saturating_sub(call.started_ns);
                    self.inner.metrics.done(outcome, took, timed_out);
                }
                let _ = (outcome, slow, timed_out);
            }
            CallEnd::Cancelled =>
            {
                #[cfg(feature = "tracing")]
                if let Some(span) = &call.span {
                    span.record("breaker.outcome", "cancelled");
                }
            }
        }
    }
}

#[cfg(feature = "tracing")]
/// A call's span; `rejected`: `Some(throttled)` for a call turned away, which ends at once
/// (every attribute is given at creation: a field recorded twice shows twice in some exporters).
fn span(name: &str, state: State, rejected: Option<bool>) -> tracing::Span {
    let outcome = rejected.map(|_| "rejected");
    tracing::info_span!(
        target: "hotbreaker",
        "hotbreaker.call",
        breaker.name = name,
        breaker.state = %state,
        breaker.rejected = rejected.is_some(),
        breaker.throttled = rejected == Some(true),
        breaker.outcome = outcome,
        breaker.slow = tracing::field::Empty,
        breaker.timed_out = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    )
}

/// The histogram and counter handles of one name.
#[cfg(feature = "metrics")]
struct CallMetrics {
    /// By outcome: Success, Failure, Ignored.
    duration: [metrics::Histogram; 3],
    timeouts: metrics::Counter,
}

#[cfg(feature = "metrics")]
impl CallMetrics {
    fn new(name: &str) -> Self {
        metrics::describe_histogram!(
            "hotbreaker_call_duration_seconds",
            metrics::Unit::Seconds,
            "How long the calls let through took, from admission to outcome, by outcome."
        );
        metrics::describe_counter!(
            "hotbreaker_call_timeouts_total",
            metrics::Unit::Count,
            "Calls that ran past their deadline."
        );
        let histogram = |outcome: &'static str| {
            metrics::histogram!(
                "hotbreaker_call_duration_seconds",
                "name" => name.to_string(),
                "outcome" => outcome
            )
        };
        let timeouts =
            metrics::counter!("hotbreaker_call_timeouts_total", "name" => name.to_string());
        // Registered at 0, so that `increase()` sees the first timeout.
        timeouts.increment(0);
        CallMetrics {
            duration: [
                histogram(Outcome::Success.as_str()),
                histogram(Outcome::Failure.as_str()),
                histogram(Outcome::Ignored.as_str()),
            ],
            timeouts,
        }
    }

    fn done(&self, outcome: Outcome, took_ns: u64, timed_out: bool) {
        let index = match outcome {
            Outcome::Success => 0,
            Outcome::Failure => 1,
            Outcome::Ignored => 2,
        };
        // f64 holds any duration below 2^53 ns (104 days) exactly, and longer ones to 1 ns in 2^53.
        self.duration[index].record(took_ns as f64 / 1e9);
        if timed_out {
            self.timeouts.increment(1);
        }
    }
}
