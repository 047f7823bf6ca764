//! What a breaker promises, exactly, under any number of callers.
//!
//! ## The rules
//! 1. **Transitions are atomic and unique**: each is one compare-and-swap that bumps the generation;
//!    the one thread that wins it calls the listeners once, after the swap, with
//!    `{from, to, cause, generation}`.
//! 2. **Late outcomes are dropped**: an outcome from a permit of an older generation changes no state
//!    and no window, and still counts in the lifetime totals.
//! 3. **Trip rules run when a Failure or a slow call is recorded while Closed**, never on a plain
//!    Success; any rule that holds trips (consecutive failures, failure rate, slow-call rate, your
//!    predicate), and rates compare exactly with ≥ (see "Rates are exact decimals" below).
//! 4. **Open lasts** `open_duration(attempt)` (fixed, or exponential with optional jitter, reset by
//!    closing); at `opened_at + duration` the breaker is ready to half-open.
//! 5. **Half-open admission is exact**: never more than `half_open_permits` probes per half-open
//!    generation, and a dropped or Ignored probe gives its slot back.
//! 6. **Time-window buckets** are aligned to the breaker's start; an outcome lands in the bucket of
//!    its record time and leaves the window a whole bucket at a time.
//! 7. **Lifetime totals are exact** (successes, failures, ignored, slow, rejected, times opened) under
//!    any concurrency, once recorders are quiescent.
//! 8. **Panics**: a panic in `call` is recorded as a Failure and resumed; a panicking listener is
//!    caught and the breaker stays consistent.
//! 9. **Configuration is validated by `build()`**, which returns a `ConfigError` naming the field and
//!    the range it accepts.
//!
//! Beyond these rules:
//! - **Rates are exact decimals.** A rate is held as the fraction `ppb / 10⁹` (rounded to the nearest
//!   billionth, so `0.1` is exactly 1/10) and compared by integer cross-multiplication. Floating point
//!   gets boundaries wrong both ways: `7.0 >= 0.07 * 100.0` is false in f64.
//! - **Deadlines are exact to the nanosecond**: a breaker opened at `t` for `d` admits the first call
//!   at `t + d` exactly, measured on the real clock.
//! - **Lifetime totals in [`Breaker::metrics`](crate::Breaker::metrics) never go backwards** from one snapshot to the next; while
//!   outcomes are being recorded a snapshot may lag by the outcomes in flight.
//! - **`reset()` is always a transition** (Closed → Closed included): it empties the window and makes
//!   outstanding permits late. `isolate()` and `disable()` are transitions too.
//! - **Half-open timeout** is checked when a permit is asked for and when a probe reports; a probe that
//!   succeeds after the timeout reopens the breaker instead of closing it.
//! - **While HalfOpen with every slot taken**, `retry_after` is `None` (the probes' verdict decides);
//!   while Isolated it is `None` too.
//! - **A slow Success in HalfOpen counts as a success** for the verdict (and as slow in the totals).
//! - **Listeners may read the breaker** (no lock is held when they run), unlike gobreaker's.
//! - **A peer's news moves a breaker one way only** ([`Breaker::trip_from_fleet`](crate::Breaker::trip_from_fleet),
//!   [`Breaker::half_open_from_fleet`](crate::Breaker::half_open_from_fleet), used by the `redis` feature's fleet link): a Closed
//!   breaker opens for no longer than the peer said, an Open one half-opens early; nothing else
//!   moves, Isolated and Disabled never. These are ordinary transitions (one compare-and-swap,
//!   a new generation, listeners hear [`Cause::Fleet`](crate::Cause::Fleet)). The fleet link applies a peer's trip
//!   only once a quorum of instances agrees (a majority by default), so a sick minority never
//!   opens a healthy instance.
//! - **Nothing wears out**: generations, bucket tags, counts and deadlines are compared at full
//!   width (64 bits, or 61 for generations in permits), so no number of transitions, calls or
//!   idle time makes an old count, run or deadline look current, and no count is halved or
//!   saturated. The shortest horizon, a bucket tag at 10^7 transitions per second with 256
//!   buckets, is 114 years.
//!
