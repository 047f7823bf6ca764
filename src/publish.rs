//! Publishing a generation's word, unless a later generation already has.
//!
//! The fast paths' words that follow the state word (the mirror, the throttle's published
//! probability) are each published by a transition's winner after its swap. Winners of
//! successive transitions may publish out of order; the word must never move back.

use crate::sync::{AtomicU64, Ordering};

/// Stores `new` into `cell` while `older(current)` says the word there belongs to an earlier
/// generation than `new`'s; returns once stored, or once the word is `new`'s generation or later.
///
/// # Orderings
/// The first load is `Relaxed`: it only decides whether to try, and the compare-and-swap
/// re-checks. The swap is `Release` (a reader that acquires the word sees what the publisher did
/// before it: the swap of the state word that made the generation); `Relaxed` on failure, as the
/// loop decides again on the fresh word.
pub(crate) fn unless_newer(cell: &AtomicU64, new: u64, older: impl Fn(u64) -> bool) {
    let mut current = cell.load(Ordering::Relaxed);
    while older(current) {
        match cell.compare_exchange_weak(current, new, Ordering::Release, Ordering::Relaxed) {
            Ok(_) => return,
            Err(fresh) => current = fresh,
        }
    }
}

#[cfg(all(test, not(hotbreaker_loom)))]
mod tests {
    use super::*;

    #[test]
    fn stores_over_older_words_only() {
        let cell = AtomicU64::new(5);
        unless_newer(&cell, 7, |c| c < 7);
        assert_eq!(cell.load(Ordering::Relaxed), 7);
        unless_newer(&cell, 6, |c| c < 6);
        assert_eq!(
            cell.load(Ordering::Relaxed),
            7,
            "a late publisher moved it back"
        );
        unless_newer(&cell, 7, |c| c < 7);
        assert_eq!(cell.load(Ordering::Relaxed), 7);
    }
}
