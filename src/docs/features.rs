//! The cargo features, all off by default, and what each adds.
//!
//! | feature | adds |
//! |---|---|
//! | `future` | `Breaker::call_future` / `call_owned` and `future::CallFuture`: cancellation-safe, no `Box` |
//! | `tokio` | per-call deadlines (`CallFuture::timeout`, the layer's `timeout`) |
//! | `tower` | `service::BreakerLayer` / `BreakerService`, with classifiers and fallbacks |
//! | `http` | `http::HttpClassifier`, `http::Unavailable` (503 with `Retry-After`), `http::response_for`; with `serde`, the [`endpoints`](crate::endpoints) handlers |
//! | `axum` | [`endpoints::router`](crate::endpoints::router): the endpoints as an axum `Router` (with `http` and `serde`) |
//! | `reqwest` | `reqwest::ReqwestClassifier` for `reqwest::Client` behind the layer or in a future |
//! | `tonic` | `grpc::GrpcClassifier` by status code, `grpc::status_for`, `grpc::StatusFallback` |
//! | `serde` | [`Config`](crate::Config) (de)serialization with human durations, registry files, `Config::from_env` |
//! | `metrics` | `Registry::publish_metrics` and `publish_metrics_every` through the `metrics` facade (the series are listed on `publish_metrics`); with [`telemetry`](crate::telemetry), a call-duration histogram and a timeouts counter |
//! | `tracing` | a `tracing` event per transition of a [`Registry`](crate::Registry)'s breakers; with [`telemetry`](crate::telemetry), a span per call (OpenTelemetry through `tracing-opentelemetry`) |
//! | `redis` | `fleet`: instances that trip together through Redis, off the call path |
//! | `redis-tls` | `rediss://` for the fleet link (rustls) |
//! | `test-util` | hooks and introspection for tests and benchmarks, outside the semver promise: `Builder::throttle_draws_for_tests`, `Breaker::heap_bytes`, `Breaker::stripes`, `Registry::heap_bytes`, `Recorder::heap_bytes` |
//!
//! Without features: [`Registry`](crate::Registry) (named breakers, lock-free and strict lookups, health and
//! readiness, recent transitions) and [`Breaker::reconfigure`](crate::Breaker::reconfigure).
