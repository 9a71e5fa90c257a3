//! Expanding a run request into its cells.
//!
//! A run is subjects × workloads × sweep points × thread counts. Every
//! cell's workload is resolved here, in the parent, before anything runs:
//! preset or file → `--quick` scaling → `--set` overrides → the sweep
//! point's values → the thread count, then `Workload::validate`. So a bad
//! field or value is reported up front, naming the field and the accepted
//! values, instead of as a failed cell half-way through a suite; and each
//! child receives exactly the workload recorded in the results file.
//!
//! The order is stable and meant for reading: workloads in the order given,
//! then sweep points (first `--sweep` outermost), then thread counts, then
//! subjects — so cells that compare subjects at one configuration are
//! adjacent in the summary.
//!
//! Each cell also gets the environment its subject needs in its child
//! (`subjects::preload::resolve`: `LD_PRELOAD` for a `so:PATH` or
//! `preload:NAME` subject, and for our allocators and the references in a
//! program cell), checked here too: a library that is missing is reported
//! before anything runs.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::error::BadInput;
use crate::programs::{apps, external, python};
use crate::spec::preset;
use crate::spec::workload::{Checked, Workload};
use crate::subjects::preload::{self, Resolution, Target};

/// What the user asked for, parsed but not yet resolved.
#[derive(Clone, Debug, Default)]
pub struct Request {
    /// Subject names, or `all`.
    pub subjects: Vec<String>,
    /// Preset names or workload file paths.
    pub workloads: Vec<String>,
    /// Thread counts; empty means each workload's own.
    pub threads: Vec<usize>,
    /// `FIELD=VALUE` overrides.
    pub sets: Vec<String>,
    /// `FIELD=V1,V2,...` sweeps.
    pub sweeps: Vec<String>,
    pub quick: bool,
}

/// What a cell runs.
#[derive(Clone, Debug, PartialEq)]
pub enum Work {
    /// A synthetic workload, compiled into tapes in the child.
    Synthetic(Box<Checked>),
    /// An application program, with the subject as the child's global
    /// allocator.
    App {
        app: &'static str,
        size: u64,
        threads: usize,
    },
    /// An external command, under the subject from outside.
    Program(Box<external::Program>),
}

impl Work {
    /// The name results and reports use.
    pub fn name(&self) -> &str {
        match self {
            Work::Synthetic(w) => &w.name,
            Work::App { app, .. } => app,
            Work::Program(p) => &p.name,
        }
    }

    pub fn threads(&self) -> usize {
        match self {
            Work::Synthetic(w) => w.threads,
            Work::App { threads, .. } => *threads,
            Work::Program(p) => p.threads,
        }
    }

    /// The parameters recorded with the cell's results.
    pub fn params(&self) -> serde_json::Value {
        match self {
            Work::Synthetic(w) => serde_json::to_value(&**w).unwrap_or_default(),
            Work::App { app, size, threads } => {
                serde_json::json!({ "app": app, "size": size, "threads": threads })
            }
            Work::Program(p) => p.params(),
        }
    }
}

/// One cell to run: a subject and what it runs, fully resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct CellSpec {
    pub subject: String,
    pub work: Work,
    /// The swept fields' values at this cell's point.
    pub sweep: BTreeMap<String, String>,
    /// The variables the subject needs in this cell's child (see
    /// `subjects::preload`); empty for a subject in the binary.
    pub subject_env: BTreeMap<String, String>,
}

impl CellSpec {
    pub fn threads(&self) -> usize {
        self.work.threads()
    }

    /// Names its configuration like `results::Cell::config_key` does.
    pub fn config_key(&self) -> String {
        let mut k = format!("{}/t{}", self.work.name(), self.threads());
        for (f, v) in &self.sweep {
            k.push_str(&format!("/{f}={v}"));
        }
        k
    }

    /// Names the cell like `results::Cell::key` does.
    pub fn key(&self) -> String {
        let mut k = format!("{}/{}/t{}", self.work.name(), self.subject, self.threads());
        for (f, v) in &self.sweep {
            k.push_str(&format!("/{f}={v}"));
        }
        k
    }
}

/// Resolves and validates every cell of a request, in the stable order.
pub fn expand(req: &Request) -> Result<Vec<CellSpec>, BadInput> {
    expand_noting(req).map(|(cells, _)| cells)
}

