//! The poolbench harness: workloads, measurement, results and reports.

// TEMPORARY (driver branch): stand-ins for allocator API not yet on main.
pub mod allocator_api;
pub mod clock;
pub mod driver;
pub mod latency;
pub mod memory;
pub mod null;
pub mod results;
pub mod subject;
pub mod verify;
// TEMPORARY (driver branch): the workload helper's real file replaces it.
pub mod workload;
