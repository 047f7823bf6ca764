//! The obviously-correct breaker: one `Mutex` around a struct, a queue of timestamped outcomes
//! for the window, every rule written the way the crate's guarantees state it.
//!
//! Outcomes recorded at the same instant with the same kind are kept as one entry with a count,
//! so a burst of millions of calls costs one entry: the model stays plain arithmetic on `u64`
//! whatever the horizon (counts, generations and nanoseconds never wrap in a test's lifetime).

use std::collections::VecDeque;
use std::sync::Mutex;

use hotbreaker::{Cause, Outcome, State};

use crate::config::{ModelConfig, Window, draw_at};

/// A permit handed out by the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelPermit {
    pub generation: u64,
    pub state: State,
    pub issued_ns: u64,
    /// Admitted while Closed with the throttle shedding: its Success recomputes the throttle.
    pub shedding: bool,
}

/// The model's view, in the same terms as `hotbreaker::Metrics`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ModelMetrics {
    pub state: State,
    pub generation: u64,
    pub window_calls: u64,
    pub window_failures: u64,
    pub window_slow: u64,
    pub window_throttled: u64,
    pub successes: u64,
    pub failures: u64,
    pub ignored: u64,
    pub slow: u64,
    pub rejected: u64,
    pub throttled: u64,
    pub times_opened: u64,
    /// Nanoseconds, while Open.
    pub retry_after_ns: Option<u64>,
}

/// `n` outcomes of one kind recorded at `at_ns`.
#[derive(Clone, Copy, Debug)]
struct Recorded {
    at_ns: u64,
    failure: bool,
    slow: bool,
    n: u64,
}

/// When a state entered at `from_ns` that lasts `after_ns` ends: the Open deadline and the
/// half-open timeout, exact to the nanosecond (the deadline check is inclusive: at this instant
/// the breaker is ready).
fn deadline_after(from_ns: u64, after_ns: u64) -> u64 {
    from_ns.saturating_add(after_ns)
}

#[derive(Debug)]
struct Inner {
    state: State,
    generation: u64,
    /// Openings since last Closed.
    attempt: u32,
    /// Open: when it may half-open. HalfOpen: when it times out (if configured). In ns, as
    /// `deadline_after` computes them.
    deadline_ns: Option<u64>,
    issued: u32,
    probe_successes: u32,
    consecutive: u32,
    /// Outcomes of the last Closed/Disabled generation, oldest first. A time window drops the
    /// entries that have left it for good; a count window holds at most its size.
    window: VecDeque<Recorded>,
    /// Calls the throttle turned away in the same generation: (at, how many), oldest first.
    throttled: VecDeque<(u64, u64)>,
    /// With a throttle, Closed calls of the same generation that ended Ignored or whose permit
    /// was dropped: (at, how many), oldest first. The throttle's requests and accepts.
    answered: VecDeque<(u64, u64)>,
    /// The throttle's probability in parts per 2^24: 0 after every transition, computed when a
    /// Failure is recorded while Closed (and did not trip), and when a throttled call falls in
    /// another bucket interval than the last computation.
    throttle_p: u32,
    /// The bucket interval of the last computation.
    throttle_interval: u64,
    /// Draws taken so far (the `n` of `draw_at`).
    draws: u64,
    log: Vec<(State, State, Cause, u64)>,
    m: ModelMetrics,
}

/// The reference breaker.
#[derive(Debug)]
pub struct Model {
    config: ModelConfig,
    inner: Mutex<Inner>,
}

impl Model {
    pub fn new(config: ModelConfig) -> Model {
        Model {
            config,
            inner: Mutex::new(Inner {
                state: State::Closed,
                generation: 0,
                attempt: 0,
                deadline_ns: None,
                issued: 0,
                probe_successes: 0,
                consecutive: 0,
                window: VecDeque::new(),
                throttled: VecDeque::new(),
                answered: VecDeque::new(),
                throttle_p: 0,
                throttle_interval: 0,
                draws: 0,
                log: Vec::new(),
                m: ModelMetrics {
                    state: State::Closed,
                    generation: 0,
                    window_calls: 0,
                    window_failures: 0,
                    window_slow: 0,
                    window_throttled: 0,
                    successes: 0,
                    failures: 0,
                    ignored: 0,
                    slow: 0,
                    rejected: 0,
                    throttled: 0,
                    times_opened: 0,
                    retry_after_ns: None,
                },
            }),
        }
    }

