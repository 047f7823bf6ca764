//! A `tracing` event per transition (feature `tracing`): name, from, to, cause, generation;
//! opens at WARN, the rest at INFO.
#![cfg(feature = "tracing")]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use hotbreaker::{Config, Registry};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber, span};

type Seen = Arc<Mutex<Vec<(Level, Vec<(String, String)>)>>>;

/// Records every event's level and fields.
struct Recorder(Seen);

struct Fields(Vec<(String, String)>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
}

impl Subscriber for Recorder {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &span::Attributes<'_>) -> span::Id {
        span::Id::from_u64(1)
    }
    fn record(&self, _: &span::Id, _: &span::Record<'_>) {}
    fn record_follows_from(&self, _: &span::Id, _: &span::Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut fields = Fields(Vec::new());
        event.record(&mut fields);
        self.0
            .lock()
            .unwrap()
            .push((*event.metadata().level(), fields.0));
    }
    fn enter(&self, _: &span::Id) {}
    fn exit(&self, _: &span::Id) {}
}

#[test]
fn each_transition_is_an_event_with_its_details() {
    let seen: Seen = Arc::default();
    let _guard = tracing::subscriber::set_default(Recorder(seen.clone()));
    let (clock, mock) = quanta::Clock::mock();
    let r = Registry::new(Config {
        consecutive_failures: Some(1),
        open_timeout: Some(Duration::from_secs(1)),
        half_open_permits: Some(1),
        ..Config::default()
    })
    .unwrap()
    .clock(clock);
    let b = r.get_or_create("payments");
    b.try_acquire().unwrap().failure();
    mock.increment(Duration::from_secs(1));
    b.try_acquire().unwrap().success();

    let seen = seen.lock().unwrap();
    let levels: Vec<Level> = seen.iter().map(|(l, _)| *l).collect();
    assert_eq!(levels, [Level::WARN, Level::INFO, Level::INFO]);
    let field = |i: usize, name: &str| {
        seen[i]
            .1
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {name} in {:?}", seen[i].1))
    };
    assert_eq!(field(0, "breaker"), "payments");
    assert_eq!(field(0, "from"), "closed");
    assert_eq!(field(0, "to"), "open");
    assert_eq!(field(0, "cause"), "ConsecutiveFailures");
    assert_eq!(field(0, "message"), "circuit breaker opened");
    assert_eq!(field(2, "to"), "closed");
    assert_eq!(field(2, "cause"), "HalfOpenSuccesses");
    let generations: Vec<u64> = (0..3)
        .map(|i| field(i, "generation").parse().unwrap())
        .collect();
    assert!(
        generations.windows(2).all(|w| w[1] > w[0]),
        "{generations:?}"
    );
}
