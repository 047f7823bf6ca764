//! The experiment: a simulated backend with phases, and three runs of worker threads on the same
//! schedule (unprotected, through a breaker with trip rules, through a throttle alone), recorded
//! per 100 ms interval.
//!
//! This is a test harness, not a hot path: per-interval latency lists sit behind a `Mutex`.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hotbreaker::recording::{Recorded, Recorder, Trace};
use hotbreaker::{Breaker, Error, State, Transition};

use crate::options::Lab;
use crate::schedule::{Behaviour, Phase};

/// Width of one recorded interval.
pub const INTERVAL: Duration = Duration::from_millis(100);

/// Counters of the calls that started in one interval.
#[derive(Debug, Default)]
pub struct Interval {
    pub attempted: AtomicU64,
    pub reached: AtomicU64,
    pub successes: AtomicU64,
    pub failures: AtomicU64,
    pub rejected: AtomicU64,
    /// Caller-observed latency of each call, in microseconds.
    pub latencies_us: Mutex<Vec<u32>>,
    /// The run's breaker state sampled in the interval: `State as u8 + 1`, 0 = none.
    pub state: AtomicU8,
}

/// One run's recording.
#[derive(Debug)]
pub struct Run {
    /// As shown in the table and the picture: "no breaker", "breaker" or "throttle".
    pub name: &'static str,
    pub intervals: Vec<Interval>,
}

impl Run {
    fn new(name: &'static str, total: Duration) -> Run {
        let n = (total.as_millis() / INTERVAL.as_millis()) as usize + 1;
        Run {
            name,
            intervals: (0..n).map(|_| Interval::default()).collect(),
        }
    }

    /// One counter per interval, in order.
    pub fn counts(&self, counter: impl Fn(&Interval) -> &AtomicU64) -> Vec<u64> {
        self.intervals
            .iter()
            .map(|i| counter(i).load(Ordering::Relaxed))
            .collect()
    }

    fn at(&self, t: Duration) -> &Interval {
        let i = (t.as_millis() / INTERVAL.as_millis()) as usize;
        &self.intervals[i.min(self.intervals.len() - 1)]
    }
}

/// Everything the lab measured.
#[derive(Debug)]
pub struct Outcome {
    pub lab: Lab,
    pub unprotected: Run,
    /// Through the breaker with trip rules.
    pub protected: Run,
    /// Through the breaker with the throttle and no trip rule.
    pub throttled: Run,
    /// (time since start, transition) of the protected run's breaker.
    pub transitions: Vec<(Duration, Transition)>,
    /// The breaker's state and `retry_after` when each phase began, indexed by [`Phase::index`].
    pub at_phase_start: Vec<(State, Option<Duration>)>,
    pub breaker_metrics: hotbreaker::Metrics,
    pub throttle_metrics: hotbreaker::Metrics,
    /// Every call of the unprotected run: what the backend did.
    pub unprotected_trace: Trace,
    /// Every call of the breaker run, those it turned away as [`Recorded::Rejected`].
    pub protected_trace: Trace,
}

impl Outcome {
    /// The three runs, in the order they are shown.
    pub fn runs(&self) -> [&Run; 3] {
        [&self.unprotected, &self.protected, &self.throttled]
    }

    /// The breaker's state and `retry_after` when the recovered phase began.
    pub fn at_recovery(&self) -> (State, Option<Duration>) {
        self.at_phase_start[Phase::Recovered.index()]
    }
}

/// A small deterministic generator per worker.
struct Rng(u64);

impl Rng {
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The simulated dependency: behaviour by phase at the moment the call starts.
fn backend_call(lab: &Lab, t: Duration, rng: &mut Rng) -> Result<(), &'static str> {
    let healthy = |rate: f64, rng: &mut Rng| {
        let latency = lab.latency.mul_f64(0.5 + rng.unit());
        std::thread::sleep(latency);
        if rng.unit() < rate {
            Err("error")
        } else {
            Ok(())
        }
    };
    match lab.behaviour_at(t) {
        Behaviour::TimeOut => {
            std::thread::sleep(lab.outage_delay);
            Err("timeout")
        }
        Behaviour::Serve { error_rate } => healthy(error_rate, rng),
    }
}

