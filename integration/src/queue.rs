//! The queue scenario's parts, shared by its example and its tests: a flaky dependency, a
//! RabbitMQ consumer that pauses consumption while its breaker is Open, and a publisher guarded
//! by its own breaker that buffers within a bound instead of blocking.
//!
//! **The consumer** takes one message at a time (prefetch 1) and hands it to the dependency. A
//! message is acknowledged only after the dependency handled it; a failure is rejected back to
//! the queue (`nack` with requeue), never dropped. With a breaker, when the breaker turns a
//! message away or a failure leaves it not Closed, the consumer cancels its subscription first
//! and then puts the message back, so the broker has nothing more to push to it: no hot
//! redelivery loop. It waits while the breaker is Open and subscribes again when it half-opens,
//! so the next message is the probe. On a lost connection (the broker killed or restarted) it
//! connects again, declares its queue again (a broker that lost its state gets it back) and
//! goes on.
//!
//! **The publisher** sends persistent, mandatory messages with publisher confirms (a message
//! counts as sent once the broker confirmed it and a queue took it). Through its breaker, a
//! publish the breaker turns away, or one that fails or is not confirmed within 500 ms, goes
//! to a bounded buffer, sent in order once the breaker lets calls through again; a full buffer
//! refuses the message to the caller at once. A publish waits at most that deadline per
//! message it sends. A message whose confirm came too late may still be in the queue, and is
//! sent again from the buffer: publishing is at least once, and so is delivery (the consumer
//! counts what it handles twice).

