//! gRPC with tonic (feature `tonic`): classify by status code, answer rejections with
//! `UNAVAILABLE`.
//!
//! A gRPC error travels as an HTTP 200 response carrying a `grpc-status` code, so an HTTP
//! classifier would count every gRPC error as a Success. [`GrpcClassifier`] reads the code
//! instead. Codes that say the dependency is unwell (`UNAVAILABLE`, `DEADLINE_EXCEEDED`,
//! `RESOURCE_EXHAUSTED`, `INTERNAL`, `UNKNOWN`) are Failures by default; the rest (`NOT_FOUND`,
//! `INVALID_ARGUMENT`, `PERMISSION_DENIED`, ...) are answers, so Successes.
//!
//! Two places to put the breaker:
//!
//! - **Around each typed call** (recommended): `GrpcClassifier` classifies the
//!   `Result<tonic::Response<T>, tonic::Status>` of a generated client's method, handed to
//!   [`Breaker::call_future`](crate::Breaker::call_future) or
//!   [`Breaker::call_owned`](crate::Breaker::call_owned) and its
//!   [`classify`](crate::future::CallFuture::classify) adapter. A unary call's result holds its final
//!   code, wherever the server sent it (headers or trailers). The `Error<Status>` converts into a
//!   `Status` with `?` or [`into_status`], a rejection becoming [`status_for`]'s `UNAVAILABLE`.
//! - **On the `Channel`** (a tower [`BreakerLayer`](crate::service::BreakerLayer) under the
//!   generated client, so every method of every client on that channel shares the breaker):
//!   `GrpcClassifier` classifies the `http::Response` by its `grpc-status` *header*, and
//!   [`StatusFallback`] answers a rejection with a trailers-only `UNAVAILABLE` response, which
//!   the client turns into the `Status` of [`status_for`].
//!
//! ```
//! use std::sync::Arc;
//! use hotbreaker::{Breaker, grpc::{GrpcClassifier, StatusFallback}, service::BreakerLayer};
//! use tower::ServiceBuilder;
//!
//! let breaker = Arc::new(Breaker::builder().consecutive_failures(5).build().unwrap());
//! let layer = BreakerLayer::new(breaker)
//!     .classify(GrpcClassifier::new())
//!     .fallback(StatusFallback);
//! // let channel = ServiceBuilder::new().layer(layer).service(channel);
//! // let mut client = HealthClient::new(channel);
//! # let _ = ServiceBuilder::new().layer(layer);
//! ```
//!
//! # Limits of the `Channel` level
//! A `Channel`'s response future completes when the response *headers* arrive. A server that
//! fails a call before sending a message answers "trailers-only", with `grpc-status` in those
//! headers (tonic servers do so for every unary error and for a streaming call that fails at
//! once): these are classified by their code. A call that succeeds, or a stream that fails after
//! its first message, carries its code in the trailers, after the body, which the layer does not
//! wait for: such a call counts as a Success. A response with an HTTP status other than 200 (a
//! proxy's 503, say) is classified by the code gRPC maps it to (429, 502, 503 and 504 are
//! `UNAVAILABLE`; 400 `INTERNAL`; 401 `UNAUTHENTICATED`; 403 `PERMISSION_DENIED`; 404
//! `UNIMPLEMENTED`; any other `UNKNOWN`). A transport error is a Failure. Classify unary calls'
//! typed results to see every code.
//!
//! At either level a streaming call is recorded when the stream opens: an error in the middle of
//! the stream arrives later, in the `Streaming` the caller reads. To count those, hold an
//! [`OwnedPermit`](crate::OwnedPermit) while reading the stream and record its end yourself.

use std::future::{Ready, ready};
use std::time::Duration;

use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

use crate::classify::Classify;
use crate::error::{Error, Rejected};
use crate::outcome::Outcome;
use crate::service::Fallback;

/// The codes [`GrpcClassifier::new`] counts as Failures.
fn default_failing(code: Code) -> bool {
    matches!(
        code,
        Code::Unavailable
            | Code::DeadlineExceeded
            | Code::ResourceExhausted
            | Code::Internal
            | Code::Unknown
    )
}

/// Classifies gRPC calls by status code: a typed client's `Result<tonic::Response<T>, Status>`,
/// or a `Channel`'s `http::Response` by its `grpc-status` header (see the
/// [module documentation](self) for what each level sees).
///
/// `UNAVAILABLE`, `DEADLINE_EXCEEDED`, `RESOURCE_EXHAUSTED`, `INTERNAL` and `UNKNOWN` are
/// Failures by default, every other code (`OK` included) a Success; a transport error, and a
/// call that runs past a deadline given to the breaker, are Failures.
///
/// # Examples
/// ```
/// use hotbreaker::{Outcome, classify::Classify, grpc::GrpcClassifier};
/// use tonic::{Code, Status};
///
/// let default = GrpcClassifier::new();
/// let unavailable: Result<tonic::Response<()>, Status> = Err(Status::unavailable("down"));
/// assert_eq!(default.classify(&unavailable), Outcome::Failure);
/// assert_eq!(default.code(Code::NotFound), Outcome::Success);
///
/// // Also count ABORTED; RESOURCE_EXHAUSTED is a quota of the caller's own, not an outage.
/// let custom = GrpcClassifier::failing_when(|code| {
///     matches!(code, Code::Unavailable | Code::DeadlineExceeded | Code::Internal | Code::Aborted)
/// });
/// assert_eq!(custom.code(Code::Aborted), Outcome::Failure);
/// assert_eq!(custom.code(Code::ResourceExhausted), Outcome::Success);
/// ```
#[derive(Clone, Copy, Debug)]
pub struct GrpcClassifier {
    failing: fn(Code) -> bool,
}

