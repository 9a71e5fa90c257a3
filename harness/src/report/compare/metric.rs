//! The metrics `compare` compares, and how each is read from a repeat.

use serde::Serialize;

use super::MIN_TAIL_SAMPLES;
use crate::report::{format_bytes, format_ns, format_ops};
use crate::results::{CellMetrics, RunMetrics};

/// A compared metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Throughput,
    AllocP50,
    AllocP99,
    FreeP99,
    PeakRss,
}

impl Metric {
    pub const ALL: [Metric; 5] = [
        Metric::Throughput,
        Metric::AllocP50,
        Metric::AllocP99,
        Metric::FreeP99,
        Metric::PeakRss,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Metric::Throughput => "throughput",
            Metric::AllocP50 => "alloc p50",
            Metric::AllocP99 => "alloc p99",
            Metric::FreeP99 => "free p99",
            Metric::PeakRss => "peak RSS",
        }
    }

    pub fn higher_is_better(self) -> bool {
        matches!(self, Metric::Throughput)
    }

    /// The metric in one repeat; `None` where it was not measured.
    fn of_run(self, r: &RunMetrics, below: Below) -> Option<f64> {
        let free = if r.latency.contains_key("free_local") {
            "free_local"
        } else {
            "free_remote"
        };
        let v = match self {
            Metric::Throughput => r.ops_per_sec,
            Metric::AllocP50 => percentile(r, "alloc", 50.0, below)?,
            Metric::AllocP99 => percentile(r, "alloc", 99.0, below)?,
            Metric::FreeP99 => percentile(r, free, 99.0, below)?,
            Metric::PeakRss => r.memory.peak_rss_bytes as f64,
        };
        (v.is_finite() && v > 0.0).then_some(v)
    }

    /// Every repeat's value (repeats without one are left out).
    pub(super) fn values(self, m: &CellMetrics) -> Vec<f64> {
        m.runs
            .iter()
            .filter_map(|r| self.of_run(r, Below::AsResolution))
            .collect()
    }

    /// Every repeat's value that is a measurement, not a bound: the drift
    /// is estimated from these, or the many cells whose percentiles sit
    /// below the resolution in both runs would read as "no change" and
    /// shrink its spread to nothing.
    pub(super) fn measured_values(self, m: &CellMetrics) -> Vec<f64> {
        m.runs
            .iter()
            .filter_map(|r| self.of_run(r, Below::Drop))
            .collect()
    }

    pub(super) fn format(self, v: f64) -> String {
        match self {
            Metric::Throughput => format_ops(v),
            Metric::AllocP50 | Metric::AllocP99 | Metric::FreeP99 => format_ns(v),
            Metric::PeakRss => format_bytes(v),
        }
    }
}

/// What a percentile below the clock's resolution counts as.
#[derive(Clone, Copy)]
enum Below {
    /// The resolution: the most it can be.
    AsResolution,
    /// Nothing: it is not a measurement.
    Drop,
}

fn percentile(r: &RunMetrics, kind: &str, p: f64, below: Below) -> Option<f64> {
    let l = r.latency.get(kind)?;
    // A percentile resting on a handful of samples is not a figure to
    // compare (the p99 of 600 samples is the sixth largest).
    if (l.count as f64) * (1.0 - p / 100.0) < MIN_TAIL_SAMPLES {
        return None;
    }
    let q = l
        .percentiles
        .iter()
        .find(|q| (q.percentile - p).abs() < 1e-9)?;
    match (q.below_resolution, below) {
        (false, _) => Some(q.ns),
        (true, Below::AsResolution) => Some(q.ns.max(r.clock.resolution_ns)),
        (true, Below::Drop) => None,
    }
}
