//! Cells in child processes.
//!
//! Every cell runs in a fresh child: `poolbench cell --subject S
//! --workload-json JSON`, a re-exec of the running binary. A fresh process
//! keeps one cell's heap, RSS high-water mark and allocator state out of the
//! next cell's figures, and confines a crash to the cell that crashed.
//!
//! Parent side ([`run_once`]): the child's stdout and stderr are drained by two
//! reader threads, so a chatty child can never block on a full pipe while
//! the parent waits; the parent polls for exit and kills the child at the
//! deadline. How the child ended is classified ([`classify`]) into the
//! results schema's [`Failure`] kinds — signal (number and name, core dump
//! noted), non-zero exit, timeout, verification (exit code 3), harness
//! (child could not start, or its report was unreadable) — with the tail
//! of its stderr. Repeats of a cell are separate children, run interleaved
//! with the other cells' by `run.rs` and merged by `repeats.rs`.
//!
//! Child side ([`child_main`]): decode and check the workload, look the
//! subject up, call `measure::run_cell`, print the metrics as one JSON line.
//! For testing the harness itself a cell can be made to fail on purpose
//! with `--crash MODE`, or with `POOLBENCH_CRASH=SUBJECT:MODE` in the
//! environment (inherited by the children of a whole `run`).

use std::io::Read;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::cli::sweep::{CellSpec, Work};
use crate::cli::{AppCellArgs, CellArgs, EXIT_BAD_INPUT, EXIT_ERROR, EXIT_OK, EXIT_VERIFICATION};
use crate::measure::CellError;
use crate::programs::apps::{self, AppError};
use crate::results::{Failure, FailureKind, RunMetrics};
use crate::spec::workload::Workload;
use crate::subjects::global::SUBJECT_ENV;
use crate::subjects::preload::CONTROLLED;

/// Environment variable naming a subject whose cells fail on purpose:
/// `SUBJECT:MODE` (or `*:MODE` for every subject), MODE as for `--crash`.
pub const CRASH_ENV: &str = "POOLBENCH_CRASH";

/// How much of a child's stderr a failure keeps: the last lines, bounded.
const STDERR_TAIL_LINES: usize = 20;
const STDERR_TAIL_BYTES: usize = 4096;
/// Stdout kept while the child runs: the report is its last line, so only
/// the tail matters; the bound keeps a runaway child from exhausting memory
/// (a report cut by it is unreadable, a harness failure).
const STDOUT_KEEP_BYTES: usize = 64 << 20;
/// Stderr kept in memory while the child runs (older bytes are dropped).
const STDERR_KEEP_BYTES: usize = 64 * 1024;
/// Polling period while waiting for a child: short next to any cell.
const POLL: Duration = Duration::from_millis(5);

/// Ways to make a cell fail on purpose, to test the harness's handling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CrashMode {
    /// `abort()`: SIGABRT.
    Abort,
    /// SIGSEGV with the default disposition, as a wild pointer would.
    Segv,
    /// Sleep forever, for the timeout.
    Hang,
    /// Exit with status 7 and a message.
    Exit,
    /// Exit 0 after printing something that is not a metrics report.
    Garbage,
}

/// How a child process ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChildEnd {
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub core_dumped: bool,
    /// The parent killed it at the deadline.
    pub timed_out: bool,
}

impl ChildEnd {
    fn from_status(status: ExitStatus, timed_out: bool) -> Self {
        ChildEnd {
            code: status.code(),
            signal: status.signal(),
            core_dumped: status.core_dumped(),
            timed_out,
        }
    }
}

/// How a child runs its cell, beyond subject and workload.
#[derive(Clone, Copy, Debug, Default)]
pub struct ChildOptions {
    /// Verification only (`poolbench stress`).
    pub stress: bool,
    /// Pin worker threads to CPUs.
    pub pin: bool,
}

