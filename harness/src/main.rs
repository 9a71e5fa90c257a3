//! `poolbench`: the command line; everything it does lives in the library
//! (`harness::cli`).

/// Every allocation of the process goes to the subject named by
/// `POOLBENCH_GLOBAL` (unset: the system allocator); see `programs::switch`.
#[global_allocator]
static GLOBAL: harness::programs::switch::Switch = harness::programs::switch::Switch;

fn main() -> std::process::ExitCode {
    harness::cli::main()
}
