//! Subjects a cell's child process gets from outside: an allocator in a
//! shared library, put in front of glibc with `LD_PRELOAD` (mimalloc-bench's
//! way), and CPython's own allocator.
//!
//! | subject | the child runs under |
//! | --- | --- |
//! | `so:PATH` | `LD_PRELOAD=PATH` (made absolute): any allocator a user has as a `.so` |
//! | `preload:gil`, `:locked`, `:tcache`, `:sharded` | our preload build (`libpoolbench_preload.so`) with `POOLBENCH_ALLOCATOR` and `POOLBENCH_GEOMETRY` |
//! | `preload:mimalloc`, `:jemalloc`, `:snmalloc` | the reference builds (`libpoolbench_mimalloc.so`, ...) |
//! | `pymalloc` | CPython programs only: no `PYTHONMALLOC`, so CPython uses its own pymalloc |
//!
//! Where the subject runs decides what a name means ([`resolve`]):
//!
//! - a synthetic cell (`poolbench cell`) drives a preloaded library with
//!   the `malloc` subject (`super::malloc`), in the workload's geometry;
//! - an application cell's allocator is its `#[global_allocator]`, so it
//!   takes only the in-process names;
//! - a program cell (an external command: `poolbench exec`, the bundled
//!   Python workloads) can only be given an allocator from outside, so
//!   there the plain names of our allocators and of the references mean
//!   their preload builds (`sharded` = `preload:sharded`), `system` means
//!   no preload at all, and a CPython command gets `PYTHONMALLOC=malloc`
//!   under every subject but `pymalloc` (else CPython would serve its
//!   small objects from its own pymalloc whatever is preloaded).
//!
//! The parent sets these variables for that one child only and removes
//! them (with any `LD_PRELOAD` of its own) from every other child: see
//! [`CONTROLLED`].
//!
//! The builds of this workspace are looked up next to the running binary
//! (`target/<profile>/`, or its `deps/` where `cargo test` leaves them); a
//! missing one is bad input naming the `cargo build` command that makes
//! it. A library is checked before anything runs: the file must be an ELF
//! shared object, and a probe child started under it ([`probe`]) must find
//! its `malloc` in that library — the dynamic loader only warns about a
//! library it cannot preload and carries on with glibc, which would
//! silently measure glibc under the library's name.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::error::BadInput;

/// Prefix of a subject that is any shared library: `so:PATH`.
pub const SO: &str = "so:";
/// Prefix of a subject that is a build of this workspace: `preload:NAME`.
pub const PRELOAD: &str = "preload:";
/// CPython's own allocator (program cells of CPython only).
pub const PYMALLOC: &str = "pymalloc";

pub const LD_PRELOAD: &str = "LD_PRELOAD";
/// Which of our allocators the preload build serves.
pub const ALLOCATOR_ENV: &str = "POOLBENCH_ALLOCATOR";
/// Our allocators' geometry (the preload build reads the same variable as
/// the binary's switchable global allocator).
pub const GEOMETRY_ENV: &str = super::global::GEOMETRY_ENV;
/// CPython's allocator switch.
pub const PYTHONMALLOC: &str = "PYTHONMALLOC";

/// The variables a subject controls: every child starts without them
/// (whatever the parent's environment says) and gets only its subject's.
pub const CONTROLLED: &[&str] = &[
    LD_PRELOAD,
    ALLOCATOR_ENV,
    GEOMETRY_ENV,
    PYTHONMALLOC,
    super::global::SUBJECT_ENV,
];

/// A shared library this workspace builds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Build {
    /// The short name (`preload:NAME`, and the plain name in program cells).
    pub name: &'static str,
    pub file: &'static str,
    /// The cargo package that makes it.
    pub package: &'static str,
    /// `POOLBENCH_ALLOCATOR` for our preload build.
    pub allocator: Option<&'static str>,
}

