//! The fleet link at scale, against a real redis-server: one instance with 100 000 breakers
//! under a fleet rule, 10 000 of them busy and the rest idle. Every flush succeeds (split
//! into pipelines of at most 2 048 commands), idle breakers cost Redis nothing, every call of
//! a busy breaker reaches its buckets exactly once, and a busy breaker's fleet window still
//! trips it. Prints what it measured (flushes per second, commands and pipelines per flush,
//! the longest flush) for docs/fleet.md; asserts only counts.
//!
//! One test in its own binary: it holds about 400 MB of breakers. Skipped (loudly) without
//! redis-server, unless `HOTBREAKER_REQUIRE_REDIS=1`.

#[path = "support/fleet.rs"]
mod fleet;
#[path = "support/redis_server.rs"]
mod redis_server;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hotbreaker::fleet::{FleetRule, Quorum};
use hotbreaker::{Cause, Config, State};

use fleet::{Instance, quiet_config};
use redis_server::{RedisServer, eventually};

const BREAKERS: usize = 100_000;
const BUSY: usize = 10_000;

/// The keys of breaker `name` in Redis, from a raw `KEYS` reply.
fn keys_of(redis: &RedisServer, name: &str) -> Vec<String> {
    let reply = redis.command(&["KEYS", &format!("t:{{{name}}}:*")]);
    reply
        .split("\r\n")
        .filter(|l| !l.is_empty() && !l.starts_with('*') && !l.starts_with('$'))
        .map(str::to_owned)
        .collect()
}

/// The calls counted in breaker `name`'s buckets in Redis.
fn calls_in_redis(redis: &RedisServer, name: &str) -> u64 {
    keys_of(redis, name)
        .iter()
        .map(|key| {
            let reply = redis.command(&["HGET", key, "c"]);
            reply
                .split("\r\n")
                .nth(1)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or_else(|| panic!("a count at {key}: {reply:?}"))
        })
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_breakers_ten_thousand_busy() {
    let Some(redis) = RedisServer::start("a_hundred_thousand_breakers_ten_thousand_busy") else {
        return;
    };
    // A 60 s window (10 buckets of 6 s): its keys outlive the test, so that the calls counted
    // in Redis at the end are all the calls made.
    let rule = FleetRule::failure_rate(0.5)
        .minimum_calls(100)
        .window(Duration::from_secs(60), 10);
    let config = Config {
        stripes: Some(1),
        failure_rate: None,
        ..quiet_config()
    };
    // A majority quorum: the peer's own trip (one instance of two) does not open `b7` here,
    // so that what opens it is this instance's reading of the fleet window.
    let a = Instance::new(&redis.url(), config.clone(), |o| {
        o.default_rule(rule)
            .quorum(Quorum::Majority)
            .flush_interval(Duration::from_millis(100))
            .command_timeout(Duration::from_millis(500))
    });
    // A small peer that fails on one of the busy breakers.
    let peer = Instance::new(&redis.url(), config, |o| o.default_rule(rule));
    let names: Vec<String> = (0..BREAKERS).map(|i| format!("b{i}")).collect();
    for name in &names {
        a.registry.get_or_create(name);
    }
    peer.registry.get_or_create("b7");
    assert!(eventually(30, || a.link.status().up() && peer.link.status().up()).await);
    // Two flushes: every breaker seen once (its totals so far are its baseline).
    let flushes = a.link.status().flushes;
    assert!(eventually(30, || a.link.status().flushes > flushes + 2).await);

    // The busy ones, one call each per round, until stopped.
    let busy: Vec<_> = names[..BUSY]
        .iter()
        .map(|n| a.registry.get(n).unwrap())
        .collect();
    let (stop, rounds) = (
        Arc::new(AtomicBool::new(false)),
        Arc::new(AtomicU64::new(0)),
    );
    let (s, r) = (stop.clone(), rounds.clone());
    let driver = std::thread::spawn(move || {
        // Relaxed: a flag and a count, each read on its own; the join orders the last.
        while !s.load(Ordering::Relaxed) {
            for b in &busy {
                b.try_acquire().expect("closed").success();
            }
            r.fetch_add(1, Ordering::Relaxed);
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    let start = Instant::now();
    let (flushes, errors) = (a.link.status().flushes, a.link.status().flush_errors);
    assert!(
        eventually(60, || a.link.status().flushes >= flushes + 30).await,
        "{:?}",
        a.link.status()
    );
    let busy_flushes = a.link.status().flushes - flushes;
    let took = start.elapsed();
    let during = a.link.status();
    stop.store(true, Ordering::Relaxed);
    driver.join().unwrap();
    let rounds = rounds.load(Ordering::Relaxed);

    assert_eq!(during.flush_errors, errors, "no flush failed: {during:?}");
    assert!(during.last_flush_pipelines >= 2, "{during:?}");
    // Per busy breaker: a HINCRBY of its calls, at most one PEXPIRE, and 2 or 3 HMGETs (the
    // window's buckets not final yet); nothing for the 90 000 idle ones.
    let commands = during.last_flush_commands;
    assert!(
        (5 + 3 * BUSY as u64..=5 + 5 * BUSY as u64).contains(&commands),
        "{commands} commands in one flush: {during:?}"
    );
    eprintln!(
        "{BREAKERS} breakers, {BUSY} busy: {busy_flushes} flushes in {took:?} ({:.1}/s at a \
         100 ms interval), {commands} commands in {} pipelines per flush, longest flush {:?}",
        busy_flushes as f64 / took.as_secs_f64(),
        during.last_flush_pipelines,
        during.max_flush_latency
    );

    // Every call of a busy breaker reached its buckets, once; idle breakers have no key.
    let flushes = a.link.status().flushes;
    assert!(eventually(30, || a.link.status().flushes > flushes + 3).await);
    for i in (0..BUSY).step_by(997) {
        assert_eq!(calls_in_redis(&redis, &names[i]), rounds, "{}", names[i]);
    }
    for i in (BUSY..BREAKERS).step_by(9_973) {
        assert!(keys_of(&redis, &names[i]).is_empty(), "{}", names[i]);
    }
    assert_eq!(a.link.status().deltas_dropped, 0);

    // A busy breaker's fleet window: the peer's failures trip it here.
    a.calls("b7", 1, false); // still in use
    // More failures than the window holds successes: a failure rate over one half.
    peer.calls("b7", 2 * rounds + 400, true);
    assert!(
        eventually(30, || a.state("b7") == Some(State::Open)).await,
        "{:?}",
        a.link.status()
    );
    assert!(a.causes("b7", State::Open).contains(&Cause::FleetWindow));
}
