//! The summary table: subjects × figures, one block per thread count.
//!
//! Every figure over repeats shows its median and, under it, its interval
//! (`interval`: a 95% CI only from 6 repeats on, else the range of the
//! repeats, said so in the table's lede and in each tooltip). "Best" is
//! marked only on throughput and only where `summary::best_cells` says
//! the fastest subject beats the runner-up beyond the noise (so the page
//! and the terminal summary agree); other columns have no noise model
//! and mark nothing. `<floor` marks a cell faster than the `null` subject
//! beyond the noise, `< res` a percentile below the clock's resolution,
//! and `busy` a cell during which the machine was busy. Failed cells keep
//! their row and show the failure kind and reason instead of figures.

use crate::results::{
    Cell, CellKind, CellMetrics, Estimate, FailureKind, Outcome, RunMetrics, FLOOR_SUBJECT,
};

use super::format::{self, bytes, ns, sig3, throughput_unit, Unit};
use super::group::{busy, percentile, Group};
use super::interval;
use super::palette;
use super::view::{Column, FailureView, Flag, TableBlock, TableCell, TableRow, TableView};

/// A column of the summary table.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Col {
    Throughput,
    NsPerOp,
    AboveFloor,
    PerCpu,
    /// A latency percentile of one operation kind.
    Latency(&'static str, &'static str, f64),
    /// Local frees' p99, or remote frees' where there are no local ones
    /// (a group with both kinds has a column for each instead).
    FreeP99,
    GilContended,
    PeakRss,
    AfterDrain,
    Fragmentation,
    /// A program's wall time per run.
    Wall,
    /// A program's own figure (`exec --metric`).
    Figure,
    /// A program's user + system CPU time per run.
    Cpu,
    /// A program's minor page faults per run.
    Faults,
}

/// Whether every cell of the group is an external program's.
pub fn is_program(g: &Group) -> bool {
    g.cells.iter().all(|c| c.kind == CellKind::Program)
}

/// What the columns need to know beyond the cell.
struct Ctx<'a> {
    cores: usize,
    best: &'a [String],
    unit: Unit,
    cpu_unit: Unit,
    /// The name of the programs' own figure.
    figure: Option<String>,
}

fn has_kind(g: &Group, kind: &str) -> bool {
    g.cells
        .iter()
        .filter_map(|c| c.metrics())
        .any(|m| m.latency.get(kind).is_some_and(|l| l.count > 0))
}

fn columns_for(g: &Group, cores: usize) -> Vec<Col> {
    if is_program(g) {
        let mut v = vec![Col::Wall];
        if g.cells
            .iter()
            .any(|c| c.metrics().is_some_and(|m| m.metric.is_some()))
        {
            v.push(Col::Figure);
        }
        v.extend([Col::Cpu, Col::PeakRss, Col::Faults]);
        return v;
    }
    let mut v = vec![Col::Throughput];
    // With a floor, time per operation is shown above it (the floor's
    // own row carries its time per operation); without, as measured.
    let floored = g.cells.iter().any(|c| {
        c.subject == FLOOR_SUBJECT
            || c.metrics()
                .is_some_and(|m| m.above_floor_ns_per_op.is_some())
    });
    v.push(if floored {
        Col::AboveFloor
    } else {
        Col::NsPerOp
    });
    if g.cells.iter().any(|c| cores == 0 || c.threads <= cores) {
        v.push(Col::PerCpu);
    }
    v.push(Col::Latency("alloc p50", "alloc", 50.0));
    v.push(Col::Latency("alloc p99", "alloc", 99.0));
    // Local frees' p99; remote frees' get a column of their own where
    // the group has both kinds, else they fill the free column.
    if has_kind(g, "free_remote") && has_kind(g, "free_local") {
        v.push(Col::Latency("local free p99", "free_local", 99.0));
        v.push(Col::Latency("remote free p99", "free_remote", 99.0));
    } else {
        v.push(Col::FreeP99);
    }
    if has_kind(g, "realloc") {
        v.push(Col::Latency("realloc p99", "realloc", 99.0));
    }
    if has_kind(g, "gil_wait") {
        v.push(Col::Latency("GIL wait p99", "gil_wait", 99.0));
    }
    if g.cells
        .iter()
        .filter_map(|c| c.metrics())
        .any(|m| m.runs.iter().any(|r| r.gil.is_some()))
    {
        v.push(Col::GilContended);
    }
    v.extend([Col::PeakRss, Col::AfterDrain, Col::Fragmentation]);
    v
}

