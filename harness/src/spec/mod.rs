//! Workloads as data: the model and its fields (declared once), presets
//! as TOML files, sweeps, and the compilation of a workload into
//! per-thread plans and tapes.

pub mod field;
pub mod file;
pub mod lifetime;
pub mod plan;
pub mod preset;
pub mod size;
pub mod tape;
pub mod touch;
pub mod workload;