/// The child command of one cell: `cell` for a synthetic workload (the
/// harness drives the subject), `app-cell` for an application (the subject
/// is the child's global allocator), `time-program` around the command
/// for a program (`cli::program`).
/// Every child starts without the variables a subject controls
/// (`subjects::preload::CONTROLLED`: `LD_PRELOAD`, `POOLBENCH_GLOBAL`, ...),
/// whatever the parent's environment says, and gets only its own
/// subject's (`CellSpec::subject_env`); only an application child gets
/// `POOLBENCH_GLOBAL`: a synthetic one must keep the system allocator for
/// the harness's own allocations.
pub fn command(exe: &Path, spec: &CellSpec, opts: ChildOptions) -> Command {
    let subject = spec.subject.as_str();
    let mut cmd = Command::new(exe);
    for v in CONTROLLED {
        cmd.env_remove(v);
    }
    match &spec.work {
        Work::Synthetic(w) => {
            cmd.args(["cell", "--subject", subject, "--workload-json"]);
            cmd.arg(serde_json::to_string(&**w).unwrap_or_default());
            if opts.stress {
                cmd.arg("--stress");
            }
            if opts.pin {
                cmd.arg("--pin");
            }
        }
        Work::App { app, size, threads } => {
            cmd.args(["app-cell", "--app", app])
                .arg("--size")
                .arg(size.to_string())
                .arg("--threads")
                .arg(threads.to_string())
                .env(SUBJECT_ENV, subject);
        }
        Work::Program(p) => {
            // The helper that times the program runs on glibc; the
            // subject's variables are the program's alone.
            cmd.arg("time-program");
            for (k, v) in &spec.subject_env {
                cmd.arg("--env").arg(format!("{k}={v}"));
            }
            if let Some(var) = &p.threads_env {
                cmd.arg("--env").arg(format!("{var}={}", p.threads));
            }
            cmd.arg("--").arg(&p.path).args(&p.args);
            return cmd;
        }
    }
    cmd.envs(&spec.subject_env);
    cmd
}

/// One child process for one synthetic or application cell (a program
/// cell is `cli::program::run_program`'s; `cli::run` picks).
pub fn run_once(
    exe: &Path,
    spec: &CellSpec,
    opts: ChildOptions,
    timeout: Duration,
    cancel: &AtomicBool,
) -> Result<RunMetrics, Failure> {
    debug_assert!(!matches!(spec.work, Work::Program(_)));
    let mut child = command(exe, spec, opts)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| harness_failure(format!("cannot start {}: {e}", exe.display())))?;

    let pipes = Drain::start(&mut child, STDOUT_KEEP_BYTES, STDERR_KEEP_BYTES);

    let deadline = Instant::now() + timeout;
    let end = loop {
        match child.try_wait() {
            Ok(Some(status)) => break ChildEnd::from_status(status, false),
            Ok(None) if Instant::now() >= deadline => {
                // Kill, then reap: the status is SIGKILL's, the cause ours.
                let _ = child.kill();
                match child.wait() {
                    Ok(status) => break ChildEnd::from_status(status, true),
                    Err(e) => {
                        return Err(harness_failure(format!("cannot reap timed-out cell: {e}")))
                    }
                }
            }
            Ok(None) if cancel.load(Ordering::Relaxed) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(harness_failure("interrupted".into()));
            }
            Ok(None) => std::thread::sleep(POLL),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(harness_failure(format!("cannot wait for cell: {e}")));
            }
        }
    };
    // The pipes close when the child (and anything it forked) exits.
    let (stdout, stderr) = pipes.finish();
    classify(
        end,
        &String::from_utf8_lossy(&stdout),
        &String::from_utf8_lossy(&stderr),
        timeout,
    )
}

/// A child's stdout and stderr, drained by two reader threads so that a
/// chatty child never blocks on a full pipe while the parent waits; each
/// keeps the last bytes of its stream.
pub(crate) struct Drain {
    out: Option<JoinHandle<Vec<u8>>>,
    err: Option<JoinHandle<Vec<u8>>>,
}

