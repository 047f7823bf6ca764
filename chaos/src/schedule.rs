//! The simulated dependency's schedule: the phases, and what the backend does with a call that
//! starts at a given moment. Pure functions of time, tested without threads.

use std::time::Duration;

/// The phases, in the order they run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// ≈2 ms calls, a low error rate.
    Healthy,
    /// A steady error rate.
    Brownout,
    /// A gradual brownout: the error rate climbs linearly from 0 to its peak over the first half
    /// of the phase and back to 0 over the second half.
    Ramp,
    /// Every call fails after a timeout.
    Outage,
    /// Healthy again.
    Recovered,
}

impl Phase {
    pub const ALL: [Phase; 5] = [
        Phase::Healthy,
        Phase::Brownout,
        Phase::Ramp,
        Phase::Outage,
        Phase::Recovered,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Phase::Healthy => "healthy",
            Phase::Brownout => "brownout",
            Phase::Ramp => "ramp",
            Phase::Outage => "outage",
            Phase::Recovered => "recovered",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }
}

/// What the backend does with a call.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Behaviour {
    /// Answer after the usual latency, failing with this probability.
    Serve { error_rate: f64 },
    /// Fail after the outage's timeout.
    TimeOut,
}

/// The ramp's error rate `elapsed` into a ramp of length `len` peaking at `peak`: a triangle,
/// 0 at both ends and `peak` in the middle. 0 outside the ramp.
pub fn ramp_error_rate(peak: f64, elapsed: Duration, len: Duration) -> f64 {
    if len.is_zero() || elapsed >= len {
        return 0.0;
    }
    let x = elapsed.as_secs_f64() / len.as_secs_f64();
    peak * (1.0 - (2.0 * x - 1.0).abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn the_ramp_is_a_triangle() {
        let len = MS(8000);
        assert_eq!(ramp_error_rate(0.8, MS(0), len), 0.0);
        assert!((ramp_error_rate(0.8, MS(2000), len) - 0.4).abs() < 1e-12);
        assert!((ramp_error_rate(0.8, MS(4000), len) - 0.8).abs() < 1e-12);
        assert!((ramp_error_rate(0.8, MS(6000), len) - 0.4).abs() < 1e-12);
        assert!(ramp_error_rate(0.8, MS(7999), len) < 0.001);
        assert_eq!(ramp_error_rate(0.8, MS(8000), len), 0.0);
        assert_eq!(ramp_error_rate(0.8, MS(1), Duration::ZERO), 0.0);
        // Symmetric, and never above the peak.
        for ms in (0..8000).step_by(100) {
            let up = ramp_error_rate(0.8, MS(ms), len);
            let down = ramp_error_rate(0.8, MS(8000 - ms), len);
            assert!((up - down).abs() < 1e-9, "{ms}");
            assert!((0.0..=0.8).contains(&up));
        }
    }

    #[test]
    fn phases_are_named_in_order() {
        let names: Vec<_> = Phase::ALL.iter().map(|p| p.name()).collect();
        assert_eq!(
            names,
            ["healthy", "brownout", "ramp", "outage", "recovered"]
        );
        assert!(Phase::ALL.iter().enumerate().all(|(i, p)| p.index() == i));
    }
}
