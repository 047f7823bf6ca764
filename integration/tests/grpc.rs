//! tonic's health service on a loopback port, called through the breaker at both levels: around
//! each typed call (`call_future(..).classify(GrpcClassifier::new())`) and as a `BreakerLayer` on the
//! `Channel` (with `StatusFallback`). The server answers `UNAVAILABLE` while its failure switch is
//! on (an interceptor, as a load shedder would) and counts the calls it sees. The breaker's time
//! is a quanta mock clock, moved by hand; only the network is real.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use hotbreaker::clock::{Clock, Mock};
use hotbreaker::grpc::{GrpcClassifier, StatusFallback};
use hotbreaker::service::{BreakerLayer, BreakerService};
use hotbreaker::{Breaker, Error, State};
use tonic::service::InterceptorLayer;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Server};
use tonic::{Code, Status};
use tonic_health::ServingStatus;
use tonic_health::pb::health_check_response::ServingStatus as Wire;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use tonic_health::server::HealthReporter;
use tower::ServiceBuilder;

/// The channel behind the breaker, written out: no `Box`.
type GuardedChannel = BreakerService<Channel, Arc<Breaker>, GrpcClassifier, StatusFallback>;

const SERVICE: &str = "demo.Items";

struct Backend {
    failing: AtomicBool,
    hits: AtomicU64,
    reporter: HealthReporter,
}

impl Backend {
    fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }

    /// Fails every call with UNAVAILABLE (and reports NOT_SERVING), or serves again.
    async fn fail(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
        let status = if failing {
            ServingStatus::NotServing
        } else {
            ServingStatus::Serving
        };
        self.reporter.set_service_status(SERVICE, status).await;
    }
}

