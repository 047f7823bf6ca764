//! Taking a permit: the fast path from the mirror, and the exact path through the state word.

use super::*;

impl Breaker {
    // ---- acquiring -------------------------------------------------------------------------

    #[inline(always)]
    pub(crate) fn acquire(&self) -> Result<Ticket, Rejected> {
        let mirror = self.mirror();
        if mirror.passes_freely() {
            let throttle = self.hot.throttle.load();
            if throttle.is_active() {
                return self.acquire_throttled(mirror, throttle);
            }
            Ok(Ticket::from_mirror(mirror, self.issue_time()))
        } else {
            self.acquire_not_closed(mirror)
        }
    }

    #[inline]
    pub(super) fn issue_time(&self) -> u64 {
        if self.slow_threshold() == u64::MAX {
            0 // untimed: never slow
        } else {
            self.clock.now_ns().max(1)
        }
    }

    #[inline]
    pub(super) fn slow_threshold(&self) -> u64 {
        // Relaxed: a hint; see the module's "Orderings" (Rules).
        self.hot.slow_ns.load(Ordering::Relaxed)
    }

    /// Acquire while Open, HalfOpen or Isolated. The common Open case (before the deadline) is a
    /// real-clock read, a load and one counter increment. Whether the deadline has passed is
    /// always decided on the real clock: quanta's recent time, guarded by counting repeats, can
    /// be old by any amount of time on a thread's first sight of it, so a stopped upkeep could
    /// otherwise keep the breaker Open.
    ///
    /// The mirror may lag the state word; a rejection decided from it is one that raced the
    /// transition it has not seen yet (a transition out of Open needs its deadline passed, or a
    /// manual call still in progress).
    ///
    /// The compact deadline answers first (a 64-bit load on every host); the exact 128-bit cell
    /// only when it cannot: just after a transition, at the deadline, or past its horizon.
    #[inline]
    pub(super) fn acquire_not_closed(&self, mirror: StateMirror) -> Result<Ticket, Rejected> {
        if mirror.kind() == State::Open {
            let now = self.clock.real_ns();
            let compact = self.hot.compact_deadline.load();
            if let Some(left) = compact_deadline::remaining(compact, mirror.generation(), now) {
                self.stripes.add_rejected();
                return Err(Rejected {
                    state: State::Open,
                    retry_after_ns: Some(left),
                });
            }
            return self.acquire_open_exact(mirror, now);
        }
        self.acquire_decide(self.clock.real_ns())
    }

    /// Acquire while Open when the compact deadline could not answer: from the exact cell.
    #[cold]
    #[inline(never)]
    pub(super) fn acquire_open_exact(
        &self,
        mirror: StateMirror,
        now: u64,
    ) -> Result<Ticket, Rejected> {
        match self.exact.deadline.read(mirror.generation()) {
            Some(deadline) if now < deadline => {
                self.stripes.add_rejected();
                Err(Rejected {
                    state: State::Open,
                    retry_after_ns: Some(deadline - now),
                })
            }
            _ => self.acquire_decide(now),
        }
    }

    /// Acquire by the state machine: half-opening, half-open admission, timeouts, lost races.
    #[cold]
    #[inline(never)]
    pub(super) fn acquire_decide(&self, now: u64) -> Result<Ticket, Rejected> {
        let rules = self.rules.load();
        let (installed, step) = self.swap_state(rules.limits, |word| Event::Acquire {
            deadline_passed: word.kind() == State::Open
                && self
                    .exact
                    .deadline
                    .read(word.generation())
                    .is_some_and(|deadline| now >= deadline),
            half_open_expired: word.kind() == State::HalfOpen
                && self.half_open_expired(&rules, word.generation(), now),
        });
        if step.admit {
            return Ok(Ticket::new(
                installed.generation(),
                installed.kind(),
                self.issue_time(),
            ));
        }
        Err(self.reject(installed, now))
    }

    #[inline]
    pub(super) fn reject(&self, word: Word, now: u64) -> Rejected {
        self.stripes.add_rejected();
        let retry_after_ns = match word.kind() {
            State::Open => Some(self.open_remaining(word, now)),
            _ => None,
        };
        Rejected {
            state: word.kind(),
            retry_after_ns,
        }
    }

    /// Time left until an Open word's deadline; before the deadline is published, the nominal
    /// duration of this opening (an upper bound).
    pub(super) fn open_remaining(&self, word: Word, now: u64) -> u64 {
        match self.exact.deadline.read(word.generation()) {
            Some(deadline) => deadline.saturating_sub(now),
            None => self.rules.load().backoff.nanos(word.attempt()),
        }
    }

    pub(super) fn half_open_expired(&self, rules: &LiveRules, generation: u64, now: u64) -> bool {
        rules.half_open_timeout_ns.is_some()
            && self
                .exact
                .deadline
                .read(generation)
                .is_some_and(|deadline| deadline != deadline::NONE && now >= deadline)
    }
}
