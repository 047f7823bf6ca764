//! The fleet link under schedules that once cost it: Redis's clock stepping back, a flush cut
//! after its first pipeline, a breaker that opens and closes before the link first looks at
//! it, and an instance restarting under a majority quorum. Against a real redis-server,
//! through a proxy that can shift Redis's `TIME` and cut a flush mid-way. Skipped (loudly)
//! without redis-server, unless `HOTBREAKER_REQUIRE_REDIS=1`.

#[path = "support/fleet.rs"]
mod fleet;
#[path = "support/redis_server.rs"]
mod redis_server;

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hotbreaker::fleet::{FleetRule, Quorum};
use hotbreaker::{Cause, Config, State};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use fleet::{Instance, quiet_config};
use redis_server::{RedisServer, eventually};

/// A proxy in front of redis-server that shifts the seconds of every `TIME` reply by
/// `offset_s` (Redis's clock as another host would have it), and, while `cut_after` > 0, cuts
/// a connection once its client sent more than that many bytes since the last chunk that
/// starts with `TIME` (the start of a flush): a flush cut in its second pipeline.
struct Tap {
    port: u16,
    offset_s: Arc<AtomicI64>,
    cut_after: Arc<AtomicU64>,
    cuts: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Tap {
    async fn start(target: u16) -> Tap {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let offset_s = Arc::new(AtomicI64::new(0));
        let cut_after = Arc::new(AtomicU64::new(0));
        let cuts = Arc::new(AtomicU64::new(0));
        let (o, c, n) = (offset_s.clone(), cut_after.clone(), cuts.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(("127.0.0.1", target)).await else {
                    continue;
                };
                let (cr, cw) = client.into_split();
                let (sr, sw) = server.into_split();
                tokio::spawn(upstream(cr, sw, c.clone(), n.clone()));
                tokio::spawn(downstream(sr, cw, o.clone()));
            }
        });
        Tap {
            port,
            offset_s,
            cut_after,
            cuts,
            task,
        }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn upstream(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    cut_after: Arc<AtomicU64>,
    cuts: Arc<AtomicU64>,
) {
    let mut buf = vec![0; 16 * 1024];
    let mut since_time = 0u64;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if buf[..n].starts_with(b"*1\r\n$4\r\nTIME\r\n") {
            since_time = 0;
        }
        let before = since_time;
        since_time += n as u64;
        let limit = cut_after.load(Ordering::SeqCst);
        if limit > 0 && since_time > limit {
            // Cut at a write's boundary: just before the first `HINCRBY key c` past the
            // limit, so that every write forwarded is whole (its `PEXPIRE` included).
            let from_at = limit.saturating_sub(before) as usize;
            if let Some(p) = write_start(&buf[..n], from_at) {
                let _ = to.write_all(&buf[..p]).await;
                cuts.fetch_add(1, Ordering::SeqCst);
                return; // both halves dropped: Redis sees EOF and closes, the client sees EOF
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// Where the first `HINCRBY <key> c` command at or after `from` starts in `buf`.
fn write_start(buf: &[u8], from: usize) -> Option<usize> {
    let head = b"*4\r\n$7\r\nHINCRBY\r\n";
    (from..buf.len()).find(|&i| {
        // `$<len>\r\n<key>\r\n$1\r\nc\r\n` follows
        let Some(rest) = buf[i..].strip_prefix(head.as_slice()) else {
            return false;
        };
        let Some(rest) = rest.strip_prefix(b"$") else {
            return false;
        };
        let Some(end) = rest.windows(2).position(|w| w == b"\r\n") else {
            return false;
        };
        let Some(len) = std::str::from_utf8(&rest[..end])
            .ok()
            .and_then(|l| l.parse::<usize>().ok())
        else {
            return false;
        };
        rest.get(end + 2 + len..)
            .is_some_and(|r| r.starts_with(b"\r\n$1\r\nc\r\n"))
    })
}

async fn downstream(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    offset_s: Arc<AtomicI64>,
) {
    let mut buf = vec![0; 16 * 1024];
    let head = b"*2\r\n$10\r\n";
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let offset = offset_s.load(Ordering::SeqCst);
        if offset != 0 {
            let mut i = 0;
            while i + head.len() + 10 <= n {
                if &buf[i..i + head.len()] == head {
                    let at = i + head.len();
                    if let Some(secs) = std::str::from_utf8(&buf[at..at + 10])
                        .ok()
                        .and_then(|s| s.parse::<i64>().ok())
                    {
                        let shifted = format!("{:010}", secs + offset);
                        buf[at..at + 10].copy_from_slice(shifted.as_bytes());
                    }
                }
                i += 1;
            }
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// The keys matching `pattern`, from a raw `KEYS` reply, with their `TTL` (-1: no expiry; -2:
/// gone since `KEYS` listed it).
fn keys_with_ttl(redis: &RedisServer, pattern: &str) -> Vec<(String, i64)> {
    let reply = redis.command(&["KEYS", pattern]);
    reply
        .split("\r\n")
        .filter(|l| !l.is_empty() && !l.starts_with('*') && !l.starts_with('$'))
        .map(|k| {
            let ttl = redis.command(&["TTL", k]);
            let ttl: i64 = ttl.trim().trim_start_matches(':').parse().unwrap();
            (k.to_owned(), ttl)
        })
        .collect()
}

/// Redis's clock steps back 60 s (an NTP step on its host, a failover to a replica whose
/// clock is behind): the buckets written after the step are older than those before it, and
/// each still gets its expiry on its first write (no key is left to live forever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_written_after_the_fleet_clock_steps_back_expire() {
    let Some(redis) = RedisServer::start("keys_written_after_the_fleet_clock_steps_back_expire")
    else {
        return;
    };
    let tap = Tap::start(redis.port).await;
    tap.offset_s.store(60, Ordering::SeqCst); // Redis's clock a minute ahead ...
    let rule = FleetRule::failure_rate(0.5).minimum_calls(u64::MAX);
    let a = Instance::new(&tap.url(), quiet_config(), |o| o.default_rule(rule));
    a.registry.get_or_create("db");
    assert!(eventually(15, || a.link.status().up()).await);
    let calls_for = |ms: u64| {
        let a = &a;
        async move {
            let end = Instant::now() + Duration::from_millis(ms);
            while Instant::now() < end {
                a.calls("db", 10, false);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    calls_for(2_500).await;
    tap.offset_s.store(0, Ordering::SeqCst); // ... then set right
    calls_for(2_500).await;
    let flushes = a.link.status().flushes;
    assert!(eventually(10, || a.link.status().flushes > flushes + 2).await);
    let keys = keys_with_ttl(&redis, "t:{db}:*");
    let leaked: Vec<_> = keys.iter().filter(|(_, ttl)| *ttl == -1).collect();
    assert!(!keys.is_empty());
    assert!(
        leaked.is_empty(),
        "{} of {} bucket keys have no TTL (leaked forever): {leaked:?}",
        leaked.len(),
        keys.len()
    );
}

/// Flushes cut after their first pipeline, with a backlog of several buckets per breaker: the
/// deltas put back are written later with their key's expiry if that bucket never had one,
/// and a key whose write may have landed without its `PEXPIRE` gets one at the next flush.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buckets_put_back_after_a_failed_pipeline_expire() {
    let Some(redis) = RedisServer::start("buckets_put_back_after_a_failed_pipeline_expire") else {
        return;
    };
    let tap = Tap::start(redis.port).await;
    // 20 ms buckets, 50 of them: a backoff (50 to 200 ms) leaves each breaker several
    // buckets to write, and a delta put back lives a second.
    let rule = FleetRule::failure_rate(0.5)
        .minimum_calls(u64::MAX)
        .window(Duration::from_millis(1_000), 50);
    let a = Instance::new(&tap.url(), quiet_config(), |o| o.default_rule(rule));
    let names: Vec<String> = (0..300).map(|i| format!("b{i}")).collect();
    for n in &names {
        a.registry.get_or_create(n);
    }
    assert!(eventually(15, || a.link.status().up()).await);
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let caller = {
        let (registry, names, stop) = (a.registry.clone(), names.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                for n in &names {
                    let b = registry.get(n).unwrap();
                    b.try_acquire().unwrap().success();
                    b.try_acquire().unwrap().failure();
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let flushes = a.link.status().flushes;
    assert!(eventually(10, || a.link.status().flushes > flushes + 10).await);
    // Cut each flush 130 KB in: past its first pipeline (2 048 commands, about 123 KB).
    // A flush without a backlog is smaller; a slow Redis makes one flush fail, and the next
    // carries several buckets per breaker.
    tap.cut_after.store(130_000, Ordering::SeqCst);
    let port = redis.port;
    tokio::task::spawn_blocking(move || RedisServer::command_on(port, &["DEBUG", "SLEEP", "0.5"]));
    assert!(eventually(20, || tap.cuts.load(Ordering::SeqCst) >= 5).await);
    tap.cut_after.store(0, Ordering::SeqCst);
    let flushes = a.link.status().flushes;
    assert!(eventually(20, || a.link.status().flushes > flushes + 5).await);
    stop.store(true, Ordering::SeqCst);
    caller.join().unwrap();
    // Every bucket key has an expiry (one whose write may have landed without it gets it at
    // the next flush): none is left to live forever.
    let flushes = a.link.status().flushes;
    assert!(eventually(20, || a.link.status().flushes > flushes + 2).await);
    let keys = keys_with_ttl(&redis, "t:{b*");
    let leaked: Vec<_> = keys.iter().filter(|(_, ttl)| *ttl == -1).collect();
    assert!(
        leaked.is_empty(),
        "{} of {} bucket keys without expiry after {} cut flushes: {:?} (status {:?})",
        leaked.len(),
        keys.len(),
        tap.cuts.load(Ordering::SeqCst),
        &leaked[..leaked.len().min(5)],
        a.link.status()
    );
}

fn trip_config() -> Config {
    Config {
        consecutive_failures: Some(3),
        open_timeout: Some(Duration::from_secs(1)),
        half_open_permits: Some(1),
        half_open_successes: Some(1),
        ..Config::default()
    }
}

/// Three failures open `name`; its opening is waited out; one probe closes it again.
fn trip_and_close(i: &Instance, name: &str) {
    i.calls(name, 3, true);
    assert_eq!(i.state(name), Some(State::Open));
    i.mock.increment(Duration::from_secs(2));
    i.calls(name, 1, false);
    assert_eq!(i.state(name), Some(State::Closed));
}

/// A breaker created after the link's first look, which trips and closes before the link
/// first looks at it: its window starts after its close, like that of a breaker the link had
/// seen, so the failures that opened it do not trip it again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breaker_first_seen_after_its_close_is_not_tripped_by_what_opened_it() {
    let Some(redis) = RedisServer::start("a_breaker_first_seen_after_its_close") else {
        return;
    };
    let rule = FleetRule::failure_rate(0.5).minimum_calls(4);
    let a = Instance::new(&redis.url(), trip_config(), |o| o.default_rule(rule));
    assert!(eventually(15, || a.link.status().up()).await);
    // Seen: created, then left for a second (every breaker is looked at in 10 flushes).
    a.registry.get_or_create("seen");
    let flushes = a.link.status().flushes;
    assert!(eventually(10, || a.link.status().flushes > flushes + 12).await);
    trip_and_close(&a, "seen");
    // Late: created and put through the same schedule at once.
    trip_and_close(&a, "late");
    // Both looked at (each idle breaker within 10 flushes), their windows read a few times.
    let flushes = a.link.status().flushes;
    assert!(eventually(10, || a.link.status().flushes > flushes + 20).await);
    assert_eq!(a.state("seen"), Some(State::Closed), "control");
    assert_eq!(
        a.state("late"),
        Some(State::Closed),
        "reopened after its close by its own pre-close failures: {:?}",
        a.causes("late", State::Open)
    );
}

fn one_failure_trips() -> Config {
    Config {
        consecutive_failures: Some(1),
        open_timeout: Some(Duration::from_secs(1)),
        half_open_permits: Some(1),
        half_open_successes: Some(1),
        ..Config::default()
    }
}

/// A majority of five after one instance restarted (a new suffix, the same name): the restart
/// adds no voter, so three trips still open the other two.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_one_restart_a_majority_of_five_still_opens_the_rest() {
    majority_of_five(true).await;
}

/// Control: the same schedule without the restart passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_majority_of_five_opens_the_rest() {
    majority_of_five(false).await;
}

async fn majority_of_five(restart: bool) {
    let Some(redis) = RedisServer::start("a_majority_of_five_after_a_restart") else {
        return;
    };
    let start = |n: usize| {
        let i = Instance::new(&redis.url(), one_failure_trips(), |o| {
            o.quorum(Quorum::Majority).instance_id(format!("i{n}"))
        });
        i.registry.get_or_create("db");
        i
    };
    let mut fleet: Vec<Instance> = (0..5).map(start).collect();
    assert!(
        eventually(15, || fleet
            .iter()
            .all(|i| i.link.status().up() && i.link.status().instances == 5))
        .await
    );
    // Instance 4 restarts (a deploy, a crash): same name, new life.
    if restart {
        drop(fleet.pop());
        fleet.push(start(4));
    }
    assert!(eventually(15, || fleet[4].link.status().up()).await);
    let live_before = fleet[3].link.status().instances;
    // A real outage: three of five trip.
    for i in &fleet[..3] {
        i.calls("db", 1, true);
        assert_eq!(i.state("db"), Some(State::Open));
    }
    let opened = eventually(5, || {
        fleet[3..]
            .iter()
            .all(|i| i.state("db") == Some(State::Open))
    })
    .await;
    let statuses: Vec<_> = fleet[3..]
        .iter()
        .map(|i| {
            let s = i.link.status();
            (
                s.instances,
                s.trips_short_of_quorum,
                s.messages_in,
                s.messages_ignored,
                i.state("db"),
                i.heard.lock().unwrap().clone(),
            )
        })
        .collect();
    assert!(
        opened,
        "3 of 5 tripped, not every other instance opened; live count at the trips {live_before}; \
         now (live count, trips short of quorum, messages in, ignored): {statuses:?}"
    );
    for i in &fleet[3..] {
        assert_eq!(i.causes("db", State::Open), [Cause::Fleet]);
    }
}
