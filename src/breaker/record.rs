//! Recording an outcome: the Success fast path, Closed Failures and their trip checks, probes.

use super::*;

impl Breaker {
    // ---- recording -------------------------------------------------------------------------

    /// Records an outcome. The common case, an untimed Success of a Closed or Disabled permit
    /// with a time window, is inlined. On the caller's owned stripe it is a recent-time read,
    /// two compares, a look at the thread's own failure run and a plain increment (see
    /// `window/owned/head.rs`); on a shared stripe, a load of the mirror, a guarded recent-time read and one
    /// CAS. Nothing shared is written on an owned stripe, except by a thread's first call on the
    /// breaker, which takes its stripe's lines from the process-wide reserve
    /// (`stripe_reserve.rs`) and, if it is the breaker's first caller to take any, sets the home
    /// cell beside the hot words (`window/owned.rs`): once in the breaker's life.
    #[inline(always)]
    pub(crate) fn record_ticket(&self, ticket: Ticket, outcome: Outcome) {
        // An untimed permit (`issued_ns == 0`) is never slow, whatever the rules say now.
        // A late permit (the mirror has moved on) goes the slow way: its outcome counts in no
        // window.
        if outcome == Outcome::Success
            && ticket.issued_ns == 0
            && ticket.passed_freely()
            && ticket.issued_by(self.mirror())
        {
            let generation = ticket.generation();
            let owned = self.stripes.owned();
            // The owned stripes' handle says whether there is a time window and whether the
            // clock is real, so that the common case reads no other line of the breaker.
            let counted = match owned.fast_head(thread_slot::current()) {
                Some((head, time)) => {
                    // The tick count after the call into quanta: nothing kept across it.
                    let recent = time.recent_at();
                    let stamp = crate::clock::ticks();
                    head.try_success(generation, recent, stamp, || self.clock.real_at())
                }
                None => self.try_success_elsewhere(generation),
            };
            if counted {
                return;
            }
        }
        self.record_off_fast_path(ticket, outcome);
    }

    /// A Success of a Closed `generation` that [`fast_head`](crate::window::owned::Owned::fast_head)
    /// did not place: on the thread's owned stripe by the clock's own recent time (a mock or a
    /// test's clock), on a shared stripe if the thread has no owned one, else left to the slow
    /// way (false): a count window, or a stripe just claimed.
    #[inline(never)]
    pub(super) fn try_success_elsewhere(&self, generation: u64) -> bool {
        let Some(w) = self.window.time() else {
            return false;
        };
        if let Some(head) = self.stripes.owned().head(thread_slot::current()) {
            let (recent, real) = (self.clock.recent_at(), || self.clock.real_at());
            return if self.clock.recent_is_exact() {
                head.try_success_exact(generation, recent, real)
            } else {
                head.try_success(generation, recent, self.stamp(), real)
            };
        }
        match self.stripes.caller_stripe() {
            CallerStripe::Shared(s) => {
                w.try_add_success(&self.stripes, s, generation, self.clock.now_ns())
            }
            // Just claimed: the slow way this once.
            CallerStripe::Owned(_) => false,
        }
    }

    #[inline(never)]
    pub(super) fn record_off_fast_path(&self, ticket: Ticket, outcome: Outcome) {
        if ticket.state() == State::HalfOpen {
            self.record_probe(ticket, outcome);
        } else {
            self.record_closed(ticket, outcome);
        }
    }

    #[inline]
    pub(crate) fn release_ticket(&self, ticket: Ticket) {
        match ticket.state() {
            State::HalfOpen => self.release_slot(ticket.generation()),
            State::Closed => self.answered(ticket.generation()),
            _ => {}
        }
    }

    #[inline(never)]
    pub(super) fn release_slot(&self, generation: u64) {
        let limits = self.rules.load().limits;
        self.swap_state(limits, |_| Event::Release { generation });
    }

