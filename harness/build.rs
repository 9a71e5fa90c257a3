//! Captures build-time facts for the results file's environment block:
//! the `rustc -V` of the compiler building us, the versions of the
//! reference allocator crates as Cargo resolved them in Cargo.lock, and
//! the git commit (a fallback; `env.rs` asks git again at run time).

use std::path::{Path, PathBuf};
use std::process::Command;

/// Packages whose resolved versions the results file records: the
/// reference allocators' crates and their `-sys` crates (whose versions
/// name the bundled C library, e.g. jemalloc 5.3.0).
const TRACKED: &[&str] = &[
    "mimalloc",
    "libmimalloc-sys",
    "tikv-jemallocator",
    "tikv-jemalloc-sys",
    "tikv-jemalloc-ctl",
    "snmalloc-rs",
    "snmalloc-sys",
];

fn main() {
    let manifest = PathBuf::from(
        std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"),
    );

    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let version = Command::new(&rustc)
        .arg("-V")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    println!("cargo:rustc-env=POOLBENCH_BUILD_RUSTC={version}");

    let lock = find_lock(&manifest);
    let versions = lock
        .as_deref()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .map(|text| locked_versions(&text))
        .unwrap_or_default();
    if let Some(p) = &lock {
        println!("cargo:rerun-if-changed={}", p.display());
    }
    println!("cargo:rustc-env=POOLBENCH_CRATE_VERSIONS={versions}");

    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(&manifest)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let commit = git(&["rev-parse", "HEAD"]).unwrap_or_default();
    println!("cargo:rustc-env=POOLBENCH_BUILD_COMMIT={commit}");
    // Re-run when HEAD moves (a commit or checkout writes both files).
    for f in ["HEAD", "logs/HEAD"] {
        if let Some(p) = git(&["rev-parse", "--git-path", f]) {
            let p = manifest.join(p);
            if p.exists() {
                println!("cargo:rerun-if-changed={}", p.display());
            }
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}

/// Cargo.lock of the workspace: the first one found walking up.
fn find_lock(start: &Path) -> Option<PathBuf> {
    start
        .ancestors()
        .map(|d| d.join("Cargo.lock"))
        .find(|p| p.exists())
}

/// `name=version;name=version` for the tracked packages, read from the
/// lock file's `[[package]]` entries (name line, then version line).
fn locked_versions(lock: &str) -> String {
    let mut out = Vec::new();
    let mut name: Option<&str> = None;
    for line in lock.lines() {
        let line = line.trim();
        if line == "[[package]]" {
            name = None;
        } else if let Some(v) = line.strip_prefix("name = ") {
            name = Some(v.trim_matches('"'));
        } else if let Some(v) = line.strip_prefix("version = ") {
            if let Some(n) = name.filter(|n| TRACKED.contains(n)) {
                out.push(format!("{n}={}", v.trim_matches('"')));
            }
        }
    }
    out.sort();
    out.join(";")
}
