//! A RabbitMQ consumer handing each message to a flaky dependency, with and without a breaker,
//! and a publisher guarded by its own breaker, against a real broker on a loopback port:
//! healthy → the dependency fails (5 s) → healthy → the broker is killed (3 s) and comes back
//! with its data → healthy until every message is handled.
//!
//! The publisher sends 100 persistent messages a second to each of two queues; one consumer
//! pauses consumption while its breaker is Open (5 failures in a row, open 1 s, one probe), the
//! other puts failed messages straight back. Prints per phase: dependency calls, deliveries,
//! redeliveries and messages handled per consumer, and the publisher's sent, buffered and
//! refused messages and its slowest publish; then, per consumer, the messages handled (and
//! handled twice: an acknowledgement lost when the broker was killed), lost, redelivered, and
//! how long after the dependency recovered it caught up with the publisher. Runs about 30 s.
//!
//! ```text
//! cargo run --release -p hotbreaker-integration --example queue
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::{Duration, Instant};

use hotbreaker::Breaker;
use hotbreaker_integration::queue::{Consumer, ConsumerStats, Dependency, Publisher, wait_until};
use hotbreaker_integration::rabbitmq::RabbitServer;

/// (phase, seconds). The broker is killed when "broker down" begins and started again (with its
/// data) at once; a RabbitMQ node takes about 6 s to start here, so it serves again during
/// that phase, at the moment printed.
const PHASES: [(&str, u64); 5] = [
    ("healthy", 3),
    ("dependency failing", 5),
    ("healthy", 6),
    ("broker down", 8),
    ("broker back", 4),
];

fn breaker(k: u32, open: Duration) -> Arc<Breaker> {
    Arc::new(
        Breaker::builder()
            .consecutive_failures(k)
            .open_timeout(open)
            .half_open_permits(1)
            .half_open_successes(1)
            .build()
            .expect("valid configuration"),
    )
}

#[derive(Clone, Copy, Default)]
struct Snapshot {
    calls: u64,
    deliveries: u64,
    redeliveries: u64,
    processed: u64,
}

fn snapshot(c: &Consumer) -> Snapshot {
    Snapshot {
        calls: c.dependency.calls.load(Relaxed),
        deliveries: c.stats.deliveries.load(Relaxed),
        redeliveries: c.stats.redeliveries.load(Relaxed),
        processed: c.stats.processed.load(Relaxed),
    }
}