/// Starts the server; returns its state and a channel to it.
async fn serve() -> (Arc<Backend>, Channel) {
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status(SERVICE, ServingStatus::Serving)
        .await;
    let backend = Arc::new(Backend {
        failing: AtomicBool::new(false),
        hits: AtomicU64::new(0),
        reporter,
    });
    let gate = {
        let backend = backend.clone();
        move |request: tonic::Request<()>| {
            backend.hits.fetch_add(1, Ordering::SeqCst);
            if backend.failing.load(Ordering::SeqCst) {
                Err(Status::unavailable("overloaded"))
            } else {
                Ok(request)
            }
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        Server::builder()
            .layer(InterceptorLayer::new(gate))
            .add_service(health)
            .serve_with_incoming(TcpIncoming::from(listener)),
    );
    let channel = Channel::from_shared(url).unwrap().connect().await.unwrap();
    (backend, channel)
}

fn breaker() -> (Arc<Breaker>, Arc<Mock>) {
    let (clock, mock) = Clock::mock();
    let b = Breaker::builder()
        .consecutive_failures(5)
        .open_timeout(Duration::from_secs(30))
        .half_open_permits(3)
        .half_open_successes(3)
        .clock(clock)
        .build()
        .unwrap();
    (Arc::new(b), mock)
}

fn check(service: &str) -> HealthCheckRequest {
    HealthCheckRequest {
        service: service.into(),
    }
}

fn serving(response: tonic::Response<HealthCheckResponse>) -> bool {
    response.into_inner().status() == Wire::Serving
}

/// A typed call through the breaker; the error converted to the `Status` a caller returns.
async fn typed(
    b: &Breaker,
    client: &mut HealthClient<Channel>,
    service: &str,
) -> Result<tonic::Response<HealthCheckResponse>, Status> {
    let call = client.check(check(service));
    Ok(b.call_future(call).classify(GrpcClassifier::new()).await?)
}

fn assert_rejection(status: &Status) {
    assert_eq!(status.code(), Code::Unavailable);
    assert!(
        status.message().starts_with("circuit breaker is open"),
        "{status:?}"
    );
    let after: u64 = status
        .metadata()
        .get("retry-after")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=30).contains(&after), "{after}");
    assert!(status.metadata().get("grpc-retry-pushback-ms").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_calls_trip_on_unavailable_reject_without_reaching_the_server_and_recover() {
    let (backend, channel) = serve().await;
    let (b, mock) = breaker();
    let mut client = HealthClient::new(channel);
    for _ in 0..10 {
        assert!(serving(typed(&b, &mut client, SERVICE).await.unwrap()));
    }

    backend.fail(true).await;
    let before = backend.hits();
    let mut rejected = 0;
    for _ in 0..50 {
        let status = typed(&b, &mut client, SERVICE).await.unwrap_err();
        if status.message() == "overloaded" {
            assert_eq!(status.code(), Code::Unavailable);
        } else {
            assert_rejection(&status);
            rejected += 1;
        }
    }
    assert_eq!(b.state(), State::Open);
    // Calls one at a time, on whichever of the 2 runtime workers polls them, each counting on
    // a stripe of its own, on a mock clock that does not move: the consecutive rule opens
    // between the threshold and `3 N + k` Failures (docs/internals.md, "How late a real outage
    // opens"), then nothing reaches the server.
    let reached = backend.hits() - before;
    assert!(
        (5..=5 + 3 * 2).contains(&reached),
        "the trip threshold, at most 3 per worker later, then nothing: {reached}"
    );
    assert_eq!(rejected, 50 - reached);

    // Still failing at the deadline: the probe fails and reopens (the backoff doubles to 60 s).
    mock.increment(Duration::from_secs(30));
    let status = typed(&b, &mut client, SERVICE).await.unwrap_err();
    assert_eq!(status.message(), "overloaded");
    assert_eq!(b.state(), State::Open);
    assert_eq!(backend.hits() - before, reached + 1, "and one probe");

    backend.fail(false).await;
    mock.increment(Duration::from_secs(60));
    for _ in 0..3 {
        assert!(serving(typed(&b, &mut client, SERVICE).await.unwrap()));
    }
    assert_eq!(b.state(), State::Closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_channel_trailers_only_errors_trip_and_rejections_arrive_as_unavailable() {
    let (backend, channel) = serve().await;
    let (b, mock) = breaker();
    let guarded: GuardedChannel = ServiceBuilder::new()
        .layer(
            BreakerLayer::new(b.clone())
                .classify(GrpcClassifier::new())
                .fallback(StatusFallback),
        )
        .service(channel);
    let mut client = HealthClient::new(guarded);
    for _ in 0..10 {
        assert!(serving(client.check(check(SERVICE)).await.unwrap()));
    }
    assert_eq!(b.metrics().successes, 10);

    backend.fail(true).await;
    let before = backend.hits();
    let mut rejected = 0;
    for _ in 0..50 {
        let status = client.check(check(SERVICE)).await.unwrap_err();
        if status.message() == "overloaded" {
            assert_eq!(status.code(), Code::Unavailable);
        } else {
            assert_rejection(&status);
            rejected += 1;
        }
    }
    assert_eq!(b.state(), State::Open);
    // Calls one at a time, on whichever of the 2 runtime workers polls them, each counting on
    // a stripe of its own, on a mock clock that does not move: the consecutive rule opens
    // between the threshold and `3 N + k` Failures (docs/internals.md, "How late a real outage
    // opens"), then nothing reaches the server.
    let reached = backend.hits() - before;
    assert!(
        (5..=5 + 3 * 2).contains(&reached),
        "the trip threshold, at most 3 per worker later, then nothing: {reached}"
    );
    assert_eq!(rejected, 50 - reached);

    backend.fail(false).await;
    mock.increment(Duration::from_secs(30));
    for _ in 0..3 {
        assert!(serving(client.check(check(SERVICE)).await.unwrap()));
    }
    assert_eq!(b.state(), State::Closed);
    assert_eq!(backend.hits() - before, reached + 3, "and three probes");
}

/// NOT_FOUND (a health check for a service the server does not know) is an answer: at either
/// level it never trips the breaker.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_that_are_errors_do_not_trip() {
    let (_backend, channel) = serve().await;
    let (b, _mock) = breaker();
    let mut typed_client = HealthClient::new(channel.clone());
    let mut guarded = HealthClient::new(
        ServiceBuilder::new()
            .layer(BreakerLayer::new(b.clone()).classify(GrpcClassifier::new()))
            .service(channel),
    );
    for _ in 0..20 {
        let status = typed(&b, &mut typed_client, "no.such.Service")
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::NotFound);
        let status = guarded.check(check("no.such.Service")).await.unwrap_err();
        assert_eq!(status.code(), Code::NotFound);
    }
    assert_eq!(b.state(), State::Closed);
    let m = b.metrics();
    assert_eq!((m.successes, m.failures), (40, 0));
}

/// Rejections by the breaker on the channel without `StatusFallback` still reach the caller, as
/// an `UNKNOWN` status whose source is the breaker's error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_fallback_a_rejection_is_unknown_with_the_breakers_error_as_source() {
    let (_backend, channel) = serve().await;
    let (b, _mock) = breaker();
    b.isolate();
    let mut client = HealthClient::new(
        ServiceBuilder::new()
            .layer(BreakerLayer::new(b.clone()).classify(GrpcClassifier::new()))
            .service(channel),
    );
    let status = client.check(check(SERVICE)).await.unwrap_err();
    assert_eq!(status.code(), Code::Unknown);
    let source = std::error::Error::source(&status).unwrap();
    let error = source
        .downcast_ref::<Error<tonic::transport::Error>>()
        .unwrap();
    assert!(matches!(error, Error::Rejected(r) if r.state() == State::Isolated));
}
