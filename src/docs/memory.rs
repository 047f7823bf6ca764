//! Memory: what a breaker holds, and when its counters' lines are taken and given back.
//!
//! A breaker's counters are striped: each calling thread counts on a line of its own (up to
//! [`Builder::stripes`](crate::Builder::stripes) threads, four per CPU by default), and the
//! others share one shared stripe (more threads than owned stripes contend on it). A
//! thread's own lines exist only once it has called the breaker: its first call takes them from
//! a process-wide reserve, without allocating or waiting, and a dropped breaker gives them back.
//! The breaker's first caller counts on a line in the breaker itself and takes the rest of its
//! lines (its bucket marks) from a reserve of their own; the others keep theirs in cells that
//! come in chunks of 16, taken from a reserve the same way, so an idle breaker holds nothing per
//! stripe.
//! A build fills the reserves up to as many blocks as the breaker has stripes, and the upkeep
//! thread ([`start_upkeep`](crate::start_upkeep)) refills it when calls find it empty; until then (without that
//! thread: for good), a thread that finds none counts on the shared lines. A call that is only
//! rejected takes its lines too. With the upkeep thread, the reserve keeps about one block per
//! CPU between bursts (a block is 768 bytes with the default window); without it, what builds
//! left stays while a breaker of that size lives (with the default stripes, four per CPU: up to
//! 255 blocks and 256 first callers' lines, 351 KiB with the default window, once per window
//! size in the process). The last breaker of a size frees them all. So
//! a breaker that few threads call stays small on a large machine, a breaker without a
//! throttle carries none of the throttle's counters, and one without a slow-call rule none of the
//! shared stripes' slow-call counters. A breaker alone with its settings keeps only the fields
//! that were set (figures in `docs/internals.md` and `docs/operations.md`).
