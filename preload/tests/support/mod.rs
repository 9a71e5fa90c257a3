//! Helpers of the preload tests: where the built libraries are, compiling
//! the C exercise, and running a program under `LD_PRELOAD` with a time
//! limit (a hang fails the test instead of hanging it).

#![allow(dead_code)] // each test binary uses part of this module

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Our allocators, as `POOLBENCH_ALLOCATOR` names them.
pub const ALLOCATORS: [&str; 4] = ["gil", "locked", "tcache", "sharded"];

/// The directory cargo put this build's libraries in (`target/<profile>`):
/// a test binary lives in its `deps/` folder.
pub fn build_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.parent()
        .and_then(Path::parent)
        .expect("test binaries live in target/<profile>/deps")
        .to_path_buf()
}

/// A cdylib of this workspace built with this profile, e.g.
/// `poolbench_preload`; panics saying how to build it if it is missing.
/// `cargo test` builds the library of the package under test (its `rlib`
/// crate type makes it a dependency of the tests) into `deps/` without
/// copying it up, where `cargo build` puts it.
pub fn library(name: &str, package: &str) -> PathBuf {
    let file = format!("lib{name}.so");
    let dir = build_dir();
    [dir.join("deps").join(&file), dir.join(&file)]
        .into_iter()
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "{file} is missing from {}: `cargo test -p {package}` builds it \
                 (or run `cargo build -p {package}`)",
                dir.display()
            )
        })
}

/// Whether `program --version` runs; prints why a test is skipped if not.
pub fn have(program: &str, test: &str) -> bool {
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

/// The C exercise (`preload/tests/c/exercise.c`, also used by the
/// reference libraries' tests), compiled once per test binary into the
/// scratch directory; `None` (with a message) when there is no `cc`.
pub fn exercise() -> Option<PathBuf> {
    static PROGRAM: OnceLock<Option<PathBuf>> = OnceLock::new();
    PROGRAM
        .get_or_init(|| {
            if !have("cc", "the C exercise") {
                return None;
            }
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
            let src = dir.join(format!("exercise-{}.c", std::process::id()));
            let out = dir.join(format!("exercise-{}", std::process::id()));
            std::fs::write(&src, include_str!("../c/exercise.c")).expect("writing the C source");
            // -fno-builtin: the compiler must not remove or fold allocations.
            let status = Command::new("cc")
                .args(["-O1", "-fno-builtin", "-pthread", "-Wall", "-o"])
                .arg(&out)
                .arg(&src)
                .status()
                .expect("running cc");
            assert!(status.success(), "cc failed on {}", src.display());
            Some(out)
        })
        .clone()
}

/// Whether the exercise forks while its threads allocate.
pub enum Forks {
    /// The library promises a working `malloc` in the child.
    Check,
    /// It does not: the fork phase is left out, for the reason given.
    Skip(&'static str),
}

/// Runs the C exercise under a reference library (which, like glibc,
/// promises 16-byte alignment). Skipped without `cc`.
pub fn check_reference(name: &str, package: &str, forks: Forks) {
    let Some(program) = exercise() else {
        return;
    };
    let mut cmd = Command::new(program);
    cmd.arg("16").env("LD_PRELOAD", library(name, package));
    if let Forks::Skip(why) = forks {
        eprintln!("{name}: fork phase left out: {why}");
        cmd.arg("0");
    }
    let r = run(
        cmd,
        Duration::from_secs(120),
        &format!("exercise under {name}"),
    );
    assert!(r.ok() && r.stdout.trim() == "ok", "{name}: {r:?}");
}

/// What a finished program did.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(&self) -> bool {
        self.code == Some(0)
    }
}

/// Runs `cmd` to completion, killing it (and failing the test) after
/// `limit`, far beyond what it needs unless it hangs.
pub fn run(mut cmd: Command, limit: Duration, what: &str) -> Run {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    // Drain both pipes on threads so a chatty child cannot block on them.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let t_out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let t_err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().expect("waiting for a child") {
            break s;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {limit:?} (hung), killed");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Run {
        code: status.code(),
        stdout: t_out.join().unwrap(),
        stderr: t_err.join().unwrap(),
    }
}