impl Default for GrpcClassifier {
    fn default() -> Self {
        GrpcClassifier::new()
    }
}

impl GrpcClassifier {
    /// `UNAVAILABLE`, `DEADLINE_EXCEEDED`, `RESOURCE_EXHAUSTED`, `INTERNAL` and `UNKNOWN` are
    /// Failures.
    pub fn new() -> Self {
        GrpcClassifier {
            failing: default_failing,
        }
    }

    /// Codes for which `failing` holds are Failures. A plain `fn`, so the classifier's type
    /// stays the same and nameable.
    pub fn failing_when(failing: fn(Code) -> bool) -> Self {
        GrpcClassifier { failing }
    }

    /// The outcome of a call that ended with `code`.
    #[inline]
    pub fn code(&self, code: Code) -> Outcome {
        if (self.failing)(code) {
            Outcome::Failure
        } else {
            Outcome::Success
        }
    }
}

impl<T> Classify<tonic::Response<T>, Status> for GrpcClassifier {
    #[inline]
    fn classify(&self, result: &Result<tonic::Response<T>, Status>) -> Outcome {
        match result {
            Ok(_) => self.code(Code::Ok),
            Err(status) => self.code(status.code()),
        }
    }
}

impl<B, E> Classify<http::Response<B>, E> for GrpcClassifier {
    #[inline]
    fn classify(&self, result: &Result<http::Response<B>, E>) -> Outcome {
        match result {
            Ok(response) => self.code(response_code(response.status(), response.headers())),
            Err(_) => Outcome::Failure,
        }
    }
}

/// The code a response's headers tell: their `grpc-status` if present (a trailers-only
/// response), else the code gRPC maps the HTTP status to (`OK` for a 200, whose code is still to
/// come in the trailers). An unreadable `grpc-status` is `UNKNOWN`.
fn response_code(status: http::StatusCode, headers: &http::HeaderMap) -> Code {
    if let Some(code) = headers.get("grpc-status") {
        return Code::from_bytes(code.as_bytes());
    }
    match status.as_u16() {
        200 => Code::Ok,
        400 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502 | 503 | 504 => Code::Unavailable,
        _ => Code::Unknown,
    }
}

/// The `Status` for a call the breaker rejected: `UNAVAILABLE`, with the rejection as its message
/// ("circuit breaker is open; retry after 29.5s") and, while Open, the time until a probe is let
/// through in its metadata, as `retry-after` (whole seconds, rounded up, at least 1, as HTTP's
/// header) and `grpc-retry-pushback-ms` (milliseconds, rounded up).
///
/// # Examples
/// ```
/// use std::time::Duration;
/// use hotbreaker::{Breaker, grpc::status_for};
///
/// let breaker = Breaker::builder()
///     .consecutive_failures(1)
///     .open_timeout(Duration::from_millis(2_500))
///     .build()
///     .unwrap();
/// breaker.try_acquire().unwrap().failure();
/// let status = status_for(&breaker.try_acquire().unwrap_err());
/// assert_eq!(status.code(), tonic::Code::Unavailable);
/// assert!(status.message().starts_with("circuit breaker is open"));
/// assert_eq!(status.metadata().get("retry-after").unwrap(), "3");
/// ```
pub fn status_for(rejected: &Rejected) -> Status {
    let mut status = Status::unavailable(rejected.to_string());
    if let Some(after) = rejected.retry_after() {
        let metadata = status.metadata_mut();
        metadata.insert("retry-after", MetadataValue::from(whole_seconds(after)));
        metadata.insert(
            "grpc-retry-pushback-ms",
            MetadataValue::from(whole_millis(after)),
        );
    }
    status
}

fn whole_seconds(d: Duration) -> u64 {
    let seconds = d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0));
    seconds.max(1)
}

