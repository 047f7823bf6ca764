//! A real RabbitMQ node for the queue scenario: its own node name, data directory and loopback
//! port, no plugins; killed (and its directory removed) on drop. It can be killed and started
//! again, with its data (queues survive if durable) or fresh (every queue gone).
//!
//! The server comes from `$RABBITMQ_SERVER` if set, else `/usr/lib/rabbitmq/bin/rabbitmq-server`
//! (Debian's `rabbitmq-server` package; the one in `/usr/sbin` switches user and reads the
//! system's settings), else `rabbitmq-server` on `PATH`. The Erlang port mapper it starts
//! listens on loopback only and outlives the node, as it is shared by every node of the host.
//!
//! Where no server is found, [`RabbitServer::start`] prints a loud `SKIPPED` line and returns
//! `None`; with `HOTBREAKER_REQUIRE_RABBITMQ=1` (as `.ci/run` sets it) it panics instead.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::{alive, free_port, signal, tree, try_wait_ready};

/// What a skipped test or example prints.
pub const MISSING: &str = "SKIPPED: rabbitmq-server not found (install rabbitmq-server, or run bash .ci/run which installs it)";

/// The server script.
pub fn binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("RABBITMQ_SERVER") {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    let debian = PathBuf::from("/usr/lib/rabbitmq/bin/rabbitmq-server");
    if debian.is_file() {
        return Some(debian);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("rabbitmq-server"))
        .find(|p| p.is_file())
}

/// `None` after printing [`MISSING`] when there is no server (a panic instead under
/// `HOTBREAKER_REQUIRE_RABBITMQ=1`).
pub fn binary_or_skip(what: &str) -> Option<PathBuf> {
    match binary() {
        Some(b) => Some(b),
        None if std::env::var("HOTBREAKER_REQUIRE_RABBITMQ").as_deref() == Ok("1") => panic!(
            "rabbitmq-server not found [{what}], and HOTBREAKER_REQUIRE_RABBITMQ=1 forbids \
             skipping (install rabbitmq-server, or run bash .ci/run which installs it)"
        ),
        None => {
            let _ = writeln!(std::io::stderr(), "{MISSING} [{what}]");
            None
        }
    }
}

/// A RabbitMQ node of its own.
#[derive(Debug)]
pub struct RabbitServer {
    binary: PathBuf,
    dir: PathBuf,
    /// The AMQP port on 127.0.0.1 (the same after a restart).
    pub port: u16,
    node: String,
    child: Option<Child>,
}

impl RabbitServer {
    /// A fresh node, started and ready; `None` (skipped) without a server.
    pub fn start(what: &str) -> Option<RabbitServer> {
        let binary = binary_or_skip(what)?;
        crate::process::reap_stale("hotbreaker-rabbit-", |dir| dir.join("pid"));
        let port = free_port();
        let dir =
            std::env::temp_dir().join(format!("hotbreaker-rabbit-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("make the node's directory");
        std::fs::write(dir.join("enabled_plugins"), "[].\n").expect("write the plugin list");
        let mut server = RabbitServer {
            binary,
            node: format!("hotbreaker{port}@localhost"),
            dir,
            port,
            child: None,
        };
        server.start_again(false);
        Some(server)
    }

    /// The URL a client connects with.
    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// Starts the node again after [`kill`](RabbitServer::kill): with its data, or `fresh`
    /// (its data removed: every queue and message gone). Waits until it serves (at most 60 s).
    /// The Erlang distribution port is chosen anew for each start; a start that finds it taken
    /// by then (another process bound it after it was chosen) is tried again with another.
    pub fn start_again(&mut self, fresh: bool) {
        assert!(self.child.is_none(), "the node is running");
        if fresh {
            let _ = std::fs::remove_dir_all(self.dir.join("mnesia"));
        }
        const TRIES: u32 = 5;
        for attempt in 1..=TRIES {
            match self.spawn_and_wait() {
                Ok(()) => return,
                Err(text) if attempt < TRIES && text.contains("dist_port_already_used") => {
                    self.kill();
                }
                Err(text) => panic!("{text}"),
            }
        }
    }

    /// One start on a newly chosen distribution port: `Err` with the output if the node exited
    /// before it served.
    fn spawn_and_wait(&mut self) -> Result<(), String> {
        let out = self.dir.join("server.out");
        let file = std::fs::File::create(&out).expect("create the node's output");
        let child = Command::new(&self.binary)
            .env("HOME", &self.dir)
            .env("RABBITMQ_NODENAME", &self.node)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", self.port.to_string())
            .env("RABBITMQ_DIST_PORT", free_port().to_string())
            .env("ERL_EPMD_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_MNESIA_BASE", self.dir.join("mnesia"))
            .env("RABBITMQ_LOG_BASE", self.dir.join("log"))
            .env(
                "RABBITMQ_ENABLED_PLUGINS_FILE",
                self.dir.join("enabled_plugins"),
            )
            .env("RABBITMQ_PID_FILE", self.dir.join("pid"))
            .env(
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
                "-kernel inet_dist_use_interface {127,0,0,1}",
            )
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("clone a file handle"))
            .stderr(file)
            .spawn()
            .expect("spawn rabbitmq-server");
        let child = self.child.insert(child);
        try_wait_ready(
            "rabbitmq-server",
            child,
            &out,
            "Starting broker... completed",
            Duration::from_secs(60),
        )
    }

    /// Kills the node at once (`SIGKILL`): its clients see their connections reset, and new
    /// connections are refused until it is started again.
    pub fn kill(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let pids: Vec<u32> = tree(child.id())
            .into_iter()
            // The port mapper is shared by every node of the host: left running.
            .filter(|&pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .map_or(true, |c| c.trim() != "epmd")
            })
            .collect();
        signal(&pids, "-KILL");
        let _ = child.wait();
        let began = Instant::now();
        while pids.iter().any(|&p| alive(p)) && began.elapsed() < Duration::from_secs(10) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits, at most `limit`, until the node has written durable queue `queue`'s declaration
    /// to its Mnesia files (the transaction log or the durable-queue table), and says whether it
    /// did. RabbitMQ answers a declaration before that write (about 0.2 s later on an idle
    /// machine, longer on a busy one): a node killed in between comes back without the queue,
    /// and without the messages confirmed into it. A test that kills the node to show that
    /// confirmed messages survive waits for this first, as a broker that has run for a while
    /// would have written it.
    pub fn declaration_on_disk(&self, queue: &str, limit: Duration) -> bool {
        let tables = self.dir.join("mnesia").join(&self.node);
        let files = [
            "LATEST.LOG",
            "rabbit_durable_queue.DCL",
            "rabbit_durable_queue.DCD",
        ];
        let began = Instant::now();
        loop {
            let written = files.iter().any(|file| {
                std::fs::read(tables.join(file)).is_ok_and(|data| {
                    data.windows(queue.len())
                        .any(|window| window == queue.as_bytes())
                })
            });
            if written || began.elapsed() >= limit {
                return written;
            }
            // Polls the node's files: nothing to wait on but the node's own writer.
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether it is running now.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

impl Drop for RabbitServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
