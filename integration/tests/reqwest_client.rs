//! `reqwest::Client` behind the breaker, both as a tower service (`BreakerLayer` classified by
//! `ReqwestClassifier`) and through `Breaker::call_owned(..).timeout(..)`, against a real axum server on
//! a loopback port that counts the requests it sees. The breaker's time is a quanta mock clock,
//! moved by hand; only the network is real.

use std::future::Ready;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State as AxumState;
use axum::http::StatusCode;
use axum::routing::get;
use hotbreaker::clock::{Clock, Mock};
use hotbreaker::reqwest::ReqwestClassifier;
use hotbreaker::service::{BreakerLayer, BreakerService, ResponseFuture};
use hotbreaker::{Breaker, Error, Outcome, State};
use tower::{Service, ServiceBuilder, ServiceExt};

const HEALTHY: u8 = 0;
const FAILING: u8 = 1;
const NOT_FOUND: u8 = 2;
const HANGING: u8 = 3;

/// The client's whole type, written out: the breaker adds no `Box`.
type Client = BreakerService<reqwest::Client, Arc<Breaker>, ReqwestClassifier>;

/// The future of one call through it: reqwest's own future inside the breaker's, by value.
type CallFuture = ResponseFuture<
    Arc<Breaker>,
    <reqwest::Client as Service<reqwest::Request>>::Future,
    ReqwestClassifier,
    Ready<Result<reqwest::Response, Error<reqwest::Error>>>,
>;

struct Backend {
    mode: AtomicU8,
    hits: AtomicU64,
}

impl Backend {
    fn hits(&self) -> u64 {
        self.hits.load(Ordering::SeqCst)
    }
    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }
}

async fn handler(AxumState(backend): AxumState<Arc<Backend>>) -> (StatusCode, &'static str) {
    backend.hits.fetch_add(1, Ordering::SeqCst);
    match backend.mode.load(Ordering::SeqCst) {
        HEALTHY => (StatusCode::OK, "ok"),
        FAILING => (StatusCode::SERVICE_UNAVAILABLE, "down"),
        NOT_FOUND => (StatusCode::NOT_FOUND, "no such thing"),
        _ => std::future::pending().await,
    }
}

