//! The fleet link under a flood on its channel, against a real redis-server: 300 000 messages
//! published as fast as one connection can pipeline them (well-formed trips from 100 000
//! made-up senders for names this instance does not have, mixed with garbage), then one
//! 40 MiB payload. The subscriber's process memory stays within a bound throughout, and a
//! real trip sent after each still arrives (after the oversized payload, by the sender's
//! repeat once the subscription is back).
//!
//! One test in its own binary: it reads the process's resident memory, which other tests
//! running beside it would move. Skipped (loudly) without redis-server, unless
//! `HOTBREAKER_REQUIRE_REDIS=1`.

#[path = "support/fleet.rs"]
mod fleet;
#[path = "support/redis_server.rs"]
mod redis_server;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use hotbreaker::State;
use hotbreaker::fleet::FleetRule;

use fleet::{Instance, local_trip};
use redis_server::{RedisServer, eventually};

/// Messages in the flood.
const FLOOD: usize = 300_000;
/// The most the flooded process's resident memory may grow above its level before the flood.
const MEMORY_BOUND: u64 = 32 << 20;

/// This process's resident memory in bytes (`VmRSS`).
fn resident() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line");
    kib * 1024
}

/// Samples [`resident`] every 5 ms until dropped; `peak` is the highest seen.
struct PeakMemory {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PeakMemory {
    fn start() -> PeakMemory {
        let peak = Arc::new(AtomicU64::new(resident()));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            // Relaxed: each value stands alone; the join in `peak` orders the last one.
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(resident(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        PeakMemory {
            peak,
            stop,
            thread: Some(thread),
        }
    }

    fn peak(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().unwrap();
        self.peak.load(Ordering::Relaxed)
    }
}

fn resp(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for a in args {
        out.extend_from_slice(format!("${}\r\n", a.len()).as_bytes());
        out.extend_from_slice(a);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Publishes `payloads` on `channel` over one raw connection, pipelined in batches of 10 000,
/// with a second thread draining the replies. Returns the number of subscribers the last
/// reply counted.
fn publish_raw(port: u16, channel: &str, payloads: impl Iterator<Item = Vec<u8>>) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut reader = stream.try_clone().unwrap();
    let total = Arc::new(AtomicU64::new(0));
    let sent = total.clone();
    let drain = std::thread::spawn(move || {
        // Counts reply lines (`:n\r\n`) until every command has one, keeping the last.
        let mut buf = vec![0; 1 << 16];
        let mut seen = 0u64;
        let mut tail = Vec::new();
        loop {
            let n = reader.read(&mut buf).unwrap_or(0);
            if n == 0 {
                break;
            }
            seen += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
            tail.extend_from_slice(&buf[..n]);
            if tail.len() > 64 {
                tail.drain(..tail.len() - 64);
            }
            // Acquire: pairs with the Release after the last write, so the total is final.
            let want = sent.load(Ordering::Acquire);
            if want > 0 && seen >= want {
                break;
            }
        }
        String::from_utf8_lossy(&tail).into_owned()
    });
    let mut count = 0u64;
    let mut batch = Vec::with_capacity(1 << 20);
    for payload in payloads {
        batch.extend_from_slice(&resp(&[b"PUBLISH", channel.as_bytes(), &payload]));
        count += 1;
        if count.is_multiple_of(10_000) {
            stream.write_all(&batch).expect("write the flood");
            batch.clear();
        }
    }
    stream.write_all(&batch).expect("write the flood");
    total.store(count, Ordering::Release);
    let tail = drain.join().unwrap();
    tail.lines().last().unwrap_or_default().to_owned()
}

/// Publishes one payload of `len` bytes on `channel`, streamed from a small buffer (so that
/// this process never holds it), and returns the raw reply.
fn publish_oversized(port: u16, channel: &str, len: usize) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let head = format!(
        "*3\r\n$7\r\nPUBLISH\r\n${}\r\n{channel}\r\n${len}\r\n",
        channel.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    let chunk = vec![b'x'; 1 << 16];
    let mut left = len;
    while left > 0 {
        let n = left.min(chunk.len());
        stream.write_all(&chunk[..n]).expect("write the payload");
        left -= n;
    }
    stream.write_all(b"\r\n").unwrap();
    let mut buf = vec![0; 64];
    let n = stream.read(&mut buf).unwrap_or(0);
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Well-formed trips from 100 000 made-up senders for names nobody has, every third message
/// garbage instead.
fn flood() -> impl Iterator<Item = Vec<u8>> {
    (0..FLOOD).map(|i| {
        if i % 3 == 2 {
            format!("not a message {i} |||").into_bytes()
        } else {
            format!(
                "hb1|open|made-up-{}|{i}|30000000|failure-rate|unknown-{i}",
                i % 100_000
            )
            .into_bytes()
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_on_the_channel_is_held_nowhere_and_a_real_trip_still_arrives() {
    let Some(redis) = RedisServer::start("a_flood_on_the_channel") else {
        return;
    };
    let rule = FleetRule::failure_rate(0.5);
    let a = Instance::new(&redis.url(), local_trip(), |o| o.default_rule(rule));
    let b = Instance::new(&redis.url(), local_trip(), |o| o);
    for name in ["db", "queue", "cache"] {
        a.registry.get_or_create(name);
        b.registry.get_or_create(name);
    }
    assert!(eventually(15, || a.link.status().up() && b.link.status().up()).await);
    // Settle: a few flushes, so the baseline holds the link's own steady allocations.
    let flushes = a.link.status().flushes;
    assert!(eventually(5, || a.link.status().flushes > flushes + 5).await);

    // The flood.
    let before = resident();
    let memory = PeakMemory::start();
    let port = redis.port;
    let last = tokio::task::spawn_blocking(move || publish_raw(port, "t:events", flood()))
        .await
        .unwrap();
    assert!(last.starts_with(':'), "PUBLISH replies: {last:?}");
    // Let the subscriber catch up (or be cut off and come back), then measure.
    assert!(
        eventually(20, || a.link.status().subscribed).await,
        "{:?}",
        a.link.status()
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let peak = memory.peak();
    let status = a.link.status();
    assert!(
        status.messages_in > 10_000,
        "the flood reached the subscriber: {status:?}"
    );
    assert!(status.messages_malformed > 0, "{status:?}");
    assert_eq!(status.messages_applied, 0, "{status:?}");
    let grew = peak.saturating_sub(before);
    assert!(
        grew < MEMORY_BOUND,
        "resident memory grew {grew} B during the flood ({status:?})"
    );
    eprintln!(
        "flood: {} of {FLOOD} messages read, resident memory +{} KiB at most",
        status.messages_in,
        grew >> 10
    );
    // A real trip after the flood still arrives.
    b.calls("db", 3, true);
    assert!(
        eventually(10, || a.state("db") == Some(State::Open)).await,
        "{:?}",
        a.link.status()
    );

    // One oversized payload: Redis cuts the subscription off (past its pub/sub output limit)
    // or the subscriber reads and refuses it; either way a trip sent just after arrives, at
    // the latest as the sender's repeat.
    let before = resident();
    let memory = PeakMemory::start();
    let last = tokio::task::spawn_blocking(move || publish_oversized(port, "t:events", 40 << 20))
        .await
        .unwrap();
    assert!(last.starts_with(':'), "PUBLISH reply: {last:?}");
    b.calls("queue", 3, true);
    assert!(
        eventually(10, || a.state("queue") == Some(State::Open)).await,
        "{:?} {:?}",
        a.link.status(),
        b.link.status()
    );
    let peak = memory.peak();
    let grew = peak.saturating_sub(before);
    eprintln!(
        "oversized payload: resident memory +{} KiB at most",
        grew >> 10
    );
    assert!(
        grew < MEMORY_BOUND,
        "resident memory grew {grew} B for one 40 MiB payload"
    );

    // Payloads under Redis's limit (16 MiB), six of them: each is read whole by both
    // subscriptions in this process (the client library buffers a reply before handing it
    // over), refused, and its connection replaced. What stays resident is up to the allocator
    // (freed buffers are kept for reuse), but it does not grow with the number of payloads:
    // it stays under two output limits per subscription, and a trip after them arrives.
    let before = resident();
    let mut most = 0;
    for _ in 0..6 {
        let subscribed = |i: &Instance| i.link.status().subscriptions;
        let (sa, sb) = (subscribed(&a), subscribed(&b));
        let last =
            tokio::task::spawn_blocking(move || publish_oversized(port, "t:events", 16 << 20))
                .await
                .unwrap();
        assert!(last.starts_with(":2"), "PUBLISH reply: {last:?}");
        // Each subscription refused it and was replaced.
        assert!(
            eventually(20, || subscribed(&a) > sa
                && subscribed(&b) > sb
                && a.link.status().subscribed
                && b.link.status().subscribed)
            .await,
            "{:?}",
            a.link.status()
        );
        most = most.max(resident().saturating_sub(before));
    }
    b.calls("cache", 3, true);
    assert!(
        eventually(10, || a.state("cache") == Some(State::Open)).await,
        "{:?}",
        a.link.status()
    );
    eprintln!(
        "six 16 MiB payloads: resident memory +{} KiB at most after one",
        most >> 10
    );
    assert!(
        most < 4 * MEMORY_BOUND,
        "refused 16 MiB payloads left resident memory +{} KiB",
        most >> 10
    );
}