    /// `Ok(permit)` or `Err((state, retry_after_ns))`.
    pub fn acquire(&self, now: u64) -> Result<ModelPermit, (State, Option<u64>)> {
        let mut s = self.inner.lock().unwrap();
        if s.state == State::Open && s.deadline_ns.is_some_and(|d| now >= d) {
            self.transition_for(&mut s, State::HalfOpen, now, Cause::OpenDeadlinePassed);
            s.issued = 1;
            return Ok(self.permit(&s, now));
        }
        if s.state == State::HalfOpen && self.half_open_expired(&s, now) {
            self.transition_for(&mut s, State::Open, now, Cause::HalfOpenTimeout);
        }
        if s.state == State::Closed && s.throttle_p > 0 {
            let draw = draw_at(s.draws);
            s.draws += 1;
            // The draw's top 24 bits below p (in parts per 2^24).
            if (draw >> 8) < s.throttle_p {
                s.m.throttled += 1;
                match s.throttled.back_mut() {
                    Some(last) if last.0 == now => last.1 += 1,
                    _ => s.throttled.push_back((now, 1)),
                }
                if self.interval(now) != s.throttle_interval {
                    self.rethrottle(&mut s, now);
                }
                return Err((State::Closed, None));
            }
        }
        match s.state {
            State::Closed | State::Disabled => Ok(self.permit(&s, now)),
            State::HalfOpen if s.issued < self.config.half_open_permits => {
                s.issued += 1;
                Ok(self.permit(&s, now))
            }
            state => {
                s.m.rejected += 1;
                let retry = (state == State::Open).then(|| s.deadline_ns.unwrap() - now);
                Err((state, retry))
            }
        }
    }

    pub fn record(&self, p: ModelPermit, outcome: Outcome, now: u64) {
        let mut s = self.inner.lock().unwrap();
        let slow = self.config.slow.is_some_and(|(d, _)| now - p.issued_ns > d);
        match outcome {
            Outcome::Ignored => s.m.ignored += 1,
            Outcome::Success => s.m.successes += 1,
            Outcome::Failure => s.m.failures += 1,
            other => unreachable!("an outcome the model does not know: {other:?}"),
        }
        if outcome != Outcome::Ignored && slow {
            s.m.slow += 1;
        }
        if p.generation != s.generation {
            return; // Late: lifetime totals only.
        }
        match (p.state, outcome) {
            (State::HalfOpen, Outcome::Ignored) => s.issued -= 1,
            (State::HalfOpen, Outcome::Failure) => {
                self.transition_for(&mut s, State::Open, now, Cause::HalfOpenFailure)
            }
            (State::HalfOpen, Outcome::Success) => {
                if self.half_open_expired(&s, now) {
                    self.transition_for(&mut s, State::Open, now, Cause::HalfOpenTimeout);
                } else {
                    s.probe_successes += 1;
                    if s.probe_successes >= self.config.half_open_successes {
                        self.transition_for(&mut s, State::Closed, now, Cause::HalfOpenSuccesses);
                    }
                }
            }
            (State::Closed, Outcome::Ignored) => self.answered(&mut s, now),
            (_, Outcome::Ignored) => {}
            (state, _) => {
                let failure = outcome == Outcome::Failure;
                self.push(&mut s, now, failure, slow);
                if state == State::Disabled {
                    return;
                }
                if failure {
                    s.consecutive += 1;
                } else {
                    s.consecutive = 0;
                }
                if let Some(cause) = (failure || slow)
                    .then(|| self.tripped(&s, failure, now))
                    .flatten()
                {
                    self.transition_for(&mut s, State::Open, now, cause);
                } else if failure || (p.shedding && s.throttle_p > 0) {
                    // After a Failure, and after the Success of a call admitted while it sheds.
                    self.rethrottle(&mut s, now);
                }
            }
        }
    }

    /// The bucket interval `now` falls in (0 for a count window, which has no throttle).
    fn interval(&self, now: u64) -> u64 {
        match self.config.window {
            Window::Time { width_ns, .. } => now / width_ns,
            Window::Count(_) => 0,
        }
    }

    /// Throttled calls in the window at `now`.
    fn throttled_in_window(&self, s: &Inner, now: u64) -> u64 {
        s.throttled
            .iter()
            .filter(|&&(at, _)| self.in_window_at(at, now))
            .map(|&(_, n)| n)
            .sum()
    }

