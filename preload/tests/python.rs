//! CPython on the preload library: `PYTHONMALLOC=malloc` sends every
//! object allocation through `malloc`, i.e. through the allocator
//! `POOLBENCH_ALLOCATOR` names. A JSON round trip, four threads building
//! and checking containers, `subprocess.run` (a child interpreter, also
//! preloaded) and `os.fork()` while the threads run, under every
//! allocator. Skipped without `python3`.

mod support;

use std::process::Command;
use std::time::Duration;

use support::{have, library, run, ALLOCATORS};

const SCRIPT: &str = r#"
import json, os, subprocess, sys, threading

doc = {str(i): [i, {"name": "n" * (i % 50), "f": i / 7}] for i in range(2000)}
assert json.loads(json.dumps(doc)) == doc

def work(k, out):
    rows = [dict(a=i, b=str(i), c=(i, k)) for i in range(4000)]
    words = sorted({r["b"] * (1 + i % 3) for i, r in enumerate(rows)})
    out[k] = sum(r["a"] for r in rows) + len(words)

expected = {}
work(0, expected)
out = {}
threads = [threading.Thread(target=work, args=(k, out)) for k in range(4)]
for t in threads:
    t.start()
r = subprocess.run([sys.executable, "-c", "print(6 * 7)"], capture_output=True, text=True)
assert r.returncode == 0 and r.stdout.strip() == "42", r
pid = os.fork()
if pid == 0:
    xs = [str(i) * 3 for i in range(5000)]
    os._exit(0 if len(set(xs)) == 5000 else 1)
_, status = os.waitpid(pid, 0)
assert status == 0, status
for t in threads:
    t.join()
assert out == {k: expected[0] for k in range(4)}, (out, expected)
print("ok")
"#;

/// The interpreter itself: `python3` may be a launcher script (pyenv's
/// shim), which would run under the preload library too and hide the
/// interpreter's own exit status behind its own.
fn real_python() -> Option<String> {
    if !have("python3", "python under the preload library") {
        return None;
    }
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .ok()?;
    let path = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!path.is_empty()).then_some(path)
}

#[test]
fn json_threads_subprocess_and_fork_under_every_allocator() {
    let Some(python) = real_python() else {
        return;
    };
    for a in ALLOCATORS {
        let mut cmd = Command::new(&python);
        cmd.args(["-c", SCRIPT])
            .env("LD_PRELOAD", library("poolbench_preload", "preload"))
            .env("PYTHONMALLOC", "malloc")
            .env("POOLBENCH_ALLOCATOR", a);
        let r = run(cmd, Duration::from_secs(180), &format!("python under {a}"));
        assert!(r.ok() && r.stdout.trim() == "ok", "{a}: {r:?}");
    }
}
