//! The fleet link under faults, against a real redis-server: Redis down at start, killed mid-run
//! and restarted (its counts wiped), slow (DEBUG SLEEP), or a server answering garbage. In each,
//! every breaker keeps working on its local rules, no call waits on Redis, the pending deltas
//! stay bounded and are counted when dropped, and the link resumes when Redis answers again.
//! Skipped (loudly) without redis-server, unless `HOTBREAKER_REQUIRE_REDIS=1`.

#[path = "support/fleet.rs"]
mod fleet;
#[path = "support/proxy.rs"]
mod proxy;
#[path = "support/redis_server.rs"]
mod redis_server;

use std::time::{Duration, Instant};

use hotbreaker::fleet::{Fleet, FleetOptions, FleetRule};
use hotbreaker::{Registry, State};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use fleet::{Instance, local_trip, quiet_config};
use proxy::Proxy;
use redis_server::{RedisServer, eventually};

/// 100 000 calls on `name`: they never touch Redis, so even on a loaded 2-core machine they
/// take a small fraction of the generous bound (the real cost is in the bench).
fn calls_do_not_wait(i: &Instance, name: &str) {
    let b = i.registry.get_or_create(name);
    let start = Instant::now();
    for _ in 0..100_000 {
        if let Ok(p) = b.try_acquire() {
            p.success();
        }
    }
    let took = start.elapsed();
    assert!(took < Duration::from_secs(3), "100 000 calls took {took:?}");
}