const fn ours(name: &'static str) -> Build {
    Build {
        name,
        file: "libpoolbench_preload.so",
        package: "preload",
        allocator: Some(name),
    }
}

const fn reference(name: &'static str, file: &'static str, package: &'static str) -> Build {
    Build {
        name,
        file,
        package,
        allocator: None,
    }
}

/// Every build, in report order.
pub const BUILDS: &[Build] = &[
    ours("gil"),
    ours("locked"),
    ours("tcache"),
    ours("sharded"),
    reference("mimalloc", "libpoolbench_mimalloc.so", "ref-mimalloc"),
    reference("jemalloc", "libpoolbench_jemalloc.so", "ref-jemalloc"),
    reference("snmalloc", "libpoolbench_snmalloc.so", "ref-snmalloc"),
];

/// The build called `name`.
pub fn build(name: &str) -> Option<&'static Build> {
    BUILDS.iter().find(|b| b.name == name)
}

/// A library a child runs under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Preload {
    /// Absolute path of the shared object.
    pub library: PathBuf,
    /// Our allocator, when the library is our preload build.
    pub allocator: Option<&'static str>,
}

impl Preload {
    /// The variables that put a child under it, our allocators in
    /// `geometry`.
    pub fn env(&self, geometry: &str) -> BTreeMap<String, String> {
        let mut env = BTreeMap::from([(
            LD_PRELOAD.to_string(),
            self.library.to_string_lossy().into_owned(),
        )]);
        if let Some(a) = self.allocator {
            env.insert(ALLOCATOR_ENV.into(), a.into());
            env.insert(GEOMETRY_ENV.into(), geometry.into());
        }
        env
    }
}

/// Whether `name` is a subject that comes from a shared library
/// (`so:PATH` or `preload:NAME`).
pub fn is_library(name: &str) -> bool {
    name.starts_with(SO) || name.starts_with(PRELOAD)
}

/// The folders the workspace's builds are looked for in: the running
/// binary's, its `deps/` (where `cargo test` builds them), and, for a test
/// binary that lives in `deps/`, the profile folder above it.
pub fn build_dirs() -> Vec<PathBuf> {
    let Some(dir) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    else {
        return Vec::new();
    };
    let mut dirs = vec![dir.join("deps")];
    if dir.file_name().is_some_and(|n| n == "deps") {
        if let Some(up) = dir.parent() {
            dirs.push(up.to_path_buf());
        }
    }
    dirs.insert(0, dir);
    dirs
}

/// The library of build `b`, in the first of `dirs` that has it.
pub fn find_build(b: &Build, dirs: &[PathBuf]) -> Result<PathBuf, BadInput> {
    dirs.iter()
        .map(|d| d.join(b.file))
        .find(|p| p.is_file())
        .ok_or_else(|| missing(&[b], dirs))
}

/// Builds that are not there, as one error with the one command that
/// makes them all.
fn missing(builds: &[&Build], dirs: &[PathBuf]) -> BadInput {
    let profile = if cfg!(debug_assertions) {
        ""
    } else {
        " --release"
    };
    let mut files: Vec<&str> = Vec::new();
    let mut packages: Vec<String> = Vec::new();
    for b in builds {
        if !files.contains(&b.file) {
            files.push(b.file);
            packages.push(format!("-p {}", b.package));
        }
    }
    let names: Vec<String> = builds.iter().map(|b| format!("`{}`", b.name)).collect();
    let one = files.len() == 1;
    BadInput::new(format!(
        "subject{} {} need{} {} next to poolbench ({}), and {} not there: build {} with \
         `cargo build{profile} {}`",
        if names.len() == 1 { "" } else { "s" },
        names.join(", "),
        if names.len() == 1 { "s" } else { "" },
        files.join(", "),
        dirs.first()
            .map_or_else(String::new, |d| d.display().to_string()),
        if one { "it is" } else { "they are" },
        if one { "it" } else { "them" },
        packages.join(" ")
    ))
}

