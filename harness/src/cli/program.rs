//! One program cell, run and measured from outside: the parent side of
//! every program cell (`poolbench exec`'s and the bundled Python
//! workloads').
//!
//! A program is measured from outside, by a small helper process between
//! poolbench and the program (`poolbench time-program`, [`time_main`]),
//! which forks the program and reports on its last line of stdout: the
//! wall time from just before the fork to the exit (found with
//! `waitid(WNOWAIT)`, so the clock stops when the program does), then
//! `wait4`'s resource usage: user and system CPU, peak RSS, page faults
//! and context switches, the program's and those of the descendants it
//! waited for. The helper is there so the peak RSS is the program's (see
//! [`time_main`]). The parent ([`run_program`]) runs the helper in a
//! process group of its own, so a timeout or an interrupt kills
//! everything the program started; it signals the group only while the
//! helper is not yet reaped, so the signal can never reach a process that
//! reused its pid. With a metric, the figure is read from the program's
//! output; no figure fails the cell.

use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::cli::cell::{classify, harness_failure, stderr_tail, ChildEnd, Drain};
use crate::cli::EXIT_OK;
use crate::measure::memory;
use crate::programs::external::Program;
use crate::results::{Failure, FailureKind, Fragmentation, Load, Memory, ProgramRun, RunMetrics};

/// What a program cell counts: one run of the program.
pub const UNIT: &str = "runs";
/// Output kept per stream: enough for any metric line near the end.
const KEEP_BYTES: usize = 16 << 20;
/// How often the parent looks at the deadline and the interrupt flag.
const TICK: Duration = Duration::from_millis(20);

/// The prefix of the helper's report line.
const REPORT: &str = "poolbench-time-program: ";

/// How the program of a cell ended and what it used, as the helper
/// (`poolbench time-program`) reports it on the last line of its stdout.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Timed {
    /// From just before the spawn to the program's end.
    pub wall_s: f64,
    pub code: Option<i32>,
    pub signal: Option<i32>,
    pub core_dumped: bool,
    pub user_s: f64,
    pub sys_s: f64,
    pub max_rss_bytes: u64,
    pub minor_faults: u64,
    pub major_faults: u64,
    pub voluntary_switches: u64,
    pub involuntary_switches: u64,
}

/// The hidden `time-program` subcommand: runs a program with `env` added
/// to its environment, waits for it, and prints how it ended and what it
/// used as the last line of stdout (after the program's own output).
///
/// It exists for the peak RSS: Linux folds the high-water mark of the
/// memory a process had before `exec` into the new program's
/// (`ru_maxrss`), so a program spawned straight from poolbench (tens of
/// MiB, or with `vfork` all of it) would report at least poolbench's RSS.
/// This small, fresh process forks (not `vfork`s) the program, whose
/// floor is then the few pages the fork copies, as under GNU `time`.
pub fn time_main(env: &[String], command: &[String]) -> u8 {
    let Some((program, args)) = command.split_first() else {
        eprintln!("poolbench time-program: no command");
        return crate::cli::EXIT_BAD_INPUT;
    };
    let mut cmd = Command::new(program);
    cmd.args(args);
    for kv in env {
        match kv.split_once('=') {
            Some((k, v)) if !k.is_empty() => {
                cmd.env(k, v);
            }
            _ => {
                eprintln!("poolbench time-program: --env `{kv}` is not NAME=VALUE");
                return crate::cli::EXIT_BAD_INPUT;
            }
        }
    }
    // SAFETY: the closure does nothing (trivially async-signal-safe); it
    // is there to make std fork instead of vfork (see above).
    unsafe { cmd.pre_exec(|| Ok(())) };
    let started = Instant::now();
    let child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("poolbench time-program: cannot start {program}: {e}");
            return crate::cli::EXIT_ERROR;
        }
    };
    let unused = Mutex::new(false);
    match wait(child.id() as libc::pid_t, &unused) {
        Ok(ended) => {
            let timed = timed(&ended, started);
            match serde_json::to_string(&timed) {
                Ok(line) => {
                    println!("\n{REPORT}{line}");
                    EXIT_OK
                }
                Err(e) => {
                    eprintln!("poolbench time-program: {e}");
                    crate::cli::EXIT_ERROR
                }
            }
        }
        Err(e) => {
            eprintln!("poolbench time-program: {e}");
            crate::cli::EXIT_ERROR
        }
    }
}