impl Drain {
    /// Starts reading the child's piped stdout and stderr.
    pub(crate) fn start(child: &mut Child, out_keep: usize, err_keep: usize) -> Drain {
        let out = child.stdout.take();
        let err = child.stderr.take();
        Drain {
            out: out.map(|p| std::thread::spawn(move || read_tail(p, out_keep))),
            err: err.map(|p| std::thread::spawn(move || read_tail(p, err_keep))),
        }
    }

    /// The kept tails of stdout and stderr, once both streams ended.
    pub(crate) fn finish(self) -> (Vec<u8>, Vec<u8>) {
        let join =
            |h: Option<JoinHandle<Vec<u8>>>| h.and_then(|h| h.join().ok()).unwrap_or_default();
        (join(self.out), join(self.err))
    }
}

/// Reads a stream to its end, keeping only its last `keep` bytes.
fn read_tail(mut r: impl Read, keep: usize) -> Vec<u8> {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                kept.extend_from_slice(&buf[..n]);
                if kept.len() > 2 * keep {
                    kept.drain(..kept.len() - keep);
                }
            }
        }
    }
    if kept.len() > keep {
        kept.drain(..kept.len() - keep);
    }
    kept
}

/// The last lines of a child's stderr, bounded in lines and bytes.
pub fn stderr_tail(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.trim_end().lines().collect();
    let mut tail = lines[lines.len().saturating_sub(STDERR_TAIL_LINES)..].join("\n");
    if tail.len() > STDERR_TAIL_BYTES {
        let mut cut = tail.len() - STDERR_TAIL_BYTES;
        while !tail.is_char_boundary(cut) {
            cut += 1;
        }
        tail.drain(..cut);
    }
    tail
}

/// Turns how a child ended, and what it printed, into metrics or a failure.
pub fn classify(
    end: ChildEnd,
    stdout: &str,
    stderr: &str,
    timeout: Duration,
) -> Result<RunMetrics, Failure> {
    let tail = stderr_tail(stderr);
    let last_line = tail
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("")
        .trim()
        .to_string();
    let fail = |kind, reason: String| Failure {
        kind,
        reason,
        exit_code: end.code,
        signal: end.signal,
        stderr_tail: tail.clone(),
    };
    if end.timed_out {
        return Err(fail(
            FailureKind::Timeout,
            format!(
                "timed out after {:.1} s and was killed",
                timeout.as_secs_f64()
            ),
        ));
    }
    if let Some(sig) = end.signal {
        let core = if end.core_dumped { ", core dumped" } else { "" };
        let mut reason = format!("killed by signal {sig} ({}{core})", signal_name(sig));
        if !last_line.is_empty() {
            reason.push_str(&format!(": {last_line}"));
        }
        return Err(fail(FailureKind::Signal, reason));
    }
    match end.code {
        Some(0) => {
            let report = stdout
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("");
            serde_json::from_str::<RunMetrics>(report).map_err(|e| {
                let shown: String = report.chars().take(120).collect();
                fail(
                    FailureKind::Harness,
                    format!("unreadable cell report ({e}): `{shown}`"),
                )
            })
        }
        Some(c) if c == i32::from(EXIT_VERIFICATION) => {
            let what = if last_line.is_empty() {
                "no report on stderr".to_string()
            } else {
                last_line
            };
            Err(fail(
                FailureKind::Verification,
                format!("verification failed: {what}"),
            ))
        }
        Some(c) => {
            let mut reason = format!("exited with status {c}");
            if !last_line.is_empty() {
                reason.push_str(&format!(": {last_line}"));
            }
            Err(fail(FailureKind::Exit, reason))
        }
        None => Err(fail(
            FailureKind::Harness,
            "ended with neither exit status nor signal".into(),
        )),
    }
}

