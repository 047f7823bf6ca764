//! A service in one place: a registry from a file, a named breaker's layer with its fallback and
//! per-call telemetry, metrics, and the health, readiness and events endpoints (features `http`,
//! `serde`, `tokio`, `metrics`, `tracing`).
//!
//! The upstream here is a `tower::service_fn`; in a service it is your HTTP client (a
//! `reqwest::Client` with [`ReqwestClassifier`](crate::reqwest::ReqwestClassifier), a tonic
//! `Channel` with [`GrpcClassifier`](crate::grpc::GrpcClassifier)), and each endpoint is a route
//! of your framework: every handler returns an `http::Response<String>`, which axum answers as
//! it is.
//!
//! ```
//! # #[cfg(all(feature = "http", feature = "serde", feature = "tokio", feature = "metrics", feature = "tracing"))]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::{sync::Arc, time::Duration};
//! use hotbreaker::{Registry, endpoints, http::Unavailable, telemetry::CallTelemetry};
//! use tower::{Layer, Service, ServiceExt, service_fn};
//!
//! const BREAKERS: &str = r#"
//! strict = true                     # a name not below is an error, not a default breaker
//! [breakers.inventory]
//! critical = true                   # /ready answers 503 while it is down
//! consecutive_failures = 3
//! open_timeout = "10s"
//! call_timeout = "500ms"            # each call's deadline in the layer
//! failure_statuses = ["5xx", 429]   # which answers count against the dependency
//! "#;
//!
//! let _upkeep = hotbreaker::start_upkeep(Duration::from_millis(1))?;
//! // Install your metrics recorder first (metrics-exporter-prometheus, say), then:
//! let registry = Arc::new(Registry::from_toml(BREAKERS)?);
//! let _publisher = registry.publish_metrics_every(Duration::from_secs(5))?;
//!
//! // The upstream, answering 503 here: the dependency is down.
//! let upstream = service_fn(|_request: http::Request<String>| async {
//!     let mut response = http::Response::new(String::from("down"));
//!     *response.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
//!     Ok::<_, std::io::Error>(response)
//! });
//! let mut inventory = registry
//!     .layer("inventory")?                           // classifier and deadline from the file
//!     .fallback(Unavailable::new())                  // rejected: 503 with Retry-After
//!     .telemetry(CallTelemetry::new("inventory"))    // a span and a duration sample per call
//!     .layer(upstream);
//!
//! for _ in 0..4 {
//!     let response = inventory.ready().await?.call(http::Request::default()).await?;
//!     assert_eq!(response.status(), http::StatusCode::SERVICE_UNAVAILABLE);
//! }
//! // Three 503s opened the breaker; the fourth call was answered by the fallback.
//! assert!(registry.events().iter().any(|e| e.name.as_ref() == "inventory"));
//!
//! // The routes of your framework:
//! assert_eq!(endpoints::ready(&registry).status(), 503);     // GET /ready
//! assert_eq!(endpoints::health(&registry).status(), 200);    // GET /health
//! assert_eq!(endpoints::breakers(&registry).status(), 200);  // GET /breakers
//! assert_eq!(endpoints::events(&registry).status(), 200);    // GET /breakers/events
//! # Ok(())
//! # }
//! # #[cfg(not(all(feature = "http", feature = "serde", feature = "tokio", feature = "metrics", feature = "tracing")))]
//! # fn main() {}
//! ```
//!
//! The complete axum service, with reqwest and Prometheus's `/metrics`, is in the README; the
//! alert rules and the Grafana dashboard for these series are in the repository's `deploy/`.
