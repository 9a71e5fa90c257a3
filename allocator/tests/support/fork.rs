//! `fork()` from a multi-threaded process whose global allocator is ours
//! (DESIGN.md §8): four threads allocate and free, across threads too,
//! while the main thread forks 50 times; each child allocates, checks what
//! it built and exits. A child that does not exit within a generous time
//! is killed and counted as hung; the test fails on any hung or failed
//! child instead of hanging, and a watchdog ends the whole process if the
//! parent itself gets stuck.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::channel;
use std::time::{Duration, Instant};

use super::collections::Span;

const THREADS: usize = 4;
const FORKS: usize = 50;
/// Far beyond what a child needs (milliseconds); only a hang reaches it.
const CHILD_TIMEOUT: Duration = Duration::from_secs(20);
/// Far beyond what the whole test needs (seconds).
const WATCHDOG: Duration = Duration::from_secs(300);

/// Exit statuses of a child.
const CHILD_OK: i32 = 0;
const CHILD_BAD: i32 = 3;

/// One round of a worker's churn: strings, vectors and boxes of many
/// sizes (small classes and raw requests), a ring of live ones.
fn churn(t: usize, i: usize, live: &mut VecDeque<Vec<u8>>) {
    let n = 1 + (i * 37 + t * 11) % 700;
    let mut v = vec![(i % 251) as u8; n];
    v.push(t as u8);
    live.push_back(v);
    let s = format!("{t}:{i}:{}", "x".repeat(i % 40));
    let b = Box::new([i as u64; 5]);
    assert!(s.starts_with(&format!("{t}:")) && b[4] == i as u64);
    if live.len() > 64 {
        let old = live.pop_front().unwrap();
        assert_eq!(old.last(), Some(&(t as u8)));
    }
}

/// What a child does: allocate, check, free; true if everything held.
fn child_work(k: usize) -> bool {
    let v: Vec<String> = (0..2000).map(|i| format!("{k}-{i}")).collect();
    let mut m = HashMap::new();
    for (i, s) in v.iter().enumerate() {
        m.insert(i, s.clone());
    }
    let big = vec![k as u8; 100_000];
    let ok = v.len() == 2000
        && m.len() == 2000
        && m[&1999] == format!("{k}-1999")
        && big.iter().all(|&b| b == k as u8);
    drop((v, m, big));
    let again: Vec<Box<u64>> = (0..500).map(Box::new).collect();
    ok && again.iter().enumerate().all(|(i, b)| **b == i as u64)
}

/// Ends the process with a message if the test is still running after
/// [`WATCHDOG`]; writes with `write(2)`, since allocating may be what hangs.
fn arm_watchdog() {
    std::thread::spawn(|| {
        std::thread::sleep(WATCHDOG);
        let msg = b"fork test: still running after the watchdog's limit (a hang)\n";
        // SAFETY: writing a valid buffer to fd 2 and exiting are always allowed.
        unsafe {
            libc::write(2, msg.as_ptr().cast(), msg.len());
            libc::_exit(101);
        }
    });
}

/// How a child ended.
#[derive(Debug)]
enum Outcome {
    Exited(i32),
    Signalled(i32),
    Hung,
}

/// Waits for `pid` up to [`CHILD_TIMEOUT`], killing it after that.
fn wait_for(pid: libc::pid_t) -> Outcome {
    let start = Instant::now();
    loop {
        let mut status = 0;
        // SAFETY: `pid` is our child; `status` is a valid out-pointer.
        let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        assert!(r >= 0, "waitpid failed");
        if r == pid {
            return if libc::WIFEXITED(status) {
                Outcome::Exited(libc::WEXITSTATUS(status))
            } else {
                Outcome::Signalled(libc::WTERMSIG(status))
            };
        }
        if start.elapsed() > CHILD_TIMEOUT {
            // SAFETY: our own child; reaping it after the kill.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, &mut status, 0);
            }
            return Outcome::Hung;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Forks `FORKS` times while `THREADS` threads allocate through `span`
/// (`gil` runs each round of work in a GIL span). Every other fork happens
/// inside a span of the forking thread. Panics listing every child that
/// hung or failed.
pub fn fork_while_threads_allocate(span: Span<'_>) {
    arm_watchdog();
    let stop = AtomicBool::new(false);
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..THREADS).map(|_| channel::<Vec<u8>>()).unzip();
    let outcomes = std::thread::scope(|s| {
        for (t, rx) in rxs.into_iter().enumerate() {
            let tx = txs[(t + 1) % THREADS].clone();
            let stop = &stop;
            s.spawn(move || {
                let mut live = VecDeque::new();
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    span(&mut || {
                        for _ in 0..50 {
                            churn(t, i, &mut live);
                            i += 1;
                        }
                    });
                    // Cross-thread frees: hand a block on, drop what came in.
                    if let Some(v) = live.pop_front() {
                        let _ = tx.send(v);
                    }
                    while let Ok(v) = rx.try_recv() {
                        let mut v = Some(v);
                        span(&mut || drop(v.take()));
                    }
                }
            });
        }
        drop(txs);
        let mut outcomes = Vec::new();
        for k in 0..FORKS {
            let mut pid = 0;
            let mut fork = || {
                // SAFETY: fork has no preconditions; the child only
                // allocates through the global allocator (what we test)
                // and leaves with `_exit`.
                pid = unsafe { libc::fork() };
                if pid == 0 {
                    let code = if child_work(k) { CHILD_OK } else { CHILD_BAD };
                    // SAFETY: ends the child without running the parent's
                    // exit handlers or test harness.
                    unsafe { libc::_exit(code) };
                }
            };
            if k % 2 == 0 {
                fork();
            } else {
                span(&mut fork);
            }
            assert!(pid > 0, "fork failed");
            outcomes.push((k, wait_for(pid)));
        }
        stop.store(true, Ordering::Relaxed);
        outcomes
    });
    let bad: Vec<_> = outcomes
        .iter()
        .filter(|(_, o)| !matches!(o, Outcome::Exited(CHILD_OK)))
        .collect();
    let hung = bad
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Hung))
        .count();
    assert!(
        bad.is_empty(),
        "{hung} of {FORKS} children hung; every failed child: {bad:?}"
    );
}
