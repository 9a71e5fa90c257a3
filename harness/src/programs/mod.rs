//! Application workloads (DESIGN.md §4, kind 2): real Rust programs on
//! `rayon`, run in a cell's child process whose `#[global_allocator]` is the
//! subject, so every allocation of the process (the program, rayon's pool,
//! std) goes through the subject, as under `LD_PRELOAD`.
//!
//! - [`switch`]: the binary's switchable global allocator, which picks the
//!   subject from `POOLBENCH_GLOBAL` before the first allocation;
//! - [`corrupt`]: a test subject that damages live blocks, to show that the
//!   programs' result checks catch a broken allocator;
//! - [`apps`]: the programs, their registry, and the hidden `app-cell`
//!   child that runs one of them and prints its metrics.

pub mod apps;
pub mod corrupt;
pub mod switch;
