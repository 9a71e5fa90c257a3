//! End-to-end tests of the `poolbench` binary: bad input and its exit code,
//! crashing / hanging cells kept apart from the others, the results file.
//!
//! Cells are made tiny with `--set ops_per_thread=...`; no assertion
//! involves timing.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use harness::results::{FailureKind, Outcome, RunResults};

const EXE: &str = env!("CARGO_BIN_EXE_poolbench");
const BAD_INPUT: i32 = 2;
const CELLS_FAILED: i32 = 4;
const REGRESSION: i32 = 5;
const PRESET: &str = "larson";
const TINY: &str = "ops_per_thread=2000";

/// A fresh output directory for one test.
fn out_dir(test: &str) -> PathBuf {
    let d = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("poolbench-cli")
        .join(test);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn poolbench(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(EXE);
    c.args(args).env_remove("POOLBENCH_CRASH");
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `system,null` × the preset with `--json`; returns the exit code
/// and the results printed on stdout.
fn run_two(test: &str, extra: &[&str], env: &[(&str, &str)]) -> (i32, RunResults, PathBuf) {
    let out = out_dir(test);
    let mut args = vec![
        "run",
        "--subjects",
        "system,null",
        "--workload",
        PRESET,
        "--set",
        TINY,
        "--set",
        "min_time_ms=0",
        "--repeat",
        "1",
        "--threads",
        "1",
        "--json",
        "--no-progress",
        "--out",
    ];
    args.push(out.to_str().unwrap());
    args.extend_from_slice(extra);
    let o = poolbench(&args, env);
    let results: RunResults = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|e| panic!("stdout is not results JSON ({e}); stderr:\n{}", stderr(&o)));
    (o.status.code().unwrap(), results, out)
}

fn assert_bad_input(args: &[&str], names: &[&str]) {
    let o = poolbench(args, &[]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(BAD_INPUT), "{args:?}: {err}");
    for n in names {
        assert!(err.contains(n), "{args:?}: error should name `{n}`: {err}");
    }
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn unknown_subject_is_named_with_the_accepted_ones() {
    assert_bad_input(
        &["run", "-s", "glibc", "-w", PRESET],
        &["glibc", "jemalloc", "sharded", "null"],
    );
}

#[test]
fn unknown_preset_is_named_with_the_accepted_ones() {
    assert_bad_input(
        &["run", "-s", "system", "-w", "nosuchpreset"],
        &["nosuchpreset", PRESET],
    );
}

#[test]
fn malformed_or_unknown_set_and_sweep_are_named() {
    assert_bad_input(
        &[
            "run",
            "-s",
            "system",
            "-w",
            PRESET,
            "--set",
            "ops_per_thread",
        ],
        &["ops_per_thread", "FIELD=VALUE"],
    );
    assert_bad_input(
        &[
            "run",
            "-s",
            "system",
            "-w",
            PRESET,
            "--set",
            "nosuchfield=3",
        ],
        &["nosuchfield"],
    );
    assert_bad_input(
        &["run", "-s", "system", "-w", PRESET, "--sweep", "seed"],
        &["seed", "FIELD=V1,V2"],
    );
    assert_bad_input(
        &["run", "-s", "system", "-w", PRESET, "--timeout", "0"],
        &["--timeout"],
    );
    assert_bad_input(
        &["run", "-s", "system", "-w", PRESET, "--timeout", "1e30"],
        &["--timeout"],
    );
}

#[test]
fn unreadable_workload_file_is_named() {
    assert_bad_input(
        &["run", "-s", "system", "-w", "/nonexistent/dir/w.toml"],
        &["/nonexistent/dir/w.toml"],
    );
}

#[test]
fn malformed_flags_use_the_bad_input_code() {
    assert_bad_input(
        &["run", "-s", "system", "-w", PRESET, "--threads", "two"],
        &["--threads", "two"],
    );
    assert_bad_input(&["run", "--no-such-flag"], &["--no-such-flag"]);
    assert_bad_input(
        &["report", "/nonexistent/results.json"],
        &["/nonexistent/results.json"],
    );
}

#[test]
fn help_documents_the_exit_codes() {
    let o = poolbench(&["run", "--help"], &[]);
    assert!(o.status.success());
    let help = String::from_utf8_lossy(&o.stdout);
    assert!(
        help.contains("Exit codes") && help.contains("bad input") && help.contains("cells"),
        "{help}"
    );
}

#[test]
fn list_names_subjects_presets_and_fields() {
    let o = poolbench(&["list"], &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    for name in harness::subjects::NAMES {
        assert!(text.contains(name), "{name} missing:\n{text}");
    }
    assert!(
        text.contains(PRESET) && text.contains("ops_per_thread"),
        "{text}"
    );
}

#[test]
fn end_to_end_two_subjects_write_a_results_file_that_round_trips() {
    let (code, printed, out) = run_two("e2e", &[], &[]);
    assert_eq!(code, 0, "{printed:#?}");
    let subjects: Vec<&str> = printed.cells.iter().map(|c| c.subject.as_str()).collect();
    assert_eq!(subjects, ["system", "null"]);
    for c in &printed.cells {
        let m = c
            .metrics()
            .unwrap_or_else(|| panic!("{} failed: {:?}", c.key(), c.outcome));
        assert!(
            m.runs[0].ops > 0 && m.ops_per_sec.median > 0.0,
            "{}",
            c.key()
        );
        assert_eq!((c.workload.as_str(), c.threads), (PRESET, 1));
        assert_eq!(c.workload_params["ops_per_thread"].as_u64(), Some(2000));
    }
    assert!(!printed.environment.rustc.is_empty());
    assert!(!printed.clock.source.is_empty() && printed.clock.ns_per_tick > 0.0);
    assert!(printed.started_at.ends_with('Z') && printed.finished_at.ends_with('Z'));

    // The saved file is the printed one, and survives a save/load cycle.
    let files: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let loaded = RunResults::load(&files[0]).unwrap();
    assert_eq!(loaded, printed);
    let again = out.join("again.json");
    loaded.save(&again).unwrap();
    assert_eq!(RunResults::load(&again).unwrap(), printed);

    // compare: a halved throughput is flagged, and with
    // --fail-on-regression that is exit code 5; a run against itself is not.
    let mut slower = loaded.clone();
    for c in &mut slower.cells {
        if let Outcome::Ok(m) = &mut c.outcome {
            for r in &mut m.runs {
                r.ops_per_sec /= 2.0;
            }
            m.ops_per_sec = harness::stats::estimate(&m.rates());
        }
    }
    let slower_path = out.join("slower.json");
    slower.save(&slower_path).unwrap();
    let (base, slow, dir) = (
        files[0].to_str().unwrap(),
        slower_path.to_str().unwrap(),
        out.to_str().unwrap(),
    );
    let o = poolbench(
        &["compare", base, slow, "--fail-on-regression", "--out", dir],
        &[],
    );
    assert_eq!(o.status.code(), Some(REGRESSION), "{}", stderr(&o));
    let o = poolbench(
        &["compare", base, base, "--fail-on-regression", "--out", dir],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = poolbench(
        &["compare", base, slow, "--threshold", "-1", "--out", dir],
        &[],
    );
    assert_eq!(o.status.code(), Some(BAD_INPUT), "{}", stderr(&o));

    // The report subcommand reads it back.
    let o = poolbench(
        &[
            "report",
            files[0].to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

fn assert_crash_kept_apart(test: &str, mode: &str, signal: i32, name: &str) {
    let (code, r, _) = run_two(test, &[], &[("POOLBENCH_CRASH", &format!("null:{mode}"))]);
    assert_eq!(code, CELLS_FAILED);
    assert_eq!(r.cells.len(), 2);
    assert!(
        r.cells[0].metrics().is_some(),
        "system must keep its result: {:?}",
        r.cells[0].outcome
    );
    let Outcome::Failed(f) = &r.cells[1].outcome else {
        panic!("null should have failed")
    };
    assert_eq!(f.kind, FailureKind::Signal);
    assert_eq!(f.signal, Some(signal));
    assert!(f.reason.contains(name), "{}", f.reason);
    assert!(
        f.stderr_tail.contains("failing on purpose"),
        "{}",
        f.stderr_tail
    );
}

#[test]
fn aborting_cell_is_reported_and_the_others_kept() {
    assert_crash_kept_apart("abort", "abort", libc::SIGABRT, "SIGABRT");
}

#[test]
fn segfaulting_cell_is_reported_and_the_others_kept() {
    assert_crash_kept_apart("segv", "segv", libc::SIGSEGV, "SIGSEGV");
}

#[test]
fn hanging_cell_is_killed_at_the_timeout() {
    let (code, r, _) = run_two(
        "hang",
        &["--timeout", "1"],
        &[("POOLBENCH_CRASH", "null:hang")],
    );
    assert_eq!(code, CELLS_FAILED);
    assert!(r.cells[0].metrics().is_some());
    let Outcome::Failed(f) = &r.cells[1].outcome else {
        panic!("null should have timed out")
    };
    assert_eq!(f.kind, FailureKind::Timeout);
    assert_eq!(f.signal, Some(libc::SIGKILL));
}

#[test]
fn failing_exit_and_unreadable_report_are_classified() {
    let (code, r, _) = run_two("exit", &[], &[("POOLBENCH_CRASH", "null:exit")]);
    assert_eq!(code, CELLS_FAILED);
    let Outcome::Failed(f) = &r.cells[1].outcome else {
        panic!()
    };
    assert_eq!((f.kind, f.exit_code), (FailureKind::Exit, Some(7)));

    let (_, r, _) = run_two("garbage", &[], &[("POOLBENCH_CRASH", "null:garbage")]);
    let Outcome::Failed(f) = &r.cells[1].outcome else {
        panic!()
    };
    assert_eq!(f.kind, FailureKind::Harness);
    assert!(r.cells[0].metrics().is_some());
}

#[test]
fn hidden_cell_subcommand_crashes_for_real() {
    let o = poolbench(
        &[
            "cell",
            "--subject",
            "null",
            "--workload-json",
            "{}",
            "--crash",
            "segv",
        ],
        &[],
    );
    assert_eq!(o.status.signal(), Some(libc::SIGSEGV));
    let o = poolbench(
        &[
            "cell",
            "--subject",
            "null",
            "--workload-json",
            "{}",
            "--crash",
            "abort",
        ],
        &[],
    );
    assert_eq!(o.status.signal(), Some(libc::SIGABRT));
    // Without a crash request, a malformed workload is bad input, not a crash.
    let bad = r#"{"threads": "many"}"#;
    let o = poolbench(&["cell", "--subject", "null", "--workload-json", bad], &[]);
    assert_eq!(o.status.code(), Some(BAD_INPUT), "{}", stderr(&o));
}

#[test]
fn interrupt_stops_the_run_and_keeps_finished_cells() {
    use std::io::{BufRead, BufReader};

    let out = out_dir("interrupt");
    let mut child = Command::new(EXE)
        .args([
            "run",
            "--subjects",
            "system,null",
            "--workload",
            PRESET,
            "--set",
            TINY,
            "--set",
            "min_time_ms=0",
            "--repeat",
            "1",
            "--threads",
            "1",
            "--timeout",
            "600",
            "--out",
        ])
        .arg(&out)
        .env("POOLBENCH_CRASH", "null:hang")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // With stderr not a terminal, each finished cell prints one line; the
    // first one means the handler is installed and `null` (which hangs) is
    // running next.
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(
        first.contains("larson/system/t1") && first.contains(": ok"),
        "{first}"
    );
    // SAFETY: kill(2) on our own child's pid, which is not yet reaped.
    assert_eq!(unsafe { libc::kill(child.id() as i32, libc::SIGINT) }, 0);
    let rest: Vec<String> = lines.map(|l| l.unwrap()).collect();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{rest:?}");
    assert!(
        rest.iter().any(|l| l.contains("interrupted: 1 of 2 cells")),
        "{rest:?}"
    );

    let saved: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    let r = RunResults::load(&saved[0]).unwrap();
    assert_eq!(r.cells.len(), 1);
    assert_eq!(r.cells[0].subject, "system");
    assert!(r.cells[0].metrics().is_some());
}

#[test]
fn an_unwritable_out_dir_is_refused_before_anything_runs() {
    let o = poolbench(
        &[
            "run",
            "-s",
            "system",
            "-w",
            PRESET,
            "--out",
            "/proc/poolbench-cannot-write",
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(BAD_INPUT), "{}", stderr(&o));
    assert!(stderr(&o).contains("nothing was run"), "{}", stderr(&o));
    // No cell ran: no table, and nothing on stderr but the error.
    assert!(o.stdout.is_empty());
    assert_eq!(stderr(&o).trim().lines().count(), 1, "{}", stderr(&o));
}

#[test]
fn duration_ms_works_from_set_and_sweep() {
    for how in [
        vec!["--set", "duration_ms=20"],
        vec!["--sweep", "duration_ms=15,25"],
    ] {
        let out = out_dir(&format!("duration-{}", how[0].trim_start_matches('-')));
        let mut args = vec![
            "run",
            "-s",
            "null",
            "-w",
            "xmalloc",
            "-t",
            "1",
            "--repeat",
            "1",
            "--json",
            "--no-progress",
            "--out",
        ];
        args.push(out.to_str().unwrap());
        args.extend(&how);
        let o = poolbench(&args, &[]);
        assert_eq!(o.status.code(), Some(0), "{how:?}: {}", stderr(&o));
        let r: RunResults = serde_json::from_slice(&o.stdout).unwrap();
        assert!(!r.cells.is_empty());
        for c in &r.cells {
            let m = c
                .metrics()
                .unwrap_or_else(|| panic!("{how:?}: {:?}", c.outcome));
            assert!(c.workload_params["ops_per_thread"].is_null(), "{how:?}");
            assert!(c.workload_params["duration_ms"].as_u64().is_some());
            assert!(m.runs[0].ops_per_thread > 0);
        }
    }
}

#[test]
fn an_application_runs_like_a_preset_and_gets_no_floor() {
    let out = out_dir("app");
    let o = poolbench(
        &[
            "run",
            "-s",
            "system,sharded",
            "-w",
            "json:200",
            "-t",
            "1,2",
            "--repeat",
            "1",
            "--json",
            "--no-progress",
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let r: RunResults = serde_json::from_slice(&o.stdout).unwrap();
    let keys: Vec<String> = r.cells.iter().map(|c| c.key()).collect();
    assert_eq!(
        keys,
        [
            "json/system/t1",
            "json/sharded/t1",
            "json/system/t2",
            "json/sharded/t2"
        ]
    );
    assert!(r.floors.is_empty());
    for c in &r.cells {
        assert_eq!(c.kind, harness::results::CellKind::App);
        let run = &c.metrics().unwrap().runs[0];
        assert_eq!(run.unit.as_deref(), Some("documents"));
        assert!(run.ops > 0 && run.checksum.is_some());
    }
    // null cannot serve a whole process: asked by name, refused up front.
    let o = poolbench(&["run", "-s", "null", "-w", "json"], &[]);
    assert_eq!(o.status.code(), Some(BAD_INPUT), "{}", stderr(&o));
}
