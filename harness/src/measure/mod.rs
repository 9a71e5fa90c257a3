//! Measurement: one (subject, workload) cell, run in this process.
//!
//! The seams, one file each:
//!
//! | file | what |
//! | --- | --- |
//! | `phases.rs` | the cell's threads and phases: tapes, warm-up, probe, measured rounds, latency, verification, drain |
//! | `worker.rs` | the measured loop and its variants (plain, timed, verify; local or remote) |
//! | `transport.rs` | remote frees in batches |
//! | `latency.rs` | sampling intervals, histograms, summaries without the clock's overhead |
//! | `memory.rs` | RSS over time, peak RSS, machine load |
//! | `assemble.rs` | a cell's figures, from what the phases measured |
//! | `clock.rs`, `verify.rs` | the latency clock; block tags |
//! | `env.rs` | the environment a run records |
//!
//! `docs/methodology.md` explains every figure.

mod assemble;
pub mod clock;
pub mod env;
pub mod latency;
pub mod memory;
mod phases;
pub mod transport;
pub mod verify;
pub mod worker;

pub use phases::{run_cell, Options};

/// Why a cell could not produce metrics.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CellError {
    /// A block's tag or alignment was wrong.
    #[error("verification failed: {0}")]
    Verification(String),
    /// The workload cannot be run as given.
    #[error("invalid cell: {0}")]
    Invalid(String),
    /// The subject returned null.
    #[error("allocation failed: {0}")]
    AllocFailed(String),
    /// Another worker failed first (never the cell's reported error).
    #[error("stopped because another worker failed")]
    Aborted,
}