/// [`expand`], with a note for each workload left out (a Python workload
/// where there is no `python3`).
pub fn expand_noting(req: &Request) -> Result<(Vec<CellSpec>, Vec<String>), BadInput> {
    let subjects = resolve_subjects(&req.subjects)?;
    let mut notes = Vec::new();
    let mut refused = BTreeMap::new();
    if req.workloads.is_empty() {
        return Err(BadInput::new(format!(
            "no workload given: pass --workload PRESET|FILE.toml (presets: {})",
            preset_names().join(", ")
        )));
    }
    let sets = req
        .sets
        .iter()
        .map(|s| parse_set(s))
        .collect::<Result<Vec<_>, _>>()?;
    let mut sweeps = Vec::new();
    let mut threads = req.threads.clone();
    for s in &req.sweeps {
        let (field, values) = parse_sweep(s)?;
        if sweeps
            .iter()
            .any(|(f, _): &(String, Vec<String>)| *f == field)
        {
            return Err(BadInput::new(format!(
                "--sweep: field `{field}` is swept twice"
            )));
        }
        // Threads are a first-class axis (Cell::threads); a threads sweep is --threads.
        if field == "threads" {
            if !req.threads.is_empty() {
                return Err(BadInput::new(
                    "--sweep threads=... and --threads both given; use one",
                ));
            }
            threads = values
                .iter()
                .map(|v| parse_threads(v))
                .collect::<Result<Vec<_>, _>>()?;
        } else {
            sweeps.push((field, values));
        }
    }
    if let Some(t) = threads.iter().find(|t| **t == 0) {
        return Err(BadInput::new(format!(
            "--threads: `{t}` is not valid (accepted: integers >= 1)"
        )));
    }
    let points = sweep_points(&sweeps);

    let mut cells = Vec::new();
    let mut seen = BTreeSet::new();
    let mut push = |cell: CellSpec| {
        if !seen.insert(cell.key()) {
            return Err(BadInput::new(format!(
                "cell {} would run twice (a workload or value given twice?)",
                cell.key()
            )));
        }
        cells.push(cell);
        Ok(())
    };
    for arg in &req.workloads {
        if let Some((app, size)) = app_of(arg, req.quick)? {
            let app_subjects =
                subjects_for(&req.subjects, &subjects, Target::App, "", &mut refused)?;
            let thread_counts = if threads.is_empty() {
                vec![1]
            } else {
                threads.clone()
            };
            for &t in &thread_counts {
                for (subject, env) in &app_subjects {
                    push(CellSpec {
                        subject: subject.clone(),
                        work: Work::App {
                            app,
                            size,
                            threads: t,
                        },
                        sweep: BTreeMap::new(),
                        subject_env: env.clone(),
                    })?;
                }
            }
            continue;
        }
        if let Some((script, size)) = python_of(arg, req.quick)? {
            let interpreter = match python::interpreter() {
                Ok(p) => p,
                Err(why) => {
                    notes.push(format!("{arg}: skipped: {why}"));
                    continue;
                }
            };
            let geometry = program_geometry(&sets)?;
            let target = Target::Program { python: true };
            let py_subjects =
                subjects_for(&req.subjects, &subjects, target, &geometry, &mut refused)?;
            let thread_counts = match (script.threaded, threads.is_empty()) {
                (false, _) => vec![1],
                (true, true) => vec![python::DEFAULT_THREADS],
                (true, false) => threads.clone(),
            };
            for &t in &thread_counts {
                let program = python::program(script, interpreter.clone(), size, t, &geometry);
                for (subject, env) in &py_subjects {
                    push(CellSpec {
                        subject: subject.clone(),
                        work: Work::Program(Box::new(program.clone())),
                        sweep: BTreeMap::new(),
                        subject_env: env.clone(),
                    })?;
                }
            }
            continue;
        }
        let mut base = load_workload(arg)?;
        if req.quick {
            base = base.quick();
        }
        for (field, value) in &sets {
            base.set(field, value)
                .map_err(|e| BadInput::new(format!("--set {field}={value}: {e}")))?;
        }
        for point in &points {
            let mut w = base.clone();
            for (field, value) in point {
                w.set(field, value)
                    .map_err(|e| BadInput::new(format!("--sweep {field}={value}: {e}")))?;
            }
            let thread_counts = if threads.is_empty() {
                vec![w.threads]
            } else {
                threads.clone()
            };
            for &t in &thread_counts {
                let mut w = w.clone();
                w.threads = t;
                let name = w.name.clone();
                let w = w.check().map_err(|e| {
                    let at = if point.is_empty() {
                        String::new()
                    } else {
                        format!(" at {point:?}")
                    };
                    BadInput::new(format!(
                        "workload `{name}` ({arg}) with {t} threads{at}: {e}"
                    ))
                })?;
                let synthetic = subjects_for(
                    &req.subjects,
                    &subjects,
                    Target::Synthetic,
                    &w.geometry,
                    &mut refused,
                )?;
                for (subject, env) in synthetic {
                    push(CellSpec {
                        subject,
                        work: Work::Synthetic(Box::new(w.clone())),
                        sweep: point.clone(),
                        subject_env: env,
                    })?;
                }
            }
        }
    }
    every_subject_runs(&req.subjects, &subjects, &cells, &refused)?;
    Ok((cells, notes))
}

