//! What the fleet link counts, its status snapshot, and (feature `metrics`) its series.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

/// The link's counters. Every access is `Relaxed`: each is a statistic read on its own,
/// ordered with nothing else.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) flushes: AtomicU64,
    pub(crate) flush_errors: AtomicU64,
    pub(crate) flush_latency_last_us: AtomicU64,
    pub(crate) flush_latency_max_us: AtomicU64,
    pub(crate) last_flush_commands: AtomicU64,
    pub(crate) last_flush_pipelines: AtomicU64,
    pub(crate) deltas_pending: AtomicU64,
    pub(crate) deltas_dropped: AtomicU64,
    pub(crate) garbage_replies: AtomicU64,
    pub(crate) key_errors: AtomicU64,
    pub(crate) fleet_trips: AtomicU64,
    pub(crate) messages_out: AtomicU64,
    pub(crate) publish_dropped: AtomicU64,
    pub(crate) publish_retries: AtomicU64,
    pub(crate) messages_repeated: AtomicU64,
    pub(crate) messages_in: AtomicU64,
    pub(crate) messages_applied: AtomicU64,
    pub(crate) messages_ignored: AtomicU64,
    pub(crate) messages_malformed: AtomicU64,
    pub(crate) messages_unauthenticated: AtomicU64,
    pub(crate) short_of_quorum: AtomicU64,
    pub(crate) instances: AtomicU64,
    pub(crate) subscriptions: AtomicU64,
    pub(crate) connected: AtomicBool,
    pub(crate) subscribed: AtomicBool,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        // Relaxed: a statistic (see the type's docs).
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn set(counter: &AtomicU64, n: u64) {
        // Relaxed: a statistic.
        counter.store(n, Ordering::Relaxed);
    }

    pub(crate) fn get(counter: &AtomicU64) -> u64 {
        // Relaxed: a statistic, or the live-instance count, read on its own.
        counter.load(Ordering::Relaxed)
    }

    pub(crate) fn flag(flag: &AtomicBool, on: bool) {
        // Relaxed: a status shown on its own.
        flag.store(on, Ordering::Relaxed);
    }

    pub(crate) fn flushed(&self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        Counters::add(&self.flushes, 1);
        Counters::set(&self.flush_latency_last_us, us);
        // Relaxed: a statistic; fetch_max keeps it monotonic on its own.
        self.flush_latency_max_us.fetch_max(us, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        metrics::histogram!("hotbreaker_fleet_flush_seconds").record(took.as_secs_f64());
    }

    pub(crate) fn status(&self) -> FleetStatus {
        // Relaxed: statistics (see the type's docs).
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        FleetStatus {
            connected: self.connected.load(Ordering::Relaxed),
            subscribed: self.subscribed.load(Ordering::Relaxed),
            flushes: get(&self.flushes),
            flush_errors: get(&self.flush_errors),
            last_flush_latency: Duration::from_micros(get(&self.flush_latency_last_us)),
            last_flush_commands: get(&self.last_flush_commands),
            last_flush_pipelines: get(&self.last_flush_pipelines),
            max_flush_latency: Duration::from_micros(get(&self.flush_latency_max_us)),
            deltas_pending: get(&self.deltas_pending),
            deltas_dropped: get(&self.deltas_dropped),
            garbage_replies: get(&self.garbage_replies),
            key_errors: get(&self.key_errors),
            fleet_window_trips: get(&self.fleet_trips),
            messages_out: get(&self.messages_out),
            publish_dropped: get(&self.publish_dropped),
            publish_retries: get(&self.publish_retries),
            messages_repeated: get(&self.messages_repeated),
            messages_in: get(&self.messages_in),
            messages_applied: get(&self.messages_applied),
            messages_ignored: get(&self.messages_ignored),
            messages_malformed: get(&self.messages_malformed),
            messages_unauthenticated: get(&self.messages_unauthenticated),
            subscriptions: get(&self.subscriptions),
            trips_short_of_quorum: get(&self.short_of_quorum),
            instances: get(&self.instances),
        }
    }
}

