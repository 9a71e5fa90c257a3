//! The terminal summary printed at the end of a run.
//!
//! One row per cell, in run order: throughput (median over repeats) with
//! its spread, the time per operation and the part of it above the floor
//! (the `null` subject at the same configuration: poolbench's own cost),
//! alloc and free latency percentiles (clock overhead subtracted; `<res`
//! when below the clock's resolution), peak RSS, fragmentation, and
//! status. `best` marks the fastest subject of a configuration only when
//! it beats the runner-up beyond the noise; `<floor` marks a subject that
//! ran faster than `null` beyond the noise (a figure that measures the
//! harness, or a broken subject); `load` a cell during which the machine
//! was busy. Failed cells follow with their reasons.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::results::{Cell, CellKind, CellMetrics, Outcome, RunResults};
use crate::stats;

/// The relative difference "best" must exceed over the runner-up, on top
/// of the noise.
pub const BEST_THRESHOLD: f64 = 0.05;

/// The cell of each configuration that is fastest beyond the noise.
pub fn best_cells(results: &RunResults) -> Vec<String> {
    let mut by_config: BTreeMap<String, Vec<&Cell>> = BTreeMap::new();
    for c in &results.cells {
        if c.metrics().is_some() && c.subject != crate::results::FLOOR_SUBJECT {
            by_config.entry(c.config_key()).or_default().push(c);
        }
    }
    let mut best = Vec::new();
    for cells in by_config.values() {
        let mut ranked: Vec<(&Cell, &CellMetrics)> = cells
            .iter()
            .filter_map(|c| Some((*c, c.metrics()?)))
            .collect();
        if ranked.len() < 2 {
            continue;
        }
        ranked.sort_by(|a, b| b.1.ops_per_sec.median.total_cmp(&a.1.ops_per_sec.median));
        let (top, second) = (ranked[0], ranked[1]);
        if stats::differs(&second.1.rates(), &top.1.rates(), BEST_THRESHOLD).is_some() {
            best.push(top.0.key());
        }
    }
    best
}

/// Renders the summary table and the list of failures.
pub fn render(results: &RunResults) -> String {
    let cores = results.environment.logical_cores;
    let any_sweep = results.cells.iter().any(|c| !c.sweep.is_empty());
    let best = best_cells(results);
    let mut header = vec!["workload", "subject", "thr"];
    if any_sweep {
        header.push("sweep");
    }
    header.extend([
        "Mops/s",
        "±%",
        "ns/op",
        "above floor",
        "alloc p50",
        "alloc p99",
        "free p99",
        "peak RSS",
        "frag",
        "status",
    ]);
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut oversubscribed = false;
    let mut any_load = false;
    let synthetic = |c: &&Cell| c.kind == CellKind::Synthetic;
    for c in results.cells.iter().filter(synthetic) {
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
                row.push(format!("{:.2}", m.ops_per_sec.median / 1e6));
                row.push(if m.ops_per_sec.n > 1 {
                    format!("{:.0}", 50.0 * stats::relative_spread(&m.ops_per_sec))
                } else {
                    "-".into()
                });
                row.push(format!("{:.2}", m.ns_per_op.median));
                row.push(
                    m.above_floor_ns_per_op
                        .map_or("-".into(), |e| format!("{:.2}", e.median)),
                );
                row.push(percentile_ns(m, "alloc", 50.0));
                row.push(percentile_ns(m, "alloc", 99.0));
                row.push(free_p99(m));
                row.push(bytes(m.peak_rss_bytes.median as u64));
                row.push(
                    m.fragmentation
                        .map_or("-".into(), |f| format!("{:.2}", f.median)),
                );
                let mut status = vec!["ok"];
                if best.contains(&c.key()) {
                    status.push("best");
                }
                if m.below_floor {
                    status.push("<floor");
                }
                if m.runs.iter().any(|r| r.load.high()) {
                    status.push("load");
                    any_load = true;
                }
                row.push(status.join(" "));
            }
            Outcome::Failed(f) => {
                row.extend(vec!["-".to_string(); 9]);
                row.push(format!("FAILED ({})", kind_name(f.kind)));
            }
        }
        rows.push(row);
    }

    let mut out = if rows.is_empty() {
        String::new()
    } else {
        table(&header, &rows)
    };
    let programs = program_table(results, &best, &mut oversubscribed, &mut any_load);
    if !programs.is_empty() {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(&programs);
    }
    let n = results.repeats;
    let _ =
        write!(
        out,
        "medians of {n} repeat(s); ±% = half the interval over the median ({}); best = fastest \
         beyond the noise and {:.0}%",
        if n >= 6 { "95% interval" } else { "the range of the repeats" },
        BEST_THRESHOLD * 100.0
    );
    if !rows.is_empty() {
        let _ = write!(
            out,
            "; ns/op = wall time per operation per thread; above floor = ns/op minus the null \
             subject's (poolbench's own cost) at the same configuration; latencies in ns with the \
             clock's overhead subtracted (<res: below its resolution)"
        );
    }
    if results.cells.iter().any(|c| c.kind == CellKind::Program) {
        let _ = write!(
            out,
            "; a program's rate is runs per second and its time the wall time of a run, from its \
             start to its exit; figure = the number it printed (exec --metric; ops/s of the timed \
             part for the Python workloads)"
        );
    }
    out.push('\n');
    for note in &results.notes {
        let _ = writeln!(out, "note: {note}");
    }
    for f in &results.floors {
        let _ = writeln!(
            out,
            "floor {} t{}: {:.2} ns/op",
            f.workload, f.threads, f.ns_per_op.median
        );
    }
    if results
        .cells
        .iter()
        .any(|c| c.metrics().is_some_and(|m| m.below_floor))
    {
        let _ = writeln!(
            out,
            "<floor: faster than the null subject beyond the noise: that figure measures the harness, not the allocator"
        );
    }
    if any_load {
        let _ = writeln!(
            out,
            "load: the machine was busy (steal or other processes) during at least one repeat of that cell"
        );
    }
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