    /// Computes the throttle's probability from the window at `now`, as the guide states it:
    /// `min(max_rejection, max(0, (requests − K·accepts) / (requests + 1)))`, 0 below
    /// `minimum_calls` requests, in parts per 2^24 rounded down.
    fn rethrottle(&self, s: &mut Inner, now: u64) {
        let Some((k, max)) = self.config.throttle else {
            return;
        };
        let (calls, failures, _) = self.window_counts(s, now);
        let answered: u64 = s
            .answered
            .iter()
            .filter(|&&(at, _)| self.in_window_at(at, now))
            .map(|&(_, n)| n)
            .sum();
        let requests = calls + self.throttled_in_window(s, now) + answered;
        let accepts = calls - failures + answered;
        s.throttle_p = if requests < u64::from(self.config.minimum_calls) {
            0
        } else {
            let excess = requests as f64 - k * accepts as f64;
            if excess <= 0.0 {
                0
            } else {
                let p = (excess / (requests as f64 + 1.0)).min(max);
                ((p * 16_777_216.0) as u32).min((1 << 24) - 1)
            }
        };
        s.throttle_interval = self.interval(now);
        // Time only moves forward: an entry out of the window now stays out.
        while s
            .throttled
            .front()
            .is_some_and(|&(at, _)| !self.in_window_at(at, now))
        {
            s.throttled.pop_front();
        }
        while s
            .answered
            .front()
            .is_some_and(|&(at, _)| !self.in_window_at(at, now))
        {
            s.answered.pop_front();
        }
    }

    /// Appends one outcome to the window and forgets what can no longer count.
    fn push(&self, s: &mut Inner, now: u64, failure: bool, slow: bool) {
        match s.window.back_mut() {
            Some(last) if (last.at_ns, last.failure, last.slow) == (now, failure, slow) => {
                last.n += 1
            }
            _ => s.window.push_back(Recorded {
                at_ns: now,
                failure,
                slow,
                n: 1,
            }),
        }
        match self.config.window {
            Window::Count(size) => {
                let held: u64 = s.window.iter().map(|r| r.n).sum();
                let mut excess = held.saturating_sub(u64::from(size));
                while excess > 0 {
                    let first = s.window.front_mut().unwrap();
                    let dropped = excess.min(first.n);
                    first.n -= dropped;
                    excess -= dropped;
                    if first.n == 0 {
                        s.window.pop_front();
                    }
                }
            }
            // Time only moves forward: an entry out of the window now stays out.
            Window::Time { .. } => {
                while s.window.front().is_some_and(|r| !self.in_window(r, now)) {
                    s.window.pop_front();
                }
            }
        }
    }

    /// A permit dropped without an outcome.
    pub fn release(&self, p: ModelPermit, now: u64) {
        let mut s = self.inner.lock().unwrap();
        if p.generation != s.generation {
            return;
        }
        match p.state {
            State::HalfOpen => s.issued -= 1,
            State::Closed => self.answered(&mut s, now),
            _ => {}
        }
    }

    /// A Closed call of the current generation ended Ignored or its permit was dropped: with a
    /// throttle, one of its requests and accepts; while it sheds, the probability is computed
    /// again.
    fn answered(&self, s: &mut Inner, now: u64) {
        if self.config.throttle.is_none() || self.interval_width().is_none() {
            return;
        }
        match s.answered.back_mut() {
            Some(last) if last.0 == now => last.1 += 1,
            _ => s.answered.push_back((now, 1)),
        }
        if s.throttle_p > 0 {
            self.rethrottle(s, now);
        }
    }

    fn interval_width(&self) -> Option<u64> {
        match self.config.window {
            Window::Time { width_ns, .. } => Some(width_ns),
            Window::Count(_) => None,
        }
    }

    pub fn manual(&self, to: State, now: u64) {
        let mut s = self.inner.lock().unwrap();
        self.transition_for(&mut s, to, now, Cause::Manual);
    }

    /// A peer's trip (`Breaker::trip_from_fleet`): a Closed breaker opens for `open_for_ns`,
    /// capped at the longest opening the backoff allows; nothing else moves. Whether it opened.
    pub fn fleet_trip(&self, open_for_ns: u64, now: u64) -> bool {
        let mut s = self.inner.lock().unwrap();
        if s.state != State::Closed || open_for_ns == 0 {
            return false;
        }
        self.transition_for(&mut s, State::Open, now, Cause::Fleet);
        let longest = self.config.open_ns(u32::from(u8::MAX));
        s.deadline_ns = Some(deadline_after(now, open_for_ns.min(longest)));
        true
    }

    /// A peer's recovery (`Breaker::half_open_from_fleet`): an Open breaker half-opens with no
    /// probe slot taken; nothing else moves. Whether it half-opened.
    pub fn fleet_half_open(&self, now: u64) -> bool {
        let mut s = self.inner.lock().unwrap();
        if s.state != State::Open {
            return false;
        }
        self.transition_for(&mut s, State::HalfOpen, now, Cause::Fleet);
        true
    }

    /// Every transition so far: (from, to, cause, generation).
    pub fn log(&self) -> Vec<(State, State, Cause, u64)> {
        self.inner.lock().unwrap().log.clone()
    }

    /// The transitions after the first `skip`.
    pub fn log_since(&self, skip: usize) -> Vec<(State, State, Cause, u64)> {
        self.inner.lock().unwrap().log[skip..].to_vec()
    }

