//! A service reading from Postgres through a connection pool (sqlx), with and without a breaker,
//! against a real server on a loopback port that goes through four bad moments: healthy → stopped
//! (connections refused) → back → hung (`SIGSTOP` on the server and its backends: nothing answers)
//! → back.
//!
//! Two copies of the service run side by side on the same schedule, each with its own pool of 10
//! connections (acquire timeout 250 ms) and a 250 ms query deadline: one calls the database
//! directly, one through a breaker (5 failures in a row, or half of at least 20 calls in 10 s;
//! open 2 s; one probe). A pool that cannot hand out a connection in time counts as a Failure;
//! a constraint violation would be `Ignored` (see docs/scenarios.md). Each sends 100 requests a
//! second. Prints per phase: requests answered, failed and rejected, time to answer (p50 / p99,
//! and p99 of the rejected ones), pool connections in use (mean / max, and the share of samples
//! with every connection in use), queries that reached the database, and how long after
//! the server came back the first request was answered. Runs about 20 s.
//!
//! ```text
//! cargo run --release -p hotbreaker-integration --example database
//! ```

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hotbreaker::Breaker;
use hotbreaker_integration::database::classify;
use hotbreaker_integration::postgres::PgServer;
use sqlx::postgres::{PgPool, PgPoolOptions};

const POOL: u32 = 10;
const ACQUIRE_TIMEOUT: Duration = Duration::from_millis(250);
const QUERY_TIMEOUT: Duration = Duration::from_millis(250);
const OPEN: Duration = Duration::from_secs(2);
const EVERY: Duration = Duration::from_millis(10);

/// (phase, length)
const PHASES: [(&str, Duration); 5] = [
    ("healthy", Duration::from_secs(3)),
    ("stopped", Duration::from_secs(4)),
    ("back", Duration::from_secs(4)),
    ("hung", Duration::from_secs(4)),
    ("back again", Duration::from_secs(4)),
];

#[derive(Debug, Default, Clone)]
struct Phase {
    ok: u64,
    failed: u64,
    rejected: u64,
    reached: u64,
    latencies_us: Vec<u64>,
    /// Of the requests the breaker turned away.
    rejected_us: Vec<u64>,
    in_use: Vec<u32>,
    first_ok: Option<Duration>,
}

/// What one copy of the service saw, per phase.
struct Service {
    name: &'static str,
    pool: PgPool,
    breaker: Option<Arc<Breaker>>,
    phases: Mutex<Vec<Phase>>,
}

/// How a request went.
enum Answer {
    Ok,
    Failed,
    Rejected,
}

impl Service {
    async fn query(&self, id: i32, phase: usize) -> Result<String, sqlx::Error> {
        let mut conn = self.pool.acquire().await?;
        self.phases.lock().unwrap()[phase].reached += 1;
        match tokio::time::timeout(
            QUERY_TIMEOUT,
            sqlx::query_scalar::<_, String>("SELECT name FROM items WHERE id = $1")
                .bind(id)
                .fetch_one(&mut *conn),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => {
                // The connection is mid-query: close it rather than return it to the pool.
                conn.close_on_drop();
                Err(sqlx::Error::PoolTimedOut)
            }
        }
    }

    async fn request(&self, id: i32, phase: usize) -> Answer {
        match &self.breaker {
            None => match self.query(id, phase).await {
                Ok(_) => Answer::Ok,
                Err(_) => Answer::Failed,
            },
            Some(b) => {
                let Ok(permit) = b.try_acquire_owned() else {
                    return Answer::Rejected;
                };
                match self.query(id, phase).await {
                    Ok(_) => {
                        permit.success();
                        Answer::Ok
                    }
                    Err(e) => {
                        permit.record(classify(&e));
                        Answer::Failed
                    }
                }
            }
        }
    }
}

fn phase_at(t: Duration) -> usize {
    let mut end = Duration::ZERO;
    for (i, (_, len)) in PHASES.iter().enumerate() {
        end += *len;
        if t < end {
            return i;
        }
    }
    PHASES.len() - 1
}

/// When phase `i` starts.
fn phase_start(i: usize) -> Duration {
    PHASES[..i].iter().map(|p| p.1).sum()
}

fn percentile(sorted: &[u64], q: f64) -> String {
    if sorted.is_empty() {
        return "-".into();
    }
    let us = sorted[((sorted.len() - 1) as f64 * q) as usize];
    if us < 1_000 {
        format!("{us}µs")
    } else {
        format!("{:.1}ms", us as f64 / 1e3)
    }
}

