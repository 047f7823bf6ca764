//! A fleet of instances that trips together. Starts a redis-server on a loopback port (or uses
//! `$REDIS_URL`), an axum backend that fails on command, and N instances (default 5, `FLEET_N`),
//! each a registry with its own Redis connections, calling the backend at different rates: the
//! last one at 1 % of the others' traffic. The same schedule runs twice, without and with the
//! fleet link, and the example prints for each:
//!
//! - the time from the outage's start to the first trip, and from the first trip to every
//!   instance being Open;
//! - the backend calls made during the outage, the low-traffic instance's own among them;
//! - the time from the backend's recovery to every instance being Closed again;
//! - with the link: flushes per instance per second (each one pipeline at this size).
//!
//! A peer's trip opens an instance once a majority of the fleet agrees (the default);
//! `FLEET_QUORUM=N` applies N peers' trips instead (`FLEET_QUORUM=1`: any one peer's).
//!
//! ```text
//! cargo run --release -p hotbreaker-integration --example fleet
//! ```
//!
//! Runs about 16 s.

use std::net::TcpListener as StdListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path, State as AxumState};
use axum::http::StatusCode;
use axum::routing::get;
use hotbreaker::fleet::{Fleet, FleetLink, FleetOptions, FleetRule, Quorum};
use hotbreaker::{Config, Registry, State, Transition};

/// Local rules: a failure rate of 50 % over the last 20 calls, open for 1 s. The fleet rule: the
/// same rate over at least 20 calls of the whole fleet in the last second.
const MINIMUM_CALLS: u32 = 20;
/// The busy instances call every 2.5, 5, 10 and 20 ms (400 to 50 calls/s).
fn busy_every(i: usize) -> Duration {
    Duration::from_micros(2_500 << (i % 4))
}
const QUIET_EVERY: Duration = Duration::from_millis(500); // 2 calls/s: 1 % of a 200/s instance
const HEALTHY: Duration = Duration::from_millis(1_500);
const OUTAGE: Duration = Duration::from_secs(3);
const RECOVERY: Duration = Duration::from_secs(3);

struct Backend {
    down: AtomicBool,
    /// Calls that reached the backend while it was down, per instance.
    outage_calls: Vec<AtomicU64>,
    /// When the low-traffic instance's calls reached it while it was down.
    quiet_calls: Mutex<Vec<Instant>>,
}

async fn handle(AxumState(b): AxumState<Arc<Backend>>, Path(i): Path<usize>) -> StatusCode {
    if b.down.load(Ordering::Relaxed) {
        if let Some(n) = b.outage_calls.get(i) {
            n.fetch_add(1, Ordering::Relaxed);
        }
        if i == b.outage_calls.len() - 1 {
            b.quiet_calls.lock().unwrap().push(Instant::now());
        }
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    }
}

/// One instance: its registry, its link (if any), and when its breaker moved.
struct Instance {
    registry: Arc<Registry>,
    link: Option<FleetLink>,
    transitions: Arc<Mutex<Vec<(Instant, Transition)>>>,
}

fn config() -> Config {
    Config {
        failure_rate: Some(0.5),
        minimum_calls: Some(MINIMUM_CALLS),
        count_window: Some(MINIMUM_CALLS),
        open_timeout: Some(Duration::from_secs(1)),
        half_open_permits: Some(1),
        half_open_successes: Some(1),
        ..Config::default()
    }
}

fn instance(redis: Option<&str>) -> Instance {
    let transitions = Arc::new(Mutex::new(Vec::new()));
    let t = transitions.clone();
    let registry = Registry::new(config())
        .expect("valid config")
        .on_transition(move |_, tr: &Transition| t.lock().unwrap().push((Instant::now(), *tr)));
    let Some(url) = redis else {
        return Instance {
            registry: Arc::new(registry),
            link: None,
            transitions,
        };
    };
    let options = FleetOptions::new(url, "fleet-demo")
        .quorum(quorum())
        .default_rule(
            FleetRule::failure_rate(0.5)
                .minimum_calls(u64::from(MINIMUM_CALLS))
                .window(Duration::from_secs(1), 10),
        );
    let fleet = Fleet::new(options).expect("valid options");
    let registry = Arc::new(fleet.watch(registry));
    let link = fleet.start(registry.clone()).expect("inside tokio");
    Instance {
        registry,
        link: Some(link),
        transitions,
    }
}

