//! Fleet behaviour against a real redis-server on a loopback port: trips propagate, recoveries
//! half-open the others early, the fleet-wide window trips a low-traffic instance, and what a
//! stranger publishes is counted and ignored. Skipped (loudly) without redis-server, unless
//! `HOTBREAKER_REQUIRE_REDIS=1`.

#[path = "support/fleet.rs"]
mod fleet;
#[path = "support/redis_server.rs"]
mod redis_server;

use std::time::Duration;

use hotbreaker::fleet::FleetRule;
use hotbreaker::{Cause, Config, State};

use fleet::{Instance, quiet_config};
use redis_server::{RedisServer, eventually};

fn trip_on_first_failure() -> Config {
    Config {
        consecutive_failures: Some(1),
        open_timeout: Some(Duration::from_secs(30)),
        half_open_permits: Some(1),
        half_open_successes: Some(1),
        ..Config::default()
    }
}

async fn all_up(instances: &[&Instance]) {
    let up = eventually(15, || instances.iter().all(|i| i.link.status().up())).await;
    assert!(
        up,
        "links up: {:?}",
        instances
            .iter()
            .map(|i| i.link.status())
            .collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trip_on_one_instance_opens_every_other() {
    let Some(redis) = RedisServer::start("a_trip_on_one_instance_opens_every_other") else {
        return;
    };
    let a = Instance::new(&redis.url(), trip_on_first_failure(), |o| o);
    let b = Instance::new(&redis.url(), trip_on_first_failure(), |o| o);
    let c = Instance::new(&redis.url(), trip_on_first_failure(), |o| o);
    for i in [&a, &b, &c] {
        i.registry.get_or_create("db");
        i.registry.get_or_create("cache");
    }
    all_up(&[&a, &b, &c]).await;

    a.calls("db", 1, true);
    assert_eq!(a.state("db"), Some(State::Open));
    let opened = eventually(10, || {
        b.state("db") == Some(State::Open) && c.state("db") == Some(State::Open)
    })
    .await;
    assert!(opened, "b {:?}, c {:?}", b.link.status(), c.link.status());
    for i in [&b, &c] {
        assert_eq!(i.causes("db", State::Open), [Cause::Fleet]);
        let retry = i.registry.get("db").unwrap().metrics().retry_after.unwrap();
        assert!(
            retry <= Duration::from_secs(30),
            "never past the sender's deadline: {retry:?}"
        );
        assert!(
            retry > Duration::from_secs(20),
            "the sender's remaining time: {retry:?}"
        );
        assert_eq!(
            i.state("cache"),
            Some(State::Closed),
            "only the breaker that tripped"
        );
    }
    // Each instance publishes what it caused, and nothing the fleet caused (no echo).
    assert!(eventually(5, || a.link.status().messages_out == 1).await);
    assert_eq!(b.link.status().messages_out, 0);
    assert_eq!(c.link.status().messages_out, 0);
    // a heard its own message and ignored it.
    assert!(eventually(5, || a.link.status().messages_ignored >= 1).await);
    assert_eq!(a.link.status().messages_applied, 0);
    assert_eq!(a.causes("db", State::Open), [Cause::ConsecutiveFailures]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_success_on_one_instance_half_opens_the_others_early() {
    let Some(redis) = RedisServer::start("a_probe_success_half_opens_the_others_early") else {
        return;
    };
    let a = Instance::new(&redis.url(), trip_on_first_failure(), |o| o);
    let b = Instance::new(&redis.url(), trip_on_first_failure(), |o| o);
    a.registry.get_or_create("db");
    b.registry.get_or_create("db");
    all_up(&[&a, &b]).await;

    a.calls("db", 1, true);
    assert!(eventually(10, || b.state("db") == Some(State::Open)).await);
    // a's open time passes (mock clock); its probe succeeds and it closes.
    a.mock.increment(Duration::from_secs(30));
    a.calls("db", 1, false);
    assert_eq!(a.state("db"), Some(State::Closed));
    // b, with ~30 s still to wait on its own clock, half-opens now and probes on its own.
    assert!(eventually(10, || b.state("db") == Some(State::HalfOpen)).await);
    assert_eq!(b.causes("db", State::HalfOpen), [Cause::Fleet]);
    b.calls("db", 1, false);
    assert_eq!(
        b.state("db"),
        Some(State::Closed),
        "closed by its own probe"
    );
    assert_eq!(b.causes("db", State::Closed), [Cause::HalfOpenSuccesses]);
    // b's close is published too; a, already Closed, ignores it.
    assert!(eventually(5, || b.link.status().messages_out == 1).await);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(a.state("db"), Some(State::Closed));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_window_trips_an_instance_that_saw_almost_nothing() {
    let Some(redis) = RedisServer::start("the_fleet_window_trips_a_low_traffic_instance") else {
        return;
    };
    let rule = FleetRule::failure_rate(0.5).minimum_calls(100);
    let busy = Instance::new(&redis.url(), quiet_config(), |o| o.rule("db", rule));
    let quiet = Instance::new(&redis.url(), quiet_config(), |o| o.rule("db", rule));
    busy.registry.get_or_create("db");
    quiet.registry.get_or_create("db");
    all_up(&[&busy, &quiet]).await;
    // Let both flushers see the breakers once (their baseline) before any call.
    let flushes = busy.link.status().flushes;
    assert!(eventually(5, || busy.link.status().flushes > flushes + 1).await);

    quiet.calls("db", 1, true);
    busy.calls("db", 60, false);
    busy.calls("db", 80, true);
    assert_eq!(
        busy.state("db"),
        Some(State::Closed),
        "local rules alone do not trip"
    );
    let opened = eventually(10, || {
        busy.state("db") == Some(State::Open) && quiet.state("db") == Some(State::Open)
    })
    .await;
    assert!(
        opened,
        "busy {:?}, quiet {:?}",
        busy.link.status(),
        quiet.link.status()
    );
    let quiet_causes = quiet.causes("db", State::Open);
    assert!(
        quiet_causes == [Cause::FleetWindow] || quiet_causes == [Cause::Fleet],
        "{quiet_causes:?}"
    );
    assert_eq!(
        quiet.registry.get("db").unwrap().metrics().failures,
        1,
        "one call of its own"
    );
    let trips = busy.link.status().fleet_window_trips + quiet.link.status().fleet_window_trips;
    assert!(trips >= 1);

    // The keys: one hash per breaker and bucket, hash-tagged by name, expiring.
    let keys = redis.command(&["KEYS", "t:*"]);
    assert!(keys.contains("t:{db}:1000:"), "{keys}");
    let key = keys
        .lines()
        .find(|l| l.starts_with("t:{db}"))
        .expect("a key")
        .to_owned();
    let ttl = redis.command(&["PTTL", &key]);
    let ttl: i64 = ttl
        .trim()
        .trim_start_matches(':')
        .parse()
        .expect("an integer reply");
    assert!(
        ttl > 0 && ttl <= 12_000,
        "window 10 s + one bucket + 1 s margin: {ttl}"
    );
}

/// Trips are not re-read as window failures: once the breaker closes again, the fleet window
/// starts afresh after the bucket of the close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_closed_breaker_does_not_trip_again_on_the_failures_that_opened_it() {
    let Some(redis) = RedisServer::start("a_closed_breaker_does_not_trip_again") else {
        return;
    };
    let rule = FleetRule::failure_rate(0.5)
        .minimum_calls(20)
        .window(Duration::from_secs(2), 20);
    let a = Instance::new(&redis.url(), quiet_config(), |o| o.rule("db", rule));
    a.registry.get_or_create("db");
    all_up(&[&a]).await;
    let flushes = a.link.status().flushes;
    assert!(eventually(5, || a.link.status().flushes > flushes + 1).await);
    a.calls("db", 30, true);
    assert!(eventually(10, || a.state("db") == Some(State::Open)).await);
    a.registry.get("db").unwrap().reset();
    // Several flushes later, with the old failures still in the fleet's buckets: still Closed.
    let flushes = a.link.status().flushes;
    assert!(eventually(5, || a.link.status().flushes > flushes + 5).await);
    assert_eq!(a.state("db"), Some(State::Closed));
    // New failures, after the close, trip it again.
    tokio::time::sleep(Duration::from_millis(150)).await;
    a.calls("db", 30, true);
    assert!(eventually(10, || a.state("db") == Some(State::Open)).await);
}

/// What anyone publishes on the channel: garbage, a name this instance does not have, a
/// duplicate, an older generation, a trip for an Isolated breaker. Counted, ignored, no
/// breaker created, nothing moved that must not move.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strangers_and_stale_messages_are_counted_and_ignored() {
    let Some(redis) = RedisServer::start("strangers_and_stale_messages") else {
        return;
    };
    let a = Instance::new(&redis.url(), quiet_config(), |o| o);
    for name in ["db", "cache", "iso"] {
        a.registry.get_or_create(name);
    }
    a.registry.get("iso").unwrap().isolate();
    all_up(&[&a]).await;
    let publish = |payload: &str| {
        let reply = redis.command(&["PUBLISH", "t:events", payload]);
        assert!(reply.starts_with(":1"), "one subscriber: {reply}");
    };
    let huge = "x".repeat(100_000);
    for garbage in [
        "",
        "hello",
        "hb1|open|p|1|5000000|manual",
        "hb1|open|p|-1|5|manual|db",
        &huge,
    ] {
        publish(garbage);
    }
    publish("hb1|open|p|7|5000000|failure-rate|nobody");
    publish("hb1|open|p|7|5000000|failure-rate|iso");
    publish("hb1|close|p|3|0|half-open-successes|db");
    let status = |want_in| {
        let s = a.link.status();
        s.messages_in >= want_in
    };
    assert!(eventually(10, || status(8)).await, "{:?}", a.link.status());
    let s = a.link.status();
    assert_eq!(s.messages_malformed, 5, "{s:?}");
    assert_eq!(s.messages_applied, 0, "{s:?}");
    assert!(
        a.registry.get("nobody").is_none(),
        "no breaker created from a message"
    );
    assert_eq!(a.state("iso"), Some(State::Isolated));
    assert_eq!(
        a.state("db"),
        Some(State::Closed),
        "a close does not move a Closed breaker"
    );

    // A trip applies once; its duplicate and an older one from the same sender do nothing,
    // even after the breaker closed again.
    publish("hb1|open|p|9|5000000|failure-rate|db");
    assert!(eventually(10, || a.state("db") == Some(State::Open)).await);
    a.registry.get("db").unwrap().reset();
    publish("hb1|open|p|9|5000000|failure-rate|db");
    publish("hb1|open|p|8|5000000|failure-rate|db");
    assert!(eventually(10, || a.link.status().messages_in >= 11).await);
    assert_eq!(a.state("db"), Some(State::Closed));
    assert_eq!(a.link.status().messages_applied, 1);
    // A newer generation from that sender applies.
    publish("hb1|open|p|10|5000000|failure-rate|db");
    assert!(eventually(10, || a.state("db") == Some(State::Open)).await);
}

/// Redis traffic: at most one flush per flush interval (plus one PUBLISH per trip), and per
/// flush only the breakers called from here are read, each for the buckets of its window
/// that are not final yet (two, or three as a bucket becomes final).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_flush_per_interval_reading_only_what_can_change() {
    let Some(redis) = RedisServer::start("one_flush_per_interval_reading_only_what_can_change")
    else {
        return;
    };
    let rule = FleetRule::failure_rate(0.5);
    let a = Instance::new(&redis.url(), quiet_config(), |o| {
        o.default_rule(rule)
            .flush_interval(Duration::from_millis(50))
    });
    for i in 0..20 {
        a.registry.get_or_create(&format!("b{i}"));
    }
    all_up(&[&a]).await;
    // Five of the twenty are called from here; fifteen stay idle.
    let before = a.link.status().flushes;
    assert!(eventually(5, || a.link.status().flushes > before + 1).await);
    for i in 0..5 {
        a.calls(&format!("b{i}"), 1, false);
    }
    let start = std::time::Instant::now();
    let before = a.link.status().flushes;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let flushes = a.link.status().flushes - before;
    let allowed = start.elapsed().as_millis() as u64 / 50 + 2;
    assert!(
        flushes <= allowed,
        "{flushes} flushes in {:?}",
        start.elapsed()
    );
    assert!(flushes >= 2, "the flusher runs: {flushes}");
    // Once the window's older buckets are final (1 s after they end, at this interval).
    let before = a.link.status().flushes;
    assert!(eventually(10, || a.link.status().flushes > before + 30).await);
    let s = a.link.status();
    assert!(
        (5 + 5 * 2..=5 + 5 * 3).contains(&s.last_flush_commands),
        "clock and heartbeat (5), then 2 or 3 HMGET for each of the 5 breakers in use: {s:?}"
    );
    assert_eq!(s.last_flush_pipelines, 1);
    let stats = redis.command(&["INFO", "commandstats"]);
    assert!(stats.contains("cmdstat_hmget"), "{stats}");
}

/// The link's series through the `metrics` facade (Prometheus here): flushes, their latency,
/// drops, messages, and whether the link is up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_link_publishes_its_metrics() {
    let Some(redis) = RedisServer::start("the_link_publishes_its_metrics") else {
        return;
    };
    let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .expect("the only recorder in this test binary");
    let a = Instance::new(&redis.url(), trip_on_first_failure(), |o| {
        o.default_rule(FleetRule::failure_rate(0.5))
    });
    a.registry.get_or_create("db");
    all_up(&[&a]).await;
    a.calls("db", 1, true);
    assert!(eventually(5, || a.link.status().messages_out == 1).await);
    let flushes = a.link.status().flushes;
    assert!(eventually(5, || a.link.status().flushes > flushes + 1).await);
    let status = a.link.status();
    assert!(status.up());
    status.publish_metrics();
    let text = prometheus.render();
    for series in [
        "hotbreaker_fleet_flushes_total{result=\"ok\"}",
        "hotbreaker_fleet_flush_seconds",
        "hotbreaker_fleet_deltas_dropped_total 0",
        "hotbreaker_fleet_messages_total{direction=\"out\",result=\"ok\"} 1",
        "hotbreaker_fleet_connected 1",
        "hotbreaker_fleet_subscribed 1",
    ] {
        assert!(text.contains(series), "{series} missing from:\n{text}");
    }
}

/// An operator's `isolate()` on one instance opens the others (for their own longest opening,
/// as the isolation has no deadline), and `reset()` half-opens them; the isolated instance
/// itself stays Isolated, and an Isolated peer is never moved by the fleet.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn isolate_and_reset_travel_but_never_override_an_operator() {
    let Some(redis) = RedisServer::start("isolate_and_reset_travel") else {
        return;
    };
    let a = Instance::new(&redis.url(), trip_on_first_failure(), |o| o);
    let b = Instance::new(&redis.url(), trip_on_first_failure(), |o| o);
    let c = Instance::new(&redis.url(), trip_on_first_failure(), |o| o);
    for i in [&a, &b, &c] {
        i.registry.get_or_create("db");
    }
    c.registry.get("db").unwrap().disable();
    all_up(&[&a, &b, &c]).await;

    a.registry.get("db").unwrap().isolate();
    assert!(eventually(10, || b.state("db") == Some(State::Open)).await);
    assert_eq!(b.causes("db", State::Open), [Cause::Fleet]);
    let retry = b.registry.get("db").unwrap().metrics().retry_after.unwrap();
    assert_eq!(
        retry,
        Duration::from_secs(30),
        "b's longest opening (fixed 30 s)"
    );
    a.registry.get("db").unwrap().reset();
    assert!(eventually(10, || b.state("db") == Some(State::HalfOpen)).await);
    assert!(eventually(5, || c.link.status().messages_in >= 2).await);
    assert_eq!(
        c.state("db"),
        Some(State::Disabled),
        "the operator's, never the fleet's"
    );
    assert_eq!(a.state("db"), Some(State::Closed));
}