/// Local rules alone: three failures open the breaker, with no help from Redis.
fn local_rules_work(i: &Instance, name: &str) {
    i.calls(name, 3, true);
    assert_eq!(i.state(name), Some(State::Open));
    i.registry.get(name).unwrap().reset();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_at_start_then_up() {
    let Some(mut redis) = RedisServer::later("redis_down_at_start_then_up") else {
        return;
    };
    let rule = FleetRule::failure_rate(0.5);
    let a = Instance::new(&redis.url(), local_trip(), |o| {
        o.default_rule(rule).queue_capacity(8)
    });
    let b = Instance::new(&redis.url(), local_trip(), |o| o);
    for i in 0..20 {
        a.registry.get_or_create(&format!("n{i}"));
    }
    b.registry.get_or_create("db");
    a.registry.get_or_create("db");
    assert!(eventually(10, || a.link.status().flush_errors >= 2).await);
    assert!(!a.link.status().up());
    let health = a.registry.health();
    assert_eq!(health.fleet_link_up, Some(false));
    assert!(
        health.ready,
        "a link that is down does not make the instance unready"
    );
    calls_do_not_wait(&a, "db");
    local_rules_work(&a, "db");
    // Deltas for 20 breakers, 8 slots: bounded, the rest counted as dropped.
    for round in 0..3 {
        for i in 0..20 {
            a.calls(&format!("n{i}"), 1, round % 2 == 0);
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert!(eventually(10, || a.link.status().deltas_dropped > 0).await);
    assert!(a.link.status().deltas_pending <= 8, "{:?}", a.link.status());

    redis.restart();
    assert!(
        eventually(15, || a.link.status().up() && b.link.status().up()).await,
        "resumed: {:?}",
        a.link.status()
    );
    assert!(a.link.status().flushes > 0);
    assert!(eventually(5, || a.registry.health().fleet_link_up == Some(true)).await);
    // Propagation works once Redis is up.
    a.calls("db", 3, true);
    assert!(eventually(10, || b.state("db") == Some(State::Open)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_mid_run_then_restarted_empty() {
    let Some(mut redis) = RedisServer::start("redis_killed_mid_run_then_restarted_empty") else {
        return;
    };
    let rule = FleetRule::failure_rate(0.5)
        .minimum_calls(50)
        .window(Duration::from_secs(2), 20);
    let a = Instance::new(&redis.url(), quiet_config(), |o| o.rule("db", rule));
    let b = Instance::new(&redis.url(), local_trip(), |o| o);
    a.registry.get_or_create("db");
    b.registry.get_or_create("db");
    assert!(eventually(15, || a.link.status().up() && b.link.status().up()).await);
    // Some successes reach the fleet's buckets.
    a.calls("db", 40, false);
    let flushes = a.link.status().flushes;
    assert!(eventually(5, || a.link.status().flushes > flushes + 2).await);

    redis.kill();
    assert!(
        eventually(10, || !a.link.status().connected
            && !a.link.status().subscribed)
        .await,
        "{:?}",
        a.link.status()
    );
    calls_do_not_wait(&b, "other");
    local_rules_work(&b, "other");
    assert_eq!(a.state("db"), Some(State::Closed));

    // Restarted empty (no persistence): the counts are gone, the link resumes, and the fleet
    // window fills again from new deltas only.
    redis.restart();
    assert!(
        eventually(15, || a.link.status().up() && b.link.status().up()).await,
        "{:?} {:?}",
        a.link.status(),
        b.link.status()
    );
    // 60 failures after the restart (the 40 earlier successes are gone with the old server,
    // so the rate is 100 %, not 60 %: either trips at 50 %).
    a.calls("db", 60, true);
    assert!(eventually(10, || a.state("db") == Some(State::Open)).await);
    // ... and the trip reaches b over the new subscription.
    assert!(eventually(10, || b.state("db") == Some(State::Open)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_redis_never_slows_a_call() {
    let Some(redis) = RedisServer::start("slow_redis_never_slows_a_call") else {
        return;
    };
    let rule = FleetRule::failure_rate(0.5);
    let a = Instance::new(&redis.url(), local_trip(), |o| o.rule("db", rule));
    a.registry.get_or_create("db");
    assert!(eventually(15, || a.link.status().up()).await);
    let errors = a.link.status().flush_errors;
    let port = redis.port;
    // Redis stops answering anyone for 2 s.
    let sleeper = tokio::task::spawn_blocking(move || {
        let r = RedisServer::command_on(port, &["DEBUG", "SLEEP", "2"]);
        assert!(r.starts_with("+OK"), "{r}");
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    calls_do_not_wait(&a, "db");
    local_rules_work(&a, "db");
    assert!(
        eventually(10, || a.link.status().flush_errors > errors).await,
        "flushes time out (300 ms): {:?}",
        a.link.status()
    );
    sleeper.await.unwrap();
    let flushes = a.link.status().flushes;
    assert!(
        eventually(15, || a.link.status().flushes > flushes
            && a.link.status().connected)
        .await,
        "resumed after the sleep: {:?}",
        a.link.status()
    );
}

/// A hung Redis (or a partition): connections stay open and nothing comes back. The flusher's
/// pipelines time out; the subscriber's keepalive ping notices the dead subscription; both
/// resume, on new connections, when bytes flow again. Quiet but healthy periods longer than
/// the keepalive do not make the subscriber reconnect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_redis_is_noticed_and_left_behind() {
    let Some(redis) = RedisServer::start("a_hung_redis_is_noticed_and_left_behind") else {
        return;
    };
    let proxy = Proxy::start(redis.port).await;
    let a = Instance::new(&proxy.url(), local_trip(), |o| {
        o.default_rule(FleetRule::failure_rate(0.5))
    });
    a.registry.get_or_create("db");
    assert!(eventually(15, || a.link.status().up()).await);
    // 2.5 s with nothing on the channel: the keepalive pings succeed, no new connection.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(
        proxy.accepted(),
        2,
        "one command connection, one subscription"
    );
    assert!(a.link.status().up());

    proxy.freeze(true);
    assert!(
        eventually(10, || {
            let s = a.link.status();
            !s.connected && !s.subscribed
        })
        .await,
        "{:?}",
        a.link.status()
    );
    calls_do_not_wait(&a, "db");
    local_rules_work(&a, "db");
    proxy.freeze(false);
    assert!(
        eventually(15, || a.link.status().up()).await,
        "{:?}",
        a.link.status()
    );
}

/// Every byte 150 ms late each way: flushes still succeed (under a 2 s command timeout), and
/// their round trip shows the latency; calls are unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_network_shows_in_flush_latency_only() {
    let Some(redis) = RedisServer::start("a_slow_network_shows_in_flush_latency_only") else {
        return;
    };
    let proxy = Proxy::start(redis.port).await;
    let a = Instance::new(&proxy.url(), local_trip(), |o| {
        o.default_rule(FleetRule::failure_rate(0.5))
            .command_timeout(Duration::from_secs(2))
    });
    a.registry.get_or_create("db");
    assert!(eventually(15, || a.link.status().up()).await);
    proxy.delay(Duration::from_millis(150));
    let flushes = a.link.status().flushes;
    assert!(
        eventually(10, || a.link.status().flushes > flushes + 2).await,
        "{:?}",
        a.link.status()
    );
    calls_do_not_wait(&a, "db");
    local_rules_work(&a, "db");
    let s = a.link.status();
    assert!(s.last_flush_latency >= Duration::from_millis(150), "{s:?}");
}

/// A "Redis" that answers every request with bytes that are not RESP.
async fn garbage_server() -> (u16, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = vec![0; 4096];
                let mut round = 0u8;
                while let Ok(n) = socket.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                    round = round.wrapping_add(1);
                    let reply: &[u8] = match round % 4 {
                        0 => b"%%%not resp at all\r\n",
                        1 => b"*3\r\n$-7\r\n:abc\r\n\r\n",
                        2 => b"$99999999999999999999\r\n",
                        _ => b"\x00\xff\xfe garbage\r\n",
                    };
                    if socket.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (port, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_answering_garbage_is_survived() {
    // No redis-server needed: the server is ours.
    let (port, server) = garbage_server().await;
    let url = format!("redis://127.0.0.1:{port}");
    let rule = FleetRule::failure_rate(0.5);
    let a = Instance::new(&url, local_trip(), |o| o.default_rule(rule));
    a.registry.get_or_create("db");
    a.calls("db", 10, false);
    assert!(
        eventually(10, || a.link.status().flush_errors >= 3).await,
        "{:?}",
        a.link.status()
    );
    calls_do_not_wait(&a, "db");
    local_rules_work(&a, "db");
    let s = a.link.status();
    assert!(!s.up() && s.flushes == 0, "{s:?}");
    assert!(s.garbage_replies > 0, "garbage is counted as such: {s:?}");
    server.abort();
}

/// The listener never blocks: with the publisher's queue full (the link not started, so
/// nothing drains it), transitions are dropped and counted, and calls go on.
#[test]
fn a_full_publish_queue_drops_and_counts() {
    let fleet =
        Fleet::new(FleetOptions::new("redis://127.0.0.1:1", "checkout").publish_capacity(2))
            .unwrap();
    let registry = fleet.watch(Registry::new(local_trip()).unwrap());
    for i in 0..10 {
        let b = registry.get_or_create(&format!("b{i}"));
        for _ in 0..3 {
            b.try_acquire().unwrap().failure();
        }
        assert_eq!(b.state(), State::Open);
    }
    // Not started: no status to read from a link; the drops are visible once it starts.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _guard = rt.enter();
    let link = fleet.start(std::sync::Arc::new(registry)).unwrap();
    assert_eq!(link.status().publish_dropped, 8, "{:?}", link.status());
}

/// Redis's time in seconds, from a raw `TIME` reply.
fn redis_seconds(redis: &RedisServer) -> u64 {
    let reply = redis.command(&["TIME"]);
    reply
        .lines()
        .nth(2)
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("a TIME reply: {reply:?}"))
}

/// One bad key must cost only its own breaker. Another breaker's bucket keys hold a string
/// (every `HINCRBY` and `HMGET` on them fails with `WRONGTYPE`), and a third's hold a count
/// past 64 bits (`HINCRBY` fails; `HMGET` returns a number that is not a count). The flushes
/// go on, `db`'s fleet window still trips it, and the bad keys are counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bad_key_costs_only_its_own_breaker() {
    let Some(redis) = RedisServer::start("one_bad_key_costs_only_its_own_breaker") else {
        return;
    };
    let rule = FleetRule::failure_rate(0.5).minimum_calls(20);
    let a = Instance::new(&redis.url(), quiet_config(), |o| o.default_rule(rule));
    for name in ["db", "wrong-type", "huge"] {
        a.registry.get_or_create(name);
    }
    // Every 1 s bucket of the next minute (and the last few), for both bad breakers.
    let now = redis_seconds(&redis);
    for bucket in now - 12..now + 60 {
        let b = bucket.to_string();
        let r = redis.command(&["SET", &format!("t:{{wrong-type}}:1000:{b}"), "garbage"]);
        assert!(r.starts_with("+OK"), "{r}");
        let huge = "99999999999999999999";
        let key = format!("t:{{huge}}:1000:{b}");
        let r = redis.command(&["HSET", &key, "c", huge, "f", huge]);
        assert!(r.starts_with(':'), "{r}");
    }
    assert!(eventually(15, || a.link.status().up()).await);
    let flushes = a.link.status().flushes;
    assert!(eventually(5, || a.link.status().flushes > flushes + 1).await);
    let errors = a.link.status().flush_errors;

    for name in ["wrong-type", "huge"] {
        a.calls(name, 30, true);
    }
    a.calls("db", 30, true);
    assert!(
        eventually(10, || a.state("db") == Some(State::Open)).await,
        "db's fleet window: {:?}",
        a.link.status()
    );
    assert_eq!(
        a.causes("db", State::Open),
        [hotbreaker::Cause::FleetWindow]
    );
    // The bad keys are met once their breakers are looked at (idle ones, in their turn).
    assert!(
        eventually(10, || a.link.status().key_errors > 0).await,
        "{:?}",
        a.link.status()
    );
    let status = a.link.status();
    assert_eq!(status.flush_errors, errors, "no flush failed: {status:?}");
    assert!(status.connected);
    for name in ["wrong-type", "huge"] {
        assert_eq!(
            a.state(name),
            Some(State::Closed),
            "{name}: its window unread"
        );
    }
}

/// A trip made while Redis sleeps for 3 s: the publish times out, is retried with backoff
/// until Redis answers, and is sent once more after that, so the peer, whose subscription
/// dropped during the sleep and came back after it, still opens.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trip_published_while_redis_is_slow_still_arrives() {
    let Some(redis) = RedisServer::start("a_trip_published_while_redis_is_slow") else {
        return;
    };
    let a = Instance::new(&redis.url(), local_trip(), |o| o);
    let b = Instance::new(&redis.url(), local_trip(), |o| o);
    for i in [&a, &b] {
        i.registry.get_or_create("db");
    }
    assert!(eventually(15, || a.link.status().up() && b.link.status().up()).await);
    let port = redis.port;
    let sleeper = tokio::task::spawn_blocking(move || {
        let r = RedisServer::command_on(port, &["DEBUG", "SLEEP", "3"]);
        assert!(r.starts_with("+OK"), "{r}");
    });
    tokio::time::sleep(Duration::from_millis(100)).await; // the sleep has begun
    a.calls("db", 3, true);
    assert_eq!(a.state("db"), Some(State::Open));
    sleeper.await.unwrap();
    assert!(
        eventually(15, || b.state("db") == Some(State::Open)).await,
        "a {:?}, b {:?}",
        a.link.status(),
        b.link.status()
    );
    let status = a.link.status();
    assert!(status.publish_retries > 0, "{status:?}");
    assert_eq!(status.publish_dropped, 0, "{status:?}");
}