/// How a child ended, as [`wait`] saw it.
struct Ended {
    at: Instant,
    status: libc::c_int,
    usage: libc::rusage,
}

fn timed(e: &Ended, started: Instant) -> Timed {
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 * 1e-6;
    let count = |v: libc::c_long| v.max(0) as u64;
    let ru = &e.usage;
    let status = e.status;
    Timed {
        wall_s: e.at.duration_since(started).as_secs_f64(),
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
        core_dumped: libc::WIFSIGNALED(status) && libc::WCOREDUMP(status),
        user_s: secs(ru.ru_utime),
        sys_s: secs(ru.ru_stime),
        // Linux reports kilobytes.
        max_rss_bytes: count(ru.ru_maxrss) * 1024,
        minor_faults: count(ru.ru_minflt),
        major_faults: count(ru.ru_majflt),
        voluntary_switches: count(ru.ru_nvcsw),
        involuntary_switches: count(ru.ru_nivcsw),
    }
}

/// Runs one program cell's child (`cmd`, from `cell::command`: the
/// `time-program` helper around the program) and measures it (see the
/// module docs).
pub fn run_program(
    p: &Program,
    mut cmd: Command,
    timeout: Duration,
    cancel: &AtomicBool,
) -> Result<RunMetrics, Failure> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let load_start = memory::loadavg();
    let machine_start = memory::MachineTimes::now();
    let started = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| harness_failure(format!("cannot start {}: {e}", p.path.display())))?;
    let pid = child.id() as libc::pid_t;
    let pipes = Drain::start(&mut child, KEEP_BYTES, KEEP_BYTES);

    // `reaped` is held while the child is reaped and while it is
    // signalled: a signal goes only to an unreaped child (or its group).
    let reaped = Arc::new(Mutex::new(false));
    let (tx, rx) = mpsc::channel();
    let waiter = {
        let reaped = Arc::clone(&reaped);
        std::thread::spawn(move || {
            let _ = tx.send(wait(pid, &reaped));
        })
    };
    let kill = || {
        let done = reaped.lock().unwrap_or_else(|e| e.into_inner());
        if !*done {
            // SAFETY: kill has no memory-safety preconditions; the group
            // is the unreaped child's own (see `reaped`).
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
    };
    let deadline = started + timeout;
    let (mut timed_out, mut interrupted) = (false, false);
    let ended = loop {
        match rx.recv_timeout(TICK) {
            Ok(r) => break r,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if !timed_out && Instant::now() >= deadline {
                    timed_out = true;
                    kill();
                }
                if !interrupted && cancel.load(Ordering::Relaxed) {
                    interrupted = true;
                    kill();
                }
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                break Err("the thread waiting for the program ended".into())
            }
        }
    };
    let _ = waiter.join();
    let (out, err) = pipes.finish();
    let out = String::from_utf8_lossy(&out).into_owned();
    let err = String::from_utf8_lossy(&err).into_owned();
    let helper =
        ended.map_err(|e: String| harness_failure(format!("cannot wait for the program: {e}")))?;
    if interrupted {
        return Err(harness_failure("interrupted".into()));
    }
    if timed_out {
        return Err(classify(
            ChildEnd {
                code: None,
                signal: Some(libc::SIGKILL),
                core_dumped: false,
                timed_out,
            },
            "",
            &err,
            timeout,
        )
        .err()
        .unwrap_or_else(|| harness_failure("timed out".into())));
    }
    // The helper's report is the last line of stdout; the program's
    // output is everything before it.
    let (out, report) = match out.trim_end().rsplit_once('\n') {
        Some((o, last)) => (o, last),
        None => ("", out.trim_end()),
    };
    let timed: Timed = report
        .strip_prefix(REPORT)
        .and_then(|r| serde_json::from_str(r).ok())
        .ok_or_else(|| {
            let last = stderr_tail(&err);
            let mut f = harness_failure(format!(
                "the program's timer ended without a report ({}): {}",
                exit_text(helper.status),
                last.lines().last().unwrap_or("")
            ));
            f.stderr_tail = last;
            f
        })?;
    let end = ChildEnd {
        code: timed.code,
        signal: timed.signal,
        core_dumped: timed.core_dumped,
        timed_out: false,
    };
    match end.code {
        Some(0) => {}
        // Status 3 is a verification failure only for programs that say so.
        Some(3) if !p.checks => {
            let tail = stderr_tail(&err);
            let last = tail.lines().last().unwrap_or("").trim().to_string();
            return Err(Failure {
                kind: FailureKind::Exit,
                reason: format!("exited with status 3: {last}"),
                exit_code: Some(3),
                signal: None,
                stderr_tail: tail,
            });
        }
        _ => {
            return Err(classify(end, "", &err, timeout)
                .err()
                .unwrap_or_else(|| harness_failure("ended without a status".into())))
        }
    }
    let metric = match &p.metric {
        Some(m) => Some(m.find(out, &err).map_err(|why| Failure {
            kind: FailureKind::Harness,
            reason: why,
            exit_code: Some(0),
            signal: None,
            stderr_tail: stderr_tail(&err),
        })?),
        None => None,
    };
    let mut m = metrics(p, &timed, metric, load_start);
    if let (Some(a), Some(b)) = (machine_start, memory::MachineTimes::now()) {
        if let Some((steal, others)) = a.fractions(&b, timed.user_s + timed.sys_s) {
            m.load.steal_fraction = Some(steal);
            m.load.others_busy_fraction = Some(others);
        }
    }
    Ok(m)
}

