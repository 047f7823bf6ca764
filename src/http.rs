//! HTTP (feature `http`): classification (5xx and transport errors are Failures, the rest are
//! not), and the responses a service answers for a breaker's errors: 503 with `Retry-After` for a
//! rejection, 504 for the breaker's timeout, 502 for the dependency's own error.

use std::future::{Ready, ready};
use std::time::Duration;

use http::{HeaderValue, StatusCode, header};

use crate::classify::Classify;
use crate::error::{Error, Reason, Rejected};
use crate::failure_statuses::FailureStatuses;
use crate::outcome::Outcome;
use crate::service::Fallback;
use crate::status_rule::StatusRule;

/// Classifies `http::Response`s for a [`BreakerLayer`](crate::service::BreakerLayer): a
/// transport error (the `Err` of the client service) is a Failure; a response is a Failure when
/// its status is one the classifier counts (5xx by default), otherwise a Success, since a 4xx
/// says the dependency is up and answering. A timeout is a Failure.
///
/// # Examples
/// ```
/// use http::StatusCode;
/// use hotbreaker::{Outcome, http::HttpClassifier};
///
/// let default = HttpClassifier::new();
/// assert_eq!(default.status(StatusCode::SERVICE_UNAVAILABLE), Outcome::Failure);
/// assert_eq!(default.status(StatusCode::NOT_FOUND), Outcome::Success);
///
/// // Also count 429 Too Many Requests against the dependency.
/// let strict = HttpClassifier::failing_when(|s| s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS);
/// assert_eq!(strict.status(StatusCode::TOO_MANY_REQUESTS), Outcome::Failure);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct HttpClassifier {
    failing: StatusRule,
}

impl Default for HttpClassifier {
    fn default() -> Self {
        HttpClassifier::new()
    }
}

impl HttpClassifier {
    /// 5xx are Failures.
    pub fn new() -> Self {
        HttpClassifier {
            failing: StatusRule::server_errors(),
        }
    }

    /// Statuses for which `failing` holds are Failures.
    pub fn failing_when(failing: fn(StatusCode) -> bool) -> Self {
        HttpClassifier {
            failing: StatusRule::When(failing),
        }
    }

    /// Statuses in `statuses` are Failures: the classifier a configuration's
    /// `failure_statuses` describes (as [`Registry::layer`](crate::Registry::layer) builds it).
    ///
    /// # Examples
    /// ```
    /// use http::StatusCode;
    /// use hotbreaker::{Outcome, http::HttpClassifier};
    ///
    /// let classifier = HttpClassifier::failing_in("5xx, 429".parse()?);
    /// assert_eq!(classifier.status(StatusCode::TOO_MANY_REQUESTS), Outcome::Failure);
    /// assert_eq!(classifier.status(StatusCode::NOT_FOUND), Outcome::Success);
    /// # Ok::<(), hotbreaker::ConfigError>(())
    /// ```
    pub fn failing_in(statuses: FailureStatuses) -> Self {
        HttpClassifier {
            failing: StatusRule::In(statuses),
        }
    }

    /// The outcome of a response with `status`: for clients whose response type is not
    /// `http::Response` (reqwest's, say), call this from a closure classifier.
    #[inline]
    pub fn status(&self, status: StatusCode) -> Outcome {
        self.failing.outcome(status)
    }
}

impl<B, E> Classify<http::Response<B>, E> for HttpClassifier {
    #[inline]
    fn classify(&self, result: &Result<http::Response<B>, E>) -> Outcome {
        match result {
            Ok(response) => self.status(response.status()),
            Err(_) => Outcome::Failure,
        }
    }
}

/// The `Retry-After` header value (RFC 9110: whole seconds, rounded up, at least 1) for a
/// rejection while Open; `None` when the breaker cannot say (HalfOpen, Isolated).
///
/// # Examples
/// ```
/// use hotbreaker::{Breaker, http::retry_after};
///
/// let breaker = Breaker::builder()
///     .consecutive_failures(1)
///     .open_timeout(std::time::Duration::from_millis(2_500))
///     .build()
///     .unwrap();
/// breaker.try_acquire().unwrap().failure();
/// let rejected = breaker.try_acquire().unwrap_err();
/// assert_eq!(retry_after(&rejected).unwrap(), "3");
/// ```
pub fn retry_after(rejected: &crate::Rejected) -> Option<http::HeaderValue> {
    rejected.retry_after().map(header_seconds)
}

