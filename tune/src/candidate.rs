//! One point of the configuration space, and the values each dimension takes.

use std::fmt;
use std::time::Duration;

use hotbreaker::{Backoff, Config, SlowCalls, Throttle, TimeWindow};

/// The trip rule of a candidate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rule {
    /// Open after `n` failures in a row.
    Consecutive(u32),
    /// Open when the window holds at least `min_calls` calls and `failures / calls ≥ rate`.
    Rate { rate: f64, min_calls: u32 },
    /// No trip rule: the throttle alone sheds (never opens). Only with `throttle`.
    None,
}

/// A configuration to try: the dimensions the search moves along.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    pub rule: Rule,
    /// The time window of the rate, slow-call and throttle rules, and its buckets.
    pub window: Duration,
    pub buckets: u32,
    /// Trip when at least half the window's calls take longer than this.
    pub slow: Option<Duration>,
    /// How long the first opening lasts.
    pub open: Duration,
    /// Each reopening doubles the open duration, up to 16 times `open` (with jitter); without
    /// it every opening lasts `open`.
    pub backoff: bool,
    /// Probe calls let through while HalfOpen; `min(3, probes)` successes close it.
    pub probes: u32,
    /// The adaptive throttle (`Throttle::sre()`) on top of the rule.
    pub throttle: bool,
}

/// Values each dimension takes in the search.
pub const CONSECUTIVE: [u32; 11] = [3, 5, 7, 10, 15, 20, 30, 50, 75, 100, 200];
pub const RATES: [f64; 5] = [0.1, 0.25, 0.5, 0.75, 0.9];
pub const MIN_CALLS: [u32; 6] = [5, 10, 20, 50, 100, 500];
pub const WINDOWS: [Duration; 5] = [
    Duration::from_secs(2),
    Duration::from_secs(5),
    Duration::from_secs(10),
    Duration::from_secs(30),
    Duration::from_secs(60),
];
pub const OPENS: [Duration; 6] = [
    Duration::from_millis(500),
    Duration::from_secs(1),
    Duration::from_secs(5),
    Duration::from_secs(15),
    Duration::from_secs(30),
    Duration::from_secs(60),
];
pub const BUCKETS: [u32; 3] = [5, 10, 20];
pub const PROBES: [u32; 4] = [1, 3, 10, 30];

/// The minimum-calls setting when the rule does not name one (slow-call rule and throttle).
const DEFAULT_MIN_CALLS: u32 = 20;

impl Candidate {
    /// The starting point of a search: 5 failures in a row, 10 s window, 5 s open, 3 probes.
    pub const START: Candidate = Candidate {
        rule: Rule::Consecutive(5),
        window: Duration::from_secs(10),
        buckets: 10,
        slow: None,
        open: Duration::from_secs(5),
        backoff: false,
        probes: 3,
        throttle: false,
    };

    /// The same behaviour with unused settings at their starting values (a consecutive rule
    /// alone reads no window), so that equal behaviours compare equal.
    pub fn normalized(mut self) -> Candidate {
        if matches!(self.rule, Rule::Consecutive(_)) && self.slow.is_none() && !self.throttle {
            self.window = Candidate::START.window;
            self.buckets = Candidate::START.buckets;
        }
        self
    }

    /// How likely the trip rule is to hold on healthy traffic whose calls fail independently
    /// at `p`: `p^n` for `n` in a row; for a rate, the chance that `min_calls` calls hold at
    /// least `rate` of failures (the binomial tail). 0 for no rule.
    pub fn false_trip_odds(&self, p: f64) -> f64 {
        let p = p.clamp(0.0, 1.0);
        match self.rule {
            Rule::Consecutive(n) => p.powi(n as i32),
            Rule::Rate { rate, min_calls } => {
                let m = min_calls;
                let need = (rate * f64::from(m)).ceil() as u32;
                binomial_tail(m, need, p)
            }
            Rule::None => 0.0,
        }
    }

    /// Whether the breaker can build it (a rule, or the throttle alone).
    pub fn is_valid(&self) -> bool {
        !(self.rule == Rule::None && !self.throttle && self.slow.is_none())
    }

