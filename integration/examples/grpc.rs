//! A gRPC client behind the breaker: tonic's health service on a loopback port, called through a
//! `BreakerLayer` on the client's `Channel`. The server goes SERVING (0-2 s) → failing, every call
//! answered `UNAVAILABLE` as an overloaded server's load shedder would (2-4 s) → SERVING (4-7 s).
//!
//! Prints, per half second: calls made, calls the server saw, answers, `UNAVAILABLE`s from the
//! server, rejections by the breaker (`UNAVAILABLE` with `retry-after` metadata, never sent),
//! and the breaker's state; then each transition. Runs about 7 s.
//!
//! ```text
//! cargo run --release --example grpc --features tonic
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use hotbreaker::grpc::{GrpcClassifier, StatusFallback};
use hotbreaker::service::{BreakerLayer, BreakerService};
use hotbreaker::{Breaker, Transition};
use tonic::service::InterceptorLayer;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Server};
use tonic::{Code, Status};
use tonic_health::ServingStatus;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

const SERVICE: &str = "demo.Items";
/// (phase, from, to) in half seconds.
const PHASES: [(&str, u64, u64); 3] = [("serving", 0, 4), ("failing", 4, 8), ("serving", 8, 14)];

/// The client's channel, written out: the breaker adds no `Box`.
type GuardedChannel = BreakerService<Channel, Arc<Breaker>, GrpcClassifier, StatusFallback>;

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    hits: AtomicU64,
    ok: AtomicU64,
    unavailable: AtomicU64,
    rejected: AtomicU64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let _upkeep = hotbreaker::start_upkeep(Duration::from_millis(1))?;
    let counters = Arc::new(Counters::default());

    // The server: tonic's health service, with a failure switch in front of it.
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status(SERVICE, ServingStatus::Serving)
        .await;
    let failing = Arc::new(AtomicBool::new(false));
    let gate = {
        let (failing, counters) = (failing.clone(), counters.clone());
        move |request: tonic::Request<()>| {
            counters.hits.fetch_add(1, Relaxed);
            if failing.load(Relaxed) {
                Err(Status::unavailable("overloaded"))
            } else {
                Ok(request)
            }
        }
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(
        Server::builder()
            .layer(InterceptorLayer::new(gate))
            .add_service(health)
            .serve_with_incoming(TcpIncoming::from(listener)),
    );

    // The breaker, and the client: the generated HealthClient over the guarded channel.
    let started = Instant::now();
    let breaker = Arc::new(
        Breaker::builder()
            .consecutive_failures(5)
            .open_timeout(Duration::from_millis(500))
            .half_open_permits(1)
            .half_open_successes(1)
            .on_transition(move |t: &Transition| {
                println!(
                    "        {:>5.2} s  {} → {} ({:?})",
                    started.elapsed().as_secs_f64(),
                    t.from,
                    t.to,
                    t.cause
                );
            })
            .build()?,
    );
    let channel = Channel::from_shared(url)?.connect().await?;
    let guarded: GuardedChannel = tower::ServiceBuilder::new()
        .layer(
            BreakerLayer::new(breaker.clone())
                .classify(GrpcClassifier::new()) // UNAVAILABLE, DEADLINE_EXCEEDED, ... fail
                .fallback(StatusFallback), // a rejection arrives as Status::unavailable
        )
        .service(channel);
    let client = HealthClient::new(guarded);

    // Four callers, a health check every 20 ms each.
    let end = Duration::from_millis(500 * PHASES[PHASES.len() - 1].2);
    let first_rejection = Arc::new(std::sync::OnceLock::new());
    for _ in 0..4 {
        let (mut client, counters) = (client.clone(), counters.clone());
        let first_rejection = first_rejection.clone();
        tokio::spawn(async move {
            while started.elapsed() < end {
                counters.sent.fetch_add(1, Relaxed);
                let request = HealthCheckRequest {
                    service: SERVICE.into(),
                };
                match client.check(request).await {
                    Ok(_) => counters.ok.fetch_add(1, Relaxed),
                    Err(s) if s.code() == Code::Unavailable && s.message() == "overloaded" => {
                        counters.unavailable.fetch_add(1, Relaxed)
                    }
                    Err(s) if s.code() == Code::Unavailable => {
                        let _ = first_rejection.set(s);
                        counters.rejected.fetch_add(1, Relaxed)
                    }
                    Err(s) => {
                        eprintln!("unexpected: {s}");
                        0
                    }
                };
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        });
    }

    println!("server: SERVING 0-2 s, UNAVAILABLE 2-4 s, SERVING 4-7 s; a breaker on the channel");
    println!(
        "{:>5} {:>8} {:>5} {:>5} {:>5} {:>11} {:>8}  state",
        "sec", "phase", "sent", "hits", "ok", "unavailable", "rejected"
    );
    let take = |c: &AtomicU64| c.swap(0, Relaxed);
    let mut ticker = tokio::time::interval_at(
        tokio::time::Instant::now() + Duration::from_millis(500),
        Duration::from_millis(500),
    );
    let mut totals = [0u64; 5];
    for tick in 1..=PHASES[PHASES.len() - 1].2 {
        // The switch for the next half second.
        let next = PHASES
            .iter()
            .find(|(_, from, to)| (*from..*to).contains(&tick));
        ticker.tick().await;
        let row = [
            take(&counters.sent),
            take(&counters.hits),
            take(&counters.ok),
            take(&counters.unavailable),
            take(&counters.rejected),
        ];
        for (t, r) in totals.iter_mut().zip(row) {
            *t += r;
        }
        let phase = PHASES
            .iter()
            .find(|(_, from, to)| (*from..*to).contains(&(tick - 1)))
            .map_or("done", |p| p.0);
        println!(
            "{:>5.1} {phase:>8} {:>5} {:>5} {:>5} {:>11} {:>8}  {}",
            tick as f64 / 2.0,
            row[0],
            row[1],
            row[2],
            row[3],
            row[4],
            breaker.state()
        );
        if let Some((name, _, _)) = next {
            let fail = *name == "failing";
            if fail != failing.swap(fail, Relaxed) {
                let status = if fail {
                    ServingStatus::NotServing
                } else {
                    ServingStatus::Serving
                };
                reporter.set_service_status(SERVICE, status).await;
            }
        }
    }
    if let Some(status) = first_rejection.get() {
        println!(
            "\na rejection, as the client saw it: {:?} \"{}\", retry-after: {:?}",
            status.code(),
            status.message(),
            status.metadata().get("retry-after")
        );
    }
    let m = breaker.metrics();
    println!(
        "total: {} calls, {} reached the server, {} UNAVAILABLE from the server, {} rejected by \
         the breaker without a request; it opened {} times and is {}",
        totals[0],
        totals[1],
        totals[3],
        totals[4],
        m.times_opened,
        breaker.state()
    );
    Ok(())
}
