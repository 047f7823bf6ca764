//! The trip decision over the window's counts, as pure functions.
//!
//! The consecutive-failure rule is decided from the stripes' local runs (`consecutive.rs`). The
//! rules here need the window's counts.

use super::Predicate;
use super::cell::LiveRules;
use crate::evaluation::LOOKAHEAD;
use crate::state::Cause;
use crate::window::WindowStats;

/// Whether any rule reads the window: if not, a Failure need not sum it.
pub(crate) fn reads_window(rules: &LiveRules, predicate: Option<&Predicate>) -> bool {
    rules.failure_rate.is_some() || rules.slow.is_some() || predicate.is_some()
}

/// The window rule that holds for `stats`, if any, in the order the causes are reported:
/// failure rate, slow-call rate, then the user's predicate. `minimum_calls` gates the two rates,
/// not the predicate.
pub(crate) fn window_cause(
    rules: &LiveRules,
    predicate: Option<&Predicate>,
    stats: &WindowStats,
) -> Option<Cause> {
    let enough = stats.calls >= u64::from(rules.minimum_calls);
    if enough
        && rules
            .failure_rate
            .is_some_and(|r| r.reached(stats.failures, stats.calls))
    {
        Some(Cause::FailureRate)
    } else if enough
        && rules
            .slow
            .is_some_and(|s| s.rate.reached(stats.slow, stats.calls))
    {
        Some(Cause::SlowCallRate)
    } else if predicate.is_some_and(|p| p(stats)) {
        Some(Cause::CustomRule)
    } else {
        None
    }
}