/// Two instances given the same name by mistake hear each other, and an instance restarted
/// with a fixed name (its generations start again at 0) is heard after its restart: each
/// start draws a new suffix, so each is a new sender.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fixed_name_is_heard_across_restarts_and_duplicates() {
    let Some(redis) = RedisServer::start("a_fixed_name_is_heard_across_restarts") else {
        return;
    };
    let named = |o: hotbreaker::fleet::FleetOptions| o.instance_id("web-1");
    let a = Instance::new(&redis.url(), trip_on_first_failure(), named);
    let b = Instance::new(&redis.url(), trip_on_first_failure(), named);
    for i in [&a, &b] {
        i.registry.get_or_create("db");
    }
    all_up(&[&a, &b]).await;
    a.calls("db", 1, true);
    assert!(
        eventually(10, || b.state("db") == Some(State::Open)).await,
        "a namesake's trip: {:?}",
        b.link.status()
    );

    // a stops; a new process with the same name starts, its breaker at generation 0 again.
    drop(a);
    b.registry.get("db").unwrap().reset();
    let again = Instance::new(&redis.url(), trip_on_first_failure(), named);
    again.registry.get_or_create("db");
    all_up(&[&again, &b]).await;
    again.calls("db", 1, true);
    assert_eq!(again.registry.get("db").unwrap().metrics().generation, 1);
    assert!(
        eventually(10, || b.state("db") == Some(State::Open)).await,
        "the restarted instance's first trip: {:?}",
        b.link.status()
    );
}
