//! TEMPORARY STAND-IN on the `cli` branch, replaced at merge by the driver
//! helper's `clock.rs` (whose `Clock::calibrate()` / `info()` the CLI uses
//! to record the run's clock): a monotonic clock whose reading cost is
//! measured.

use std::time::Instant;

use crate::results::ClockInfo;

pub struct Clock {
    overhead_ns: f64,
}

impl Clock {
    pub fn calibrate() -> Clock {
        const N: u32 = 10_000;
        let start = Instant::now();
        for _ in 0..N {
            std::hint::black_box(Instant::now());
        }
        Clock {
            overhead_ns: start.elapsed().as_nanos() as f64 / f64::from(N),
        }
    }

    pub fn info(&self) -> ClockInfo {
        ClockInfo {
            source: "monotonic".into(),
            ns_per_tick: 1.0,
            overhead_ns: self.overhead_ns,
        }
    }
}