/// Refuses a subject asked for by name that runs no cell at all, with the
/// reason it could not run where it was asked to.
pub fn every_subject_runs(
    asked: &[String],
    resolved: &[String],
    cells: &[CellSpec],
    refused: &BTreeMap<String, String>,
) -> Result<(), BadInput> {
    if asked.is_empty() || asked.iter().any(|n| n.trim() == "all") {
        return Ok(());
    }
    for name in resolved {
        if let (Some(why), false) = (refused.get(name), cells.iter().any(|c| c.subject == *name)) {
            return Err(BadInput::new(why.clone()));
        }
    }
    Ok(())
}

/// A Python workload argument, `NAME` or `NAME:SIZE`, with its size
/// (scaled down for `--quick`); `None` when `arg` names none.
fn python_of(arg: &str, quick: bool) -> Result<Option<(&'static python::Script, u64)>, BadInput> {
    let (name, size) = arg.split_once(':').unwrap_or((arg, ""));
    let Some(script) = python::info(name) else {
        return Ok(None);
    };
    let size = if size.is_empty() {
        if quick {
            script.quick_size()
        } else {
            script.default_size
        }
    } else {
        size.trim()
            .parse::<u64>()
            .ok()
            .filter(|s| *s >= 1)
            .ok_or_else(|| {
                BadInput::new(format!(
                    "{arg}: the size `{size}` is not a whole number >= 1"
                ))
            })?
    };
    Ok(Some((script, size)))
}

/// Our allocators' geometry in program cells: `--set geometry=NAME` if
/// given, else `modern` (CPython 3.10+'s, and the 16-byte alignment C
/// promises).
fn program_geometry(sets: &[(String, String)]) -> Result<String, BadInput> {
    let g = sets
        .iter()
        .rev()
        .find(|(f, _)| f == "geometry")
        .map_or("modern", |(_, v)| v.as_str());
    check_geometry(g)?;
    Ok(g.to_string())
}

/// A geometry name our allocators know.
pub fn check_geometry(name: &str) -> Result<(), BadInput> {
    match allocator::Geometry::by_name(name) {
        Some(_) => Ok(()),
        None => Err(BadInput::new(format!(
            "geometry `{name}` is unknown (accepted: classic, modern, tiny)"
        ))),
    }
}

/// The variables a subject needs in a cell's child.
pub type SubjectEnv = BTreeMap<String, String>;

/// The subjects of cells that run in a child of `target`, each with the
/// variables its child needs. Under `all`, a program cell takes every
/// subject a program can run under (`subjects::preload::program_names`).
/// A subject that cannot run there is left out, and why is kept in
/// `refused`: a subject asked for by name that runs no workload of the
/// request at all is bad input ([`every_subject_runs`]).
pub fn subjects_for(
    asked: &[String],
    resolved: &[String],
    target: Target,
    geometry: &str,
    refused: &mut BTreeMap<String, String>,
) -> Result<Vec<(String, SubjectEnv)>, BadInput> {
    let all = asked.is_empty() || asked.iter().any(|n| n.trim() == "all");
    let mut names: Vec<String> = resolved.to_vec();
    if let (true, Target::Program { python }) = (all, target) {
        let extra = resolved
            .iter()
            .filter(|n| !crate::subjects::NAMES.contains(&n.as_str()));
        let mut program: Vec<String> = Vec::new();
        for n in preload::program_names(python)
            .iter()
            .map(|s| s.to_string())
            .chain(extra.cloned())
        {
            if !program.contains(&n) {
                program.push(n);
            }
        }
        names = program;
    }
    preload::check_builds(names.iter().map(String::as_str), target)?;
    let mut out = Vec::new();
    for name in names {
        match preload::resolve(&name, target, geometry)? {
            Resolution::Env(env) => out.push((name, env)),
            Resolution::NotHere(why) => {
                refused.entry(name).or_insert(why);
            }
        }
    }
    Ok(out)
}

