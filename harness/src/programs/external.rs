//! External commands as workloads (DESIGN.md §4, kind 3): what a program
//! cell runs, and how its own figure is read from its output.
//!
//! A [`Program`] is a command line, resolved before anything runs: the
//! executable found on `PATH`, and for CPython (a command whose file name
//! starts with `python`) the interpreter itself rather than a launcher
//! script such as pyenv's shim (`sys.executable`), so that `LD_PRELOAD`
//! and `PYTHONMALLOC` reach the process that allocates. The parent runs it
//! under each subject (`cli::exec`) and measures it from outside: wall
//! time, `wait4`'s CPU time, peak RSS and page faults, and the figure a
//! [`Metric`] pattern finds in its output.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use regex::Regex;

use crate::error::BadInput;

/// A program's own figure: the first capture group of `pattern`, a number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Metric {
    pub pattern: String,
    /// What the number is (`ops/s`), or the pattern itself.
    pub name: String,
}

impl Metric {
    /// A metric from a user's pattern, checked: it compiles and has a
    /// capture group.
    pub fn new(pattern: &str, name: Option<&str>) -> Result<Metric, BadInput> {
        let re = Regex::new(pattern)
            .map_err(|e| BadInput::new(format!("--metric `{pattern}` is not a regex: {e}")))?;
        if re.captures_len() < 2 {
            return Err(BadInput::new(format!(
                "--metric `{pattern}` has no capture group: put the number in parentheses, \
                 e.g. `time: ([0-9.]+) s`"
            )));
        }
        Ok(Metric {
            pattern: pattern.to_string(),
            name: name.unwrap_or(pattern).to_string(),
        })
    }

    /// The figure in a program's output: the first capture group of the
    /// last line that matches, in stdout, else in stderr.
    pub fn find(&self, stdout: &str, stderr: &str) -> Result<f64, String> {
        let re = Regex::new(&self.pattern).map_err(|e| e.to_string())?;
        for text in [stdout, stderr] {
            for line in text.lines().rev() {
                let Some(caps) = re.captures(line) else {
                    continue;
                };
                let got = caps.get(1).map_or("", |m| m.as_str()).trim();
                return got.parse::<f64>().map_err(|_| {
                    format!(
                        "--metric `{}` matched `{}`, whose first group `{got}` is not a number",
                        self.pattern,
                        line.trim()
                    )
                });
            }
        }
        Err(format!(
            "no line of the output matches --metric `{}`",
            self.pattern
        ))
    }
}

/// An external command, resolved, as one program cell runs it.
#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    /// The name results use: a bundled workload's (`py-churn`), else the
    /// command's file name (or `exec --name`).
    pub name: String,
    /// The executable.
    pub path: PathBuf,
    pub args: Vec<String>,
    /// The arguments as results record them (a bundled script's text is
    /// recorded by its file name).
    pub shown_args: Vec<String>,
    pub threads: usize,
    /// The environment variable that tells the program its thread count.
    pub threads_env: Option<String>,
    pub metric: Option<Metric>,
    /// CPython: `PYTHONMALLOC` decides whether a subject is used at all.
    pub python: bool,
    /// Exit status 3 means the program's own result check failed (the
    /// bundled workloads).
    pub checks: bool,
    /// Our allocators' geometry under it.
    pub geometry: String,
    /// A bundled workload's size parameter.
    pub size: Option<u64>,
}

impl Program {
    /// The parameters recorded with the cell.
    pub fn params(&self) -> serde_json::Value {
        let mut command = vec![self.path.to_string_lossy().into_owned()];
        command.extend(self.shown_args.iter().cloned());
        let mut v = serde_json::json!({
            "program": self.name,
            "command": command,
            "threads": self.threads,
            "geometry": self.geometry,
            "python": self.python,
        });
        let o = v.as_object_mut().expect("an object");
        if let Some(e) = &self.threads_env {
            o.insert("threads_env".into(), e.clone().into());
        }
        if let Some(m) = &self.metric {
            o.insert("metric".into(), m.pattern.clone().into());
            o.insert("metric_name".into(), m.name.clone().into());
        }
        if let Some(s) = self.size {
            o.insert("size".into(), s.into());
        }
        v
    }
}

/// Whether `command` is CPython by its name (`python`, `python3.11`, ...).
pub fn is_python(command: &Path) -> bool {
    command
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("python"))
}

/// `command` as the shell would find it: a path as given (if it is an
/// executable file), else the first executable of that name on `PATH`.
pub fn find_executable(command: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let runnable = |p: &Path| {
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if command.contains('/') {
        // Absolute for the record, symlinks kept (a multi-call binary
        // dispatches on its name).
        let p = std::path::absolute(command).ok()?;
        return runnable(&p).then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(command))
        .find(|p| runnable(p))
}

/// The interpreter a CPython command runs (`sys.executable`): a launcher
/// script (pyenv's shim) would run under the subject too, and its exit
/// status and resource usage would wrap the interpreter's.
pub fn python_executable(command: &Path) -> Result<PathBuf, String> {
    let out = Command::new(command)
        .args(["-c", "import sys; print(sys.executable)"])
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", command.display()))?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || path.is_empty() {
        return Err(format!(
            "{} does not say where its interpreter is ({}): {}",
            command.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(PathBuf::from(path))
}

/// A command line resolved for running: the executable found, CPython's
/// interpreter behind any launcher.
pub fn resolve_command(command: &str) -> Result<(PathBuf, bool), BadInput> {
    let path = find_executable(command).ok_or_else(|| {
        BadInput::new(format!(
            "command `{command}` not found (not an executable file, nor on PATH)"
        ))
    })?;
    if is_python(&path) {
        let real = python_executable(&path).map_err(BadInput::new)?;
        return Ok((real, true));
    }
    Ok((path, false))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metric_is_the_first_group_of_the_last_matching_line() {
        let m = Metric::new(r"rate: ([0-9.e+]+)", Some("ops/s")).unwrap();
        assert_eq!(m.find("rate: 1\nrate: 2.5\nbye\n", ""), Ok(2.5));
        assert_eq!(m.find("nothing", "rate: 3e+2"), Ok(300.0));
        assert!(m.find("nothing", "").unwrap_err().contains("no line"));
        let m = Metric::new(r"rate: (\S+)", None).unwrap();
        assert!(m.find("rate: fast", "").unwrap_err().contains("`fast`"));
        assert_eq!(m.name, r"rate: (\S+)");
    }

    #[test]
    fn a_metric_needs_a_regex_with_a_group() {
        assert!(Metric::new("rate: [0-9]+", None)
            .unwrap_err()
            .0
            .contains("capture group"));
        assert!(Metric::new("rate: (", None)
            .unwrap_err()
            .0
            .contains("not a regex"));
    }

    #[test]
    fn commands_are_found_like_the_shell_finds_them() {
        assert!(find_executable("sh").is_some());
        assert_eq!(find_executable("/bin/sh"), Some(PathBuf::from("/bin/sh")));
        assert!(find_executable("no-such-command-anywhere").is_none());
        let text = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        assert!(find_executable(text.to_str().unwrap()).is_none());
        assert!(is_python(Path::new("/usr/bin/python3.11")));
        assert!(!is_python(Path::new("/usr/bin/pypy3")));
        let e = resolve_command("no-such-command-anywhere").unwrap_err().0;
        assert!(e.contains("no-such-command-anywhere"), "{e}");
    }
}
