//! A seeded generator of configurations and operation sequences (no external crate: the test
//! must be reproducible from its seed alone).

use crate::config::{ModelConfig, Window};
use crate::driver::{LONG_COUNTS, Op};
use hotbreaker::Outcome;

const MS: u64 = 1_000_000;

/// splitmix64.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// A random valid configuration, small enough that sequences reach every state.
pub fn random_config(rng: &mut Rng) -> ModelConfig {
    let rates: [f64; 7] = [1.0, 0.5, 0.25, 0.1, 0.3333, 0.07, 0.9];
    let rate_ppb = |rng: &mut Rng| (rng.pick(&rates) * 1e9).round() as u64;
    let window = if rng.chance(70) {
        Window::Time {
            width_ns: rng.pick(&[1, 5, 100, 1000]) * MS,
            buckets: rng.pick(&[1, 2, 3, 10, 17, 64, 100, 256]),
        }
    } else {
        Window::Count(rng.pick(&[1, 2, 4, 10]))
    };
    let max_window = match window {
        Window::Count(n) => n,
        Window::Time { .. } => 12,
    };
    let mut c = ModelConfig {
        consecutive: rng.chance(50).then(|| 1 + rng.below(5) as u32),
        failure_rate_ppb: rng.chance(50).then(|| rate_ppb(rng)),
        minimum_calls: 1 + rng.below(u64::from(max_window)) as u32,
        window,
        slow: rng
            .chance(30)
            .then(|| (rng.pick(&[1, 10, 100]) * MS, rate_ppb(rng))),
        trip_at_failures: rng.chance(15).then(|| 1 + rng.below(6)),
        backoff_base_ns: rng.pick(&[1, 10, 1000]) * MS,
        backoff_multiplier: rng.pick(&[1.0, 2.0, 1.5]),
        backoff_max_ns: 0,
        half_open_permits: 1 + rng.below(3) as u32,
        half_open_successes: 1,
        half_open_timeout: rng.chance(30).then(|| rng.pick(&[1, 50, 2000]) * MS),
        throttle: None,
    };
    c.backoff_max_ns = c.backoff_base_ns * rng.pick(&[1, 4, 100]);
    c.half_open_successes = 1 + rng.below(u64::from(c.half_open_permits)) as u32;
    if matches!(c.window, Window::Time { .. }) && rng.chance(35) {
        c.throttle = Some((
            rng.pick(&[1.5, 2.0, 2.5, 3.0]),
            rng.pick(&[0.0, 0.5, 0.9, 0.99]),
        ));
    }
    if c.throttle.is_none()
        && c.consecutive.is_none()
        && c.failure_rate_ppb.is_none()
        && c.slow.is_none()
        && c.trip_at_failures.is_none()
    {
        c.consecutive = Some(2);
    }
    c
}

/// A random sequence of operations, with clock steps of 0, exactly an open duration, and more.
pub fn random_ops(rng: &mut Rng, config: &ModelConfig, len: usize) -> Vec<Op> {
    let outcomes = [Outcome::Success, Outcome::Failure, Outcome::Ignored];
    (0..len)
        .map(|_| match rng.below(100) {
            0..=29 => Op::Call(rng.pick(&[
                Outcome::Failure,
                Outcome::Failure,
                Outcome::Success,
                Outcome::Ignored,
            ])),
            30..=44 => Op::Acquire,
            45..=59 => Op::Record {
                index: rng.below(8) as u8,
                outcome: rng.pick(&outcomes),
            },
            60..=64 => Op::Drop {
                index: rng.below(8) as u8,
            },
            65..=84 => Op::Advance {
                ns: match rng.below(6) {
                    0 => 0,
                    1 => config.backoff_base_ns,
                    2 => config.backoff_base_ns - 1,
                    3 => rng.below(3) * MS,
                    4 => rng.below(2_000) * MS,
                    _ => rng.below(5_000_000),
                },
            },
            85..=86 => Op::Isolate,
            87..=88 => Op::Disable,
            89..=91 => Op::Reset,
            92 => Op::Resets {
                n: rng.below(40) as u32,
            },
            93 => Op::Burst {
                n: rng.below(40) as u32,
                outcome: rng.pick(&outcomes),
            },
            94 => Op::Flap {
                n: rng.below(6) as u32,
            },
            95 => Op::Idle {
                laps: rng.below(3) as u32,
                extra_ns: rng.below(config.lap_ns()),
            },
            96 => Op::FleetTrip {
                ns: match rng.below(4) {
                    0 => 0,
                    1 => config.backoff_base_ns,
                    2 => rng.below(5_000) * MS,
                    _ => u64::MAX / 2, // more than any backoff allows: capped
                },
            },
            97 => Op::FleetHalfOpen,
            _ => Op::Metrics,
        })
        .collect()
}