fn whole_millis(d: Duration) -> u64 {
    u64::try_from(d.as_nanos().div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

/// The `Status` a caller gets for a typed call made through the breaker: the server's own
/// status, [`status_for`] a rejection, `DEADLINE_EXCEEDED` for a deadline given to the breaker.
/// Also available as `Status::from(error)`, so `?` converts in a function returning `Status`.
///
/// # Examples
/// ```
/// use hotbreaker::{Breaker, Error, grpc::{GrpcClassifier, into_status}};
/// use tonic::{Code, Status};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let breaker = Breaker::builder().build().unwrap();
/// breaker.isolate();
/// let call = async { Ok::<_, Status>(tonic::Response::new(())) };
/// let error = breaker.call_future(call).classify(GrpcClassifier::new()).await.unwrap_err();
/// assert_eq!(into_status(error).code(), Code::Unavailable);
/// # }
/// ```
pub fn into_status(error: Error<Status>) -> Status {
    match error {
        Error::Inner(status) => status,
        Error::Rejected(rejected) => status_for(&rejected),
        Error::Timeout(after) => Status::deadline_exceeded(format!(
            "call timed out after {after:?} (deadline set by the circuit breaker)"
        )),
    }
}

impl From<Error<Status>> for Status {
    fn from(error: Error<Status>) -> Self {
        into_status(error)
    }
}

/// A [`BreakerLayer`](crate::service::BreakerLayer) fallback for a tonic `Channel` (any service
/// answering `http::Response<B>` with `B: Default`): a rejected request is answered at once with
/// a trailers-only gRPC response carrying [`status_for`]'s `UNAVAILABLE`, so the generated
/// client returns that `Status` (its metadata included) instead of an `UNKNOWN` wrapping the
/// breaker's error.
///
/// # Examples
/// ```
/// use hotbreaker::{Breaker, grpc::StatusFallback, service::Fallback};
///
/// let breaker = Breaker::builder().build().unwrap();
/// breaker.isolate();
/// let rejected = breaker.try_acquire().unwrap_err();
/// let answer = Fallback::<(), http::Response<String>, ()>::answer(&StatusFallback, rejected, ());
/// # let answer = std::pin::pin!(answer);
/// # let std::task::Poll::Ready(Ok(response)) = std::future::Future::poll(
/// #     answer, &mut std::task::Context::from_waker(std::task::Waker::noop())) else { panic!() };
/// assert_eq!(response.headers()["grpc-status"], "14"); // UNAVAILABLE
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct StatusFallback;

impl<Req, B, E> Fallback<Req, http::Response<B>, E> for StatusFallback
where
    B: Default,
{
    type Future = Ready<Result<http::Response<B>, Error<E>>>;

    #[inline]
    fn answer(&self, rejected: Rejected, _request: Req) -> Self::Future {
        ready(Ok(status_for(&rejected).into_http()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, grpc_status: Option<&'static str>) -> http::Response<()> {
        let mut response = http::Response::new(());
        *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
        if let Some(code) = grpc_status {
            response
                .headers_mut()
                .insert("grpc-status", http::HeaderValue::from_static(code));
        }
        response
    }

    fn classify(response: http::Response<()>) -> Outcome {
        GrpcClassifier::new().classify(&Ok::<_, ()>(response))
    }

    #[test]
    fn default_codes() {
        let failing = [
            Code::Unavailable,
            Code::DeadlineExceeded,
            Code::ResourceExhausted,
            Code::Internal,
            Code::Unknown,
        ];
        for n in 0..=16 {
            let code = Code::from_i32(n);
            let want = if failing.contains(&code) {
                Outcome::Failure
            } else {
                Outcome::Success
            };
            assert_eq!(GrpcClassifier::new().code(code), want, "{code:?}");
        }
    }

    #[test]
    fn channel_responses() {
        assert_eq!(classify(response(200, None)), Outcome::Success);
        assert_eq!(classify(response(200, Some("0"))), Outcome::Success);
        assert_eq!(classify(response(200, Some("14"))), Outcome::Failure);
        assert_eq!(classify(response(200, Some("5"))), Outcome::Success);
        assert_eq!(classify(response(200, Some("4"))), Outcome::Failure);
        // Unreadable codes are UNKNOWN.
        assert_eq!(classify(response(200, Some("99"))), Outcome::Failure);
        assert_eq!(classify(response(200, Some(""))), Outcome::Failure);
        // No grpc-status: the HTTP status, mapped.
        assert_eq!(classify(response(503, None)), Outcome::Failure);
        assert_eq!(classify(response(429, None)), Outcome::Failure);
        assert_eq!(classify(response(404, None)), Outcome::Success);
        assert_eq!(classify(response(401, None)), Outcome::Success);
        assert_eq!(classify(response(400, None)), Outcome::Failure);
        assert_eq!(classify(response(302, None)), Outcome::Failure);
        // A transport error.
        assert_eq!(
            GrpcClassifier::new().classify(&Err::<http::Response<()>, _>(())),
            Outcome::Failure
        );
        assert_eq!(
            <GrpcClassifier as Classify<http::Response<()>, ()>>::timed_out(&GrpcClassifier::new()),
            Outcome::Failure
        );
    }

    #[test]
    fn rounding() {
        assert_eq!(whole_seconds(Duration::from_nanos(1)), 1);
        assert_eq!(whole_seconds(Duration::ZERO), 1);
        assert_eq!(whole_seconds(Duration::from_millis(2_001)), 3);
        assert_eq!(whole_millis(Duration::from_nanos(1)), 1);
        assert_eq!(whole_millis(Duration::from_micros(2_500)), 3);
        assert_eq!(whole_millis(Duration::MAX), u64::MAX);
    }
}
