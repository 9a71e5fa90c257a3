//! `poolbench`: the command line; everything it does lives in the library
//! (`harness::cli`).

fn main() -> std::process::ExitCode {
    harness::cli::main()
}
