//! Which HTTP statuses are Failures: the rule the HTTP and reqwest classifiers share.

#[cfg(feature = "http")]
use http::StatusCode;
#[cfg(all(feature = "reqwest", not(feature = "http")))]
use reqwest::StatusCode;

use crate::{FailureStatuses, Outcome};

/// Which statuses fail: a function, or a set from a configuration.
#[derive(Clone, Copy, Debug)]
pub(crate) enum StatusRule {
    When(fn(StatusCode) -> bool),
    // A configuration's set: built by the HTTP classifier only.
    #[cfg_attr(not(feature = "http"), allow(dead_code))]
    In(FailureStatuses),
}

impl StatusRule {
    /// 5xx fail.
    pub(crate) fn server_errors() -> StatusRule {
        StatusRule::When(|status| status.is_server_error())
    }

    /// Failure if the rule says `status` fails, else Success.
    #[inline]
    pub(crate) fn outcome(&self, status: StatusCode) -> Outcome {
        let failing = match *self {
            StatusRule::When(failing) => failing(status),
            StatusRule::In(statuses) => statuses.contains(status.as_u16()),
        };
        if failing {
            Outcome::Failure
        } else {
            Outcome::Success
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_fail_and_a_set_fails_its_members() {
        let rule = StatusRule::server_errors();
        assert_eq!(rule.outcome(StatusCode::BAD_GATEWAY), Outcome::Failure);
        assert_eq!(rule.outcome(StatusCode::NOT_FOUND), Outcome::Success);
        let set = StatusRule::In("429".parse().unwrap());
        assert_eq!(set.outcome(StatusCode::TOO_MANY_REQUESTS), Outcome::Failure);
        assert_eq!(set.outcome(StatusCode::BAD_GATEWAY), Outcome::Success);
    }
}
