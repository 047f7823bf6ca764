//! A resilient HTTP client: reqwest behind hotbreaker's tower layer, with a per-call deadline and
//! a stale-cache fallback (moka), against a real axum server on a loopback port whose health
//! cycles healthy → failing (503) → slow (hangs past the client's deadline) → healthy.
//!
//! Prints, per second: requests sent, hits the server saw, rejections, fallbacks served,
//! timeouts, 5xx, and the breaker's state. Runs about 14 s.
//!
//! ```text
//! cargo run --release --example http_client --features tower,http,tokio
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use axum::extract::{Path, State as AxumState};
use axum::http::StatusCode;
use axum::routing::get;
use hotbreaker::http::HttpClassifier;
use hotbreaker::service::BreakerLayer;
use hotbreaker::{Backoff, Breaker, Error, Outcome, Rejected};
use moka::future::Cache;
use tower::{Service, ServiceBuilder, ServiceExt};

const DEADLINE: Duration = Duration::from_millis(300);
/// (phase, from second, to second)
const PHASES: [(&str, u64, u64); 4] = [
    ("healthy", 0, 3),
    ("failing", 3, 6),
    ("slow", 6, 10),
    ("healthy", 10, 14),
];

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    hits: AtomicU64,
    ok: AtomicU64,
    server_errors: AtomicU64,
    timeouts: AtomicU64,
    rejected: AtomicU64,
    fallbacks: AtomicU64,
}

struct Server {
    started: Instant,
    counters: Arc<Counters>,
}

fn phase(started: Instant) -> &'static str {
    let s = started.elapsed().as_secs();
    PHASES
        .iter()
        .find(|(_, from, to)| (*from..*to).contains(&s))
        .map_or("done", |p| p.0)
}

async fn item(
    AxumState(server): AxumState<Arc<Server>>,
    Path(id): Path<u32>,
) -> (StatusCode, String) {
    server.counters.hits.fetch_add(1, Relaxed);
    match phase(server.started) {
        "failing" => (StatusCode::SERVICE_UNAVAILABLE, "overloaded".into()),
        "slow" => {
            tokio::time::sleep(Duration::from_secs(2)).await; // far past the client's deadline
            (StatusCode::OK, format!("item {id} (late)"))
        }
        _ => (StatusCode::OK, format!("item {id}")),
    }
}

#[tokio::main]
async fn main() {
    let counters = Arc::new(Counters::default());
    let started = Instant::now();

    // The server.
    let app = axum::Router::new()
        .route("/item/{id}", get(item))
        .with_state(Arc::new(Server {
            started,
            counters: counters.clone(),
        }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    // The breaker: trips on 5 failures in a row or half the calls of the last 5 s failing.
    let _upkeep = hotbreaker::start_upkeep(Duration::from_millis(1));
    let breaker = Arc::new(
        Breaker::builder()
            .consecutive_failures(5)
            .failure_rate(0.5)
            .minimum_calls(20)
            .time_window(Duration::from_secs(5), 5)
            .backoff(Backoff::exponential(
                Duration::from_millis(500),
                2.0,
                Duration::from_secs(2),
            ))
            .half_open_permits(2)
            .build()
            .expect("valid configuration"),
    );

    // The client stack: the breaker layer (deadline, classifier, stale-cache fallback) around
    // reqwest. The inner service returns (status, body) so the body read is inside the deadline.
    let cache: Cache<u32, String> = Cache::builder()
        .max_capacity(1_000)
        .time_to_live(Duration::from_secs(60))
        .build();
    let http = reqwest::Client::new();
    let fallback = {
        let (cache, counters) = (cache.clone(), counters.clone());
        move |rejected: Rejected, id: u32| {
            let (cache, counters) = (cache.clone(), counters.clone());
            async move {
                match cache.get(&id).await {
                    Some(body) => {
                        counters.fallbacks.fetch_add(1, Relaxed);
                        Ok((StatusCode::OK, format!("{body} (stale)")))
                    }
                    None => Err(Error::Rejected(rejected)),
                }
            }
        }
    };
    let client = ServiceBuilder::new()
        .layer(
            BreakerLayer::new(breaker.clone())
                .timeout(DEADLINE)
                .classify(|r: &Result<(StatusCode, String), reqwest::Error>| match r {
                    Ok((status, _)) => HttpClassifier::new().status(*status),
                    Err(_) => Outcome::Failure,
                })
                .fallback(fallback),
        )
        .service(tower::service_fn(move |id: u32| {
            let request = http.get(format!("{base}/item/{id}"));
            async move {
                let response = request.send().await?;
                let status = response.status();
                Ok::<_, reqwest::Error>((status, response.text().await?))
            }
        }));

    // Eight callers, each asking for items 0..20 in turn with 20 ms between calls.
    let end = Duration::from_secs(PHASES[PHASES.len() - 1].2);
    for worker in 0..8u32 {
        let (mut client, cache, counters) = (client.clone(), cache.clone(), counters.clone());
        tokio::spawn(async move {
            let mut id = worker;
            while started.elapsed() < end {
                id = (id + 1) % 20;
                counters.sent.fetch_add(1, Relaxed);
                let answer = client.ready().await.unwrap().call(id).await;
                match answer {
                    Ok((StatusCode::OK, body)) if !body.ends_with("(stale)") => {
                        counters.ok.fetch_add(1, Relaxed);
                        cache.insert(id, body).await;
                    }
                    Ok((StatusCode::OK, _)) => {} // a fallback, counted by the fallback
                    Ok(_) => {
                        counters.server_errors.fetch_add(1, Relaxed);
                    }
                    Err(Error::Rejected(_)) => {
                        counters.rejected.fetch_add(1, Relaxed);
                    }
                    Err(Error::Timeout(_)) => {
                        counters.timeouts.fetch_add(1, Relaxed);
                    }
                    Err(Error::Inner(e)) => eprintln!("transport error: {e}"),
                    Err(e) => eprintln!("{e}"),
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
    }

    println!(
        "deadline {DEADLINE:?}; server: healthy 0-3 s, 503 3-6 s, hangs 2 s 6-10 s, healthy 10-14 s"
    );
    println!(
        "{:>4} {:>8} {:>6} {:>5} {:>5} {:>8} {:>8} {:>9}  state",
        "sec", "phase", "sent", "hits", "5xx", "timeouts", "rejected", "fallbacks"
    );
    let take = |c: &AtomicU64| c.swap(0, Relaxed);
    let mut ticker = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    let mut totals = [0u64; 6];
    for second in 1..=end.as_secs() {
        ticker.tick().await;
        let row = [
            take(&counters.sent),
            take(&counters.hits),
            take(&counters.server_errors),
            take(&counters.timeouts),
            take(&counters.rejected),
            take(&counters.fallbacks),
        ];
        for (t, r) in totals.iter_mut().zip(row) {
            *t += r;
        }
        let phase = PHASES
            .iter()
            .find(|(_, from, to)| (*from..*to).contains(&(second - 1)))
            .map_or("done", |p| p.0);
        println!(
            "{second:>4} {phase:>8} {:>6} {:>5} {:>5} {:>8} {:>8} {:>9}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            row[5],
            breaker.state()
        );
    }
    let m = breaker.metrics();
    println!(
        "\ntotal: {} sent, {} reached the server, {} rejected at once ({} answered from the stale cache), \
         {} timeouts, {} 5xx; the breaker opened {} times and is {}",
        totals[0],
        totals[1],
        totals[4] + totals[5],
        totals[5],
        totals[3],
        totals[2],
        m.times_opened,
        breaker.state()
    );
}
