//! The registry: get-or-create, per-name configuration, lookups racing creation, health,
//! transition counts.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use hotbreaker::{Config, Registry, State};

const SEC: Duration = Duration::from_secs(1);

fn registry() -> (Registry, Arc<quanta::Mock>) {
    let (clock, mock) = quanta::Clock::mock();
    let r = Registry::new(default_config()).unwrap().clock(clock);
    (r, mock)
}

fn default_config() -> Config {
    Config {
        consecutive_failures: Some(3),
        open_timeout: Some(30 * SEC),
        ..Config::default()
    }
}

/// Marks `names` critical in `r` (whose default is [`default_config`]), and every other name
/// that has a configuration not critical.
fn mark_critical(r: &Registry, all: &[&str], names: &[&str]) {
    for name in all {
        let critical = Some(names.contains(name));
        r.set_config(
            name,
            Config {
                critical,
                ..default_config()
            },
        )
        .unwrap();
    }
}

#[test]
fn get_or_create_returns_one_breaker_per_name_with_its_config_or_the_default() {
    let (r, _mock) = registry();
    r.set_config(
        "payments",
        Config {
            consecutive_failures: Some(1),
            ..Config::default()
        },
    )
    .unwrap();
    assert!(r.get("payments").is_none(), "configured, not created");
    let payments = r.get_or_create("payments");
    let search = r.get_or_create("search");
    assert!(Arc::ptr_eq(&payments, &r.get_or_create("payments")));
    assert_eq!(payments.config().consecutive_failures, Some(1));
    assert_eq!(search.config().consecutive_failures, Some(3));
    assert_eq!(r.len(), 2);
    let names: Vec<_> = r
        .breakers()
        .into_iter()
        .map(|(n, _)| n.to_string())
        .collect();
    assert_eq!(names, ["payments", "search"]);
}

#[test]
fn set_config_reconfigures_an_existing_breaker_and_names_the_breaker_in_errors() {
    let (r, _mock) = registry();
    let b = r.get_or_create("db");
    r.set_config(
        "db",
        Config {
            consecutive_failures: Some(2),
            ..Config::default()
        },
    )
    .unwrap();
    assert_eq!(b.config().consecutive_failures, Some(2));
    let err = r
        .set_config(
            "db",
            Config {
                failure_rate: Some(0.0),
                ..Config::default()
            },
        )
        .unwrap_err();
    assert_eq!(err.field(), "db.failure_rate");
    assert_eq!(b.config().consecutive_failures, Some(2), "unchanged");
    let err = r
        .set_config(
            "db",
            Config {
                count_window: Some(100),
                ..Config::default()
            },
        )
        .unwrap_err();
    assert_eq!(err.field(), "db.count_window");
}

#[test]
fn set_default_reaches_breakers_without_their_own_config() {
    let (r, _mock) = registry();
    r.set_config(
        "own",
        Config {
            consecutive_failures: Some(7),
            ..Config::default()
        },
    )
    .unwrap();
    let (own, shared) = (r.get_or_create("own"), r.get_or_create("shared"));
    r.set_default(Config {
        consecutive_failures: Some(4),
        ..Config::default()
    })
    .unwrap();
    assert_eq!(own.config().consecutive_failures, Some(7));
    assert_eq!(shared.config().consecutive_failures, Some(4));
    assert_eq!(
        r.get_or_create("later").config().consecutive_failures,
        Some(4)
    );
    assert_eq!(
        Registry::new(Config {
            stripes: Some(0),
            ..Config::default()
        })
        .unwrap_err()
        .field(),
        "stripes"
    );
}

