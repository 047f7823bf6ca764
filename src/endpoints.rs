//! A registry's operations endpoints as framework-neutral handlers (features `http` and
//! `serde`): each returns an `http::Response<String>`, which axum answers as it is and any other
//! framework takes with `response.map(Into::into)`. Mount them on the routes you choose, or
//! (feature `axum`) take them all as one [`router()`];
//! metrics go through your `metrics` exporter (`Registry::publish_metrics`, feature `metrics`).
//!
//! ```
//! use hotbreaker::{Registry, endpoints};
//!
//! let registry = Registry::from_toml("[breakers.db]\ncritical = true")?;
//! registry.breaker("db")?.isolate();
//! let ready: http::Response<String> = endpoints::ready(&registry);
//! assert_eq!(ready.status(), http::StatusCode::SERVICE_UNAVAILABLE);
//! let health: http::Response<String> = endpoints::health(&registry);
//! assert!(health.body().contains(r#""state":"isolated""#));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#[cfg(feature = "axum")]
mod router;

#[cfg(feature = "axum")]
pub use router::router;

use http::{HeaderValue, StatusCode, header};
use serde::Serialize;

use crate::config::Config;
use crate::registry::Registry;
use crate::state::State;

/// `GET /health`: [`Registry::health`] as JSON, always `200 OK` (a report, not a probe: the
/// `ready` field carries the verdict). Each breaker's state, window failure rate and calls,
/// `retry_after_ms` while Open, times opened, and whether it is critical.
pub fn health(registry: &Registry) -> http::Response<String> {
    json(StatusCode::OK, &registry.health())
}

/// `GET /ready`: `200 OK` while no breaker marked critical is Open or Isolated
/// ([`Registry::ready`]), else `503 Service Unavailable` naming them. Meant for a readiness
/// probe, and only with breakers of dependencies the instance cannot serve anything without:
/// see [`Registry::ready`] for what it is for and what it is not.
pub fn ready(registry: &Registry) -> http::Response<String> {
    #[derive(Serialize)]
    struct Ready<'a> {
        ready: bool,
        down: Vec<&'a str>,
    }
    // One reading: the verdict and the names agree.
    let health = registry.health();
    let down = health
        .breakers
        .iter()
        .filter(|b| b.critical && b.down)
        .map(|b| b.name.as_str())
        .collect();
    let status = if health.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json(
        status,
        &Ready {
            ready: health.ready,
            down,
        },
    )
}

/// `GET /breakers`: every breaker with its state and its effective configuration
/// ([`Breaker::effective_config`](crate::Breaker::effective_config): every default filled in),
/// sorted by name, as JSON.
pub fn breakers(registry: &Registry) -> http::Response<String> {
    #[derive(Serialize)]
    struct Row {
        name: String,
        state: State,
        config: Config,
    }
    let rows: Vec<Row> = registry
        .breakers()
        .into_iter()
        .map(|(name, breaker)| Row {
            name: name.to_string(),
            state: breaker.state(),
            config: breaker.effective_config(),
        })
        .collect();
    json(StatusCode::OK, &rows)
}

/// `GET /breakers/events`: the registry's latest transitions, oldest first
/// ([`Registry::events`]): name, from, to, cause, generation and `unix_ms`, as JSON.
pub fn events(registry: &Registry) -> http::Response<String> {
    json(StatusCode::OK, &registry.events())
}

fn json(status: StatusCode, value: &impl Serialize) -> http::Response<String> {
    // Plain data of our own types: serializing it cannot fail.
    let text = serde_json::to_string(value)
        .unwrap_or_else(|e| format!("{{\"error\":{:?}}}", e.to_string()));
    let mut response = http::Response::new(text);
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(r: &http::Response<String>) -> serde_json::Value {
        serde_json::from_str(r.body()).unwrap()
    }

    #[test]
    fn ready_names_the_critical_breakers_that_are_down() {
        let registry = Registry::from_toml(
            "[breakers.db]\ncritical = true\n[breakers.cache]\n[breakers.queue]\ncritical = true",
        )
        .unwrap();
        registry.get_or_create("cache").isolate();
        let r: http::Response<String> = ready(&registry);
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(body(&r)["ready"], true);
        registry.get_or_create("db").isolate();
        registry.get_or_create("queue");
        let r: http::Response<String> = ready(&registry);
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body(&r)["down"], serde_json::json!(["db"]));
        assert_eq!(r.headers()["content-type"], "application/json");
    }

    #[test]
    fn breakers_shows_effective_configurations() {
        let registry = Registry::from_toml("[breakers.db]\nfailure_rate = 0.3").unwrap();
        registry.get_or_create("db");
        registry.get_or_create("cache");
        let r: http::Response<String> = breakers(&registry);
        let rows = body(&r);
        assert_eq!(rows[0]["name"], "cache");
        assert_eq!(
            rows[0]["config"]["consecutive_failures"], 5,
            "the default, shown"
        );
        assert_eq!(rows[1]["name"], "db");
        assert_eq!(rows[1]["config"]["failure_rate"], 0.3);
        assert!(
            rows[1]["config"]["consecutive_failures"].is_null(),
            "replaced by its own rule"
        );
        assert_eq!(rows[1]["config"]["minimum_calls"], 20);
        assert_eq!(rows[1]["state"], "closed");
        assert_eq!(rows[1]["config"]["critical"], false);
        registry.get_or_create("db").isolate();
        let e: http::Response<String> = events(&registry);
        let e = body(&e);
        assert_eq!(e[0]["name"], "db");
        assert_eq!(
            (e[0]["from"].as_str(), e[0]["to"].as_str()),
            (Some("closed"), Some("isolated"))
        );
        assert_eq!(e[0]["cause"], "manual");
        assert!(e[0]["unix_ms"].as_u64().unwrap() > 1_600_000_000_000);
        let h: http::Response<String> = health(&registry);
        assert_eq!(h.status(), StatusCode::OK);
        assert_eq!(body(&h)["breakers"][1]["name"], "db");
    }
}
