//! TEMPORARY STAND-IN on the `cli` branch, replaced at merge by the report
//! helper's `report.rs`: writes a bare HTML page listing the cells.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::results::RunResults;

pub fn write_report(results: &RunResults, out_dir: &Path) -> Result<PathBuf> {
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let stamp: String = results
        .started_at
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    let path = out_dir.join(format!("poolbench-{stamp}.html"));
    let mut html = String::from("<!doctype html><meta charset=utf-8><title>poolbench</title><ul>");
    for c in &results.cells {
        html.push_str(&format!("<li>{}</li>", c.key()));
    }
    html.push_str("</ul>");
    std::fs::write(&path, html).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}
