//! The latency clock: a cheap tick counter calibrated to nanoseconds.
//!
//! On x86-64 with an invariant TSC (`constant_tsc` and `nonstop_tsc` in
//! `/proc/cpuinfo`) a reading is `lfence; rdtsc; lfence`. The operations we
//! time are tens of nanoseconds, short enough that out-of-order execution
//! could move a bare `rdtsc` across part of them: the leading `lfence` makes
//! the reading wait until every earlier instruction has completed, and the
//! trailing one keeps later instructions (the operation being timed, or the
//! code after it) from starting before the counter is read. That is the
//! symmetric form of Intel's advice for short intervals; it costs a few ns
//! per reading, which we measure and report instead of hiding. `rdtscp` would
//! order only one side and needs a CPU flag check, so it buys nothing here.
//!
//! Elsewhere (or without an invariant TSC) the clock is
//! `clock_gettime(CLOCK_MONOTONIC)`, one tick per nanosecond.
//!
//! Calibration compares the TSC against [`Instant`] over about 30 ms of
//! spinning. The overhead is the median of many back-to-back pairs of
//! readings: a sample of an operation is `stop − start`, which includes it
//! once, so it is subtracted from every latency. The resolution is the
//! spread (p90 − p10) of those pairs: a latency closer to the overhead
//! than that is below what the clock can tell apart, and is reported so.

use std::time::{Duration, Instant};

use crate::results::ClockInfo;

/// How long calibration spins.
const CALIBRATION: Duration = Duration::from_millis(30);
/// Back-to-back pairs measured for the overhead median.
const OVERHEAD_SAMPLES: usize = 2_001;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    #[cfg(target_arch = "x86_64")]
    Tsc,
    Monotonic,
}

/// A calibrated tick counter. Copy it into each worker.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    source: Source,
    ns_per_tick: f64,
    overhead_ns: f64,
    resolution_ns: f64,
}

#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn read_tsc() -> u64 {
    use core::arch::x86_64::{_mm_lfence, _rdtsc};
    // SAFETY: `lfence` and `rdtsc` are part of x86-64's baseline (SSE2 is
    // mandatory) and have no memory-safety preconditions.
    unsafe {
        _mm_lfence();
        let t = _rdtsc();
        _mm_lfence();
        t
    }
}

#[inline(always)]
fn read_monotonic() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Whether the TSC ticks at a constant rate through frequency changes and
/// idle states, so that ticks convert to time with one factor.
#[cfg(target_arch = "x86_64")]
fn invariant_tsc() -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") else {
        return false;
    };
    info.lines()
        .find(|l| l.starts_with("flags"))
        .is_some_and(|l| {
            let mut words = l.split_whitespace();
            let flags: Vec<&str> = words.by_ref().collect();
            flags.contains(&"constant_tsc") && flags.contains(&"nonstop_tsc")
        })
}

impl Clock {
    /// The best clock this machine offers, calibrated.
    pub fn calibrate() -> Clock {
        #[cfg(target_arch = "x86_64")]
        if invariant_tsc() {
            return Self::calibrate_source(Source::Tsc);
        }
        Self::calibrate_source(Source::Monotonic)
    }

    /// The `clock_gettime(CLOCK_MONOTONIC)` clock, whatever the machine.
    pub fn monotonic() -> Clock {
        Self::calibrate_source(Source::Monotonic)
    }

    fn calibrate_source(source: Source) -> Clock {
        let mut clock = Clock {
            source,
            ns_per_tick: 1.0,
            overhead_ns: 0.0,
            resolution_ns: 0.0,
        };
        if source != Source::Monotonic {
            let (i0, t0) = (Instant::now(), clock.now());
            while i0.elapsed() < CALIBRATION {
                std::hint::spin_loop();
            }
            let (t1, i1) = (clock.now(), Instant::now());
            let ticks = t1.wrapping_sub(t0);
            if ticks > 0 {
                clock.ns_per_tick = (i1 - i0).as_nanos() as f64 / ticks as f64;
            }
        }
        let mut deltas: Vec<u64> = (0..OVERHEAD_SAMPLES)
            .map(|_| {
                let a = clock.now();
                let b = clock.now();
                b.wrapping_sub(a)
            })
            .collect();
        deltas.sort_unstable();
        let at = |q: f64| deltas[((deltas.len() - 1) as f64 * q) as usize] as f64;
        clock.overhead_ns = at(0.5) * clock.ns_per_tick;
        // The readings' own jitter; at least one tick.
        clock.resolution_ns = ((at(0.9) - at(0.1)) * clock.ns_per_tick).max(clock.ns_per_tick);
        clock
    }

    /// The current tick count.
    #[inline(always)]
    pub fn now(&self) -> u64 {
        match self.source {
            #[cfg(target_arch = "x86_64")]
            Source::Tsc => read_tsc(),
            Source::Monotonic => read_monotonic(),
        }
    }

    /// Median cost of a pair of back-to-back readings, in ns.
    pub fn overhead_ns(&self) -> f64 {
        self.overhead_ns
    }

    /// The readings' jitter (p90 − p10 of back-to-back pairs), in ns.
    pub fn resolution_ns(&self) -> f64 {
        self.resolution_ns
    }

    /// Nanoseconds per tick.
    pub fn ns_per_tick(&self) -> f64 {
        self.ns_per_tick
    }

    /// Name, scale and overhead, for the results file.
    pub fn info(&self) -> ClockInfo {
        ClockInfo {
            source: match self.source {
                #[cfg(target_arch = "x86_64")]
                Source::Tsc => "tsc".into(),
                Source::Monotonic => "monotonic".into(),
            },
            ns_per_tick: self.ns_per_tick,
            overhead_ns: self.overhead_ns,
            resolution_ns: self.resolution_ns,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calibration_gives_a_usable_scale() {
        for clock in [Clock::calibrate(), Clock::monotonic()] {
            let info = clock.info();
            assert!(
                info.ns_per_tick.is_finite() && info.ns_per_tick > 0.0,
                "{info:?}"
            );
            assert!(
                info.overhead_ns.is_finite() && info.overhead_ns >= 0.0,
                "{info:?}"
            );
            assert!(["tsc", "monotonic"].contains(&info.source.as_str()));
            let a = clock.now();
            let b = clock.now();
            assert!(b >= a, "clock went backwards: {a} then {b}");
        }
        assert_eq!(Clock::monotonic().info().ns_per_tick, 1.0);
    }
}
