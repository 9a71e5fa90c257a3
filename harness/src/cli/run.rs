//! `run`, `suite` and `stress`: expand the request, run every cell in its
//! own child processes, and record the run.
//!
//! Before anything runs, the whole request is checked — every cell's
//! workload, the subjects, and the output directory (created and written
//! to) — so bad input costs nothing and loses nothing.
//!
//! Cells run one at a time (concurrent cells would measure each other).
//! Each cell runs `--repeat` times, each time in a fresh child, and the
//! repeats are interleaved: repeat 1 of every cell, then repeat 2 of every
//! cell, ..., so slow drift of the machine spreads over all subjects
//! instead of favouring whichever ran first. A cell that fails once is a
//! failed cell; its later repeats are skipped. Unless `--no-floor`, every
//! configuration also runs the `null` subject, whose time per operation is
//! the harness's own: the floor every figure is judged against.
//!
//! The results file `poolbench-<UTC timestamp>.json` is rewritten (through
//! a temporary file and a rename) after every repeat round and at least
//! every [`SAVE_EVERY`], marked `partial` until the run ends, so a crash or
//! an interrupt keeps every finished repeat. Then the HTML report is
//! written next to it and the summary printed — on stdout, or on stderr
//! with `--json`, which keeps stdout for the results JSON alone. Ctrl-C
//! (or SIGTERM) stops the run: the running child is killed and left out.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::{Context, Result};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::cli::cell::ChildOptions;
use crate::cli::out::{check_out_dir, file_stamp, rfc3339, unused_path};
use crate::cli::repeats::{self, FLOOR_SUBJECT};
use crate::cli::sweep::{CellSpec, Request, Work};
use crate::cli::{BadInput, RunArgs, EXIT_CELLS_FAILED, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK};
use crate::results::{Cell, CellKind, Failure, Outcome, RunMetrics, RunResults, SCHEMA_VERSION};

/// Thread counts of the default suite.
pub const SUITE_THREADS: &[usize] = &[1, 2];
/// The results file is rewritten at least this often during a run.
pub const SAVE_EVERY: Duration = Duration::from_secs(20);

/// How to run the cells of a run.
#[derive(Clone, Debug)]
pub struct RunOptions {
    pub repeat: u32,
    pub timeout: Duration,
    /// Show progress bars (when stderr is a terminal).
    pub progress: bool,
    /// The binary to re-exec for each cell.
    pub exe: PathBuf,
    pub child: ChildOptions,
    /// What the run leaves out and why, for the results.
    pub notes: Vec<String>,
}

/// What a finished run left behind.
#[derive(Debug)]
pub struct RunRecord {
    pub results: RunResults,
    pub json_path: PathBuf,
    /// Stopped early by SIGINT/SIGTERM; `results` holds what finished.
    pub interrupted: bool,
}

/// The floor cells a request lacks: `null` at every configuration of a
/// synthetic workload.
fn with_floor(mut cells: Vec<CellSpec>) -> Vec<CellSpec> {
    let mut have: BTreeMap<String, bool> = BTreeMap::new();
    let mut order: Vec<CellSpec> = Vec::new();
    for c in cells
        .iter()
        .filter(|c| matches!(c.work, Work::Synthetic(_)))
    {
        let key = c.config_key();
        let is_floor = c.subject == FLOOR_SUBJECT;
        let e = have.entry(key).or_insert_with(|| {
            order.push(c.clone());
            false
        });
        *e |= is_floor;
    }
    for c in order {
        if have.get(&c.config_key()) == Some(&false) {
            cells.push(CellSpec {
                subject: FLOOR_SUBJECT.to_string(),
                subject_env: BTreeMap::new(),
                ..c
            });
        }
    }
    cells
}

/// The `run`, `suite` (default suite) and `stress` subcommands; returns
/// the process exit code.
pub fn run_command(args: &RunArgs, suite: bool, stress: bool) -> Result<u8> {
    let mut req = Request {
        subjects: args.subjects.clone(),
        workloads: args.workloads.clone(),
        threads: args.threads.clone(),
        sets: args.sets.clone(),
        sweeps: args.sweeps.clone(),
        quick: args.quick,
    };
    if suite {
        if req.workloads.is_empty() {
            req.workloads = crate::cli::sweep::preset_names()
                .iter()
                .map(|s| s.to_string())
                .collect();
        }
        let threads_swept = req.sweeps.iter().any(|s| {
            s.split_once('=')
                .is_some_and(|(f, _)| f.trim() == "threads")
        });
        if req.threads.is_empty() && !threads_swept {
            req.threads = SUITE_THREADS.to_vec();
        }
    }
    let timeout = parse_timeout(args.timeout)?;
    let (mut cells, notes) = crate::cli::sweep::expand_noting(&req)?;
    if !args.no_floor && !stress {
        cells = with_floor(cells);
    }
    let exe =
        std::env::current_exe().context("cannot find the poolbench executable to run cells")?;
    probe_libraries(&exe, &cells)?;
    check_out_dir(&args.out)?;
    for n in &notes {
        eprintln!("poolbench: {n}");
    }
    let opts = RunOptions {
        repeat: if stress { 1 } else { args.repeat },
        timeout,
        progress: !args.no_progress,
        exe,
        child: ChildOptions {
            stress,
            pin: args.pin,
        },
        notes,
    };
    // Lossy: a non-UTF-8 argument (a path) must not abort the run.
    let command: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let record = execute(&cells, &opts, command, &args.out)?;
    conclude(&record, cells.len(), args.json, &args.out)
}

