//! The upkeep thread: one per process, stopped by its handle's drop. Its own binary, so that no
//! other test's upkeep runs beside it.

use std::time::Duration;

use hotbreaker::{UpkeepError, start_upkeep};

#[test]
fn a_second_upkeep_is_refused_until_the_first_stops() {
    // A long interval: the drop wakes the thread, it does not wait out the interval.
    let first = start_upkeep(Duration::from_secs(3600)).unwrap();
    let second = start_upkeep(Duration::from_millis(1));
    assert!(matches!(second, Err(UpkeepError::Running)), "{second:?}");
    assert_eq!(
        second.unwrap_err().to_string(),
        "the upkeep thread already runs in this process"
    );
    drop(first);
    let again = start_upkeep(Duration::from_millis(1)).unwrap();
    drop(again);
}
