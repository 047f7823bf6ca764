//! Signed fleet messages against a real redis-server: instances sharing a key hear each other,
//! and anyone else publishing on the channel moves nothing (forged isolations, a forged reset
//! of an Open breaker, a forged generation past a real peer's), during a key rotation too.
//! Skipped (loudly) without redis-server, unless `HOTBREAKER_REQUIRE_REDIS=1`.

#[path = "support/fleet.rs"]
mod fleet;
#[path = "support/redis_server.rs"]
mod redis_server;

use std::time::Duration;

use hotbreaker::State;

use fleet::{Instance, local_trip};
use redis_server::{RedisServer, eventually};

const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";
const NEXT_KEY: &[u8] = b"fedcba9876543210fedcba9876543210";

fn publish(redis: &RedisServer, payload: &str) {
    let reply = redis.command(&["PUBLISH", "t:events", payload]);
    assert!(reply.starts_with(':'), "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_holders_of_the_key_move_a_breaker() {
    let Some(redis) = RedisServer::start("only_holders_of_the_key_move_a_breaker") else {
        return;
    };
    let a = Instance::new(&redis.url(), local_trip(), |o| o.signing_key(KEY));
    let b = Instance::new(&redis.url(), local_trip(), |o| o.signing_key(KEY));
    let names: Vec<String> = (0..100).map(|i| format!("n{i}")).collect();
    for name in names.iter().map(String::as_str).chain(["db", "queue"]) {
        a.registry.get_or_create(name);
        b.registry.get_or_create(name);
    }
    assert!(eventually(15, || a.link.status().up() && b.link.status().up()).await);

    // 100 forged isolations, from made-up senders and from a real peer's id.
    let real = b.link.instance_id().to_owned();
    for (i, name) in names.iter().enumerate() {
        let sender = if i % 2 == 0 { "intruder" } else { &real };
        publish(&redis, &format!("hb1|isolate|{sender}|{i}|0|manual|{name}"));
    }
    assert!(
        eventually(10, || a.link.status().messages_unauthenticated >= 100).await,
        "{:?}",
        a.link.status()
    );
    for name in &names {
        assert_eq!(a.state(name), Some(State::Closed), "{name}");
    }

    // A forged generation past b's for `queue` does not silence b: its real trip applies.
    publish(
        &redis,
        &format!("hb1|reset|{real}|18446744073709551615|0|manual|queue"),
    );
    b.calls("queue", 3, true);
    assert!(
        eventually(10, || a.state("queue") == Some(State::Open)).await,
        "{:?}",
        a.link.status()
    );

    // A forged reset does not half-open an Open breaker before its deadline.
    b.calls("db", 3, true);
    assert!(eventually(10, || a.state("db") == Some(State::Open)).await);
    let refused = a.link.status().messages_unauthenticated;
    publish(&redis, &format!("hb1|reset|{real}|99|0|manual|db"));
    assert!(eventually(10, || a.link.status().messages_unauthenticated > refused).await);
    assert_eq!(a.state("db"), Some(State::Open));
    assert_eq!(
        a.link.status().messages_applied,
        2,
        "only b's two signed trips: {:?}",
        a.link.status()
    );
}

/// A rotation: `a` still signs with the old key and accepts the new one, `c` already signs
/// with the new key and accepts the old one. Each hears the other; an instance left with the
/// old key only (`d`) no longer hears `c`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotation_loses_no_message() {
    let Some(redis) = RedisServer::start("a_key_rotation_loses_no_message") else {
        return;
    };
    let a = Instance::new(&redis.url(), local_trip(), |o| {
        o.signing_key(KEY).accept_key(NEXT_KEY)
    });
    let c = Instance::new(&redis.url(), local_trip(), |o| {
        o.signing_key(NEXT_KEY).accept_key(KEY)
    });
    let d = Instance::new(&redis.url(), local_trip(), |o| o.signing_key(KEY));
    for i in [&a, &c, &d] {
        i.registry.get_or_create("from-a");
        i.registry.get_or_create("from-c");
    }
    assert!(eventually(15, || [&a, &c, &d].iter().all(|i| i.link.status().up())).await);
    a.calls("from-a", 3, true);
    c.calls("from-c", 3, true);
    assert!(eventually(10, || c.state("from-a") == Some(State::Open)).await);
    assert!(eventually(10, || a.state("from-c") == Some(State::Open)).await);
    assert!(eventually(10, || d.state("from-a") == Some(State::Open)).await);
    assert!(eventually(10, || d.link.status().messages_unauthenticated > 0).await);
    assert_eq!(d.state("from-c"), Some(State::Closed));
}

/// The ACL that docs/fleet.md gives an instance (here for the tests' prefix `t`): exactly
/// these commands on the fleet's keys and channel are enough for the whole link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_documented_acl_is_enough() {
    let Some(redis) = RedisServer::start("a_documented_acl_is_enough") else {
        return;
    };
    let acl = "ACL SETUSER fleet on >a-long-random-password resetkeys resetchannels \
               ~t:* &t:events -@all +time +ping +hello +auth +zadd +zremrangebyscore \
               +zcard +pexpire +hincrby +hmget +publish +subscribe";
    let args: Vec<&str> = acl.split_whitespace().collect();
    let reply = redis.command(&args);
    assert!(reply.starts_with("+OK"), "{reply}");
    let url = format!(
        "redis://fleet:a-long-random-password@127.0.0.1:{}",
        redis.port
    );
    let rule = hotbreaker::fleet::FleetRule::failure_rate(0.5).minimum_calls(10);
    let a = Instance::new(&url, local_trip(), |o| {
        o.signing_key(KEY).default_rule(rule)
    });
    let b = Instance::new(&url, local_trip(), |o| o.signing_key(KEY));
    for i in [&a, &b] {
        i.registry.get_or_create("db");
        i.registry.get_or_create("window");
    }
    assert!(
        eventually(15, || a.link.status().up() && b.link.status().up()).await,
        "{:?}",
        a.link.status()
    );
    // A trip travels (PUBLISH, SUBSCRIBE) and the fleet window fills (HINCRBY, HMGET).
    b.calls("db", 3, true);
    assert!(eventually(10, || a.state("db") == Some(State::Open)).await);
    a.calls("window", 2, true);
    let flushes = a.link.status().flushes;
    assert!(eventually(5, || a.link.status().flushes > flushes + 2).await);
    let s = a.link.status();
    assert_eq!((s.key_errors, s.garbage_replies), (0, 0), "{s:?}");
    assert_eq!(s.instances, 2, "{s:?}");
    // The same user may not touch another fleet's keys, nor publish on its channel.
    for command in [
        "*2\r\n$3\r\nGET\r\n$7\r\nother:x\r\n",
        "*3\r\n$7\r\nPUBLISH\r\n$12\r\nother:events\r\n$1\r\nx\r\n",
    ] {
        let reply = as_fleet_user(redis.port, command);
        assert!(reply.contains("NOPERM"), "{reply}");
    }
}

/// Sends `command` (raw RESP) after authenticating as the ACL's user; the raw replies.
fn as_fleet_user(port: u16, command: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = "*3\r\n$4\r\nAUTH\r\n$5\r\nfleet\r\n$22\r\na-long-random-password\r\n";
    s.write_all(format!("{auth}{command}").as_bytes()).unwrap();
    let mut out = String::new();
    let mut buf = [0u8; 512];
    while !out.contains("NOPERM") && out.matches("\r\n").count() < 2 {
        let n = s.read(&mut buf).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    out
}