/// `--timeout` as a duration (seconds > 0).
pub fn parse_timeout(secs: f64) -> Result<Duration, BadInput> {
    Duration::try_from_secs_f64(secs)
        .ok()
        .filter(|t| !t.is_zero())
        .ok_or_else(|| {
            BadInput::new(format!(
                "--timeout: `{secs}` is not valid (accepted: seconds > 0)"
            ))
        })
}

/// Checks every distinct library the cells preload, once, before anything
/// runs (`subjects::preload::probe`).
pub fn probe_libraries(exe: &Path, cells: &[CellSpec]) -> Result<(), BadInput> {
    let mut seen = std::collections::BTreeSet::new();
    for c in cells {
        if c.subject_env
            .contains_key(crate::subjects::preload::LD_PRELOAD)
            && seen.insert(c.subject_env.clone())
        {
            crate::subjects::preload::probe(exe, &c.subject, &c.subject_env)?;
        }
    }
    Ok(())
}

/// What every run ends with: the results on stdout with `--json`, the
/// summary, the HTML report, and the exit code.
pub fn conclude(record: &RunRecord, total: usize, json: bool, out: &Path) -> Result<u8> {
    let results = &record.results;
    // Human output goes to stderr when stdout carries the JSON.
    let human = |s: &str| {
        if json {
            eprint!("{s}");
        } else {
            print!("{s}");
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(results)?);
    }
    human(&format!("\n{}", crate::report::summary::render(results)));
    human(&format!("results: {}\n", record.json_path.display()));
    let mut code = if results.cells.iter().all(|c| c.metrics().is_some()) {
        EXIT_OK
    } else {
        EXIT_CELLS_FAILED
    };
    match crate::report::write_report(results, out) {
        Ok(path) => human(&format!("report: {}\n", path.display())),
        Err(e) => {
            eprintln!("poolbench: error: cannot write the report: {e:#}");
            code = code.max(EXIT_ERROR);
        }
    }
    if record.interrupted {
        eprintln!(
            "poolbench: interrupted: {} of {} cells have results; they are saved",
            results.cells.len(),
            total
        );
        code = EXIT_INTERRUPTED;
    }
    Ok(code)
}

/// A cell while its repeats run.
struct Pending {
    runs: Vec<RunMetrics>,
    failed: Option<Failure>,
}

/// The results as they stand: every cell with at least one repeat or a
/// failure, repeats merged, floors attached.
fn assemble(cells: &[CellSpec], pending: &[Pending], head: &RunResults) -> Result<RunResults> {
    let mut results = head.clone();
    results.finished_at = rfc3339(SystemTime::now());
    for (spec, p) in cells.iter().zip(pending) {
        let outcome = match (&p.failed, p.runs.is_empty()) {
            (Some(f), _) => Outcome::Failed(f.clone()),
            (None, true) => continue,
            (None, false) => Outcome::Ok(Box::new(repeats::merge(p.runs.clone(), spec.threads()))),
        };
        results.cells.push(Cell {
            subject: spec.subject.clone(),
            kind: match spec.work {
                Work::Synthetic(_) => CellKind::Synthetic,
                Work::App { .. } => CellKind::App,
                Work::Program(_) => CellKind::Program,
            },
            workload: spec.work.name().to_string(),
            threads: spec.threads(),
            sweep: spec.sweep.clone(),
            workload_params: spec.work.params(),
            subject_env: spec.subject_env.clone(),
            outcome,
        });
    }
    repeats::attach_floors(&mut results);
    Ok(results)
}

