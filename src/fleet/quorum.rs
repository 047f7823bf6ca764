//! When a peer's trip opens a local breaker: a peer's `open` is evidence, not a command.
//! Pure: the decision and the table of claims take the time as an argument and are tested
//! without Redis.
//!
//! One instance whose own network is broken fails every call and trips again and again. If
//! each of its trips opened every peer, one sick instance would hold a healthy fleet open.
//! So each `open` is recorded as a *claim* by its sender that the breaker of that name should
//! be open, valid until the sender's deadline; a Closed breaker here opens only when the
//! claims still valid come from enough distinct instances ([`Quorum`]). A close or a reset
//! from a sender withdraws its claim.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How many instances must agree that a breaker should be open before their trips open it on
/// an instance whose own rules have not tripped.
///
/// The default, [`Quorum::Majority`], opens a breaker here when more than half of the fleet's
/// live instances have tripped theirs: a minority of sick instances (their own network or DNS
/// broken) never opens a healthy one, and a real outage, which every instance sees, opens the
/// rest as soon as a majority has tripped.
///
/// # Examples
/// ```
/// use hotbreaker::fleet::{FleetOptions, Quorum};
///
/// // Five replicas that call the same dependencies: by default, three trips open the other two.
/// let options = FleetOptions::new("redis://10.0.0.5:6379", "checkout");
/// assert_eq!(Quorum::default(), Quorum::Majority);
/// // Any one peer's trip opens every instance (for fleets that trust each other's evidence).
/// let eager = options.quorum(Quorum::Instances(1));
/// # let _ = eager;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Quorum {
    /// More than half of the live instances of the fleet (those that flushed within the
    /// liveness period; this one included) must have tripped. With two instances, that is
    /// both: a peer alone never opens the other, whose own rules decide.
    #[default]
    Majority,
    /// At least this many other instances must have tripped (0 counts as 1). `Instances(1)`
    /// applies any peer's trip at once.
    Instances(u32),
}

/// Whether `agreeing` distinct peers with a valid claim make a quorum, in a fleet where
/// `live` instances (this one included) flushed within the liveness period. `live` is 0
/// before the first flush; the instances that agree and this one are always counted.
pub(crate) fn reached(quorum: Quorum, agreeing: usize, live: u64) -> bool {
    if agreeing == 0 {
        return false;
    }
    match quorum {
        // The fleet's size is unknown until a flush counted it: no majority of an unknown.
        Quorum::Majority if live == 0 => false,
        Quorum::Majority => {
            let agreeing = agreeing as u64;
            let voters = live.max(agreeing.saturating_add(1));
            agreeing.saturating_mul(2) > voters
        }
        Quorum::Instances(n) => agreeing as u64 >= u64::from(n.max(1)),
    }
}

/// The fleet's size as the quorum counts it: the highest live count a flush read, held until
/// lower counts have been read for a whole liveness period of successful flushes. A Redis
/// that restarted empty (or an instance that just reconnected) counts the instances as they
/// come back, one flush at a time: without the hold, two sick instances would briefly be a
/// majority of a fleet of two or three.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct LiveCount {
    held: u64,
    lower_since: Option<Instant>,
}

impl LiveCount {
    /// Takes the count a successful flush read at `now`; returns the size to count.
    pub(crate) fn observe(&mut self, count: u64, now: Instant, hold: Duration) -> u64 {
        if count >= self.held {
            self.held = count;
            self.lower_since = None;
        } else {
            let since = *self.lower_since.get_or_insert(now);
            if now.saturating_duration_since(since) >= hold {
                self.held = count;
                self.lower_since = None;
            }
        }
        self.held
    }

    /// A flush failed: the hold starts again once flushes succeed.
    pub(crate) fn interrupted(&mut self) {
        self.lower_since = None;
    }
}

/// The longest a claim stays valid, whatever the sender says its deadline is.
pub(crate) const LONGEST_CLAIM: Duration = Duration::from_secs(600);

/// The claims still valid, per breaker name: which senders say it should be open, and until
/// when. Bounded: at most `capacity` (name, sender) pairs; past it, expired claims are swept,
/// and a new claim that still finds no room is refused (it cannot make a quorum, which errs
/// on the side of not opening a healthy breaker).
#[derive(Debug)]
pub(crate) struct Claims {
    by_name: HashMap<Box<str>, Vec<(Box<str>, Instant)>>,
    pairs: usize,
    capacity: usize,
}

impl Claims {
    pub(crate) fn new(capacity: usize) -> Claims {
        Claims {
            by_name: HashMap::new(),
            pairs: 0,
            capacity: capacity.max(1),
        }
    }

    /// Records that `sender` says `name` should be open for `open_for` from `now` (at most
    /// [`LONGEST_CLAIM`]); returns how many distinct senders have a valid claim on `name` at
    /// `now`, this one included (0 if it was refused for want of room).
    pub(crate) fn claim(
        &mut self,
        name: &str,
        sender: &str,
        open_for: Duration,
        now: Instant,
    ) -> usize {
        let until = now + open_for.min(LONGEST_CLAIM);
        if let Some(list) = self.by_name.get_mut(name) {
            if let Some(entry) = list.iter_mut().find(|(s, _)| &**s == sender) {
                entry.1 = until;
                return self.valid(name, now);
            }
        }
        if self.pairs >= self.capacity {
            self.sweep(now);
            if self.pairs >= self.capacity {
                return 0;
            }
        }
        self.by_name
            .entry(name.into())
            .or_default()
            .push((sender.into(), until));
        self.pairs += 1;
        self.valid(name, now)
    }

