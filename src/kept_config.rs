//! The settings a breaker keeps as the user wrote them, for [`Breaker::config`] and
//! [`Breaker::reconfigure`]: read off every call's path only.
//!
//! A whole [`Config`] is 300-odd bytes, most of them `None`. A breaker whose settings nobody
//! else holds keeps them *packed*: the fields that are set, in 64-bit words (a breaker built
//! with a failure threshold and a stripe count keeps three words; a duration takes two). A
//! registry's breakers of one configuration share its `Arc<Config>` instead, as one copy serves
//! them all; a dropped registry has the breakers that outlive it, alone with a configuration,
//! pack theirs ([`KeptConfig::settle`]).
//!
//! [`Breaker::config`]: crate::Breaker::config
//! [`Breaker::reconfigure`]: crate::Breaker::reconfigure

use std::sync::Arc;
use std::time::Duration;

use crate::config::{Config, SlowCalls, TimeWindow};
use crate::failure_statuses::FailureStatuses;
use crate::rules::backoff::Backoff;
use crate::throttle::Throttle;

/// A breaker's settings: shared with other breakers, or packed for this one alone.
#[derive(Debug)]
pub(crate) enum KeptConfig {
    Shared(Arc<Config>),
    Packed(PackedConfig),
}

impl KeptConfig {
    /// Keeps `config`: as it is when something else holds it too (a registry's configuration),
    /// packed otherwise.
    pub(crate) fn of(config: Arc<Config>) -> KeptConfig {
        if Arc::strong_count(&config) == 1 {
            KeptConfig::Packed(PackedConfig::pack(&config))
        } else {
            KeptConfig::Shared(config)
        }
    }

    /// Packs shared settings that this breaker now holds alone (the registry that shared them
    /// dropped them), as [`of`](KeptConfig::of) would have; leaves any other as it is.
    pub(crate) fn settle(&mut self) {
        if let KeptConfig::Shared(config) = self
            && Arc::strong_count(config) == 1
        {
            let packed = PackedConfig::pack(config);
            *self = KeptConfig::Packed(packed);
        }
    }

    /// The settings as they were written.
    pub(crate) fn config(&self) -> Config {
        match self {
            KeptConfig::Shared(config) => Config::clone(config),
            KeptConfig::Packed(packed) => packed.unpack(),
        }
    }

    /// This breaker's share of the heap its settings take: a shared configuration's `Arc` (its
    /// two counts and the [`Config`]) divided among its holders, or the packed words.
    #[cfg(any(test, feature = "test-util"))]
    pub(crate) fn heap_bytes(&self) -> usize {
        match self {
            KeptConfig::Shared(config) => {
                (2 * std::mem::size_of::<usize>() + std::mem::size_of::<Config>())
                    / Arc::strong_count(config)
            }
            KeptConfig::Packed(packed) => std::mem::size_of_val(&*packed.0),
        }
    }
}

/// Word 0: which fields of [`Config`] are set (bit `i` for its `i`-th field, in declaration
/// order); then each set field's words, in the same order. No words at all, and no
/// allocation, when no field is set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PackedConfig(Box<[u64]>);

