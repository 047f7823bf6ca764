//! The upkeep thread: quanta's recent time, which makes the breaker's fast path cheaper, and the
//! reserve of owned-stripe blocks that a thread's first call on a breaker takes its lines from.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// Set while an upkeep thread started by [`start_upkeep`] runs (`std`'s atomic: one per process,
/// nothing a loom model needs to see).
static RUNNING: AtomicBool = AtomicBool::new(false);

/// Starts the upkeep thread, which every `interval` (1 ms is usual):
/// - sets quanta's recent time, so a Success on the fast path reads the time in about a
///   nanosecond instead of a dozen (see [Time](crate::docs::time));
/// - refills the reserve of counter lines that a thread takes from on its first call of a
///   breaker, when calls found it empty (see [Memory](crate::docs::memory)).
///
/// Call it once per process, in `main`, and keep the handle: dropping it stops the thread. The
/// breaker stays correct without it, and when it stops: the time is then read from the clock on
/// every call, and a thread that finds the reserve empty counts on the breaker's shared lines.
///
/// It does what `quanta::Upkeep::new(interval).start()` does, and the refills; running both
/// is harmless, but quanta's alone does not refill: without this thread, only the blocks of
/// lines that builds leave in the reserve (up to the most stripes of any breaker built) are
/// handed out, and the threads that come later count on the breakers' shared lines (correct,
/// but a compare-and-swap per outcome on lines the other threads write too).
///
/// # Errors
/// [`UpkeepError::Running`] if an upkeep thread started here already runs in this process,
/// [`UpkeepError::Spawn`] if the thread could not be started.
///
/// # Examples
/// ```
/// use std::time::Duration;
///
/// fn main() -> Result<(), Box<dyn std::error::Error>> {
///     // Keep the handle for as long as the process runs.
///     let _upkeep = hotbreaker::start_upkeep(Duration::from_millis(1))?;
///     // ... build breakers, serve ...
///     Ok(())
/// }
/// ```
pub fn start_upkeep(interval: Duration) -> Result<Upkeep, UpkeepError> {
    // Acquire/Release: a new thread starts after the previous one has finished.
    if RUNNING
        .compare_exchange(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        return Err(UpkeepError::Running);
    }
    let clock = quanta::Clock::new();
    quanta::set_recent(clock.now());
    let done = Arc::new(AtomicBool::new(false));
    let stop = Arc::clone(&done);
    let thread = std::thread::Builder::new()
        .name("hotbreaker-upkeep".into())
        .spawn(move || {
            // Acquire: pairs with the handle's Release store; nothing else is passed.
            while !stop.load(Ordering::Acquire) {
                quanta::set_recent(clock.now());
                crate::clock::tick();
                refill();
                // Woken early by the handle's drop.
                std::thread::park_timeout(interval);
            }
            // Release: see the compare-and-swap above.
            RUNNING.store(false, Ordering::Release);
        })
        .map_err(|e| {
            // Release: nothing ran.
            RUNNING.store(false, Ordering::Release);
            UpkeepError::Spawn(e)
        })?;
    Ok(Upkeep {
        done,
        thread: Some(thread),
    })
}

fn refill() {
    #[cfg(not(hotbreaker_loom))]
    crate::window::owned::refill_reserves();
}

/// The running upkeep thread (see [`start_upkeep`]): dropping it stops the thread and waits for
/// it.
#[derive(Debug)]
#[must_use = "dropping the handle stops the upkeep thread"]
pub struct Upkeep {
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Upkeep {
    fn drop(&mut self) {
        // Release: see the thread's Acquire load.
        self.done.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            thread.thread().unpark();
            // The thread cannot panic (it only sets the time and allocates blocks); a join
            // error has nothing to report in a destructor.
            let _ = thread.join();
        }
    }
}

/// Why [`start_upkeep`] did not start a thread.
#[derive(Debug)]
#[non_exhaustive]
pub enum UpkeepError {
    /// An upkeep thread started by [`start_upkeep`] already runs in this process.
    Running,
    /// The operating system refused a new thread.
    Spawn(std::io::Error),
}

impl std::fmt::Display for UpkeepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpkeepError::Running => f.write_str("the upkeep thread already runs in this process"),
            UpkeepError::Spawn(e) => write!(f, "could not start the upkeep thread: {e}"),
        }
    }
}

impl std::error::Error for UpkeepError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            UpkeepError::Running => None,
            UpkeepError::Spawn(e) => Some(e),
        }
    }
}
