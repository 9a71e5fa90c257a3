//! The poolbench harness: workloads, measurement, results and reports.

pub mod compare;
pub mod preset;
pub mod report;
pub mod results;
pub mod workload;
