//! `poolbench`: the command line; everything it does lives in the library
//! (`harness::cli`).

/// Every allocation of the process goes to the subject named by
/// `POOLBENCH_GLOBAL` (unset: the system allocator); see `subjects::global`.
#[global_allocator]
static GLOBAL: harness::subjects::global::Switch = harness::subjects::global::Switch;

fn main() -> std::process::ExitCode {
    harness::cli::main()
}
