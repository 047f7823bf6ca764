//! Permits: what `try_acquire` hands out, and how a call's outcome is reported through them;
//! `call` and `call_with`, which do both around a closure.

use std::fmt;
use std::sync::Arc;

use crate::breaker::Breaker;
use crate::error::{Error, Rejected};
use crate::outcome::Outcome;
use crate::state::State;
use crate::ticket::Ticket;

/// Permission for one call, borrowed from a [`Breaker`].
///
/// Report the call's outcome with [`success`](Permit::success), [`failure`](Permit::failure),
/// [`ignore`](Permit::ignore) or [`record`](Permit::record). Dropping a permit without reporting
/// records nothing and, while HalfOpen, gives its probe slot back, so a cancelled call never
/// wedges the breaker.
///
/// # Examples
/// ```
/// use hotbreaker::Breaker;
///
/// let breaker = Breaker::builder().build().unwrap();
/// match breaker.try_acquire() {
///     Ok(permit) => {
///         let worked = true; // make the call here
///         if worked { permit.success() } else { permit.failure() }
///     }
///     Err(rejected) => println!("not calling: {rejected}"),
/// }
/// ```
#[must_use = "report the call's outcome; dropping the permit records nothing"]
pub struct Permit<'a> {
    breaker: &'a Breaker,
    ticket: Ticket,
}

impl<'a> Permit<'a> {
    pub(crate) fn new(breaker: &'a Breaker, ticket: Ticket) -> Self {
        Permit { breaker, ticket }
    }

    /// Records a Success.
    #[inline]
    pub fn success(self) {
        self.record(Outcome::Success);
    }

    /// Records a Failure.
    #[inline]
    pub fn failure(self) {
        self.record(Outcome::Failure);
    }

    /// Records an Ignored outcome.
    #[inline]
    pub fn ignore(self) {
        self.record(Outcome::Ignored);
    }

    /// Records `outcome`.
    #[inline(always)]
    pub fn record(self, outcome: Outcome) {
        let (breaker, ticket) = (self.breaker, self.ticket);
        // Skip Drop: the outcome is being recorded. The permit holds only a reference and Copy
        // data, so forgetting it leaks nothing.
        std::mem::forget(self);
        breaker.record_ticket(ticket, outcome);
    }

    /// The state that issued this permit (Closed, HalfOpen or Disabled).
    pub fn state(&self) -> State {
        self.ticket.state()
    }

    /// The generation that issued this permit. Its outcome counts only while the breaker is still
    /// in this generation.
    pub fn generation(&self) -> u64 {
        self.ticket.generation()
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        self.breaker.release_ticket(self.ticket);
    }
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("ticket", &self.ticket)
            .finish()
    }
}

/// A [`Permit`] that owns an `Arc` of its breaker, so it can be moved across threads or held
/// across an `.await`.
///
/// # Examples
/// ```
/// use std::sync::Arc;
/// use hotbreaker::Breaker;
///
/// let breaker = Arc::new(Breaker::builder().build().unwrap());
/// let permit = breaker.try_acquire_owned().unwrap();
/// std::thread::spawn(move || permit.success()).join().unwrap();
/// assert_eq!(breaker.metrics().successes, 1);
/// ```
#[must_use = "report the call's outcome; dropping the permit records nothing"]
pub struct OwnedPermit {
    breaker: Option<Arc<Breaker>>,
    ticket: Ticket,
}

impl OwnedPermit {
    pub(crate) fn new(breaker: Arc<Breaker>, ticket: Ticket) -> Self {
        OwnedPermit {
            breaker: Some(breaker),
            ticket,
        }
    }

    /// Records a Success.
    pub fn success(self) {
        self.record(Outcome::Success);
    }

    /// Records a Failure.
    pub fn failure(self) {
        self.record(Outcome::Failure);
    }

    /// Records an Ignored outcome.
    pub fn ignore(self) {
        self.record(Outcome::Ignored);
    }

    /// Records `outcome`.
    pub fn record(mut self, outcome: Outcome) {
        if let Some(breaker) = self.breaker.take() {
            breaker.record_ticket(self.ticket, outcome);
        }
    }