/// Calls the backend through the instance's breaker every `every` until `stop`.
async fn drive(i: usize, inst: Arc<Registry>, every: Duration, port: u16, stop: Instant) {
    let client = reqwest::Client::new();
    let breaker = inst.get_or_create("backend");
    let url = format!("http://127.0.0.1:{port}/{i}");
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while Instant::now() < stop {
        tick.tick().await;
        let Ok(permit) = breaker.try_acquire() else {
            continue;
        };
        match client.get(&url).send().await {
            Ok(r) if r.status().is_success() => permit.success(),
            _ => permit.failure(),
        }
    }
}

struct Report {
    first_trip: Option<Duration>,
    all_open: Option<Duration>,
    outage_calls: u64,
    quiet_calls: u64,
    quiet_before_trip: Option<usize>,
    all_closed: Option<Duration>,
    pipelines_per_s: Option<f64>,
}

async fn run(n: usize, redis: Option<&str>, port: u16, backend: &Arc<Backend>) -> Report {
    for c in &backend.outage_calls {
        c.store(0, Ordering::Relaxed);
    }
    backend.quiet_calls.lock().unwrap().clear();
    let instances: Vec<Instance> = (0..n).map(|_| instance(redis)).collect();
    for inst in &instances {
        inst.registry.get_or_create("backend");
    }
    if redis.is_some() {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !instances
            .iter()
            .all(|i| i.link.as_ref().unwrap().status().up())
        {
            assert!(Instant::now() < deadline, "fleet links did not come up");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let flushes0: u64 = instances
        .iter()
        .filter_map(|i| i.link.as_ref())
        .map(|l| l.status().flushes)
        .sum();
    let start = Instant::now();
    let stop = start + HEALTHY + OUTAGE + RECOVERY;
    let tasks: Vec<_> = instances
        .iter()
        .enumerate()
        .map(|(i, inst)| {
            let every = if i == n - 1 {
                QUIET_EVERY
            } else {
                busy_every(i)
            };
            tokio::spawn(drive(i, inst.registry.clone(), every, port, stop))
        })
        .collect();
    tokio::time::sleep(HEALTHY).await;
    backend.down.store(true, Ordering::Relaxed);
    let outage = Instant::now();
    tokio::time::sleep(OUTAGE).await;
    backend.down.store(false, Ordering::Relaxed);
    let recovered = Instant::now();
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let flushes: u64 = instances
        .iter()
        .filter_map(|i| i.link.as_ref())
        .map(|l| l.status().flushes)
        .sum();

    // The first time each instance was Open after the outage began, and the last time it closed
    // after the recovery.
    let opened: Vec<Option<Instant>> = instances
        .iter()
        .map(|i| {
            let t = i.transitions.lock().unwrap();
            t.iter()
                .find(|(at, tr)| *at >= outage && tr.to == State::Open)
                .map(|(at, _)| *at)
        })
        .collect();
    let closed: Vec<Option<Instant>> = instances
        .iter()
        .map(|i| {
            let t = i.transitions.lock().unwrap();
            let last_open = t.iter().rposition(|(_, tr)| tr.to == State::Open);
            match last_open {
                Some(p) => t[p..]
                    .iter()
                    .find(|(at, tr)| *at >= recovered && tr.to == State::Closed)
                    .map(|(at, _)| *at),
                None => Some(recovered),
            }
        })
        .collect();
    let first = opened.iter().flatten().min().copied();
    let all_open = if opened.iter().all(Option::is_some) {
        opened.iter().flatten().max().copied()
    } else {
        None
    };
    let all_closed = if closed.iter().all(Option::is_some) {
        closed.iter().flatten().max().copied()
    } else {
        None
    };
    Report {
        first_trip: first.map(|f| f - outage),
        all_open: all_open.zip(first).map(|(a, f)| a - f),
        outage_calls: backend
            .outage_calls
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum(),
        quiet_calls: backend.outage_calls[n - 1].load(Ordering::Relaxed),
        quiet_before_trip: opened[n - 1].map(|at| {
            let calls = backend.quiet_calls.lock().unwrap();
            calls.iter().filter(|c| **c < at).count()
        }),
        all_closed: all_closed.map(|c| c - recovered),
        pipelines_per_s: redis.map(|_| (flushes - flushes0) as f64 / elapsed / n as f64),
    }
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("never (within the run)".into(), |d| {
        format!("{:.1} ms", d.as_secs_f64() * 1e3)
    })
}

/// A redis-server of our own on a free port, with no persistence, killed on drop.
struct OwnRedis(Child, std::path::PathBuf);

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn start_redis() -> Option<(String, OwnRedis)> {
    let port = StdListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let dir = std::env::temp_dir().join(format!("hotbreaker-fleet-demo-{port}"));
    std::fs::create_dir_all(&dir).ok()?;
    let child = Command::new(std::env::var_os("REDIS_SERVER").unwrap_or("redis-server".into()))
        .args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let own = OwnRedis(child, dir);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Some((format!("redis://127.0.0.1:{port}"), own))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("FLEET_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5)
        .max(2);
    let (url, _own) = match std::env::var("REDIS_URL") {
        Ok(url) => (url, None),
        Err(_) => match start_redis() {
            Some((url, own)) => (url, Some(own)),
            None => {
                println!(
                    "redis-server not found: install it (apt-get install -y redis-server) or set REDIS_URL"
                );
                return;
            }
        },
    };
    let backend = Arc::new(Backend {
        down: AtomicBool::new(false),
        outage_calls: (0..n).map(|_| AtomicU64::new(0)).collect(),
        quiet_calls: Mutex::new(Vec::new()),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = Router::new()
        .route("/{i}", get(handle))
        .with_state(backend.clone());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let rates: Vec<String> = (0..n - 1)
        .map(|i| format!("{:.0}", 1.0 / busy_every(i).as_secs_f64()))
        .collect();
    println!(
        "{n} instances calling at {} and {:.0} calls/s; failure_rate 0.5 over the last {MINIMUM_CALLS} calls (fleet: over {MINIMUM_CALLS} calls fleet-wide in 1 s); open 1 s",
        rates.join(", "),
        1.0 / QUIET_EVERY.as_secs_f64()
    );
    println!(
        "schedule: {:.1} s healthy, {:.0} s outage, {:.0} s recovery; quorum {:?}; Redis at {url}\n",
        HEALTHY.as_secs_f64(),
        OUTAGE.as_secs_f64(),
        RECOVERY.as_secs_f64(),
        quorum()
    );
    for (label, redis) in [
        ("without the fleet link", None),
        ("with the fleet link", Some(url.as_str())),
    ] {
        let r = run(n, redis, port, &backend).await;
        println!("{label}:");
        println!(
            "  outage start -> first trip:            {}",
            ms(r.first_trip)
        );
        println!(
            "  first trip -> every instance Open:     {}",
            ms(r.all_open)
        );
        println!(
            "  backend calls during the outage:       {} (low-traffic instance: {}; minimum_calls/N = {})",
            r.outage_calls,
            r.quiet_calls,
            MINIMUM_CALLS as usize / n
        );
        match r.quiet_before_trip {
            Some(c) => println!("  low-traffic instance's calls before it was Open: {c}"),
            None => println!("  low-traffic instance: never Open during the outage"),
        }
        println!(
            "  recovery -> every instance Closed:     {}",
            ms(r.all_closed)
        );
        if let Some(p) = r.pipelines_per_s {
            println!(
                "  flushes per instance per s:            {p:.1} (one per 100 ms interval: at most 10)"
            );
        }
        println!();
    }
}

/// The quorum from `FLEET_QUORUM` (a number of peers), a majority by default.
fn quorum() -> Quorum {
    match std::env::var("FLEET_QUORUM").ok().map(|v| v.parse::<u32>()) {
        Some(Ok(n)) => Quorum::Instances(n),
        Some(Err(e)) => {
            eprintln!("FLEET_QUORUM: expected a number of instances ({e}); using a majority");
            Quorum::Majority
        }
        None => Quorum::Majority,
    }
}
