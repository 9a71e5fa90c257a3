//! A cell's repeats, merged; and the run's floor.
//!
//! Each repeat of a cell is its own child process. [`merge`] keeps every
//! repeat's [`RunMetrics`] and adds [`Estimate`]s over them (median and
//! order-statistic interval, `crate::stats`) for the figures a reader
//! compares: throughput, time per operation, CPU time, peak RSS,
//! fragmentation. Latency histograms of all repeats are merged into one
//! distribution per operation kind (from their HdrHistogram encodings), so
//! the tails have every repeat's samples.
//!
//! [`attach_floors`] then derives the run's floor — the `null` subject's
//! time per operation at each configuration — and marks every cell that
//! ran faster than it beyond the noise.

use std::collections::BTreeMap;

use base64::Engine;
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;

use crate::measure::latency::{self, Scale};
use crate::results::{CellMetrics, Estimate, Floor, Latency, Outcome, RunMetrics, RunResults};
use crate::stats;

pub use crate::results::FLOOR_SUBJECT;

/// Wall time per operation per thread, ns, of one repeat.
fn ns_per_op(r: &RunMetrics, threads: usize) -> f64 {
    if r.ops_per_sec > 0.0 {
        threads as f64 * 1e9 / r.ops_per_sec
    } else {
        f64::NAN
    }
}

/// One cell's repeats, merged (see the module docs).
pub fn merge(runs: Vec<RunMetrics>, threads: usize) -> CellMetrics {
    let est = |f: &dyn Fn(&RunMetrics) -> f64| -> Estimate {
        stats::estimate(&runs.iter().map(f).collect::<Vec<_>>())
    };
    let ops_per_sec = est(&|r| r.ops_per_sec);
    let ns = est(&|r| ns_per_op(r, threads));
    let per_cpu = est(&|r| {
        let cpu = r.worker_cpu_s;
        if cpu > 0.0 {
            r.ops as f64 / cpu
        } else {
            f64::NAN
        }
    });
    let peak = est(&|r| r.memory.peak_rss_bytes as f64);
    let frag: Vec<f64> = runs
        .iter()
        .filter_map(|r| r.memory.fragmentation.ratio)
        .collect();
    let fragmentation = (!frag.is_empty()).then(|| stats::estimate(&frag));
    let latency = merge_latency(&runs);
    let figures: Vec<f64> = runs
        .iter()
        .filter_map(|r| r.program.as_ref()?.metric)
        .collect();
    let metric = (!figures.is_empty()).then(|| stats::estimate(&figures));
    let subject_params = runs
        .first()
        .map(|r| r.subject_params.clone())
        .unwrap_or_default();
    CellMetrics {
        runs,
        ops_per_sec,
        ns_per_op: ns,
        ops_per_cpu_sec: per_cpu,
        above_floor_ns_per_op: None,
        below_floor: false,
        peak_rss_bytes: peak,
        fragmentation,
        latency,
        subject_params,
        metric,
    }
}

/// Decodes a latency's HdrHistogram (raw readings in ns).
fn decode(l: &Latency) -> Option<Histogram<u64>> {
    let blob = base64::engine::general_purpose::STANDARD
        .decode(l.hdr_v2.as_ref()?)
        .ok()?;
    Deserializer::new().deserialize(&mut blob.as_slice()).ok()
}

/// Every repeat's samples of each kind in one distribution, with the
/// median clock overhead of the repeats subtracted.
fn merge_latency(runs: &[RunMetrics]) -> BTreeMap<String, Latency> {
    let overhead =
        stats::median(&runs.iter().map(|r| r.clock.overhead_ns).collect::<Vec<_>>()).unwrap_or(0.0);
    let resolution = stats::median(
        &runs
            .iter()
            .map(|r| r.clock.resolution_ns)
            .collect::<Vec<_>>(),
    )
    .unwrap_or(0.0);
    let mut merged: BTreeMap<String, Histogram<u64>> = BTreeMap::new();
    for r in runs {
        for (kind, l) in &r.latency {
            if let Some(h) = decode(l) {
                let into = merged
                    .entry(kind.clone())
                    .or_insert_with(latency::new_histogram);
                // Same bounds everywhere: adding cannot fail.
                let _ = into.add(&h);
            }
        }
    }
    merged
        .into_iter()
        .map(|(kind, h)| {
            // GIL waits are not clock pairs around an operation.
            let scale = if kind == "gil_wait" {
                Scale::NS
            } else {
                Scale {
                    ns_per_unit: 1.0,
                    overhead_ns: overhead,
                    resolution_ns: resolution,
                }
            };
            (kind, latency::summarise(&h, scale))
        })
        .collect()
}