    /// A permit issued while Closed or Disabled.
    pub(super) fn record_closed(&self, ticket: Ticket, outcome: Outcome) {
        let failure = match outcome {
            Outcome::Success => false,
            Outcome::Failure => true,
            Outcome::Ignored => {
                self.stripes
                    .add_one(self.stripes.caller_stripe(), Total::Ignored);
                if ticket.state() == State::Closed {
                    self.answered(ticket.generation());
                }
                return;
            }
        };
        // Slow calls are timed on the clock that timed their start; where the outcome lands and
        // what the trip rules see are decided on the real clock (see `clock/`).
        let rules = self.rules.load();
        let ended = self.clock.now_ns();
        let sample = Sample {
            failure,
            slow: self.is_slow(&rules, ticket, ended),
        };
        if !failure {
            // After the verdict: a call is judged against what was learned before it.
            self.learn_latency(&rules, ticket, ended);
        }
        let now = self.clock.real_ns();
        let generation = ticket.generation();
        let writer = self.stripes.caller_stripe();
        // The 64-bit mirror, not the 128-bit state word: on x86-64 without AVX a 128-bit load is
        // a locked `cmpxchg16b`, a write to the line every call reads. The mirror may lag a
        // transition for a moment; a Failure that passes this check for a generation just ended
        // lands in that generation's bucket (no rule reads it) and its trip finds the word moved.
        if self.mirror().generation() != generation {
            // Late: lifetime totals only. A transition racing past this check can
            // still let the sample into a bucket of the old generation, which no trip rule reads.
            self.stripes.add_late(sample);
            return;
        }
        if !failure {
            // Its stamp for the consecutive-failure rule, before the window counts it.
            if let Some(head) = self.head(writer) {
                head.note_success(self.stamp());
            }
        }
        self.window
            .record(&self.stripes, writer, generation, now, sample, || {
                self.clock.recent_is_fresh(now)
            });
        if ticket.state() != State::Closed {
            return; // Disabled: counted, never trips.
        }
        if failure && self.consecutive_trip(&rules, writer, generation, now) {
            return;
        }
        if failure || sample.slow {
            self.evaluate(&rules, writer, generation, now, failure);
        }
        if !failure && ticket.issued_while_shedding() {
            self.shed_less(generation, now);
        }
    }

    /// What an outcome is stamped with for the consecutive-failure rule (see
    /// `window/owned/head.rs`, `last_success`). Not read under loom, where stripes keep no
    /// stamps (`STAMPS`).
    pub(super) fn stamp(&self) -> u64 {
        if crate::window::owned::STAMPS {
            self.clock.stamp()
        } else {
            0
        }
    }

    /// The owned stripe's line of `writer`, if it writes one.
    pub(super) fn head(&self, writer: CallerStripe) -> Option<&OwnedLine> {
        match writer {
            CallerStripe::Owned(i) => self.stripes.owned().head(i as u32),
            CallerStripe::Shared(_) => None,
        }
    }

    /// After a Closed Failure of `generation` counted on `writer`'s stripe: the
    /// consecutive-failure rule (see `consecutive.rs`). Returns whether it tripped (by this
    /// call's swap or, racing it, another's).
    pub(super) fn consecutive_trip(
        &self,
        rules: &LiveRules,
        writer: CallerStripe,
        generation: u64,
        now: u64,
    ) -> bool {
        let Some(k) = rules.consecutive_failures else {
            return false;
        };
        // `claimed`: the owner's stripe never counted a Success, so its run may have begun on a
        // shared stripe before the block was claimed (`window/owned.rs`): its
        // first Failure here checks too (see `docs/internals.md`, "Design notes", `consecutive.rs`, "When a check runs").
        let (local, claimed) = match writer {
            CallerStripe::Owned(i) => {
                self.stripes
                    .owned()
                    .head(i as u32)
                    .map_or((0, false), |head| {
                        let at = self.stamp();
                        (
                            head.lengthen_run(generation, now, at),
                            head.never_succeeded(),
                        )
                    })
            }
            CallerStripe::Shared(s) => (self.stripes.lengthen_shared_run(s, generation), false),
        };
        let run = if k == 1 {
            1
        } else if local >= 2 || (local == 1 && claimed) {
            self.baselines.check(
                generation,
                local,
                |i| self.stripes.run_view(i, generation),
                |i| self.stripes.baseline(i),
                || (self.clock.real_ns(), self.stamp()),
                || self.stripes.reach(),
            )
        } else {
            return false; // it starts a local run after a Success: nothing to check
        };
        if run < u64::from(k) {
            return false;
        }
        let cause = Cause::ConsecutiveFailures;
        self.swap_state(rules.limits, |_| Event::Trip { generation, cause });
        true
    }

