//! The trip decision over the window's counts, as pure functions.
//!
//! The consecutive-failure rule is decided by the state word itself (a Failure event carries the
//! threshold, and the swap that lengthens the run to it is the swap that trips: see
//! [`state::next`](crate::state::next)). The rules here need the window's counts.

use crate::rules::Predicate;
use crate::rules_cell::RuleSet;
use crate::state::Cause;
use crate::window::WindowStats;

/// Whether any rule reads the window: if not, a Failure need not sum it.
pub(crate) fn reads_window(rules: &RuleSet, predicate: Option<&Predicate>) -> bool {
    rules.failure_rate.is_some() || rules.slow.is_some() || predicate.is_some()
}

/// The window rule that holds for `stats`, if any, in the order the causes are reported:
/// failure rate, slow-call rate, then the user's predicate. `minimum_calls` gates the two rates,
/// not the predicate.
pub(crate) fn window_cause(
    rules: &RuleSet,
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;
    use crate::backoff::Backoff;
    use crate::rate::Rate;
    use crate::rules::SlowRule;
    use crate::state::Limits;

    fn rules(failure_rate: Option<f64>, slow_rate: Option<f64>, minimum_calls: u32) -> RuleSet {
        RuleSet {
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