/// Checks that every build of this workspace the subjects `names` need in
/// a child of `target` is there; the error names all that are missing.
pub fn check_builds<'a>(
    names: impl IntoIterator<Item = &'a str>,
    target: Target,
) -> Result<(), BadInput> {
    let dirs = build_dirs();
    let mut absent: Vec<&Build> = Vec::new();
    for n in names {
        let b = match (n.strip_prefix(PRELOAD), target) {
            (Some(short), _) => build(short),
            (None, Target::Program { .. }) => build(n),
            (None, _) => None,
        };
        if let Some(b) = b.filter(|b| find_build(b, &dirs).is_err()) {
            absent.push(b);
        }
    }
    if absent.is_empty() {
        Ok(())
    } else {
        Err(missing(&absent, &dirs))
    }
}

/// The library of a `so:PATH` or `preload:NAME` subject; `None` for any
/// other name.
pub fn library_of(name: &str) -> Result<Option<Preload>, BadInput> {
    if let Some(path) = name.strip_prefix(SO) {
        let library = shared_object(Path::new(path))
            .map_err(|why| BadInput::new(format!("subject `{name}`: {why}")))?;
        return Ok(Some(Preload {
            library,
            allocator: None,
        }));
    }
    if let Some(short) = name.strip_prefix(PRELOAD) {
        let b = build(short).ok_or_else(|| {
            BadInput::new(format!(
                "unknown subject `{name}` (accepted preload names: {})",
                BUILDS
                    .iter()
                    .map(|b| format!("{PRELOAD}{}", b.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        })?;
        return build_library(b).map(Some);
    }
    Ok(None)
}

fn build_library(b: &Build) -> Result<Preload, BadInput> {
    let path = find_build(b, &build_dirs())?;
    Ok(Preload {
        library: std::fs::canonicalize(&path).unwrap_or(path),
        allocator: b.allocator,
    })
}

/// `path` made absolute, if it is an ELF shared object; else why not.
pub fn shared_object(path: &Path) -> Result<PathBuf, String> {
    if path.as_os_str().is_empty() {
        return Err("no path after `so:`".into());
    }
    let abs = std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut head = [0u8; 18];
    std::fs::File::open(&abs)
        .and_then(|mut f| f.read_exact(&mut head))
        .map_err(|e| format!("{}: cannot read an ELF header: {e}", abs.display()))?;
    if &head[..4] != b"\x7fELF" {
        return Err(format!("{} is not an ELF file", abs.display()));
    }
    // e_type, in the file's byte order (EI_DATA: 1 little, 2 big).
    let e_type = if head[5] == 2 {
        u16::from_be_bytes([head[16], head[17]])
    } else {
        u16::from_le_bytes([head[16], head[17]])
    };
    const ET_DYN: u16 = 3;
    if e_type != ET_DYN {
        return Err(format!("{} is not a shared object", abs.display()));
    }
    Ok(abs)
}

/// What kind of child a subject is resolved for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// `poolbench cell`: the harness drives the subject.
    Synthetic,
    /// `poolbench app-cell`: the subject is the global allocator.
    App,
    /// An external command; `python` when it is CPython.
    Program { python: bool },
}

/// How subject `name` runs in a child of `target`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolution {
    /// With these variables (none for an in-process subject).
    Env(BTreeMap<String, String>),
    /// Not at all there, and why (a subject named there is bad input; one
    /// that came from `all` is left out).
    NotHere(String),
}

/// The subjects a program cell takes under `all`, in report order
/// (`pymalloc` only for CPython).
pub fn program_names(python: bool) -> Vec<&'static str> {
    let mut v = Vec::new();
    if python {
        v.push(PYMALLOC);
    }
    v.extend(["gil", "locked", "tcache", "sharded", "system"]);
    v.extend(["mimalloc", "jemalloc", "snmalloc"]);
    v
}

/// Resolves subject `name` (already known to be a valid name) for a child
/// of `target`, with our allocators in `geometry`.
pub fn resolve(name: &str, target: Target, geometry: &str) -> Result<Resolution, BadInput> {
    let not_here = |why: String| Ok(Resolution::NotHere(why));
    if name == PYMALLOC && target != (Target::Program { python: true }) {
        return not_here(format!(
            "subject `{PYMALLOC}` is CPython's own allocator: it runs only CPython programs \
             (the py-* workloads, or `poolbench exec` of a python command)"
        ));
    }
    let library = library_of(name)?;
    match target {
        Target::Synthetic => Ok(Resolution::Env(
            library.map(|l| l.env(geometry)).unwrap_or_default(),
        )),
        Target::App => {
            if library.is_some() {
                not_here(format!(
                    "subject `{name}` cannot run an application program: an application's \
                     allocator is its #[global_allocator] (use `poolbench exec` for a \
                     program under LD_PRELOAD)"
                ))
            } else if super::global::NAMES.contains(&name) {
                Ok(Resolution::Env(BTreeMap::new()))
            } else {
                not_here(format!(
                    "subject `{name}` cannot be an application's global allocator (accepted: {})",
                    super::global::NAMES.join(", ")
                ))
            }
        }
        Target::Program { python } => {
            let library = match (library, build(name)) {
                (Some(l), _) => Some(l),
                (None, Some(b)) => Some(build_library(b)?),
                (None, None) if name == "system" || name == PYMALLOC => None,
                (None, None) => {
                    return not_here(format!(
                        "subject `{name}` runs only inside poolbench's own cells; a program \
                         takes {}, {SO}PATH or {PRELOAD}NAME",
                        program_names(python).join(", ")
                    ))
                }
            };
            let mut env = library.map(|l| l.env(geometry)).unwrap_or_default();
            if python && name != PYMALLOC {
                env.insert(PYTHONMALLOC.into(), "malloc".into());
            }
            Ok(Resolution::Env(env))
        }
    }
}

/// Checks, in a child started under `env` (its `LD_PRELOAD` library),
/// that the library loads and that `malloc` resolves into it. `exe` is
/// the poolbench binary: its hidden `malloc-library` subcommand prints
/// where `malloc` resolves.
pub fn probe(exe: &Path, subject: &str, env: &BTreeMap<String, String>) -> Result<(), BadInput> {
    let Some(library) = env.get(LD_PRELOAD) else {
        return Ok(());
    };
    let mut cmd = Command::new(exe);
    for v in CONTROLLED {
        cmd.env_remove(v);
    }
    let out = cmd
        .arg("malloc-library")
        .envs(env)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| BadInput::new(format!("cannot start {}: {e}", exe.display())))?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let said = stderr
        .lines()
        .find(|l| !l.trim().is_empty())
        .map(|l| format!(": {}", l.trim()))
        .unwrap_or_default();
    if !out.status.success() {
        return Err(BadInput::new(format!(
            "subject `{subject}`: a process under {library} failed ({}){said}",
            out.status
        )));
    }
    let got = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let same = |a: &str, b: &str| match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    if same(&got, library) {
        Ok(())
    } else if stderr.contains("cannot be preloaded") {
        Err(BadInput::new(format!(
            "subject `{subject}`: {library} cannot be preloaded{said}"
        )))
    } else {
        Err(BadInput::new(format!(
            "subject `{subject}`: {library} does not define malloc (under it, malloc \
             still resolves to {got})"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shared_object_is_told_from_other_files() {
        let exe = std::env::current_exe().unwrap();
        // The test binary is an executable (ET_DYN too when it is PIE, so
        // only the refusals are certain).
        let text = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        assert!(shared_object(&text).unwrap_err().contains("not an ELF"));
        assert!(shared_object(Path::new("/nonexistent/x.so"))
            .unwrap_err()
            .contains("/nonexistent/x.so"));
        assert!(shared_object(Path::new("")).is_err());
        let _ = shared_object(&exe);
        let libc = crate::subjects::malloc::library().unwrap();
        assert_eq!(
            shared_object(Path::new(&libc)).unwrap(),
            std::fs::canonicalize(&libc).unwrap()
        );
    }

    #[test]
    fn names_mean_what_their_target_lets_them() {
        let env = |r: Resolution| match r {
            Resolution::Env(e) => e,
            Resolution::NotHere(why) => panic!("{why}"),
        };
        let py = Target::Program { python: true };
        let c = Target::Program { python: false };
        assert!(env(resolve("gil", Target::Synthetic, "classic").unwrap()).is_empty());
        assert!(env(resolve("gil", Target::App, "classic").unwrap()).is_empty());
        assert!(env(resolve("system", c, "modern").unwrap()).is_empty());
        assert_eq!(
            env(resolve("system", py, "modern").unwrap()),
            BTreeMap::from([(PYTHONMALLOC.to_string(), "malloc".to_string())])
        );
        assert!(env(resolve(PYMALLOC, py, "modern").unwrap()).is_empty());
        for (name, target) in [
            (PYMALLOC, c),
            (PYMALLOC, Target::Synthetic),
            ("null", py),
            ("spin", c),
            ("null", Target::App),
        ] {
            assert!(
                matches!(resolve(name, target, "modern"), Ok(Resolution::NotHere(_))),
                "{name} {target:?}"
            );
        }
        let lib = crate::subjects::malloc::library().unwrap();
        let so = format!("{SO}{lib}");
        let e = env(resolve(&so, Target::Synthetic, "tiny").unwrap());
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(matches!(
            resolve(&so, Target::App, "tiny"),
            Ok(Resolution::NotHere(_))
        ));
        let e = env(resolve(&so, py, "tiny").unwrap());
        assert_eq!(e[PYTHONMALLOC], "malloc");
    }

    #[test]
    fn a_preload_env_names_our_allocator_and_geometry() {
        let p = Preload {
            library: "/x/libpoolbench_preload.so".into(),
            allocator: Some("tcache"),
        };
        let e = p.env("classic");
        assert_eq!(e[LD_PRELOAD], "/x/libpoolbench_preload.so");
        assert_eq!(e[ALLOCATOR_ENV], "tcache");
        assert_eq!(e[GEOMETRY_ENV], "classic");
        let r = Preload {
            allocator: None,
            ..p
        };
        assert_eq!(r.env("classic").len(), 1);
    }

    #[test]
    fn unknown_preload_names_and_missing_builds_say_what_to_do() {
        let e = library_of("preload:tcmalloc").unwrap_err().0;
        assert!(
            e.contains("preload:sharded") && e.contains("preload:jemalloc"),
            "{e}"
        );
        let b = Build {
            name: "x",
            file: "libnothing-here.so",
            package: "nothing",
            allocator: None,
        };
        let e = find_build(&b, &[PathBuf::from("/nonexistent")])
            .unwrap_err()
            .0;
        assert!(e.contains("cargo build") && e.contains("-p nothing"), "{e}");
        let same = Build { name: "y", ..b };
        let other = Build {
            name: "z",
            file: "libother.so",
            package: "other",
            ..b
        };
        let e = missing(&[&b, &same, &other], &[PathBuf::from("/nonexistent")]).0;
        assert!(
            e.contains("subjects `x`, `y`, `z` need libnothing-here.so, libother.so next to")
                && e.contains("they are not there")
                && e.contains("`cargo build")
                && e.contains(" -p nothing -p other`"),
            "{e}"
        );
        assert!(library_of("so:/nonexistent/lib.so")
            .unwrap_err()
            .0
            .contains("/nonexistent/lib.so"));
        assert_eq!(library_of("sharded").unwrap(), None);
    }
}
