//! Installing a transition on the state word, and what follows it: deadlines, counts, listeners.

use super::*;

impl Breaker {
    // ---- transitions -----------------------------------------------------------------------

    /// The one path by which the state word changes: runs `state::next` on the current word and
    /// `event(word)` in a compare-and-swap loop, re-deciding on the fresh word after every
    /// conflict. The winner of a transition publishes its deadline and calls the listeners.
    /// Returns the word in force afterwards and the step that produced it.
    pub(super) fn swap_state(
        &self,
        limits: state::Limits,
        event: impl Fn(Word) -> Event,
    ) -> (Word, Step) {
        self.swap_state_with(limits, event, None)
    }

    /// [`swap_state`](Breaker::swap_state), with the duration of an opening this transition makes
    /// given by the caller (a fleet trip) instead of the backoff. Always inlined: `swap_state`
    /// passes a constant `None`, so the callers' paths are what they were without it.
    #[inline(always)]
    pub(super) fn swap_state_with(
        &self,
        limits: state::Limits,
        event: impl Fn(Word) -> Event,
        open_for: Option<u64>,
    ) -> (Word, Step) {
        // Decided on a fresh word: a decision to leave the word alone is final, so it must not
        // be made on a stale one.
        let mut word = self.word();
        loop {
            let step = state::next(word, event(word), limits);
            let Some(new) = step.next else {
                return (word, step);
            };
            // AcqRel / Acquire: see the module's "Orderings".
            match self.exact.state.compare_exchange_weak(
                word.bits(),
                new.bits(),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => {
                    if let Some(cause) = step.cause {
                        self.hot.mirror.publish(new);
                        self.after_transition(word, new, cause, open_for);
                    }
                    return (new, step);
                }
                Err(fresh) => word = Word::from_bits(fresh),
            }
        }
    }

    /// Called once per transition, by the thread whose swap installed `to`. Deadlines are
    /// measured from the real clock, exactly: `opened at + duration`, in nanoseconds.
    ///
    /// `open_for`: a fleet trip's duration, capped at the longest opening the backoff allows.
    #[cold]
    pub(super) fn after_transition(
        &self,
        from: Word,
        to: Word,
        cause: Cause,
        open_for: Option<u64>,
    ) {
        let now = self.clock.real_ns();
        let rules = self.rules.load();
        let generation = to.generation();
        let deadline = match to.kind() {
            State::Open => match open_for {
                Some(ns) => now.saturating_add(ns.min(rules.backoff.nanos(state::MAX_ATTEMPT))),
                None => {
                    let seed = crate::rules::backoff::mix(generation ^ now.rotate_left(32));
                    now.saturating_add(rules.backoff.nanos_jittered(to.attempt(), seed))
                }
            },
            State::HalfOpen => rules
                .half_open_timeout_ns
                .map_or(deadline::NONE, |t| now.saturating_add(t)),
            _ => deadline::NONE,
        };
        self.exact.deadline.publish(generation, deadline);
        self.hot
            .compact_deadline
            .follow(|| self.exact.deadline.word());
        // Unless a later transition has already published itself (it resets the word too).
        if self.mirror().generation() == generation {
            self.hot.throttle.reset(generation);
        }
        match to.kind() {
            // Relaxed: statistics (module docs).
            State::Open => {
                self.bookkeeping
                    .times_opened
                    .fetch_add(1, Ordering::Relaxed);
            }
            State::Closed | State::Disabled => {
                // Relaxed: which window metrics() shows while not Closed; display only.
                self.bookkeeping
                    .window_generation
                    .store(generation, Ordering::Relaxed);
                if to.kind() == State::Closed {
                    self.baselines.restart(
                        generation,
                        |i| self.stripes.run_view(i, generation),
                        |i| self.stripes.baseline(i),
                        || (self.clock.real_ns(), self.stamp()),
                        || self.stripes.reach(),
                    );
                }
            }
            _ => {}
        }
        let transition = Transition {
            from: from.kind(),
            to: to.kind(),
            cause,
            generation,
        };
        for listener in self.bookkeeping.listeners.iter() {
            // A panicking listener is contained: the transition is already installed and
            // published, and nothing here holds a lock.
            let _ = catch_unwind(AssertUnwindSafe(|| listener(&transition)));
        }
    }
}