/// An application workload argument, `NAME` or `NAME:SIZE`, with its size
/// (scaled down for `--quick`); `None` when `arg` names no program.
fn app_of(arg: &str, quick: bool) -> Result<Option<(&'static str, u64)>, BadInput> {
    let (name, size) = arg.split_once(':').unwrap_or((arg, ""));
    let Some(app) = apps::info(name) else {
        return Ok(None);
    };
    let size = if size.is_empty() {
        if quick {
            app.quick_size()
        } else {
            app.default_size
        }
    } else {
        size.trim()
            .parse::<u64>()
            .map_err(|_| BadInput::new(format!("{arg}: the size `{size}` is not a whole number")))?
    };
    if !(app.min_size..=app.max_size).contains(&size) {
        return Err(BadInput::new(format!(
            "{arg}: size {size} is out of range ({}..={}; {})",
            app.min_size, app.max_size, app.size_means
        )));
    }
    Ok(Some((app.name, size)))
}

/// `all` (with any subject also named) or a list of known subject names,
/// order kept, duplicates dropped. Besides the listed subjects: `malloc`,
/// `pymalloc`, `spin` (the calibration subject), and `so:PATH` or
/// `preload:NAME` (whose library must exist).
pub fn resolve_subjects(names: &[String]) -> Result<Vec<String>, BadInput> {
    let known = crate::subjects::NAMES;
    let all = names.is_empty() || names.iter().any(|n| n.trim() == "all");
    let mut out: Vec<String> = if all {
        known.iter().map(|s| s.to_string()).collect()
    } else {
        Vec::new()
    };
    for n in names {
        let n = n.trim();
        if n == "all" {
            continue;
        }
        // `spin` is named, never part of `all`.
        let calibration = crate::subjects::info(n)
            .is_some_and(|i| i.family == crate::subjects::Family::Calibration);
        let other = n == "malloc" || n == preload::PYMALLOC || calibration;
        if preload::library_of(n)?.is_none() && !known.contains(&n) && !other {
            return Err(BadInput::new(format!(
                "unknown subject `{n}` (accepted: {}, malloc, {}, spin, so:PATH, preload:NAME, or all)",
                known.join(", "),
                preload::PYMALLOC
            )));
        }
        if !out.iter().any(|o| o == n) {
            out.push(n.to_string());
        }
    }
    Ok(out)
}

/// Preset names in the preset module's order.
pub fn preset_names() -> Vec<&'static str> {
    preset::names()
}

/// A preset by name, or a workload TOML file by path. An argument that
/// names an existing file, or ends in `.toml`, or contains a path
/// separator, is a file; anything else must be a preset.
pub fn load_workload(arg: &str) -> Result<Workload, BadInput> {
    let path = Path::new(arg);
    let looks_like_file =
        path.is_file() || arg.ends_with(".toml") || arg.contains(std::path::MAIN_SEPARATOR);
    if !looks_like_file {
        if !preset_names().contains(&arg) {
            return Err(BadInput::new(format!(
                "unknown preset `{arg}` (accepted: {}, or a path to a workload .toml file)",
                preset_names().join(", ")
            )));
        }
        return preset::get(arg).map_err(|e| BadInput::new(format!("preset `{arg}`: {e}")));
    }
    if !path.is_file() {
        return Err(BadInput::new(format!(
            "cannot read workload file {arg}: no such file"
        )));
    }
    let mut w = crate::spec::file::from_file(path)
        .map_err(|e| BadInput::new(format!("workload file {arg}: {e}")))?;
    if w.name.trim().is_empty() {
        w.name = path
            .file_stem()
            .map_or_else(|| arg.to_string(), |s| s.to_string_lossy().into_owned());
    }
    Ok(w)
}

/// Splits `FIELD=VALUE`.
pub fn parse_set(s: &str) -> Result<(String, String), BadInput> {
    match s.split_once('=') {
        Some((f, v)) if !f.trim().is_empty() => Ok((f.trim().to_string(), v.trim().to_string())),
        _ => Err(BadInput::new(format!(
            "--set `{s}` is malformed (expected FIELD=VALUE; fields: {})",
            field_names().join(", ")
        ))),
    }
}

