//! Instruction counts under callgrind: `bash benches/callgrind.sh` runs this binary as
//! `instructions <contender> <scenario> <calls>` under `valgrind --tool=callgrind`, counting
//! only inside `measured_loop`, and divides by the number of calls: instructions per call,
//! repeatable on a noisy machine. Scenarios: A (Closed, success), C (Open, rejected), D (Closed, 1 % failures).
//!
//! quanta's recent time moves as an upkeep thread would move it, but by hand between chunks of
//! `TICK` calls (`quanta::set_recent`, outside the counted function): an upkeep thread under
//! valgrind is starved for so long that the breaker rightly stops trusting it. Each chunk is a
//! fresh tick, so hotbreaker pays its clock check's full cost: a real-clock read on the 1st, 2nd,
//! 4th, ... repeat of a recent value. With a 1 ms upkeep a busy thread makes far more calls per
//! tick, so in service the check costs less per call than it does here.
//! Run by `cargo bench` without arguments, it does nothing.

#[path = "contenders.rs"]
mod contenders;

use std::hint::black_box;
use std::time::Duration;

use contenders::{
    CbRs, Contender, Failsafe, GoStyle, Hot, Recloser, Verdict, closed, hot_tower_with, opened,
    tower, tower_call,
};
use hotbreaker::telemetry::{CallTelemetry, NoTelemetry, Telemetry};

/// The only code callgrind counts (`--toggle-collect=*measured_loop*`): setup, calibration of
/// the clock and process start-up are left out, so the count is exact and repeatable.
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

/// Calls per tick of the recent time.
const TICK: u64 = 512;

fn run<C: Contender>(scenario: &str, calls: u64) {
    let x = if scenario == "C" {
        opened::<C>()
    } else {
        closed::<C>()
    };
    let expect = if scenario == "C" {
        Verdict::Rejected
    } else {
        Verdict::Ran
    };
    let clock = quanta::Clock::new();
    let mut done = 0;
    while done < calls {
        let n = TICK.min(calls - done);
        quanta::set_recent(clock.now());
        measured_loop(done, n, scenario, expect, |ok| black_box(&x).call(ok));
        done += n;
    }
}

/// The harness alone: the same loop around a call that does nothing but return the expected
/// verdict. Subtracted from a contender's count, it leaves the contender's own work.
fn run_empty(scenario: &str, calls: u64) {
    let expect = if scenario == "C" {
        Verdict::Rejected
    } else {
        Verdict::Ran
    };
    measured_loop(0, calls, scenario, expect, |ok| {
        black_box(ok);
        black_box(expect)
    });
}

fn run_tower(scenario: &str, calls: u64) {
    run_service(scenario, calls, tower(Duration::from_secs(3600)));
}

/// hotbreaker's tower layer around a ready service, without telemetry (`T` = `NoTelemetry`) or
/// with it: what the telemetry costs is the difference.
fn run_hot_tower<T: Telemetry + Clone>(scenario: &str, calls: u64, telemetry: T) {
    run_service(
        scenario,
        calls,
        hot_tower_with(Duration::from_secs(3600), telemetry),
    );
}

fn run_service<S>(scenario: &str, calls: u64, mut t: S)
where
    S: tower::Service<bool, Response = ()>,
    S::Error: contenders::Rejection + std::fmt::Debug,
{
    if scenario == "C" {
        for _ in 0..5 {
            tower_call(&mut t, false);
        }
    }
    let expect = if scenario == "C" {
        Verdict::Rejected
    } else {
        Verdict::Ran
    };
    measured_loop(0, calls, scenario, expect, |ok| {
        tower_call(black_box(&mut t), ok)
    });
}

/// hotbreaker with every call (`ONE_IN` = 1) or one call in `ONE_IN` recorded by a
/// [`hotbreaker::recording::Recorder`] beside it: the recording's cost is its count minus
/// hotbreaker's.
struct Recorded<const ONE_IN: u32>(Hot, hotbreaker::recording::Recorder);

impl<const ONE_IN: u32> Contender for Recorded<ONE_IN> {
    const NAME: &'static str = "hotbreaker+recording";
    fn new(open: Duration) -> Self {
        let recorder = hotbreaker::recording::Recorder::new(1 << 16);
        recorder.set_sampling(ONE_IN).unwrap();
        Recorded(Hot::new(open), recorder)
    }
    #[inline]
    fn call(&self, ok: bool) -> Verdict {
        match self.1.call(
            &self.0.0,
            || if ok { Ok(()) } else { Err(contenders::Boom) },
        ) {
            Err(hotbreaker::Error::Rejected(_)) => Verdict::Rejected,
            _ => Verdict::Ran,
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let [contender, scenario, calls] = args.as_slice() else {
        return; // plain `cargo bench`: nothing to do here
    };
    let calls: u64 = calls.parse().expect("a call count");
    match contender.as_str() {
        "empty" => run_empty(scenario, calls),
        "hotbreaker" => run::<Hot>(scenario, calls),
        "hotbreaker+recording" => run::<Recorded<1>>(scenario, calls),
        "hotbreaker+recording/100" => run::<Recorded<100>>(scenario, calls),
        "failsafe" => run::<Failsafe>(scenario, calls),
        "recloser" => run::<Recloser>(scenario, calls),
        "circuitbreaker-rs" => run::<CbRs>(scenario, calls),
        "gobreaker-style" => run::<GoStyle>(scenario, calls),
        "tower-resilience" => run_tower(scenario, calls),
        "hotbreaker-tower" => run_hot_tower(scenario, calls, NoTelemetry),
        // Telemetry on, with neither a `tracing` subscriber nor a `metrics` recorder installed.
        "hotbreaker-tower+telemetry" => run_hot_tower(scenario, calls, CallTelemetry::new("bench")),
        // Telemetry on, spans recorded by `tracing-subscriber`'s registry (no exporter).
        "hotbreaker-tower+telemetry+spans" => {
            let _guard = tracing::subscriber::set_default(tracing_subscriber::registry());
            run_hot_tower(scenario, calls, CallTelemetry::new("bench"))
        }
        other => panic!("unknown contender {other}"),
    }
}