    /// The state that issued this permit (Closed, HalfOpen or Disabled).
    pub fn state(&self) -> State {
        self.ticket.state()
    }

    /// The generation that issued this permit. Its outcome counts only while the breaker is still
    /// in this generation.
    pub fn generation(&self) -> u64 {
        self.ticket.generation()
    }
}

impl Drop for OwnedPermit {
    fn drop(&mut self) {
        if let Some(breaker) = self.breaker.take() {
            breaker.release_ticket(self.ticket);
        }
    }
}

impl fmt::Debug for OwnedPermit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedPermit")
            .field("ticket", &self.ticket)
            .finish()
    }
}

/// Acquiring a permit, and calling through one.
impl Breaker {
    /// Runs `f` if the breaker lets it through; `Ok` counts as Success, `Err` as Failure.
    ///
    /// A panic inside `f` is recorded as a Failure and then resumed.
    ///
    /// # Errors
    /// [`Error::Rejected`] if the call was not let through, [`Error::Inner`] with `f`'s error.
    #[inline]
    pub fn call<T, E>(&self, f: impl FnOnce() -> Result<T, E>) -> Result<T, Error<E>> {
        self.call_with(Outcome::of_result, f)
    }

    /// Runs `f` if the breaker lets it through and records `classify(&result)`.
    ///
    /// # Examples
    /// ```
    /// use hotbreaker::{Breaker, Outcome};
    ///
    /// let breaker = Breaker::builder().build().unwrap();
    /// // A 404 is the caller's problem, not the dependency's: don't count it.
    /// let status = breaker.call_with(
    ///     |r: &Result<u16, u16>| match r {
    ///         Ok(_) => Outcome::Success,
    ///         Err(s) if *s < 500 => Outcome::Ignored,
    ///         Err(_) => Outcome::Failure,
    ///     },
    ///     || Err(404),
    /// );
    /// assert!(status.is_err());
    /// assert_eq!(breaker.metrics().ignored, 1);
    /// ```
    ///
    /// # Errors
    /// As for [`call`](Breaker::call).
    #[inline]
    pub fn call_with<T, E>(
        &self,
        classify: impl FnOnce(&Result<T, E>) -> Outcome,
        f: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, Error<E>> {
        let permit = self.try_acquire().map_err(Error::Rejected)?;
        let guard = FailOnUnwind(Some(permit));
        let result = f();
        let outcome = classify(&result);
        guard.finish(outcome);
        result.map_err(Error::Inner)
    }

    /// Asks to make a call. `Ok` carries the permit to report the outcome through.
    ///
    /// # Errors
    /// [`Rejected`] while Open (before the deadline), HalfOpen with every probe slot taken, or
    /// Isolated.
    // Always inlined: returned through memory, the permit's two words would be stored apart
    // and loaded as one, a store-forwarding stall on every call.
    #[inline(always)]
    pub fn try_acquire(&self) -> Result<Permit<'_>, Rejected> {
        match self.acquire() {
            Ok(ticket) => Ok(Permit::new(self, ticket)),
            Err(rejected) => Err(rejected),
        }
    }

    /// Like [`try_acquire`](Breaker::try_acquire), with a permit that owns a clone of the `Arc`.
    ///
    /// # Errors
    /// As for `try_acquire`.
    pub fn try_acquire_owned(self: &Arc<Self>) -> Result<OwnedPermit, Rejected> {
        self.acquire()
            .map(|ticket| OwnedPermit::new(Arc::clone(self), ticket))
    }
}

/// Records a Failure if the protected call (or its classifier) panics.
struct FailOnUnwind<'a>(Option<Permit<'a>>);

impl FailOnUnwind<'_> {
    #[inline(always)]
    fn finish(mut self, outcome: Outcome) {
        let permit = self.0.take();
        // Nothing left to guard: skip the drop glue.
        std::mem::forget(self);
        if let Some(permit) = permit {
            permit.record(outcome);
        }
    }
}

impl Drop for FailOnUnwind<'_> {
    fn drop(&mut self) {
        if let Some(permit) = self.0.take() {
            permit.failure();
        }
    }
}
