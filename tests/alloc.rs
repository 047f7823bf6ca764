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
fn relative_slow_calls_allocate_nothing() {
    let (b, mock) = build(
        Breaker::builder()
            .consecutive_failures(3)
            .open_timeout(Duration::from_secs(1))
            .half_open_permits(2)
            .half_open_successes(2)
            .slow_call_rule(hotbreaker::SlowCalls::relative(4.0, 0.9)),
    );
    let b = Arc::new(b);
    // Calls of 1 to 16 ms across bucket rolls: latency samples, slow and fast calls.
    let timed = |b: &Breaker| {
        for i in 0..200u64 {
            let p = b.try_acquire().unwrap();
            mock.increment(Duration::from_millis(1 << (i % 5)));
            p.success();
            mock.increment(Duration::from_millis(40));
        }
    };
    exercise(&b, &mock);
    timed(&b);
    assert_eq!(
        allocations_during(|| {
            exercise(&b, &mock);
            timed(&b);
        }),
        0
    );
    assert!(b.metrics().typical_latency.is_some());
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

/// No warm-up: the very first calls on a new thread, a Failure among them, allocate nothing (no
/// lazily registered thread-local, no per-thread node of a lock-free structure).
#[test]
fn the_first_calls_on_a_new_thread_allocate_nothing() {
    let (b, mock) = build(
        Breaker::builder()
            .consecutive_failures(3)
            .open_timeout(Duration::from_secs(1))
            .half_open_permits(2)
            .half_open_successes(2),
    );
    let b = Arc::new(b);
    let mock = Arc::new(mock);
    let first = std::thread::spawn({
        let b = Arc::clone(&b);
        move || {
            allocations_during(|| {
                b.try_acquire().unwrap().failure();
                exercise(&b, &mock);
            })
        }
    });
    assert_eq!(first.join().unwrap(), 0);
}

#[test]
fn the_counter_sees_allocations() {
    // The harness itself: a Vec allocation must be counted, or the tests above prove nothing.
    assert!(allocations_during(|| drop(std::hint::black_box(vec![1u8; 64]))) >= 1);
}

/// The futures and the tower middleware add no allocation of their own: calls through
/// `call_future`, `call_owned` and a `BreakerService` around an inner service that allocates
/// nothing, polled to completion (successes, failures, rejections, fallback answers, half-open probes,
/// cancelled calls).
#[cfg(feature = "tower")]
#[test]
fn futures_and_the_tower_path_allocate_nothing() {
    use std::future::{Future, ready};
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use hotbreaker::Error;
    use hotbreaker::service::BreakerLayer;
    use tower::{Layer, Service};

    fn finish<F: Future>(fut: F) -> Poll<F::Output> {
        pin!(fut).poll(&mut Context::from_waker(Waker::noop()))
    }

    let (b, mock) = build(
        Breaker::builder()
            .consecutive_failures(3)
            .open_timeout(Duration::from_secs(1))
            .half_open_permits(2)
            .half_open_successes(2),
    );
    let b = Arc::new(b);
    let inner = tower::service_fn(|n: u32| ready(if n % 10 < 4 { Err(n) } else { Ok(n) }));
    let mut plain = BreakerLayer::new(b.clone()).layer(inner);
    let mut with_fallback = BreakerLayer::new(b.clone())
        .fallback(|_, n: u32| ready(Ok::<_, Error<u32>>(n + 1)))
        .layer(inner);
    let mut drive = || {
        for n in 0..1_000u32 {
            assert!(finish(plain.call(n)).is_ready());
            assert!(finish(with_fallback.call(n)).is_ready());
            assert!(
                finish(b.call_future(ready(if n % 10 < 4 { Err(()) } else { Ok(n) }))).is_ready()
            );
            assert!(
                finish(b.call_owned(ready(if n % 10 < 4 { Err(()) } else { Ok(n) }))).is_ready()
            );
            let mut cancelled = pin!(b.call_future(std::future::pending::<Result<(), ()>>()));
            let _ = cancelled
                .as_mut()
                .poll(&mut Context::from_waker(Waker::noop()));
            if n % 100 == 3 {
                mock.increment(Duration::from_secs(2));
            }
        }
    };
    drive(); // warm up
    assert_eq!(allocations_during(drive), 0);
    let m = b.metrics();
    assert!(m.times_opened > 0, "the run went through Open and HalfOpen");
    assert!(m.rejected > 0 && m.successes > 0 && m.failures > 0);
}

/// A `'static` call with a deadline (`call_owned(..).timeout(..)`) allocates nothing of its own either:
/// the tokio timer entry lives inside the future. Each protected future waits once, so the
/// deadline is registered with the timer before the call completes.
#[cfg(feature = "tokio")]
#[test]
fn owned_calls_with_a_deadline_allocate_nothing() {
    let (b, mock) = build(
        Breaker::builder()
            .consecutive_failures(3)
            .open_timeout(Duration::from_secs(1))
            .half_open_permits(2)
            .half_open_successes(2),
    );
    let b = Arc::new(b);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    runtime.block_on(async {
        let drive = || async {
            for n in 0..1_000u32 {
                let call = b
                    .call_owned(async move {
                        tokio::task::yield_now().await;
                        if n % 10 < 4 { Err(()) } else { Ok(n) }
                    })
                    .timeout(Duration::from_secs(60));
                let _ = call.await;
                if n % 100 == 3 {
                    mock.increment(Duration::from_secs(2));
                }
            }
        };
        drive().await; // warm up
        let before = ALLOCATIONS.with(Cell::get);
        drive().await;
        assert_eq!(ALLOCATIONS.with(Cell::get) - before, 0);
    });
    let m = b.metrics();
    assert!(m.times_opened > 0 && m.rejected > 0 && m.successes > 0);
}
