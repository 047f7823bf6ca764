//! reqwest classification (feature `reqwest`): 5xx, transport errors and timeouts are Failures,
//! the rest are not.
//!
//! [`ReqwestClassifier`] is a plain `Copy` value, so the service it classifies for can be named
//! (no closure type, no `Box`). It serves both ways of calling:
//!
//! - **tower**: `reqwest::Client` is a `Service<reqwest::Request>`; put a
//!   [`BreakerLayer`](crate::service::BreakerLayer) classified by `ReqwestClassifier` in front of
//!   it.
//! - **futures**: hand the `send()` future to [`Breaker::call_owned`](crate::Breaker::call_owned)
//!   or [`Breaker::call_future`](crate::Breaker::call_future), with
//!   [`.classify(ReqwestClassifier::new())`](crate::future::CallFuture::classify) and, with the
//!   feature `tokio`, [`.timeout(..)`](crate::future::CallFuture::timeout).
//!
//! ```
//! use std::sync::Arc;
//! use hotbreaker::{Breaker, reqwest::ReqwestClassifier, service::{BreakerLayer, BreakerService}};
//! use tower::ServiceBuilder;
//!
//! // The client's whole type, written out: no Box, nothing allocated per call by the breaker.
//! type Client = BreakerService<reqwest::Client, Arc<Breaker>, ReqwestClassifier>;
//!
//! let breaker = Arc::new(Breaker::builder().consecutive_failures(5).build().unwrap());
//! let client: Client = ServiceBuilder::new()
//!     .layer(BreakerLayer::new(breaker).classify(ReqwestClassifier::new()))
//!     .service(reqwest::Client::new());
//! # let _ = client;
//! ```
//!
//! A response's body is read after the breaker has recorded the call. To count a failure while
//! reading it too, make the whole exchange the protected future and classify its
//! `Result<T, reqwest::Error>` with [`ReqwestClassifier::error`] (turn error statuses into errors
//! with `error_for_status`):
//!
//! ```
//! use std::sync::Arc;
//! use hotbreaker::{Breaker, Error, Outcome, reqwest::ReqwestClassifier};
//!
//! fn classify(result: &Result<String, reqwest::Error>) -> Outcome {
//!     match result {
//!         Ok(_) => Outcome::Success,
//!         Err(e) => ReqwestClassifier::new().error(e),
//!     }
//! }
//!
//! async fn fetch(
//!     breaker: &Arc<Breaker>,
//!     client: &reqwest::Client,
//!     url: &str,
//! ) -> Result<String, Error<reqwest::Error>> {
//!     let exchange = {
//!         let request = client.get(url);
//!         async move { request.send().await?.error_for_status()?.text().await }
//!     };
//!     breaker.call_owned(exchange).classify(classify).await
//! }
//! # let _ = fetch;
//! ```

use ::reqwest::StatusCode;

use crate::classify::Classify;
use crate::outcome::Outcome;
use crate::status_rule::StatusRule;

/// Classifies the `Result<reqwest::Response, reqwest::Error>` of a call:
///
/// | result | outcome |
/// |---|---|
/// | a response whose status the classifier counts (5xx by default) | Failure |
/// | any other response (2xx, 3xx, 4xx: the dependency is up and answering) | Success |
/// | an error from `error_for_status`: by its status, as above | Failure or Success |
/// | an error building the request (a bad URL, say): it never left | Ignored |
/// | any other error (connect, timeout, request, body, decode, redirect loop) | Failure |
/// | the call ran past a deadline given to the breaker | Failure |
///
/// # Examples
/// ```
/// use hotbreaker::{Outcome, reqwest::ReqwestClassifier};
/// use reqwest::StatusCode;
///
/// let default = ReqwestClassifier::new();
/// assert_eq!(default.status(StatusCode::BAD_GATEWAY), Outcome::Failure);
/// assert_eq!(default.status(StatusCode::NOT_FOUND), Outcome::Success);
///
/// // Also count 429 Too Many Requests against the dependency.
/// let strict = ReqwestClassifier::failing_when(|s| {
///     s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS
/// });
/// assert_eq!(strict.status(StatusCode::TOO_MANY_REQUESTS), Outcome::Failure);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct ReqwestClassifier {
    failing: StatusRule,
}

impl Default for ReqwestClassifier {
    fn default() -> Self {
        ReqwestClassifier::new()
    }
}

impl ReqwestClassifier {
    /// 5xx, transport errors and timeouts are Failures.
    pub fn new() -> Self {
        ReqwestClassifier {
            failing: StatusRule::server_errors(),
        }
    }

    /// Statuses for which `failing` holds are Failures (transport errors and timeouts still
    /// are). A plain `fn`, so the classifier's type stays the same and nameable.
    pub fn failing_when(failing: fn(StatusCode) -> bool) -> Self {
        ReqwestClassifier {
            failing: StatusRule::When(failing),
        }
    }

    /// The outcome of a response with `status`.
    #[inline]
    pub fn status(&self, status: StatusCode) -> Outcome {
        self.failing.outcome(status)
    }

    /// The outcome of a call that ended in `error` (see the table on the type).
    ///
    /// # Examples
    /// ```
    /// use hotbreaker::{Outcome, reqwest::ReqwestClassifier};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// // A URL reqwest cannot parse: the request never left, the dependency is not to blame.
    /// let error = reqwest::Client::new().get("not a url").send().await.unwrap_err();
    /// assert_eq!(ReqwestClassifier::new().error(&error), Outcome::Ignored);
    /// # }
    /// ```
    pub fn error(&self, error: &::reqwest::Error) -> Outcome {
        if let Some(status) = error.status() {
            self.status(status)
        } else if error.is_builder() {
            Outcome::Ignored
        } else {
            Outcome::Failure
        }
    }
}

impl Classify<::reqwest::Response, ::reqwest::Error> for ReqwestClassifier {
    #[inline]
    fn classify(&self, result: &Result<::reqwest::Response, ::reqwest::Error>) -> Outcome {
        match result {
            Ok(response) => self.status(response.status()),
            Err(error) => self.error(error),
        }
    }
}
