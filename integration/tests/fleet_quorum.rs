//! A peer's trip is evidence, not a command, against a real redis-server: a sick minority
//! never opens a healthy instance, a real outage opens every instance as soon as a majority
//! agrees, and recoveries do not start a loop of trips and half-opens. Skipped (loudly)
//! without redis-server, unless `HOTBREAKER_REQUIRE_REDIS=1`.

#[path = "support/fleet.rs"]
mod fleet;
#[path = "support/redis_server.rs"]
mod redis_server;

use std::time::{Duration, Instant};

use hotbreaker::fleet::Quorum;
use hotbreaker::{Cause, Config, State};

use fleet::Instance;
use redis_server::{RedisServer, eventually};

/// Trips on one failure, Open 1 s, closes on one probe.
fn config() -> Config {
    Config {
        consecutive_failures: Some(1),
        open_timeout: Some(Duration::from_secs(1)),
        half_open_permits: Some(1),
        half_open_successes: Some(1),
        ..Config::default()
    }
}

/// Five instances with the default quorum (a majority), each with a `db` breaker, once each
/// sees all five live.
async fn five(redis: &RedisServer) -> Vec<Instance> {
    let fleet: Vec<Instance> = (0..5)
        .map(|_| Instance::new(&redis.url(), config(), |o| o.quorum(Quorum::Majority)))
        .collect();
    for i in &fleet {
        i.registry.get_or_create("db");
    }
    let all_live = eventually(15, || {
        fleet
            .iter()
            .all(|i| i.link.status().up() && i.link.status().instances == 5)
    })
    .await;
    let statuses: Vec<_> = fleet.iter().map(|i| i.link.status()).collect();
    assert!(all_live, "{statuses:?}");
    fleet
}

/// `sick` instances fail every call, the others succeed, for 40 rounds: each sick one trips,
/// publishes, waits out its opening (mock clock) and trips again on its failing probe. The
/// healthy ones call 50 times a round and must not lose one call to a peer's trip.
async fn sick_minority(sick: usize) {
    let name = format!("a_sick_minority_{sick}_of_5");
    let Some(redis) = RedisServer::start(&name) else {
        return;
    };
    let fleet = five(&redis).await;
    let (ill, healthy) = fleet.split_at(sick);
    for round in 0..40u64 {
        for i in ill {
            i.mock.increment(Duration::from_secs(3_600)); // its opening is over: it probes
            i.calls("db", 1, true);
            assert_eq!(i.state("db"), Some(State::Open));
        }
        // Every healthy instance has heard every trip of this round before it calls.
        let heard = eventually(10, || {
            healthy
                .iter()
                .all(|h| h.link.status().messages_in >= (round + 1) * sick as u64)
        })
        .await;
        assert!(heard, "round {round}");
        for h in healthy {
            h.calls("db", 50, false);
        }
    }
    for h in healthy {
        let m = h.registry.get("db").unwrap().metrics();
        let status = h.link.status();
        assert_eq!(
            (m.rejected, m.successes, m.times_opened),
            (0, 2_000, 0),
            "a healthy instance lost calls to a sick minority: {status:?}"
        );
        assert!(
            status.trips_short_of_quorum >= 40 * sick as u64,
            "{status:?}"
        );
        assert_eq!(status.messages_out, 0, "a healthy instance never publishes");
    }
    for i in ill {
        assert_eq!(
            i.link.status().messages_applied,
            0,
            "no healthy close ever half-opened a sick instance (none was ever sent)"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sick_instance_of_five_never_opens_a_healthy_one() {
    sick_minority(1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_sick_instances_of_five_never_open_a_healthy_one() {
    sick_minority(2).await;
}

/// A real outage: the instances trip one after the other as their own calls fail. Two trips
/// open nobody else; the third, a majority of five, opens the remaining two within 100 ms.
/// Then the dependency recovers: one probe's close half-opens the rest, their own probes
/// close them, and nothing opens again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_outage_opens_every_instance_once_a_majority_agrees() {
    let Some(redis) = RedisServer::start("a_real_outage_opens_every_instance") else {
        return;
    };
    let fleet = five(&redis).await;
    for i in &fleet[..2] {
        i.calls("db", 1, true);
    }
    assert!(
        eventually(10, || fleet[2..].iter().all(|i| i
            .link
            .status()
            .trips_short_of_quorum
            >= 2))
        .await
    );
    assert!(
        fleet[2..]
            .iter()
            .all(|i| i.state("db") == Some(State::Closed))
    );

    fleet[2].calls("db", 1, true); // the fleet agrees now
    let agreed = Instant::now();
    let all_open = eventually(10, || {
        fleet.iter().all(|i| i.state("db") == Some(State::Open))
    })
    .await;
    let took = agreed.elapsed();
    assert!(all_open);
    assert!(
        took < Duration::from_millis(100),
        "every instance Open {took:?} after the fleet agreed"
    );
    for i in &fleet[3..] {
        assert_eq!(i.causes("db", State::Open), [Cause::Fleet]);
    }

    // Recovery: instance 0 waits out its opening and its probe succeeds.
    fleet[0].mock.increment(Duration::from_secs(1));
    fleet[0].calls("db", 1, false);
    assert_eq!(fleet[0].state("db"), Some(State::Closed));
    assert!(
        eventually(10, || fleet[1..]
            .iter()
            .all(|i| i.state("db") == Some(State::HalfOpen)))
        .await
    );
    for i in &fleet[1..] {
        i.calls("db", 1, false); // its own probe
        assert_eq!(i.state("db"), Some(State::Closed));
    }
    // Every close is heard by every other instance; none opens anything again.
    assert!(
        eventually(10, || fleet
            .iter()
            .all(|i| i.link.status().messages_in >= 3 + 5))
        .await
    );
    for i in &fleet {
        assert_eq!(i.state("db"), Some(State::Closed));
        assert_eq!(i.registry.get("db").unwrap().metrics().times_opened, 1);
    }
}
