//! The terminal summary printed at the end of a run.
//!
//! One row per cell, in run order: throughput, throughput with the harness's
//! own cost taken out (using the `null` subject's cell at the same workload,
//! threads and sweep point, when the run has one), alloc and free latency
//! percentiles, peak RSS, fragmentation and status; then each failed cell
//! with its reason. A thread count above the machine's logical cores is
//! marked, since oversubscribed cells measure the scheduler as much as the
//! allocator.

use std::fmt::Write as _;

use crate::results::{Cell, CellMetrics, Outcome, RunResults};

/// The smallest share of an op's time that must remain once the null
/// subject's cost is taken out for the adjusted throughput to be shown.
pub const ADJUST_MIN_SHARE: f64 = 0.1;

/// The subject whose cells measure the harness's own cost per operation.
pub const NULL_SUBJECT: &str = "null";

/// Renders the summary table and the list of failures.
pub fn render(results: &RunResults) -> String {
    let cores = results.environment.logical_cores;
    let any_sweep = results.cells.iter().any(|c| !c.sweep.is_empty());
    let mut header = vec!["workload", "subject", "thr"];
    if any_sweep {
        header.push("sweep");
    }
    header.extend([
        "Mops/s",
        "adj Mops/s",
        "alloc p50",
        "alloc p99",
        "free p99",
        "peak RSS",
        "frag",
        "status",
    ]);
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut oversubscribed = false;
    for c in &results.cells {
        let mut row = vec![c.workload.clone(), c.subject.clone()];
        let over = cores > 0 && c.threads > cores;
        oversubscribed |= over;
        row.push(format!("{}{}", c.threads, if over { "*" } else { "" }));
        if any_sweep {
            row.push(
                c.sweep
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(" "),
            );
        }
        match &c.outcome {
            Outcome::Ok(m) => {
                row.push(format!("{:.2}", m.ops_per_sec / 1e6));
                row.push(match null_adjusted(c, m, results) {
                    None => "-".into(),
                    Some(Adjusted::Rate(mops)) => format!("{mops:.2}"),
                    Some(Adjusted::NearNull) => "~null".into(),
                    Some(Adjusted::BelowNull) => "<null".into(),
                });
                row.push(percentile_ns(m, "alloc", 50.0));
                row.push(percentile_ns(m, "alloc", 99.0));
                row.push(free_p99(m));
                row.push(bytes(m.memory.peak_rss_bytes));
                row.push(
                    m.memory
                        .fragmentation
                        .map_or("-".into(), |f| format!("{f:.2}")),
                );
                row.push("ok".into());
            }
            Outcome::Failed(f) => {
                row.extend(vec!["-".to_string(); 7]);
                row.push(format!("FAILED ({})", kind_name(f.kind)));
            }
        }
        rows.push(row);
    }

    let mut out = table(&header, &rows);
    let _ = writeln!(
        out,
        "latencies in ns; adj Mops/s = throughput with the null subject's per-op cost subtracted \
         (~null: under a tenth of the op's time is the allocator's own; <null: faster than null)"
    );
    if oversubscribed {
        let _ = writeln!(out, "* more threads than the {cores} logical cores: oversubscribed, the scheduler is measured too");
    }
    let failed: Vec<&Cell> = results
        .cells
        .iter()
        .filter(|c| c.metrics().is_none())
        .collect();
    if !failed.is_empty() {
        let _ = writeln!(
            out,
            "\n{} of {} cells failed:",
            failed.len(),
            results.cells.len()
        );
        for c in failed {
            if let Outcome::Failed(f) = &c.outcome {
                let _ = writeln!(out, "  {}: {}", c.key(), f.reason);
            }
        }
    }
    out
}

/// Throughput once the harness's own cost is taken out.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Adjusted {
    /// Mops/s of the subject's own share of each op.
    Rate(f64),
    /// The subject's own share is under [`ADJUST_MIN_SHARE`] of the op's
    /// time: not separable from run-to-run noise.
    NearNull,
    /// The subject ran faster than null: null's cost (for example page
    /// faults on never-reused memory) is not a floor for this workload.
    BelowNull,
}

/// `None` when no matching null cell ran (or this is the null cell).
fn null_adjusted(cell: &Cell, m: &CellMetrics, results: &RunResults) -> Option<Adjusted> {
    if cell.subject == NULL_SUBJECT || m.ops_per_sec <= 0.0 {
        return None;
    }
    let null = results.cells.iter().find(|n| {
        n.subject == NULL_SUBJECT
            && n.workload == cell.workload
            && n.threads == cell.threads
            && n.sweep == cell.sweep
    })?;
    let null_rate = null.metrics()?.ops_per_sec;
    if null_rate <= 0.0 {
        return None;
    }
    let total_ns = 1e9 / m.ops_per_sec;
    let own_ns = total_ns - 1e9 / null_rate;
    Some(if own_ns <= 0.0 {
        Adjusted::BelowNull
    } else if own_ns < ADJUST_MIN_SHARE * total_ns {
        // Its reciprocal would be a meaningless huge rate.
        Adjusted::NearNull
    } else {
        Adjusted::Rate(1e3 / own_ns)
    })
}

/// Local frees' p99, or remote frees' when a workload frees only remotely
/// (xmalloc): the free path the workload exercised.
fn free_p99(m: &CellMetrics) -> String {
    let kind = if m.latency.contains_key("free_local") {
        "free_local"
    } else {
        "free_remote"
    };
    percentile_ns(m, kind, 99.0)
}