fn worker(
    lab: &Lab,
    run: &Run,
    breaker: Option<&Breaker>,
    recorder: Option<&Recorder>,
    start: Instant,
    seed: u64,
) {
    let mut rng = Rng(seed);
    let total = lab.total();
    loop {
        let t = start.elapsed();
        if t >= total {
            return;
        }
        let slot = run.at(t);
        slot.attempted.fetch_add(1, Ordering::Relaxed);
        let began = Instant::now();
        let recording = recorder.map(Recorder::start);
        let mut reach = || {
            slot.reached.fetch_add(1, Ordering::Relaxed);
            backend_call(lab, t, &mut rng)
        };
        let result = match breaker {
            Some(b) => b.call(reach),
            None => reach().map_err(Error::Inner),
        };
        let latency = began.elapsed();
        if let (Some(r), Some(started)) = (recorder, recording) {
            r.finish(
                started,
                match &result {
                    Ok(()) => Recorded::Success,
                    Err(Error::Rejected(_)) => Recorded::Rejected,
                    Err(_) => Recorded::Failure,
                },
            );
        }
        match result {
            Ok(()) => &slot.successes,
            // Open, half-open full, or throttled.
            Err(Error::Rejected(_)) => &slot.rejected,
            // The call ran and failed (or timed out).
            Err(_) => &slot.failures,
        }
        .fetch_add(1, Ordering::Relaxed);
        slot.latencies_us
            .lock()
            .unwrap()
            .push(latency.as_micros().min(u128::from(u32::MAX)) as u32);
        std::thread::sleep(lab.think);
    }
}

/// Runs the experiment: all three runs at once, on one schedule, in real time.
pub fn run(lab: Lab) -> Outcome {
    // Once per process; a second start (tests running several labs) is refused and harmless.
    let _upkeep = hotbreaker::start_upkeep(Duration::from_millis(1));
    let total = lab.total();
    let unprotected = Run::new("no breaker", total);
    let protected = Run::new("breaker", total);
    let throttled = Run::new("throttle", total);
    let transitions = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let log = Arc::clone(&transitions);
    let breaker = lab
        .builder()
        .on_transition(move |t| log.lock().unwrap().push((start.elapsed(), *t)))
        .build()
        .expect("validated options");
    let throttle = lab.throttle_builder().build().expect("validated options");
    // The last 2^20 calls of each run (16 MiB each): more than a lab of an hour at the
    // defaults makes.
    let unprotected_recorder = Recorder::new(1 << 20);
    let protected_recorder = Recorder::new(1 << 20);
    let mut at_phase_start = vec![(State::Closed, None); Phase::ALL.len()];
    std::thread::scope(|s| {
        for w in 0..lab.workers {
            let seed = lab.seed.wrapping_mul(1_000_003).wrapping_add(u64::from(w));
            let lab = &lab;
            for (run, guard, recorder) in [
                (&unprotected, None, Some(&unprotected_recorder)),
                (&protected, Some(&breaker), Some(&protected_recorder)),
                (&throttled, Some(&throttle), None),
            ] {
                s.spawn(move || worker(lab, run, guard, recorder, start, seed));
            }
        }
        // The sampler: each breaker's state in the middle of each interval, and the protected
        // breaker's state and deadline when each phase begins.
        let mut moments: Vec<(Duration, Sample)> = Phase::ALL
            .into_iter()
            .map(|p| (lab.phase_start(p), Sample::PhaseStart(p)))
            .chain(
                (0..protected.intervals.len())
                    .map(|i| (INTERVAL * i as u32 + INTERVAL / 2, Sample::Interval(i)))
                    .filter(|(t, _)| *t < total),
            )
            .collect();
        // Stable: a phase start sorts before an interval's middle at the same moment.
        moments.sort_by_key(|(t, _)| *t);
        for (t, sample) in moments {
            sleep_until(start, t);
            match sample {
                Sample::PhaseStart(p) => {
                    let m = breaker.metrics();
                    at_phase_start[p.index()] = (m.state, m.retry_after);
                }
                Sample::Interval(i) => {
                    for (run, b) in [(&protected, &breaker), (&throttled, &throttle)] {
                        run.intervals[i]
                            .state
                            .store(b.state() as u8 + 1, Ordering::Relaxed);
                    }
                }
            }
        }
    });
    let transitions = transitions.lock().unwrap().clone();
    Outcome {
        lab,
        unprotected,
        protected,
        throttled,
        transitions,
        at_phase_start,
        breaker_metrics: breaker.metrics(),
        throttle_metrics: throttle.metrics(),
        unprotected_trace: unprotected_recorder.trace("lab backend"),
        protected_trace: protected_recorder.trace("lab backend"),
    }
}

/// What the sampler reads at a moment.
enum Sample {
    PhaseStart(Phase),
    Interval(usize),
}

fn sleep_until(start: Instant, t: Duration) {
    if let Some(d) = t.checked_sub(start.elapsed()) {
        std::thread::sleep(d);
    }
}

/// The state stored in an interval, if sampled.
pub fn sampled_state(code: u8) -> Option<State> {
    [
        State::Closed,
        State::Open,
        State::HalfOpen,
        State::Isolated,
        State::Disabled,
    ]
    .into_iter()
    .find(|s| *s as u8 + 1 == code)
}