pub(crate) fn harness_failure(reason: String) -> Failure {
    Failure {
        kind: FailureKind::Harness,
        reason,
        exit_code: None,
        signal: None,
        stderr_tail: String::new(),
    }
}

/// The conventional name of a signal number (`SIGSEGV`), or `signal N`.
pub fn signal_name(sig: i32) -> String {
    let name = match sig {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        libc::SIGSYS => "SIGSYS",
        _ => return format!("signal {sig}"),
    };
    name.to_string()
}

/// The hidden `cell` subcommand: runs one cell in this process, prints its
/// metrics as one JSON line on stdout, returns the exit code.
pub fn child_main(args: &CellArgs) -> u8 {
    if let Some(mode) = args.crash.or_else(|| crash_from_env(&args.subject)) {
        crash(mode);
    }
    let workload: Workload = match serde_json::from_str(&args.workload_json) {
        Ok(w) => w,
        Err(e) => {
            return child_error(
                EXIT_BAD_INPUT,
                format!("--workload-json is not a workload: {e}"),
            )
        }
    };
    // A process boundary: the parent checked it, this process checks it once.
    let workload = match workload.check() {
        Ok(w) => w,
        Err(e) => return child_error(EXIT_BAD_INPUT, format!("invalid workload: {e}")),
    };
    let subject = match crate::subjects::lookup(&args.subject, workload.geometry()) {
        Ok(s) => s,
        Err(e) => return child_error(EXIT_BAD_INPUT, e.to_string()),
    };
    let opts = crate::measure::Options {
        clock: crate::measure::clock::Clock::calibrate(),
        stress: args.stress,
        pin: args.pin,
    };
    match crate::measure::run_cell(subject.as_ref(), &workload, &opts) {
        Ok(metrics) => match serde_json::to_string(&metrics) {
            Ok(line) => {
                println!("{line}");
                EXIT_OK
            }
            Err(e) => child_error(EXIT_ERROR, format!("cannot encode metrics: {e}")),
        },
        // Verification has its own exit code (the parent reports it as a
        // verification failure); a workload the driver refuses is bad input;
        // anything else the driver may report is a plain failure.
        Err(e) => {
            let code = if matches!(e, CellError::Verification(_)) {
                EXIT_VERIFICATION
            } else if matches!(e, CellError::Invalid(_)) {
                EXIT_BAD_INPUT
            } else {
                EXIT_ERROR
            };
            child_error(code, e.to_string())
        }
    }
}

/// The hidden `app-cell` subcommand: runs one application program under
/// the process's global subject and prints its metrics as one JSON line.
/// A wrong result exits with the verification code.
pub fn app_child_main(args: &AppCellArgs) -> u8 {
    match apps::measure(&args.app, args.size, args.threads) {
        Ok(m) => match serde_json::to_string(&m) {
            Ok(line) => {
                println!("{line}");
                EXIT_OK
            }
            Err(e) => child_error(EXIT_ERROR, format!("cannot encode metrics: {e}")),
        },
        Err(e) => {
            let code = match e {
                AppError::Check { .. } => EXIT_VERIFICATION,
                AppError::Pool(_) => EXIT_ERROR,
                _ => EXIT_BAD_INPUT,
            };
            child_error(code, e.to_string())
        }
    }
}

fn child_error(code: u8, msg: String) -> u8 {
    eprintln!("{msg}");
    code
}

/// `POOLBENCH_CRASH=SUBJECT:MODE` applies to this cell's subject (or `*`).
fn crash_from_env(subject: &str) -> Option<CrashMode> {
    let spec = std::env::var(CRASH_ENV).ok()?;
    parse_crash_env(&spec, subject)
}

fn parse_crash_env(spec: &str, subject: &str) -> Option<CrashMode> {
    let (who, mode) = spec.split_once(':')?;
    if who != subject && who != "*" {
        return None;
    }
    <CrashMode as clap::ValueEnum>::from_str(mode, true).ok()
}

