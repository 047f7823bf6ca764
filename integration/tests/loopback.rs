//! The tower middleware in front of a real HTTP client (reqwest) talking to a real axum server on
//! a loopback port. The server counts the requests it sees. The breaker's time is a quanta mock
//! clock, moved by hand; only the network is real.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State as AxumState;
use axum::http::StatusCode;
use axum::routing::get;
use hotbreaker::http::HttpClassifier;
use hotbreaker::service::{BreakerLayer, BreakerService};
use hotbreaker::{Breaker, Error, Outcome, State};
use tokio::sync::watch;
use tower::{Service, ServiceBuilder, ServiceExt};

const HEALTHY: u8 = 0;
const FAILING: u8 = 1;
const NOT_FOUND: u8 = 2;
const HANGING: u8 = 3;

struct Backend {
    mode: AtomicU8,
    hits: watch::Sender<u64>,
}

async fn handler(AxumState(backend): AxumState<Arc<Backend>>) -> (StatusCode, &'static str) {
    backend.hits.send_modify(|h| *h += 1);
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
        hits: watch::channel(0).0,
    });
    let app = Router::new()
        .route("/", get(handler))
        .with_state(backend.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (backend, url)
}

type Client = BreakerService<
    reqwest::Client,
    Arc<Breaker>,
    fn(&Result<reqwest::Response, reqwest::Error>) -> Outcome,
>;

fn classify(result: &Result<reqwest::Response, reqwest::Error>) -> Outcome {
    match result {
        Ok(response) => HttpClassifier::new().status(response.status()),
        Err(_) => Outcome::Failure,
    }
}

fn client(breaker: &Arc<Breaker>) -> Client {
    ServiceBuilder::new()
        .layer(BreakerLayer::new(breaker.clone()).classify(classify as fn(&_) -> _))
        .service(reqwest::Client::new())
}

async fn get_once(client: &mut Client, url: &str) -> Result<StatusCode, Error<reqwest::Error>> {
    let request = reqwest::Request::new(reqwest::Method::GET, url.parse().unwrap());
    let response = client.ready().await?.call(request).await?;
    Ok(response.status())
}

fn breaker(permits: u32) -> (Arc<Breaker>, Arc<quanta::Mock>) {
    let (clock, mock) = quanta::Clock::mock();
    let b = Breaker::builder()
        .consecutive_failures(5)
        .open_timeout(Duration::from_secs(30))
        .half_open_permits(permits)
        .half_open_successes(permits)
        .clock(clock)
        .build()
        .unwrap();
    (Arc::new(b), mock)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_reaches_the_server_only_up_to_the_threshold_and_recovery_closes() {
    let (backend, url) = serve().await;
    let (b, mock) = breaker(3);
    let mut client = client(&b);
    for _ in 0..20 {
        assert_eq!(get_once(&mut client, &url).await.unwrap(), StatusCode::OK);
    }
    backend.mode.store(FAILING, Ordering::SeqCst);
    let before = *backend.hits.borrow();
    let mut rejected = 0;
    for _ in 0..200 {
        match get_once(&mut client, &url).await {
            Ok(status) => assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE),
            Err(Error::Rejected(r)) => {
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
    let reached = *backend.hits.borrow() - before;
    assert!(
        (5..=5 + 3 * 2).contains(&reached),
        "the trip threshold, at most 3 per worker later, then nothing: {reached}"
    );
    assert_eq!(rejected, 200 - reached);

    // Still down when the deadline passes: the first probe fails and reopens.
    mock.increment(Duration::from_secs(30));
    assert_eq!(
        get_once(&mut client, &url).await.unwrap(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(b.state(), State::Open);
    assert_eq!(
        *backend.hits.borrow() - before,
        reached + 1,
        "and one probe"
    );

    // Recovered: probes pass and close the breaker (the backoff doubled to 60 s).
    backend.mode.store(HEALTHY, Ordering::SeqCst);
    mock.increment(Duration::from_secs(60));
    for _ in 0..3 {
        assert_eq!(get_once(&mut client, &url).await.unwrap(), StatusCode::OK);
    }
    assert_eq!(b.state(), State::Closed);
    assert_eq!(get_once(&mut client, &url).await.unwrap(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_errors_do_not_trip() {
    let (backend, url) = serve().await;
    let (b, _mock) = breaker(3);
    let mut client = client(&b);
    backend.mode.store(NOT_FOUND, Ordering::SeqCst);
    for _ in 0..50 {
        assert_eq!(
            get_once(&mut client, &url).await.unwrap(),
            StatusCode::NOT_FOUND
        );
    }
    assert_eq!(b.state(), State::Closed);
    assert_eq!(*backend.hits.borrow(), 50);
    assert_eq!(b.metrics().successes, 50);
}

/// 1 000 concurrent requests while half-open against a server that never answers: 3 get
/// through as probes, the rest are rejected at once (or aborted before they run); aborting them
/// all leaks no slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborted_requests_while_half_open_leak_no_probe_slots() {
    let (backend, url) = serve().await;
    let (b, mock) = breaker(3);
    let client = client(&b);
    for _ in 0..5 {
        b.try_acquire().unwrap().failure();
    }
    assert_eq!(b.state(), State::Open);
    mock.increment(Duration::from_secs(30));
    backend.mode.store(HANGING, Ordering::SeqCst);

    let mut tasks = Vec::new();
    for _ in 0..1_000 {
        let mut client = client.clone();
        let url = url.clone();
        tasks.push(tokio::spawn(
            async move { get_once(&mut client, &url).await },
        ));
    }
    // Wait (on the server's own count, no timer) until the three probes have arrived.
    let mut hits = backend.hits.subscribe();
    hits.wait_for(|&h| h >= 3).await.unwrap();
    assert_eq!(b.state(), State::HalfOpen);
    for task in &tasks {
        task.abort();
    }
    let (mut rejected, mut cancelled) = (0, 0);
    for task in tasks {
        match task.await {
            Ok(Err(Error::Rejected(r))) => {
                assert_eq!(r.state(), State::HalfOpen);
                rejected += 1;
            }
            Err(e) if e.is_cancelled() => cancelled += 1,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(
        *backend.hits.borrow(),
        3,
        "only the probes reached the server"
    );
    assert_eq!(rejected + cancelled, 1_000);
    // The three probes were cancelled; the rest were rejected, or aborted before they ran.
    assert!(cancelled >= 3);
    let m = b.metrics();
    assert_eq!(
        (m.successes, m.failures),
        (0, 5),
        "cancelled probes record nothing"
    );

    // No slot leaked: three new probes go through and close the breaker.
    backend.mode.store(HEALTHY, Ordering::SeqCst);
    let mut client = client.clone();
    for _ in 0..3 {
        assert_eq!(get_once(&mut client, &url).await.unwrap(), StatusCode::OK);
    }
    assert_eq!(b.state(), State::Closed);
}
