//! The poolbench harness: workloads, measurement, results and reports.

pub mod results;
