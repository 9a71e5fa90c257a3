//! The poolbench harness: workloads, measurement, results and reports.
//!
//! The folders are the layers, and dependencies point one way (down this
//! list never up it):
//!
//! | layer | what it holds |
//! | --- | --- |
//! | [`cli`] | argument parsing, `run`/`suite`, child cells, exit codes |
//! | [`report`] | terminal summary, HTML report, compare page, charts; reads only [`results`] |
//! | [`measure`], [`programs`] | the driver (worker loop, phases, transport), clock, latency, memory, verification; application programs and external commands as workloads |
//! | [`subjects`] | the allocators a cell can drive, behind one trait |
//! | [`spec`] | the workload model, presets, sweeps, plans and tapes |
//! | [`results`] | the versioned results schema (serde only) |
//! | [`stats`], [`error`] | statistics of repeats; the user-error type every layer may return |

pub mod cli;
pub mod error;
pub mod measure;
pub mod programs;
pub mod report;
pub mod results;
pub mod spec;
pub mod stats;
pub mod subjects;