/// The fewest Failures or slow calls (events) that, added to `stats`, could make a window rule
/// hold: at least 1, [`LOOKAHEAD`] when none can within it. `cap`: a count window's size (its
/// calls never exceed it), `None` for a time window.
///
/// Adding `d` events that are each a slow Failure, and as many Successes as `minimum_calls`
/// asks for, is the most any `d` events can do to both rates at once (a Success only lowers a
/// rate once the minimum is met): the window would hold `F + d` Failures and `S + d` slow calls
/// out of `max(minimum_calls, C + d)` calls. Both rates only grow with `d`, so the answer is
/// found by bisection. A user predicate can hold after any event: 1.
pub(crate) fn events_until_possible(
    rules: &LiveRules,
    predicate: Option<&Predicate>,
    stats: &WindowStats,
    cap: Option<u64>,
) -> u64 {
    if predicate.is_some() {
        return 1;
    }
    if rules.failure_rate.is_none() && rules.slow.is_none() {
        return LOOKAHEAD;
    }
    let holds = |d: u64| {
        let calls = stats
            .calls
            .saturating_add(d)
            .max(u64::from(rules.minimum_calls));
        let calls = cap.map_or(calls, |cap| calls.min(cap));
        let after = WindowStats {
            calls,
            failures: stats.failures.saturating_add(d).min(calls),
            slow: stats.slow.saturating_add(d).min(calls),
            throttled: stats.throttled,
            answered: stats.answered,
        };
        window_cause(rules, None, &after).is_some()
    };
    if !holds(LOOKAHEAD) {
        return LOOKAHEAD;
    }
    let (mut lo, mut hi) = (0, LOOKAHEAD); // holds(hi), and not holds(lo) unless lo == 0
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if holds(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    hi
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::rules::Backoff;
    use crate::rules::SlowRule;
    use crate::rules::rate::Rate;
    use crate::state::Limits;

    fn rules(failure_rate: Option<f64>, slow_rate: Option<f64>, minimum_calls: u32) -> LiveRules {
        LiveRules {
            consecutive_failures: None,
            failure_rate: failure_rate.and_then(Rate::new),
            minimum_calls,
            slow: slow_rate.map(|r| SlowRule {
                duration_ns: 1,
                rate: Rate::new(r).unwrap(),
                relative: None,
            }),
            backoff: Backoff::fixed(Duration::from_secs(1)),
            limits: Limits {
                half_open_permits: 1,
                half_open_successes: 1,
            },
            half_open_timeout_ns: None,
            throttle: None,
        }
    }

    fn stats(calls: u64, failures: u64, slow: u64) -> WindowStats {
        WindowStats {
            calls,
            failures,
            slow,
            throttled: 0,
            answered: 0,
        }
    }

    #[test]
    fn rates_need_minimum_calls_and_compare_inclusively() {
        let r = rules(Some(0.5), None, 4);
        assert_eq!(window_cause(&r, None, &stats(3, 3, 0)), None);
        assert_eq!(
            window_cause(&r, None, &stats(4, 2, 0)),
            Some(Cause::FailureRate)
        );
        assert_eq!(window_cause(&r, None, &stats(5, 2, 0)), None);
    }

    #[test]
    fn the_failure_rate_is_reported_before_the_slow_rate() {
        let r = rules(Some(0.5), Some(0.5), 1);
        assert_eq!(
            window_cause(&r, None, &stats(2, 1, 1)),
            Some(Cause::FailureRate)
        );
        assert_eq!(
            window_cause(&r, None, &stats(2, 0, 1)),
            Some(Cause::SlowCallRate)
        );
    }

    #[test]
    fn the_predicate_ignores_minimum_calls() {
        let r = rules(None, None, 1_000);
        let p: Predicate = Arc::new(|s: &WindowStats| s.failures >= 2);
        assert!(reads_window(&r, Some(&p)));
        assert!(!reads_window(&r, None));
        assert_eq!(
            window_cause(&r, Some(&p), &stats(2, 2, 0)),
            Some(Cause::CustomRule)
        );
        assert_eq!(window_cause(&r, Some(&p), &stats(2, 1, 0)), None);
    }

    /// Brute force: the answer is the first `d` at which adding `d` slow Failures (and any
    /// Successes) makes a rule hold, and no mix of fewer events could.
    #[test]
    fn events_until_possible_is_the_least_number_that_could_trip() {
        for (fr, sr, m) in [
            (Some(0.5), None, 4),
            (Some(0.3), Some(0.8), 10),
            (None, Some(0.25), 1),
            (Some(1.0), None, 1),
        ] {
            let r = rules(fr, sr, m);
            for calls in 0..30u64 {
                for failures in 0..=calls {
                    for slow in [0, calls / 2, calls] {
                        let s = stats(calls, failures, slow);
                        let d = events_until_possible(&r, None, &s, None);
                        let trips = |x: u64, y: u64, succ: u64| {
                            let c = calls + x + y + succ;
                            window_cause(&r, None, &stats(c, failures + x, slow + y)).is_some()
                        };
                        // Fewer than d events (at least one: rules are evaluated on events
                        // only), in any split and with any Successes: no trip.
                        for e in 1..d.min(40) {
                            for x in 0..=e {
                                for succ in 0..(u64::from(m) + 2) {
                                    assert!(
                                        !trips(x, e - x, succ),
                                        "{fr:?} {sr:?} {m} {s:?}: {x}+{} events, {succ} S trip before {d}",
                                        e - x
                                    );
                                }
                            }
                        }
                        if d < LOOKAHEAD && d > 0 {
                            let needed = u64::from(m).saturating_sub(calls + d);
                            let c = calls + d + needed;
                            let x = stats(c, failures + d, (slow + d).min(c));
                            assert!(window_cause(&r, None, &x).is_some(), "{s:?} {d}");
                        }
                    }
                }
            }
        }
        let p: Predicate = Arc::new(|_: &WindowStats| false);
        assert_eq!(
            events_until_possible(&rules(Some(0.5), None, 4), Some(&p), &stats(9, 0, 0), None),
            1
        );
        assert_eq!(
            events_until_possible(&rules(None, None, 4), None, &stats(9, 0, 0), None),
            LOOKAHEAD
        );
    }

    #[test]
    fn a_count_window_never_holds_more_calls_than_its_size() {
        // 100 calls of a count window of 100, 10 failures, 50 %: 40 more failures (each
        // replacing a Success).
        let r = rules(Some(0.5), None, 100);
        assert_eq!(
            events_until_possible(&r, None, &stats(100, 10, 0), Some(100)),
            40
        );
        // minimum_calls above the size: never.
        let r = rules(Some(0.5), None, 200);
        assert_eq!(
            events_until_possible(&r, None, &stats(100, 10, 0), Some(100)),
            LOOKAHEAD
        );
    }

    #[test]
    fn large_windows_keep_their_true_rate() {
        // 1 000 000 successes then 32 768 failures: 3.2 %, far below 50 %.
        let r = rules(Some(0.5), None, 20);
        assert_eq!(window_cause(&r, None, &stats(1_032_768, 32_768, 0)), None);
        assert_eq!(
            window_cause(&r, None, &stats(1_000_000, 500_000, 0)),
            Some(Cause::FailureRate)
        );
    }
}
