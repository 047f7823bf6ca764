//! The deployed alert rules and dashboard against a real Prometheus and a real Alertmanager: a
//! Prometheus loads `deploy/prometheus/alerts.yml` and scrapes the Prometheus example's
//! `/metrics` (on loopback, every second) while a breaker's upstream fails and recovers; its
//! Alertmanager delivers `CircuitBreakerOpen` to a webhook in this test, firing and then
//! resolved; then every panel's query of `deploy/grafana/hotbreaker.json` is run against that
//! Prometheus and must return the breaker's series.
//!
//! Needs `prometheus` and `prometheus-alertmanager` (or `alertmanager`) on `PATH` (Debian:
//! `apt-get install prometheus prometheus-alertmanager`). Without them the test prints a loud
//! `SKIPPED` line and passes, unless `HOTBREAKER_REQUIRE_PROMETHEUS=1` (as `.ci/run` sets it).

#[allow(dead_code)] // the example's main and its breakers are not used here
#[path = "../examples/prometheus.rs"]
mod example;

use std::fs::File;
use std::io::Write;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State as AxumState;
use axum::routing::post;
use hotbreaker::{Registry, State};
use metrics_exporter_prometheus::PrometheusBuilder;
use serde_json::Value;

/// The longest each phase may take before the test fails, naming the phase.
const PHASE: Duration = Duration::from_secs(120);

/// `upstream` is the dependency the test fails and heals: three failures open it for 1 s, its
/// probes then reopen it while the upstream fails (so it stays Open or HalfOpen, rejecting calls,
/// for as long as the test keeps it failing) and close it once the upstream answers again.
/// `steady` only succeeds: no alert may name it.
const BREAKERS: &str = r#"
strict = true

[default]
consecutive_failures = 3
open_timeout = "1s"

[breakers.upstream]
critical = true

[breakers.steady]
"#;

const JOB: &str = "hotbreaker";

fn read(path: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// Both servers' binaries; `None` after a loud `SKIPPED` line when one is missing (a panic
/// instead under `HOTBREAKER_REQUIRE_PROMETHEUS=1`).
fn binaries_or_skip(test: &str) -> Option<(PathBuf, PathBuf)> {
    let prometheus = on_path(&["prometheus"]);
    let alertmanager = on_path(&["prometheus-alertmanager", "alertmanager"]);
    if let (Some(p), Some(a)) = (&prometheus, &alertmanager) {
        return Some((p.clone(), a.clone()));
    }
    let missing = [
        prometheus.is_none().then_some("prometheus"),
        alertmanager.is_none().then_some("prometheus-alertmanager"),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(" and ");
    if std::env::var("HOTBREAKER_REQUIRE_PROMETHEUS").as_deref() == Ok("1") {
        panic!(
            "{missing} not found [{test}], and HOTBREAKER_REQUIRE_PROMETHEUS=1 forbids skipping \
             (install {missing}, or run bash .ci/run which installs them)"
        );
    }
    // Straight to the process's stderr, past the test harness's capture.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: {missing} not found (install {missing}, or run bash .ci/run which installs \
         them) [{test}]"
    );
    None
}

/// Two distinct loopback ports nothing listens on right now (both held until both are known).
fn free_ports() -> (u16, u16) {
    let bind = || TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let (a, b) = (bind(), bind());
    (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    )
}

/// A directory of the test's own, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        let dir = std::env::temp_dir().join(format!("hotbreaker-alerting-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A server process, its output in a log file: killed on drop, and its log printed when the
/// test is failing.
struct Server {
    name: &'static str,
    child: Mutex<Child>,
    log: PathBuf,
}

impl Server {
    fn spawn(name: &'static str, binary: &Path, args: &[String], dir: &TempDir) -> Server {
        let log = dir.0.join(format!("{name}.log"));
        let out = File::create(&log).expect("log file");
        let child = Command::new(binary)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", binary.display()));
        Server {
            name,
            child: Mutex::new(child),
            log,
        }
    }

