//! What a breaker reports: its state, metrics, health view and the fleet's observations.

use super::*;

impl Breaker {
    /// The current state. Open stays Open until a call arrives at or after the deadline.
    pub fn state(&self) -> State {
        // The mirror, like `try_acquire`: a caller that sees a state is admitted by that state.
        self.mirror().kind()
    }

    /// A snapshot of the state, the window and the lifetime totals. Reads only the breaker's
    /// counters (and writes three high-water marks of its own): never blocks or slows a caller.
    ///
    /// Totals never go backwards from one snapshot to the next, and are exact once recording
    /// threads are quiescent; while they record, a snapshot may lag by the outcomes in flight.
    pub fn metrics(&self) -> Metrics {
        let now = self.clock.real_ns();
        let (word, window_generation) = self.observed_word();
        let monotonic = |i: usize, total: Total| self.monotonic_total(i, total);
        Metrics {
            state: word.kind(),
            generation: word.generation(),
            window: self.window_report(window_generation, now),
            successes: monotonic(0, Total::Successes),
            failures: monotonic(1, Total::Failures),
            ignored: self.stripes.total(Total::Ignored),
            slow: monotonic(2, Total::Slow),
            rejected: self.stripes.total(Total::Rejected),
            throttled: self.stripes.total(Total::Throttled),
            // Relaxed: a statistic.
            times_opened: self.bookkeeping.times_opened.load(Ordering::Relaxed),
            retry_after: (word.kind() == State::Open)
                .then(|| Duration::from_nanos(self.open_remaining(word, now))),
            typical_latency: self.typical_latency(),
        }
    }

    /// What the fleet link reads of this breaker at each flush: the state, the generation and
    /// the lifetime totals of [`metrics`](Breaker::metrics), without the window and the
    /// latency estimate (a fraction of the memory `metrics` reads, for links that go over
    /// every breaker of a large registry).
    #[cfg(feature = "redis")]
    pub(crate) fn fleet_totals(&self) -> crate::fleet::Observed {
        let (word, _) = self.observed_word();
        let monotonic = |i: usize, total: Total| self.monotonic_total(i, total);
        let (successes, failures) = (
            monotonic(0, Total::Successes),
            monotonic(1, Total::Failures),
        );
        crate::fleet::Observed {
            totals: crate::fleet::Counts {
                calls: successes.saturating_add(failures),
                failures,
                slow: monotonic(2, Total::Slow),
            },
            state: word.kind(),
            generation: word.generation(),
        }
    }

    /// Lifetime total `total`, never below what a snapshot reported before (`i` is its
    /// high-water mark: 0 successes, 1 failures, 2 slow calls).
    pub(super) fn monotonic_total(&self, i: usize, total: Total) -> u64 {
        let now = self.stripes.total(total);
        // Relaxed: a statistic; fetch_max keeps it monotonic on its own. Written only when
        // the total grew, so that reading an idle breaker dirties none of its lines.
        let reported = self.bookkeeping.reported[i].load(Ordering::Relaxed);
        if now <= reported {
            return reported;
        }
        now.max(self.bookkeeping.reported[i].fetch_max(now, Ordering::Relaxed))
    }

    /// The state word a snapshot reports, and the generation whose window it reports.
    pub(super) fn observed_word(&self) -> (Word, u64) {
        let mirror = self.mirror();
        let word = self.word();
        let word = if word.generation() == mirror.generation() {
            word
        } else {
            // The transition's winner has not published it yet: report the state `try_acquire`
            // still acts on, and nothing of the new generation.
            Word::pack(mirror.kind(), 0, 0, 0, mirror.generation())
        };
        let window_generation = match word.kind() {
            State::Closed | State::Disabled => word.generation(),
            // Relaxed: a statistic.
            _ => self.bookkeeping.window_generation.load(Ordering::Relaxed),
        };
        (word, window_generation)
    }

    /// What a health report shows of this breaker: the part of [`metrics`](Breaker::metrics)
    /// without the lifetime totals and the latency estimate (a third of the memory it reads).
    /// Whether a call now would be rejected by the state alone: Isolated, or Open before its
    /// deadline. An Open breaker past its deadline is not: the next call half-opens it.
    pub(crate) fn rejecting(&self) -> bool {
        let word = self.word();
        match word.kind() {
            State::Isolated => true,
            State::Open => self.open_remaining(word, self.clock.real_ns()) > 0,
            _ => false,
        }
    }

    pub(crate) fn health_view(&self) -> HealthView {
        let now = self.clock.real_ns();
        let (word, window_generation) = self.observed_word();
        HealthView {
            state: word.kind(),
            window: self.window_report(window_generation, now),
            // Relaxed: a statistic.
            times_opened: self.bookkeeping.times_opened.load(Ordering::Relaxed),
            retry_after_ns: (word.kind() == State::Open).then(|| self.open_remaining(word, now)),
        }
    }

    /// The window as a report shows it: as [`window_stats`](Breaker::window_stats), reading
    /// less of the stripes whose owners are idle.
    pub(super) fn window_report(&self, generation: u64, now: u64) -> WindowStats {
        self.window.report(&self.stripes, generation, now)
    }
}