/// Derives the floor of every configuration that has a `null` cell, and
/// each other cell's cost above it; marks cells faster than the floor
/// beyond the noise (bootstrap interval of the ratio of their times per
/// operation excludes 1, at any threshold).
pub fn attach_floors(results: &mut RunResults) {
    let mut floors: BTreeMap<String, (Floor, Vec<f64>)> = BTreeMap::new();
    for c in &results.cells {
        if c.subject != FLOOR_SUBJECT {
            continue;
        }
        if let Some(m) = c.metrics() {
            let per_run: Vec<f64> = m.runs.iter().map(|r| ns_per_op(r, c.threads)).collect();
            floors.insert(
                c.config_key(),
                (
                    Floor {
                        workload: c.workload.clone(),
                        threads: c.threads,
                        sweep: c.sweep.clone(),
                        ns_per_op: m.ns_per_op,
                    },
                    per_run,
                ),
            );
        }
    }
    for c in &mut results.cells {
        let Some((floor, floor_runs)) = floors.get(&c.config_key()) else {
            continue;
        };
        if c.subject == FLOOR_SUBJECT {
            continue;
        }
        let threads = c.threads;
        if let Outcome::Ok(m) = &mut c.outcome {
            let mine: Vec<f64> = m.runs.iter().map(|r| ns_per_op(r, threads)).collect();
            let above: Vec<f64> = mine.iter().map(|v| v - floor.ns_per_op.median).collect();
            m.above_floor_ns_per_op = Some(stats::estimate(&above));
            m.below_floor = stats::differs(floor_runs, &mine, 0.0).is_some_and(|r| r < 1.0);
        }
    }
    results.floors = floors.into_values().map(|(f, _)| f).collect();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{Cell, ClockInfo};

    fn run(rate: f64) -> RunMetrics {
        RunMetrics {
            ops: 1000,
            ops_per_sec: rate,
            worker_cpu_s: 1.0,
            clock: ClockInfo {
                overhead_ns: 10.0,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn cell(subject: &str, rates: &[f64]) -> Cell {
        Cell {
            subject: subject.into(),
            kind: Default::default(),
            workload: "w".into(),
            threads: 1,
            sweep: BTreeMap::new(),
            workload_params: serde_json::Value::Null,
            subject_env: BTreeMap::new(),
            outcome: Outcome::Ok(Box::new(merge(rates.iter().map(|&r| run(r)).collect(), 1))),
        }
    }

    #[test]
    fn repeats_merge_into_estimates_and_keep_every_run() {
        let m = merge(vec![run(3e6), run(1e6), run(2e6)], 2);
        assert_eq!(m.ops_per_sec.median, 2e6);
        assert_eq!((m.ops_per_sec.low, m.ops_per_sec.high), (1e6, 3e6));
        assert_eq!(
            m.ns_per_op.median, 1000.0,
            "2 threads at 2 Mops/s: 1 µs each"
        );
        assert_eq!(m.runs.len(), 3);
        assert_eq!(m.ops_per_cpu_sec.median, 1000.0);
    }

    #[test]
    fn the_floor_is_null_and_faster_cells_are_flagged() {
        let mut r = RunResults {
            schema_version: crate::results::SCHEMA_VERSION,
            poolbench_version: String::new(),
            started_at: String::new(),
            finished_at: String::new(),
            command: vec![],
            repeats: 5,
            environment: Default::default(),
            clock: Default::default(),
            floors: vec![],
            cells: vec![
                cell("null", &[100e6, 101e6, 99e6, 100e6, 102e6]),
                cell("slow", &[50e6, 51e6, 49e6, 50e6, 52e6]),
                cell("fast", &[150e6, 151e6, 149e6, 150e6, 152e6]),
            ],
            partial: false,
            notes: vec![],
        };
        attach_floors(&mut r);
        assert_eq!(r.floors.len(), 1);
        assert!((r.floors[0].ns_per_op.median - 10.0).abs() < 1e-9);
        let slow = r.cells[1].metrics().unwrap();
        assert!(!slow.below_floor);
        let above = slow.above_floor_ns_per_op.unwrap().median;
        assert!((above - 10.0).abs() < 1e-9, "{above}");
        assert!(r.cells[2].metrics().unwrap().below_floor);
    }
}