/// Whole seconds, rounded up, at least 1 (RFC 9110's `Retry-After`).
fn header_seconds(after: Duration) -> HeaderValue {
    let seconds = after
        .as_secs()
        .saturating_add(u64::from(after.subsec_nanos() > 0));
    HeaderValue::from(seconds.max(1))
}

/// The `Retry-After` [`Unavailable`] sends by default for a rejection while HalfOpen, and for a
/// call the throttle shed: 1 s, the shortest the header can say.
pub const ESTIMATED_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Answers a rejected request with `503 Service Unavailable` and a `Retry-After`, as a
/// [`BreakerLayer`](crate::service::BreakerLayer) fallback (a named type, so the service stays
/// nameable, in axum's state say) or through [`response`](Unavailable::response) in a handler.
///
/// `Retry-After` (whole seconds, rounded up, at least 1):
/// - **Open**: the time until the breaker lets a probe through, exactly
///   ([`Rejected::retry_after`]).
/// - **HalfOpen**, every probe slot taken: an estimate, [`ESTIMATED_RETRY_AFTER`] unless set with
///   [`half_open`](Unavailable::half_open). The probes are in flight and their verdict comes
///   within about one call's latency; a client that retries after it finds the breaker Closed
///   again, or Open with an exact `Retry-After`.
/// - **Throttled** (Closed, shedding load): the same estimate; the throttle's rate changes at
///   most once per bucket of the window.
/// - **Isolated**: no header; only an operator's reset ends it.
///
/// The body is a short text saying which state rejected the call.
///
/// # Examples
/// ```
/// use hotbreaker::{Breaker, http::Unavailable};
///
/// let breaker = Breaker::builder()
///     .consecutive_failures(1)
///     .open_timeout(std::time::Duration::from_millis(2_500))
///     .build()?;
/// breaker.try_acquire().unwrap().failure();
/// let rejected = breaker.try_acquire().unwrap_err();
/// let response: http::Response<String> = Unavailable::new().response(&rejected);
/// assert_eq!(response.status(), http::StatusCode::SERVICE_UNAVAILABLE);
/// assert_eq!(response.headers()["retry-after"], "3");
/// # Ok::<(), hotbreaker::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Unavailable {
    estimate: Duration,
}

impl Default for Unavailable {
    fn default() -> Self {
        Unavailable::new()
    }
}

impl Unavailable {
    /// `Retry-After` as above, with [`ESTIMATED_RETRY_AFTER`] for HalfOpen and throttled calls.
    pub const fn new() -> Self {
        Unavailable {
            estimate: ESTIMATED_RETRY_AFTER,
        }
    }

    /// The `Retry-After` for a rejection while HalfOpen and for a throttled call: the typical
    /// latency of the dependency's calls is a good choice (rounded up to a whole second).
    pub const fn half_open(self, estimate: Duration) -> Self {
        Unavailable { estimate }
    }

    /// The `Retry-After` this fallback sends for `rejected`, if any.
    pub fn retry_after(&self, rejected: &Rejected) -> Option<Duration> {
        match rejected.reason() {
            Reason::Open => rejected.retry_after(),
            Reason::HalfOpenFull | Reason::Throttled => Some(self.estimate),
            _ => None, // Isolated: only an operator helps
        }
    }

    /// The `503` response for `rejected`.
    pub fn response<B: From<String>>(&self, rejected: &Rejected) -> http::Response<B> {
        let mut response = http::Response::new(B::from(format!("{rejected}\n")));
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        if let Some(after) = self.retry_after(rejected) {
            headers.insert(header::RETRY_AFTER, header_seconds(after));
        }
        response
    }
}

impl<Req, B: From<String>, E> Fallback<Req, http::Response<B>, E> for Unavailable {
    type Future = Ready<Result<http::Response<B>, Error<E>>>;

