//! A half-acquired call of the tower service.

use super::call::fail;
use crate::breaker::Breaker;
use crate::telemetry::Telemetry;
use crate::ticket::Ticket;

/// A half-acquired call: records a Failure if dropped before [`disarm`](Self::disarm) (a panic
/// between acquiring and building the future).
pub(crate) struct TicketGuard<'a, T: Telemetry> {
    pub(crate) breaker: &'a Breaker,
    pub(crate) ticket: Option<Ticket>,
    pub(crate) telemetry: &'a T,
    pub(crate) call: &'a T::Call,
}

impl<T: Telemetry> TicketGuard<'_, T> {
    #[inline]
    pub(crate) fn disarm(mut self) -> Ticket {
        self.ticket.take().expect("armed")
    }
}

impl<T: Telemetry> Drop for TicketGuard<'_, T> {
    fn drop(&mut self) {
        fail(self.breaker, self.ticket.take(), self.telemetry, self.call);
    }
}
