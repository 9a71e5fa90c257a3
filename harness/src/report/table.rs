//! The summary table: subjects × metrics, one block per thread count.
//!
//! "Best" is decided within a block (same workload, same threads), among
//! real allocators: the `null` subject does no allocator work, so it would
//! win every column and is never highlighted. A column is highlighted only
//! where at least two subjects have a value. Failed cells keep their row
//! and show the failure kind and reason instead of figures.

use crate::results::{CellMetrics, FailureKind, Outcome};

use super::format::{self, bytes, ns, sig3, throughput_unit};
use super::group::{percentile, Group};
use super::palette;
use super::view::{Column, FailureView, TableBlock, TableCell, TableRow, TableView};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Better {
    Higher,
    Lower,
    Neither,
}

struct Metric {
    name: &'static str,
    better: Better,
    value: fn(&CellMetrics) -> Option<f64>,
    fmt: fn(f64) -> String,
}

fn spread(m: &CellMetrics) -> Option<f64> {
    let e = &m.ops_per_sec;
    (e.n >= 2 && e.median > 0.0).then(|| crate::stats::relative_spread(e))
}

fn lat(m: &CellMetrics, kind: &str, p: f64) -> Option<f64> {
    m.latency.get(kind).and_then(|l| percentile(l, p))
}

fn pos(v: u64) -> Option<f64> {
    (v > 0).then_some(v as f64)
}

fn gil_contended(m: &CellMetrics) -> Option<f64> {
    let g = m.representative()?.gil.as_ref()?;
    (g.acquisitions > 0).then(|| g.contended as f64 / g.acquisitions as f64)
}

fn pct(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

fn metrics_for(g: &Group) -> Vec<Metric> {
    let mut v = vec![
        Metric {
            name: "throughput",
            better: Better::Higher,
            value: |m| Some(m.ops_per_sec.median).filter(|v| *v > 0.0),
            // Replaced below with the table's unit.
            fmt: sig3,
        },
        Metric {
            name: "repeat spread",
            better: Better::Neither,
            value: spread,
            fmt: pct,
        },
        Metric {
            name: "alloc p50",
            better: Better::Lower,
            value: |m| lat(m, "alloc", 50.0),
            fmt: ns,
        },
        Metric {
            name: "alloc p99",
            better: Better::Lower,
            value: |m| lat(m, "alloc", 99.0),
            fmt: ns,
        },
        Metric {
            name: "free p99",
            better: Better::Lower,
            value: |m| lat(m, "free_local", 99.0),
            fmt: ns,
        },
    ];
    let has = |kind: &str| {
        g.cells
            .iter()
            .filter_map(|c| c.metrics())
            .any(|m| m.latency.get(kind).is_some_and(|l| l.count > 0))
    };
    if has("free_remote") {
        v.push(Metric {
            name: "remote free p99",
            better: Better::Lower,
            value: |m| lat(m, "free_remote", 99.0),
            fmt: ns,
        });
    }
    if has("gil_wait") {
        v.push(Metric {
            name: "GIL wait p99",
            better: Better::Neither,
            value: |m| lat(m, "gil_wait", 99.0),
            fmt: ns,
        });
    }
    if g.cells
        .iter()
        .filter_map(|c| c.metrics())
        .any(|m| m.runs.iter().any(|r| r.gil.is_some()))
    {
        v.push(Metric {
            name: "GIL contended",
            better: Better::Neither,
            value: gil_contended,
            fmt: pct,
        });
    }
    v.extend([
        Metric {
            name: "peak RSS",
            better: Better::Lower,
            value: |m| pos(m.peak_rss_bytes.median as u64),
            fmt: bytes,
        },
        Metric {
            name: "after drain",
            better: Better::Lower,
            value: |m| pos(m.representative()?.memory.rss_after_drain_bytes),
            fmt: bytes,
        },
        Metric {
            name: "fragmentation",
            better: Better::Lower,
            value: |m| m.fragmentation.map(|e| e.median).filter(|f| f.is_finite()),
            fmt: format::times,
        },
    ]);
    v
}

fn kind_name(k: FailureKind) -> &'static str {
    match k {
        FailureKind::Signal => "signal",
        FailureKind::Exit => "exit",
        FailureKind::Timeout => "timeout",
        FailureKind::Verification => "verification",
        FailureKind::Harness => "harness",
    }
}