/// Starts the server; returns its state and URL.
async fn serve() -> (Arc<Backend>, String) {
    let backend = Arc::new(Backend {
        mode: AtomicU8::new(HEALTHY),
        hits: AtomicU64::new(0),
    });
    let app = Router::new()
        .route("/", get(handler))
        .with_state(backend.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (backend, url)
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

fn client(breaker: &Arc<Breaker>) -> Client {
    ServiceBuilder::new()
        .layer(BreakerLayer::new(breaker.clone()).classify(ReqwestClassifier::new()))
        .service(reqwest::Client::new())
}

fn call(client: &mut Client, url: &str) -> CallFuture {
    client.call(reqwest::Request::new(
        reqwest::Method::GET,
        url.parse().unwrap(),
    ))
}

async fn get_once(client: &mut Client, url: &str) -> Result<StatusCode, Error<reqwest::Error>> {
    client.ready().await?;
    Ok(call(client, url).await?.status())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_the_layer_503s_trip_then_nothing_reaches_the_server_then_recovery_closes() {
    let (backend, url) = serve().await;
    let (b, mock) = breaker();
    let mut client = client(&b);
    for _ in 0..10 {
        assert_eq!(get_once(&mut client, &url).await.unwrap(), StatusCode::OK);
    }
    backend.set(FAILING);
    let before = backend.hits();
    let mut rejected = 0;
    for _ in 0..100 {
        match get_once(&mut client, &url).await {
            Ok(status) => assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE),
            Err(Error::Rejected(r)) => {
                assert_eq!(r.state(), State::Open);
                assert!(r.retry_after().unwrap() <= Duration::from_secs(30));
                rejected += 1;
            }
            Err(e) => panic!("unexpected {e:?}"),
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
    assert_eq!(rejected, 100 - reached);

    // Still down at the deadline: the probe fails and reopens (the backoff doubles to 60 s).
    mock.increment(Duration::from_secs(30));
    assert_eq!(
        get_once(&mut client, &url).await.unwrap(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(b.state(), State::Open);
    assert_eq!(backend.hits() - before, reached + 1, "and one probe");

    // Recovered: three probes pass and close the breaker.
    backend.set(HEALTHY);
    mock.increment(Duration::from_secs(60));
    for _ in 0..3 {
        assert_eq!(get_once(&mut client, &url).await.unwrap(), StatusCode::OK);
    }
    assert_eq!(b.state(), State::Closed);
    let m = b.metrics();
    assert_eq!((m.failures, m.times_opened), (6, 2));
}

/// The future form: `call_owned(..).classify(..).timeout(..)` gives a `'static` future (spawned here), classified by
/// the same classifier.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owned_futures_with_a_deadline_trip_and_recover() {
    let (backend, url) = serve().await;
    let (b, mock) = breaker();
    let http = reqwest::Client::new();
    let get = |b: &Arc<Breaker>| {
        let call = b
            .call_owned(http.get(&url).send())
            .classify(ReqwestClassifier::new())
            .timeout(Duration::from_secs(30));
        async move {
            tokio::spawn(call)
                .await
                .unwrap()
                .map(|response| response.status())
        }
    };
    assert_eq!(get(&b).await.unwrap(), StatusCode::OK);
    backend.set(FAILING);
    // The spawned calls run on either of the runtime's two worker threads: the
    // consecutive-failure rule orders one thread's Failures against the other's Success from its
    // second check on, so it opens at the 5th Failure or up to three later (docs/internals.md).
    let mut failures = 0;
    while b.state() != State::Open {
        assert_eq!(get(&b).await.unwrap(), StatusCode::SERVICE_UNAVAILABLE);
        failures += 1;
        assert!(
            failures <= 8,
            "still Closed after {failures} Failures in a row"
        );
    }
    assert!(failures >= 5, "opened after {failures} Failures");
    for _ in 0..20 {
        assert!(matches!(get(&b).await, Err(Error::Rejected(_))));
    }
    assert_eq!(
        backend.hits(),
        1 + failures,
        "nothing reached the server while open"
    );

    backend.set(HEALTHY);
    mock.increment(Duration::from_secs(30));
    for _ in 0..3 {
        assert_eq!(get(&b).await.unwrap(), StatusCode::OK);
    }
    assert_eq!(b.state(), State::Closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_errors_succeed_and_transport_errors_fail() {
    let (backend, url) = serve().await;
    let (b, _mock) = breaker();
    let mut client = client(&b);
    backend.set(NOT_FOUND);
    for _ in 0..20 {
        assert_eq!(
            get_once(&mut client, &url).await.unwrap(),
            StatusCode::NOT_FOUND
        );
    }
    assert_eq!(b.state(), State::Closed);
    assert_eq!(b.metrics().successes, 20);

    // Nobody listens on a port just given back: connection refused, a Failure.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/", listener.local_addr().unwrap())
    };
    match get_once(&mut client, &closed).await {
        Err(Error::Inner(e)) => {
            assert!(e.is_connect(), "{e:?}");
            assert_eq!(ReqwestClassifier::new().error(&e), Outcome::Failure);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(b.metrics().failures, 1);

    // A request that cannot be built never leaves: Ignored, whatever the breaker's state.
    let bad = reqwest::Client::new().get("http://[::1").send();
    assert!(matches!(
        b.call_owned(bad).classify(ReqwestClassifier::new()).await,
        Err(Error::Inner(e)) if e.is_builder()
    ));
    let m = b.metrics();
    assert_eq!((m.successes, m.failures), (20, 1));
}

/// A server that never answers: the breaker's deadline drops the call and records a Failure.
/// tokio's clock is paused, so the deadline passes as soon as everything waits.
#[tokio::test(start_paused = true)]
async fn a_hung_server_times_out_as_a_failure() {
    let (backend, url) = serve().await;
    backend.set(HANGING);
    let (b, _mock) = breaker();
    let client = reqwest::Client::new();
    for _ in 0..5 {
        let call = b
            .call_owned(client.get(&url).send())
            .classify(ReqwestClassifier::new())
            .timeout(Duration::from_millis(300));
        assert!(matches!(call.await, Err(Error::Timeout(d)) if d == Duration::from_millis(300)));
    }
    assert_eq!(b.state(), State::Open);
    assert_eq!(b.metrics().failures, 5);
}