    #[inline]
    fn answer(&self, rejected: Rejected, _request: Req) -> Self::Future {
        ready(Ok(self.response(&rejected)))
    }
}

/// The response a service answers when a call through the breaker failed, whatever way:
/// [`Unavailable`]'s `503` with `Retry-After` for a rejection, `504 Gateway Timeout` for the
/// breaker's own timeout, `502 Bad Gateway` for the dependency's error (its text is not
/// passed on: it may say more than a client should see).
///
/// # Examples
/// ```
/// use hotbreaker::{Error, http::response_for};
///
/// let timeout: Error<std::io::Error> = Error::Timeout(std::time::Duration::from_secs(2));
/// let response: http::Response<String> = response_for(&timeout);
/// assert_eq!(response.status(), http::StatusCode::GATEWAY_TIMEOUT);
/// ```
pub fn response_for<B: From<String>, E>(error: &Error<E>) -> http::Response<B> {
    let (status, text) = match error {
        Error::Rejected(rejected) => return Unavailable::new().response(rejected),
        Error::Timeout(after) => (
            StatusCode::GATEWAY_TIMEOUT,
            format!("the dependency did not answer within {after:?}\n"),
        ),
        Error::Inner(_) => (
            StatusCode::BAD_GATEWAY,
            "the dependency failed\n".to_owned(),
        ),
    };
    let mut response = http::Response::new(B::from(text));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Breaker;

    fn open_for(ms: u64) -> Breaker {
        let b = Breaker::builder()
            .consecutive_failures(1)
            .open_timeout(Duration::from_millis(ms))
            .half_open_permits(1)
            .build()
            .unwrap();
        b.try_acquire().unwrap().failure();
        b
    }

    fn header(r: &http::Response<String>) -> Option<&str> {
        r.headers().get("retry-after").map(|v| v.to_str().unwrap())
    }

    #[test]
    fn every_kind_of_rejection_gets_its_retry_after() {
        let open = open_for(60_000).try_acquire().unwrap_err();
        let r: http::Response<String> = Unavailable::new().response(&open);
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(header(&r), Some("60"));
        assert!(r.body().contains("open"), "{}", r.body());

        let (clock, mock) = quanta::Clock::mock();
        let b = Breaker::builder()
            .consecutive_failures(1)
            .open_timeout(Duration::from_millis(10))
            .half_open_permits(1)
            .clock(clock)
            .build()
            .unwrap();
        b.try_acquire().unwrap().failure();
        mock.increment(Duration::from_millis(10));
        let _probe = b.try_acquire().expect("the probe");
        let half_open = b.try_acquire().unwrap_err();
        assert_eq!(half_open.reason(), Reason::HalfOpenFull);
        let r: http::Response<String> = Unavailable::new().response(&half_open);
        assert_eq!(header(&r), Some("1"), "the documented estimate");
        let slower = Unavailable::new().half_open(Duration::from_millis(2_001));
        let r: http::Response<String> = slower.response(&half_open);
        assert_eq!(header(&r), Some("3"), "rounded up");

        let isolated = Breaker::builder().build().unwrap();
        isolated.isolate();
        let r: http::Response<String> =
            Unavailable::new().response(&isolated.try_acquire().unwrap_err());
        assert_eq!(header(&r), None, "only an operator ends isolation");
        assert_eq!(
            Unavailable::new().retry_after(&Rejected::THROTTLED),
            Some(ESTIMATED_RETRY_AFTER)
        );
    }

    #[test]
    fn errors_map_to_502_503_504() {
        let rejected = open_for(1_000).try_acquire().unwrap_err();
        let cases: [(Error<&str>, StatusCode); 3] = [
            (Error::Rejected(rejected), StatusCode::SERVICE_UNAVAILABLE),
            (
                Error::Timeout(Duration::from_secs(1)),
                StatusCode::GATEWAY_TIMEOUT,
            ),
            (Error::Inner("secret detail"), StatusCode::BAD_GATEWAY),
        ];
        for (error, status) in cases {
            let r: http::Response<String> = response_for(&error);
            assert_eq!(r.status(), status);
            assert!(!r.body().contains("secret"), "{}", r.body());
        }
    }
}
