//! The hot paths allocate nothing once the breaker is built: proven with a counting global
//! allocator that counts the calling thread's allocations.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

use hotbreaker::{Breaker, Builder, Outcome, State};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; the counter is a const-init
// thread-local `Cell`, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|a| a.set(a.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|a| a.set(a.get() + 1));
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

fn build(builder: Builder) -> (Breaker, Arc<quanta::Mock>) {
    let (clock, mock) = quanta::Clock::mock();
    let b = builder
        .clock(clock)
        .on_transition(|t| {
            std::hint::black_box(t);
        })
        .build()
        .unwrap();
    (b, mock)
}

/// Drives every hot path: Closed outcomes of each kind, `call`, slow calls, the Open rejection,
/// half-open admission, probes recorded and dropped, owned permits, bucket rotation, metrics.
fn exercise(b: &Arc<Breaker>, mock: &quanta::Mock) {
    for i in 0..1_000u32 {
        let p = b.try_acquire().unwrap();
        match i % 3 {
            0 => p.success(),
            1 => p.ignore(),
            _ => p.record(Outcome::Success),
        }
        let _ = b.call(|| Ok::<u32, ()>(i));
        mock.increment(Duration::from_millis(7)); // rotates buckets
    }
    for _ in 0..3 {
        let _ = b.call(|| Err::<(), u32>(1));
    }
    assert_eq!(b.state(), State::Open);
    for _ in 0..100 {
        assert!(b.try_acquire().is_err());
    }
    mock.increment(Duration::from_secs(1));
    let probe = b.try_acquire().unwrap();
    assert_eq!(probe.state(), State::HalfOpen);
    drop(probe);
    let owned = b.try_acquire_owned().unwrap();
    owned.success();
    b.try_acquire().unwrap().success();
    assert_eq!(b.state(), State::Closed);
    std::hint::black_box(b.metrics());
}

#[test]
fn time_window_hot_paths_allocate_nothing() {
    let (b, mock) = build(
        Breaker::builder()
            .consecutive_failures(3)
            .open_timeout(Duration::from_secs(1))
            .half_open_permits(2)
            .half_open_successes(2)
            .slow_calls(Duration::from_millis(5), 0.9),
    );
    let b = Arc::new(b);
    exercise(&b, &mock); // warm up: the thread's stripe index, lazily set statics
    assert_eq!(allocations_during(|| exercise(&b, &mock)), 0);
}

#[test]
fn count_window_hot_paths_allocate_nothing() {
    let (b, mock) = build(
        Breaker::builder()
            .count_window(50)
            .consecutive_failures(3)
            .open_timeout(Duration::from_secs(1))
            .half_open_permits(2)
            .half_open_successes(2),
    );
    let b = Arc::new(b);
    exercise(&b, &mock);
    assert_eq!(allocations_during(|| exercise(&b, &mock)), 0);
}

#[test]
fn the_counter_sees_allocations() {
    // The harness itself: a Vec allocation must be counted, or the tests above prove nothing.
    assert!(allocations_during(|| drop(std::hint::black_box(vec![1u8; 64]))) >= 1);
}