fn head(col: Col, ctx: &Ctx) -> Column {
    let (name, hint) = match col {
        Col::Throughput => (
            format!("throughput ({})", ctx.unit.name),
            "higher is better",
        ),
        Col::NsPerOp => ("ns/op".into(), "per thread, lower is better"),
        Col::AboveFloor => ("ns/op above floor".into(), "lower is better"),
        Col::PerCpu => (
            format!("{} per CPU-s", ctx.cpu_unit.name.trim_end_matches("/s")),
            "threads ≤ cores",
        ),
        Col::Latency(name, _, _) => (name.into(), "lower is better"),
        Col::FreeP99 => ("free p99".into(), "lower is better"),
        Col::GilContended => ("GIL contended".into(), ""),
        Col::PeakRss => ("peak RSS".into(), "lower is better"),
        Col::AfterDrain => ("after drain".into(), "lower is better"),
        Col::Fragmentation => ("fragmentation".into(), "lower is better"),
        Col::Wall => ("time per run".into(), "wall, lower is better"),
        Col::Figure => (
            ctx.figure.clone().unwrap_or_else(|| "figure".into()),
            "printed by the program",
        ),
        Col::Cpu => ("CPU per run".into(), "user + sys"),
        Col::Faults => ("page faults".into(), "minor, per run"),
    };
    Column {
        name,
        hint: hint.into(),
    }
}

fn plain(text: String, title: String) -> TableCell {
    TableCell {
        text,
        interval: String::new(),
        title,
        best: false,
        flags: Vec::new(),
    }
}

fn dash(title: &str) -> TableCell {
    plain("—".into(), title.into())
}

/// A median with its interval and a tooltip naming the interval.
fn estimate(e: &Estimate, fmt: impl Fn(f64) -> String + Copy) -> TableCell {
    if !e.median.is_finite() || e.n == 0 {
        return dash("not measured");
    }
    TableCell {
        text: fmt(e.median),
        interval: interval::text(e, fmt),
        title: interval::title(e, fmt),
        best: false,
        flags: Vec::new(),
    }
}

fn latency(m: &CellMetrics, kind: &str, p: f64) -> TableCell {
    let Some(l) = m.latency.get(kind) else {
        return dash("no samples of this kind");
    };
    match percentile(l, p) {
        Some(q) if q.below_resolution => TableCell {
            text: "< res".into(),
            interval: String::new(),
            title: "below the clock's resolution: closer to the clock's overhead than the clock can tell apart, so not a number to quote".into(),
            best: false,
            flags: vec![],
        },
        Some(q) => plain(
            ns(q.ns),
            format!("p{} of {} samples, clock overhead subtracted", p, l.count),
        ),
        None => dash("no samples of this kind"),
    }
}

