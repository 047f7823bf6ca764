//! The throttle's side of a call: turning calls away, counting them, recomputing the probability.

use super::*;

impl Breaker {
    /// Acquire while Closed or Disabled with a throttle probability published: draw, and turn
    /// the call away if the draw says so. A probability computed for another generation (or a
    /// Disabled breaker) throttles nothing.
    #[cold]
    #[inline(never)]
    pub(super) fn acquire_throttled(
        &self,
        mirror: StateMirror,
        throttle: Published,
    ) -> Result<Ticket, Rejected> {
        if mirror.kind() == State::Closed && throttle.is_for(mirror.generation()) {
            let draw = match &self.draws {
                Some(source) => (**source)(),
                None => throttle::draw(),
            };
            if throttle::rejects(draw, throttle.parts()) {
                self.throttled(mirror.generation());
                return Err(Rejected::THROTTLED);
            }
            // Admitted while it sheds: its Success recomputes the probability (`shed_less`).
            return Ok(Ticket::from_mirror(mirror, self.issue_time()).while_shedding());
        }
        Ok(Ticket::from_mirror(mirror, self.issue_time()))
    }

    /// After a Closed outcome of `generation` that the dependency did not refuse (the Success of
    /// a call admitted while it shed, an Ignored outcome, a dropped permit) was counted at `now`:
    /// while the throttle sheds, its probability is computed again, so that it comes down as
    /// soon as the window does (with few requests, one outcome moves it a lot). Sums the window:
    /// every such outcome while it sheds, none while it does not. A Success of a call admitted
    /// before it began to shed takes the fast path and leaves it to the next one.
    #[cold]
    #[inline(never)]
    pub(super) fn shed_less(&self, generation: u64, now: u64) {
        let published = self.hot.throttle.load();
        if published.is_active() && published.is_for(generation) {
            self.rethrottle(generation, now);
        }
    }

    /// A Closed call of `generation` ended Ignored, or its permit was dropped: with a throttle,
    /// one of the window's accepts (see `throttle/`).
    #[cold]
    #[inline(never)]
    pub(super) fn answered(&self, generation: u64) {
        let Some(w) = self.window.time() else {
            return; // The throttle runs on a time window only.
        };
        if self.rules.load().throttle.is_none() || self.mirror().generation() != generation {
            return;
        }
        let now = self.clock.real_ns();
        w.add_answered(&self.stripes, generation, now);
        self.shed_less(generation, now);
    }

    /// Counts a throttled call of `generation` (lifetime total and the window's requests), and
    /// computes the probability again if this is the first throttled call of a new interval.
    pub(super) fn throttled(&self, generation: u64) {
        let Some(w) = self.window.time() else {
            return; // The throttle runs on a time window only.
        };
        let now = self.clock.real_ns();
        w.add_throttled(&self.stripes, generation, now);
        // Relaxed: a hint (module docs).
        if w.interval(now) != self.bookkeeping.throttle_interval.load(Ordering::Relaxed) {
            self.rethrottle(generation, now);
        }
    }

    /// Computes the throttle's probability for Closed `generation` from the window at `now` and
    /// publishes it (see `throttle/`). Does nothing without a throttle (beyond clearing a
    /// probability a reconfiguration left behind) or once `generation` has ended.
    #[cold]
    #[inline(never)]
    pub(super) fn rethrottle(&self, generation: u64, now: u64) {
        let before = self.hot.throttle.load_for_update();
        // The rules as of that load: a `clear` it saw was stored after the rules that switched
        // the throttle off (see `throttle/`).
        let rules = &self.rules.load();
        if rules.throttle.is_none() && !before.is_active() {
            return;
        }
        let word = self.word();
        if word.kind() != State::Closed || word.generation() != generation {
            return;
        }
        let stats = self.window_stats(generation, now);
        self.publish_throttle(before, rules, generation, now, &stats);
    }

    /// Publishes the throttle's probability for Closed `generation`, computed from `stats`: the
    /// window read at `now`, after `before` was loaded. Returns it.
    pub(super) fn publish_throttle(
        &self,
        before: Published,
        rules: &LiveRules,
        generation: u64,
        now: u64,
        stats: &WindowStats,
    ) -> u32 {
        let Some(w) = self.window.time() else {
            return 0; // The throttle runs on a time window only.
        };
        let parts = match rules.throttle {
            Some(t) => t.parts(stats.requests(), stats.accepts(), rules.minimum_calls),
            None => 0,
        };
        // Relaxed: a hint (module docs).
        self.bookkeeping
            .throttle_interval
            .store(w.interval(now), Ordering::Relaxed);
        if self
            .hot
            .throttle
            .replace(before, Published::new(generation, parts))
            && parts != 0
            && self.rules.load().throttle.is_none()
        {
            // Switched off while this was computed: its `clear` may have been overwritten.
            self.hot.throttle.clear(generation);
        }
        parts
    }
}
