//! The drift between two runs, and the z-score a change must clear.
//!
//! Repeats inside one run are interleaved within minutes, so the
//! bootstrap over them misses what changes between two runs: on a shared machine a whole process varies by ±25% from one run
//! to the next, and with 3 repeats a side two runs separate completely by
//! chance in one cell in ten. So a flagged change must also stand out from
//! two measured noises, as a z-score of its log ratio:
//!
//! - the **drift** of the machine, measured by the cells themselves: per
//!   metric and thread count, the median of every cell's log ratio (the
//!   common mode: the machine was faster or slower as a whole) and their
//!   robust spread (1.4826 × the median absolute deviation), with at least
//!   [`DRIFT_MIN_CELLS`] cells; the change is taken from the common mode;
//! - the cell's own noise: each side's spread of log values over its
//!   repeats (range / d₂, the range-to-σ factor for that many values), as
//!   the standard error of a median (× 1.25 / √n), both sides combined.
//!
//! The change is flagged when it is more than [`DRIFT_Z`] of the two
//! combined away. Both drift figures are printed. A change that moves
//! every cell alike is reported as the common mode, not as regressions; a
//! change to one subject among several (the usual A/B) stands out.

use serde::Serialize;

use super::metric::Metric;
use crate::results::CellMetrics;
use crate::stats;

/// Cells of a metric needed to estimate the drift between runs.
pub const DRIFT_MIN_CELLS: usize = 8;
/// Combined noise spreads (drift and the cell's own) a flagged change
/// must be away from the common mode.
pub const DRIFT_Z: f64 = 3.0;

/// How all cells of one metric and thread count moved between the two
/// runs (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Drift {
    pub metric: Metric,
    pub threads: usize,
    /// Cells compared.
    pub cells: usize,
    /// Median log ratio (new / base) over the cells.
    pub common_log: f64,
    /// 1.4826 × the median absolute deviation of the log ratios.
    pub spread_log: f64,
}

impl Drift {
    /// The drift of `metric` over `pairs` of matched cells' metrics at
    /// `threads`; `None` with fewer than [`DRIFT_MIN_CELLS`] cells.
    pub(super) fn of(
        metric: Metric,
        threads: usize,
        pairs: &[(usize, &CellMetrics, &CellMetrics)],
    ) -> Option<Drift> {
        let logs: Vec<f64> = pairs
            .iter()
            .filter(|(t, _, _)| *t == threads)
            .filter_map(|(_, b, n)| {
                let (b, n) = (
                    stats::median(&metric.measured_values(b))?,
                    stats::median(&metric.measured_values(n))?,
                );
                (b > 0.0 && n > 0.0).then(|| (n / b).ln())
            })
            .collect();
        if logs.len() < DRIFT_MIN_CELLS {
            return None;
        }
        let common_log = stats::median(&logs)?;
        let deviations: Vec<f64> = logs.iter().map(|l| (l - common_log).abs()).collect();
        Some(Drift {
            metric,
            threads,
            cells: logs.len(),
            common_log,
            spread_log: 1.4826 * stats::median(&deviations)?,
        })
    }
}

/// The standard error of the median of `values` in log units, from their
/// range (σ ≈ range / d₂(n)); 0 for fewer than two positive values.
fn log_median_error(values: &[f64]) -> f64 {
    // d₂(n): the expected range of n standard normal values.
    const D2: [f64; 9] = [
        1.128, 1.693, 2.059, 2.326, 2.534, 2.704, 2.847, 2.970, 3.078,
    ];
    let logs: Vec<f64> = values
        .iter()
        .filter(|v| **v > 0.0)
        .map(|v| v.ln())
        .collect();
    let n = logs.len();
    if n < 2 {
        return 0.0;
    }
    let (lo, hi) = logs
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        });
    let d2 = D2[(n - 2).min(D2.len() - 1)];
    1.25 * (hi - lo) / d2 / (n as f64).sqrt()
}

/// The z-score of a log ratio against the drift and both sides' noise;
/// `None` when there is no noise estimate at all.
pub(super) fn z_score(ratio: f64, base: &[f64], new: &[f64], drift: Option<&Drift>) -> Option<f64> {
    let (common, spread) = drift.map_or((0.0, 0.0), |d| (d.common_log, d.spread_log));
    let cell = log_median_error(base).hypot(log_median_error(new));
    let noise = spread.hypot(cell);
    (noise > 0.0).then(|| (ratio.ln() - common).abs() / noise)
}
