//! A `tracing` event per transition (feature `tracing`): opens at WARN, the rest at INFO.

use crate::state::State;
use crate::transition::Transition;

pub(crate) fn transition(name: &str, t: &Transition) {
    macro_rules! emit {
        ($level:expr, $message:literal) => {
            tracing::event!(
                target: "hotbreaker",
                $level,
                breaker = name,
                from = %t.from,
                to = %t.to,
                cause = ?t.cause,
                generation = t.generation,
                $message
            )
        };
    }
    if t.to == State::Open {
        emit!(tracing::Level::WARN, "circuit breaker opened");
    } else {
        emit!(tracing::Level::INFO, "circuit breaker changed state");
    }
}
