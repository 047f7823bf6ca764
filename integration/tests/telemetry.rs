//! Per-call telemetry seen from the outside: the spans through `tracing-opentelemetry` into the
//! OpenTelemetry SDK's in-memory exporter, carrying the breaker's attributes, the rejections and
//! the transition events; the duration histogram and the timeouts counter through a Prometheus
//! recorder.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use hotbreaker::service::BreakerLayer;
use hotbreaker::telemetry::CallTelemetry;
use hotbreaker::{Error, Registry, State};
use opentelemetry::Value;
use opentelemetry::trace::{Status, TracerProvider as _};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tower::{Layer, Service, ServiceExt, service_fn};
use tracing_subscriber::layer::SubscriberExt;

const BREAKERS: &str = r#"
[breakers.inventory]
consecutive_failures = 2
open_timeout = "1h"
"#;

/// Spans from this thread, through `tracing-opentelemetry`, into an in-memory exporter (read it
/// after `provider.force_flush()`), for as long as the guard lives.
fn export_spans() -> (
    InMemorySpanExporter,
    SdkTracerProvider,
    tracing::subscriber::DefaultGuard,
) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("test")));
    let guard = tracing::subscriber::set_default(subscriber);
    (exporter, provider, guard)
}

fn attribute(span: &SpanData, key: &str) -> Option<Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.clone())
}

fn string(span: &SpanData, key: &str) -> String {
    match attribute(span, key) {
        Some(v) => v.as_str().into_owned(),
        None => panic!("span {} has no {key}: {:?}", span.name, span.attributes),
    }
}

fn boolean(span: &SpanData, key: &str) -> bool {
    match attribute(span, key) {
        Some(Value::Bool(b)) => b,
        other => panic!("span {} has {key} = {other:?}", span.name),
    }
}

/// Calls through the tower layer with telemetry: the first succeeds, the next two fail (the
/// second trips the breaker), the fourth is rejected; a fifth goes through the future helper
/// and a sixth through the closure helper, both rejected.
#[test]
fn each_call_is_a_span_with_the_breakers_attributes_and_the_trip_is_an_event() {
    let (exporter, provider, _default) = export_spans();

    let registry = Registry::from_toml(BREAKERS).unwrap();
    let breaker = registry.breaker("inventory").unwrap();
    let telemetry = CallTelemetry::new("inventory");
    let failing = Arc::new(AtomicBool::new(false));
    let upstream = {
        let failing = failing.clone();
        service_fn(move |_: ()| {
            let fail = failing.load(Ordering::Relaxed);
            // A span of the upstream's own: it must be a child of the breaker's span.
            let _inner = tracing::info_span!("upstream").entered();
            async move { if fail { Err("boom") } else { Ok(7) } }
        })
    };
    let mut service = BreakerLayer::new(breaker.clone())
        .telemetry(telemetry.clone())
        .layer(upstream);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let mut call = || runtime.block_on(async { service.ready().await.unwrap().call(()).await });

    assert_eq!(call().unwrap(), 7);
    failing.store(true, Ordering::Relaxed);
    assert!(matches!(call(), Err(Error::Inner("boom"))));
    assert!(matches!(call(), Err(Error::Inner("boom"))));
    assert_eq!(breaker.state(), State::Open);
    assert!(matches!(call(), Err(Error::Rejected(_))));
    let future = breaker
        .call_future(async { Ok::<u8, ()>(1) })
        .telemetry(&telemetry);
    assert!(matches!(runtime.block_on(future), Err(Error::Rejected(_))));
    assert!(matches!(
        telemetry.call(&breaker, || Ok::<_, ()>(1)),
        Err(Error::Rejected(_))
    ));
    provider.force_flush().unwrap();

    let spans = exporter.get_finished_spans().unwrap();
    let calls: Vec<&SpanData> = spans
        .iter()
        .filter(|s| s.name == "hotbreaker.call")
        .collect();
    assert_eq!(calls.len(), 6, "one span per call: {spans:#?}");
    // Exported as they end, in call order.
    let outcomes: Vec<String> = calls.iter().map(|s| string(s, "breaker.outcome")).collect();
    assert_eq!(
        outcomes,
        [
            "success", "failure", "failure", "rejected", "rejected", "rejected"
        ]
    );
    for span in &calls {
        assert_eq!(string(span, "breaker.name"), "inventory");
        assert!(!boolean(span, "breaker.throttled"));
    }
    let states: Vec<String> = calls.iter().map(|s| string(s, "breaker.state")).collect();
    assert_eq!(
        states,
        ["closed", "closed", "closed", "open", "open", "open"]
    );
    let rejected: Vec<bool> = calls
        .iter()
        .map(|s| boolean(s, "breaker.rejected"))
        .collect();
    assert_eq!(rejected, [false, false, false, true, true, true]);
    for span in &calls[..3] {
        assert!(!boolean(span, "breaker.slow"));
        assert!(!boolean(span, "breaker.timed_out"));
    }
    assert_eq!(calls[0].status, Status::Unset);
    assert_eq!(calls[1].status, Status::error(""));

    // The upstream's span is the breaker span's child.
    let upstream: Vec<&SpanData> = spans.iter().filter(|s| s.name == "upstream").collect();
    assert_eq!(upstream.len(), 3, "the upstream ran three times");
    for (inner, outer) in upstream.iter().zip(&calls) {
        assert_eq!(inner.parent_span_id, outer.span_context.span_id());
    }

    // The trip happened inside the third call: its span carries the transition event.
    let events = |span: &SpanData| -> Vec<String> {
        span.events.iter().map(|e| e.name.to_string()).collect()
    };
    assert_eq!(events(calls[2]), ["circuit breaker opened"]);
    for span in [calls[0], calls[1], calls[3]] {
        assert!(events(span).is_empty(), "{:?}", events(span));
    }
    let opened = &calls[2].events.iter().next().unwrap().attributes;
    let to = opened.iter().find(|kv| kv.key.as_str() == "to").unwrap();
    assert_eq!(to.value.as_str(), "open");
}