    /// After a Closed Failure or slow call of `generation` counted on `writer`'s stripe: reads
    /// the window and applies the window rules and the throttle, when the evaluation budget
    /// says a rule could hold or the last evaluation is of another bucket interval (see
    /// `evaluation.rs`).
    pub(super) fn evaluate(
        &self,
        rules: &LiveRules,
        writer: CallerStripe,
        generation: u64,
        now: u64,
        failure: bool,
    ) {
        let predicate = self.bookkeeping.predicate.as_ref();
        if !policy::reads_window(rules, predicate) && rules.throttle.is_none() {
            return;
        }
        let tag = self.window.evaluation_tag(generation, now);
        let seen = self.bookkeeping.evaluation.load();
        let head = self.head(writer);
        let due =
            !seen.is_of(tag) || head.is_none_or(|head| head.spend_budget(seen.round, seen.quota));
        if due {
            self.evaluate_now(rules, head, (seen, tag), generation, now, failure);
        }
    }

    /// Reads the window of Closed `generation` once: trips if a window rule holds, else
    /// recomputes the throttle (after a Failure: a slow Success leaves it as it is) and
    /// publishes the next evaluation budget.
    #[cold]
    #[inline(never)]
    pub(super) fn evaluate_now(
        &self,
        rules: &LiveRules,
        head: Option<&OwnedLine>,
        (seen, tag): (Evaluation, u64),
        generation: u64,
        now: u64,
        failure: bool,
    ) {
        // The rules as of now, read after the published evaluation (see `evaluation.rs`,
        // "Orderings"): a quota is never computed under rules replaced before it.
        let fresh = self.rules.load();
        let rules = if fresh == *rules { rules } else { &fresh };
        let predicate = self.bookkeeping.predicate.as_ref();
        let word = self.word();
        if word.kind() != State::Closed || word.generation() != generation {
            return;
        }
        // Loaded before the window, as `rethrottle` does (see `throttle/`).
        let throttle_before = self.hot.throttle.load_for_update();
        let stats = self.window_stats(generation, now);
        if let Some(cause) = policy::window_cause(rules, predicate, &stats) {
            self.swap_state(rules.limits, |_| Event::Trip { generation, cause });
            return;
        }
        let mut events = policy::events_until_possible(rules, predicate, &stats, self.window.cap());
        if rules.throttle.is_some() || throttle_before.is_active() {
            let parts = if failure {
                self.publish_throttle(throttle_before, rules, generation, now, &stats)
            } else {
                throttle_before.parts()
            };
            // Recomputed on every Failure while it sheds; while it does not, only once enough
            // Failures could start it.
            let until = match rules.throttle {
                Some(t) if parts == 0 => t.failures_until_active(stats.requests(), stats.accepts()),
                _ => 1,
            };
            events = events.min(until);
        }
        // Shared among the owned stripes that have their block as of this read, which follows
        // the load of `seen`: a block taken later starts fresh (`evaluation.rs`, "Quotas").
        let quota = evaluation::quota(events, self.stripes.owned().taken() as u64);
        if let Some(round) = self.bookkeeping.evaluation.publish(seen, tag, quota) {
            if let Some(head) = head {
                head.reset_budget(round);
            }
        }
    }

    /// A permit issued while HalfOpen: a probe.
    pub(super) fn record_probe(&self, ticket: Ticket, outcome: Outcome) {
        let rules = self.rules.load();
        let now = self.clock.real_ns();
        let stripe = self.stripes.caller_stripe();
        let generation = ticket.generation();
        let event = match outcome {
            Outcome::Ignored => {
                self.stripes.add_one(stripe, Total::Ignored);
                Event::Release { generation }
            }
            Outcome::Success | Outcome::Failure => {
                let failure = outcome == Outcome::Failure;
                let slow = self.is_slow(&rules, ticket, self.clock.now_ns());
                // A probe belongs to a HalfOpen generation, never to a Closed failure run.
                self.stripes.add_late(Sample { failure, slow });
                if failure {
                    Event::ProbeFailure { generation }
                } else {
                    Event::ProbeSuccess {
                        generation,
                        expired: self.half_open_expired(&rules, generation, now),
                    }
                }
            }
        };
        self.swap_state(rules.limits, |_| event);
    }

    pub(super) fn window_stats(&self, generation: u64, now: u64) -> WindowStats {
        self.window.stats(&self.stripes, generation, now)
    }
}
