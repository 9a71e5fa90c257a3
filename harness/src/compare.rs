//! TEMPORARY STAND-IN on the `cli` branch, replaced at merge by the report
//! helper's `compare.rs`. Assumed contract: compare two results files,
//! print the differences, return whether any regression was flagged.

use std::path::Path;

use anyhow::Result;

use crate::results::RunResults;

pub fn run(baseline: &Path, candidate: &Path, threshold_pct: f64, _out_dir: &Path) -> Result<bool> {
    let a = RunResults::load(baseline)?;
    let b = RunResults::load(candidate)?;
    let mut regressed = false;
    for cb in &b.cells {
        let Some(ca) = a.cells.iter().find(|c| c.key() == cb.key()) else {
            continue;
        };
        if let (Some(ma), Some(mb)) = (ca.metrics(), cb.metrics()) {
            let change = (mb.ops_per_sec / ma.ops_per_sec - 1.0) * 100.0;
            let flag = change < -threshold_pct;
            regressed |= flag;
            println!(
                "{}: {change:+.1}%{}",
                cb.key(),
                if flag { "  REGRESSION" } else { "" }
            );
        }
    }
    Ok(regressed)
}