/// The throttle's rejections say so.
#[test]
fn a_throttled_call_is_marked_throttled() {
    let (exporter, provider, _default) = export_spans();

    let clock = quanta::Clock::mock();
    let breaker = hotbreaker::Breaker::builder()
        .clock(clock.0)
        .consecutive_failures(1_000)
        .throttle(hotbreaker::Throttle::sre())
        .build()
        .unwrap();
    let telemetry = CallTelemetry::new("search");
    let mut throttled = 0;
    for _ in 0..200 {
        if let Err(Error::Rejected(r)) = telemetry.call(&breaker, || Err::<(), _>("down")) {
            assert_eq!(r.reason(), hotbreaker::Reason::Throttled);
            throttled += 1;
        }
    }
    assert!(throttled > 0, "the throttle never shed a call");
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let marked = spans
        .iter()
        .filter(|s| boolean(s, "breaker.throttled"))
        .inspect(|s| {
            assert!(boolean(s, "breaker.rejected"));
            assert_eq!(string(s, "breaker.state"), "closed");
        })
        .count();
    assert_eq!(marked, throttled);
}

/// With `metrics`: one histogram sample per completed call, by outcome, on the breaker's clock,
/// and the timeouts counter from 0.
#[tokio::test(start_paused = true)]
async fn durations_and_timeouts_reach_the_recorder() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&[0.1, 1.0, 10.0])
        .unwrap()
        .build_recorder();
    let handle = recorder.handle();
    let telemetry = metrics::with_local_recorder(&recorder, || CallTelemetry::new("payments"));
    let text = handle.render();
    assert!(
        text.contains("hotbreaker_call_timeouts_total{name=\"payments\"} 0"),
        "{text}"
    );

    let (clock, mock) = quanta::Clock::mock();
    let breaker = Arc::new(
        hotbreaker::Breaker::builder()
            .clock(clock)
            .consecutive_failures(10)
            .build()
            .unwrap(),
    );
    // A call that takes 2.5 s on the breaker's clock.
    let slow = {
        let mock = mock.clone();
        service_fn(move |hang: bool| {
            mock.increment(Duration::from_millis(2_500));
            async move {
                if hang {
                    std::future::pending::<()>().await;
                }
                Ok::<_, std::io::Error>(())
            }
        })
    };
    let mut service = BreakerLayer::new(breaker)
        .timeout(Duration::from_secs(5))
        .telemetry(telemetry)
        .layer(slow);
    service.ready().await.unwrap().call(false).await.unwrap();
    let timed_out = service.ready().await.unwrap().call(true).await;
    assert!(matches!(timed_out, Err(Error::Timeout(_))));

    let text = handle.render();
    let has = |line: &str| assert!(text.lines().any(|l| l == line), "no {line} in\n{text}");
    has(r#"hotbreaker_call_duration_seconds_bucket{name="payments",outcome="success",le="1"} 0"#);
    has(r#"hotbreaker_call_duration_seconds_bucket{name="payments",outcome="success",le="10"} 1"#);
    has(r#"hotbreaker_call_duration_seconds_sum{name="payments",outcome="success"} 2.5"#);
    has(r#"hotbreaker_call_duration_seconds_count{name="payments",outcome="failure"} 1"#);
    has(r#"hotbreaker_call_timeouts_total{name="payments"} 1"#);
    assert!(
        text.contains("# HELP hotbreaker_call_duration_seconds"),
        "{text}"
    );
}

/// A `tracing` subscriber that panics when a span is made (`on_new_span`) or when a field is
/// recorded on one (`on_record`): telemetry that fails must not cost the breaker an outcome or
/// a half-open slot.
struct Panicking {
    on_new_span: bool,
    on_record: bool,
}

impl tracing::Subscriber for Panicking {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        assert!(!self.on_new_span, "subscriber panics making a span");
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {
        assert!(!self.on_record, "subscriber panics recording a field");
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// A HalfOpen breaker with one probe slot, on a mock clock.
fn half_open_with_one_slot() -> hotbreaker::Breaker {
    let (clock, mock) = quanta::Clock::mock();
    let breaker = hotbreaker::Breaker::builder()
        .clock(clock)
        .consecutive_failures(1)
        .open_timeout(Duration::from_secs(1))
        .half_open_permits(1)
        .half_open_successes(1)
        .build()
        .unwrap();
    breaker.try_acquire().unwrap().failure();
    mock.increment(Duration::from_secs(2));
    breaker
}

#[test]
fn a_panicking_subscriber_loses_no_probe_slot_and_no_outcome() {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    let telemetry = CallTelemetry::new("fragile");
    for (on_new_span, on_record) in [(true, false), (false, true)] {
        let _default = tracing::subscriber::set_default(Panicking {
            on_new_span,
            on_record,
        });
        // The closure helper.
        let breaker = half_open_with_one_slot();
        let panicked = catch_unwind(AssertUnwindSafe(|| {
            telemetry.call(&breaker, || Ok::<_, ()>(1))
        }));
        assert!(panicked.is_err());
        // Failing to make the span gave the slot back; failing to record after the call came
        // after the breaker had recorded the Success, which closed it.
        let expected = if on_new_span {
            State::HalfOpen
        } else {
            State::Closed
        };
        assert_eq!(breaker.state(), expected, "new_span {on_new_span}");
        assert!(breaker.try_acquire().is_ok(), "the probe slot is free");

        // The tower layer.
        let breaker = Arc::new(half_open_with_one_slot());
        let mut service = BreakerLayer::new(breaker.clone())
            .telemetry(telemetry.clone())
            .layer(service_fn(|_: ()| async { Ok::<_, ()>(1) }));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let panicked = catch_unwind(AssertUnwindSafe(|| {
            runtime.block_on(async { service.ready().await.unwrap().call(()).await })
        }));
        assert!(panicked.is_err());
        assert_eq!(breaker.state(), expected, "new_span {on_new_span}");
        assert!(breaker.try_acquire().is_ok(), "the probe slot is free");
    }
}

#[test]
fn a_panic_in_the_inner_services_call_ends_its_span_as_a_failure() {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    let (exporter, provider, _default) = export_spans();
    let breaker = Arc::new(hotbreaker::Breaker::builder().build().unwrap());
    let mut service = BreakerLayer::new(breaker.clone())
        .telemetry(CallTelemetry::new("inventory"))
        .layer(service_fn(|_: ()| -> std::future::Ready<Result<(), ()>> {
            panic!("the inner service's call panics")
        }));
    let panicked = catch_unwind(AssertUnwindSafe(|| drop(service.call(()))));
    assert!(panicked.is_err());
    assert_eq!(breaker.metrics().failures, 1);
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    assert_eq!(spans.len(), 1);
    assert_eq!(string(&spans[0], "breaker.outcome"), "failure");
    assert_eq!(spans[0].status, Status::error(""));
}

#[test]
fn an_ignored_call_is_never_marked_slow_and_a_panicking_one_is_judged() {
    use std::panic::{AssertUnwindSafe, catch_unwind};
    let (exporter, provider, _default) = export_spans();
    let (clock, mock) = quanta::Clock::mock();
    let breaker = hotbreaker::Breaker::builder()
        .clock(clock)
        .consecutive_failures(100)
        .slow_calls(Duration::from_millis(1), 0.9)
        .build()
        .unwrap();
    let telemetry = CallTelemetry::new("timed");
    let ten_ms = || mock.increment(Duration::from_millis(10));
    let _ = telemetry.call_with(
        &breaker,
        |_| hotbreaker::Outcome::Ignored,
        || {
            ten_ms();
            Ok::<_, ()>(1)
        },
    );
    let _ = catch_unwind(AssertUnwindSafe(|| {
        telemetry.call(&breaker, || -> Result<u8, ()> {
            ten_ms();
            panic!("the call panics")
        })
    }));
    let _ = telemetry.call(&breaker, || {
        ten_ms();
        Ok::<_, ()>(1)
    });
    assert_eq!(
        breaker.metrics().slow,
        2,
        "the panicking call and the last one"
    );
    provider.force_flush().unwrap();
    let spans = exporter.get_finished_spans().unwrap();
    let slow: Vec<bool> = spans.iter().map(|s| boolean(s, "breaker.slow")).collect();
    assert_eq!(slow, [false, true, true]);
}