fn cell_figure(col: Col, c: &Cell, m: &CellMetrics, ctx: &Ctx) -> TableCell {
    match col {
        Col::Throughput => {
            let div = ctx.unit.div;
            let mut t = estimate(&m.ops_per_sec, |v| sig3(v / div));
            t.best = ctx.best.contains(&c.key());
            if t.best {
                t.title
                    .push_str("; fastest at this thread count beyond the noise");
            }
            if m.below_floor {
                t.flags.push(Flag {
                    text: "<floor".into(),
                    class: "floor".into(),
                    title: "faster than the null subject (the floor) beyond the noise: this figure measures the harness, or the subject is broken".into(),
                });
            }
            t
        }
        Col::NsPerOp => estimate(&m.ns_per_op, ns),
        Col::AboveFloor => {
            if c.subject == FLOOR_SUBJECT {
                let mut t = estimate(&m.ns_per_op, ns);
                t.flags.push(Flag {
                    text: "floor".into(),
                    class: "floorval".into(),
                    title: "the null subject is the floor: its time per operation per thread is poolbench's own cost".into(),
                });
                t
            } else {
                match &m.above_floor_ns_per_op {
                    Some(e) => {
                        let mut t = estimate(e, ns);
                        t.title = format!(
                            "{} per operation per thread, minus the floor (the null subject's) = {}",
                            ns(m.ns_per_op.median),
                            t.title
                        );
                        t
                    }
                    None => {
                        let mut t = estimate(&m.ns_per_op, ns);
                        t.title = format!(
                            "the null subject did not run at this configuration, so nothing is subtracted: {}",
                            t.title
                        );
                        t
                    }
                }
            }
        }
        Col::PerCpu => {
            if ctx.cores > 0 && c.threads > ctx.cores {
                dash("more threads than cores: threads wait for a core, so CPU time does not measure the allocator's work alone")
            } else {
                let div = ctx.cpu_unit.div;
                estimate(&m.ops_per_cpu_sec, |v| sig3(v / div))
            }
        }
        Col::Latency(_, kind, p) => latency(m, kind, p),
        Col::FreeP99 => {
            if m.latency.contains_key("free_local") {
                latency(m, "free_local", 99.0)
            } else {
                let mut t = latency(m, "free_remote", 99.0);
                t.title = format!("remote frees (no local frees here): {}", t.title);
                t
            }
        }
        Col::GilContended => match m.representative().and_then(|r| r.gil.as_ref()) {
            Some(g) if g.acquisitions > 0 => plain(
                format!("{:.1}%", 100.0 * g.contended as f64 / g.acquisitions as f64),
                format!(
                    "{} of {} acquisitions waited (the median repeat)",
                    g.contended, g.acquisitions
                ),
            ),
            _ => dash("no GIL"),
        },
        Col::PeakRss => estimate(&m.peak_rss_bytes, bytes),
        Col::AfterDrain => match m.representative() {
            Some(r) if r.memory.rss_after_drain_bytes > 0 => plain(
                bytes(r.memory.rss_after_drain_bytes as f64),
                "RSS once every block was freed (the median repeat)".into(),
            ),
            _ => dash("not measured"),
        },
        Col::Wall => {
            let mut t = over_runs(m, |r| r.duration_s, secs);
            t.best = ctx.best.contains(&c.key());
            if t.best {
                t.title.push_str("; fastest beyond the noise");
            }
            t
        }
        Col::Figure => match &m.metric {
            Some(e) => estimate(e, si),
            None => dash("no figure"),
        },
        Col::Cpu => over_runs(m, |r| r.cpu_user_s + r.cpu_sys_s, secs),
        Col::Faults => over_runs(
            m,
            |r| {
                r.program
                    .as_ref()
                    .map_or(f64::NAN, |p| p.minor_faults as f64)
            },
            sig3,
        ),
        Col::Fragmentation => match &m.fragmentation {
            Some(e) => estimate(e, format::times),
            None => {
                let note = m
                    .representative()
                    .and_then(|r| r.memory.fragmentation.note.clone())
                    .unwrap_or_else(|| "no ratio was measured".into());
                dash(&format!("no ratio: {note}"))
            }
        },
    }
}

/// Seconds as ns, µs, ms or s.
fn secs(v: f64) -> String {
    ns(v * 1e9)
}

/// Three significant digits with an SI prefix (`1.46 M`).
fn si(v: f64) -> String {
    let a = v.abs();
    let (div, p) = if a >= 1e9 {
        (1e9, " G")
    } else if a >= 1e6 {
        (1e6, " M")
    } else if a >= 1e3 {
        (1e3, " k")
    } else {
        (1.0, "")
    };
    format!("{}{p}", sig3(v / div))
}