/// A configuration for long horizons: `random_config`, sometimes with a `minimum_calls` that
/// only a burst of more than 2^16 calls in one bucket reaches (time windows only: a count
/// window refuses more than it holds), and always with a rule that failures trip, so that
/// flapping flaps.
pub fn random_long_config(rng: &mut Rng) -> ModelConfig {
    let mut c = random_config(rng);
    if matches!(c.window, Window::Time { .. }) && rng.chance(30) {
        c.minimum_calls = rng.pick(&[65_536, 100_000, 131_073]);
        if c.failure_rate_ppb.is_none() {
            c.failure_rate_ppb = Some(rng.pick(&[500_000_000, 1_000_000_000, 70_000_000]));
        }
    }
    if c.consecutive.is_none() && c.failure_rate_ppb.is_none() && c.trip_at_failures.is_none() {
        c.consecutive = Some(1 + rng.below(3) as u32);
    }
    c
}

/// A long-horizon operation of kind `kind % 4`, reaching 2^15 to past 2^17 of what it repeats:
/// resets, flap transitions, calls in one bucket, laps of the ring (or days to years).
fn long_op(rng: &mut Rng, config: &ModelConfig, kind: usize) -> Op {
    let count = |rng: &mut Rng| {
        if rng.chance(60) {
            rng.pick(&LONG_COUNTS)
        } else {
            (1 << 17) + rng.below(1 << 16) as u32
        }
    };
    match kind % 4 {
        0 => Op::Resets { n: count(rng) },
        // Two transitions per cycle: 2^16 cycles and more reach 2^17 transitions.
        1 => Op::Flap {
            n: count(rng) / 2 + rng.below(2) as u32,
        },
        2 => Op::Burst {
            n: count(rng),
            outcome: rng.pick(&[Outcome::Success, Outcome::Failure, Outcome::Failure]),
        },
        _ => {
            let lap = config.lap_ns();
            match rng.below(3) {
                // Whole laps: a lap counter that wraps sees the very same lap again.
                0 => Op::Idle {
                    laps: rng.pick(&LONG_COUNTS),
                    extra_ns: rng.pick(&[0, 0, 1, lap / 2, lap - 1]),
                },
                1 => Op::Idle {
                    laps: (1 << 17) + rng.below(1 << 20) as u32,
                    extra_ns: rng.below(lap),
                },
                // Days to years, whatever the ring.
                _ => Op::Advance {
                    ns: rng.pick(&[1, 7, 30, 365, 3_650]) * 86_400 * 1_000_000_000
                        + rng.below(1_000_000_000),
                },
            }
        }
    }
}

/// `random_ops` with `long` long-horizon operations spread through it, the four kinds in turn
/// (`long` ≥ 4 holds each kind), each followed by a few ordinary steps that look at what it
/// left. A flap comes after a reset, as Isolated or Disabled would make it do nothing.
pub fn random_long_ops(rng: &mut Rng, config: &ModelConfig, len: usize, long: usize) -> Vec<Op> {
    let mut ops = random_ops(rng, config, len);
    for kind in 0..long {
        let at = rng.below(ops.len() as u64 + 1) as usize;
        let op = long_op(rng, config, kind);
        let mut inserted = vec![op];
        if matches!(op, Op::Flap { .. }) {
            inserted.insert(0, Op::Reset);
        }
        inserted.extend(random_ops(rng, config, 8));
        ops.splice(at..at, inserted);
    }
    ops
}