    /// As a breaker configuration.
    pub fn config(&self) -> Config {
        let mut c = Config::default();
        match self.rule {
            Rule::Consecutive(n) => c.consecutive_failures = Some(n),
            Rule::Rate { rate, min_calls } => {
                c.failure_rate = Some(rate);
                c.minimum_calls = Some(min_calls);
            }
            Rule::None => {}
        }
        if c.minimum_calls.is_none() && (self.slow.is_some() || self.throttle) {
            c.minimum_calls = Some(DEFAULT_MIN_CALLS);
        }
        // A consecutive rule alone reads no window: left at the breaker's default.
        if !matches!(self.rule, Rule::Consecutive(_)) || self.slow.is_some() || self.throttle {
            c.time_window = Some(TimeWindow {
                window: self.window,
                buckets: self.buckets,
            });
        }
        c.slow_calls = self.slow.map(|d| SlowCalls::absolute(d, 0.5));
        if self.backoff {
            c.backoff = Some(Backoff::exponential(self.open, 2.0, self.open * 16));
        } else {
            c.open_timeout = Some(self.open);
        }
        c.half_open_permits = Some(self.probes);
        c.half_open_successes = Some(self.probes.min(3));
        if self.throttle {
            c.throttle = Some(Throttle::sre());
        }
        c
    }

    /// Every candidate one step from this one along one dimension (`slows`: the slow-call
    /// thresholds to try).
    pub fn neighbours(&self, slows: &[Duration]) -> Vec<Candidate> {
        let mut out = Vec::new();
        let me = self.normalized();
        let mut push = |c: Candidate| {
            let c = c.normalized();
            if c.is_valid() && c != me && !out.contains(&c) {
                out.push(c);
            }
        };
        match self.rule {
            Rule::Consecutive(n) => {
                for k in adjacent(&CONSECUTIVE, &n) {
                    push(Candidate {
                        rule: Rule::Consecutive(k),
                        ..*self
                    });
                }
            }
            Rule::Rate { rate, min_calls } => {
                for r in adjacent(&RATES, &rate) {
                    push(Candidate {
                        rule: Rule::Rate { rate: r, min_calls },
                        ..*self
                    });
                }
                for m in adjacent(&MIN_CALLS, &min_calls) {
                    push(Candidate {
                        rule: Rule::Rate { rate, min_calls: m },
                        ..*self
                    });
                }
            }
            Rule::None => {}
        }
        for w in adjacent(&WINDOWS, &self.window) {
            push(Candidate { window: w, ..*self });
        }
        for b in adjacent(&BUCKETS, &self.buckets) {
            push(Candidate {
                buckets: b,
                ..*self
            });
        }
        for o in adjacent(&OPENS, &self.open) {
            push(Candidate { open: o, ..*self });
        }
        for p in adjacent(&PROBES, &self.probes) {
            push(Candidate { probes: p, ..*self });
        }
        push(Candidate {
            backoff: !self.backoff,
            ..*self
        });
        push(Candidate {
            throttle: !self.throttle,
            ..*self
        });
        push(Candidate {
            slow: None,
            ..*self
        });
        for s in slows {
            push(Candidate {
                slow: Some(*s),
                ..*self
            });
        }
        out
    }

    /// The coarse grid: every rule × five open durations × 1, 3 or 10 probes × fixed or
    /// doubling openings, the rest at [`START`](Candidate::START); and the throttle alone.
    pub fn grid() -> Vec<Candidate> {
        let mut rules: Vec<Rule> = CONSECUTIVE.iter().map(|&n| Rule::Consecutive(n)).collect();
        for &rate in &RATES {
            for &min_calls in &MIN_CALLS {
                rules.push(Rule::Rate { rate, min_calls });
            }
        }
        let mut out = Vec::new();
        let opens = [
            Duration::from_millis(500),
            Duration::from_secs(1),
            Duration::from_secs(5),
            Duration::from_secs(15),
            Duration::from_secs(60),
        ];
        for rule in rules {
            for open in opens {
                for probes in [1, 3, 10] {
                    for backoff in [false, true] {
                        out.push(Candidate {
                            rule,
                            open,
                            probes,
                            backoff,
                            ..Candidate::START
                        });
                    }
                }
            }
        }
        out.push(Candidate {
            rule: Rule::None,
            throttle: true,
            ..Candidate::START
        });
        out
    }

    /// A key that tells candidates apart (floats by their bits).
    pub fn key(&self) -> String {
        format!("{self:?}")
    }
}

