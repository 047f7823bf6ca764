//! A breaker in front of a Postgres pool (sqlx), against a real server on a loopback port:
//! stopped, hung, killed mid-query, and a constraint violation that is not the database's fault.
//! Each test bounds its own time; without a server they print SKIPPED (and fail under
//! `HOTBREAKER_REQUIRE_POSTGRES=1`, as in CI).

use std::sync::Arc;
use std::time::{Duration, Instant};

use hotbreaker::{Breaker, State};
use hotbreaker_integration::database::classify;
use hotbreaker_integration::postgres::PgServer;
use sqlx::postgres::{PgPool, PgPoolOptions};

const POOL: u32 = 10;
const TIMEOUT: Duration = Duration::from_millis(250);
const OPEN: Duration = Duration::from_secs(1);

async fn setup(server: &PgServer) -> PgPool {
    let pool = PgPoolOptions::new()
        .max_connections(POOL)
        .acquire_timeout(TIMEOUT)
        .connect(&server.url())
        .await
        .unwrap();
    sqlx::query("CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("INSERT INTO items SELECT i, 'item ' || i FROM generate_series(1, 100) i")
        .execute(&pool)
        .await
        .unwrap();
    pool
}

fn breaker() -> Arc<Breaker> {
    Arc::new(
        Breaker::builder()
            .consecutive_failures(5)
            .open_timeout(OPEN)
            .half_open_permits(1)
            .half_open_successes(1)
            .build()
            .unwrap(),
    )
}

/// One guarded read: `Err(None)` when the breaker turned it away.
async fn read(pool: &PgPool, b: &Arc<Breaker>, sql: &str) -> Result<(), Option<sqlx::Error>> {
    let permit = b.try_acquire_owned().map_err(|_| None)?;
    let result = async {
        let mut conn = pool.acquire().await?;
        match tokio::time::timeout(TIMEOUT, sqlx::query(sql).execute(&mut *conn)).await {
            Ok(r) => r.map(|_| ()),
            Err(_) => {
                conn.close_on_drop();
                Err(sqlx::Error::PoolTimedOut)
            }
        }
    }
    .await;
    match result {
        Ok(()) => {
            permit.success();
            Ok(())
        }
        Err(e) => {
            permit.record(classify(&e));
            Err(Some(e))
        }
    }
}

const SELECT: &str = "SELECT name FROM items WHERE id = 7";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_database_opens_the_breaker_which_fails_fast_and_recovers_within_an_open_interval()
 {
    let Some(mut server) = PgServer::start("database stopped") else {
        return;
    };
    let pool = setup(&server).await;
    let b = breaker();
    for _ in 0..20 {
        read(&pool, &b, SELECT).await.unwrap();
    }
    server.stop();
    // One call at a time, on whichever of the 2 runtime workers polls it, each counting on a
    // stripe of its own: the rule opens between the 5th failure and `3 N + k` (docs/internals.md,
    // "How late a real outage opens").
    let mut failures = 0;
    while b.state() == State::Closed {
        assert!(read(&pool, &b, SELECT).await.is_err());
        failures += 1;
        assert!(
            failures <= 5 + 3 * 2,
            "still closed after {failures} failures"
        );
    }
    assert!(failures >= 5 && b.state() == State::Open, "{failures}");
    // While Open: turned away at once, the pool untouched.
    let mut took = Vec::new();
    for _ in 0..1_000 {
        let t = Instant::now();
        assert!(matches!(read(&pool, &b, SELECT).await, Err(None)));
        took.push(t.elapsed());
    }
    took.sort();
    let p99 = took[989];
    assert!(p99 < Duration::from_millis(1), "p99 of a rejection {p99:?}");
    assert_eq!(
        pool.size() - pool.num_idle() as u32,
        0,
        "connections held while Open"
    );
    // Back: answered again within one open interval (plus the probe's own time).
    server.start_again();
    let back = Instant::now();
    loop {
        if read(&pool, &b, SELECT).await.is_ok() {
            break;
        }
        assert!(
            back.elapsed() < OPEN + TIMEOUT * 2,
            "not back after {:?}",
            back.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(b.state(), State::Closed);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_database_opens_the_breaker_and_the_pool_does_not_stay_exhausted() {
    let Some(server) = PgServer::start("database hung") else {
        return;
    };
    let pool = setup(&server).await;
    let b = breaker();
    server.freeze();
    let began = Instant::now();
    // 20 requests every 10 ms, each on its own task, for 2 s.
    let mut tasks = Vec::new();
    let mut samples = Vec::new();
    while began.elapsed() < Duration::from_secs(2) {
        for _ in 0..20 {
            let (pool, b) = (pool.clone(), b.clone());
            tasks.push(tokio::spawn(async move {
                let t = Instant::now();
                let _ = read(&pool, &b, SELECT).await;
                t.elapsed()
            }));
        }
        if began.elapsed() > Duration::from_secs(1) {
            samples.push(pool.size() - pool.num_idle() as u32);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_ne!(
        b.state(),
        State::Closed,
        "a hung database did not open the breaker"
    );
    // After the first deadlines ran out, the breaker keeps requests away from the pool:
    // connections stuck in queries are closed, none are handed out again.
    let full = samples.iter().filter(|&&u| u >= POOL).count();
    assert!(
        full * 10 <= samples.len(),
        "pool exhausted in {full} of {} samples in the second second",
        samples.len()
    );
    let mut longest = Duration::ZERO;
    for t in tasks {
        let took = tokio::time::timeout(Duration::from_secs(3), t).await;
        longest = longest.max(took.map_or(Duration::from_secs(3), |r| r.unwrap()));
    }
    // Every request ended within its deadlines (acquire, then query, with room for a loaded
    // machine), measured before the server is thawed: none waited on the hung server.
    assert!(
        longest < Duration::from_millis(1_500),
        "a request took {longest:?}"
    );
    server.thaw();
    let m = b.metrics();
    assert!(m.rejected > 1_000, "{m:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_query_is_a_failure_at_once_and_the_pool_reconnects() {
    let Some(mut server) = PgServer::start("database killed") else {
        return;
    };
    let pool = setup(&server).await;
    let b = Arc::new(
        Breaker::builder()
            .consecutive_failures(5)
            .open_timeout(OPEN)
            .build()
            .unwrap(),
    );
    let slow = {
        let (pool, b) = (pool.clone(), b.clone());
        tokio::spawn(async move {
            let permit = b.try_acquire_owned().unwrap();
            let t = Instant::now();
            // Longer than the test: only the kill can end it.
            let r = sqlx::query("SELECT pg_sleep(30)").execute(&pool).await;
            match &r {
                Ok(_) => permit.success(),
                Err(e) => permit.record(classify(e)),
            }
            (r.is_err(), t.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let killed = Instant::now();
    let mut server = tokio::task::spawn_blocking(move || {
        server.kill();
        server
    })
    .await
    .unwrap();
    let (failed, took) = slow.await.unwrap();
    assert!(failed, "the query killed mid-way did not fail");
    assert!(took < Duration::from_secs(5), "it took {took:?}");
    assert!(killed.elapsed() < Duration::from_secs(5));
    assert_eq!(b.metrics().failures, 1);
    let server = tokio::task::spawn_blocking(move || {
        server.start_again();
        server
    })
    .await
    .unwrap();
    // The pool drops the dead connections and opens new ones.
    let deadline = Instant::now() + Duration::from_secs(5);
    while read(&pool, &b, SELECT).await.is_err() {
        assert!(Instant::now() < deadline, "the pool did not reconnect");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(b.state(), State::Closed);
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn constraint_violations_and_bad_queries_are_ignored_not_failures() {
    let Some(server) = PgServer::start("database constraint") else {
        return;
    };
    let pool = setup(&server).await;
    let b = breaker();
    // Unique and not-null violations, a syntax error, an unknown column: 20 of each.
    for sql in [
        "INSERT INTO items VALUES (1, 'duplicate')",
        "INSERT INTO items VALUES (1000, NULL)",
        "SELEC 1",
        "SELECT nope FROM items",
    ] {
        for _ in 0..20 {
            let r = read(&pool, &b, sql).await;
            assert!(
                matches!(r, Err(Some(sqlx::Error::Database(_)))),
                "{sql}: {r:?}"
            );
        }
    }
    let m = b.metrics();
    assert_eq!((m.state, m.ignored, m.failures), (State::Closed, 80, 0));
}
