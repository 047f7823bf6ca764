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
//! **The publisher** sends persistent messages with publisher confirms (a message counts as
//! sent once the broker confirmed it). Through its breaker, a publish the breaker turns away,
//! or one that fails or is not confirmed within 500 ms, goes to a bounded buffer, sent in order
//! once the breaker lets calls through again; a full buffer refuses the message to the caller
//! at once. It never waits on a broker that is gone for longer than that deadline.

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
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties};

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
    /// Consumes until `stop` is set.
    pub async fn run(&self, stop: &AtomicBool) {
        while !stop.load(Relaxed) {
            let Some((conn, channel)) = connect(&self.url).await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            self.stats.connections.fetch_add(1, Relaxed);
            if declare(&channel, &self.queue).await.is_none()
                || channel
                    .basic_qos(1, BasicQosOptions::default())
                    .await
                    .is_err()
            {
                continue;
            }
            loop {
                if stop.load(Relaxed) {
                    let _ = conn.close(200, "done".into()).await;
                    return;
                }
                if let Some(b) = &self.breaker
                    && b.state() == State::Open
                {
                    // Paused: not subscribed, so nothing is delivered to this consumer. Once the
                    // opening has run out, subscribe: the next message is the probe.
                    let wait = b.metrics().retry_after.unwrap_or_default();
                    if !wait.is_zero() {
                        tokio::time::sleep(wait.min(Duration::from_millis(50))).await;
                        continue;
                    }
                }
                match self.subscription(&channel, stop).await {
                    Ended::Paused => continue,
                    Ended::Lost => break,
                    Ended::Stopped => {
                        let _ = conn.close(200, "done".into()).await;
                        return;
                    }
                }
            }
        }
    }

    async fn subscription(&self, channel: &Channel, stop: &AtomicBool) -> Ended {
        let Ok(mut consumer) = channel
            .basic_consume(
                self.queue.as_str().into(),
                "".into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
        else {
            return Ended::Lost;
        };
        let tag = consumer.tag();
        loop {
            let delivery =
                match tokio::time::timeout(Duration::from_millis(50), consumer.next()).await {
                    Err(_) if stop.load(Relaxed) => return Ended::Stopped,
                    Err(_) => continue,
                    Ok(Some(Ok(d))) => d,
                    Ok(_) => return Ended::Lost,
                };
            let s = &self.stats;
            s.deliveries.fetch_add(1, Relaxed);
            if delivery.redelivered {
                s.redeliveries.fetch_add(1, Relaxed);
            }
            let id = id_of(&delivery.data);
            let permit = match &self.breaker {
                None => None,
                Some(b) => match b.try_acquire_owned() {
                    Ok(p) => Some(p),
                    Err(_) => {
                        // Stop the pushes first, then put the message back: nothing more comes.
                        s.pauses.fetch_add(1, Relaxed);
                        let _ = channel
                            .basic_cancel(tag.clone(), BasicCancelOptions::default())
                            .await;
                        let _ = delivery.nack(requeue()).await;
                        return Ended::Paused;
                    }
                },
            };
            let result = self.dependency.handle(id).await;
            match result {
                Ok(()) => {
                    if delivery.ack(BasicAckOptions::default()).await.is_err() {
                        // Not acknowledged: the broker delivers it again. Not counted as done.
                        if let Some(p) = permit {
                            p.success();
                        }
                        return Ended::Lost;
                    }
                    s.processed.fetch_add(1, Relaxed);
                    if !s.done.lock().unwrap().insert(id) {
                        s.duplicates.fetch_add(1, Relaxed);
                    }
                    if let Some(p) = permit {
                        p.success();
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
                        let _ = channel
                            .basic_cancel(tag.clone(), BasicCancelOptions::default())
                            .await;
                    }
                    if delivery.nack(requeue()).await.is_err() {
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

/// A publisher to `queue` (module docs).
#[derive(Debug)]
pub struct Publisher {
    url: String,
    queue: String,
    breaker: Option<Arc<Breaker>>,
    capacity: usize,
    buffer: Mutex<VecDeque<u64>>,
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
            link: tokio::sync::Mutex::new(None),
            stats: PublisherStats::default(),
        }
    }

    /// Messages waiting in the buffer.
    pub fn buffered(&self) -> usize {
        self.buffer.lock().unwrap().len()
    }

    /// Publishes message `id`: sends it now if the buffer is empty and the breaker lets it,
    /// else buffers it, else refuses it.
    pub async fn publish(&self, id: u64) -> Published {
        if self.buffered() > 0 {
            self.flush().await;
        }
        if self.buffered() == 0 && self.try_send(id).await {
            return Published::Sent;
        }
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

    /// Sends buffered messages, in order, while the breaker lets them through.
    pub async fn flush(&self) {
        loop {
            let Some(id) = self.buffer.lock().unwrap().front().copied() else {
                return;
            };
            if !self.try_send(id).await {
                return;
            }
            self.buffer.lock().unwrap().pop_front();
        }
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
        if ok {
            self.stats.sent.fetch_add(1, Relaxed);
            self.stats.confirmed.lock().unwrap().push(id);
        } else {
            self.stats.failures.fetch_add(1, Relaxed);
            *self.link.lock().await = None;
        }
        if let Some(p) = permit {
            if ok { p.success() } else { p.failure() }
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
                BasicPublishOptions::default(),
                &id.to_be_bytes(),
                BasicProperties::default().with_delivery_mode(2),
            )
            .await
            .ok()?
            .await
            .ok()?;
        confirm.is_ack().then_some(())
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
