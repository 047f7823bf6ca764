//! One fleet instance for the tests: a registry with its own fleet link (its own Redis
//! connections), a mock clock for breaker time, and a record of what its listeners heard.

#![allow(dead_code)] // each test file uses a part of it

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hotbreaker::fleet::{Fleet, FleetLink, FleetOptions, Quorum};
use hotbreaker::{Cause, Config, Registry, State, Transition};

pub(crate) struct Instance {
    pub(crate) registry: Arc<Registry>,
    pub(crate) link: FleetLink,
    pub(crate) mock: Arc<hotbreaker::clock::Mock>,
    pub(crate) heard: Arc<Mutex<Vec<(String, Transition)>>>,
}

impl Instance {
    /// An instance whose breakers use `config`, joined to the fleet at `url` with `options`
    /// applied to the test defaults (prefix `t`, 20 ms flushes, short timeouts and backoff,
    /// any one peer's trip applied: `Quorum::Instances(1)`, so that two instances show how a
    /// message travels; the quorum's own tests set it).
    pub(crate) fn new(
        url: &str,
        config: Config,
        options: impl FnOnce(FleetOptions) -> FleetOptions,
    ) -> Instance {
        let base = FleetOptions::new(url, "t")
            .flush_interval(Duration::from_millis(20))
            .command_timeout(Duration::from_millis(300))
            .reconnect_max(Duration::from_millis(200))
            .quorum(Quorum::Instances(1));
        let fleet = Fleet::new(options(base)).expect("valid fleet options");
        let (clock, mock) = hotbreaker::clock::Clock::mock();
        mock.increment(Duration::from_secs(1));
        let heard = Arc::new(Mutex::new(Vec::new()));
        let h = heard.clone();
        let registry = Registry::new(config)
            .expect("valid config")
            .clock(clock)
            .on_transition(move |name: &str, t: &Transition| {
                h.lock().unwrap().push((name.to_owned(), *t));
            });
        let registry = Arc::new(fleet.watch(registry));
        let link = fleet.start(registry.clone()).expect("inside a runtime");
        Instance {
            registry,
            link,
            mock,
            heard,
        }
    }

    pub(crate) fn state(&self, name: &str) -> Option<State> {
        self.registry.get(name).map(|b| b.state())
    }

    /// The causes of the transitions `name` made into `to`.
    pub(crate) fn causes(&self, name: &str, to: State) -> Vec<Cause> {
        self.heard
            .lock()
            .unwrap()
            .iter()
            .filter(|(n, t)| n == name && t.to == to)
            .map(|(_, t)| t.cause)
            .collect()
    }

    /// Records `n` calls of `name` (created if need be): failures or successes.
    pub(crate) fn calls(&self, name: &str, n: u64, fail: bool) {
        let b = self.registry.get_or_create(name);
        for _ in 0..n {
            if let Ok(p) = b.try_acquire() {
                if fail {
                    p.failure();
                } else {
                    p.success();
                }
            }
        }
    }
}

/// A config whose local rules never trip on their own in these tests (unless a test says so).
pub(crate) fn quiet_config() -> Config {
    Config {
        consecutive_failures: Some(1_000_000),
        open_timeout: Some(Duration::from_secs(30)),
        ..Config::default()
    }
}

/// A config that opens on three consecutive failures, for 30 s: local rules that trip fast.
pub(crate) fn local_trip() -> Config {
    Config {
        consecutive_failures: Some(3),
        open_timeout: Some(Duration::from_secs(30)),
        ..Config::default()
    }
}