/// The median of a figure of every repeat, with its interval.
fn over_runs(
    m: &CellMetrics,
    f: impl Fn(&RunMetrics) -> f64,
    fmt: impl Fn(f64) -> String + Copy,
) -> TableCell {
    let values: Vec<f64> = m.runs.iter().map(f).filter(|v| v.is_finite()).collect();
    estimate(&crate::stats::estimate(&values), fmt)
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

fn threads_text(t: usize) -> String {
    format!("{t} thread{}", if t == 1 { "" } else { "s" })
}

/// The summary table of one group, given the machine's logical cores and
/// the keys of the cells that are fastest beyond the noise
/// (`summary::best_cells`).
pub fn summary(g: &Group, logical_cores: usize, best: &[String]) -> TableView {
    let ok: Vec<&CellMetrics> = g.cells.iter().filter_map(|c| c.metrics()).collect();
    let max_of = |f: &dyn Fn(&CellMetrics) -> f64| ok.iter().map(|m| f(m)).fold(0.0, f64::max);
    let ctx = Ctx {
        cores: logical_cores,
        best,
        unit: throughput_unit(max_of(&|m| m.ops_per_sec.median)),
        cpu_unit: throughput_unit(max_of(&|m| m.ops_per_cpu_sec.median)),
        figure: ok
            .iter()
            .find_map(|m| m.runs.first()?.program.as_ref()?.metric_name.clone()),
    };
    let cols = columns_for(g, logical_cores);
    let columns = cols.iter().map(|c| head(*c, &ctx)).collect();
    let mut blocks = Vec::new();
    let mut notes = Vec::new();
    let mut busy_cells = Vec::new();
    for t in g.threads() {
        let mut rows = Vec::new();
        for s in g.subjects() {
            let Some(cell) = g.cell(s, t) else { continue };
            let (cells, failure, busy_text) = match &cell.outcome {
                Outcome::Ok(m) => {
                    let cells = cols
                        .iter()
                        .map(|col| cell_figure(*col, cell, m, &ctx))
                        .collect();
                    let b = busy(m).unwrap_or_default();
                    if !b.is_empty() {
                        busy_cells.push(format!("{s} at {} ({b})", threads_text(t)));
                    }
                    if m.below_floor {
                        notes.push(format!(
                            "<floor: {s} at {} ran faster than the null subject beyond the noise: that figure measures the harness, or the subject is broken.",
                            threads_text(t)
                        ));
                    }
                    let b = if b.is_empty() {
                        b
                    } else {
                        format!("The machine was busy during this cell, {b}: its figures mix in other work.")
                    };
                    (cells, None, b)
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
                        String::new(),
                    )
                }
            };
            rows.push(TableRow {
                subject: s.to_string(),
                color: palette::color(s).into(),
                busy: busy_text,
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
    if !busy_cells.is_empty() {
        notes.insert(
            0,
            format!(
                "busy: the machine was busy during {} of these cells, so their figures mix in other work: {}.",
                busy_cells.len(),
                busy_cells.join("; ")
            ),
        );
    }
    // What each subject from outside the binary ran under.
    for s in g.subjects() {
        if let Some(c) = g
            .cells
            .iter()
            .find(|c| c.subject == s && !c.subject_env.is_empty())
        {
            let env: Vec<String> = c
                .subject_env
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            notes.push(format!("{s} ran under {}.", env.join(" ")));
        }
    }
    let intervals = interval::describe_all(ok.iter().map(|m| &m.ops_per_sec))
        .map(|d| format!(" Under each median, in brackets: {d}."))
        .unwrap_or_default();
    if is_program(g) {
        return TableView {
            lede: format!(
                "Each figure is the median of the cell's repeats.{intervals} The program is measured from outside: time per run is its wall time from start to exit; CPU per run its user and system time, peak RSS and minor page faults as wait4 reports them (with the children it waited for); the figure is what it printed. Highlighted: the fastest subject at a thread count, only where it beats the runner-up beyond the noise and by more than {:.0}%. busy: the machine was busy during the cell. Hover a figure for details.",
                super::summary::BEST_THRESHOLD * 100.0
            ),
            columns,
            blocks,
            notes,
        };
    }
    let lede = format!(
        "Each figure over repeats is the median of the cell's repeats.{intervals} Highlighted: the fastest subject at a thread count, only where it beats the runner-up beyond the noise and by more than {:.0}% (never the null subject, the floor). <floor: faster than the floor beyond the noise; < res: below the clock's resolution; busy: the machine was busy during the cell. Hover a figure for details.",
        super::summary::BEST_THRESHOLD * 100.0
    );
    TableView {
        lede,
        columns,
        blocks,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;
    use crate::report::summary::best_cells;

    fn block(t: &TableView, threads: usize) -> &TableBlock {
        t.blocks.iter().find(|b| b.threads == threads).unwrap()
    }

    #[test]
    fn a_program_group_shows_time_figure_cpu_rss_and_faults() {
        let mut r = fixture::run_results();
        r.cells.retain(|c| c.metrics().is_some());
        r.cells.truncate(2);
        for (i, c) in r.cells.iter_mut().enumerate() {
            c.kind = CellKind::Program;
            c.workload = "prog".into();
            c.threads = 1;
            c.subject = ["system", "sharded"][i].into();
            if i == 1 {
                c.subject_env
                    .insert("LD_PRELOAD".into(), "/x/libpoolbench_preload.so".into());
            }
            if let Outcome::Ok(m) = &mut c.outcome {
                for run in &mut m.runs {
                    run.duration_s = 0.5;
                    run.program = Some(crate::results::ProgramRun {
                        minor_faults: 1000,
                        metric: Some(42.0),
                        metric_name: Some("trees/s".into()),
                        ..Default::default()
                    });
                }
                m.metric = Some(crate::stats::estimate(&[42.0, 42.0]));
            }
        }
        let groups = Group::all(&r);
        let t = summary(&groups[0], 2, &[]);
        let names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "time per run",
                "trees/s",
                "CPU per run",
                "peak RSS",
                "page faults"
            ]
        );
        let row = row(block(&t, 1), "sharded");
        assert_eq!(row.cells[0].text, "500 ms");
        assert_eq!(row.cells[1].text, "42.0");
        assert_eq!(row.cells[4].text, "1000");
        assert!(t
            .notes
            .iter()
            .any(|n| n.contains("sharded ran under LD_PRELOAD=/x/")));
        assert!(t.lede.contains("wait4"));
    }

    fn row<'a>(b: &'a TableBlock, subject: &str) -> &'a TableRow {
        b.rows.iter().find(|r| r.subject == subject).unwrap()
    }

    #[test]
    fn best_follows_best_cells_and_failed_rows_keep_their_reason() {
        let r = fixture::run_results();
        let best = best_cells(&r);
        let groups = Group::all(&r);
        let pc = groups
            .iter()
            .find(|g| g.workload == "producer-consumer")
            .unwrap();
        let t = summary(pc, 2, &best);
        let b4 = block(&t, 4);
        assert!(b4.oversubscribed);
        assert!(row(b4, "null").cells.iter().all(|c| !c.best));
        assert!(row(b4, "tcache")
            .failure
            .as_ref()
            .unwrap()
            .reason
            .contains("tag mismatch"));
        // Marked exactly where best_cells says, and only on throughput.
        for g in &groups {
            let t = summary(g, 2, &best);
            for b in &t.blocks {
                for r in &b.rows {
                    let key = format!("{}/{}/t{}", g.workload, r.subject, b.threads);
                    let marked: Vec<usize> = r
                        .cells
                        .iter()
                        .enumerate()
                        .filter(|(_, c)| c.best)
                        .map(|(i, _)| i)
                        .collect();
                    if best.contains(&key) {
                        assert_eq!(marked, [0], "{key}");
                    } else {
                        assert!(marked.is_empty(), "{key}");
                    }
                }
            }
        }
        assert!(!best.is_empty(), "the fixture has clear winners");
        // Nothing is best without a noise-separated winner.
        let t = summary(pc, 2, &[]);
        assert!(t
            .blocks
            .iter()
            .flat_map(|b| &b.rows)
            .all(|r| r.cells.iter().all(|c| !c.best)));
    }

    #[test]
    fn medians_carry_their_interval_and_its_name() {
        let r = fixture::run_results();
        let groups = Group::all(&r);
        let t = summary(&groups[0], 2, &[]);
        let gil = row(block(&t, 1), "gil");
        let thr = &gil.cells[0];
        assert!(
            thr.interval.starts_with('[') && thr.interval.ends_with(']'),
            "{}",
            thr.interval
        );
        assert!(thr.title.contains("range of 3 repeats"), "{}", thr.title);
        assert!(t.lede.contains("the range of the 3 repeats"), "{}", t.lede);
        assert!(!t.lede.contains("95% confidence"), "{}", t.lede);
        // Null is the floor; the others have a cost above it.
        let above = t
            .columns
            .iter()
            .position(|c| c.name == "ns/op above floor")
            .unwrap();
        let null = &row(block(&t, 1), "null").cells[above];
        assert_eq!(
            (null.text.as_str(), null.flags[0].text.as_str()),
            ("2.50 ns", "floor")
        );
        assert!(
            gil.cells[above].text.ends_with("ns"),
            "{}",
            gil.cells[above].text
        );
        // Ops per CPU-second only where threads fit the cores.
        let cpu = t
            .columns
            .iter()
            .position(|c| c.name == "Mops per CPU-s")
            .unwrap();
        assert_ne!(row(block(&t, 2), "gil").cells[cpu].text, "—");
        assert_eq!(row(block(&t, 4), "gil").cells[cpu].text, "—");
    }

    #[test]
    fn below_resolution_floor_busy_and_missing_ratios_are_marked() {
        let mut r = fixture::run_results();
        // Make jemalloc faster than null at larson-small, 1 thread.
        let key = "larson-small/jemalloc/t1";
        let c = r.cells.iter_mut().find(|c| c.key() == key).unwrap();
        if let Outcome::Ok(m) = &mut c.outcome {
            m.below_floor = true;
        }
        let groups = Group::all(&r);
        let t = summary(&groups[0], 2, &[]);
        let b1 = block(&t, 1);
        let jem = row(b1, "jemalloc");
        assert_eq!(jem.cells[0].flags[0].text, "<floor");
        assert!(t
            .notes
            .iter()
            .any(|n| n.starts_with("<floor: jemalloc at 1 thread")));
        // The null subject's alloc p50 is below the clock's resolution.
        let p50 = t
            .columns
            .iter()
            .position(|c| c.name == "alloc p50")
            .unwrap();
        assert_eq!(row(b1, "null").cells[p50].text, "< res");
        assert!(row(b1, "jemalloc").cells[p50].text.ends_with("ns"));
        // The busy cell says so, with its figures.
        let sys = row(block(&t, 2), "system");
        assert_eq!(
            sys.busy,
            "The machine was busy during this cell, repeat 2 of 3: other processes used 60% of the CPU time: its figures mix in other work."
        );
        assert!(row(block(&t, 1), "system").busy.is_empty());
        assert!(t.notes.iter().any(|n| n
            .starts_with("busy: the machine was busy during 1 of these cells")
            && n.contains(
                "system at 2 threads (repeat 2 of 3: other processes used 60% of the CPU time)"
            )));
        // Producer-consumer at 1 thread keeps too few bytes live for a ratio.
        let pc = summary(&groups[1], 2, &[]);
        let frag = pc
            .columns
            .iter()
            .position(|c| c.name == "fragmentation")
            .unwrap();
        let cell = &row(block(&pc, 1), "gil").cells[frag];
        assert_eq!(cell.text, "—");
        assert!(
            cell.title.contains("bytes requested live"),
            "{}",
            cell.title
        );
        let frag = t
            .columns
            .iter()
            .position(|c| c.name == "fragmentation")
            .unwrap();
        assert!(row(block(&t, 1), "gil").cells[frag].text.ends_with('×'));
    }

    #[test]
    fn remote_frees_get_their_own_column_only_beside_local_ones() {
        let r = fixture::run_results();
        let groups = Group::all(&r);
        let names = |g: &Group| -> Vec<String> {
            summary(g, 2, &[])
                .columns
                .into_iter()
                .map(|c| c.name)
                .collect()
        };
        let larson = names(&groups[0]);
        assert!(larson.contains(&"free p99".to_string()));
        assert!(!larson.iter().any(|n| n.contains("remote")));
        let pc = names(&groups[1]);
        assert!(pc.contains(&"local free p99".to_string()));
        assert!(pc.contains(&"remote free p99".to_string()));
        assert!(!pc.contains(&"free p99".to_string()));
    }
}
