//! Measurement: the driver, the clock, latency, memory and verification.

pub mod clock;
pub mod driver;
pub mod env;
pub mod latency;
pub mod memory;
pub mod verify;
