//! The one file that names the atomics and the lock (tokio's `loom` shim, sharded-slab's
//! `sync.rs`).
//!
//! Under `RUSTFLAGS="--cfg hotbreaker_loom"`, every atomic and lock of the breaker is loom's, so the model checker sees every access. Otherwise 64- and 128-bit atomics come
//! from `portable-atomic` (native on every 64-bit target; 128-bit operations use `cmpxchg16b` on
//! x86-64 and the equivalent pairs elsewhere, emulated with a lock only where a target has none).
//!
//! Loom has no 128-bit atomic. Under loom (models only, off the hot path), [`AtomicU128`] is a
//! `u128` behind loom's lock: every operation is a lock, unlock pair, so loom explores every interleaving of 128-bit operations
//! with everything else, but each one behaves at least as strongly as `AcqRel` (stronger than the
//! `Relaxed` operations some call sites use; those sites argue their ordering in comments).
//!
//! The cfg is this crate's own, so a project that runs its own loom models under the common
//! `--cfg loom` gets the ordinary breaker, and nothing about it shows as a cargo feature.
//!
//! Outside this file, `registry/`, `clock/`, `stripe_reserve.rs` and `upkeep.rs` use
//! `std` atomics, locks and thread-locals for things loom need not see (a name table's
//! statistics, a per-thread cache of the last clock reading, the reserve of stripe blocks that
//! loom models never use, the upkeep thread); each says so where it does.

#[cfg(hotbreaker_loom)]
pub(crate) use loom::sync::Mutex; // off the hot path: the breaker's configuration lock
#[cfg(hotbreaker_loom)]
pub(crate) use loom::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering, fence};

#[cfg(not(any(hotbreaker_loom, hotbreaker_count_writes)))]
pub(crate) use portable_atomic::{AtomicU8, AtomicU32, AtomicU64, AtomicU128};
#[cfg(not(hotbreaker_loom))]
pub(crate) use portable_atomic::{Ordering, fence};
#[cfg(not(hotbreaker_loom))]
pub(crate) use std::sync::Mutex; // off the hot path: the breaker's configuration lock

/// A 128-bit atomic for loom models: a `u128` behind loom's mutex (see the module docs).
#[cfg(hotbreaker_loom)]
#[derive(Debug)]
pub(crate) struct AtomicU128(loom::sync::Mutex<u128>); // loom models only, off the hot path

#[cfg(hotbreaker_loom)]
impl AtomicU128 {
    pub(crate) fn new(v: u128) -> Self {
        AtomicU128(loom::sync::Mutex::new(v)) // loom models only, off the hot path
    }

    pub(crate) fn load(&self, _: Ordering) -> u128 {
        *self.0.lock().unwrap()
    }

    pub(crate) fn compare_exchange(
        &self,
        current: u128,
        new: u128,
        _: Ordering,
        _: Ordering,
    ) -> Result<u128, u128> {
        let mut v = self.0.lock().unwrap();
        if *v == current {
            *v = new;
            Ok(current)
        } else {
            Err(*v)
        }
    }

    pub(crate) fn compare_exchange_weak(
        &self,
        current: u128,
        new: u128,
        success: Ordering,
        failure: Ordering,
    ) -> Result<u128, u128> {
        self.compare_exchange(current, new, success, failure)
    }
}

// ---------------------------------------------------------------------------------------------
// `--cfg hotbreaker_count_writes`: the atomics, counted.
//
// test-only build: off every real path. Under this cfg (and not under loom, which wins when both
// are set) `AtomicU8`, `AtomicU32`, `AtomicU64` and `AtomicU128` are newtypes over portable-atomic's that report every
// access to `write_count`, which tells writes to cache lines only one thread writes from writes
// to lines several threads write (`tests/shared_writes.rs`, `benches/shared_writes.sh`).
// `Ordering` and `fence` stay portable-atomic's, so the orderings and the instructions the core
// runs are the same as in the normal build; only the bookkeeping is added.
//
// Not counted: the atomics outside this file. `registry/` (transition counts of a registry's
// breakers: transitions only), `thread_slot.rs` (the slot pool: a thread's first call and its
// exit), `throttle/draw.rs` (the generator seeds: a thread's first draw) and `clock/` (a thread's own
// memory of the recent time, and test clocks) use `std`'s, none of them on a steady call path.
// quanta's mock clock and its upkeep's global are quanta's own.
// ---------------------------------------------------------------------------------------------

