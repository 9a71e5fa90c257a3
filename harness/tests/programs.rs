//! End-to-end tests of allocators from outside the binary and of programs
//! as workloads: `so:PATH` and `preload:NAME` subjects on a synthetic cell,
//! `poolbench exec` of a C program (compiled here with `cc`) under
//! `system` and `sharded`, `--metric` and `--threads-env`, bad libraries
//! and subjects refused before anything runs, and the bundled Python
//! workloads under `pymalloc` and `sharded`.
//!
//! The preload library is this workspace's `libpoolbench_preload.so`, of
//! this build's profile, which these tests build (or find fresh) with
//! `cargo build -p preload` next to the `poolbench` binary, where
//! `preload:NAME` subjects look for it. Tests that need
//! `cc` or `python3` are skipped with a message where those are missing.
//! No assertion involves timing.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use harness::results::{CellKind, FailureKind, Outcome, RunResults};

const EXE: &str = env!("CARGO_BIN_EXE_poolbench");
const BAD_INPUT: i32 = 2;
const CELLS_FAILED: i32 = 4;

/// A fresh output directory for one test.
fn out_dir(test: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("poolbench-programs")
        .join(test);
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn poolbench(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(EXE);
    c.args(args)
        .env_remove("POOLBENCH_CRASH")
        .env_remove("LD_PRELOAD");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// `poolbench ARGS --json --no-progress --out DIR` (the flags go before a
/// `--`, if any), `DIR` a fresh output directory named after the test.
fn poolbench_json(test: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let out = out_dir(test);
    let out = out.to_str().unwrap();
    let at = args.iter().position(|a| *a == "--").unwrap_or(args.len());
    let mut all = args[..at].to_vec();
    all.extend(["--json", "--no-progress", "--out", out]);
    all.extend(&args[at..]);
    poolbench(&all, env)
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The results a `--json` run printed.
fn results(o: &Output) -> RunResults {
    serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not results JSON ({e}); stderr:\n{}", stderr(o)))
}

/// This build's `libpoolbench_preload.so`, built if it is not fresh.
fn preload_library() -> PathBuf {
    static LIB: OnceLock<PathBuf> = OnceLock::new();
    LIB.get_or_init(|| {
        let dir = Path::new(EXE)
            .parent()
            .expect("target/<profile>")
            .to_path_buf();
        let find = || {
            [
                dir.join("libpoolbench_preload.so"),
                dir.join("deps/libpoolbench_preload.so"),
            ]
            .into_iter()
            .find(|p| p.is_file())
        };
        // Built (or found fresh) by cargo, so a stale library from an
        // earlier build is never the one tested.
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.args(["build", "-q", "-p", "preload"]);
        if !cfg!(debug_assertions) {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("running cargo build -p preload");
        assert!(status.success(), "cargo build -p preload failed");
        find().expect("cargo build -p preload made no libpoolbench_preload.so")
    })
    .clone()
}

/// Whether `program --version` runs; prints why a test is skipped if not.
fn have(program: &str, test: &str) -> bool {
    let ok = Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("SKIPPED {test}: `{program}` not found");
    }
    ok
}

/// A C program that allocates, checks that `malloc` comes from the library
/// in `LD_PRELOAD` (or from libc without one), prints `ops: N` and
/// `threads: $T`, and exits 0; compiled once per test binary. `None`
/// without `cc`.
fn churn_program(test: &str) -> Option<PathBuf> {
    static PROGRAM: OnceLock<Option<PathBuf>> = OnceLock::new();
    if !have("cc", test) {
        return None;
    }
    PROGRAM
        .get_or_init(|| {
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("poolbench-programs");
            std::fs::create_dir_all(&dir).unwrap();
            let src = dir.join("churn.c");
            let exe = dir.join(format!("churn-{}", std::process::id()));
            std::fs::write(&src, CHURN_C).unwrap();
            let ok = Command::new("cc")
                .args(["-O1", "-fno-builtin", "-o"])
                .arg(&exe)
                .arg(&src)
                .arg("-ldl")
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok, "cc failed on {}", src.display());
            Some(exe)
        })
        .clone()
}

const CHURN_C: &str = r#"
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 10000;
    /* Where malloc comes from must be where the subject says. */
    Dl_info info;
    if (!dladdr((void *)malloc, &info) || !info.dli_fname) return 10;
    const char *pre = getenv("LD_PRELOAD");
    char *real = pre ? realpath(pre, NULL) : NULL;
    char *got = realpath(info.dli_fname, NULL);
    if (pre && (!real || !got || strcmp(real, got) != 0)) {
        fprintf(stderr, "malloc from %s, not %s\n", info.dli_fname, pre);
        return 11;
    }
    if (!pre && !strstr(info.dli_fname, "libc.so")) {
        fprintf(stderr, "malloc from %s, not libc\n", info.dli_fname);
        return 12;
    }
    void *slots[256] = {0};
    unsigned long sum = 0;
    for (long i = 0; i < n; i++) {
        int k = (int)((i * 7919) & 255);
        free(slots[k]);
        size_t sz = 16 + (size_t)(i * 31) % 300;
        unsigned char *p = malloc(sz);
        if (!p) return 13;
        memset(p, (int)(i & 0xff), sz);
        sum += p[sz - 1];
        slots[k] = p;
    }
    for (int k = 0; k < 256; k++) free(slots[k]);
    const char *t = getenv("CHURN_THREADS");
    printf("sum %lu\nops: %ld\nthreads: %s\n", sum, n, t ? t : "0");
    return 0;
}
"#;

#[test]
fn so_path_and_preload_names_drive_the_library_on_a_synthetic_cell() {
    let lib = preload_library();
    let so = format!("so:{}", lib.display());
    let o = poolbench_json(
        "so-synthetic",
        &[
            "run",
            "-s",
            &format!("{so},preload:tcache"),
            "-w",
            "larson",
            "--set",
            "ops_per_thread=2000",
            "--set",
            "min_time_ms=0",
            "--set",
            "geometry=modern",
            "--repeat",
            "1",
            "-t",
            "1",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = results(&o);
    let abs = std::fs::canonicalize(&lib).unwrap();
    let cell = |s: &str| r.cells.iter().find(|c| c.subject == s).unwrap();
    let env = &cell(&so).subject_env;
    assert_eq!(Path::new(&env["LD_PRELOAD"]), abs);
    assert!(!env.contains_key("POOLBENCH_ALLOCATOR"), "{env:?}");
    let tcache = cell("preload:tcache");
    assert_eq!(tcache.subject_env["POOLBENCH_ALLOCATOR"], "tcache");
    assert_eq!(tcache.subject_env["POOLBENCH_GEOMETRY"], "modern");
    for c in [cell(&so), tcache] {
        let m = c.metrics().unwrap_or_else(|| panic!("{c:?}"));
        let run = &m.runs[0];
        assert!(run.verification.enabled && run.verification.blocks_checked > 0);
        // Not glibc: no mallinfo counters.
        assert!(
            run.memory.own_counters.is_empty(),
            "{:?}",
            run.memory.own_counters
        );
    }
    // The floor runs in the binary, without the library.
    assert!(cell("null").subject_env.is_empty());
}

#[test]
fn exec_runs_a_c_program_under_system_and_sharded() {
    let Some(prog) = churn_program("exec of a C program") else {
        return;
    };
    preload_library();
    let out = out_dir("exec-c");
    let o = poolbench(
        &[
            "exec",
            "-s",
            "system,sharded",
            "--repeat",
            "2",
            "--json",
            "--no-progress",
            "--out",
            out.to_str().unwrap(),
            "--",
            prog.to_str().unwrap(),
            "20000",
        ],
        &[("LD_PRELOAD", "/nonexistent/ignored.so")],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = results(&o);
    assert_eq!(r.cells.len(), 2);
    for c in &r.cells {
        assert_eq!(c.kind, CellKind::Program);
        assert_eq!(c.workload, prog.file_name().unwrap().to_str().unwrap());
        let m = c.metrics().unwrap_or_else(|| panic!("{c:?}"));
        assert_eq!(m.runs.len(), 2);
        for run in &m.runs {
            assert_eq!((run.ops, run.unit.as_deref()), (1, Some("runs")));
            assert!(run.duration_s > 0.0 && run.memory.peak_rss_bytes > 0);
            // The program's own peak, not poolbench's (which a program
            // spawned straight from it would inherit at exec): this one
            // keeps at most 256 blocks of 316 bytes.
            assert!(
                run.memory.peak_rss_bytes < 8 << 20,
                "{} bytes",
                run.memory.peak_rss_bytes
            );
            let p = run.program.as_ref().expect("program figures");
            assert!(p.minor_faults > 0);
            assert_eq!(p.metric, None);
        }
        assert_eq!(m.metric, None);
        assert_eq!(c.workload_params["command"][1], "20000");
    }
    let sharded = r.cells.iter().find(|c| c.subject == "sharded").unwrap();
    assert_eq!(sharded.subject_env["POOLBENCH_ALLOCATOR"], "sharded");
    assert!(sharded.subject_env["LD_PRELOAD"].ends_with("libpoolbench_preload.so"));
    let system = r.cells.iter().find(|c| c.subject == "system").unwrap();
    assert!(system.subject_env.is_empty(), "{:?}", system.subject_env);
    // The summary has the program's row; report and compare read it.
    let summary = stderr(&o);
    assert!(summary.contains("runs/s"), "{summary}");
    let json = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.extension().is_some_and(|e| e == "json") && p.file_name().unwrap() != "selfcheck.json"
        })
        .unwrap();
    let c = poolbench(
        &[
            "compare",
            json.to_str().unwrap(),
            json.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(c.status.code(), Some(0), "{}", stderr(&c));
    let text = String::from_utf8_lossy(&c.stdout);
    assert!(text.contains("sharded"), "{text}");
}

#[test]
fn exec_metric_and_threads_env_reach_the_results() {
    let Some(prog) = churn_program("exec --metric") else {
        return;
    };
    let out = out_dir("exec-metric");
    let o = poolbench(
        &[
            "exec",
            "-s",
            "system",
            "--repeat",
            "1",
            "--metric",
            r"^threads: ([0-9]+)",
            "--metric-name",
            "threads seen",
            "-t",
            "1,3",
            "--threads-env",
            "CHURN_THREADS",
            "--json",
            "--no-progress",
            "--out",
            out.to_str().unwrap(),
            "--",
            prog.to_str().unwrap(),
            "1000",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = results(&o);
    let seen: Vec<(usize, f64)> = r
        .cells
        .iter()
        .map(|c| (c.threads, c.metrics().unwrap().metric.unwrap().median))
        .collect();
    assert_eq!(seen, [(1, 1.0), (3, 3.0)]);
    let p = r.cells[0].metrics().unwrap().runs[0]
        .program
        .clone()
        .unwrap();
    assert_eq!(p.metric_name.as_deref(), Some("threads seen"));

    // A figure that is not there fails the cell, not the run.
    let o = poolbench_json(
        "exec-metric-missing",
        &[
            "exec",
            "-s",
            "system",
            "--repeat",
            "1",
            "--metric",
            r"^rate: ([0-9]+)",
            "--",
            prog.to_str().unwrap(),
            "1000",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(CELLS_FAILED), "{}", stderr(&o));
    match &results(&o).cells[0].outcome {
        Outcome::Failed(f) => {
            assert_eq!(f.kind, FailureKind::Harness);
            assert!(f.reason.contains("--metric"), "{}", f.reason);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_program_killed_by_a_signal_or_the_timeout_is_a_failed_cell() {
    let out = out_dir("exec-signal");
    let o = poolbench(
        &[
            "exec",
            "-s",
            "system",
            "--repeat",
            "1",
            "--json",
            "--no-progress",
            "--out",
            out.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            "kill -SEGV $$",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(CELLS_FAILED), "{}", stderr(&o));
    match &results(&o).cells[0].outcome {
        Outcome::Failed(f) => {
            assert_eq!((f.kind, f.signal), (FailureKind::Signal, Some(11)), "{f:?}");
            assert!(f.reason.contains("SIGSEGV"), "{}", f.reason);
        }
        other => panic!("{other:?}"),
    }
    let o = poolbench_json(
        "exec-timeout",
        &[
            "exec",
            "-s",
            "system",
            "--repeat",
            "1",
            "--timeout",
            "0.3",
            "--",
            "sh",
            "-c",
            "sleep 60; echo done",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(CELLS_FAILED), "{}", stderr(&o));
    match &results(&o).cells[0].outcome {
        Outcome::Failed(f) => assert_eq!(f.kind, FailureKind::Timeout, "{f:?}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_failing_program_is_a_failed_cell_with_its_status() {
    let out = out_dir("exec-exit");
    let o = poolbench(
        &[
            "exec",
            "-s",
            "system",
            "--repeat",
            "1",
            "--json",
            "--no-progress",
            "--out",
            out.to_str().unwrap(),
            "--",
            "sh",
            "-c",
            "echo giving up >&2; exit 3",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(CELLS_FAILED), "{}", stderr(&o));
    match &results(&o).cells[0].outcome {
        Outcome::Failed(f) => {
            // Status 3 is not a verification failure for a user's program.
            assert_eq!((f.kind, f.exit_code), (FailureKind::Exit, Some(3)));
            assert!(f.reason.contains("giving up"), "{}", f.reason);
        }
        other => panic!("{other:?}"),
    }
}

fn assert_bad_input(args: &[&str], names: &[&str], out: &Path) {
    let o = poolbench(args, &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(BAD_INPUT), "{args:?}: {err}");
    for n in names {
        assert!(err.contains(n), "{args:?}: error should name `{n}`: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        !out.exists(),
        "{args:?}: something ran into {}",
        out.display()
    );
}

#[test]
fn bad_libraries_subjects_and_commands_are_refused_before_anything_runs() {
    let out = out_dir("bad-input");
    let o = out.to_str().unwrap();
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let not_elf = format!("so:{manifest}");
    for (args, names) in [
        (
            vec![
                "exec",
                "-s",
                "so:/nonexistent/libx.so",
                "--out",
                o,
                "--",
                "true",
            ],
            vec!["/nonexistent/libx.so"],
        ),
        (
            vec!["run", "-s", &not_elf, "-w", "larson", "--out", o],
            vec!["not an ELF"],
        ),
        (
            vec!["exec", "-s", "tcmalloc", "--out", o, "--", "true"],
            vec!["`tcmalloc`", "so:PATH"],
        ),
        (
            vec!["run", "-s", "tcmalloc", "-w", "larson", "--out", o],
            vec!["`tcmalloc`", "so:PATH"],
        ),
        (
            vec!["exec", "-s", "preload:tcmalloc", "--out", o, "--", "true"],
            vec!["preload:sharded"],
        ),
        (
            vec!["exec", "-s", "pymalloc", "--out", o, "--", "true"],
            vec!["CPython"],
        ),
        (
            vec!["run", "-s", "pymalloc", "-w", "larson", "--out", o],
            vec!["CPython"],
        ),
        (
            vec!["exec", "-s", "null", "--out", o, "--", "true"],
            vec!["`null`"],
        ),
        (
            vec![
                "exec",
                "-s",
                "system",
                "--out",
                o,
                "--",
                "no-such-command-xyz",
            ],
            vec!["no-such-command-xyz"],
        ),
        (
            vec![
                "exec",
                "-s",
                "system",
                "--metric",
                "rate: [0-9]+",
                "--out",
                o,
                "--",
                "true",
            ],
            vec!["capture group"],
        ),
        (
            vec!["exec", "-s", "system", "-t", "2", "--out", o, "--", "true"],
            vec!["--threads-env"],
        ),
        (
            vec![
                "exec",
                "-s",
                "system",
                "--geometry",
                "huge",
                "--out",
                o,
                "--",
                "true",
            ],
            vec!["`huge`"],
        ),
    ] {
        assert_bad_input(&args, &names, &out);
    }
}

#[test]
fn a_library_without_malloc_is_refused_by_the_probe() {
    if !have("cc", "a library without malloc") {
        return;
    }
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("poolbench-programs");
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("nomalloc.c");
    let lib = dir.join(format!("libnomalloc-{}.so", std::process::id()));
    std::fs::write(&src, "int poolbench_nothing(void) { return 1; }\n").unwrap();
    let ok = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&lib)
        .arg(&src)
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "cc -shared failed");
    let out = out_dir("no-malloc");
    let subject = format!("so:{}", lib.display());
    assert_bad_input(
        &[
            "exec",
            "-s",
            &subject,
            "--out",
            out.to_str().unwrap(),
            "--",
            "true",
        ],
        &["does not define malloc"],
        &out,
    );
}

/// The interpreter behind `python3`, or `None` (with a message).
fn python(test: &str) -> Option<String> {
    if !have("python3", test) {
        return None;
    }
    let o = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .ok()?;
    Some(String::from_utf8_lossy(&o.stdout).trim().to_string())
}

#[test]
fn python_workloads_run_under_pymalloc_and_sharded() {
    let Some(_) = python("python workloads") else {
        return;
    };
    preload_library();
    let o = poolbench_json(
        "python",
        &[
            "run",
            "-s",
            "pymalloc,sharded",
            "-w",
            "py-churn:3000",
            "-w",
            "py-json:200",
            "-w",
            "py-threads:2000",
            "-t",
            "2",
            "--repeat",
            "1",
        ],
        &[("PYTHONMALLOC", "debug")],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = results(&o);
    assert_eq!(r.cells.len(), 6, "{:?}", r.cells);
    for c in &r.cells {
        assert_eq!(c.kind, CellKind::Program);
        // Only the threaded workload takes --threads.
        assert_eq!(c.threads, if c.workload == "py-threads" { 2 } else { 1 });
        let m = c
            .metrics()
            .unwrap_or_else(|| panic!("{}: {:?}", c.key(), c.outcome));
        assert!(m.metric.is_some_and(|e| e.median > 0.0), "{}", c.key());
        // The parent's PYTHONMALLOC never reaches a child.
        match c.subject.as_str() {
            "pymalloc" => assert!(c.subject_env.is_empty(), "{:?}", c.subject_env),
            _ => {
                assert_eq!(c.subject_env["PYTHONMALLOC"], "malloc");
                assert_eq!(c.subject_env["POOLBENCH_ALLOCATOR"], "sharded");
            }
        }
    }
}

#[test]
fn python_workloads_are_skipped_with_a_note_without_python3() {
    let o = poolbench_json(
        "no-python",
        &["run", "-w", "py-churn"],
        &[("PATH", "/nonexistent")],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = results(&o);
    assert!(r.cells.is_empty());
    assert!(
        r.notes
            .iter()
            .any(|n| n.contains("py-churn") && n.contains("python3")),
        "{:?}",
        r.notes
    );
    assert!(stderr(&o).contains("skipped"), "{}", stderr(&o));
}

#[test]
fn a_python_launcher_is_resolved_to_its_interpreter() {
    let Some(real) = python("python launcher") else {
        return;
    };
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("poolbench-programs/shim-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let shim = dir.join("python3");
    std::fs::write(&shim, format!("#!/bin/sh\nexec {real} \"$@\"\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&shim, std::fs::Permissions::from_mode(0o755)).unwrap();
    let o = poolbench_json(
        "python-shim",
        &[
            "exec",
            "-s",
            "pymalloc,system",
            "--repeat",
            "1",
            "--metric",
            r"^n=([0-9]+)",
            "--",
            shim.to_str().unwrap(),
            "-c",
            "import os; print('n=%d' % len(os.environ.get('PYTHONMALLOC', '')))",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r = results(&o);
    for c in &r.cells {
        assert_eq!(c.workload_params["command"][0], real.as_str());
        assert_eq!(c.workload_params["python"], true);
        // pymalloc: no PYTHONMALLOC; system: PYTHONMALLOC=malloc.
        let want = if c.subject == "pymalloc" { 0.0 } else { 6.0 };
        assert_eq!(
            c.metrics().unwrap().metric.unwrap().median,
            want,
            "{}",
            c.subject
        );
    }
}
