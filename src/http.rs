//! HTTP classification (feature `http`): 5xx and transport errors are Failures, the rest are not.

use http::StatusCode;

use crate::classify::Classify;
use crate::outcome::Outcome;

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
    failing: fn(StatusCode) -> bool,
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
            failing: |status| status.is_server_error(),
        }
    }

    /// Statuses for which `failing` holds are Failures.
    pub fn failing_when(failing: fn(StatusCode) -> bool) -> Self {
        HttpClassifier { failing }
    }

    /// The outcome of a response with `status`: for clients whose response type is not
    /// `http::Response` (reqwest's, say), call this from a closure classifier.
    #[inline]
    pub fn status(&self, status: StatusCode) -> Outcome {
        if (self.failing)(status) {
            Outcome::Failure
        } else {
            Outcome::Success
        }
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
    let after = rejected.retry_after()?;
    let seconds = after.as_secs() + u64::from(after.subsec_nanos() > 0);
    Some(http::HeaderValue::from(seconds.max(1)))
}
