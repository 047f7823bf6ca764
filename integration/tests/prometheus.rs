//! The Prometheus example's endpoints scraped over real HTTP: the exposition text carries every
//! counter and gauge with the values the breakers hold; `/ready` and `/health` follow the
//! critical breakers.

#[allow(dead_code)] // the example's main is not used here
#[path = "../examples/prometheus.rs"]
mod example;

use std::sync::Arc;

use hotbreaker::{Registry, State};
use metrics_exporter_prometheus::PrometheusBuilder;

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrape_health_and_readiness() {
    let prometheus = PrometheusBuilder::new().install_recorder().unwrap();
    let registry = Arc::new(Registry::from_toml(example::BREAKERS).unwrap());
    example::traffic(&registry);
    let addr = example::serve(example::Ops {
        registry: registry.clone(),
        prometheus,
    })
    .await;
    let client = reqwest::Client::new();
    let get = |path: &'static str| {
        let client = client.clone();
        async move {
            let r = client
                .get(format!("http://{addr}{path}"))
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };

    let (status, text) = get("/metrics").await;
    assert_eq!(status, 200);
    let expect = [
        (
            r#"hotbreaker_calls_total{name="payments",outcome="failure"}"#,
            3.0,
        ),
        (
            r#"hotbreaker_calls_total{name="payments",outcome="rejected"}"#,
            97.0,
        ),
        (
            r#"hotbreaker_calls_total{name="payments",outcome="success"}"#,
            0.0,
        ),
        (
            r#"hotbreaker_calls_total{name="search",outcome="failure"}"#,
            10.0,
        ),
        (
            r#"hotbreaker_calls_total{name="search",outcome="success"}"#,
            90.0,
        ),
        (
            r#"hotbreaker_calls_total{name="inventory",outcome="success"}"#,
            100.0,
        ),
        (
            r#"hotbreaker_calls_total{name="inventory",outcome="ignored"}"#,
            0.0,
        ),
        (r#"hotbreaker_slow_calls_total{name="search"}"#, 0.0),
        (
            r#"hotbreaker_transitions_total{name="payments",from="closed",to="open"}"#,
            1.0,
        ),
        (r#"hotbreaker_state{name="payments",state="open"}"#, 1.0),
        (r#"hotbreaker_state{name="payments",state="closed"}"#, 0.0),
        (r#"hotbreaker_state{name="search",state="closed"}"#, 1.0),
        (r#"hotbreaker_state{name="search",state="open"}"#, 0.0),
        (
            r#"hotbreaker_transitions_total{name="search",from="closed",to="open"}"#,
            0.0,
        ),
        (r#"hotbreaker_window_failure_rate{name="search"}"#, 0.1),
    ];
    for (series, want) in expect {
        assert_eq!(value(&text, series), Some(want), "{series} in\n{text}");
    }
    assert!(
        text.contains("# TYPE hotbreaker_calls_total counter"),
        "{text}"
    );
    assert!(text.contains("# TYPE hotbreaker_state gauge"), "{text}");
    assert!(text.contains("# HELP hotbreaker_state "), "{text}");

    let (status, body) = get("/ready").await;
    assert_eq!(status, 503, "{body}");
    let (status, body) = get("/health").await;
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(health["ready"], false);
    assert_eq!(health["breakers"][1]["name"], "payments");
    assert_eq!(health["breakers"][1]["state"], "open");

    // Operators reset payments: ready again, and the next scrape shows it.
    let payments = registry.get("payments").unwrap();
    payments.reset();
    assert_eq!(payments.state(), State::Closed);
    assert_eq!(get("/ready").await.0, 200);
    let (_, text) = get("/metrics").await;
    assert_eq!(
        value(&text, r#"hotbreaker_state{name="payments",state="closed"}"#),
        Some(1.0)
    );
    assert_eq!(
        value(
            &text,
            r#"hotbreaker_transitions_total{name="payments",from="open",to="closed"}"#
        ),
        Some(1.0),
        "{text}"
    );
}
