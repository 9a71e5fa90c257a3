//! The application programs through the real binary, with each subject as
//! the process's global allocator (`POOLBENCH_GLOBAL`): every program
//! passes its check with 1 and 2 threads under every subject, with the
//! same checksum as in this (system-allocated) test process; the
//! corrupting test subject is caught by every program's check; bad names
//! stop the process before anything runs. Sizes are small (debug mode);
//! nothing here involves timing.

use std::process::{Command, Output};

use harness::programs::apps;
use harness::results::RunMetrics;
use harness::subjects::global as switch;

const EXE: &str = env!("CARGO_BIN_EXE_poolbench");
const VERIFICATION: i32 = 3;
const BAD_INPUT: i32 = 2;

/// Sizes that run in well under a second each in debug mode.
fn small(app: &str) -> u64 {
    match app {
        "binary-trees" => 8,
        "word-count" => 20_000,
        "string-sort" => 5_000,
        "json" => 200,
        _ => 10, // an unknown program: refused before its size matters
    }
}

fn app_cell(subject: Option<&str>, app: &str, threads: usize, env: &[(&str, &str)]) -> Output {
    let mut c = Command::new(EXE);
    c.args(["app-cell", "--app", app, "--size"])
        .arg(small(app).to_string())
        .arg("--threads")
        .arg(threads.to_string())
        .env_remove(switch::SUBJECT_ENV)
        .env_remove(switch::GEOMETRY_ENV);
    if let Some(s) = subject {
        c.env(switch::SUBJECT_ENV, s);
    }
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn report(o: &Output, what: &str) -> RunMetrics {
    assert!(o.status.success(), "{what}: {:?}\n{}", o.status, stderr(o));
    let line = String::from_utf8_lossy(&o.stdout);
    serde_json::from_str(line.trim()).unwrap_or_else(|e| panic!("{what}: {e}: {line}"))
}

/// Every program × 1 and 2 threads under `subject`.
fn every_program_under(subject: &str) {
    for app in apps::ALL {
        let reference = apps::run(app.name, small(app.name), 1).unwrap();
        for threads in [1, 2] {
            let what = format!("{} under {subject} with {threads} threads", app.name);
            let r = report(&app_cell(Some(subject), app.name, threads, &[]), &what);
            assert_eq!(r.unit.as_deref(), Some(app.unit), "{what}");
            assert_eq!(r.ops, reference.units, "{what}");
            assert_eq!(r.checksum, Some(reference.checksum), "{what}");
            let (from, to) = r.measured_span_s.expect("measured span");
            assert!(r.duration_s > 0.0 && from <= to, "{what}");
            let m = &r.memory;
            assert!(m.peak_rss_bytes >= m.rss_baseline_bytes && !m.rss_timeline.is_empty());
            let ours = matches!(subject, "gil" | "locked" | "tcache" | "sharded");
            if ours {
                let peak = m.accounting_at_peak.as_ref().expect("accounting at peak");
                assert!(peak.requested_live > 0 && peak.mapped > 0, "{what}");
                // Classic geometry: 256 KiB arenas.
                assert_eq!(peak.mapped / peak.arenas_current, 256 << 10, "{what}");
                assert!(m.accounting_at_end.is_some(), "{what}");
            } else {
                assert!(m.accounting_at_peak.is_none(), "{what}");
                assert!(!m.own_counters.is_empty(), "{what}");
            }
            match (&r.gil, subject) {
                (Some(g), "gil") => assert!(g.acquisitions > 0, "{what}"),
                (None, "gil") => panic!("{what}: no GIL counters"),
                (g, _) => assert!(g.is_none(), "{what}"),
            }
        }
    }
}

macro_rules! subject_tests {
    ($($test:ident: $name:literal),* $(,)?) => {$(
        #[test]
        fn $test() {
            every_program_under($name);
        }
    )*};
}

subject_tests! {
    programs_under_gil: "gil",
    programs_under_locked: "locked",
    programs_under_tcache: "tcache",
    programs_under_sharded: "sharded",
    programs_under_system: "system",
    programs_under_mimalloc: "mimalloc",
    programs_under_jemalloc: "jemalloc",
    programs_under_snmalloc: "snmalloc",
}

#[test]
fn the_tests_cover_every_subject() {
    let covered = [
        "gil", "locked", "tcache", "sharded", "system", "mimalloc", "jemalloc", "snmalloc",
    ];
    assert_eq!(switch::NAMES, covered);
}

#[test]
fn corrupt_subject_fails_every_program_through_its_check() {
    for app in apps::ALL {
        for threads in [1, 2] {
            let o = app_cell(Some("corrupt"), app.name, threads, &[]);
            let err = stderr(&o);
            assert_eq!(
                o.status.code(),
                Some(VERIFICATION),
                "{} with {threads} threads: {:?}\n{err}",
                app.name,
                o.status
            );
            let check = format!("{}: result check failed: ", app.name);
            assert!(err.contains(&check), "{err}");
            assert!(o.stdout.is_empty(), "no report for a failed check");
        }
    }
}

#[test]
fn unset_means_system_and_geometry_is_chosen_by_name() {
    // Unset: glibc serves the process (its own counters are mallinfo's).
    let r = report(&app_cell(None, "json", 1, &[]), "unset");
    assert!(r.memory.accounting_at_peak.is_none());
    assert!(
        r.memory.own_counters.contains_key("arena"),
        "{:?}",
        r.memory.own_counters
    );
    // Modern geometry: 1 MiB arenas.
    let env = [(switch::GEOMETRY_ENV, "modern")];
    let r = report(&app_cell(Some("sharded"), "json", 2, &env), "modern");
    let peak = r
        .memory
        .accounting_at_peak
        .expect("sharded reports accounting");
    assert_eq!(peak.mapped / peak.arenas_current, 1 << 20);
}

#[test]
fn bad_names_stop_the_process_before_anything_runs() {
    let o = app_cell(Some("tcmalloc"), "json", 1, &[]);
    assert_eq!(o.status.code(), Some(BAD_INPUT));
    let err = stderr(&o);
    assert!(
        err.contains("POOLBENCH_GLOBAL=`tcmalloc`") && err.contains("sharded, system, mimalloc"),
        "{err}"
    );
    assert!(o.stdout.is_empty());
    // `null` serves no whole process (its ring reuses live memory).
    let o = app_cell(Some("null"), "json", 1, &[]);
    assert_eq!(o.status.code(), Some(BAD_INPUT), "{}", stderr(&o));
    let o = app_cell(Some("gil"), "json", 1, &[(switch::GEOMETRY_ENV, "huge")]);
    assert_eq!(o.status.code(), Some(BAD_INPUT));
    assert!(stderr(&o).contains("POOLBENCH_GEOMETRY=`huge`"));
    let o = app_cell(Some("system"), "quicksort", 1, &[]);
    assert_eq!(o.status.code(), Some(BAD_INPUT));
    assert!(stderr(&o).contains("unknown application `quicksort`"));
}

#[test]
fn other_commands_are_unchanged_by_the_switch() {
    let o = Command::new(EXE)
        .arg("list")
        .env_remove(switch::SUBJECT_ENV)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    // The whole binary can run on a subject, not only the app cell.
    let o = Command::new(EXE)
        .arg("list")
        .env(switch::SUBJECT_ENV, "sharded")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("larson"));
}
