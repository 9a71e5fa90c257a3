//! TEMPORARY STAND-IN on the `cli` branch, replaced at merge by the report
//! helper's `compare.rs`. It mirrors the API that file exposes
//! (`Options`, `compare`, `Comparison::{has_regression, render_terminal,
//! render_html}`) with a throughput-only comparison.

use serde::Serialize;

use crate::results::RunResults;

/// Default relative change flagged: 10%.
pub const DEFAULT_THRESHOLD: f64 = 0.10;

#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Options {
    /// Relative change flagged (0.10 = 10%).
    pub threshold: f64,
    /// Exit non-zero when [`Comparison::has_regression`] (the CLI's job).
    pub fail_on_regression: bool,
}

impl Options {
    pub fn validate(&self) -> anyhow::Result<()> {
        if !self.threshold.is_finite() || self.threshold < 0.0 || self.threshold >= 10.0 {
            anyhow::bail!(
                "threshold {} is not accepted: give a relative change between 0 and 10 (0.10 = 10%)",
                self.threshold
            );
        }
        Ok(())
    }
}

pub struct Comparison {
    lines: Vec<(String, f64, bool)>,
}

pub fn compare(base: &RunResults, new: &RunResults, opts: &Options) -> Comparison {
    let mut lines = Vec::new();
    for cb in &new.cells {
        let Some(ca) = base.cells.iter().find(|c| c.key() == cb.key()) else {
            continue;
        };
        if let (Some(ma), Some(mb)) = (ca.metrics(), cb.metrics()) {
            let change = mb.ops_per_sec / ma.ops_per_sec - 1.0;
            lines.push((cb.key(), change, change < -opts.threshold));
        }
    }
    Comparison { lines }
}

impl Comparison {
    pub fn has_regression(&self) -> bool {
        self.lines.iter().any(|l| l.2)
    }

    pub fn render_terminal(&self) -> String {
        self.lines
            .iter()
            .map(|(k, c, r)| {
                format!(
                    "{k}: {:+.1}%{}\n",
                    c * 100.0,
                    if *r { "  REGRESSION" } else { "" }
                )
            })
            .collect()
    }

    pub fn render_html(&self) -> anyhow::Result<String> {
        Ok(format!(
            "<!doctype html><meta charset=utf-8><pre>{}</pre>",
            self.render_terminal()
        ))
    }
}
