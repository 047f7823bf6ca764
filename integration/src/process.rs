//! Process trees of the servers the scenarios start: found in `/proc`, signalled with `kill`.

use std::net::TcpListener;
use std::process::{Command, Stdio};

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("a bound address").port()
}

fn parent_of(stat: &str) -> Option<u32> {
    // `pid (comm) state ppid ...`: the comm may hold spaces, the last ")" ends it.
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(1))
        .and_then(|p| p.parse().ok())
}

/// `root` and every process descended from it.
pub fn tree(root: u32) -> Vec<u32> {
    let all: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let pid = e.file_name().to_str()?.parse::<u32>().ok()?;
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            Some((pid, parent_of(&stat)?))
        })
        .collect();
    let mut pids = vec![root];
    let mut i = 0;
    while i < pids.len() {
        let parent = pids[i];
        for &(pid, ppid) in &all {
            if ppid == parent && !pids.contains(&pid) {
                pids.push(pid);
            }
        }
        i += 1;
    }
    pids
}

/// Sends `signal` (`-STOP`, `-CONT`, `-KILL`, ...) to each of `pids`.
pub fn signal(pids: &[u32], signal: &str) {
    for pid in pids {
        let _ = Command::new("kill")
            .args([signal, &pid.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Cleans up after runs that were killed before they could (a test binary stopped by a
/// signal runs no destructor): for each directory `<temp>/<prefix><owner>-...` whose owner
/// process is gone, kills the server whose pid `pid_file(dir)` holds (on its first line) and
/// everything under it, then removes the directory.
pub fn reap_stale(prefix: &str, pid_file: impl Fn(&std::path::Path) -> std::path::PathBuf) {
    for entry in std::fs::read_dir(std::env::temp_dir())
        .into_iter()
        .flatten()
        .flatten()
    {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix(prefix)) else {
            continue;
        };
        let Some(owner) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if alive(owner) {
            continue;
        }
        let dir = entry.path();
        let server = std::fs::read_to_string(pid_file(&dir))
            .ok()
            .and_then(|t| t.lines().next().and_then(|l| l.trim().parse::<u32>().ok()));
        if let Some(pid) = server {
            let pids = tree(pid);
            signal(&pids, "-CONT");
            signal(&pids, "-KILL");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// Waits until the file `output` holds `ready` (the server serves), at most `limit`; panics,
/// with the output, if the server exits first or the time runs out.
pub fn wait_ready(
    what: &str,
    child: &mut std::process::Child,
    output: &std::path::Path,
    ready: &str,
    limit: std::time::Duration,
) {
    if let Err(text) = try_wait_ready(what, child, output, ready, limit) {
        panic!("{text}");
    }
}

/// As [`wait_ready`], but a child that exits before it serves is an `Err` with its output, for
/// a caller that can start it again (a port taken between its choice and its bind).
pub fn try_wait_ready(
    what: &str,
    child: &mut std::process::Child,
    output: &std::path::Path,
    ready: &str,
    limit: std::time::Duration,
) -> Result<(), String> {
    let began = std::time::Instant::now();
    loop {
        let text = std::fs::read_to_string(output).unwrap_or_default();
        if text.contains(ready) {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("{what} exited ({status}) before it served: {text}"));
        }
        assert!(
            began.elapsed() < limit,
            "{what} did not start in {limit:?}: {text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Whether `pid` runs (a zombie does not).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit_once(')')
            .is_some_and(|(_, r)| !r.trim_start().starts_with('Z'))
    })
}