#[cfg(all(hotbreaker_count_writes, not(hotbreaker_loom)))]
pub(crate) use write_count::{AtomicU8, AtomicU32, AtomicU64, AtomicU128};

/// Counts the core's atomic accesses per 128-byte line, for `tests/shared_writes.rs`. **For
/// tests only; not part of the supported API**: it exists only under
/// `RUSTFLAGS="--cfg hotbreaker_count_writes"`.
///
/// test-only build: off every real path. Recording locks a mutex and may allocate; nothing
/// here is meant to be fast, only exact.
///
/// What counts as a **write**: a store, every read-modify-write (`fetch_*`, `swap`), and every
/// compare-exchange, successful *or failed* (spurious failures of the weak one included). A
/// failed `lock cmpxchg` on x86 still takes the line exclusive, invalidating every other core's
/// copy, exactly like a successful one: for cache traffic it is a write. Loads are counted apart.
/// A 128-bit load is portable-atomic's: `vmovdqa` (a plain load) on x86-64 CPUs with AVX, but
/// `lock cmpxchg16b` (a write to the line) on those without; it is counted as a load either way.
///
/// A line's **writers** are the threads that wrote it while recording was on; a write is
/// **shared** when its line had two writers or more.
#[cfg(all(hotbreaker_count_writes, not(hotbreaker_loom)))]
#[allow(missing_docs, unreachable_pub)] // hidden, test-only surface (re-exported by lib.rs)
pub mod write_count {
    use std::cell::Cell;
    use std::collections::{BTreeMap, BTreeSet};
    use std::fmt;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering as StdOrdering};
    use std::sync::{Arc, Mutex, PoisonError}; // off the hot path: test-only build

    use portable_atomic::Ordering;

    /// The line size the counts are kept by: 128 bytes, the unit `CachePadded` pads to on
    /// x86-64 (two 64-byte lines that the adjacent-line prefetcher moves together).
    pub const LINE_BYTES: usize = 128;

    /// Whether accesses are being recorded: only between [`start`] and [`stop_and_report`].
    static RECORDING: AtomicBool = AtomicBool::new(false);
    /// Every thread's table (test-only build: a lock and allocations, off every real path).
    static TABLES: Mutex<Vec<Locked>> = Mutex::new(Vec::new()); // off the hot path: test-only
    static NEXT_THREAD: AtomicUsize = AtomicUsize::new(0);

    thread_local! {
        /// This thread's number, handed out on its first recorded access.
        static THREAD: Cell<usize> = const { Cell::new(usize::MAX) };
        /// This thread's counts per line. Its own mutex is taken by this thread on every
        /// access and by [`start`] and [`stop_and_report`] only, so recording threads do not
        /// wait for one another (and do not serialise the interleavings being measured).
        static TABLE: Locked = register(); // test-only build
    }

    #[derive(Debug, Default)]
    struct Table {
        thread: usize,
        lines: BTreeMap<usize, Counts>,
    }

    #[derive(Clone, Copy, Debug, Default)]
    struct Counts {
        writes: u64,
        failed_cas: u64,
        loads: u64,
        wide_loads: u64,
    }

    /// A thread's table behind its own lock.
    type Locked = Arc<Mutex<Table>>; // off the hot path: test-only build

    fn locked(table: Table) -> Locked {
        Arc::new(Mutex::new(table)) // off the hot path: test-only build
    }

    fn register() -> Locked {
        let thread = THREAD.with(|t| {
            if t.get() == usize::MAX {
                t.set(NEXT_THREAD.fetch_add(1, StdOrdering::Relaxed));
            }
            t.get()
        });
        let table = locked(Table {
            thread,
            lines: BTreeMap::new(),
        });
        TABLES
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::clone(&table));
        table
    }

    #[derive(Clone, Copy)]
    pub(crate) enum Access {
        /// A store, a read-modify-write or a successful compare-exchange.
        Write,
        /// A failed compare-exchange: a write to the line all the same (module docs).
        FailedCas,
        Load,
        /// A 128-bit load: a locked `cmpxchg16b` on x86-64 without AVX (module docs).
        WideLoad,
    }

    /// Records one access to the atomic at `addr`, when recording is on.
    #[inline]
    pub(crate) fn record(addr: usize, access: Access) {
        // Relaxed: start/stop are ordered with the measured threads by the test's own barriers.
        if !RECORDING.load(StdOrdering::Relaxed) {
            return;
        }
        // `try_with`: a thread-local destructor calling a breaker while this thread exits
        // records nothing rather than panicking.
        let _ = TABLE.try_with(|table| {
            let mut table = table.lock().unwrap_or_else(PoisonError::into_inner);
            let counts = table.lines.entry(addr / LINE_BYTES).or_default();
            match access {
                Access::Write => counts.writes += 1,
                Access::FailedCas => {
                    counts.writes += 1;
                    counts.failed_cas += 1;
                }
                Access::Load => counts.loads += 1,
                Access::WideLoad => {
                    counts.loads += 1;
                    counts.wide_loads += 1;
                }
            }
        });
    }

    /// Forgets everything recorded so far and starts recording.
    pub fn start() {
        let mut tables = TABLES.lock().unwrap_or_else(PoisonError::into_inner);
        // Tables of threads that have exited (only the list holds them) go.
        tables.retain(|t| Arc::strong_count(t) > 1);
        for t in tables.iter() {
            t.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .lines
                .clear();
        }
        RECORDING.store(true, StdOrdering::SeqCst);
    }

    /// Stops recording and sums up what every thread recorded since [`start`]. Call it once the
    /// measured threads are done (joined, or past a barrier), or their last accesses may be
    /// missing.
    pub fn stop_and_report() -> Report {
        RECORDING.store(false, StdOrdering::SeqCst);
        let tables = TABLES.lock().unwrap_or_else(PoisonError::into_inner);
        let mut lines = BTreeMap::<usize, (BTreeSet<usize>, Counts)>::new();
        for t in tables.iter() {
            let t = t.lock().unwrap_or_else(PoisonError::into_inner);
            for (&line, c) in &t.lines {
                let (writers, sum) = lines.entry(line).or_default();
                if c.writes > 0 {
                    writers.insert(t.thread);
                }
                sum.writes += c.writes;
                sum.failed_cas += c.failed_cas;
                sum.loads += c.loads;
                sum.wide_loads += c.wide_loads;
            }
        }
        let mut report = Report::default();
        for (line, (writers, c)) in lines {
            let shared = writers.len() > 1;
            report.writes += c.writes;
            report.failed_cas += c.failed_cas;
            report.loads += c.loads;
            report.wide_loads += c.wide_loads;
            if shared {
                report.shared_writes += c.writes;
                report.shared_failed_cas += c.failed_cas;
                report.shared_loads += c.loads;
                report.shared_wide_loads += c.wide_loads;
            }
            report.lines.push(LineReport {
                line,
                writers: writers.len(),
                writes: c.writes,
                failed_cas: c.failed_cas,
                loads: c.loads,
            });
        }
        report
    }

    /// What [`stop_and_report`] found.
    #[derive(Clone, Debug, Default)]
    pub struct Report {
        /// Every write (failed compare-exchanges included).
        pub writes: u64,
        /// Writes to lines two or more threads wrote.
        pub shared_writes: u64,
        /// Failed compare-exchanges, already counted in `writes`.
        pub failed_cas: u64,
        /// Failed compare-exchanges on lines two or more threads wrote.
        pub shared_failed_cas: u64,
        pub loads: u64,
        /// Loads of lines two or more threads wrote.
        pub shared_loads: u64,
        /// 128-bit loads, already counted in `loads`: writes to the line where they are a locked
        /// `cmpxchg16b`.
        pub wide_loads: u64,
        /// 128-bit loads of lines two or more threads wrote.
        pub shared_wide_loads: u64,
        /// Every line accessed, in address order.
        pub lines: Vec<LineReport>,
    }

    impl Report {
        /// The lines two or more threads wrote.
        pub fn shared_lines(&self) -> impl Iterator<Item = &LineReport> {
            self.lines.iter().filter(|l| l.writers > 1)
        }
    }

    /// One 128-byte line's counts.
    #[derive(Clone, Copy, Debug)]
    pub struct LineReport {
        /// The line's address divided by [`LINE_BYTES`].
        pub line: usize,
        /// How many threads wrote it.
        pub writers: usize,
        pub writes: u64,
        pub failed_cas: u64,
        pub loads: u64,
    }

    impl fmt::Display for LineReport {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(
                f,
                "line {:#x}: {} writer(s), {} writes ({} failed CAS), {} loads",
                self.line * LINE_BYTES,
                self.writers,
                self.writes,
                self.failed_cas,
                self.loads
            )
        }
    }

    /// A portable-atomic integer that reports its accesses. The method set is the one the core
    /// may call; some are unused in a given version of it.
    macro_rules! counted {
        ($name:ident, $int:ty, $load:expr) => {
            #[derive(Default)]
            pub struct $name(portable_atomic::$name);

            impl fmt::Debug for $name {
                fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                    fmt::Debug::fmt(&self.0, f)
                }
            }

            #[allow(dead_code)] // the whole API the core may use, not only what it uses today
            impl $name {
                pub const fn new(v: $int) -> Self {
                    Self(portable_atomic::$name::new(v))
                }

                #[inline]
                fn note(&self, access: Access) {
                    record(std::ptr::from_ref(self).addr(), access);
                }

                #[inline]
                fn note_cas(&self, r: Result<$int, $int>) -> Result<$int, $int> {
                    self.note(if r.is_ok() {
                        Access::Write
                    } else {
                        Access::FailedCas
                    });
                    r
                }

                #[inline]
                pub fn load(&self, order: Ordering) -> $int {
                    self.note($load);
                    self.0.load(order)
                }

                #[inline]
                pub fn store(&self, v: $int, order: Ordering) {
                    self.note(Access::Write);
                    self.0.store(v, order)
                }

                #[inline]
                pub fn swap(&self, v: $int, order: Ordering) -> $int {
                    self.note(Access::Write);
                    self.0.swap(v, order)
                }

                #[inline]
                pub fn compare_exchange(
                    &self,
                    current: $int,
                    new: $int,
                    success: Ordering,
                    failure: Ordering,
                ) -> Result<$int, $int> {
                    self.note_cas(self.0.compare_exchange(current, new, success, failure))
                }

                #[inline]
                pub fn compare_exchange_weak(
                    &self,
                    current: $int,
                    new: $int,
                    success: Ordering,
                    failure: Ordering,
                ) -> Result<$int, $int> {
                    self.note_cas(self.0.compare_exchange_weak(current, new, success, failure))
                }

                /// A load, then a weak compare-exchange per attempt: each attempt is counted.
                pub fn fetch_update<F>(
                    &self,
                    set_order: Ordering,
                    fetch_order: Ordering,
                    mut f: F,
                ) -> Result<$int, $int>
                where
                    F: FnMut($int) -> Option<$int>,
                {
                    let mut prev = self.load(fetch_order);
                    while let Some(next) = f(prev) {
                        match self.compare_exchange_weak(prev, next, set_order, fetch_order) {
                            Ok(v) => return Ok(v),
                            Err(v) => prev = v,
                        }
                    }
                    Err(prev)
                }

                #[inline]
                pub fn fetch_add(&self, v: $int, order: Ordering) -> $int {
                    self.note(Access::Write);
                    self.0.fetch_add(v, order)
                }

                #[inline]
                pub fn fetch_sub(&self, v: $int, order: Ordering) -> $int {
                    self.note(Access::Write);
                    self.0.fetch_sub(v, order)
                }

                #[inline]
                pub fn fetch_and(&self, v: $int, order: Ordering) -> $int {
                    self.note(Access::Write);
                    self.0.fetch_and(v, order)
                }

                #[inline]
                pub fn fetch_or(&self, v: $int, order: Ordering) -> $int {
                    self.note(Access::Write);
                    self.0.fetch_or(v, order)
                }

                /// A write even when `v` is not larger: a `lock cmpxchg` loop (or `ldsetmax`)
                /// takes the line exclusive either way.
                #[inline]
                pub fn fetch_max(&self, v: $int, order: Ordering) -> $int {
                    self.note(Access::Write);
                    self.0.fetch_max(v, order)
                }

                #[inline]
                pub fn fetch_min(&self, v: $int, order: Ordering) -> $int {
                    self.note(Access::Write);
                    self.0.fetch_min(v, order)
                }

                /// Needs `&mut self`: no other thread can touch the line's atomic, not counted.
                pub fn get_mut(&mut self) -> &mut $int {
                    self.0.get_mut()
                }

                pub fn into_inner(self) -> $int {
                    self.0.into_inner()
                }
            }
        };
    }

    counted!(AtomicU8, u8, Access::Load);
    counted!(AtomicU32, u32, Access::Load);
    counted!(AtomicU64, u64, Access::Load);
    counted!(AtomicU128, u128, Access::WideLoad);
}