impl PackedConfig {
    pub(crate) fn pack(config: &Config) -> PackedConfig {
        // Every field by name: a field added to `Config` does not compile here until it is
        // packed too.
        let Config {
            consecutive_failures,
            failure_rate,
            minimum_calls,
            time_window,
            count_window,
            slow_calls,
            open_timeout,
            backoff,
            half_open_permits,
            half_open_successes,
            half_open_timeout,
            stripes,
            throttle,
            call_timeout,
            failure_statuses,
            critical,
        } = config;
        let mut w = Packer::default();
        w.field(consecutive_failures, |w, &v| w.push(u64::from(v)));
        w.field(failure_rate, |w, &v| w.push(v.to_bits()));
        w.field(minimum_calls, |w, &v| w.push(u64::from(v)));
        w.field(time_window, |w, v| {
            duration(w, v.window);
            w.push(u64::from(v.buckets));
        });
        w.field(count_window, |w, &v| w.push(u64::from(v)));
        w.field(slow_calls, |w, v| {
            let present = [
                v.duration.is_some(),
                v.relative.is_some(),
                v.min_duration.is_some(),
            ];
            w.push(present.iter().rev().fold(0, |m, &p| m << 1 | u64::from(p)));
            v.duration.into_iter().for_each(|d| duration(w, d));
            v.relative.into_iter().for_each(|r| w.push(r.to_bits()));
            v.min_duration.into_iter().for_each(|d| duration(w, d));
            w.push(v.rate.to_bits());
        });
        w.field(open_timeout, |w, &v| duration(w, v));
        w.field(backoff, |w, v| {
            duration(w, v.base);
            w.push(v.multiplier.to_bits());
            duration(w, v.max);
            w.push(u64::from(v.jitter));
        });
        w.field(half_open_permits, |w, &v| w.push(u64::from(v)));
        w.field(half_open_successes, |w, &v| w.push(u64::from(v)));
        w.field(half_open_timeout, |w, &v| duration(w, v));
        w.field(stripes, |w, &v| w.push(u64::from(v)));
        w.field(throttle, |w, v| {
            w.push(v.k.to_bits());
            w.push(v.max_rejection.to_bits());
        });
        w.field(call_timeout, |w, &v| duration(w, v));
        w.field(failure_statuses, |w, v| w.extend(v.words()));
        w.field(critical, |w, &v| w.push(u64::from(v)));
        PackedConfig(w.finish())
    }

    pub(crate) fn unpack(&self) -> Config {
        let mut r = Unpacker::new(&self.0);
        Config {
            consecutive_failures: r.field(|r| r.u32()),
            failure_rate: r.field(|r| r.f64()),
            minimum_calls: r.field(|r| r.u32()),
            time_window: r.field(|r| TimeWindow {
                window: r.duration(),
                buckets: r.u32(),
            }),
            count_window: r.field(|r| r.u32()),
            slow_calls: r.field(|r| {
                let present = r.word();
                SlowCalls {
                    duration: (present & 1 != 0).then(|| r.duration()),
                    relative: (present & 2 != 0).then(|| r.f64()),
                    min_duration: (present & 4 != 0).then(|| r.duration()),
                    rate: r.f64(),
                }
            }),
            open_timeout: r.field(|r| r.duration()),
            backoff: r.field(|r| Backoff {
                base: r.duration(),
                multiplier: r.f64(),
                max: r.duration(),
                jitter: r.word() != 0,
            }),
            half_open_permits: r.field(|r| r.u32()),
            half_open_successes: r.field(|r| r.u32()),
            half_open_timeout: r.field(|r| r.duration()),
            stripes: r.field(|r| r.u32()),
            throttle: r.field(|r| Throttle {
                k: r.f64(),
                max_rejection: r.f64(),
            }),
            call_timeout: r.field(|r| r.duration()),
            failure_statuses: r
                .field(|r| FailureStatuses::from_words(std::array::from_fn(|_| r.word()))),
            critical: r.field(|r| r.word() != 0),
        }
    }
}

/// A duration in two words: whole seconds, then nanoseconds.
fn duration(words: &mut Vec<u64>, d: Duration) {
    words.push(d.as_secs());
    words.push(u64::from(d.subsec_nanos()));
}

#[derive(Default)]
struct Packer {
    set: u64,
    field: u32,
    words: Vec<u64>,
}

impl Packer {
    /// The next field: its bit, and its words when it is set.
    fn field<T>(&mut self, value: &Option<T>, pack: impl FnOnce(&mut Vec<u64>, &T)) {
        if let Some(value) = value {
            self.set |= 1 << self.field;
            pack(&mut self.words, value);
        }
        self.field += 1;
    }

    fn finish(self) -> Box<[u64]> {
        if self.set == 0 {
            return Box::new([]);
        }
        std::iter::once(self.set).chain(self.words).collect()
    }
}

struct Unpacker<'a> {
    set: u64,
    field: u32,
    words: std::slice::Iter<'a, u64>,
}

