//! The preload library under a C program (`tests/c/exercise.c`) that calls
//! every exported function from four threads, frees across threads,
//! checks alignment, zeroing, contents across `realloc`, usable sizes and
//! the error cases, and forks while the threads allocate: under every
//! `POOLBENCH_ALLOCATOR`, in both geometries. Skipped without `cc`.

mod support;

use std::process::Command;
use std::time::Duration;

use support::{library, run, ALLOCATORS};

const LIMIT: Duration = Duration::from_secs(120);

/// Runs the exercise under the preload library with `env`.
fn run_exercise(program: &std::path::Path, min_align: u32, env: &[(&str, &str)]) -> support::Run {
    let mut cmd = Command::new(program);
    cmd.arg(min_align.to_string())
        .env("LD_PRELOAD", library("poolbench_preload", "preload"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(cmd, LIMIT, &format!("exercise under {env:?}"))
}

#[test]
fn every_function_under_every_allocator() {
    let Some(program) = support::exercise() else {
        return;
    };
    // The program itself holds under glibc (no preload).
    let base = run(Command::new(&program), LIMIT, "exercise under glibc");
    assert!(base.ok() && base.stdout.trim() == "ok", "{base:?}");
    for (geometry, min_align) in [("classic", 8), ("modern", 16)] {
        for a in ALLOCATORS {
            let r = run_exercise(
                &program,
                min_align,
                &[("POOLBENCH_ALLOCATOR", a), ("POOLBENCH_GEOMETRY", geometry)],
            );
            assert!(r.ok() && r.stdout.trim() == "ok", "{a} ({geometry}): {r:?}");
        }
    }
}

#[test]
fn stats_at_exit_name_the_allocator() {
    let Some(program) = support::exercise() else {
        return;
    };
    for a in ALLOCATORS {
        let r = run_exercise(
            &program,
            8,
            &[("POOLBENCH_ALLOCATOR", a), ("POOLBENCH_STATS", "1")],
        );
        assert!(r.ok(), "{a}: {r:?}");
        assert!(
            r.stderr
                .contains(&format!("allocator {a}, geometry modern"))
                && r.stderr.contains("bytes mapped (arenas)")
                && r.stderr.contains("# arenas allocated total"),
            "{a}: {}",
            r.stderr
        );
    }
}

#[test]
fn a_bad_name_aborts_with_a_message() {
    let Some(program) = support::exercise() else {
        return;
    };
    let r = run_exercise(&program, 8, &[("POOLBENCH_ALLOCATOR", "tcmalloc")]);
    assert!(!r.ok(), "{r:?}");
    assert!(
        r.stderr.contains("unknown POOLBENCH_ALLOCATOR") && r.stderr.contains("tcmalloc"),
        "{r:?}"
    );
}