/// Application and program cells: their own unit of work per second.
fn program_table(
    results: &RunResults,
    best: &[String],
    oversubscribed: &mut bool,
    any_load: &mut bool,
) -> String {
    let cores = results.environment.logical_cores;
    // A column for programs' own figures (`exec --metric`, the Python
    // workloads' ops/s) when any has one.
    let figures = results
        .cells
        .iter()
        .any(|c| c.metrics().is_some_and(|m| m.metric.is_some()));
    let mut header = vec!["program", "subject", "thr", "rate", "±%", "time"];
    if figures {
        header.extend(["figure", "±%"]);
    }
    header.extend(["peak RSS", "status"]);
    let mut rows = Vec::new();
    for c in results
        .cells
        .iter()
        .filter(|c| c.kind != CellKind::Synthetic)
    {
        let over = cores > 0 && c.threads > cores;
        *oversubscribed |= over;
        let mut row = vec![
            c.workload.clone(),
            c.subject.clone(),
            format!("{}{}", c.threads, if over { "*" } else { "" }),
        ];
        match &c.outcome {
            Outcome::Ok(m) => {
                let unit = m
                    .runs
                    .first()
                    .and_then(|r| r.unit.clone())
                    .unwrap_or_else(|| "ops".into());
                row.push(format!("{} {unit}/s", si(m.ops_per_sec.median)));
                row.push(if m.ops_per_sec.n > 1 {
                    format!("{:.0}", 50.0 * stats::relative_spread(&m.ops_per_sec))
                } else {
                    "-".into()
                });
                let secs: Vec<f64> = m.runs.iter().map(|r| r.duration_s).collect();
                row.push(format!("{:.3} s", stats::median(&secs).unwrap_or(0.0)));
                if figures {
                    row.extend(figure(c, m));
                }
                row.push(bytes(m.peak_rss_bytes.median as u64));
                let mut status = vec!["ok"];
                if best.contains(&c.key()) {
                    status.push("best");
                }
                if m.runs.iter().any(|r| r.load.high()) {
                    status.push("load");
                    *any_load = true;
                }
                row.push(status.join(" "));
            }
            Outcome::Failed(f) => {
                row.extend(vec!["-".to_string(); header.len() - 4]);
                row.push(format!("FAILED ({})", kind_name(f.kind)));
            }
        }
        rows.push(row);
    }
    if rows.is_empty() {
        String::new()
    } else {
        table(&header, &rows)
    }
}

