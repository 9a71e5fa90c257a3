//! snmalloc as a preloaded `malloc` under the preload package's C exercise
//! (`preload/tests/c/exercise.c`): every exported function from four
//! threads, cross-thread frees, alignment, zeroing, `realloc` contents,
//! usable sizes and error cases. Skipped without `cc`.
//!
//! Without the fork phase: snmalloc (0.7.6, as `snmalloc-sys` bundles it)
//! leaves a forked child of a threaded process hung in about one run in
//! five here, spinning in the combining lock of its global address-space
//! range, whose waiter queue the fork copied mid-update (upstream:
//! microsoft/snmalloc#630, the partial fix #735). That is snmalloc's
//! behaviour, not the shim's, and `docs/programs.md` warns about it.

#[path = "../../../preload/tests/support/mod.rs"]
mod support;

#[test]
fn every_function_from_four_threads_and_forks() {
    support::check_reference(
        "poolbench_snmalloc",
        "ref-snmalloc",
        support::Forks::Skip(
            "snmalloc can hang a threaded process's forked child (microsoft/snmalloc#630)",
        ),
    );
}