/// A snapshot of a [`FleetLink`](crate::fleet::FleetLink): whether it is up, and what it has
/// done. Put [`up`](FleetStatus::up) in a readiness or health report if losing the fleet's
/// view matters to you (each breaker keeps working on its local rules either way).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct FleetStatus {
    /// The last flush reached Redis and got a well-formed answer.
    pub connected: bool,
    /// The subscriber holds a live subscription to the channel.
    pub subscribed: bool,
    /// Flushes that reached Redis.
    pub flushes: u64,
    /// Flushes that failed (Redis down, slow past the command timeout, or answering garbage).
    pub flush_errors: u64,
    /// How long the last successful flush's round trip took.
    pub last_flush_latency: Duration,
    /// Commands the last successful flush sent: its clock and heartbeat (5), a `HINCRBY` per
    /// nonzero count of each delta, a `PEXPIRE` per bucket first written, an `HMGET` per
    /// window bucket not yet final of each active Closed breaker.
    pub last_flush_commands: u64,
    /// Pipelines the last flush was split into (at most 2 048 commands each).
    pub last_flush_pipelines: u64,
    /// The longest successful flush round trip so far.
    pub max_flush_latency: Duration,
    /// (breaker, bucket) deltas waiting for Redis.
    pub deltas_pending: u64,
    /// Deltas dropped: evicted from the full queue, expired out of the window while Redis was
    /// away, or lost in a flush whose outcome is unknown (never sent twice).
    pub deltas_dropped: u64,
    /// Replies from Redis that were not what was asked for (wrong type, negative or huge
    /// numbers), ignored.
    pub garbage_replies: u64,
    /// Commands on one key that Redis refused (a key of another type at a bucket's name, a
    /// count past 64 bits): each costs its own breaker that bucket's delta or read, never
    /// the rest of the flush.
    pub key_errors: u64,
    /// Breakers this instance tripped on the fleet-wide window.
    pub fleet_window_trips: u64,
    /// Transitions published.
    pub messages_out: u64,
    /// Transitions not published: the queue from the listeners was full, the transition was
    /// already over when its turn came, the breaker's name cannot travel (longer than 256
    /// bytes, or with control characters), or the publish still failed after retrying for
    /// 30 s.
    pub publish_dropped: u64,
    /// Publishes that failed and were tried again (with backoff, while the message was still
    /// current).
    pub publish_retries: u64,
    /// Messages sent a second time, `reconnect_max` + `command_timeout` after the first, for
    /// peers whose subscription was reconnecting (receivers drop the copy).
    pub messages_repeated: u64,
    /// Messages received on the channel.
    pub messages_in: u64,
    /// Received messages that moved a local breaker.
    pub messages_applied: u64,
    /// Received messages that changed nothing: this instance's own, duplicates, older
    /// generations, unknown names, or a local state the fleet may not change.
    pub messages_ignored: u64,
    /// Received payloads that were not valid messages.
    pub messages_malformed: u64,
    /// Received payloads refused by an instance with a
    /// [`signing_key`](crate::fleet::FleetOptions::signing_key): unsigned, signed with no
    /// accepted key (forged, tampered with, another fleet's), or sent further from now than
    /// the replay window.
    pub messages_unauthenticated: u64,
    /// Subscriptions made to the channel: the first, then one per reconnection (after Redis
    /// dropped it, it stopped answering, or a refused payload over 1 MiB replaced it).
    pub subscriptions: u64,
    /// Peers' trips recorded but not applied: too few instances agreed yet (see
    /// [`Quorum`](crate::fleet::Quorum)). Also counted in `messages_ignored`.
    pub trips_short_of_quorum: u64,
    /// Live instances of the fleet (this one included), as a [`Quorum`](crate::fleet::Quorum)
    /// counts them: those that flushed within the liveness period, as the last flush read
    /// them, or a higher count read earlier, held until lower counts were read for a whole
    /// liveness period (after Redis restarted empty, instances come back one flush at a
    /// time). 0 before the first flush.
    pub instances: u64,
}