/// A program's own figure (median, with its name unless that is only the
/// pattern it was found with) and its spread.
fn figure(c: &Cell, m: &CellMetrics) -> [String; 2] {
    let Some(e) = m.metric else {
        return ["-".into(), "-".into()];
    };
    let name = m
        .runs
        .first()
        .and_then(|r| r.program.as_ref()?.metric_name.clone())
        .filter(|n| c.workload_params.get("metric").and_then(|p| p.as_str()) != Some(n.as_str()));
    let value = match name {
        Some(n) => format!("{} {n}", si(e.median)),
        None => si(e.median),
    };
    let spread = if e.n > 1 {
        format!("{:.0}", 50.0 * stats::relative_spread(&e))
    } else {
        "-".into()
    };
    [value, spread]
}

/// A rate with an SI prefix, three significant figures.
fn si(v: f64) -> String {
    let (div, p) = if v >= 1e9 {
        (1e9, "G")
    } else if v >= 1e6 {
        (1e6, "M")
    } else if v >= 1e3 {
        (1e3, "k")
    } else {
        (1.0, "")
    };
    let x = v / div;
    let digits = if x >= 100.0 {
        0
    } else if x >= 10.0 {
        1
    } else {
        2
    };
    format!("{x:.digits$}{p}")
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
        .map_or("-".into(), |q| {
            if q.below_resolution {
                "<res".into()
            } else {
                format!("{:.0}", q.ns)
            }
        })
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
    let numeric = |i: usize| {
        let h = header[i];
        !matches!(h, "workload" | "program" | "subject" | "sweep" | "status")
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

    fn cell(subject: &str, threads: usize, outcome: Outcome) -> Cell {
        Cell {
            subject: subject.into(),
            kind: Default::default(),
            workload: "larson".into(),
            threads,
            sweep: BTreeMap::new(),
            workload_params: serde_json::Value::Null,
            subject_env: BTreeMap::new(),
            outcome,
        }
    }

    fn ok(rates: &[f64]) -> Outcome {
        let runs = rates
            .iter()
            .map(|&r| RunMetrics {
                ops: 1000,
                ops_per_sec: r,
                ..Default::default()
            })
            .collect();
        let mut m = crate::cli::repeats::merge(runs, 1);
        m.latency.insert(
            "alloc".into(),
            Latency {
                percentiles: vec![
                    Percentile {
                        percentile: 50.0,
                        ns: 1.0,
                        below_resolution: true,
                    },
                    Percentile {
                        percentile: 99.0,
                        ns: 480.0,
                        below_resolution: false,
                    },
                ],
                ..Default::default()
            },
        );
        m.peak_rss_bytes.median = (3 << 20) as f64;
        Outcome::Ok(Box::new(m))
    }

    fn results(cells: Vec<Cell>) -> RunResults {
        let mut r = RunResults {
            schema_version: SCHEMA_VERSION,
            poolbench_version: "0".into(),
            started_at: String::new(),
            finished_at: String::new(),
            command: vec![],
            repeats: 3,
            environment: Environment {
                logical_cores: 2,
                ..Default::default()
            },
            clock: ClockInfo::default(),
            floors: vec![],
            cells,
            partial: false,
            notes: vec![],
        };
        crate::cli::repeats::attach_floors(&mut r);
        r
    }

    #[test]
    fn table_has_rows_floor_and_failures() {
        let failed = Outcome::Failed(Failure {
            kind: FailureKind::Signal,
            reason: "killed by signal 11 (SIGSEGV)".into(),
            exit_code: None,
            signal: Some(11),
            stderr_tail: String::new(),
        });
        // null at 100 Mops/s = 10 ns/op; system at 50 Mops/s = 20 ns/op:
        // 10 ns/op above the floor.
        let r = results(vec![
            cell("system", 1, ok(&[50e6, 49e6, 51e6])),
            cell("null", 1, ok(&[100e6, 99e6, 101e6])),
            cell("gil", 4, failed),
        ]);
        let s = render(&r);
        let system = s.lines().find(|l| l.contains(" system ")).unwrap();
        assert!(system.contains("50.00") && system.contains("20.00"), "{s}");
        assert!(system.contains(" 10.00 "), "{s}");
        assert!(
            system.contains("<res") && system.contains("480") && system.contains("3.0 MiB"),
            "{s}"
        );
        assert!(s.contains("floor larson t1: 10.00 ns/op"), "{s}");
        assert!(s.contains("FAILED (signal)"), "{s}");
        assert!(
            s.contains("larson/gil/t4: killed by signal 11 (SIGSEGV)"),
            "{s}"
        );
        assert!(s.contains("4*") && s.contains("oversubscribed"), "{s}");
    }

    #[test]
    fn best_only_beyond_the_noise_and_below_floor_is_flagged() {
        let r = results(vec![
            cell("a", 1, ok(&[50e6, 51e6, 49e6, 50e6, 52e6])),
            cell("b", 1, ok(&[30e6, 31e6, 29e6, 30e6, 32e6])),
            cell("null", 1, ok(&[40e6, 41e6, 39e6, 40e6, 42e6])),
        ]);
        assert_eq!(best_cells(&r), ["larson/a/t1"]);
        let s = render(&r);
        assert!(
            s.lines().any(|l| l.contains(" a ") && l.contains("<floor")),
            "{s}"
        );
        let close = results(vec![
            cell("a", 1, ok(&[50e6, 40e6, 60e6])),
            cell("b", 1, ok(&[48e6, 38e6, 58e6])),
        ]);
        assert!(best_cells(&close).is_empty());
    }

    #[test]
    fn programs_get_their_own_table_with_their_unit() {
        let mut app = cell("sharded", 2, ok(&[1500.0, 1400.0, 1600.0]));
        app.kind = CellKind::App;
        app.workload = "binary-trees".into();
        if let Outcome::Ok(m) = &mut app.outcome {
            for r in &mut m.runs {
                r.unit = Some("trees".into());
                r.duration_s = 0.5;
            }
        }
        let r = results(vec![cell("null", 1, ok(&[100e6])), app]);
        let s = render(&r);
        let line = s.lines().find(|l| l.starts_with("binary-trees")).unwrap();
        assert!(
            line.contains("1.50k trees/s") && line.contains("0.500 s"),
            "{s}"
        );
        assert!(s.contains("program") && s.contains("rate"), "{s}");
        assert_eq!(si(2_345_000.0), "2.35M");
    }

    #[test]
    fn a_program_shows_its_figure_and_the_run_its_notes() {
        let mut prog = cell("sharded", 1, ok(&[2.0, 2.0, 2.0]));
        prog.kind = CellKind::Program;
        prog.workload = "binary_trees".into();
        prog.workload_params = serde_json::json!({ "metric": "trees/s: ([0-9.]+)" });
        if let Outcome::Ok(m) = &mut prog.outcome {
            for r in &mut m.runs {
                r.unit = Some("runs".into());
                r.program = Some(ProgramRun {
                    metric: Some(250e3),
                    metric_name: Some("trees/s".into()),
                    ..Default::default()
                });
            }
            m.metric = Some(crate::stats::estimate(&[250e3; 3]));
        }
        let mut bare = prog.clone();
        bare.subject = "system".into();
        bare.workload_params = serde_json::json!({ "metric": "trees/s" });
        let mut r = results(vec![prog, bare]);
        r.notes.push("py-churn: skipped: no python3 on PATH".into());
        let s = render(&r);
        let line = |subject: &str| {
            s.lines()
                .find(|l| l.starts_with("binary_trees") && l.contains(subject))
                .unwrap()
                .to_string()
        };
        assert!(line("sharded").contains("250k trees/s"), "{s}");
        // A figure named only by its pattern is shown bare.
        assert!(!line("system").contains("trees/s"), "{s}");
        assert!(s.contains("figure") && s.contains("a program's rate is runs per second"));
        assert!(!s.contains("ns/op"), "{s}");
        assert!(s.contains("note: py-churn: skipped"), "{s}");
    }

    #[test]
    fn free_p99_falls_back_to_remote_frees() {
        let lat = |ns| Latency {
            percentiles: vec![Percentile {
                percentile: 99.0,
                ns,
                below_resolution: false,
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
