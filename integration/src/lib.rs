//! hotbreaker in services: the examples (`examples/`) and end-to-end tests (`tests/`) that run
//! real servers on loopback ports, and the code of the README and the guides in `docs/`, compiled
//! and run as doctests. Nothing else to import: this package only builds and tests. Its modules
//! are the real servers the production scenarios run against (Postgres, RabbitMQ), the queue
//! scenario's consumer and publisher and the database scenario's classifier, shared by their
//! examples and tests.

pub mod database;
pub mod postgres;
pub mod process;
pub mod queue;
pub mod rabbitmq;

/// Every Rust snippet of the README and the guides, as doctests.
#[cfg(doctest)]
mod guides {
    #[doc = include_str!("../../README.md")]
    struct Readme;
    #[doc = include_str!("../../docs/configuration.md")]
    struct Configuration;
    #[doc = include_str!("../../docs/tower.md")]
    struct Tower;
    #[doc = include_str!("../../docs/operations.md")]
    struct Operations;
    #[doc = include_str!("../../docs/internals.md")]
    struct Internals;
    #[doc = include_str!("../../docs/performance.md")]
    struct Performance;
    #[doc = include_str!("../../docs/verification.md")]
    struct Verification;
    #[doc = include_str!("../../docs/chaos-lab.md")]
    struct ChaosLab;
    #[doc = include_str!("../../docs/throttle.md")]
    struct Throttle;
    #[doc = include_str!("../../docs/slow-calls.md")]
    struct SlowCalls;
    #[doc = include_str!("../../docs/fleet.md")]
    struct Fleet;
    #[doc = include_str!("../../docs/tuning.md")]
    struct Tuning;
    #[doc = include_str!("../../docs/scenarios.md")]
    struct Scenarios;
}
