//! The settings in force with every default filled in: what `Breaker::effective_config` shows.

use super::defaults;
use crate::config::{Config, TimeWindow};

/// The consecutive-failure and failure-rate rules in force: `c`'s own, or the defaults when
/// it sets no trip rule and no throttle (`custom_rule`: a `trip_when` predicate is set). A
/// throttle alone never opens the breaker, it only sheds load.
pub(super) fn trip_rules(c: &Config, custom_rule: bool) -> (Option<u32>, Option<f64>) {
    let any_rule = custom_rule
        || c.consecutive_failures.is_some()
        || c.failure_rate.is_some()
        || c.slow_calls.is_some()
        || c.throttle.is_some();
    if any_rule {
        (c.consecutive_failures, c.failure_rate)
    } else {
        (
            Some(defaults::CONSECUTIVE_FAILURES),
            Some(defaults::FAILURE_RATE),
        )
    }
}

/// `c` with every setting it leaves unset filled with the value in force, as the validation
/// resolves it: the default trip rules when no trip rule or throttle is set, the default window,
/// backoff and half-open settings, `stripes` as the breaker has them (`stripes`),
/// `failure_statuses = ["5xx"]` and `critical = false`. Settings that are off stay `None` (`slow_calls`, `half_open_timeout`,
/// `call_timeout`, `throttle`), as does the one of `open_timeout` and `backoff` that is not in force.
/// `custom_rule`: the breaker has a custom trip rule (`trip_when`), which replaces the defaults.
pub(crate) fn effective(c: &Config, stripes: u32, custom_rule: bool) -> Config {
    let (consecutive_failures, failure_rate) = trip_rules(c, custom_rule);
    let time_window = match (c.time_window, c.count_window) {
        (None, None) => Some(TimeWindow {
            window: defaults::TIME_WINDOW,
            buckets: defaults::BUCKETS,
        }),
        (time, _) => time,
    };
    let backoff = match (c.open_timeout, c.backoff) {
        (None, None) => Some(defaults::BACKOFF),
        (_, backoff) => backoff,
    };
    let half_open_permits = c.half_open_permits.unwrap_or(defaults::HALF_OPEN_PERMITS);
    Config {
        consecutive_failures,
        failure_rate,
        minimum_calls: Some(c.minimum_calls.unwrap_or(defaults::MINIMUM_CALLS)),
        time_window,
        count_window: c.count_window,
        slow_calls: c.slow_calls,
        open_timeout: c.open_timeout,
        backoff,
        half_open_permits: Some(half_open_permits),
        half_open_successes: Some(
            c.half_open_successes
                .unwrap_or(half_open_permits.min(defaults::HALF_OPEN_SUCCESSES)),
        ),
        half_open_timeout: c.half_open_timeout,
        call_timeout: c.call_timeout,
        failure_statuses: Some(c.failure_statuses.unwrap_or_default()),
        stripes: Some(stripes),
        throttle: c.throttle,
        critical: Some(c.critical.unwrap_or(false)),
    }
}
