//! A real Postgres for the database scenario: a fresh cluster in a temporary directory, served
//! on a free loopback port, with the faults the scenario needs (stopped, hung, killed
//! mid-query, started again). Std only: the example and the tests bring their own client.
//!
//! The server binaries come from `$PG_BIN` if set, else the newest
//! `/usr/lib/postgresql/*/bin` (Debian's layout), else `postgres` on `PATH`. Postgres refuses to
//! run as root: as root, every server command runs as the `postgres` user through `runuser`.
//!
//! Where no server is found, [`PgServer::start`] prints a loud `SKIPPED` line and returns
//! `None`, so that `cargo test --workspace` passes from a fresh clone; with
//! `HOTBREAKER_REQUIRE_POSTGRES=1` (as `.ci/run` sets it) it panics instead.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What a skipped test or example prints.
pub const MISSING: &str =
    "SKIPPED: postgres not found (install postgresql, or run bash .ci/run which installs it)";

/// The directory holding `initdb` and `postgres`.
pub fn bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        let dir = PathBuf::from(dir);
        return dir.join("postgres").is_file().then_some(dir);
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|d| d.join("postgres").is_file() && d.join("initdb").is_file())
        .collect();
    versions.sort_by_key(|d| {
        d.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    if let Some(dir) = versions.pop() {
        return Some(dir);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .find(|dir| dir.join("postgres").is_file() && dir.join("initdb").is_file())
}

/// `None` after printing [`MISSING`] when there is no server (a panic instead under
/// `HOTBREAKER_REQUIRE_POSTGRES=1`).
pub fn bin_dir_or_skip(what: &str) -> Option<PathBuf> {
    match bin_dir() {
        Some(d) => Some(d),
        None if std::env::var("HOTBREAKER_REQUIRE_POSTGRES").as_deref() == Ok("1") => panic!(
            "postgres not found [{what}], and HOTBREAKER_REQUIRE_POSTGRES=1 forbids skipping \
             (install postgresql, or run bash .ci/run which installs it)"
        ),
        None => {
            let _ = writeln!(std::io::stderr(), "{MISSING} [{what}]");
            None
        }
    }
}

pub(crate) fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

pub use crate::process::free_port;

/// A Postgres cluster of its own, killed and removed on drop.
#[derive(Debug)]
pub struct PgServer {
    bin: PathBuf,
    dir: PathBuf,
    /// The loopback port it serves on (the same after [`PgServer::start_again`]).
    pub port: u16,
    as_postgres: bool,
    child: Option<Child>,
}

impl PgServer {
    /// A fresh cluster (trust authentication, user `postgres`, no fsync), serving and ready;
    /// `None` (skipped) without a server.
    pub fn start(what: &str) -> Option<PgServer> {
        let bin = bin_dir_or_skip(what)?;
        crate::process::reap_stale("hotbreaker-pg-", |dir| dir.join("data/postmaster.pid"));
        let as_postgres = is_root();
        let dir = std::env::temp_dir().join(format!(
            "hotbreaker-pg-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).expect("make the cluster's directory");
        let mut server = PgServer {
            bin,
            dir,
            port: free_port(),
            as_postgres,
            child: None,
        };
        if as_postgres {
            let ok = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&server.dir)
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "chown the cluster's directory to postgres");
        }
        let data = server.data();
        let out = server
            .command("initdb")
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
                "-D",
            ])
            .arg(&data)
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        server.start_again();
        Some(server)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn log(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(path);
            c
        } else {
            Command::new(path)
        }
    }

    /// The URL a client connects with.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server on its port again (after [`stop`](PgServer::stop) or
    /// [`kill`](PgServer::kill)) and waits until it accepts connections (at most 30 s).
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "the server is running");
        // A log of its own per start: readiness is read from it.
        let log = self.log();
        let _ = std::fs::remove_file(&log);
        let file = std::fs::File::create(&log).expect("create the server log");
        if self.as_postgres {
            let _ = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&log)
                .status();
        }
        let child = self
            .command("postgres")
            .arg("-D")
            .arg(self.data())
            .args(["-p", &self.port.to_string()])
            .args(["-c", "listen_addresses=127.0.0.1"])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", self.dir.display()))
            .args(["-c", "fsync=off", "-c", "max_connections=100"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .expect("spawn postgres");
        let child = self.child.insert(child);
        crate::process::wait_ready(
            "postgres",
            child,
            &log,
            "database system is ready to accept connections",
            Duration::from_secs(30),
        );
    }

    /// Every process of the server: the postmaster (through `runuser` when root) and its
    /// children.
    fn pids(&self) -> Vec<u32> {
        self.child
            .as_ref()
            .map_or_else(Vec::new, |c| crate::process::tree(c.id()))
    }

    fn signal(&self, signal: &str) {
        crate::process::signal(&self.pids(), signal);
    }

    /// Hangs the server: `SIGSTOP` to the postmaster and every backend. Connections stay open
    /// and new ones are accepted by the kernel, but nothing answers.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Undoes [`freeze`](PgServer::freeze).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    /// Kills the server and its backends at once (`SIGKILL`), mid-query if one runs: its
    /// clients see their connections reset, and new connections are refused.
    pub fn kill(&mut self) {
        let pids = self.pids();
        self.signal("-CONT");
        self.signal("-KILL");
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
        // Backends die with the postmaster; wait until the port is free again.
        let began = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            && began.elapsed() < Duration::from_secs(10)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        // And until every process of it is gone (a backend's lock on the socket outlives the
        // postmaster by a moment).
        while pids.iter().any(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
                s.rsplit_once(')')
                    .is_some_and(|(_, r)| !r.trim_start().starts_with('Z'))
            })
        }) && began.elapsed() < Duration::from_secs(10)
        {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_file(self.data().join("postmaster.pid"));
        let _ = std::fs::remove_file(self.dir.join(format!(".s.PGSQL.{}.lock", self.port)));
        let _ = std::fs::remove_file(self.dir.join(format!(".s.PGSQL.{}", self.port)));
    }

    /// Stops the server: connections are refused until [`start_again`](PgServer::start_again).
    pub fn stop(&mut self) {
        self.kill();
    }

    /// Whether it is running now.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Where its files are.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
