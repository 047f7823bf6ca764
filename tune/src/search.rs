//! The search: a coarse grid, then local refinement (coordinate steps) from the best points,
//! scored by one stated preference.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::calls::Calls;
use crate::candidate::Candidate;
use crate::incidents::Incident;
use crate::replay::{Score, replay};

/// What "best" means: each backend call saved during an incident counts 1, each good call
/// turned away outside incidents counts `-wrong_cost`.
#[derive(Clone, Copy, Debug)]
pub struct Preference {
    pub wrong_cost: f64,
}

impl Default for Preference {
    fn default() -> Self {
        Preference { wrong_cost: 10.0 }
    }
}

impl Preference {
    pub fn value(&self, s: &Score) -> f64 {
        s.saved as f64 - self.wrong_cost * s.wrongly_rejected as f64
    }

    /// Whether `a` is better than `b` on the scores alone: a higher value, then fewer
    /// openings, then fewer transitions, then faster detection.
    pub fn better(&self, a: &Score, b: &Score) -> bool {
        self.compare(a, b) == std::cmp::Ordering::Less
    }

    /// `Less` when `a` is better (see [`better`](Preference::better)).
    pub fn compare(&self, a: &Score, b: &Score) -> std::cmp::Ordering {
        let (va, vb) = (self.value(a), self.value(b));
        vb.total_cmp(&va)
            .then((a.opens, a.transitions).cmp(&(b.opens, b.transitions)))
            .then(detect_total(a).cmp(&detect_total(b)))
    }
}

/// The detection times summed, an incident never detected counting an hour.
fn detect_total(s: &Score) -> Duration {
    s.detect
        .iter()
        .map(|d| d.unwrap_or(Duration::from_secs(3_600)))
        .sum()
}

/// A candidate and what it did.
#[derive(Clone, Debug)]
pub struct Evaluated {
    pub candidate: Candidate,
    pub score: Score,
}

/// Everything a search tried, and the best by the preference.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub evaluated: Vec<Evaluated>,
    pub best: Evaluated,
}

/// How a search reports progress: `more(n)` when `n` candidates are queued, `done()` after each.
pub trait Progress: Sync {
    fn more(&self, n: u64);
    fn done(&self);
}

impl Progress for () {
    fn more(&self, _: u64) {}
    fn done(&self) {}
}

/// Scores candidates on `threads` threads.
pub struct Evaluator<'a> {
    pub calls: &'a Calls,
    pub incidents: &'a [Incident],
    pub seed: u64,
    pub threads: usize,
    pub progress: &'a dyn Progress,
    /// The failure rate of the answered calls outside incidents, for breaking ties (see
    /// [`Candidate::false_trip_odds`]).
    pub background: f64,
}

impl std::fmt::Debug for Evaluator<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Evaluator")
            .field("calls", &self.calls.calls.len())
            .field("incidents", &self.incidents)
            .field("seed", &self.seed)
            .field("threads", &self.threads)
            .finish_non_exhaustive()
    }
}

impl Evaluator<'_> {
    /// Each candidate's score, in order; `None` for one the breaker refuses (a slow-call
    /// threshold past its limits, say).
    pub fn evaluate(&self, candidates: &[Candidate]) -> Vec<Option<Score>> {
        self.progress.more(candidates.len() as u64);
        let next = AtomicUsize::new(0);
        let results = Mutex::new(vec![None; candidates.len()]);
        std::thread::scope(|s| {
            for _ in 0..self.threads.max(1).min(candidates.len().max(1)) {
                s.spawn(|| {
                    loop {
                        // Relaxed: only hands out indices.
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(c) = candidates.get(i) else { break };
                        let score =
                            replay(self.calls, self.incidents, &c.config(), self.seed, None).ok();
                        // A lock per candidate replayed, not per call.
                        results.lock().unwrap()[i] = score;
                        self.progress.done();
                    }
                });
            }
        });
        results.into_inner().unwrap()
    }
}

