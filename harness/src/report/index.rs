//! `index.html`: every run in a reports folder, newest first.
//!
//! The index is rebuilt from the results files themselves (`*.json`), not
//! kept as state, so deleting a run's files removes it from the index and a
//! copied folder indexes itself. Files that are not readable results (other
//! JSON, another schema version, a truncated file) are listed with the
//! reason they were skipped instead of failing the whole index.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use crate::results::{RunResults, FLOOR_SUBJECT};

use super::format::ops;
use super::group::Group;
use super::template;

#[derive(Debug, Serialize)]
struct IndexPage {
    runs: Vec<RunRow>,
    skipped: Vec<String>,
}

#[derive(Debug, Serialize)]
struct RunRow {
    started_at: String,
    results_file: String,
    report: Option<String>,
    commit: String,
    machine: String,
    cells: usize,
    failed: usize,
    repeats: u32,
    headlines: Vec<String>,
}

/// The best non-null throughput at the most threads, per workload, and
/// whether it is ahead of the runner-up beyond the noise
/// (`summary::best_cells`).
pub fn headlines(r: &RunResults) -> Vec<String> {
    let best = super::summary::best_cells(r);
    Group::all(r)
        .iter()
        .filter_map(|g| {
            let t = g.max_threads();
            let (s, v) = g
                .subjects()
                .into_iter()
                .filter(|s| *s != FLOOR_SUBJECT)
                .filter_map(|s| Some((s, g.metrics(s, t)?.ops_per_sec.median)))
                .max_by(|a, b| a.1.total_cmp(&b.1))?;
            let ahead = g.cell(s, t).is_some_and(|c| best.contains(&c.key()));
            Some(format!(
                "{}: {s} {} at {t} threads ({})",
                g.title(),
                ops(v),
                if ahead {
                    "ahead beyond the noise"
                } else {
                    "not ahead beyond the noise"
                }
            ))
        })
        .collect()
}

/// Rebuilds `<out_dir>/index.html` from the results files in `out_dir`.
pub fn write_index(out_dir: &Path) -> Result<PathBuf> {
    let entries = std::fs::read_dir(out_dir)
        .with_context(|| format!("cannot list reports folder {}", out_dir.display()))?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json") && p.is_file())
        .collect();
    paths.sort();
    let mut runs = Vec::new();
    let mut skipped = Vec::new();
    for p in paths {
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let r = match RunResults::load(&p) {
            Ok(r) => r,
            Err(e) => {
                skipped.push(format!("{name}: {e:#}"));
                continue;
            }
        };
        // The report is named after the results file or the run's start.
        let own = p.with_extension("html");
        let by_start = out_dir.join(format!("{}.html", super::stem(&r)));
        let report = [own, by_start]
            .into_iter()
            .find(|h| h.is_file())
            .and_then(|h| h.file_name().map(|n| n.to_string_lossy().into_owned()));
        let e = &r.environment;
        runs.push(RunRow {
            started_at: r.started_at.clone(),
            results_file: name,
            report,
            commit: e
                .git_commit
                .as_deref()
                .map(|c| c.chars().take(12).collect())
                .unwrap_or_else(|| "—".into()),
            machine: format!(
                "{} · {} · {} cores",
                e.hostname, e.cpu_model, e.logical_cores
            ),
            cells: r.cells.len(),
            failed: r.cells.iter().filter(|c| c.metrics().is_none()).count(),
            repeats: r.repeats,
            headlines: headlines(&r),
        });
    }
    runs.sort_by(|a, b| b.started_at.cmp(&a.started_at));
    let html = template::render("index.html", &IndexPage { runs, skipped })?;
    let path = out_dir.join("index.html");
    std::fs::write(&path, html).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}
