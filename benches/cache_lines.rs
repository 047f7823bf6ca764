//! Cache lines per call when 10 000 breakers are called at random (scenario F of `compare`):
//! `bash benches/cache_lines.sh` runs this binary as `cache_lines <contender> <calls>` under
//! callgrind's cache simulation, counting only inside `measured_loop`. Its first-level data
//! misses per call count the cache lines a call touches (10 000 breakers are far more than a
//! first-level cache holds), and its last-level misses, with a simulated 1 MiB last level, the
//! lines that do not stay in a core's second-level cache. Counts, not times: the same on any
//! machine. Run by `cargo bench` without arguments, it does nothing.

#[path = "contenders.rs"]
mod contenders;

use std::hint::black_box;
use std::time::Duration;

use contenders::{Contender, Failsafe, GoStyle, Hot, Recloser, Verdict, closed};

/// Breakers called at random.
const SPREAD: usize = 10_000;

/// Calls per tick of the recent time (as in `instructions.rs`).
const TICK: u64 = 512;

/// The only code callgrind counts (`--toggle-collect=*measured_loop*`).
#[inline(never)]
fn measured_loop(all: &[impl Contender], picks: &[u32], first: u64, calls: u64) {
    for i in first..first + calls {
        let pick = picks[i as usize & (picks.len() - 1)] as usize;
        assert_eq!(black_box(&all[pick]).call(true), Verdict::Ran);
    }
}

/// A successful call on one of `SPREAD` breakers (built by `build`) picked at random (a fixed
/// sequence), after `settle` has called every breaker (so a thread's first call on each is not
/// counted).
fn run<C: Contender>(calls: u64, build: impl Fn() -> C, settle: impl Fn(&[C])) {
    let all: Vec<C> = (0..SPREAD).map(|_| build()).collect();
    settle(&all);
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let picks: Vec<u32> = (0..1 << 16)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % SPREAD as u64) as u32
        })
        .collect();
    let clock = quanta::Clock::new();
    let mut done = 0;
    while done < calls {
        let n = TICK.min(calls - done);
        quanta::set_recent(clock.now());
        measured_loop(&all, &picks, done, n);
        done += n;
    }
}

/// Calls every breaker until it holds the calling thread's lines, with the upkeep thread
/// running (it refills the reserve that first calls take them from), then stops the upkeep: as
/// in a service that has called each breaker before.
fn settle_hot(all: &[Hot]) {
    let idle = hot().0.heap_bytes();
    let upkeep = hotbreaker::start_upkeep(Duration::from_millis(1)).expect("no upkeep yet");
    for _ in 0..10_000 {
        let waiting: Vec<&Hot> = all.iter().filter(|x| x.0.heap_bytes() == idle).collect();
        if waiting.is_empty() {
            break;
        }
        for x in waiting {
            x.call(true);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(
        all.iter().all(|x| x.0.heap_bytes() > idle),
        "every breaker took its lines"
    );
    drop(upkeep);
    // One more call on each, just after the recent time was set: each stripe then trusts the
    // recent time until its hour-long bucket ends (an upkeep starved by valgrind may have left
    // some stripes distrusting it, and their calls would read the real clock: a count that
    // would depend on how fast valgrind ran).
    let clock = quanta::Clock::new();
    for x in all {
        quanta::set_recent(clock.now());
        x.call(true);
    }
}

/// hotbreaker as `compare` builds it, with hour-long buckets: under valgrind a call takes
/// about a hundred times as long, and the default's 1-second buckets would end between two calls
/// on a breaker, so that most calls would start a bucket, as they do not at full speed.
fn hot() -> Hot {
    Hot(hotbreaker::Breaker::builder()
        .consecutive_failures(5)
        .open_timeout(Duration::from_secs(3600))
        .half_open_permits(1)
        .time_window(Duration::from_secs(36_000), 10)
        .build()
        .unwrap())
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let [contender, calls] = args.as_slice() else {
        return; // plain `cargo bench`: nothing to do here
    };
    let calls: u64 = calls.parse().expect("a call count");
    match contender.as_str() {
        "hotbreaker" => run(calls, hot, settle_hot),
        "failsafe" => run(calls, closed::<Failsafe>, |_| {}),
        "recloser" => run(calls, closed::<Recloser>, |_| {}),
        "gobreaker-style" => run(calls, closed::<GoStyle>, |_| {}),
        other => panic!("unknown contender {other}"),
    }
}