/// Searches from the coarse grid: keeps the `keep` best, tries every neighbour of each (one
/// step along one dimension), and repeats while a new point enters the `keep` best, for at
/// most `rounds` rounds.
pub fn search(
    ev: &Evaluator<'_>,
    pref: &Preference,
    slows: &[Duration],
    keep: usize,
    rounds: usize,
) -> Outcome {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut evaluated: Vec<Evaluated> = Vec::new();
    let mut add = |cands: Vec<Candidate>, evaluated: &mut Vec<Evaluated>| {
        let fresh: Vec<Candidate> = cands
            .into_iter()
            .map(Candidate::normalized)
            .filter(|c| c.is_valid() && !seen.contains_key(&c.key()))
            .collect();
        let mut unique: Vec<Candidate> = Vec::new();
        for c in fresh {
            if !unique.contains(&c) {
                unique.push(c);
            }
        }
        for (c, score) in unique.iter().zip(ev.evaluate(&unique)) {
            seen.insert(c.key(), evaluated.len());
            let Some(score) = score else { continue };
            evaluated.push(Evaluated {
                candidate: *c,
                score,
            });
        }
        !unique.is_empty()
    };
    add(Candidate::grid(), &mut evaluated);
    let mut top = best(&evaluated, pref, ev.background, keep);
    for _ in 0..rounds {
        let neighbours: Vec<Candidate> = top
            .iter()
            .flat_map(|&i| evaluated[i].candidate.neighbours(slows))
            .collect();
        if !add(neighbours, &mut evaluated) {
            break;
        }
        let next = best(&evaluated, pref, ev.background, keep);
        if next == top {
            break;
        }
        top = next;
    }
    let winner = evaluated[top[0]].clone();
    Outcome {
        evaluated,
        best: winner,
    }
}

/// Indices of the `keep` best, best first. Points the scores cannot tell apart are ordered by
/// how likely their rule is to trip on healthy traffic failing at `background` (least
/// first): the training part could not show the difference, so the one with more margin is
/// the safer bet on traffic it did not see.
fn best(evaluated: &[Evaluated], pref: &Preference, background: f64, keep: usize) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..evaluated.len()).collect();
    // A trace with no failure outside incidents still ranks rules by their margin: as if
    // one call in a thousand failed.
    let p = background.max(0.001);
    let odds: Vec<f64> = evaluated
        .iter()
        .map(|e| e.candidate.false_trip_odds(p))
        .collect();
    idx.sort_by(|&a, &b| {
        pref.compare(&evaluated[a].score, &evaluated[b].score)
            .then(odds[a].total_cmp(&odds[b]))
            .then(a.cmp(&b))
    });
    idx.truncate(keep.max(1));
    idx
}

/// The Pareto frontier of saved calls (more is better) against good calls turned away (fewer
/// is better): indices of the points no other point beats on both, sorted by good calls
/// turned away.
pub fn frontier(evaluated: &[Evaluated]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..evaluated.len()).collect();
    idx.sort_by(|&a, &b| {
        let (sa, sb) = (&evaluated[a].score, &evaluated[b].score);
        sa.wrongly_rejected
            .cmp(&sb.wrongly_rejected)
            .then(sb.saved.cmp(&sa.saved))
            .then(a.cmp(&b))
    });
    let mut out = Vec::new();
    let mut most_saved: Option<u64> = None;
    for i in idx {
        let saved = evaluated[i].score.saved;
        if most_saved.is_none_or(|m| saved > m) {
            out.push(i);
            most_saved = Some(saved);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn point(saved: u64, wrong: u64) -> Evaluated {
        Evaluated {
            candidate: Candidate::START,
            score: Score {
                saved,
                wrongly_rejected: wrong,
                ..Score::default()
            },
        }
    }

    #[test]
    fn the_frontier_keeps_exactly_the_undominated_points() {
        let pts = vec![
            point(10, 0),
            point(50, 5),
            point(40, 5),
            point(50, 9),
            point(90, 20),
            point(5, 0),
        ];
        assert_eq!(frontier(&pts), vec![0, 1, 4]);
    }

    #[test]
    fn the_preference_trades_saved_calls_for_wrong_rejections() {
        let p = Preference { wrong_cost: 10.0 };
        assert!(p.better(&point(100, 1).score, &point(150, 7).score));
        assert!(p.better(&point(150, 5).score, &point(100, 1).score));
        assert!(p.better(&point(150, 1).score, &point(100, 1).score));
    }
}
