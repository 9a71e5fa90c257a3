//! The environment block of a results file: where and with what a run
//! happened, so that two results files can be judged comparable or not.
//!
//! Facts about the machine (CPU model, cores, kernel, OS, hostname) are
//! read at run time. Facts about the build come from `build.rs`: the
//! `rustc -V` of the compiler that built this binary, and the versions of
//! the reference allocator crates as resolved in Cargo.lock (never typed
//! by hand). The git commit is asked of git at run time, in the source
//! tree this binary was built from (with `-dirty` when it has uncommitted
//! changes), falling back to the commit recorded at build time.
//! `LD_PRELOAD` and the library `malloc` resolves to are recorded, so a
//! run under a preloaded allocator cannot pass for glibc's.

use std::collections::BTreeMap;
use std::process::Command;

use crate::results::Environment;

/// Gathers the environment of this process. Never fails: a fact that
/// cannot be read is recorded as `unknown` (or `None` for the commit).
pub fn capture() -> Environment {
    Environment {
        cpu_model: cpu_model().unwrap_or_else(unknown),
        logical_cores: logical_cores(),
        kernel: kernel().unwrap_or_else(unknown),
        os: os_name().unwrap_or_else(unknown),
        hostname: hostname().unwrap_or_else(unknown),
        rustc: non_empty(env!("POOLBENCH_BUILD_RUSTC")).unwrap_or_else(unknown),
        profile: profile().to_string(),
        git_commit: git_commit(),
        crate_versions: crate_versions(),
        ld_preload: std::env::var("LD_PRELOAD")
            .ok()
            .filter(|v| !v.trim().is_empty()),
        malloc_library: malloc_library(),
        pinned: false,
        load_at_start: super::memory::loadavg(),
        selfcheck: None,
    }
}

/// The shared object the process's `malloc` symbol resolves to (glibc's
/// `libc.so.6`, or whatever `LD_PRELOAD` put in front of it).
pub fn malloc_library() -> Option<String> {
    crate::subjects::malloc::library()
}

fn unknown() -> String {
    "unknown".to_string()
}

fn non_empty(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// `release` or `debug`, by whether debug assertions were compiled in.
pub fn profile() -> &'static str {
    if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    }
}

/// Logical CPUs this process may run on (affinity and cgroup quota aware).
pub fn logical_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn cpu_model() -> Option<String> {
    let text = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    parse_cpu_model(&text)
}

/// The first `model name` (x86) or `Model`/`Hardware` (ARM) line.
fn parse_cpu_model(cpuinfo: &str) -> Option<String> {
    ["model name", "Model", "Hardware", "cpu model"]
        .iter()
        .find_map(|key| {
            cpuinfo.lines().find_map(|line| {
                let (k, v) = line.split_once(':')?;
                (k.trim() == *key)
                    .then(|| v.trim().to_string())
                    .filter(|v| !v.is_empty())
            })
        })
}

/// Fields of `uname(2)`: (sysname release version machine, nodename).
fn uname() -> Option<(String, String)> {
    let mut u = std::mem::MaybeUninit::<libc::utsname>::zeroed();
    // SAFETY: uname fills the `utsname` it is pointed at; the pointer is to
    // a zero-initialised, properly aligned value we own.
    if unsafe { libc::uname(u.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: uname returned 0, so it wrote every field (and the value was
    // zeroed before, so every byte is initialised either way).
    let u = unsafe { u.assume_init() };
    let field = |f: &[libc::c_char]| {
        let bytes: Vec<u8> = f
            .iter()
            .take_while(|c| **c != 0)
            .map(|c| *c as u8)
            .collect();
        String::from_utf8_lossy(&bytes).into_owned()
    };
    let kernel = format!(
        "{} {} {} {}",
        field(&u.sysname),
        field(&u.release),
        field(&u.version),
        field(&u.machine)
    );
    Some((kernel, field(&u.nodename)))
}

fn kernel() -> Option<String> {
    uname().map(|(k, _)| k)
}

fn hostname() -> Option<String> {
    uname().map(|(_, h)| h).filter(|h| !h.is_empty())
}

fn os_name() -> Option<String> {
    let text = std::fs::read_to_string("/etc/os-release")
        .or_else(|_| std::fs::read_to_string("/usr/lib/os-release"))
        .ok()?;
    parse_os_release(&text)
}

/// `PRETTY_NAME`, else `NAME VERSION`, from an os-release file.
fn parse_os_release(text: &str) -> Option<String> {
    let get = |key: &str| {
        text.lines().find_map(|l| {
            let v = l.strip_prefix(key)?.strip_prefix('=')?;
            non_empty(v.trim().trim_matches('"'))
        })
    };
    get("PRETTY_NAME").or_else(|| match (get("NAME"), get("VERSION")) {
        (Some(n), Some(v)) => Some(format!("{n} {v}")),
        (n, _) => n,
    })
}

/// The commit of the source tree this binary was built from.
fn git_commit() -> Option<String> {
    let dir = env!("CARGO_MANIFEST_DIR");
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(dir)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "HEAD"]).and_then(|c| non_empty(&c)) {
        Some(commit) => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            Some(if dirty {
                format!("{commit}-dirty")
            } else {
                commit
            })
        }
        None => non_empty(env!("POOLBENCH_BUILD_COMMIT")),
    }
}

/// Reference allocator crate versions, as Cargo.lock resolved them.
pub fn crate_versions() -> BTreeMap<String, String> {
    parse_crate_versions(env!("POOLBENCH_CRATE_VERSIONS"))
}

fn parse_crate_versions(s: &str) -> BTreeMap<String, String> {
    s.split(';')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_model_from_x86_and_arm_cpuinfo() {
        let x86 = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\n";
        assert_eq!(
            parse_cpu_model(x86).as_deref(),
            Some("Intel(R) Xeon(R) CPU @ 2.20GHz")
        );
        let arm = "processor\t: 0\nBogoMIPS\t: 48.00\n\nModel\t: Raspberry Pi 4 Model B\n";
        assert_eq!(
            parse_cpu_model(arm).as_deref(),
            Some("Raspberry Pi 4 Model B")
        );
        assert_eq!(parse_cpu_model("processor : 0\n"), None);
    }

    #[test]
    fn os_release_prefers_pretty_name() {
        let t = "NAME=\"Ubuntu\"\nVERSION=\"24.04 LTS\"\nPRETTY_NAME=\"Ubuntu 24.04 LTS\"\n";
        assert_eq!(parse_os_release(t).as_deref(), Some("Ubuntu 24.04 LTS"));
        assert_eq!(
            parse_os_release("NAME=Alpine\nVERSION=3.20\n").as_deref(),
            Some("Alpine 3.20")
        );
        assert_eq!(parse_os_release("ID=x\n"), None);
    }

    #[test]
    fn crate_versions_come_from_the_lock_file() {
        let v = crate_versions();
        // The three reference allocator crates are dependencies of this
        // crate, so Cargo.lock resolved each of them.
        for name in ["mimalloc", "tikv-jemallocator", "snmalloc-rs"] {
            assert!(
                v.get(name).is_some_and(|s| !s.is_empty()),
                "{name} missing from {v:?}"
            );
        }
        let parsed = parse_crate_versions("a=1.0;b=2.0+x");
        assert_eq!(parsed.get("b").map(String::as_str), Some("2.0+x"));
    }

    #[test]
    fn capture_fills_build_facts() {
        let e = capture();
        assert!(e.logical_cores >= 1);
        assert!(e.rustc.starts_with("rustc "), "{}", e.rustc);
        assert_eq!(
            e.profile,
            if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            }
        );
    }
}