/// Eight threads create and look up the same 200 names at once: each name ends with exactly
/// one breaker, and every thread got that one.
#[test]
fn racing_creators_agree_on_one_breaker_per_name() {
    let r = Arc::new(Registry::default());
    let start = Arc::new(Barrier::new(8));
    let handles: Vec<_> = (0..8)
        .map(|t| {
            let (r, start) = (r.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                (0..200)
                    .map(|i| {
                        let name = format!("dep-{}", (i * 7 + t * 13) % 200);
                        (name.clone(), r.get_or_create(&name))
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let seen: Vec<_> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    assert_eq!(r.len(), 200);
    for (name, breaker) in seen {
        assert!(Arc::ptr_eq(&breaker, &r.get(&name).unwrap()), "{name}");
    }
}

#[test]
fn health_reports_every_breaker_and_readiness_follows_critical_ones() {
    let (r, mock) = registry();
    let (payments, search) = (r.get_or_create("payments"), r.get_or_create("search"));
    for _ in 0..4 {
        search.try_acquire().unwrap().success();
    }
    for _ in 0..3 {
        payments.try_acquire().unwrap().failure();
    }
    assert_eq!(payments.state(), State::Open);
    mock.increment(5 * SEC); // within the default 10 s window

    let all = ["payments", "search", "not-created-yet"];
    mark_critical(&r, &all, &["search"]);
    let h = r.health();
    assert!(h.ready, "payments is open but not critical");
    assert!(r.ready());
    assert_eq!(h.fleet_link_up, None, "no fleet link on this registry");
    mark_critical(&r, &all, &all);
    let h = r.health();
    assert!(!h.ready);
    assert!(!r.ready());
    assert_eq!(
        h.breakers.len(),
        2,
        "a configured name has no breaker until looked up"
    );
    let p = &h.breakers[0];
    assert_eq!(
        (p.name.as_str(), p.state, p.critical),
        ("payments", State::Open, true)
    );
    assert_eq!(p.retry_after_ms, Some(25_000));
    assert_eq!((p.times_opened, p.calls_in_window), (1, 3));
    assert_eq!(p.failure_rate, 1.0);
    let s = &h.breakers[1];
    assert_eq!(
        (s.state, s.calls_in_window, s.failure_rate),
        (State::Closed, 4, 0.0)
    );

    // Half-open counts as ready; isolated does not.
    mock.increment(25 * SEC);
    let probe = payments.try_acquire().unwrap();
    mark_critical(&r, &all, &["payments"]);
    assert!(r.health().ready);
    assert!(r.ready());
    probe.success();
    search.isolate();
    mark_critical(&r, &all, &["search"]);
    assert!(!r.health().ready);
    assert!(!r.ready());
}

/// The explicit form: any names, marked critical or not; an unknown one is an error.
#[test]
fn ready_for_reads_the_names_given_and_refuses_unknown_ones() {
    let (r, _mock) = registry();
    r.set_config("configured-only", default_config()).unwrap();
    r.get_or_create("db").isolate();
    r.get_or_create("cache");
    assert_eq!(r.ready_for(&[]), Ok(true));
    assert_eq!(r.ready_for(&["cache", "configured-only"]), Ok(true));
    assert_eq!(r.ready_for(&["cache", "db"]), Ok(false));
    let err = r.ready_for(&["cache", "dv"]).unwrap_err();
    assert_eq!(err.name(), "dv");
    assert_eq!(err.suggestion(), Some("db"));
    assert!(r.ready(), "nothing is marked critical");
}

/// A default that says `critical = true` makes every breaker without its own configuration
/// critical; a configuration of its own decides for itself.
#[test]
fn a_critical_default_covers_the_breakers_without_a_configuration() {
    let r = Registry::new(Config {
        critical: Some(true),
        ..Config::default()
    })
    .unwrap();
    r.set_config("optional", Config::default()).unwrap();
    r.get_or_create("optional").isolate();
    assert!(r.ready(), "its own configuration is not critical");
    let db = r.get_or_create("db");
    assert!(r.ready());
    db.isolate();
    assert!(!r.ready());
    let h = r.health();
    let flags: Vec<(&str, bool)> = h
        .breakers
        .iter()
        .map(|b| (b.name.as_str(), b.critical))
        .collect();
    assert_eq!(flags, [("db", true), ("optional", false)]);
}

/// Strict lookups: configured and existing names resolve, a typo is an error with a
/// suggestion, and `get_or_create` stays lenient for names made at run time.
#[test]
fn a_strict_registry_refuses_unconfigured_names() {
    let (r, _mock) = registry();
    let r = r.strict();
    r.set_config("inventory", default_config()).unwrap();
    let inventory = r.breaker("inventory").expect("configured");
    assert!(Arc::ptr_eq(&inventory, &r.breaker("inventory").unwrap()));
    let err = r.breaker("inventroy").unwrap_err();
    assert_eq!(err.suggestion(), Some("inventory"));
    assert!(err.to_string().contains("\"inventroy\""), "{err}");
    assert_eq!(r.breaker("search").unwrap_err().suggestion(), None);
    assert!(
        r.get("inventroy").is_none(),
        "a refused name creates nothing"
    );
    let host = r.get_or_create("host-17");
    assert!(Arc::ptr_eq(
        &host,
        &r.breaker("host-17").expect("exists now")
    ));
    // Lenient (the default): any name gets a breaker.
    let (lenient, _mock) = registry();
    assert!(lenient.breaker("anything").is_ok());
}

/// `ready` is `health`'s verdict, whatever is marked critical (nothing, names without a breaker,
/// everything), and `health` flags exactly the breakers marked.
#[test]
fn ready_agrees_with_health() {
    let (r, _mock) = registry();
    let names: Vec<String> = (0..200).map(|i| format!("host-{i:03}")).collect();
    for (i, n) in names.iter().enumerate() {
        let b = r.get_or_create(n);
        if i % 7 == 0 {
            b.isolate();
        }
    }
    let lists: [Vec<&str>; 5] = [
        vec![],
        vec!["host-001", "nowhere"],
        vec!["host-007"],
        names
            .iter()
            .map(String::as_str)
            .filter(|n| !n.ends_with('0'))
            .collect(),
        names
            .iter()
            .skip(1)
            .step_by(7)
            .map(String::as_str)
            .collect(),
    ];
    let mut all: Vec<&str> = names.iter().map(String::as_str).collect();
    all.push("nowhere");
    for critical in lists {
        mark_critical(&r, &all, &critical);
        let h = r.health();
        assert_eq!(h.ready, r.ready(), "{critical:?}");
        assert_eq!(r.ready_for(&critical), Ok(h.ready), "{critical:?}");
        for b in &h.breakers {
            assert_eq!(
                b.critical,
                critical.contains(&b.name.as_str()),
                "{}",
                b.name
            );
        }
        let sorted = h.breakers.windows(2).all(|w| w[0].name < w[1].name);
        assert!(sorted && h.breakers.len() == 200);
    }
}

#[test]
fn transitions_are_counted_per_breaker_and_a_registry_listener_hears_the_name() {
    let heard = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (clock, mock) = quanta::Clock::mock();
    let r = Registry::new(Config {
        consecutive_failures: Some(1),
        open_timeout: Some(SEC),
        half_open_permits: Some(1),
        ..Config::default()
    })
    .unwrap()
    .clock(clock)
    .on_transition({
        let heard = heard.clone();
        move |name, t| heard.lock().unwrap().push((name.to_owned(), t.from, t.to))
    });
    let b = r.get_or_create("cache");
    b.try_acquire().unwrap().failure();
    mock.increment(SEC);
    b.try_acquire().unwrap().success();
    let mut counts = r.transitions("cache").unwrap();
    counts.sort_by_key(|&(f, t, _)| (f as u8, t as u8));
    assert_eq!(
        counts,
        [
            (State::Closed, State::Open, 1),
            (State::Open, State::HalfOpen, 1),
            (State::HalfOpen, State::Closed, 1)
        ]
    );
    assert_eq!(heard.lock().unwrap().len(), 3);
    assert_eq!(
        heard.lock().unwrap()[0],
        ("cache".to_owned(), State::Closed, State::Open)
    );
    assert!(r.transitions("nope").is_none());
}

/// 10 000 breakers with the default configuration, with the 8 stripes the default gives an
/// 8+-CPU machine, and with one stripe: heap per breaker
/// (printed; the README's table comes from this), within 10 KiB at 8 stripes.
#[test]
fn memory_per_breaker_at_ten_thousand() {
    for (label, stripes) in [
        ("default stripes", None),
        ("stripes(8), the default on 8+ CPUs", Some(8)),
        ("stripes(1)", Some(1)),
    ] {
        let r = Registry::new(Config {
            stripes,
            ..Config::default()
        })
        .unwrap();
        let handles: Vec<_> = (0..10_000)
            .map(|i| r.get_or_create(&format!("dependency-{i:05}")))
            .collect();
        let per = r.heap_bytes() / r.len();
        println!(
            "10 000 breakers, {label} ({} stripes here): {} bytes per breaker, {:.1} MiB in all",
            handles[0].stripes(),
            per,
            r.heap_bytes() as f64 / (1 << 20) as f64
        );
        assert!(per <= 10 * 1024, "{per} bytes per breaker");
    }
}

/// A registry large enough for `health` to share the reads among threads reports what each
/// breaker's own metrics say, sorted by name (names of every length, shared prefixes longer
/// than 16 bytes, non-ASCII), with each breaker's window as it is.
#[test]
fn health_of_a_large_registry_matches_each_breakers_metrics() {
    let (r, mock) = registry();
    let names: Vec<String> = (0..12_000)
        .map(|i| match i % 4 {
            0 => format!("h{i}"),
            1 => format!("a-very-long-shared-prefix-{i:05}"),
            2 => format!("é{}", i * 7919 % 12_000),
            _ => format!("a-very-long-shared-prefix-{i}-x"),
        })
        .collect();
    for (i, n) in names.iter().enumerate() {
        let b = r.get_or_create(n);
        for _ in 0..i % 3 {
            b.try_acquire().unwrap().success();
        }
        if i % 5 == 0 {
            b.try_acquire().unwrap().failure();
        }
        if i % 1_000 == 0 {
            b.isolate();
        }
    }
    mock.increment(SEC);
    let critical: Vec<&str> = names.iter().step_by(11).map(String::as_str).collect();
    for name in &critical {
        r.set_config(
            name,
            Config {
                critical: Some(true),
                ..default_config()
            },
        )
        .unwrap();
    }
    let h = r.health();
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(h.breakers.len(), sorted.len());
    for (row, name) in h.breakers.iter().zip(&sorted) {
        assert_eq!(&row.name, name);
        let m = r.get(name).unwrap().metrics();
        assert_eq!(row.state, m.state, "{name}");
        assert_eq!(row.calls_in_window, m.window.calls, "{name}");
        assert_eq!(row.failure_rate, m.failure_rate(), "{name}");
        assert_eq!(row.critical, critical.contains(&name.as_str()), "{name}");
    }
    assert!(h.breakers.iter().any(|b| b.calls_in_window == 3));
    // "h0" is isolated and critical.
    assert!(!h.ready);
    // A minute later every window is empty.
    mock.increment(60 * SEC);
    assert!(r.health().breakers.iter().all(|b| b.calls_in_window == 0));
}

/// `leak` hands out the registry's own breaker for the process's life: the same breaker as
/// `get` (its state, configuration and reports), created with its configuration if need be,
/// and still usable after the registry is gone.
#[test]
fn leak_gives_the_registry_s_breaker_for_the_process() {
    let (r, _mock) = registry();
    r.set_config(
        "payments",
        Config {
            consecutive_failures: Some(2),
            ..Config::default()
        },
    )
    .unwrap();
    let payments = r.leak("payments");
    assert!(std::ptr::eq(payments, &*r.get("payments").unwrap()));
    assert_eq!(payments.config().consecutive_failures, Some(2));
    for _ in 0..2 {
        payments.try_acquire().unwrap().failure();
    }
    assert_eq!(r.get("payments").unwrap().state(), State::Open);
    assert_eq!(r.transitions("payments").unwrap().len(), 1);
    assert!(
        std::ptr::eq(r.leak("payments"), payments),
        "one breaker per name"
    );
    drop(r);
    assert_eq!(payments.state(), State::Open, "outlives the registry");
}

/// The registry keeps the latest `EVENTS_KEPT` transitions, oldest first.
#[test]
fn events_keep_the_latest_transitions_in_order() {
    let r = Registry::default();
    let db = r.get_or_create("db");
    let n = hotbreaker::EVENTS_KEPT + 10;
    for i in 0..n {
        if i % 2 == 0 {
            db.isolate();
        } else {
            db.reset();
        }
    }
    let events = r.events();
    assert_eq!(events.len(), hotbreaker::EVENTS_KEPT);
    // The 10 oldest went; generations follow one another.
    for pair in events.windows(2) {
        assert_eq!(pair[1].generation, pair[0].generation + 1);
        assert_eq!(pair[0].to, pair[1].from);
    }
    let last = events.last().unwrap();
    assert_eq!(
        (last.to, last.cause.to_string().as_str()),
        (State::Closed, "manual")
    );
    assert_eq!(events[0].generation, 11);
}

/// An Open critical breaker past its deadline is ready: a probe needs a call, and an instance
/// taken out of its load balancer would never get one.
#[test]
fn an_open_breaker_past_its_deadline_does_not_hold_readiness() {
    let (r, mock) = registry();
    r.set_config(
        "db",
        Config {
            critical: Some(true),
            ..default_config()
        },
    )
    .unwrap();
    let db = r.get_or_create("db");
    for _ in 0..3 {
        db.try_acquire().unwrap().failure();
    }
    assert_eq!(db.state(), State::Open);
    assert!(!r.ready());
    assert_eq!(r.ready_for(&["db"]), Ok(false));
    let h = r.health();
    assert!(!h.ready && h.breakers[0].down);
    mock.increment(30 * SEC); // the deadline: no call has arrived
    assert_eq!(db.state(), State::Open, "still Open until a call arrives");
    assert!(r.ready());
    assert_eq!(r.ready_for(&["db"]), Ok(true));
    let h = r.health();
    assert!(h.ready && !h.breakers[0].down);
    db.isolate();
    assert!(!r.ready(), "Isolated stays down");
}

/// The breakers of one configuration share its settings as written, when they are created and
/// after the default or their own configuration is set again (a file reload): each holds a
/// share of one allocation, not a copy.
#[test]
fn breakers_of_one_configuration_share_its_settings_across_reloads() {
    let r = Registry::new(Config::default()).unwrap();
    for i in 0..1_000 {
        r.get_or_create(&format!("dependency-{i:04}"));
    }
    let created = r.heap_bytes();
    r.set_default(Config {
        consecutive_failures: Some(7),
        ..Config::default()
    })
    .unwrap();
    let reloaded = r.heap_bytes();
    // A copy of the settings each would add about 300 bytes a breaker.
    assert!(
        reloaded < created + 1_000 * 16,
        "{created} bytes, then {reloaded}"
    );
    r.set_config(
        "dependency-0001",
        Config {
            consecutive_failures: Some(3),
            ..Config::default()
        },
    )
    .unwrap();
    assert_eq!(
        r.get("dependency-0001")
            .unwrap()
            .config()
            .consecutive_failures,
        Some(3)
    );
    assert_eq!(
        r.get("dependency-0002")
            .unwrap()
            .config()
            .consecutive_failures,
        Some(7)
    );
}
