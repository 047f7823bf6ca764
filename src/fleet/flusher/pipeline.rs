//! What one flush sends: the breakers' writes and reads, the membership commands, cut into
//! pipelines of at most [`MAX_PIPELINE`] commands.

use std::sync::Arc;

use crate::breaker::Breaker;
use crate::fleet::Shared;
use crate::fleet::message;
use crate::fleet::rule::{Counts, FleetRule};
use crate::fleet::stats::{self, Pending};

/// The most commands one pipeline carries. A flush with more is sent as several pipelines,
/// one after the other, each within the command timeout: a large registry makes a flush
/// longer, never a single request that cannot finish in time.
pub(crate) const MAX_PIPELINE: usize = 2_048;

/// One breaker whose fleet totals this flush reads.
pub(super) struct Read {
    pub(super) name: Arc<str>,
    pub(super) breaker: Arc<Breaker>,
    /// The breaker's generation when its window was listed: the totals read describe that
    /// Closed period only.
    pub(super) generation: u64,
    pub(super) rule: FleetRule,
    /// The total of the window's buckets already read and final.
    pub(super) known: Counts,
    /// The buckets to read.
    pub(super) buckets: Vec<u64>,
}

/// One (breaker, bucket) delta this flush writes.
pub(super) struct Write {
    pub(super) name: Arc<str>,
    pub(super) bucket: u64,
    pub(super) pending: Pending,
    /// Whether this write sets the key's expiry (the first write of the bucket from here).
    pub(super) expire: bool,
}

impl Write {
    /// Its nonzero counts, as (field, count): one `HINCRBY` each.
    pub(super) fn fields(&self) -> impl Iterator<Item = (&'static str, u64)> {
        let c = self.pending.counts;
        [("c", c.calls), ("f", c.failures), ("s", c.slow)]
            .into_iter()
            .filter(|(_, n)| *n > 0)
    }

    pub(super) fn commands(&self) -> usize {
        self.fields().count() + usize::from(self.expire)
    }
}

/// The part of a flush one pipeline carries: a run of the writes, then a run of the reads
/// (each breaker's reads in one pipeline).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Part {
    pub(crate) writes: std::ops::Range<usize>,
    pub(crate) reads: std::ops::Range<usize>,
}

/// Splits a flush into pipelines of at most `max` commands (besides the first one's five for
/// the clock and the membership), given each write's and each read's command count, in
/// order. A unit larger than `max` (a window of more buckets) goes alone. Always at least one
/// part: the first carries the clock and the heartbeat even with nothing else to send.
pub(crate) fn plan(writes: &[usize], reads: &[usize], max: usize) -> Vec<Part> {
    let mut parts = Vec::new();
    let mut current = Part {
        writes: 0..0,
        reads: 0..0,
    };
    let (mut size, mut units) = (0, 0);
    for (i, &n) in writes.iter().enumerate() {
        if units > 0 && size + n > max {
            parts.push(current);
            current = Part {
                writes: i..i,
                reads: 0..0,
            };
            (size, units) = (0, 0);
        }
        current.writes.end = i + 1;
        (size, units) = (size + n, units + 1);
    }
    for (i, &n) in reads.iter().enumerate() {
        if units > 0 && size + n > max {
            parts.push(current);
            current = Part {
                writes: writes.len()..writes.len(),
                reads: i..i,
            };
            (size, units) = (0, 0);
        }
        current.reads.end = i + 1;
        (size, units) = (size + n, units + 1);
    }
    parts.push(current);
    parts
}

/// The start of every flush's pipeline, two replies: `TIME` (the fleet's clock), then this
/// instance's heartbeat (under its name) in the set of live instances (`ZADD` scored by the fleet's time,
/// `ZREMRANGEBYSCORE` of those silent for the liveness period, `PEXPIRE`, replies ignored)
/// and `ZCARD`, the live count.
pub(super) fn membership(shared: &Shared, now_ms: u64) -> redis::Pipeline {
    let options = &shared.options;
    let key = options.members_key();
    let liveness = options.liveness_ms();
    let mut pipe = redis::pipe();
    pipe.cmd("TIME");
    // By name, like the quorum's claims: a restarted instance is the same member, not a
    // second one that would never vote.
    pipe.cmd("ZADD")
        .arg(&key)
        .arg(now_ms)
        .arg(message::instance_name(&shared.instance))
        .ignore();
    pipe.cmd("ZREMRANGEBYSCORE")
        .arg(&key)
        .arg("-inf")
        .arg(now_ms.saturating_sub(liveness))
        .ignore();
    pipe.cmd("PEXPIRE")
        .arg(&key)
        .arg(liveness.saturating_mul(2))
        .ignore();
    pipe.cmd("ZCARD").arg(&key);
    pipe
}

/// A part's writes and reads: `HINCRBY` each nonzero count and, on the first write of a
/// bucket from here, `PEXPIRE` its key (reply ignored); then one `HMGET key c f s` per bucket
/// to read. Returns how many `HINCRBY`s it holds (their replies come first).
///
/// Each reply is checked on its own (`ignore_errors`): a key that fails (a key of another
/// type at a bucket's name, a field past 64 bits) costs its own breaker that bucket, counted
/// in `key_errors`, never the flush of every other breaker.
pub(super) fn writes_and_reads(
    pipe: &mut redis::Pipeline,
    prefix: &str,
    writes: &[Write],
    reads: &[Read],
) -> usize {
    pipe.ignore_errors();
    let mut hincrbys = 0;
    for write in writes {
        let key = stats::key(prefix, &write.name, write.pending.width_ms, write.bucket);
        for (field, n) in write.fields() {
            pipe.cmd("HINCRBY")
                .arg(&key)
                .arg(field)
                .arg(i64::try_from(n).unwrap_or(i64::MAX));
            hincrbys += 1;
        }
        if write.expire {
            pipe.cmd("PEXPIRE")
                .arg(&key)
                .arg(write.pending.ttl_ms)
                .ignore();
        }
    }
    for read in reads {
        for &bucket in &read.buckets {
            let key = stats::key(prefix, &read.name, read.rule.width_ms(), bucket);
            pipe.cmd("HMGET").arg(key).arg("c").arg("f").arg("s");
        }
    }
    hincrbys
}