use std::collections::{HashSet, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use hotbreaker::{Breaker, State};
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicNackOptions,
    BasicPublishOptions, BasicQosOptions, ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;

use lapin::{BasicProperties, Channel, Confirmation, Connection, ConnectionProperties};

/// How long a connection attempt, a publish's confirm, may take.
pub const DEADLINE: Duration = Duration::from_millis(500);

/// The dependency each message is handed to: answers in 2 ms, or fails while `failing`.
#[derive(Debug, Default)]
pub struct Dependency {
    pub failing: AtomicBool,
    /// Messages it was handed.
    pub calls: AtomicU64,
}

impl Dependency {
    pub async fn handle(&self, _id: u64) -> Result<(), ()> {
        self.calls.fetch_add(1, Relaxed);
        tokio::time::sleep(Duration::from_millis(2)).await;
        if self.failing.load(Relaxed) {
            Err(())
        } else {
            Ok(())
        }
    }
}

/// What a consumer did.
#[derive(Debug, Default)]
pub struct ConsumerStats {
    /// Messages the broker delivered to it.
    pub deliveries: AtomicU64,
    /// Of which, delivered before (put back after a failure or a pause).
    pub redeliveries: AtomicU64,
    /// Messages the dependency handled and the consumer acknowledged.
    pub processed: AtomicU64,
    /// Messages the dependency failed (put back).
    pub failed: AtomicU64,
    /// Times it stopped consuming because its breaker was not Closed.
    pub pauses: AtomicU64,
    /// Connections it made.
    pub connections: AtomicU64,
    /// Ids acknowledged, each once.
    pub done: Mutex<HashSet<u64>>,
    /// Ids acknowledged more than once (a message handled twice).
    pub duplicates: AtomicU64,
}

/// A consumer of `queue` (module docs).
#[derive(Debug)]
pub struct Consumer {
    pub url: String,
    pub queue: String,
    pub breaker: Option<Arc<Breaker>>,
    pub dependency: Arc<Dependency>,
    pub stats: ConsumerStats,
}

/// How a subscription ended.
enum Ended {
    /// Paused by the breaker: subscribe again when it lets calls through.
    Paused,
    /// The connection is gone.
    Lost,
    Stopped,
}

async fn connect(url: &str) -> Option<(Connection, Channel)> {
    let conn = tokio::time::timeout(
        DEADLINE,
        Connection::connect(url, ConnectionProperties::default()),
    )
    .await
    .ok()?
    .ok()?;
    let channel = tokio::time::timeout(DEADLINE, conn.create_channel())
        .await
        .ok()?
        .ok()?;
    Some((conn, channel))
}

async fn declare(channel: &Channel, queue: &str) -> Option<()> {
    let options = QueueDeclareOptions {
        durable: true,
        ..QueueDeclareOptions::default()
    };
    tokio::time::timeout(
        DEADLINE,
        channel.queue_declare(queue.into(), options, FieldTable::default()),
    )
    .await
    .ok()?
    .ok()
    .map(|_| ())
}

fn id_of(data: &[u8]) -> u64 {
    data.try_into().map(u64::from_be_bytes).unwrap_or(u64::MAX)
}

impl Consumer {
    /// Consumes until `stop` is set (seen within 50 ms, and within [`DEADLINE`] per step
    /// while the broker does not answer).
    pub async fn run(&self, stop: &AtomicBool) {
        // Between connection attempts: 100 ms, doubling to 1.6 s while they keep failing.
        let mut backoff = Duration::from_millis(100);
        while !stop.load(Relaxed) {
            let linked = match connect(&self.url).await {
                Some((conn, channel)) => {
                    self.stats.connections.fetch_add(1, Relaxed);
                    let ready = declare(&channel, &self.queue).await.is_some()
                        && timed(channel.basic_qos(1, BasicQosOptions::default()))
                            .await
                            .is_some();
                    let ended = if ready {
                        backoff = Duration::from_millis(100);
                        self.serve(&channel, stop, &mut backoff).await
                    } else {
                        Ended::Lost
                    };
                    let _ = timed(conn.close(200, "done".into())).await;
                    matches!(ended, Ended::Stopped)
                }
                None => false,
            };
            if linked {
                return;
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(1_600));
        }
    }

    /// Subscriptions on one connection, paused while the breaker turns calls away.
    async fn serve(&self, channel: &Channel, stop: &AtomicBool, backoff: &mut Duration) -> Ended {
        loop {
            if stop.load(Relaxed) {
                return Ended::Stopped;
            }
            if let Some(b) = &self.breaker {
                // Paused: not subscribed, so nothing is delivered to this consumer. Open: until
                // the opening has run out (the next message is then the probe). Isolated, or
                // HalfOpen with every probe out elsewhere: look again in 50 ms.
                let wait = match b.state() {
                    State::Closed | State::Disabled => Duration::ZERO,
                    State::Open => b.metrics().retry_after.unwrap_or(Duration::from_millis(50)),
                    _ => Duration::from_millis(50),
                };
                if !wait.is_zero() {
                    tokio::time::sleep(wait.min(Duration::from_millis(50))).await;
                    continue;
                }
            }
            match self.subscription(channel, stop).await {
                Ended::Paused => {
                    *backoff = Duration::from_millis(100);
                    // A message was put back: never subscribe again at once (a breaker that
                    // still turns calls away would make that a loop).
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                ended => return ended,
            }
        }
    }

    async fn subscription(&self, channel: &Channel, stop: &AtomicBool) -> Ended {
        let Some(mut consumer) = timed(channel.basic_consume(
            self.queue.as_str().into(),
            "".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        ))
        .await
        else {
            return Ended::Lost;
        };
        let tag = consumer.tag();
        let cancel = || timed(channel.basic_cancel(tag.clone(), BasicCancelOptions::default()));
        loop {
            let delivery =
                match tokio::time::timeout(Duration::from_millis(50), consumer.next()).await {
                    Err(_) if stop.load(Relaxed) => {
                        let _ = cancel().await;
                        return Ended::Stopped;
                    }
                    Err(_) => continue,
                    Ok(Some(Ok(d))) => d,
                    Ok(_) => return Ended::Lost,
                };
            let s = &self.stats;
            s.deliveries.fetch_add(1, Relaxed);
            if delivery.redelivered {
                s.redeliveries.fetch_add(1, Relaxed);
            }
            if stop.load(Relaxed) {
                // Stop the pushes first, then put the message back: nothing more comes.
                let _ = cancel().await;
                let _ = timed(delivery.nack(requeue())).await;
                return Ended::Stopped;
            }
            let id = id_of(&delivery.data);
            let permit = match &self.breaker {
                None => None,
                Some(b) => match b.try_acquire_owned() {
                    Ok(p) => Some(p),
                    Err(_) => {
                        s.pauses.fetch_add(1, Relaxed);
                        let _ = cancel().await;
                        let _ = timed(delivery.nack(requeue())).await;
                        return Ended::Paused;
                    }
                },
            };
            let result = self.dependency.handle(id).await;
            match result {
                Ok(()) => {
                    if let Some(p) = permit {
                        p.success();
                    }
                    if timed(delivery.ack(BasicAckOptions::default()))
                        .await
                        .is_none()
                    {
                        // Not acknowledged: the broker delivers it again. Not counted as done.
                        return Ended::Lost;
                    }
                    s.processed.fetch_add(1, Relaxed);
                    if !s.done.lock().unwrap().insert(id) {
                        s.duplicates.fetch_add(1, Relaxed);
                    }
                }
                Err(()) => {
                    s.failed.fetch_add(1, Relaxed);
                    if let Some(p) = permit {
                        p.failure();
                    }
                    let open = self
                        .breaker
                        .as_ref()
                        .is_some_and(|b| b.state() != State::Closed);
                    if open {
                        s.pauses.fetch_add(1, Relaxed);
                        let _ = cancel().await;
                    }
                    if timed(delivery.nack(requeue())).await.is_none() {
                        return Ended::Lost;
                    }
                    if open {
                        return Ended::Paused;
                    }
                }
            }
        }
    }
}

/// `f`'s result if it comes within [`DEADLINE`] and is `Ok`.
async fn timed<T, E>(f: impl std::future::Future<Output = Result<T, E>>) -> Option<T> {
    tokio::time::timeout(DEADLINE, f).await.ok()?.ok()
}

fn requeue() -> BasicNackOptions {
    BasicNackOptions {
        requeue: true,
        ..BasicNackOptions::default()
    }
}

/// What a publisher did.
#[derive(Debug, Default)]
pub struct PublisherStats {
    /// Messages the broker confirmed.
    pub sent: AtomicU64,
    /// Messages put in the buffer (some are sent later).
    pub buffered: AtomicU64,
    /// Messages refused to the caller: the buffer was full.
    pub refused: AtomicU64,
    /// Publishes that failed or were not confirmed in time.
    pub failures: AtomicU64,
    /// Ids the broker confirmed.
    pub confirmed: Mutex<Vec<u64>>,
}

/// How a publish went for its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Published {
    Sent,
    Buffered,
    Refused,
}

/// Buffered messages a publish sends before its own, at most: one publish never carries a
/// whole backlog (call [`Publisher::flush`] for that).
pub const INLINE_FLUSH: usize = 64;

/// A publisher to `queue` (module docs).
#[derive(Debug)]
pub struct Publisher {
    url: String,
    queue: String,
    breaker: Option<Arc<Breaker>>,
    capacity: usize,
    buffer: Mutex<VecDeque<u64>>,
    /// Held by the one task sending (a publish or a flush), across its awaits: sends are one
    /// at a time, in buffer order. A publish that finds it taken buffers its message instead
    /// of waiting.
    turn: tokio::sync::Mutex<()>,
    /// The connection and channel; only the holder of `turn` touches it.
    link: tokio::sync::Mutex<Option<(Connection, Channel)>>,
    pub stats: PublisherStats,
}

impl Publisher {
    pub fn new(
        url: String,
        queue: &str,
        breaker: Option<Arc<Breaker>>,
        capacity: usize,
    ) -> Publisher {
        Publisher {
            url,
            queue: queue.to_owned(),
            breaker,
            capacity,
            buffer: Mutex::new(VecDeque::new()),
            turn: tokio::sync::Mutex::new(()),
            link: tokio::sync::Mutex::new(None),
            stats: PublisherStats::default(),
        }
    }

    /// Messages waiting in the buffer.
    pub fn buffered(&self) -> usize {
        self.buffer.lock().unwrap().len()
    }

    /// Publishes message `id`: sends up to [`INLINE_FLUSH`] buffered messages and then this one
    /// if the breaker lets them through, else buffers it, else (buffer full) refuses it. It
    /// waits at most [`DEADLINE`] per message it sends, and not at all while another publish
    /// or flush is sending (its message is buffered). Messages one caller publishes one after
    /// another are sent in that order.
    pub async fn publish(&self, id: u64) -> Published {
        let Ok(_turn) = self.turn.try_lock() else {
            return self.hold(id);
        };
        if self.send_buffered(INLINE_FLUSH).await && self.try_send(id).await {
            return Published::Sent;
        }
        self.hold(id)
    }

    fn hold(&self, id: u64) -> Published {
        let mut buffer = self.buffer.lock().unwrap();
        if buffer.len() < self.capacity {
            buffer.push_back(id);
            self.stats.buffered.fetch_add(1, Relaxed);
            Published::Buffered
        } else {
            self.stats.refused.fetch_add(1, Relaxed);
            Published::Refused
        }
    }

    /// Sends every buffered message, in order, while the breaker lets them through.
    pub async fn flush(&self) {
        let _turn = self.turn.lock().await;
        self.send_buffered(usize::MAX).await;
    }

    /// Sends up to `limit` buffered messages, in order (the caller holds `turn`); whether the
    /// buffer is empty afterwards.
    async fn send_buffered(&self, limit: usize) -> bool {
        for _ in 0..limit {
            let Some(id) = self.buffer.lock().unwrap().front().copied() else {
                return true;
            };
            if !self.try_send(id).await {
                return false;
            }
            // Only the holder of `turn` takes from the front: it is still `id`.
            self.buffer.lock().unwrap().pop_front();
        }
        self.buffered() == 0
    }

    async fn try_send(&self, id: u64) -> bool {
        let permit = match &self.breaker {
            None => None,
            Some(b) => match b.try_acquire_owned() {
                Ok(p) => Some(p),
                Err(_) => return false,
            },
        };
        let ok = tokio::time::timeout(DEADLINE, self.send(id))
            .await
            .is_ok_and(|r| r.is_some());
        if let Some(p) = permit {
            if ok { p.success() } else { p.failure() }
        }
        if ok {
            self.stats.sent.fetch_add(1, Relaxed);
            self.stats.confirmed.lock().unwrap().push(id);
        } else {
            self.stats.failures.fetch_add(1, Relaxed);
            // Uncontended: only the holder of `turn` gets here.
            *self.link.lock().await = None;
        }
        ok
    }

    async fn send(&self, id: u64) -> Option<()> {
        let mut link = self.link.lock().await;
        if link.is_none() {
            let (conn, channel) = connect(&self.url).await?;
            channel
                .confirm_select(ConfirmSelectOptions::default())
                .await
                .ok()?;
            declare(&channel, &self.queue).await?;
            *link = Some((conn, channel));
        }
        let (_, channel) = link.as_ref()?;
        let confirm = channel
            .basic_publish(
                "".into(),
                self.queue.as_str().into(),
                // Mandatory: a message no queue takes (the queue was deleted) comes back, and
                // counts as a failure, not as sent.
                BasicPublishOptions {
                    mandatory: true,
                    ..BasicPublishOptions::default()
                },
                &id.to_be_bytes(),
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .ok()?
            .await
            .ok()?;
        matches!(confirm, Confirmation::Ack(None)).then_some(())
    }
}

/// Waits until `done()` holds or `limit` passes; how long it took, or `None`.
pub async fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> Option<Duration> {
    let began = Instant::now();
    while began.elapsed() < limit {
        if done() {
            return Some(began.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    done().then(|| began.elapsed())
}
