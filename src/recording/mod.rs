//! Recording what a dependency did, to replay it later: a bounded, sampled trace of each call's
//! start, latency and outcome.
//!
//! A [`Recorder`] sits beside a breaker (it is not part of one: a breaker without a recorder
//! pays nothing for it). Each call it is asked to record either draws "not sampled" (one
//! thread-local random number, no shared write) or takes the next slot of a ring of fixed size
//! and writes 16 bytes there. When the ring is full the oldest calls are overwritten, so memory
//! stays at what [`Recorder::new`] was given. [`Recorder::trace`] copies the ring into a
//! [`Trace`], which [`Trace::encode`] writes in the compact format below and
//! [`Trace::decode`] reads back.
//!
//! ```
//! use hotbreaker::Breaker;
//! use hotbreaker::recording::{Recorder, Trace};
//!
//! let breaker = Breaker::builder().build()?;
//! let recorder = Recorder::new(1 << 16); // the last 65 536 sampled calls, 1 MiB
//! for i in 0..100 {
//!     let _ = recorder.call(&breaker, || if i % 10 == 0 { Err("refused") } else { Ok(()) });
//! }
//! let trace = recorder.trace("inventory");
//! assert_eq!(trace.events.len(), 100);
//! let bytes = trace.encode();
//! assert_eq!(Trace::decode(&bytes)?, trace);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Format (version 1)
//! All integers are unsigned LEB128 varints unless said otherwise.
//!
//! | field | meaning |
//! |---|---|
//! | `b"hbtrace"`, then the byte `1` | magic and version |
//! | varint | when the trace started, milliseconds since the Unix epoch |
//! | varint, then that many bytes | the breaker's name, UTF-8, at most 1 024 bytes |
//! | varint | the number of events |
//! | per event: varint | start, microseconds after the previous event's start (the first: after the trace's start) |
//! | per event: varint | latency, microseconds |
//! | per event: byte | bits 0–1 the outcome (0 Success, 1 Failure, 2 Ignored, 3 Rejected), bit 2 set when a weight follows; other bits 0 |
//! | per event: varint, only with bit 2 | the weight (calls this event stands for), 2 or more |
//!
//! Events are sorted by start. Times are kept to the microsecond: a trace whose times are whole
//! microseconds round-trips exactly. An event takes at most 5 bytes when calls come more often than one per 16 ms and take under
//! 16 ms; 5–8 bytes otherwise. A reader refuses a
//! version it does not know, and any malformed input, with a [`TraceError`]; it never panics.

mod event;
mod format;
mod recorder;

pub use event::{Event, Recorded, Trace};
pub use format::TraceError;
pub use recorder::{MAX_SAMPLING, Recorder, SamplingError, Started};