impl<'a> Unpacker<'a> {
    fn new(packed: &'a [u64]) -> Unpacker<'a> {
        let (set, words) = packed.split_first().unwrap_or((&0, &[]));
        Unpacker {
            set: *set,
            field: 0,
            words: words.iter(),
        }
    }

    /// The next field: `None` unless its bit is set.
    fn field<T>(&mut self, unpack: impl FnOnce(&mut Self) -> T) -> Option<T> {
        let set = self.set & (1 << self.field) != 0;
        self.field += 1;
        set.then(|| unpack(self))
    }

    /// The next word (0 past the end, which packing never leaves to be read).
    fn word(&mut self) -> u64 {
        self.words.next().copied().unwrap_or(0)
    }

    fn u32(&mut self) -> u32 {
        u32::try_from(self.word()).unwrap_or(u32::MAX)
    }

    fn f64(&mut self) -> f64 {
        f64::from_bits(self.word())
    }

    fn duration(&mut self) -> Duration {
        let secs = self.word();
        let nanos = self.word();
        Duration::from_secs(secs).saturating_add(Duration::from_nanos(nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(config: &Config) {
        let packed = PackedConfig::pack(config);
        assert_eq!(&packed.unpack(), config);
    }

    #[test]
    fn no_setting_takes_no_words() {
        let packed = PackedConfig::pack(&Config::default());
        assert!(packed.0.is_empty());
        round_trip(&Config::default());
    }

    #[test]
    fn a_setting_takes_its_words_and_one_for_the_set() {
        let config = Config {
            stripes: Some(1),
            ..Config::default()
        };
        assert_eq!(PackedConfig::pack(&config).0.len(), 2);
        round_trip(&config);
    }

    /// Every field set, at the edges of its type, and every field alone: each comes back as it
    /// was written, bit for bit.
    #[test]
    fn every_setting_comes_back_as_written() {
        let max = Duration::MAX;
        let odd = Duration::new(7, 999_999_999);
        let mut statuses = FailureStatuses::NONE;
        for status in [400, 429, 503, 599] {
            statuses = statuses.with(status).expect("a failure status");
        }
        let full = |d: Duration, x: f64, n: u32, b: bool| Config {
            consecutive_failures: Some(n),
            failure_rate: Some(x),
            minimum_calls: Some(n),
            time_window: Some(TimeWindow {
                window: d,
                buckets: n,
            }),
            count_window: Some(n),
            slow_calls: Some(SlowCalls {
                duration: Some(d),
                relative: Some(x),
                min_duration: Some(odd),
                rate: -x,
            }),
            open_timeout: Some(d),
            backoff: Some(Backoff {
                base: odd,
                multiplier: x,
                max: d,
                jitter: b,
            }),
            half_open_permits: Some(n),
            half_open_successes: Some(n),
            half_open_timeout: Some(d),
            stripes: Some(n),
            throttle: Some(Throttle {
                k: x,
                max_rejection: -x,
            }),
            call_timeout: Some(d),
            failure_statuses: Some(statuses),
            critical: Some(b),
        };
        for (d, x, n, b) in [
            (max, f64::MAX, u32::MAX, true),
            (Duration::ZERO, 0.0, 0, false),
            (odd, 0.1, 17, true),
            (Duration::from_nanos(1), f64::MIN_POSITIVE, 1, false),
        ] {
            let config = full(d, x, n, b);
            round_trip(&config);
            for partial in [
                SlowCalls::absolute(d, x),
                SlowCalls::relative(x, x),
                SlowCalls::relative(x, x).min_duration(d),
            ] {
                round_trip(&Config {
                    slow_calls: Some(partial),
                    ..full(d, x, n, b)
                });
            }
            // Each field alone: a field's bit and words never stand for another's.
            let alone: [Config; 16] = [
                Config {
                    consecutive_failures: config.consecutive_failures,
                    ..Config::default()
                },
                Config {
                    failure_rate: config.failure_rate,
                    ..Config::default()
                },
                Config {
                    minimum_calls: config.minimum_calls,
                    ..Config::default()
                },
                Config {
                    time_window: config.time_window,
                    ..Config::default()
                },
                Config {
                    count_window: config.count_window,
                    ..Config::default()
                },
                Config {
                    slow_calls: config.slow_calls,
                    ..Config::default()
                },
                Config {
                    open_timeout: config.open_timeout,
                    ..Config::default()
                },
                Config {
                    backoff: config.backoff,
                    ..Config::default()
                },
                Config {
                    half_open_permits: config.half_open_permits,
                    ..Config::default()
                },
                Config {
                    half_open_successes: config.half_open_successes,
                    ..Config::default()
                },
                Config {
                    half_open_timeout: config.half_open_timeout,
                    ..Config::default()
                },
                Config {
                    stripes: config.stripes,
                    ..Config::default()
                },
                Config {
                    throttle: config.throttle,
                    ..Config::default()
                },
                Config {
                    call_timeout: config.call_timeout,
                    ..Config::default()
                },
                Config {
                    failure_statuses: config.failure_statuses,
                    ..Config::default()
                },
                Config {
                    critical: config.critical,
                    ..Config::default()
                },
            ];
            for config in &alone {
                round_trip(config);
            }
        }
    }

    /// Every combination of set fields (2^16), with values whose words differ from field to
    /// field: a field set or unset never shifts another's words.
    #[test]
    fn every_combination_of_set_fields_comes_back_as_written() {
        let full = Config {
            consecutive_failures: Some(3),
            failure_rate: Some(0.25),
            minimum_calls: Some(11),
            time_window: Some(TimeWindow {
                window: Duration::new(60, 5),
                buckets: 12,
            }),
            count_window: Some(100),
            slow_calls: Some(SlowCalls::relative(3.0, 0.5).min_duration(Duration::new(0, 7))),
            open_timeout: Some(Duration::new(30, 1)),
            backoff: Some(Backoff {
                base: Duration::new(1, 2),
                multiplier: 1.5,
                max: Duration::new(300, 3),
                jitter: true,
            }),
            half_open_permits: Some(4),
            half_open_successes: Some(2),
            half_open_timeout: Some(Duration::new(9, 9)),
            stripes: Some(16),
            throttle: Some(Throttle {
                k: 2.0,
                max_rejection: 0.9,
            }),
            call_timeout: Some(Duration::new(2, 200)),
            failure_statuses: Some(FailureStatuses::NONE.with(503).expect("a failure status")),
            critical: Some(false),
        };
        for mask in 0..1u32 << 16 {
            let pick = |i: u32| mask & 1 << i != 0;
            let config = Config {
                consecutive_failures: full.consecutive_failures.filter(|_| pick(0)),
                failure_rate: full.failure_rate.filter(|_| pick(1)),
                minimum_calls: full.minimum_calls.filter(|_| pick(2)),
                time_window: full.time_window.filter(|_| pick(3)),
                count_window: full.count_window.filter(|_| pick(4)),
                slow_calls: full.slow_calls.filter(|_| pick(5)),
                open_timeout: full.open_timeout.filter(|_| pick(6)),
                backoff: full.backoff.filter(|_| pick(7)),
                half_open_permits: full.half_open_permits.filter(|_| pick(8)),
                half_open_successes: full.half_open_successes.filter(|_| pick(9)),
                half_open_timeout: full.half_open_timeout.filter(|_| pick(10)),
                stripes: full.stripes.filter(|_| pick(11)),
                throttle: full.throttle.filter(|_| pick(12)),
                call_timeout: full.call_timeout.filter(|_| pick(13)),
                failure_statuses: full.failure_statuses.filter(|_| pick(14)),
                critical: full.critical.filter(|_| pick(15)),
            };
            let packed = PackedConfig::pack(&config);
            assert_eq!(packed.0.first().copied().unwrap_or(0), u64::from(mask));
            assert_eq!(packed.unpack(), config, "fields {mask:#06x}");
        }
    }

    /// Words that packing never wrote (cut short, or any bits at all) unpack to some
    /// configuration without a panic: what validation makes of it is another matter.
    #[test]
    fn any_words_unpack_without_a_panic() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..20_000 {
            let len = (next() % 40) as usize;
            let words: Box<[u64]> = (0..len).map(|_| next()).collect();
            let _ = PackedConfig(words).unpack();
        }
        for len in 0..40 {
            let _ = PackedConfig(vec![u64::MAX; len].into_boxed_slice()).unpack();
        }
    }

    #[test]
    fn a_configuration_held_elsewhere_is_shared_not_packed() {
        let config = Arc::new(Config {
            consecutive_failures: Some(3),
            ..Config::default()
        });
        let kept = KeptConfig::of(Arc::clone(&config));
        assert!(matches!(kept, KeptConfig::Shared(_)));
        assert_eq!(kept.config(), *config);
        let alone = KeptConfig::of(Arc::new(Config::clone(&config)));
        assert!(matches!(alone, KeptConfig::Packed(_)));
        assert_eq!(alone.config(), *config);
        assert_eq!(alone.heap_bytes(), 2 * 8);
    }
}