/// The summary table of one group, given the machine's logical cores.
pub fn summary(g: &Group, logical_cores: usize) -> TableView {
    let metrics = metrics_for(g);
    let max_ops = g
        .cells
        .iter()
        .filter_map(|c| c.metrics())
        .map(|m| m.ops_per_sec.median)
        .fold(0.0, f64::max);
    let unit = throughput_unit(max_ops);
    let columns = metrics
        .iter()
        .map(|m| Column {
            name: if m.name == "throughput" {
                format!("throughput ({})", unit.name)
            } else {
                m.name.to_string()
            },
            hint: match m.better {
                Better::Higher => "higher is better".into(),
                Better::Lower => "lower is better".into(),
                Better::Neither => String::new(),
            },
        })
        .collect();
    let mut blocks = Vec::new();
    for t in g.threads() {
        let subjects: Vec<&str> = g
            .subjects()
            .into_iter()
            .filter(|s| g.cell(s, t).is_some())
            .collect();
        // Best value per column among successful non-null cells.
        let best: Vec<Option<f64>> = metrics
            .iter()
            .map(|mt| {
                let vals: Vec<f64> = subjects
                    .iter()
                    .filter(|s| **s != "null")
                    .filter_map(|s| g.metrics(s, t))
                    .filter_map(|m| (mt.value)(m))
                    .collect();
                if vals.len() < 2 {
                    return None;
                }
                match mt.better {
                    Better::Higher => Some(vals.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
                    Better::Lower => Some(vals.iter().copied().fold(f64::INFINITY, f64::min)),
                    Better::Neither => None,
                }
            })
            .collect();
        let mut rows = Vec::new();
        for s in subjects {
            let Some(cell) = g.cell(s, t) else { continue };
            let (cells, failure) = match &cell.outcome {
                Outcome::Ok(m) => {
                    let cells = metrics
                        .iter()
                        .zip(&best)
                        .map(|(mt, b)| match (mt.value)(m) {
                            Some(v) => TableCell {
                                text: if mt.name == "throughput" {
                                    sig3(v / unit.div)
                                } else {
                                    (mt.fmt)(v)
                                },
                                best: s != "null" && b.is_some_and(|b| b == v),
                            },
                            None => TableCell {
                                text: "—".into(),
                                best: false,
                            },
                        })
                        .collect();
                    (cells, None)
                }
                Outcome::Failed(f) => {
                    let mut detail = Vec::new();
                    if let Some(c) = f.exit_code {
                        detail.push(format!("exit code {c}"));
                    }
                    if let Some(sig) = f.signal {
                        detail.push(format!("signal {sig}"));
                    }
                    (
                        Vec::new(),
                        Some(FailureView {
                            kind: kind_name(f.kind).into(),
                            reason: f.reason.clone(),
                            detail: detail.join(", "),
                            stderr_tail: f.stderr_tail.trim_end().to_string(),
                        }),
                    )
                }
            };
            rows.push(TableRow {
                subject: s.to_string(),
                color: palette::color(s).into(),
                cells,
                failure,
            });
        }
        blocks.push(TableBlock {
            threads: t,
            oversubscribed: logical_cores > 0 && t > logical_cores,
            rows,
        });
    }
    TableView { columns, blocks }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    #[test]
    fn best_excludes_null_and_failed_rows_keep_their_reason() {
        let r = fixture::run_results();
        let groups = Group::all(&r);
        let pc = groups
            .iter()
            .find(|g| g.workload == "producer-consumer")
            .unwrap();
        let t = summary(pc, 2);
        let block = t.blocks.iter().find(|b| b.threads == 4).unwrap();
        assert!(block.oversubscribed);
        let null = block.rows.iter().find(|r| r.subject == "null").unwrap();
        assert!(null.cells.iter().all(|c| !c.best));
        let tcache = block.rows.iter().find(|r| r.subject == "tcache").unwrap();
        assert!(tcache
            .failure
            .as_ref()
            .unwrap()
            .reason
            .contains("tag mismatch"));
        // Throughput's best at 4 threads is jemalloc in the fixture's model.
        let jem = block.rows.iter().find(|r| r.subject == "jemalloc").unwrap();
        assert!(jem.cells[0].best);
        // Exactly one best per highlighted column.
        for col in 0..t.columns.len() {
            let n = block
                .rows
                .iter()
                .filter(|r| r.cells.get(col).is_some_and(|c| c.best))
                .count();
            assert!(n <= 1, "column {col} has {n} best cells");
        }
    }
}