    /// The current state, without counting anything.
    pub fn state(&self) -> State {
        self.inner.lock().unwrap().state
    }

    /// The current generation.
    pub fn generation(&self) -> u64 {
        self.inner.lock().unwrap().generation
    }

    /// While Open: when the breaker may half-open, in ns since the start.
    pub fn open_deadline_ns(&self) -> Option<u64> {
        let s = self.inner.lock().unwrap();
        (s.state == State::Open).then(|| s.deadline_ns.unwrap())
    }

    pub fn metrics(&self, now: u64) -> ModelMetrics {
        let s = self.inner.lock().unwrap();
        let (calls, failures, slow) = self.window_counts(&s, now);
        ModelMetrics {
            state: s.state,
            generation: s.generation,
            window_calls: calls,
            window_failures: failures,
            window_slow: slow,
            window_throttled: self.throttled_in_window(&s, now),
            retry_after_ns: (s.state == State::Open)
                .then(|| s.deadline_ns.unwrap().saturating_sub(now)),
            ..s.m
        }
    }

    fn permit(&self, s: &Inner, now: u64) -> ModelPermit {
        ModelPermit {
            generation: s.generation,
            state: s.state,
            issued_ns: now,
            shedding: s.state == State::Closed && s.throttle_p > 0,
        }
    }

    fn half_open_expired(&self, s: &Inner, now: u64) -> bool {
        self.config.half_open_timeout.is_some() && s.deadline_ns.is_some_and(|d| now >= d)
    }

    /// Whether `r` is in the window at `now`: in the last `buckets` whole intervals of `width`,
    /// counted from the start (a count window keeps no more than it holds).
    fn in_window(&self, r: &Recorded, now: u64) -> bool {
        self.in_window_at(r.at_ns, now)
    }

    /// Whether something recorded at `at` is in the window at `now` (see `in_window`).
    fn in_window_at(&self, at: u64, now: u64) -> bool {
        match self.config.window {
            Window::Time { width_ns, buckets } => {
                let current = now / width_ns;
                let epoch = at / width_ns;
                epoch + u64::from(buckets) > current
            }
            Window::Count(_) => true,
        }
    }

    /// Window counts: (calls, failures, slow).
    fn window_counts(&self, s: &Inner, now: u64) -> (u64, u64, u64) {
        s.window.iter().filter(|r| self.in_window(r, now)).fold(
            (0, 0, 0),
            |(calls, failures, slow), r| {
                (
                    calls + r.n,
                    failures + if r.failure { r.n } else { 0 },
                    slow + if r.slow { r.n } else { 0 },
                )
            },
        )
    }

    fn tripped(&self, s: &Inner, failure: bool, now: u64) -> Option<Cause> {
        let c = &self.config;
        if failure && c.consecutive.is_some_and(|n| s.consecutive >= n) {
            return Some(Cause::ConsecutiveFailures);
        }
        let (calls, failures, slow) = self.window_counts(s, now);
        let reached = |part: u64, rate_ppb: u64| {
            calls >= u64::from(c.minimum_calls) && part * 1_000_000_000 >= rate_ppb * calls
        };
        if c.failure_rate_ppb.is_some_and(|r| reached(failures, r)) {
            return Some(Cause::FailureRate);
        }
        if c.slow.is_some_and(|(_, r)| reached(slow, r)) {
            return Some(Cause::SlowCallRate);
        }
        if c.trip_at_failures.is_some_and(|k| failures >= k) {
            return Some(Cause::CustomRule);
        }
        None
    }

    fn transition_for(&self, s: &mut Inner, to: State, now: u64, cause: Cause) {
        let from = s.state;
        s.generation += 1;
        s.log.push((from, to, cause, s.generation));
        s.state = to;
        s.issued = 0;
        s.probe_successes = 0;
        s.deadline_ns = None;
        s.throttle_p = 0;
        match (from, to) {
            (_, State::Closed | State::Disabled | State::Isolated) => {
                s.attempt = 0;
                if to != State::Isolated {
                    s.window.clear();
                    s.throttled.clear();
                    s.answered.clear();
                    s.consecutive = 0;
                }
            }
            (State::Closed, State::Open) => s.attempt = 1,
            (_, State::Open) => s.attempt += 1,
            _ => {}
        }
        match to {
            State::Open => {
                s.m.times_opened += 1;
                s.deadline_ns = Some(deadline_after(now, self.config.open_ns(s.attempt)));
            }
            State::HalfOpen => {
                s.deadline_ns = self
                    .config
                    .half_open_timeout
                    .map(|t| deadline_after(now, t));
            }
            _ => {}
        }
    }
}
