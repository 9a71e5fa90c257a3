//! The poolbench harness: workloads, measurement, results and reports.

pub mod preset;
pub mod results;
pub mod workload;