fn exit_text(status: libc::c_int) -> String {
    if libc::WIFSIGNALED(status) {
        format!("killed by signal {}", libc::WTERMSIG(status))
    } else {
        format!("exit status {}", libc::WEXITSTATUS(status))
    }
}

/// Waits for `pid` to end (without reaping it), notes the time, then
/// reaps it with its resource usage, holding `reaped`.
fn wait(pid: libc::pid_t, reaped: &Mutex<bool>) -> Result<Ended, String> {
    loop {
        // SAFETY: a zeroed siginfo_t is a valid place for the result.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: waits for our own child; `info` is valid and writable.
        let rc = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if rc == 0 {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(format!("waitid: {e}"));
        }
    }
    let at = Instant::now();
    let mut done = reaped.lock().unwrap_or_else(|e| e.into_inner());
    let mut status: libc::c_int = 0;
    // SAFETY: a zeroed rusage is a valid place for the result.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: reaps our own child, which has ended; both out-pointers
        // are valid and writable.
        let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if rc == pid {
            *done = true;
            return Ok(Ended { at, status, usage });
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(format!("wait4: {e}"));
        }
    }
}

/// One run of a program as the results schema records it: one run is the
/// unit of work, the wall time its duration.
fn metrics(p: &Program, t: &Timed, metric: Option<f64>, load_start: Option<f64>) -> RunMetrics {
    let wall = t.wall_s.max(1e-9);
    RunMetrics {
        ops: 1,
        ops_per_thread: 1,
        duration_s: wall,
        ops_per_sec: 1.0 / wall,
        cpu_user_s: t.user_s,
        cpu_sys_s: t.sys_s,
        worker_cpu_s: t.user_s + t.sys_s,
        memory: Memory {
            peak_rss_bytes: t.max_rss_bytes,
            fragmentation: Fragmentation {
                ratio: None,
                note: Some("a program does not report the bytes it has live".into()),
                own_ratio: None,
            },
            ..Default::default()
        },
        load: Load {
            loadavg_start: load_start,
            loadavg_end: memory::loadavg(),
            ..Default::default()
        },
        unit: Some(UNIT.to_string()),
        program: Some(ProgramRun {
            minor_faults: t.minor_faults,
            major_faults: t.major_faults,
            voluntary_switches: t.voluntary_switches,
            involuntary_switches: t.involuntary_switches,
            metric,
            metric_name: p.metric.as_ref().map(|m| m.name.clone()),
        }),
        ..Default::default()
    }
}
