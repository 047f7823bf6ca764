//! Server-side use: an axum route whose downstream call is guarded by a breaker. While the
//! breaker is open the route answers 503 at once with a `Retry-After` header computed from the
//! rejection's `retry_after`, instead of queueing callers behind a sick dependency.
//!
//! The example starts the server on a loopback port, drives it with a client through a healthy
//! downstream, an outage and the recovery, and prints what the client saw. Runs about 2 s.
//!
//! ```text
//! cargo run --release --example axum_guard --features http,tokio
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::extract::State as AxumState;
use axum::http::{HeaderMap, StatusCode, header::RETRY_AFTER};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hotbreaker::{Breaker, Error, State, http::retry_after};

struct App {
    breaker: Breaker,
    /// The downstream dependency's health, flipped by the demo.
    downstream_up: AtomicBool,
}

/// The downstream call: a price service that may be down.
async fn fetch_price(app: &App) -> Result<u32, &'static str> {
    tokio::time::sleep(Duration::from_millis(2)).await;
    if app.downstream_up.load(Ordering::Relaxed) {
        Ok(42)
    } else {
        Err("price service unavailable")
    }
}

async fn quote(AxumState(app): AxumState<Arc<App>>) -> Response {
    // The downstream call is the guarded part: a 200 from it is a Success, an error a Failure,
    // and no answer within 500 ms a Failure too.
    match app
        .breaker
        .call_future(fetch_price(&app))
        .timeout(Duration::from_millis(500))
        .await
    {
        Ok(price) => (StatusCode::OK, format!("price {price}")).into_response(),
        Err(Error::Rejected(rejected)) => {
            let mut headers = HeaderMap::new();
            if let Some(value) = retry_after(&rejected) {
                headers.insert(RETRY_AFTER, value);
            }
            (
                StatusCode::SERVICE_UNAVAILABLE,
                headers,
                rejected.to_string(),
            )
                .into_response()
        }
        Err(Error::Inner(e)) => (StatusCode::BAD_GATEWAY, e).into_response(),
        Err(Error::Timeout(_)) => StatusCode::GATEWAY_TIMEOUT.into_response(),
        Err(_) => StatusCode::BAD_GATEWAY.into_response(),
    }
}

#[tokio::main]
async fn main() {
    let app = Arc::new(App {
        breaker: Breaker::builder()
            .consecutive_failures(3)
            .open_timeout(Duration::from_millis(1_500))
            .half_open_permits(1)
            .build()
            .expect("valid configuration"),
        downstream_up: AtomicBool::new(true),
    });
    let router = axum::Router::new()
        .route("/quote", get(quote))
        .with_state(app.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/quote", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    println!("serving {url}");

    let client = reqwest::Client::new();
    let ask = |label: &'static str| {
        let (client, url) = (client.clone(), url.clone());
        async move {
            let response = client.get(&url).send().await.unwrap();
            let status = response.status();
            let retry = response
                .headers()
                .get(RETRY_AFTER)
                .map(|v| format!(" Retry-After: {}", v.to_str().unwrap()))
                .unwrap_or_default();
            println!(
                "{label:<10} {status}{retry}  {}",
                response.text().await.unwrap()
            );
            status
        }
    };
    for _ in 0..2 {
        assert_eq!(ask("healthy").await, StatusCode::OK);
    }
    app.downstream_up.store(false, Ordering::Relaxed);
    // Three Failures in a row open it. The handlers run on the runtime's worker threads, and
    // the breaker orders one thread's Failures against another's earlier Successes from its
    // next check on: it may take a few Failures more, at most three per worker thread
    // (docs/internals.md, "Many cores").
    let workers = tokio::runtime::Handle::current().metrics().num_workers();
    let mut failures = 0;
    while app.breaker.state() == State::Closed {
        assert_eq!(ask("outage").await, StatusCode::BAD_GATEWAY);
        failures += 1;
        assert!(
            failures <= 3 * workers + 3,
            "still Closed after {failures} Failures ({workers} workers)"
        );
    }
    println!("opened after {failures} Failures in a row ({workers} worker threads)");
    assert!(failures >= 3);
    for _ in 0..3 {
        assert_eq!(ask("open").await, StatusCode::SERVICE_UNAVAILABLE);
    }
    app.downstream_up.store(true, Ordering::Relaxed);
    // A well-behaved client waits as told; the breaker half-opens and the probe succeeds.
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    assert_eq!(ask("recovered").await, StatusCode::OK);
    println!("breaker: {}", app.breaker.state());
}
