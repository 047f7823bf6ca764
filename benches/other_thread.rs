//! Instruction counts of a call by a thread other than the breaker's first caller, under
//! callgrind (`bash benches/callgrind.sh` runs it as `other_thread <scenario> <calls>`, A or
//! D as in `instructions.rs`, counting only inside `measured_loop`; an Open breaker's rejection,
//! C, reads no stripe). The first caller's stripe has its line in the
//! breaker itself; every other calling thread finds its line through the breaker's chunk of
//! cells: this is the path of all calling threads but one. A binary of its own, with the
//! loop of `instructions.rs`: in that one, more callers of the breaker's call path would
//! change what the compiler inlines into the other contenders' loops.
//! Run by `cargo bench` without arguments, it does nothing.

#[path = "contenders.rs"]
mod contenders;

use std::hint::black_box;
use std::time::Duration;

use contenders::{Boom, Verdict};

/// As in `instructions.rs`: the only code callgrind counts.
#[inline(never)]
fn measured_loop(
    first: u64,
    calls: u64,
    scenario: &str,
    expect: Verdict,
    mut call: impl FnMut(bool) -> Verdict,
) {
    for i in first..first + calls {
        let ok = scenario != "D" || i % 100 != 0;
        assert_eq!(call(ok), expect);
    }
}

/// Calls per tick of the recent time, as in `instructions.rs`.
const TICK: u64 = 512;

fn breaker() -> hotbreaker::Breaker {
    hotbreaker::Breaker::builder()
        .consecutive_failures(5)
        .open_timeout(Duration::from_secs(3600))
        .half_open_permits(1)
        .build()
        .unwrap()
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let [scenario, calls] = args.as_slice() else {
        return; // plain `cargo bench`: nothing to do here
    };
    let calls: u64 = calls.parse().expect("a call count");
    // This thread takes its thread slot first, so that the first caller's is another one.
    assert!(breaker().call(|| Ok::<(), Boom>(())).is_ok());
    let x = breaker();
    std::thread::scope(|s| {
        s.spawn(|| assert!(x.call(|| Ok::<(), Boom>(())).is_ok()));
    });
    assert!(scenario == "A" || scenario == "D", "scenario A or D");
    let clock = quanta::Clock::new();
    let mut done = 0;
    while done < calls {
        let n = TICK.min(calls - done);
        quanta::set_recent(clock.now());
        measured_loop(done, n, scenario, Verdict::Ran, |ok| {
            match black_box(&x).call(|| if ok { Ok(()) } else { Err(Boom) }) {
                Err(hotbreaker::Error::Rejected(_)) => Verdict::Rejected,
                _ => Verdict::Ran,
            }
        });
        done += n;
    }
}
