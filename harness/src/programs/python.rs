//! The bundled Python workloads: CPython itself as a program workload, run
//! by the system's `python3` under every subject (DESIGN.md §4, kind 3).
//!
//! The scripts (`harness/programs/python/*.py`) are compiled into the
//! binary and given to the interpreter with `-c`, with their size and
//! thread count as arguments. Each times its own work with
//! `time.perf_counter`, prints `poolbench-metric: R ops/s` (its unit of
//! work per second of the timed part, which leaves out the interpreter's
//! start and the check), and checks its own result, exiting with status 3
//! when the check fails (a verification failure of the cell).
//!
//! Under every subject but `pymalloc` the interpreter runs with
//! `PYTHONMALLOC=malloc`, so every object allocation is a `malloc` call
//! and reaches the preloaded library (see `subjects::preload`).
//!
//! Where there is no `python3`, their cells are left out of a run with a
//! note in the results, not failed: CPython is not the harness's to
//! require.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use super::external::{self, Metric, Program};

/// One bundled workload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Script {
    pub name: &'static str,
    pub about: &'static str,
    pub file: &'static str,
    pub source: &'static str,
    /// What the size counts.
    pub size_means: &'static str,
    /// About half a second of work on one thread of a 2020s x86-64 core.
    pub default_size: u64,
    /// Whether it runs `--threads` threads (the others run one).
    pub threaded: bool,
}

impl Script {
    /// The size `--quick` runs: an eighth.
    pub fn quick_size(&self) -> u64 {
        (self.default_size / 8).max(1)
    }
}

/// Threads of a threaded workload when `--threads` is not given: the GIL
/// is contended from two on.
pub const DEFAULT_THREADS: usize = 2;

/// The pattern of the line every script prints.
pub const METRIC: &str = r"^poolbench-metric: ([0-9.eE+-]+) ops/s";

/// Every bundled workload, in listing order.
pub const ALL: &[Script] = &[
    Script {
        name: "py-churn",
        about: "object churn: dicts, tuples, lists and f-strings replacing a window of live records",
        file: "churn.py",
        source: include_str!("../../programs/python/churn.py"),
        size_means: "steps",
        default_size: 500_000,
        threaded: false,
    },
    Script {
        name: "py-dict",
        about: "dict and list heavy: word counts, groups, sorts and comprehensions",
        file: "dicts.py",
        source: include_str!("../../programs/python/dicts.py"),
        size_means: "rounds of 2000 words",
        default_size: 250,
        threaded: false,
    },
    Script {
        name: "py-json",
        about: "a JSON round trip: documents dumped and loaded back in batches, and compared",
        file: "json_rt.py",
        source: include_str!("../../programs/python/json_rt.py"),
        size_means: "documents",
        default_size: 40_000,
        threaded: false,
    },
    Script {
        name: "py-threads",
        about: "object churn on --threads threads contending for the GIL, batches freed by the next thread",
        file: "threads.py",
        source: include_str!("../../programs/python/threads.py"),
        size_means: "steps per thread",
        default_size: 200_000,
        threaded: true,
    },
];

/// The workload called `name`.
pub fn info(name: &str) -> Option<&'static Script> {
    ALL.iter().find(|s| s.name == name)
}

/// The workloads as `poolbench list` shows them.
pub fn listing() -> String {
    let mut out = String::from(
        "Python workloads (CPython as the program, by the system's python3; -w NAME[:SIZE]):\n",
    );
    for s in ALL {
        out.push_str(&format!(
            "  {:<14}{}\n  {:<14}size: {} (default {}){}\n",
            s.name,
            s.about,
            "",
            s.size_means,
            s.default_size,
            if s.threaded {
                ", threads: --threads"
            } else {
                ", one thread"
            }
        ));
    }
    out
}

/// The system's CPython interpreter (`python3` on `PATH`, behind any
/// launcher), or why there is none; asked once per process.
pub fn interpreter() -> Result<PathBuf, String> {
    static FOUND: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            let Some(path) = external::find_executable("python3") else {
                return Err("no python3 on PATH".into());
            };
            let real = external::python_executable(&path)?;
            // It must run a script, not only start.
            let ok = Command::new(&real)
                .args(["-c", "import json, threading"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                Ok(real)
            } else {
                Err(format!(
                    "{} cannot import json and threading",
                    real.display()
                ))
            }
        })
        .clone()
}

/// The program of one cell: `python -c SCRIPT SIZE THREADS`.
pub fn program(s: &Script, python: PathBuf, size: u64, threads: usize, geometry: &str) -> Program {
    let tail = [size.to_string(), threads.to_string()];
    Program {
        name: s.name.to_string(),
        path: python,
        args: ["-c".to_string(), s.source.to_string()]
            .into_iter()
            .chain(tail.clone())
            .collect(),
        shown_args: [s.file.to_string()].into_iter().chain(tail).collect(),
        threads,
        threads_env: None,
        metric: Some(Metric {
            pattern: METRIC.to_string(),
            name: "ops/s".to_string(),
        }),
        python: true,
        checks: true,
        geometry: geometry.to_string(),
        size: Some(size),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_is_consistent() {
        for s in ALL {
            assert_eq!(info(s.name), Some(s));
            assert!(s.source.contains("poolbench-metric: "), "{}", s.name);
            assert!(s.source.contains("sys.exit(3)"), "{}", s.name);
            assert!(listing().contains(s.name));
            assert!(s.quick_size() >= 1 && s.quick_size() < s.default_size);
        }
        assert!(regex::Regex::new(METRIC)
            .unwrap()
            .is_match("poolbench-metric: 1.5e+06 ops/s"));
    }

    #[test]
    fn a_program_records_the_script_by_name() {
        let p = program(&ALL[0], "/usr/bin/python3".into(), 10, 1, "modern");
        assert_eq!(p.args[0], "-c");
        assert_eq!(p.args[2..], ["10", "1"]);
        let params = p.params();
        assert_eq!(params["command"][1], "churn.py");
        assert_eq!(params["size"], 10);
        assert!(!params.to_string().contains("perf_counter"));
    }
}