    /// Fails at once (rather than at a phase's deadline) when the server has exited.
    fn assert_running(&self, what: &str) {
        let mut child = self.child.lock().unwrap();
        if let Some(status) = child.try_wait().expect("try_wait") {
            panic!("{} exited ({status}) while waiting for {what}", self.name);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap_or_else(|e| e.into_inner());
        let _ = child.kill();
        let _ = child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!(
                "----- {} log ({}) -----\n{log}----- end of {} log -----",
                self.name,
                self.log.display(),
                self.name
            );
        }
    }
}

/// The webhook Alertmanager notifies: every request body it received, printed when the test is
/// failing.
#[derive(Default)]
struct Webhook(Arc<Mutex<Vec<String>>>);

impl Webhook {
    async fn serve(&self) -> SocketAddr {
        let app = Router::new()
            .route(
                "/alerts",
                post(
                    |AxumState(received): AxumState<Arc<Mutex<Vec<String>>>>, body: String| async move {
                        received.lock().unwrap().push(body);
                    },
                ),
            )
            .with_state(self.0.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    }

    /// Every alert of every notification so far, in order.
    fn alerts(&self) -> Vec<Value> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .flat_map(|body| {
                let n: Value = serde_json::from_str(body)
                    .unwrap_or_else(|e| panic!("a notification that is not JSON ({e}): {body}"));
                n["alerts"].as_array().cloned().unwrap_or_default()
            })
            .collect()
    }

    /// The first `CircuitBreakerOpen` alert notified for breaker `name` with `status`.
    fn open_alert(&self, name: &str, status: &str) -> Option<Value> {
        self.alerts().into_iter().find(|a| {
            a["labels"]["alertname"] == "CircuitBreakerOpen"
                && a["labels"]["name"] == name
                && a["status"] == status
        })
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let bodies = self.0.lock().unwrap_or_else(|e| e.into_inner());
            eprintln!("----- notifications received by the webhook -----");
            for body in bodies.iter() {
                eprintln!("{body}");
            }
        }
    }
}

/// The deployed rules with every `for:` duration rewritten to `0s`, and nothing else changed:
/// `CircuitBreakerOpen` waits 5 minutes in production, which a test cannot; its expression, labels
/// and annotations are the file's own.
fn rules_without_for(rules: &str) -> String {
    rules
        .lines()
        .map(|line| {
            let body = line.trim_start();
            if body.starts_with("for:") {
                format!("{}for: 0s\n", &line[..line.len() - body.len()])
            } else {
                format!("{line}\n")
            }
        })
        .collect()
}

/// Every panel's query in the dashboard (panels nested in rows included), with its panel's title.
fn panel_queries(dashboard: &Value) -> Vec<(String, String)> {
    fn walk(panels: &Value, out: &mut Vec<(String, String)>) {
        for panel in panels.as_array().into_iter().flatten() {
            let title = panel["title"].as_str().unwrap_or("?").to_owned();
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(expr) = target["expr"].as_str() {
                    out.push((title.clone(), expr.to_owned()));
                }
            }
            walk(&panel["panels"], out);
        }
    }
    let mut out = Vec::new();
    walk(&dashboard["panels"], &mut out);
    out
}

/// A panel's query as Grafana would send it: the dashboard's template variables match
/// everything (`.*`), Grafana's interval variables are 1 minute. A variable this does not know
/// fails the test.
fn substitute_variables(expr: &str, dashboard: &Value) -> String {
    let mut query = expr.to_owned();
    // Longest names first: `$__interval_ms` before `$__interval`.
    for (var, value) in [
        ("__rate_interval", "1m"),
        ("__interval_ms", "60000"),
        ("__interval", "1m"),
        ("__range", "1m"),
    ] {
        query = query
            .replace(&format!("${{{var}}}"), value)
            .replace(&format!("${var}"), value);
    }
    let variables = dashboard["templating"]["list"].as_array();
    for variable in variables.into_iter().flatten() {
        if variable["type"] == "datasource" {
            continue;
        }
        let name = variable["name"]
            .as_str()
            .expect("a template variable's name");
        query = query
            .replace(&format!("${{{name}}}"), ".*")
            .replace(&format!("${name}"), ".*");
    }
    assert!(
        !query.contains('$'),
        "a Grafana variable this test does not substitute in {expr:?}"
    );
    query
}

