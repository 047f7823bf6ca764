//! A call's cost with the fleet link running, against the same call without it.
//! `cargo bench -p hotbreaker-benches --bench fleet --features fleet` (starts a redis-server on a
//! loopback port; skipped without one).
//!
//! - `fleet/acquire+success/without-link`: a registry breaker, Closed, every call succeeds.
//! - `fleet/acquire+success/with-link`: the same, in a registry whose fleet link runs on a
//!   tokio runtime in the background, flushing every 10 ms (ten times the default rate) with a
//!   fleet rule on the breaker, so the flusher reads its counters throughout.
//!
//! The link adds nothing to a call's code (the flusher reads the counters `metrics()` reads);
//! what this measures is whether its work on other threads shows in a call's time.

use std::hint::black_box;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use hotbreaker::fleet::{Fleet, FleetOptions, FleetRule};
use hotbreaker::{Registry, State};

struct Server(Child, std::path::PathBuf);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn redis_server() -> Option<(String, Server)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .ok()?
        .local_addr()
        .ok()?
        .port();
    let dir = std::env::temp_dir().join(format!("hotbreaker-fleet-bench-{port}"));
    std::fs::create_dir_all(&dir).ok()?;
    let child = Command::new(std::env::var_os("REDIS_SERVER").unwrap_or("redis-server".into()))
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
        .args(["--save", "", "--appendonly", "no"])
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let server = Server(child, dir);
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Some((format!("redis://127.0.0.1:{port}"), server))
}

fn fleet(c: &mut Criterion) {
    let Some((url, _server)) = redis_server() else {
        eprintln!(
            "SKIPPED: redis-server not found (install it, or run bash .ci/run which installs it)"
        );
        return;
    };
    let mut g = c.benchmark_group("fleet");
    g.throughput(Throughput::Elements(1));

    let plain = Registry::default();
    let b = plain.get_or_create("db");
    g.bench_function("acquire+success/without-link", |bench| {
        bench.iter(|| black_box(&b).try_acquire().unwrap().success());
        assert_eq!(b.state(), State::Closed);
    });

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let options = FleetOptions::new(url, "checkout")
        .flush_interval(Duration::from_millis(10))
        .default_rule(FleetRule::failure_rate(0.5));
    let fleet = Fleet::new(options).unwrap();
    let registry = Arc::new(fleet.watch(Registry::default()));
    let b = registry.get_or_create("db");
    let link = {
        let _guard = runtime.enter();
        fleet.start(registry.clone()).unwrap()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !link.status().up() {
        assert!(Instant::now() < deadline, "the link did not come up");
        std::thread::sleep(Duration::from_millis(10));
    }
    let flushes = link.status().flushes;
    g.bench_function("acquire+success/with-link", |bench| {
        bench.iter(|| black_box(&b).try_acquire().unwrap().success());
        assert_eq!(b.state(), State::Closed);
    });
    let status = link.status();
    assert!(status.up(), "the link stayed up: {status:?}");
    eprintln!(
        "fleet link during the with-link run: {} flushes, last round trip {:?}",
        status.flushes - flushes,
        status.last_flush_latency
    );
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = fleet
}
criterion_main!(benches);