/// P[X ≥ k] for X ~ Binomial(n, p), summed in log space.
fn binomial_tail(n: u32, k: u32, p: f64) -> f64 {
    if k == 0 {
        return 1.0;
    }
    if p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return 1.0;
    }
    let ln_fact = |x: u32| (1..=x).map(|i| f64::from(i).ln()).sum::<f64>();
    let (lp, lq) = (p.ln(), (1.0 - p).ln());
    (k..=n)
        .map(|i| {
            (ln_fact(n) - ln_fact(i) - ln_fact(n - i) + f64::from(i) * lp + f64::from(n - i) * lq)
                .exp()
        })
        .sum::<f64>()
        .min(1.0)
}

/// The values beside `v` in `values` (sorted): the one before and the one after.
fn adjacent<T: PartialOrd + Copy>(values: &[T], v: &T) -> Vec<T> {
    let i = values.iter().position(|x| x >= v).unwrap_or(values.len());
    let mut out = Vec::new();
    if i > 0 {
        out.push(values[i - 1]);
    }
    let next = if i < values.len() && values[i] == *v {
        i + 1
    } else {
        i
    };
    if next < values.len() {
        out.push(values[next]);
    }
    out
}

impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.rule {
            Rule::Consecutive(n) => write!(f, "{n} in a row")?,
            Rule::Rate { rate, min_calls } => {
                write!(f, "rate {:.0}% of ≥{min_calls}", rate * 100.0)?
            }
            Rule::None => write!(f, "no rule")?,
        }
        if !matches!(self.rule, Rule::Consecutive(_)) || self.slow.is_some() || self.throttle {
            write!(f, ", window {}", human(self.window))?;
            if self.buckets != Candidate::START.buckets {
                write!(f, " in {} buckets", self.buckets)?;
            }
        }
        if let Some(s) = self.slow {
            write!(f, ", slow > {}", human(s))?;
        }
        write!(f, ", open {}", human(self.open))?;
        if self.backoff {
            write!(f, " ×2")?;
        }
        write!(f, ", {} probes", self.probes)?;
        if self.throttle {
            write!(f, ", throttle")?;
        }
        Ok(())
    }
}

/// A duration as people write it: `500ms`, `5s`, `1m`.
pub fn human(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(60_000) && ms > 0 {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1_000) && ms > 0 {
        format!("{}s", ms / 1_000)
    } else if d.as_micros().is_multiple_of(1_000) {
        format!("{ms}ms")
    } else {
        format!("{}µs", d.as_micros())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hotbreaker::Breaker;

    #[test]
    fn every_grid_point_and_neighbour_builds() {
        let slows = [Duration::from_millis(50)];
        for c in Candidate::grid() {
            assert!(Breaker::builder().config(c.config()).build().is_ok(), "{c}");
            for n in c.neighbours(&slows) {
                let built = Breaker::builder().config(n.config()).build();
                assert!(built.is_ok(), "{n}: {:?}", built.err());
            }
        }
    }

    #[test]
    fn neighbours_are_one_step_away() {
        assert_eq!(adjacent(&CONSECUTIVE, &5), vec![3, 7]);
        assert_eq!(adjacent(&CONSECUTIVE, &3), vec![5]);
        assert_eq!(adjacent(&CONSECUTIVE, &200), vec![100]);
        assert_eq!(adjacent(&CONSECUTIVE, &8), vec![7, 10]);
        assert!(
            !Candidate {
                rule: Rule::None,
                ..Candidate::START
            }
            .is_valid()
        );
    }

    #[test]
    fn false_trip_odds_follow_the_rule() {
        let c = |rule| Candidate {
            rule,
            ..Candidate::START
        };
        assert!((c(Rule::Consecutive(3)).false_trip_odds(0.1) - 0.001).abs() < 1e-12);
        // 2 of 2 at p = 0.5: 0.25; at least 1 of 2: 0.75.
        let r = |rate| c(Rule::Rate { rate, min_calls: 2 }).false_trip_odds(0.5);
        assert!((r(1.0) - 0.25).abs() < 1e-12 && (r(0.5) - 0.75).abs() < 1e-12);
        assert!(
            c(Rule::Consecutive(20)).false_trip_odds(0.02)
                < c(Rule::Consecutive(3)).false_trip_odds(0.02)
        );
        assert_eq!(c(Rule::None).false_trip_odds(0.5), 0.0);
    }

    #[test]
    fn a_candidate_reads_as_a_person_would_write_it() {
        let c = Candidate {
            backoff: true,
            throttle: true,
            ..Candidate::START
        };
        assert_eq!(
            c.to_string(),
            "5 in a row, window 10s, open 5s ×2, 3 probes, throttle"
        );
        assert_eq!(human(Duration::from_millis(1500)), "1500ms");
    }
}