/// Fails this process the way `mode` says; never returns.
fn crash(mode: CrashMode) -> ! {
    eprintln!("poolbench cell: failing on purpose ({mode:?}) as requested");
    match mode {
        CrashMode::Abort => std::process::abort(),
        CrashMode::Segv => {
            // Restore the default action first: Rust's runtime handler only
            // reports stack overflows and otherwise returns, which would
            // swallow a raised (rather than faulting) SIGSEGV.
            // SAFETY: `signal` with SIG_DFL and `raise` only change this
            // process's signal state; no Rust invariant depends on it, and
            // the process is meant to die here.
            unsafe {
                libc::signal(libc::SIGSEGV, libc::SIG_DFL);
                libc::raise(libc::SIGSEGV);
            }
            // Unreachable unless the signal is blocked; still end abnormally.
            std::process::abort()
        }
        CrashMode::Hang => loop {
            std::thread::sleep(Duration::from_secs(3600));
        },
        CrashMode::Exit => {
            eprintln!("poolbench cell: giving up with status 7");
            std::process::exit(7)
        }
        CrashMode::Garbage => {
            println!("this is not a metrics report");
            std::process::exit(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_secs(10);

    fn end(code: Option<i32>, signal: Option<i32>) -> ChildEnd {
        ChildEnd {
            code,
            signal,
            core_dumped: false,
            timed_out: false,
        }
    }

    #[test]
    fn ok_child_yields_its_metrics() {
        let m = RunMetrics {
            ops: 42,
            ops_per_sec: 7.0,
            ..Default::default()
        };
        let out = format!("some noise\n{}\n", serde_json::to_string(&m).unwrap());
        assert_eq!(classify(end(Some(0), None), &out, "", T).unwrap(), m);
    }

    #[test]
    fn signals_are_named() {
        let f = classify(end(None, Some(libc::SIGSEGV)), "", "boom\n", T).unwrap_err();
        assert_eq!(f.kind, FailureKind::Signal);
        assert_eq!(f.signal, Some(libc::SIGSEGV));
        assert!(
            f.reason.contains("SIGSEGV") && f.reason.contains("boom"),
            "{}",
            f.reason
        );
        assert_eq!(signal_name(libc::SIGABRT), "SIGABRT");
        assert_eq!(signal_name(200), "signal 200");
    }

    #[test]
    fn exit_codes_are_classified() {
        let f = classify(end(Some(3), None), "", "tag mismatch at 0x10\n", T).unwrap_err();
        assert_eq!(f.kind, FailureKind::Verification);
        assert!(f.reason.contains("tag mismatch at 0x10"));
        let f = classify(end(Some(7), None), "", "", T).unwrap_err();
        assert_eq!((f.kind, f.exit_code), (FailureKind::Exit, Some(7)));
        let f = classify(end(Some(0), None), "not json", "", T).unwrap_err();
        assert_eq!(f.kind, FailureKind::Harness);
        let timed = ChildEnd {
            timed_out: true,
            ..end(None, Some(libc::SIGKILL))
        };
        assert_eq!(
            classify(timed, "", "", T).unwrap_err().kind,
            FailureKind::Timeout
        );
    }

    #[test]
    fn stderr_tail_keeps_the_last_lines() {
        let long: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let tail = stderr_tail(&long);
        assert_eq!(tail.lines().count(), STDERR_TAIL_LINES);
        assert!(tail.ends_with("line 99"));
        let bytes = read_tail(std::io::Cursor::new(vec![b'x'; 100_000]), 1000);
        assert_eq!(bytes.len(), 1000);
    }

    #[test]
    fn crash_env_targets_one_subject() {
        assert_eq!(parse_crash_env("null:segv", "null"), Some(CrashMode::Segv));
        assert_eq!(parse_crash_env("null:segv", "system"), None);
        assert_eq!(parse_crash_env("*:abort", "gil"), Some(CrashMode::Abort));
        assert_eq!(parse_crash_env("null:nonsense", "null"), None);
    }
}