fn percentile_ns(m: &CellMetrics, kind: &str, p: f64) -> String {
    m.latency
        .get(kind)
        .and_then(|l| {
            l.percentiles
                .iter()
                .find(|q| (q.percentile - p).abs() < 1e-9)
        })
        .map_or("-".into(), |q| format!("{:.0}", q.ns))
}

fn kind_name(k: crate::results::FailureKind) -> String {
    serde_json::to_value(k)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Bytes in binary units, one decimal.
pub fn bytes(n: u64) -> String {
    if n == 0 {
        return "-".into();
    }
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Left-aligned text columns, right-aligned numeric ones.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    // Columns after subject/threads/sweep hold numbers, except status.
    let numeric = |i: usize| {
        let h = header[i];
        !matches!(h, "workload" | "subject" | "sweep" | "status")
    };
    let mut out = String::new();
    let line = |out: &mut String, cells: &mut dyn Iterator<Item = String>| {
        let parts: Vec<String> = cells
            .enumerate()
            .map(|(i, c)| {
                let w = widths[i];
                if numeric(i) {
                    format!("{c:>w$}")
                } else {
                    format!("{c:<w$}")
                }
            })
            .collect();
        let _ = writeln!(out, "{}", parts.join("  ").trim_end());
    };
    line(&mut out, &mut header.iter().map(|h| h.to_string()));
    let _ = writeln!(
        out,
        "{}",
        widths
            .iter()
            .map(|w| "-".repeat(*w))
            .collect::<Vec<_>>()
            .join("  ")
    );
    for r in rows {
        line(&mut out, &mut r.iter().cloned());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::*;
    use std::collections::BTreeMap;

    fn cell(subject: &str, threads: usize, outcome: Outcome) -> Cell {
        Cell {
            subject: subject.into(),
            workload: "larson".into(),
            threads,
            sweep: BTreeMap::new(),
            workload_params: serde_json::Value::Null,
            outcome,
        }
    }

    fn ok(rate: f64) -> Outcome {
        let mut m = CellMetrics {
            ops_per_sec: rate,
            ..Default::default()
        };
        m.latency.insert(
            "alloc".into(),
            Latency {
                percentiles: vec![
                    Percentile {
                        percentile: 50.0,
                        ns: 21.0,
                    },
                    Percentile {
                        percentile: 99.0,
                        ns: 480.0,
                    },
                ],
                ..Default::default()
            },
        );
        m.memory.peak_rss_bytes = 3 << 20;
        Outcome::Ok(Box::new(m))
    }

    fn results(cells: Vec<Cell>) -> RunResults {
        RunResults {
            schema_version: SCHEMA_VERSION,
            poolbench_version: "0".into(),
            started_at: String::new(),
            finished_at: String::new(),
            command: vec![],
            environment: Environment {
                logical_cores: 2,
                ..Default::default()
            },
            clock: ClockInfo::default(),
            cells,
        }
    }

    #[test]
    fn table_has_rows_null_adjustment_and_failures() {
        let failed = Outcome::Failed(Failure {
            kind: FailureKind::Signal,
            reason: "killed by signal 11 (SIGSEGV)".into(),
            exit_code: None,
            signal: Some(11),
            stderr_tail: String::new(),
        });
        // null at 100 Mops/s = 10 ns/op; system at 50 Mops/s = 20 ns/op:
        // 10 ns/op of its own, i.e. 100 Mops/s adjusted.
        let r = results(vec![
            cell("system", 1, ok(50e6)),
            cell("null", 1, ok(100e6)),
            cell("gil", 4, failed),
        ]);
        let s = render(&r);
        let system = s.lines().find(|l| l.contains(" system ")).unwrap();
        assert!(system.contains("50.00") && system.contains("100.00"), "{s}");
        assert!(
            system.contains("21") && system.contains("480") && system.contains("3.0 MiB"),
            "{s}"
        );
        assert!(s.contains("FAILED (signal)"), "{s}");
        assert!(
            s.contains("larson/gil/t4: killed by signal 11 (SIGSEGV)"),
            "{s}"
        );
        assert!(s.contains("4*") && s.contains("oversubscribed"), "{s}");
    }

    #[test]
    fn subjects_near_or_below_null_get_no_adjusted_rate() {
        let r = results(vec![
            cell("system", 1, ok(100e6)),
            cell("null", 1, ok(50e6)),
        ]);
        assert!(render(&r).contains("<null"));
        // 10.5 ns/op against null's 10 ns/op: 0.5 ns is under a tenth.
        let r = results(vec![
            cell("system", 1, ok(95e6)),
            cell("null", 1, ok(100e6)),
        ]);
        assert!(render(&r).contains("~null"));
    }

    #[test]
    fn free_p99_falls_back_to_remote_frees() {
        let lat = |ns| Latency {
            percentiles: vec![Percentile {
                percentile: 99.0,
                ns,
            }],
            ..Default::default()
        };
        let mut m = CellMetrics::default();
        m.latency.insert("free_remote".into(), lat(700.0));
        assert_eq!(free_p99(&m), "700");
        m.latency.insert("free_local".into(), lat(40.0));
        assert_eq!(free_p99(&m), "40");
        assert_eq!(free_p99(&CellMetrics::default()), "-");
    }

    #[test]
    fn bytes_use_binary_units() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(bytes(0), "-");
    }
}