    /// `sender` no longer says `name` should be open (its probe closed it, or it was reset).
    pub(crate) fn withdraw(&mut self, name: &str, sender: &str) {
        if let Some(list) = self.by_name.get_mut(name) {
            let before = list.len();
            list.retain(|(s, _)| &**s != sender);
            self.pairs -= before - list.len();
            if list.is_empty() {
                self.by_name.remove(name);
            }
        }
    }

    /// How many senders have a claim on `name` valid at `now`.
    pub(crate) fn valid(&self, name: &str, now: Instant) -> usize {
        self.by_name.get(name).map_or(0, |list| {
            list.iter().filter(|(_, until)| *until > now).count()
        })
    }

    /// Drops every claim expired at `now`.
    fn sweep(&mut self, now: Instant) {
        self.by_name.retain(|_, list| {
            list.retain(|(_, until)| *until > now);
            !list.is_empty()
        });
        self.pairs = self.by_name.values().map(Vec::len).sum();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minority_never_makes_a_majority() {
        for live in 1..=9u64 {
            // The agreeing peers are other instances: at most live - 1 of them.
            for agreeing in 0..live as usize {
                let want = agreeing > 0 && 2 * agreeing as u64 > live;
                assert_eq!(
                    reached(Quorum::Majority, agreeing, live),
                    want,
                    "{agreeing} of {live}"
                );
            }
        }
        // 1 and 2 sick of 5 never; 3 of 5 does.
        assert!(!reached(Quorum::Majority, 1, 5));
        assert!(!reached(Quorum::Majority, 2, 5));
        assert!(reached(Quorum::Majority, 3, 5));
        // Two instances: a peer alone never opens the other.
        assert!(!reached(Quorum::Majority, 1, 2));
    }

    #[test]
    fn no_majority_before_the_fleet_was_counted_and_senders_are_always_voters() {
        // Before the first flush counted the fleet (live 0): never, however many agree.
        for agreeing in 0..10 {
            assert!(!reached(Quorum::Majority, agreeing, 0));
        }
        // With a count below the senders (stale): the senders and this one are the voters.
        assert!(reached(Quorum::Majority, 2, 1), "two of three voters");
        assert!(!reached(Quorum::Majority, 5, 10));
        assert!(reached(Quorum::Majority, 6, 5));
    }

    /// Redis restarted empty: the instances come back one flush at a time, and the count held
    /// from before stands until lower counts were read for a whole liveness period of
    /// successful flushes (a failed flush starts the hold again).
    #[test]
    fn the_fleet_size_is_held_through_a_recount() {
        let t0 = Instant::now();
        let hold = Duration::from_secs(2);
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let mut live = LiveCount::default();
        assert_eq!(live.observe(5, at(0), hold), 5);
        // Restarted: 1, 2, 4 then 5 over four flushes; two sick of five never a majority.
        for (ms, count) in [(100, 1), (200, 2), (300, 4)] {
            let size = live.observe(count, at(ms), hold);
            assert_eq!(size, 5);
            assert!(!reached(Quorum::Majority, 2, size));
        }
        assert_eq!(live.observe(5, at(400), hold), 5);
        // An instance really left: the count drops after the hold.
        assert_eq!(live.observe(4, at(500), hold), 5);
        assert_eq!(live.observe(4, at(2_400), hold), 5);
        live.interrupted(); // a failed flush: the hold starts again
        assert_eq!(live.observe(4, at(2_600), hold), 5);
        assert_eq!(live.observe(4, at(4_599), hold), 5);
        assert_eq!(live.observe(4, at(4_600), hold), 4);
        assert_eq!(live.observe(6, at(4_700), hold), 6, "a rise counts at once");
    }

    #[test]
    fn a_fixed_quorum_counts_peers() {
        assert!(reached(Quorum::Instances(1), 1, 100));
        assert!(reached(Quorum::Instances(0), 1, 100));
        assert!(!reached(Quorum::Instances(0), 0, 100));
        assert!(!reached(Quorum::Instances(3), 2, 3));
        assert!(reached(Quorum::Instances(3), 3, 3));
    }

    #[test]
    fn claims_expire_at_the_senders_deadline_and_are_withdrawn_by_a_close() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut c = Claims::new(16);
        assert_eq!(c.claim("db", "a", s(5), t0), 1);
        assert_eq!(c.claim("db", "a", s(5), t0), 1, "one sender counts once");
        assert_eq!(c.claim("db", "b", s(10), t0 + s(1)), 2);
        assert_eq!(c.claim("cache", "c", s(10), t0), 1, "per name");
        assert_eq!(
            c.valid("db", t0 + s(5)),
            1,
            "a's claim ended at its deadline"
        );
        assert_eq!(c.claim("db", "a", s(5), t0 + s(5)), 2, "a tripped again");
        c.withdraw("db", "b");
        assert_eq!(c.valid("db", t0 + s(6)), 1);
        c.withdraw("db", "a");
        assert_eq!(c.valid("db", t0), 0);
        assert_eq!(c.pairs, 1);
        // A sender's hour is capped.
        assert_eq!(c.claim("x", "a", s(3_600), t0), 1);
        assert_eq!(c.valid("x", t0 + LONGEST_CLAIM), 0);
    }

    #[test]
    fn the_table_is_bounded_and_sweeps_before_refusing() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut c = Claims::new(2);
        assert_eq!(c.claim("a", "p", s(1), t0), 1);
        assert_eq!(c.claim("b", "p", s(10), t0), 1);
        assert_eq!(c.claim("c", "p", s(1), t0), 0, "full: refused");
        assert_eq!(
            c.claim("c", "p", s(1), t0 + s(2)),
            1,
            "the expired claim swept"
        );
        assert!(c.pairs <= 2);
    }
}
