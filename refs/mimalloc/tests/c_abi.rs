//! mimalloc as a preloaded `malloc` under the preload package's C exercise
//! (`preload/tests/c/exercise.c`): every exported function from four
//! threads, cross-thread frees, alignment, zeroing, `realloc` contents,
//! usable sizes, error cases, and forks while the threads allocate.
//! Skipped without `cc`.

#[path = "../../../preload/tests/support/mod.rs"]
mod support;

#[test]
fn every_function_from_four_threads_and_forks() {
    support::check_reference("poolbench_mimalloc", "ref-mimalloc", support::Forks::Check);
}
