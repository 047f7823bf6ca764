//! A RabbitMQ consumer and publisher behind breakers, against a real broker on a loopback port:
//! a failing dependency, a broker killed, a broker restarted without its queue. Each test bounds
//! its own time; without a broker they print SKIPPED (and fail under
//! `HOTBREAKER_REQUIRE_RABBITMQ=1`, as in CI).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use hotbreaker::Breaker;
use hotbreaker_integration::queue::{
    Consumer, ConsumerStats, Dependency, Published, Publisher, wait_until,
};
use hotbreaker_integration::rabbitmq::RabbitServer;

fn breaker(k: u32, open: Duration) -> Arc<Breaker> {
    Arc::new(
        Breaker::builder()
            .consecutive_failures(k)
            .open_timeout(open)
            .half_open_permits(1)
            .half_open_successes(1)
            .build()
            .unwrap(),
    )
}

fn consumer(server: &RabbitServer, queue: &str, breaker: Option<Arc<Breaker>>) -> Arc<Consumer> {
    Arc::new(Consumer {
        url: server.url(),
        queue: queue.to_owned(),
        breaker,
        dependency: Arc::new(Dependency::default()),
        stats: ConsumerStats::default(),
    })
}

fn done(c: &Consumer) -> usize {
    c.stats.done.lock().unwrap().len()
}

