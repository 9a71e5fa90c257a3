//! Workloads as data: the model and its fields, presets, sweeps, plans.

pub mod preset;
pub mod sweep;
pub mod workload;