/// Runs the cells (repeats interleaved) and saves the results under
/// `out_dir` as they come.
pub fn execute(
    cells: &[CellSpec],
    opts: &RunOptions,
    command: Vec<String>,
    out_dir: &Path,
) -> Result<RunRecord> {
    let started = SystemTime::now();
    install_interrupt_handler();
    let mut environment = crate::measure::env::capture();
    environment.pinned = opts.child.pin;
    environment.selfcheck = crate::cli::selfcheck::cached(out_dir);
    // The children calibrate their own clock per cell (same source and
    // machine); this reading records which clock and what it costs.
    let clock = crate::measure::clock::Clock::calibrate().info();
    let head = RunResults {
        schema_version: SCHEMA_VERSION,
        poolbench_version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: rfc3339(started),
        finished_at: rfc3339(started),
        command,
        repeats: opts.repeat,
        environment,
        clock,
        floors: Vec::new(),
        cells: Vec::new(),
        partial: true,
        notes: opts.notes.clone(),
    };
    let json_path = unused_path(
        out_dir,
        &format!("poolbench-{}", file_stamp(started)),
        "json",
    );

    let tty = std::io::stderr().is_terminal();
    let bars = opts.progress && tty;
    let plain_lines = opts.progress && !tty;
    let multi = MultiProgress::with_draw_target(if bars {
        ProgressDrawTarget::stderr()
    } else {
        ProgressDrawTarget::hidden()
    });
    let total = cells.len() as u64 * u64::from(opts.repeat);
    let overall = multi.add(ProgressBar::new(total));
    overall.set_style(style(
        "{prefix:.bold} [{bar:30}] {pos}/{len} cell runs  {elapsed_precise} (eta {eta})",
    ));
    overall.set_prefix("poolbench");

    let mut pending: Vec<Pending> = cells
        .iter()
        .map(|_| Pending {
            runs: Vec::new(),
            failed: None,
        })
        .collect();
    let mut last_save = Instant::now();
    'rounds: for r in 0..opts.repeat {
        for (i, spec) in cells.iter().enumerate() {
            if pending[i].failed.is_some() {
                overall.inc(1);
                continue;
            }
            let label = format!(
                "[{}/{}] {} (repeat {}/{})",
                i + 1,
                cells.len(),
                spec.key(),
                r + 1,
                opts.repeat
            );
            let spinner = multi.insert_before(&overall, ProgressBar::new_spinner());
            spinner.set_style(style("{spinner} {msg} {elapsed}"));
            spinner.set_message(label.clone());
            if bars {
                spinner.enable_steady_tick(Duration::from_millis(120));
            }
            let result = run_cell(opts, spec);
            spinner.finish_and_clear();
            multi.remove(&spinner);
            if INTERRUPTED.load(Ordering::Relaxed) {
                // Cut short by the interrupt, not failed on its own.
                break 'rounds;
            }
            let line = match &result {
                Ok(m) if m.program.is_some() => {
                    let figure = m
                        .program
                        .as_ref()
                        .and_then(|p| Some(format!(", {} {}", p.metric?, p.metric_name.as_ref()?)))
                        .unwrap_or_default();
                    format!("{label}: ok, {:.3} s{figure}", m.duration_s)
                }
                Ok(m) => format!("{label}: ok, {:.2} Mops/s", m.ops_per_sec / 1e6),
                Err(f) => format!("{label}: FAILED: {}", f.reason),
            };
            if bars {
                let _ = multi.println(&line);
            } else if plain_lines {
                eprintln!("{line}");
            }
            match result {
                Ok(m) => pending[i].runs.push(m),
                Err(mut f) => {
                    if opts.repeat > 1 {
                        f.reason = format!("repeat {} of {}: {}", r + 1, opts.repeat, f.reason);
                    }
                    pending[i].failed = Some(f);
                }
            }
            overall.inc(1);
            if last_save.elapsed() >= SAVE_EVERY {
                assemble(cells, &pending, &head)?.save(&json_path)?;
                last_save = Instant::now();
            }
        }
        assemble(cells, &pending, &head)?.save(&json_path)?;
        last_save = Instant::now();
    }
    overall.finish_and_clear();

    let mut results = assemble(cells, &pending, &head)?;
    results.partial = false;
    results.save(&json_path)?;
    let interrupted = INTERRUPTED.load(Ordering::Relaxed);
    Ok(RunRecord {
        results,
        json_path,
        interrupted,
    })
}

/// Set by SIGINT or SIGTERM during a run: the running cell is killed, no
/// further cell starts, and the cells that finished are saved.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_signal: libc::c_int) {
    // Only an atomic store: async-signal-safe.
    INTERRUPTED.store(true, Ordering::Relaxed);
}