/// The first few ids below `n` the consumer has not acknowledged.
fn missing(c: &Consumer, n: u64) -> Vec<u64> {
    let done = c.stats.done.lock().unwrap();
    (0..n).filter(|id| !done.contains(id)).take(10).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_dependency_pauses_consumption_with_no_hot_loop_and_no_message_lost() {
    let Some(server) = RabbitServer::start("queue failing dependency") else {
        return;
    };
    let guarded = consumer(
        &server,
        "guarded",
        Some(breaker(5, Duration::from_millis(500))),
    );
    let plain = consumer(&server, "plain", None);
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for c in [&guarded, &plain] {
        c.dependency.failing.store(true, Relaxed);
        let (c, stop) = (c.clone(), stop.clone());
        tasks.push(tokio::spawn(async move { c.run(&stop).await }));
    }
    let publishers = [
        Publisher::new(server.url(), "guarded", None, 0),
        Publisher::new(server.url(), "plain", None, 0),
    ];
    for id in 0..200 {
        for p in &publishers {
            assert_eq!(p.publish(id).await, Published::Sent);
        }
    }
    // 2 s of a failing dependency.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (g, p) = (
        guarded.dependency.calls.load(Relaxed),
        plain.dependency.calls.load(Relaxed),
    );
    println!("dependency calls in 2 s of failure: with a breaker {g}, without {p}");
    // 5 failures, then one probe per 500 ms opening (and the opening's own first message).
    assert!(
        g <= 5 + 2 * 4,
        "the paused consumer still called the dependency {g} times"
    );
    assert!(p >= 20 * g, "no hot loop without a breaker? {p} calls");
    assert_eq!(done(&guarded), 0);
    // The dependency recovers: every message is handled once, none lost.
    for c in [&guarded, &plain] {
        c.dependency.failing.store(false, Relaxed);
    }
    let drained = wait_until(Duration::from_secs(10), || {
        done(&guarded) == 200 && done(&plain) == 200
    })
    .await;
    assert!(
        drained.is_some(),
        "drained {} and {}",
        done(&guarded),
        done(&plain)
    );
    for c in [&guarded, &plain] {
        assert_eq!(c.stats.duplicates.load(Relaxed), 0);
        assert_eq!(c.stats.processed.load(Relaxed), 200);
    }
    let redelivered = guarded.stats.redeliveries.load(Relaxed);
    assert!(
        redelivered <= 20,
        "{redelivered} redeliveries with a breaker"
    );
    stop.store(true, Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_buffers_within_its_bound_while_the_broker_is_down_and_sends_everything_after()
{
    let Some(mut server) = RabbitServer::start("queue broker down") else {
        return;
    };
    let b = breaker(3, Duration::from_millis(300));
    let publisher = Arc::new(Publisher::new(
        server.url(),
        "orders",
        Some(b.clone()),
        1_000,
    ));
    for id in 0..50 {
        assert_eq!(publisher.publish(id).await, Published::Sent);
    }
    server = tokio::task::spawn_blocking(move || {
        // The queue as a broker that has run a while holds it: its declaration on disk (a
        // node killed before that loses the queue and the 50 messages confirmed into it).
        assert!(
            server.declaration_on_disk("orders", Duration::from_secs(10)),
            "the broker never wrote the queue's declaration"
        );
        server.kill();
        server
    })
    .await
    .unwrap();
    // While it is down: no publish waits longer than its deadline, and once the breaker is open
    // a publish returns at once.
    let mut took = Vec::new();
    for id in 50..550 {
        let t = Instant::now();
        assert_eq!(publisher.publish(id).await, Published::Buffered);
        took.push(t.elapsed());
    }
    assert!(
        took.iter().all(|t| *t < Duration::from_secs(2)),
        "{:?}",
        took.iter().max()
    );
    let mut fast = took[10..].to_vec();
    fast.sort();
    assert!(
        fast[fast.len() * 99 / 100] < Duration::from_millis(1),
        "p99 {:?}",
        fast[fast.len() * 99 / 100]
    );
    // A full buffer refuses at once.
    let small = Publisher::new(server.url(), "orders", Some(b.clone()), 10);
    let outcomes: Vec<Published> = futures_collect(&small, 100..120).await;
    assert_eq!(
        outcomes
            .iter()
            .filter(|o| **o == Published::Refused)
            .count(),
        10
    );
    // Back (with its data): the buffer goes out in order, nothing lost.
    let server = tokio::task::spawn_blocking(move || {
        server.start_again(false);
        server
    })
    .await
    .unwrap();
    let p = publisher.clone();
    let sent = wait_until(Duration::from_secs(10), move || {
        p.buffered() == 0 && p.stats.sent.load(Relaxed) == 550
    });
    let flusher = {
        let p = publisher.clone();
        tokio::spawn(async move {
            for _ in 0..500 {
                p.flush().await;
                if p.buffered() == 0 {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    assert!(
        sent.await.is_some(),
        "{} still buffered",
        publisher.buffered()
    );
    flusher.await.unwrap();
    let confirmed = publisher.stats.confirmed.lock().unwrap().clone();
    assert_eq!(
        confirmed,
        (0..550).collect::<Vec<u64>>(),
        "sent out of order or twice"
    );
    // And a consumer finds every one of them in the queue (persistent, durable).
    let c = consumer(&server, "orders", None);
    let stop = Arc::new(AtomicBool::new(false));
    let task = {
        let (c, stop) = (c.clone(), stop.clone());
        tokio::spawn(async move { c.run(&stop).await })
    };
    assert!(
        wait_until(Duration::from_secs(10), || done(&c) == 550)
            .await
            .is_some(),
        "{} of 550 consumed, {} deliveries; missing: {:?}",
        done(&c),
        c.stats.deliveries.load(Relaxed),
        missing(&c, 550)
    );
    stop.store(true, Relaxed);
    task.await.unwrap();
}

async fn futures_collect(p: &Publisher, ids: std::ops::Range<u64>) -> Vec<Published> {
    let mut out = Vec::new();
    for id in ids {
        out.push(p.publish(id).await);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restarted_without_the_queue_gets_it_back_and_consumption_goes_on() {
    let Some(mut server) = RabbitServer::start("queue restarted fresh") else {
        return;
    };
    let c = consumer(
        &server,
        "events",
        Some(breaker(5, Duration::from_millis(500))),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let task = {
        let (c, stop) = (c.clone(), stop.clone());
        tokio::spawn(async move { c.run(&stop).await })
    };
    let publisher = Publisher::new(server.url(), "events", None, 0);
    for id in 0..100 {
        assert_eq!(publisher.publish(id).await, Published::Sent);
    }
    assert!(
        wait_until(Duration::from_secs(10), || done(&c) == 100)
            .await
            .is_some()
    );
    // Killed, and back with no state at all: no queue, no messages.
    server = tokio::task::spawn_blocking(move || {
        server.kill();
        server.start_again(true);
        server
    })
    .await
    .unwrap();
    // The consumer declared its queue again: what is published now reaches it.
    let publisher = Publisher::new(server.url(), "events", None, 0);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut id = 100;
    while id < 200 {
        match publisher.publish(id).await {
            Published::Sent => id += 1,
            _ => {
                assert!(
                    Instant::now() < deadline,
                    "could not publish after the restart"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    assert!(
        wait_until(Duration::from_secs(10), || done(&c) == 200)
            .await
            .is_some(),
        "{} done after the restart",
        done(&c)
    );
    assert!(c.stats.connections.load(Relaxed) >= 2);
    assert_eq!(c.stats.duplicates.load(Relaxed), 0);
    stop.store(true, Relaxed);
    task.await.unwrap();
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_isolated_breaker_keeps_the_consumer_away_and_stop_is_seen_under_a_steady_stream() {
    let Some(server) = RabbitServer::start("queue isolated and stop") else {
        return;
    };
    let b = breaker(5, Duration::from_millis(500));
    let guarded = consumer(&server, "isolated", Some(b.clone()));
    let publisher = Publisher::new(server.url(), "isolated", None, 0);
    for id in 0..10 {
        assert_eq!(publisher.publish(id).await, Published::Sent);
    }
    b.isolate();
    let stop = Arc::new(AtomicBool::new(false));
    let task = {
        let (c, stop) = (guarded.clone(), stop.clone());
        tokio::spawn(async move { c.run(&stop).await })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    let deliveries = guarded.stats.deliveries.load(Relaxed);
    assert!(
        deliveries <= 1,
        "{deliveries} deliveries to a consumer whose breaker is isolated"
    );
    b.reset();
    assert!(
        wait_until(Duration::from_secs(10), || done(&guarded) == 10)
            .await
            .is_some()
    );
    stop.store(true, Relaxed);
    task.await.unwrap();

    // Without a breaker and with a failing dependency, messages never stop coming: `stop` is
    // still seen at the next one.
    let plain = consumer(&server, "isolated", None);
    plain.dependency.failing.store(true, Relaxed);
    for id in 10..15 {
        assert_eq!(publisher.publish(id).await, Published::Sent);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let task = {
        let (c, stop) = (plain.clone(), stop.clone());
        tokio::spawn(async move { c.run(&stop).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        plain.stats.deliveries.load(Relaxed) > 20,
        "no steady stream to stop"
    );
    stop.store(true, Relaxed);
    let stopped = tokio::time::timeout(Duration::from_secs(3), task).await;
    assert!(stopped.is_ok(), "the consumer did not stop within 3 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishes_send_each_message_once() {
    let Some(server) = RabbitServer::start("queue concurrent publishes") else {
        return;
    };
    let publisher = Arc::new(Publisher::new(
        server.url(),
        "many",
        Some(breaker(3, Duration::from_millis(300))),
        10_000,
    ));
    let mut tasks = Vec::new();
    for k in 0..4u64 {
        let p = publisher.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..100 {
                assert_ne!(p.publish(k * 1_000 + i).await, Published::Refused);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    publisher.flush().await;
    assert_eq!(publisher.buffered(), 0);
    let mut confirmed = publisher.stats.confirmed.lock().unwrap().clone();
    assert_eq!(confirmed.len(), 400, "confirmed {} of 400", confirmed.len());
    // Each caller's messages in its own order.
    for k in 0..4u64 {
        let mine: Vec<u64> = confirmed
            .iter()
            .copied()
            .filter(|id| id / 1_000 == k)
            .collect();
        assert!(
            mine.windows(2).all(|w| w[0] < w[1]),
            "caller {k} out of order"
        );
    }
    confirmed.sort_unstable();
    confirmed.dedup();
    assert_eq!(confirmed.len(), 400, "a message sent twice");
}