#[tokio::main]
async fn main() {
    let Some(mut server) = PgServer::start("example database") else {
        return;
    };
    let _upkeep = hotbreaker::start_upkeep(Duration::from_millis(1));
    let setup = PgPoolOptions::new()
        .max_connections(1)
        .connect(&server.url())
        .await
        .unwrap();
    sqlx::query("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)")
        .execute(&setup)
        .await
        .unwrap();
    sqlx::query("INSERT INTO items SELECT i, 'item ' || i FROM generate_series(1, 1000) i")
        .execute(&setup)
        .await
        .unwrap();
    setup.close().await;

    let pool = || {
        PgPoolOptions::new()
            .max_connections(POOL)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_lazy(&server.url())
            .unwrap()
    };
    let breaker = Breaker::builder()
        .consecutive_failures(5)
        .failure_rate(0.5)
        .minimum_calls(20)
        .time_window(Duration::from_secs(10), 10)
        .open_timeout(OPEN)
        .half_open_permits(1)
        .half_open_successes(1)
        .build()
        .unwrap();
    let services: Vec<Arc<Service>> = vec![
        Arc::new(Service {
            name: "no breaker",
            pool: pool(),
            breaker: None,
            phases: Mutex::new(vec![Phase::default(); PHASES.len()]),
        }),
        Arc::new(Service {
            name: "breaker",
            pool: pool(),
            breaker: Some(Arc::new(breaker)),
            phases: Mutex::new(vec![Phase::default(); PHASES.len()]),
        }),
    ];

    let start = Instant::now();
    let total: Duration = PHASES.iter().map(|p| p.1).sum();
    let mut boundaries: Vec<Duration> = Vec::new();
    let mut acc = Duration::ZERO;
    for (_, len) in PHASES {
        acc += len;
        boundaries.push(acc);
    }

    // The load: one request per service every 10 ms, each on a task of its own.
    let load = {
        let services = services.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(EVERY);
            let mut n = 0i32;
            while start.elapsed() < total {
                tick.tick().await;
                n = n % 1000 + 1;
                for s in &services {
                    let s = s.clone();
                    tokio::spawn(async move {
                        let began = Instant::now();
                        let phase = phase_at(began - start);
                        let answer = s.request(n, phase).await;
                        let took = began.elapsed();
                        let mut phases = s.phases.lock().unwrap();
                        let p = &mut phases[phase];
                        p.latencies_us.push(took.as_micros() as u64);
                        match answer {
                            Answer::Ok => {
                                p.ok += 1;
                                let since = began - start - phase_start(phase);

                                if p.first_ok.is_none_or(|f| since < f) {
                                    p.first_ok = Some(since);
                                }
                            }
                            Answer::Failed => p.failed += 1,
                            Answer::Rejected => {
                                p.rejected += 1;
                                p.rejected_us.push(took.as_micros() as u64);
                            }
                        }
                    });
                }
            }
        })
    };
    // The pool sampler: connections in use every 20 ms.
    let sampler = {
        let services = services.clone();
        tokio::spawn(async move {
            while start.elapsed() < total {
                let phase = phase_at(start.elapsed());
                for s in &services {
                    let in_use = s.pool.size() - s.pool.num_idle() as u32;
                    s.phases.lock().unwrap()[phase].in_use.push(in_use);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    // The faults, at the phase boundaries (blocking work off the runtime's threads).
    let until = |t: Duration| tokio::time::sleep_until((start + t).into());
    until(boundaries[0]).await;
    server = tokio::task::spawn_blocking(move || {
        server.stop();
        server
    })
    .await
    .unwrap();
    until(boundaries[1]).await;
    server = tokio::task::spawn_blocking(move || {
        server.start_again();
        server
    })
    .await
    .unwrap();
    until(boundaries[2]).await;
    server.freeze();
    until(boundaries[3]).await;
    server.thaw();
    load.await.unwrap();
    sampler.await.unwrap();
    // Requests still in flight finish within the deadlines.
    tokio::time::sleep(ACQUIRE_TIMEOUT + QUERY_TIMEOUT + Duration::from_millis(200)).await;

    println!(
        "{:<11} {:<10} {:>6} {:>6} {:>8} {:>8} {:>8} {:>12} {:>10} {:>9} {:>8} {:>9}",
        "phase",
        "service",
        "ok",
        "failed",
        "rejected",
        "p50",
        "p99",
        "p99 reject",
        "pool use",
        "pool full",
        "reached",
        "first ok"
    );
    for (i, (name, _)) in PHASES.iter().enumerate() {
        for s in &services {
            let p = s.phases.lock().unwrap()[i].clone();
            let mut lat = p.latencies_us.clone();
            lat.sort_unstable();
            let mean =
                p.in_use.iter().map(|&u| f64::from(u)).sum::<f64>() / p.in_use.len().max(1) as f64;
            let max = p.in_use.iter().max().copied().unwrap_or(0);
            let full = p.in_use.iter().filter(|&&u| u >= POOL).count() as f64
                / p.in_use.len().max(1) as f64;
            let mut rejected = p.rejected_us.clone();
            rejected.sort_unstable();
            println!(
                "{:<11} {:<10} {:>6} {:>6} {:>8} {:>8} {:>8} {:>12} {:>10} {:>9} {:>8} {:>9}",
                name,
                s.name,
                p.ok,
                p.failed,
                p.rejected,
                percentile(&lat, 0.5),
                percentile(&lat, 0.99),
                percentile(&rejected, 0.99),
                format!("{mean:.1} / {max}"),
                format!("{:.0} %", full * 100.0),
                p.reached,
                p.first_ok
                    .map_or("-".into(), |d| format!("{} ms", d.as_millis())),
            );
        }
    }
    if let Some(b) = &services[1].breaker {
        let m = b.metrics();
        println!("\nbreaker: {}, opened {} times", m.state, m.times_opened);
    }
}
