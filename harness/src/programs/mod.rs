//! Programs as workloads (DESIGN.md §4, kinds 2 and 3).
//!
//! - [`apps`]: real Rust programs on `rayon`, run in a cell's child process
//!   whose `#[global_allocator]` is the subject (`subjects::global`), so
//!   every allocation of the process (the program, rayon's pool, std) goes
//!   through the subject, as under `LD_PRELOAD`; each checks its result.
//! - [`external`]: any command as a workload (`poolbench exec`), run under
//!   the subject from outside (`LD_PRELOAD`) and measured from outside.
//! - [`python`]: the bundled Python workloads, external commands of the
//!   system's CPython.

pub mod apps;
pub mod external;
pub mod python;
