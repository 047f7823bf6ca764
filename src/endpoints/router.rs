//! The endpoints as an axum `Router` (feature `axum`).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::routing::get;

use crate::registry::Registry;

/// `GET /health`, `/ready`, `/breakers` and `/breakers/events` over `registry`, answered by
/// [`health`](super::health), [`ready`](super::ready), [`breakers`](super::breakers) and
/// [`events`](super::events). Merge it into your application's router (`app.merge(..)`, or
/// `nest("/ops", ..)` for a prefix); `/metrics` is your exporter's.
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use hotbreaker::{Registry, endpoints};
///
/// let registry = Arc::new(Registry::from_toml("[breakers.db]\ncritical = true")?);
/// let app: axum::Router = axum::Router::new()
///     .route("/", axum::routing::get(|| async { "hello" }))
///     .merge(endpoints::router(registry));
/// # let _ = app;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn router<S>(registry: Arc<Registry>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    Router::new()
        .route(
            "/health",
            get(|State(r): State<Arc<Registry>>| async move { super::health(&r) }),
        )
        .route(
            "/ready",
            get(|State(r): State<Arc<Registry>>| async move { super::ready(&r) }),
        )
        .route(
            "/breakers",
            get(|State(r): State<Arc<Registry>>| async move { super::breakers(&r) }),
        )
        .route(
            "/breakers/events",
            get(|State(r): State<Arc<Registry>>| async move { super::events(&r) }),
        )
        .with_state(registry)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use tower::ServiceExt;

    use crate::registry::Registry;

    async fn get(app: axum::Router, path: &str) -> (u16, String) {
        let request = http::Request::get(path).body(Body::empty()).unwrap();
        let response = app.oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn every_route_answers_as_its_handler_does() {
        let registry = Arc::new(
            Registry::from_toml("[breakers.db]\ncritical = true\n[breakers.cache]").unwrap(),
        );
        registry.breaker("db").unwrap().isolate();
        registry.breaker("cache").unwrap();
        let app = super::router(registry.clone());
        let (status, body) = get(app.clone(), "/ready").await;
        assert_eq!(
            (status, body),
            (503, super::super::ready(&registry).into_body())
        );
        let (status, body) = get(app.clone(), "/health").await;
        assert_eq!(status, 200);
        assert!(body.contains(r#""state":"isolated""#), "{body}");
        let (status, body) = get(app.clone(), "/breakers").await;
        assert_eq!(status, 200);
        assert!(body.contains(r#""cache""#), "{body}");
        let (status, body) = get(app.clone(), "/breakers/events").await;
        assert_eq!(status, 200);
        assert!(body.contains(r#""to":"isolated""#), "{body}");
        assert_eq!(get(app, "/nowhere").await.0, 404);
    }
}