/// Splits `FIELD=V1,V2,...` (at least one non-empty value, none repeated).
pub fn parse_sweep(s: &str) -> Result<(String, Vec<String>), BadInput> {
    let malformed = || {
        BadInput::new(format!(
            "--sweep `{s}` is malformed (expected FIELD=V1,V2,...; fields: {})",
            field_names().join(", ")
        ))
    };
    let (f, vs) = s.split_once('=').ok_or_else(malformed)?;
    let f = f.trim();
    let values: Vec<String> = vs.split(',').map(|v| v.trim().to_string()).collect();
    if f.is_empty() || values.iter().any(|v| v.is_empty()) {
        return Err(malformed());
    }
    let distinct: BTreeSet<_> = values.iter().collect();
    if distinct.len() != values.len() {
        return Err(BadInput::new(format!("--sweep `{s}` repeats a value")));
    }
    Ok((f.to_string(), values))
}

fn parse_threads(v: &str) -> Result<usize, BadInput> {
    v.parse::<usize>().ok().filter(|t| *t >= 1).ok_or_else(|| {
        BadInput::new(format!(
            "threads: `{v}` is not valid (accepted: integers >= 1)"
        ))
    })
}

fn field_names() -> Vec<&'static str> {
    Workload::FIELD_NAMES.to_vec()
}

