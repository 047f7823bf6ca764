//! Operating many breakers: a registry loaded from TOML, its metrics served to Prometheus
//! (through the `metrics` facade and `metrics-exporter-prometheus`), and `/health` and `/ready`
//! endpoints, on a loopback port. Metrics are published on each scrape: nothing is added to the
//! calls' path.
//!
//! The example drives a few breakers (one dependency fails and opens), scrapes itself over HTTP,
//! prints what it got and exits.
//!
//! ```text
//! cargo run --release --example prometheus --features metrics,serde
//! ```

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State as AxumState;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use hotbreaker::{Health, Registry};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

/// The dependencies the service cannot work without are marked `critical`: `/ready` fails
/// while one is open. `strict`: a name looked up with `Registry::breaker` must be here.
pub(crate) const BREAKERS: &str = r#"
strict = true

[default]
consecutive_failures = 5
open_timeout = "30s"

[breakers.payments]
critical = true
consecutive_failures = 3
backoff = { base = "5s", max = "1m" }

[breakers.inventory]
critical = true

[breakers.search]
"#;

#[derive(Clone)]
pub(crate) struct Ops {
    pub registry: Arc<Registry>,
    pub prometheus: PrometheusHandle,
}

async fn metrics(AxumState(ops): AxumState<Ops>) -> String {
    ops.registry.publish_metrics(); // collect on scrape
    ops.prometheus.render()
}

async fn health(AxumState(ops): AxumState<Ops>) -> Json<Health> {
    Json(ops.registry.health())
}

async fn ready(AxumState(ops): AxumState<Ops>) -> (StatusCode, &'static str) {
    if ops.registry.ready() {
        (StatusCode::OK, "ready")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "a critical dependency's breaker is open",
        )
    }
}

/// Serves `/metrics`, `/health` and `/ready` on a loopback port; returns its address.
pub(crate) async fn serve(ops: Ops) -> SocketAddr {
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .with_state(ops);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Some traffic: inventory and search are healthy, payments fails and opens.
pub(crate) fn traffic(registry: &Registry) {
    let breaker = |name| registry.breaker(name).expect("in the file");
    let (payments, inventory, search) =
        (breaker("payments"), breaker("inventory"), breaker("search"));
    for i in 0..100 {
        inventory.try_acquire().unwrap().success();
        if let Ok(p) = search.try_acquire() {
            if i % 10 == 0 {
                p.failure()
            } else {
                p.success()
            }
        }
        if let Ok(p) = payments.try_acquire() {
            p.failure();
        }
    }
}

#[tokio::main]
async fn main() {
    let prometheus = PrometheusBuilder::new()
        .install_recorder()
        .expect("no other metrics recorder installed");
    let registry = Arc::new(Registry::from_toml(BREAKERS).expect("valid breakers.toml"));
    traffic(&registry);
    let addr = serve(Ops {
        registry: registry.clone(),
        prometheus,
    })
    .await;
    println!("serving http://{addr}/metrics, /health and /ready\n");
    let client = reqwest::Client::new();
    for path in ["metrics", "health", "ready"] {
        let response = client
            .get(format!("http://{addr}/{path}"))
            .send()
            .await
            .unwrap();
        println!("GET /{path} -> {}", response.status());
        let body = response.text().await.unwrap();
        for line in body
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            println!("  {line}");
        }
        println!();
    }
}
