//! The count window: the last `size` outcomes.

use crossbeam_utils::CachePadded;

use super::counters::Sample;
use super::stats::WindowStats;
use crate::fastdiv::FastDiv;
use crate::sync::{AtomicU64, AtomicU128, Ordering};

/// A window of the last `size` outcomes.
///
/// A shared cursor hands each outcome a position; the outcome is stored, tagged with its
/// permit's generation, in slot `position % size`. Reading sums the slots tagged with the
/// current generation, so closing the breaker again empties the window without touching it.
/// Costlier than the time window: a shared compare-and-swap per outcome, and reading is O(size).
///
/// The cursor (`u128`) holds the newest generation that took a position (bits 64..128) and the
/// next position (bits 0..64, 584 years at 10^9 outcomes per second). A permit of an older
/// generation than the cursor's gets no position, so a late outcome can never take a place among
/// the last `size` of a newer generation; one that takes its position first sits before them.
///
/// Slot layout (`u64`): bits 0..3 code (1 = call, 2 = failure, 4 = slow; 0 = empty), bits 3..64
/// the generation (61 bits: at 10^7 transitions per second, 7 300 years before it wraps). A slot
/// is written by a compare-and-swap that refuses to replace a newer generation's outcome, so a
/// late permit can never overwrite what the current generation stored.
#[derive(Debug)]
pub(crate) struct CountWindow {
    cursor: CachePadded<AtomicU128>,
    slots: Box<[AtomicU64]>,
    size: FastDiv,
}

const SLOT_GENERATION_SHIFT: u32 = 3;
const SLOT_GENERATION_MASK: u64 = u64::MAX >> SLOT_GENERATION_SHIFT;

fn slot_word(generation: u64, sample: Sample) -> u64 {
    let code = 1 | (u64::from(sample.failure) << 1) | (u64::from(sample.slow) << 2);
    ((generation & SLOT_GENERATION_MASK) << SLOT_GENERATION_SHIFT) | code
}

fn slot_generation(word: u64) -> u64 {
    word >> SLOT_GENERATION_SHIFT
}

impl CountWindow {
    pub(crate) fn new(size: u32) -> CountWindow {
        CountWindow {
            cursor: CachePadded::new(AtomicU128::new(0)),
            slots: (0..size).map(|_| AtomicU64::new(0)).collect(),
            size: FastDiv::new(u64::from(size)),
        }
    }

    #[cfg(any(test, feature = "test-util"))]
    pub(crate) fn heap_bytes(&self) -> usize {
        std::mem::size_of_val(&*self.slots)
    }

    /// How many outcomes it keeps.
    pub(super) fn size(&self) -> usize {
        self.slots.len()
    }

    /// Stores one outcome of `generation`. False if the slot it was given already holds a newer
    /// generation's outcome: the permit is late and the outcome belongs to the lifetime totals
    /// only.
    pub(crate) fn record(&self, generation: u64, sample: Sample) -> bool {
        // Relaxed: the cursor only hands out positions; the slot CAS carries the data.
        let mut cursor = self.cursor.load(Ordering::Relaxed);
        let position = loop {
            if (cursor >> 64) as u64 > generation {
                return false;
            }
            let position = cursor as u64;
            let next = (u128::from(generation) << 64) | u128::from(position.wrapping_add(1));
            // Relaxed both ways: a position orders nothing; the generation check is in the value
            // the CAS compares, not in any other memory.
            match self.cursor.compare_exchange_weak(
                cursor,
                next,
                Ordering::Relaxed,
                Ordering::Relaxed,
            ) {
                Ok(_) => break position,
                Err(fresh) => cursor = fresh,
            }
        };
        let (_, slot) = self.size.div_rem(position);
        let cell = &self.slots[slot as usize];
        let new = slot_word(generation, sample);
        let mine = generation & SLOT_GENERATION_MASK;
        // Relaxed: the CAS re-checks the value; a slot is self-contained (like a bucket word).
        let mut word = cell.load(Ordering::Relaxed);
        loop {
            if word != 0 && slot_generation(word) > mine {
                return false;
            }
            match cell.compare_exchange_weak(word, new, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(fresh) => word = fresh,
            }
        }
    }

    pub(crate) fn stats(&self, generation: u64) -> WindowStats {
        let tag = generation & SLOT_GENERATION_MASK;
        let mut stats = WindowStats::default();
        for slot in self.slots.iter() {
            // Relaxed: a statistic (`window/mod.rs`, "Orderings").
            let word = slot.load(Ordering::Relaxed);
            if word != 0 && slot_generation(word) == tag {
                stats.calls += 1;
                stats.failures += u64::from(word & 2 != 0);
                stats.slow += u64::from(word & 4 != 0);
            }
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Sample = Sample::SUCCESS;
    const F: Sample = Sample::FAILURE;

    #[test]
    fn count_window_keeps_the_last_n_of_the_generation() {
        let c = CountWindow::new(3);
        c.record(1, F);
        c.record(1, F);
        c.record(1, S);
        c.record(1, S);
        assert_eq!(
            c.stats(1),
            WindowStats {
                calls: 3,
                failures: 1,
                slow: 0,
                throttled: 0,
                answered: 0
            }
        );
        assert_eq!(c.stats(2).calls, 0);
        c.record(2, F);
        assert_eq!(
            c.stats(2),
            WindowStats {
                calls: 1,
                failures: 1,
                slow: 0,
                throttled: 0,
                answered: 0
            }
        );
        assert_eq!(c.stats(1).calls, 2);
    }

    #[test]
    fn a_late_count_window_store_never_replaces_a_newer_outcome() {
        let c = CountWindow::new(1);
        assert!(c.record(3, F));
        assert!(!c.record(2, S), "a late permit gets no position");
        // Had it taken a position before the newer generation's outcome, the slot CAS would
        // still refuse to replace that outcome.
        let slot = &c.slots[0];
        let newer = slot.load(Ordering::Relaxed);
        assert_eq!(slot_generation(newer), 3);
        assert_eq!(
            c.stats(3),
            WindowStats {
                calls: 1,
                failures: 1,
                slow: 0,
                throttled: 0,
                answered: 0
            }
        );
        // 2^24 generations later (the old tag width) nothing aliases.
        assert_eq!(c.stats(3 + (1 << 24)).calls, 0);
    }
}