/// Routes SIGINT and SIGTERM to [`INTERRUPTED`] instead of killing the
/// process. Children get the default actions back when they exec.
fn install_interrupt_handler() {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: `sigaction` is given a zeroed, then initialised struct
        // that lives across the call; the handler only performs an atomic
        // store, which is async-signal-safe; SA_RESTART keeps interrupted
        // system calls (pipe reads, waits) from failing with EINTR.
        unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_interrupt as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut());
        }
    }
}

fn style(template: &str) -> ProgressStyle {
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// The text of `poolbench list`: subjects, presets, workload fields.
pub fn list_text() -> String {
    let mut out = String::from("Subjects (--subjects NAME,... or all):\n");
    let width = crate::subjects::NAMES
        .iter()
        .map(|n| n.len())
        .max()
        .unwrap_or(0);
    for info in crate::subjects::INFOS
        .iter()
        .filter(|i| i.family != crate::subjects::Family::Test)
    {
        let _ = writeln!(out, "  {:<width$}  {}", info.name, info.about);
    }
    out.push_str(
        "\nFrom outside the binary (a synthetic cell's child runs under LD_PRELOAD and\n\
         drives the library through malloc/free; a program runs under it):\n\
         \x20 so:PATH          any allocator as a shared library (LD_PRELOAD=PATH)\n\
         \x20 preload:NAME     a build of this workspace, next to poolbench: gil, locked,\n\
         \x20                  tcache, sharded (our preload build), mimalloc, jemalloc, snmalloc\n\
         \x20 pymalloc         CPython's own allocator (Python programs only: no PYTHONMALLOC)\n\
         In a program cell (exec, py-*), gil ... snmalloc mean their preload builds and\n\
         system means nothing preloaded; CPython gets PYTHONMALLOC=malloc but under pymalloc.\n",
    );
    out.push_str("\nPresets (--workload NAME, or --workload FILE.toml):\n");
    let presets = crate::spec::preset::all();
    let width = presets.iter().map(|p| p.name.len()).max().unwrap_or(0);
    for p in presets {
        let _ = writeln!(out, "  {:<width$}  stresses: {}", p.name, p.stresses);
        let _ = writeln!(out, "  {:<width$}  follows:  {}", "", p.follows);
    }
    out.push('\n');
    out.push_str(&crate::programs::apps::listing());
    out.push('\n');
    out.push_str(&crate::programs::python::listing());
    out.push_str("\nWorkload fields (--set FIELD=VALUE, --sweep FIELD=V1,V2,..., or TOML keys):\n");
    let fields = crate::spec::workload::Workload::docs();
    let width = fields.iter().map(|f| f.name.len()).max().unwrap_or(0);
    for f in fields {
        let _ = writeln!(
            out,
            "  {:<width$}  {}  [accepted: {}; default: {}]",
            f.name, f.help, f.accepted, f.default
        );
    }
    out
}

/// One child process for one cell: a program cell's helper, or a cell of
/// this binary.
fn run_cell(opts: &RunOptions, spec: &CellSpec) -> Result<RunMetrics, Failure> {
    match &spec.work {
        Work::Program(p) => {
            let command = crate::cli::cell::command(&opts.exe, spec, opts.child);
            crate::cli::program::run_program(p, command, opts.timeout, &INTERRUPTED)
        }
        _ => crate::cli::cell::run_once(&opts.exe, spec, opts.child, opts.timeout, &INTERRUPTED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_floor_cell_runs_in_the_binary_whatever_its_configuration_ran_under() {
        let req = Request {
            subjects: vec!["system".into()],
            workloads: vec!["larson".into()],
            ..Default::default()
        };
        let mut cells = crate::cli::sweep::expand(&req).unwrap();
        cells[0].subject = "so:/x.so".into();
        cells[0]
            .subject_env
            .insert("LD_PRELOAD".into(), "/x.so".into());
        let all = with_floor(cells);
        let floor = all.iter().find(|c| c.subject == FLOOR_SUBJECT).unwrap();
        assert!(floor.subject_env.is_empty(), "{floor:?}");
    }

    #[test]
    fn list_names_every_subject_preset_and_field() {
        let text = list_text();
        for n in crate::subjects::NAMES {
            assert!(text.contains(n), "{n}");
        }
        for p in crate::spec::preset::all() {
            assert!(text.contains(p.name), "{}", p.name);
        }
        for f in crate::spec::workload::Workload::docs() {
            assert!(text.contains(f.name), "{}", f.name);
        }
        for s in crate::programs::python::ALL {
            assert!(text.contains(s.name), "{}", s.name);
        }
        for b in crate::subjects::preload::BUILDS {
            assert!(text.contains(b.name), "{}", b.name);
        }
        assert!(text.contains("so:PATH") && text.contains("pymalloc"));
    }
}
