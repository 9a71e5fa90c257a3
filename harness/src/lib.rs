//! The poolbench harness: workloads, measurement, results and reports.

pub mod cell;
pub mod cli;
pub mod clock;
pub mod compare;
pub mod driver;
pub mod env;
pub mod latency;
pub mod memory;
pub mod null;
pub mod preset;
pub mod programs;
pub mod report;
pub mod results;
pub mod run;
pub mod subject;
pub mod summary;
pub mod sweep;
pub mod verify;
pub mod workload;
