//! A real redis-server for the fleet tests: started on a free loopback port in a temporary
//! directory with persistence off, killed (and its directory removed) on drop.
//!
//! Where no `redis-server` is found (on `PATH`, or at `$REDIS_SERVER`), [`RedisServer::start`]
//! prints a loud `SKIPPED` line and returns `None`, so that `cargo test --workspace` passes
//! from a fresh clone with nothing installed; with `HOTBREAKER_REQUIRE_REDIS=1` (as `.ci/run`
//! sets it) it panics instead, so CI never skips silently.

#![allow(dead_code)] // each test file uses a part of it

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) const MISSING: &str =
    "SKIPPED: redis-server not found (install it, or run bash .ci/run which installs it)";

/// The redis-server binary: `$REDIS_SERVER` if set, else `redis-server` on `PATH`.
pub(crate) fn binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("REDIS_SERVER") {
        let path = PathBuf::from(path);
        return path.is_file().then_some(path);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join("redis-server"))
        .find(|p| p.is_file())
}

/// `None` after printing [`MISSING`] when there is no redis-server (a panic instead under
/// `HOTBREAKER_REQUIRE_REDIS=1`).
pub(crate) fn binary_or_skip(test: &str) -> Option<PathBuf> {
    match binary() {
        Some(b) => Some(b),
        None if std::env::var("HOTBREAKER_REQUIRE_REDIS").as_deref() == Ok("1") => {
            panic!(
                "redis-server not found [{test}], and HOTBREAKER_REQUIRE_REDIS=1 forbids skipping \
                 (install it, or run bash .ci/run which installs it)"
            )
        }
        None => {
            // Straight to the process's stderr, past the test harness's capture.
            let _ = writeln!(std::io::stderr(), "{MISSING} [{test}]");
            None
        }
    }
}

/// A port nothing listens on right now.
pub(crate) fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().unwrap().port()
}

pub(crate) struct RedisServer {
    binary: PathBuf,
    pub(crate) port: u16,
    dir: PathBuf,
    child: Option<Child>,
}

impl RedisServer {
    /// A server on a free port, answering PING; `None` (skipped) without redis-server.
    pub(crate) fn start(test: &str) -> Option<RedisServer> {
        let binary = binary_or_skip(test)?;
        Some(RedisServer::on(binary, free_port()))
    }

    /// A server not started yet, for `port` (start it with [`restart`](RedisServer::restart)):
    /// for "Redis down at start".
    pub(crate) fn later(test: &str) -> Option<RedisServer> {
        let binary = binary_or_skip(test)?;
        let port = free_port();
        Some(RedisServer {
            dir: dir_for(port),
            binary,
            port,
            child: None,
        })
    }

    fn on(binary: PathBuf, port: u16) -> RedisServer {
        let mut s = RedisServer {
            dir: dir_for(port),
            binary,
            port,
            child: None,
        };
        s.restart();
        s
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// (Re)starts the server on the same port, empty, and waits until it answers PING.
    pub(crate) fn restart(&mut self) {
        self.kill();
        std::fs::create_dir_all(&self.dir).expect("temp dir");
        let child = Command::new(&self.binary)
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .args(["--enable-debug-command", "yes"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ping(self.port) {
            assert!(
                Instant::now() < deadline,
                "redis-server did not answer PING in 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Kills the server (SIGKILL) and waits for it.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends one command in RESP and returns the raw reply (for DEBUG SLEEP, KEYS, ...).
    pub(crate) fn command(&self, args: &[&str]) -> String {
        RedisServer::command_on(self.port, args)
    }

    /// [`command`](RedisServer::command) on the server at `port`.
    pub(crate) fn command_on(port: u16, args: &[&str]) -> String {
        let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        s.write_all(req.as_bytes()).unwrap();
        let mut buf = vec![0; 65_536];
        let n = s.read(&mut buf).unwrap_or(0);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn dir_for(port: u16) -> PathBuf {
    std::env::temp_dir().join(format!("hotbreaker-redis-{}-{port}", std::process::id()))
}

fn ping(port: u16) -> bool {
    let Ok(mut s) =
        TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200))
    else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0; 16];
    matches!(s.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
}

/// Polls `condition` every 10 ms until it holds or `secs` seconds pass; whether it held.
pub(crate) async fn eventually(secs: u64, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if condition() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