/// Polls `check` every 250 ms until it gives a value, failing with `what` after [`PHASE`] (or at
/// once when a server has exited).
async fn until<T>(what: &str, servers: &[&Server], mut check: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PHASE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        for server in servers {
            server.assert_running(what);
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {} s waiting for {what}",
            PHASE.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The JSON body of a GET; `None` while the server does not answer (starting).
async fn get_json(client: &reqwest::Client, url: reqwest::Url) -> Option<Value> {
    let response = client.get(url.clone()).send().await.ok()?;
    let status = response.status();
    let body = response.text().await.ok()?;
    assert!(status.is_success(), "GET {url}: {status}: {body}");
    Some(serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {url}: {e}: {body}")))
}

/// Prometheus's instant query `query`: the series of its vector result.
async fn query(client: &reqwest::Client, prometheus: u16, query: &str) -> Vec<Value> {
    let url = reqwest::Url::parse_with_params(
        &format!("http://127.0.0.1:{prometheus}/api/v1/query"),
        [("query", query)],
    )
    .unwrap();
    let answer = get_json(client, url)
        .await
        .unwrap_or_else(|| panic!("Prometheus did not answer {query}"));
    assert_eq!(answer["status"], "success", "{query}: {answer}");
    assert_eq!(answer["data"]["resultType"], "vector", "{query}: {answer}");
    answer["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// The rule `alert` as Prometheus's `/api/v1/rules` reports it.
async fn rule(client: &reqwest::Client, prometheus: u16, alert: &str) -> Option<Value> {
    let url = reqwest::Url::parse(&format!("http://127.0.0.1:{prometheus}/api/v1/rules")).unwrap();
    let answer = get_json(client, url).await?;
    answer["data"]["groups"]
        .as_array()?
        .iter()
        .flat_map(|g| g["rules"].as_array().into_iter().flatten())
        .find(|r| r["name"] == alert)
        .cloned()
}

async fn ready(client: &reqwest::Client, port: u16) -> bool {
    let url = format!("http://127.0.0.1:{port}/-/ready");
    matches!(client.get(url).send().await, Ok(r) if r.status().is_success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn breaker_open_alert_fires_and_resolves_and_every_panel_has_data() {
    let Some((prometheus_bin, alertmanager_bin)) =
        binaries_or_skip("breaker_open_alert_fires_and_resolves_and_every_panel_has_data")
    else {
        return;
    };
    let started = Instant::now();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();

    // The service: the example's `/metrics` over a registry of our own, and traffic through
    // both breakers every 20 ms, the upstream's outcome set by `failing`.
    let registry = Arc::new(Registry::from_toml(BREAKERS).expect("valid breakers"));
    let service = example::serve(example::Ops {
        registry: registry.clone(),
        prometheus: PrometheusBuilder::new().install_recorder().unwrap(),
    })
    .await;
    let failing = Arc::new(AtomicBool::new(false));
    let traffic = tokio::spawn({
        let (upstream, steady) = (
            registry.breaker("upstream").unwrap(),
            registry.breaker("steady").unwrap(),
        );
        let failing = failing.clone();
        async move {
            let mut tick = tokio::time::interval(Duration::from_millis(20));
            loop {
                tick.tick().await;
                if let Ok(permit) = upstream.try_acquire() {
                    if failing.load(Ordering::SeqCst) {
                        permit.failure();
                    } else {
                        permit.success();
                    }
                }
                if let Ok(permit) = steady.try_acquire() {
                    permit.success();
                }
            }
        }
    });

    let webhook = Webhook::default();
    let hook = webhook.serve().await;

    // Declared before the servers: removed after they are killed (and their logs printed).
    let dir = TempDir::new();
    let (prometheus_port, alertmanager_port) = free_ports();
    let alertmanager_config = dir.write(
        "alertmanager.yml",
        &format!(
            "route:
  receiver: webhook
  group_by: [alertname, name]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 24h
receivers:
  - name: webhook
    webhook_configs:
      - url: http://{hook}/alerts
        send_resolved: true
"
        ),
    );
    let alertmanager = Server::spawn(
        "alertmanager",
        &alertmanager_bin,
        &[
            format!("--config.file={}", alertmanager_config.display()),
            format!(
                "--storage.path={}",
                dir.0.join("alertmanager-data").display()
            ),
            format!("--web.listen-address=127.0.0.1:{alertmanager_port}"),
            // No gossip: a single Alertmanager, nothing listening on its cluster port.
            "--cluster.listen-address=".to_owned(),
        ],
        &dir,
    );
    let rules = dir.write(
        "alerts.yml",
        &rules_without_for(&read("deploy/prometheus/alerts.yml")),
    );
    let prometheus_config = dir.write(
        "prometheus.yml",
        &format!(
            "global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - {rules}
alerting:
  alertmanagers:
    - static_configs:
        - targets: ['127.0.0.1:{alertmanager_port}']
scrape_configs:
  - job_name: {JOB}
    static_configs:
      - targets: ['{service}']
",
            rules = rules.display()
        ),
    );
    let prometheus = Server::spawn(
        "prometheus",
        &prometheus_bin,
        &[
            format!("--config.file={}", prometheus_config.display()),
            format!(
                "--storage.tsdb.path={}",
                dir.0.join("prometheus-data").display()
            ),
            format!("--web.listen-address=127.0.0.1:{prometheus_port}"),
        ],
        &dir,
    );
    let servers = [&prometheus, &alertmanager];

    until(
        "Alertmanager and Prometheus to be ready",
        &servers,
        async || {
            (ready(&client, alertmanager_port).await && ready(&client, prometheus_port).await)
                .then_some(())
        },
    )
    .await;
    let ready_after = started.elapsed();

    // Healthy: Prometheus scrapes the service and evaluates the rule on its series, which does
    // not fire.
    let instance = service.to_string();
    until(
        "Prometheus to scrape the healthy service",
        &servers,
        async || {
            let series = query(
                &client,
                prometheus_port,
                r#"rate(hotbreaker_calls_total{name="upstream",outcome="success"}[10s]) > 0"#,
            )
            .await;
            (series.len() == 1).then_some(())
        },
    )
    .await;
    let seen = rule(&client, prometheus_port, "CircuitBreakerOpen")
        .await
        .expect("the rule CircuitBreakerOpen loaded from alerts.yml");
    let evaluated = until(
        "an evaluation of CircuitBreakerOpen on the scraped series",
        &servers,
        async || {
            let now = rule(&client, prometheus_port, "CircuitBreakerOpen").await?;
            (now["lastEvaluation"] != seen["lastEvaluation"]).then_some(now)
        },
    )
    .await;
    let healthy_after = started.elapsed() - ready_after;
    assert_eq!(evaluated["health"], "ok", "{evaluated}");
    assert_eq!(evaluated["state"], "inactive", "healthy: {evaluated}");
    assert_eq!(evaluated["duration"], 0, "the rewritten `for`: {evaluated}");
    assert!(
        webhook.alerts().is_empty(),
        "alerts while every breaker is healthy: {:?}",
        webhook.alerts()
    );

    // The upstream fails: the breaker opens and rejects, and the alert arrives, firing.
    failing.store(true, Ordering::SeqCst);
    let flipped = Instant::now();
    let firing = until(
        "CircuitBreakerOpen{name=\"upstream\"} to reach the webhook as firing",
        &servers,
        async || webhook.open_alert("upstream", "firing"),
    )
    .await;
    let firing_after = flipped.elapsed();
    assert_eq!(firing["labels"]["job"], JOB, "{firing}");
    assert_eq!(firing["labels"]["instance"], instance.as_str(), "{firing}");
    assert_eq!(firing["labels"]["severity"], "critical", "{firing}");
    assert_eq!(
        firing["annotations"]["summary"], "Circuit breaker upstream has not closed for 5 minutes",
        "{firing}"
    );
    assert!(
        webhook.open_alert("upstream", "resolved").is_none(),
        "resolved while the upstream still fails: {:?}",
        webhook.alerts()
    );

    // The upstream recovers: a probe closes the breaker, and the alert arrives, resolved.
    failing.store(false, Ordering::SeqCst);
    let healed = Instant::now();
    let resolved = until(
        "CircuitBreakerOpen{name=\"upstream\"} to reach the webhook as resolved",
        &servers,
        async || webhook.open_alert("upstream", "resolved"),
    )
    .await;
    let resolved_after = healed.elapsed();
    assert_eq!(
        resolved["labels"]["instance"],
        instance.as_str(),
        "{resolved}"
    );
    assert_eq!(resolved["startsAt"], firing["startsAt"], "the same alert");
    assert_eq!(registry.get("upstream").unwrap().state(), State::Closed);
    let steady_alerts: Vec<Value> = webhook
        .alerts()
        .into_iter()
        .filter(|a| a["labels"]["name"] == "steady")
        .collect();
    assert!(
        steady_alerts.is_empty(),
        "alerts for a breaker that only succeeded: {steady_alerts:?}"
    );

    // Every panel of the dashboard, on the series this Prometheus holds now.
    let dashboard: Value =
        serde_json::from_str(&read("deploy/grafana/hotbreaker.json")).expect("dashboard JSON");
    let panels = panel_queries(&dashboard);
    assert!(panels.len() >= 5, "the dashboard's queries: {panels:?}");
    for (title, expr) in &panels {
        let promql = substitute_variables(expr, &dashboard);
        let series = query(&client, prometheus_port, &promql).await;
        assert!(
            !series.is_empty(),
            "panel {title:?}: no series for {promql}"
        );
        for name in ["upstream", "steady"] {
            assert!(
                series.iter().any(|s| s["metric"]["name"] == name
                    && s["metric"]["job"] == JOB
                    && s["metric"]["instance"] == instance.as_str()),
                "panel {title:?}: no series for breaker {name} in {promql}: {series:?}"
            );
        }
    }
    // What the panels show of this run: the upstream closed again, after it opened and rejected.
    let upstream = |expr: &str| {
        let expr = substitute_variables(expr, &dashboard);
        let client = client.clone();
        async move {
            let series = query(&client, prometheus_port, &expr).await;
            series
                .iter()
                .filter(|s| s["metric"]["name"] == "upstream")
                .map(|s| {
                    let value = s["value"][1].as_str().expect("a sample's value");
                    (s["metric"].clone(), value.parse::<f64>().expect("a number"))
                })
                .collect::<Vec<_>>()
        }
    };
    let panel = |title: &str| {
        panels
            .iter()
            .find(|(t, _)| t == title)
            .unwrap_or_else(|| panic!("no panel {title:?}"))
            .1
            .clone()
    };
    let state = upstream(&panel("State")).await;
    assert_eq!(state.len(), 1, "{state:?}");
    assert_eq!(
        state[0].1, 0.0,
        "the state timeline shows closed: {state:?}"
    );
    let rejected = upstream(&panel("Rejected and throttled calls")).await;
    assert!(
        rejected.iter().all(|(_, v)| *v > 0.0) && !rejected.is_empty(),
        "{rejected:?}"
    );
    let opened = upstream(&panel("Transitions (last hour)")).await;
    assert!(
        opened
            .iter()
            .any(|(m, v)| m["from"] == "closed" && m["to"] == "open" && *v > 0.0),
        "{opened:?}"
    );

    traffic.abort();
    eprintln!(
        "servers ready in {ready_after:?}; the healthy service scraped and the rule evaluated \
         on it in {healthy_after:?}; alert fired {firing_after:?} after the upstream failed, \
         resolved {resolved_after:?} after it recovered; {} panel queries; {:?} in all",
        panels.len(),
        started.elapsed()
    );
}