/// The cross product of the sweeps, first sweep outermost; one empty point
/// when nothing is swept.
fn sweep_points(sweeps: &[(String, Vec<String>)]) -> Vec<BTreeMap<String, String>> {
    let mut points = vec![BTreeMap::new()];
    for (field, values) in sweeps {
        points = points
            .iter()
            .flat_map(|p| {
                values.iter().map(move |v| {
                    let mut p = p.clone();
                    p.insert(field.clone(), v.clone());
                    p
                })
            })
            .collect();
    }
    points
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(workloads: &[&str]) -> Request {
        Request {
            subjects: vec!["system".into(), "null".into()],
            workloads: workloads.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        }
    }

    fn first_preset() -> &'static str {
        preset_names()[0]
    }

    #[test]
    fn order_is_workload_then_point_then_threads_then_subject() {
        let mut r = req(&[first_preset()]);
        r.threads = vec![1, 2];
        r.sweeps = vec!["seed=7,8".into()];
        let cells = expand(&r).unwrap();
        let got: Vec<_> = cells
            .iter()
            .map(|c| (c.sweep["seed"].clone(), c.threads(), c.subject.clone()))
            .collect();
        let mut want = Vec::new();
        for seed in ["7", "8"] {
            for t in [1, 2] {
                for s in ["system", "null"] {
                    want.push((seed.to_string(), t, s.to_string()));
                }
            }
        }
        assert_eq!(got, want);
        // The swept value and the thread count are in the resolved workload.
        let w = cells[7].work.params();
        assert_eq!(w["seed"].to_string(), "8");
        assert_eq!(cells[7].work.threads(), 2);
    }

    #[test]
    fn sweeps_cross_first_outermost() {
        let pts = sweep_points(&[
            ("a".into(), vec!["1".into(), "2".into()]),
            ("b".into(), vec!["x".into(), "y".into()]),
        ]);
        let flat: Vec<String> = pts
            .iter()
            .map(|p| format!("{}{}", p["a"], p["b"]))
            .collect();
        assert_eq!(flat, ["1x", "1y", "2x", "2y"]);
        assert_eq!(sweep_points(&[]), vec![BTreeMap::new()]);
    }

    #[test]
    fn threads_sweep_is_the_threads_axis() {
        let mut r = req(&[first_preset()]);
        r.sweeps = vec!["threads=1,3".into()];
        let cells = expand(&r).unwrap();
        assert_eq!(
            cells.iter().map(|c| c.threads()).collect::<Vec<_>>(),
            [1, 1, 3, 3]
        );
        assert!(cells.iter().all(|c| c.sweep.is_empty()));
        r.threads = vec![2];
        assert!(expand(&r).unwrap_err().0.contains("--threads"));
    }

    #[test]
    fn bad_input_names_the_thing_and_the_accepted_values() {
        let mut r = req(&[first_preset()]);
        r.subjects = vec!["glibc".into()];
        let e = expand(&r).unwrap_err().0;
        assert!(e.contains("`glibc`") && e.contains("jemalloc"), "{e}");

        let e = expand(&req(&["nonesuch"])).unwrap_err().0;
        assert!(
            e.contains("`nonesuch`") && e.contains(first_preset()),
            "{e}"
        );

        let e = expand(&req(&["/nonexistent/w.toml"])).unwrap_err().0;
        assert!(e.contains("/nonexistent/w.toml"), "{e}");

        let mut r = req(&[first_preset()]);
        r.sets = vec!["ops_per_thread".into()];
        let e = expand(&r).unwrap_err().0;
        assert!(
            e.contains("FIELD=VALUE") && e.contains("ops_per_thread"),
            "{e}"
        );

        let mut r = req(&[first_preset()]);
        r.sets = vec!["no_such_field=1".into()];
        let e = expand(&r).unwrap_err().0;
        assert!(e.contains("no_such_field"), "{e}");

        let mut r = req(&[first_preset()]);
        r.sweeps = vec!["seed=1,,2".into()];
        assert!(expand(&r).unwrap_err().0.contains("malformed"));

        let mut r = req(&[first_preset()]);
        r.threads = vec![0];
        assert!(expand(&r).unwrap_err().0.contains("--threads"));

        let e = expand(&req(&[])).unwrap_err().0;
        assert!(
            e.contains("--workload") && e.contains(first_preset()),
            "{e}"
        );
    }

    #[test]
    fn a_subject_that_cannot_run_a_workload_skips_it_but_must_run_one() {
        // `null` cannot serve an application; `system` runs both.
        let mut r = req(&[first_preset(), "binary-trees"]);
        r.threads = vec![1];
        let cells = expand(&r).unwrap();
        let app: Vec<_> = cells
            .iter()
            .filter(|c| matches!(c.work, Work::App { .. }))
            .map(|c| c.subject.as_str())
            .collect();
        assert_eq!(app, ["system"]);
        // A subject named for workloads it can never run is refused.
        let mut r = req(&["binary-trees"]);
        r.subjects = vec!["null".into()];
        assert!(expand(&r).unwrap_err().0.contains("`null`"));
        let mut r = req(&[first_preset()]);
        r.subjects = vec!["pymalloc".into()];
        assert!(expand(&r).unwrap_err().0.contains("CPython"));
    }

    #[test]
    fn a_shared_library_subject_gets_its_preload_and_the_workloads_geometry() {
        let libc = crate::subjects::malloc::library().unwrap();
        let mut r = req(&[first_preset()]);
        r.subjects = vec![format!("so:{libc}"), "system".into()];
        r.sets = vec!["geometry=tiny".into()];
        let cells = expand(&r).unwrap();
        let so = &cells[0];
        assert_eq!(so.subject, format!("so:{libc}"));
        let abs = std::fs::canonicalize(&libc).unwrap();
        assert_eq!(so.subject_env["LD_PRELOAD"], abs.to_str().unwrap());
        assert!(cells[1].subject_env.is_empty());
        r.subjects = vec!["so:/nonexistent/libx.so".into()];
        assert!(expand(&r).unwrap_err().0.contains("/nonexistent/libx.so"));
    }

    #[test]
    fn duplicate_cells_are_refused() {
        let p = first_preset();
        assert!(expand(&req(&[p, p])).unwrap_err().0.contains("twice"));
    }

    #[test]
    fn all_subjects_in_table_order_and_duplicates_dropped() {
        let all = resolve_subjects(&["all".into()]).unwrap();
        assert_eq!(all, crate::subjects::NAMES);
        let some = resolve_subjects(&["null".into(), "system".into(), "null".into()]).unwrap();
        assert_eq!(some, ["null", "system"]);
        // The calibration subject is named, never part of `all`; test
        // subjects are never accepted.
        let spin = resolve_subjects(&["all".into(), "spin".into()]).unwrap();
        assert_eq!(spin.last().map(String::as_str), Some("spin"));
        assert!(resolve_subjects(&["test-double".into()]).is_err());
    }

    #[test]
    fn quick_scales_ops_down_and_sets_win_over_it() {
        let p = first_preset();
        let base = serde_json::to_value(crate::spec::preset::get(p).unwrap()).unwrap();
        let ops = base["ops_per_thread"].as_u64().unwrap();
        let mut r = req(&[p]);
        r.quick = true;
        let quick = expand(&r).unwrap()[0].work.params();
        let want = crate::spec::preset::get(p).unwrap().quick();
        assert_eq!(quick["ops_per_thread"].as_u64(), want.ops_per_thread);
        assert!(want.ops_per_thread < Some(ops));
        r.sets = vec!["ops_per_thread=1234".into()];
        let set = expand(&r).unwrap()[0].work.params();
        assert_eq!(set["ops_per_thread"].as_u64(), Some(1234));
    }
}