#[tokio::main]
async fn main() {
    let Some(server) = RabbitServer::start("example queue") else {
        return;
    };
    let url = server.url();
    let consumers: Vec<(&str, Arc<Consumer>)> = vec![
        (
            "breaker",
            Arc::new(Consumer {
                url: url.clone(),
                queue: "guarded".into(),
                breaker: Some(breaker(5, Duration::from_secs(1))),
                dependency: Arc::new(Dependency::default()),
                stats: ConsumerStats::default(),
            }),
        ),
        (
            "no breaker",
            Arc::new(Consumer {
                url: url.clone(),
                queue: "plain".into(),
                breaker: None,
                dependency: Arc::new(Dependency::default()),
                stats: ConsumerStats::default(),
            }),
        ),
    ];
    let publishers: Vec<Arc<Publisher>> = ["guarded", "plain"]
        .iter()
        .map(|q| {
            Arc::new(Publisher::new(
                url.clone(),
                q,
                Some(breaker(3, Duration::from_millis(500))),
                5_000,
            ))
        })
        .collect();
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for (_, c) in &consumers {
        let (c, stop) = (c.clone(), stop.clone());
        tasks.push(tokio::spawn(async move { c.run(&stop).await }));
    }
    // The publisher: 100 messages a second to each queue, timing each publish.
    let start = Instant::now();
    let total = Duration::from_secs(PHASES.iter().map(|p| p.1).sum());
    let slowest = Arc::new(std::sync::Mutex::new(vec![Duration::ZERO; PHASES.len()]));
    let phase_at = |t: Duration| {
        let mut end = 0;
        PHASES
            .iter()
            .position(|p| {
                end += p.1;
                t < Duration::from_secs(end)
            })
            .unwrap_or(PHASES.len() - 1)
    };
    let load = {
        let (publishers, slowest) = (publishers.clone(), slowest.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            let mut id = 0u64;
            while start.elapsed() < total {
                tick.tick().await;
                for p in &publishers {
                    let t = Instant::now();
                    p.publish(id).await;
                    let phase = phase_at(start.elapsed());
                    let mut s = slowest.lock().unwrap();
                    s[phase] = s[phase].max(t.elapsed());
                }
                id += 1;
            }
            id
        })
    };

    // After the dependency recovers: when each consumer has caught up with what was confirmed.
    let recovered = Arc::new(AtomicBool::new(false));
    let caught_up = {
        let (consumers, publishers, recovered) =
            (consumers.clone(), publishers.clone(), recovered.clone());
        tokio::spawn(async move {
            while !recovered.load(Relaxed) {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let from = Instant::now();
            let mut at: Vec<Option<Duration>> = vec![None; consumers.len()];
            while at.iter().any(Option::is_none) && from.elapsed() < Duration::from_secs(30) {
                for (k, ((_, c), p)) in consumers.iter().zip(&publishers).enumerate() {
                    let confirmed = p.stats.sent.load(Relaxed) as usize;
                    if at[k].is_none() && c.stats.done.lock().unwrap().len() >= confirmed {
                        at[k] = Some(from.elapsed());
                    }
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            at
        })
    };
    let mut server = Some(server);
    let mut restart = None;
    let mut at_phase = Vec::new();
    let mut boundary = Duration::ZERO;
    for (i, (name, secs)) in PHASES.iter().enumerate() {
        at_phase.push((
            consumers
                .iter()
                .map(|(_, c)| snapshot(c))
                .collect::<Vec<_>>(),
            publishers
                .iter()
                .map(|p| {
                    (
                        p.stats.sent.load(Relaxed),
                        p.stats.buffered.load(Relaxed),
                        p.stats.refused.load(Relaxed),
                    )
                })
                .collect::<Vec<_>>(),
        ));
        match *name {
            "dependency failing" => consumers
                .iter()
                .for_each(|(_, c)| c.dependency.failing.store(true, Relaxed)),
            "healthy" if i > 0 => {
                consumers
                    .iter()
                    .for_each(|(_, c)| c.dependency.failing.store(false, Relaxed));
                recovered.store(true, Relaxed);
            }
            "broker down" => {
                let mut s = server.take().unwrap();
                restart = Some(tokio::task::spawn_blocking(move || {
                    s.kill();
                    let killed = start.elapsed();
                    s.start_again(false);
                    (s, killed, start.elapsed())
                }));
            }
            _ => {}
        }
        boundary += Duration::from_secs(*secs);
        tokio::time::sleep_until((start + boundary).into()).await;
    }
    let published = load.await.unwrap();
    let (server, killed, back) = restart.unwrap().await.unwrap();
    at_phase.push((
        consumers.iter().map(|(_, c)| snapshot(c)).collect(),
        publishers
            .iter()
            .map(|p| {
                (
                    p.stats.sent.load(Relaxed),
                    p.stats.buffered.load(Relaxed),
                    p.stats.refused.load(Relaxed),
                )
            })
            .collect(),
    ));
    // Flush what the publishers still hold, then let the consumers drain.
    for p in &publishers {
        let p = p.clone();
        wait_until(Duration::from_secs(20), || p.buffered() == 0).await;
        while p.buffered() > 0 {
            p.flush().await;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let caught_up = caught_up.await.unwrap();
    let mut drained = Vec::new();
    for (k, ((_, c), p)) in consumers.iter().zip(&publishers).enumerate() {
        let confirmed: Vec<u64> = p.stats.confirmed.lock().unwrap().clone();
        let c2 = c.clone();
        let n = confirmed.len();
        wait_until(Duration::from_secs(30), move || {
            c2.stats.done.lock().unwrap().len() >= n
        })
        .await;
        let done = c.stats.done.lock().unwrap();
        let lost = confirmed.iter().filter(|id| !done.contains(id)).count();
        drained.push((caught_up[k], lost, n));
    }
    stop.store(true, Relaxed);
    for t in tasks {
        let _ = t.await;
    }

    println!(
        "{:<19} {:<10} {:>9} {:>10} {:>12} {:>8}   {:>6} {:>8} {:>7} {:>9}",
        "phase",
        "consumer",
        "dep calls",
        "deliveries",
        "redeliveries",
        "handled",
        "sent",
        "buffered",
        "refused",
        "slowest"
    );
    for (i, (name, _)) in PHASES.iter().enumerate() {
        for (k, (cname, _)) in consumers.iter().enumerate() {
            let (a, b) = (at_phase[i].0[k], at_phase[i + 1].0[k]);
            let (pa, pb) = (at_phase[i].1[k], at_phase[i + 1].1[k]);
            println!(
                "{:<19} {:<10} {:>9} {:>10} {:>12} {:>8}   {:>6} {:>8} {:>7} {:>9}",
                name,
                cname,
                b.calls - a.calls,
                b.deliveries - a.deliveries,
                b.redeliveries - a.redeliveries,
                b.processed - a.processed,
                pb.0 - pa.0,
                pb.1 - pa.1,
                pb.2 - pa.2,
                if k == 0 {
                    format!("{:.1?}", slowest.lock().unwrap()[i])
                } else {
                    String::new()
                },
            );
        }
    }
    drop(server);
    println!(
        "\n{published} messages published to each queue ('slowest': the slowest publish of the phase, both queues); \
         the broker was killed at {:.1} s and served again at {:.1} s",
        killed.as_secs_f64(),
        back.as_secs_f64()
    );
    for ((cname, c), (since, lost, confirmed)) in consumers.iter().zip(drained) {
        println!(
            "{cname:<10}: {} handled ({} twice), {lost} of {confirmed} confirmed messages lost, {} redeliveries in all; caught up with the publisher {} after the dependency recovered",
            c.stats.done.lock().unwrap().len(),
            c.stats.duplicates.load(Relaxed),
            c.stats.redeliveries.load(Relaxed),
            since.map_or("never (30 s)".to_owned(), |d| format!(
                "{:.2} s",
                d.as_secs_f64()
            )),
        );
    }
}