impl FleetStatus {
    /// Whether the link is up both ways: flushes reach Redis and the subscription is live.
    pub fn up(&self) -> bool {
        self.connected && self.subscribed
    }

    /// Publishes the link's series to the installed `metrics` recorder (feature `metrics`):
    ///
    /// | metric | type |
    /// |---|---|
    /// | `hotbreaker_fleet_flushes_total` | counter, `result` = `ok` \| `error` |
    /// | `hotbreaker_fleet_flush_seconds` | histogram (recorded by every successful flush) |
    /// | `hotbreaker_fleet_deltas_dropped_total` | counter |
    /// | `hotbreaker_fleet_deltas_pending` | gauge |
    /// | `hotbreaker_fleet_garbage_replies_total` | counter |
    /// | `hotbreaker_fleet_key_errors_total` | counter |
    /// | `hotbreaker_fleet_window_trips_total` | counter |
    /// | `hotbreaker_fleet_messages_total` | counter, `direction` = `out` \| `in`, `result` = `ok` \| `dropped` \| `retried` \| `repeated` \| `applied` \| `ignored` \| `malformed` \| `unauthenticated` |
    /// | `hotbreaker_fleet_trips_short_of_quorum_total` | counter |
    /// | `hotbreaker_fleet_instances` | gauge |
    /// | `hotbreaker_fleet_subscriptions_total` | counter |
    /// | `hotbreaker_fleet_connected` | gauge, 1 or 0 |
    /// | `hotbreaker_fleet_subscribed` | gauge, 1 or 0 |
    #[cfg(feature = "metrics")]
    pub fn publish_metrics(&self) {
        metrics::counter!("hotbreaker_fleet_flushes_total", "result" => "ok")
            .absolute(self.flushes);
        metrics::counter!("hotbreaker_fleet_flushes_total", "result" => "error")
            .absolute(self.flush_errors);
        metrics::counter!("hotbreaker_fleet_deltas_dropped_total").absolute(self.deltas_dropped);
        metrics::gauge!("hotbreaker_fleet_deltas_pending").set(self.deltas_pending as f64);
        metrics::counter!("hotbreaker_fleet_garbage_replies_total").absolute(self.garbage_replies);
        metrics::counter!("hotbreaker_fleet_key_errors_total").absolute(self.key_errors);
        metrics::counter!("hotbreaker_fleet_window_trips_total").absolute(self.fleet_window_trips);
        for (direction, result, n) in [
            ("out", "ok", self.messages_out),
            ("out", "dropped", self.publish_dropped),
            ("out", "retried", self.publish_retries),
            ("out", "repeated", self.messages_repeated),
            ("in", "applied", self.messages_applied),
            ("in", "ignored", self.messages_ignored),
            ("in", "malformed", self.messages_malformed),
            ("in", "unauthenticated", self.messages_unauthenticated),
        ] {
            metrics::counter!("hotbreaker_fleet_messages_total", "direction" => direction, "result" => result)
                .absolute(n);
        }
        metrics::counter!("hotbreaker_fleet_trips_short_of_quorum_total")
            .absolute(self.trips_short_of_quorum);
        metrics::gauge!("hotbreaker_fleet_instances").set(self.instances as f64);
        metrics::counter!("hotbreaker_fleet_subscriptions_total").absolute(self.subscriptions);
        metrics::gauge!("hotbreaker_fleet_connected").set(f64::from(u8::from(self.connected)));
        metrics::gauge!("hotbreaker_fleet_subscribed").set(f64::from(u8::from(self.subscribed)));
    }
}
