//! Permits: what `try_acquire` hands out, and how a call's outcome is reported through them.

use std::fmt;
use std::sync::Arc;

use crate::breaker::Breaker;
use crate::state::State;

/// How a call went.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The call worked.
    Success,
    /// The call failed in a way that says the dependency is unhealthy.
    Failure,
    /// Neither: a cancelled call, a client error you choose not to count. Not a window call;
    /// while HalfOpen it gives the probe slot back.
    Ignored,
}

/// What a permit remembers: the generation it was issued in (all 64 bits, so a permit held
/// across any number of transitions is never mistaken for a current one), the state that issued
/// it, and (with slow-call detection on) when.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ticket {
    generation: u64,
    /// Nanoseconds since the breaker's start at issue; 0 when slow-call detection is off.
    pub(crate) issued_ns: u64,
    state: State,
}

impl Ticket {
    #[inline]
    pub(crate) fn new(generation: u64, state: State, issued_ns: u64) -> Ticket {
        Ticket {
            generation,
            issued_ns,
            state,
        }
    }

    #[inline]
    pub(crate) fn generation(self) -> u64 {
        self.generation
    }

    /// Closed, HalfOpen or Disabled.
    #[inline]
    pub(crate) fn state(self) -> State {
        self.state
    }
}

impl fmt::Debug for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticket")
            .field("generation", &self.generation())
            .field("state", &self.state())
            .field("issued_ns", &self.issued_ns)
            .finish()
    }
}

/// Permission for one call, borrowed from a [`Breaker`].
///
/// Report the call's outcome with [`success`](Permit::success), [`failure`](Permit::failure),
/// [`ignore`](Permit::ignore) or [`record`](Permit::record). Dropping a permit without reporting
/// records nothing and, while HalfOpen, gives its probe slot back, so a cancelled call never
/// wedges the breaker (SPEC rule 5).
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
    #[inline]
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
    /// in this generation (SPEC rule 2).
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
    /// in this generation (SPEC rule 2).
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
