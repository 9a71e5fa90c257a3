//! `poolbench compare BASE.json NEW.json`: per-cell ratios between two
//! runs, with changes beyond the noise flagged.
//!
//! Cells are matched by [`Cell::key`] (workload, subject, threads, sweep
//! point). For each matched pair where both cells succeeded, four metrics
//! are compared as `ratio = new / base`:
//!
//! | metric | better | noise bound |
//! | --- | --- | --- |
//! | throughput (`ops_per_sec`) | higher | threshold, or the repeats' spread (below) |
//! | alloc p99 latency | lower | threshold, and at least one clock reading (`clock.overhead_ns`) |
//! | free p99 latency (local frees) | lower | as alloc p99 |
//! | peak RSS | lower | threshold, and at least [`RSS_FLOOR_BYTES`] |
//!
//! **Noise rule.** A relative change `|ratio − 1|` is flagged only when it
//! exceeds the bound `max(threshold, K_SPREAD × spread)`, where `spread` is
//! the larger of the two sides' relative run-to-run spread. The spread of
//! one side is `(max − min) / median` of its `ops_per_sec_repeats`, and is
//! only used when *both* sides have at least [`MIN_REPEATS`] repeats (with
//! fewer, a range says little about the noise and the threshold alone
//! applies). With [`K_SPREAD`] = 1 a flagged change is larger than the
//! full min–max range of the noisier side, i.e. the medians moved further
//! than the repeats scatter. Latency and RSS have no repeats, so the
//! threshold alone applies, plus an absolute floor below which differences
//! are measurement resolution (one clock reading for latency; page-level
//! and thread-stack jitter for RSS).
//!
//! **Verdicts per cell:** `Missing` when only one run has the cell,
//! `Failed` when either side failed, else `Regression` if any metric got
//! worse beyond its bound, else `Improvement` if any got better, else
//! `Unchanged`. [`Comparison::has_regression`] is true for any
//! `Regression`, and for a cell that succeeded in the base run but fails
//! in the new one (a crash is worse than a slowdown); a cell failing in
//! both runs, or missing from one, is reported but is not a regression.

use serde::Serialize;

use crate::report::{format_bytes, format_ns, format_ops, pct_change, subject_color};
use crate::results::{Cell, CellMetrics, RunResults};

/// Default relative change flagged: 10%.
pub const DEFAULT_THRESHOLD: f64 = 0.10;
/// Repeats needed on both sides before their spread is trusted.
pub const MIN_REPEATS: usize = 3;
/// Multiplier on the relative min–max spread of the repeats.
pub const K_SPREAD: f64 = 1.0;
/// Peak RSS differences below this are not flagged.
pub const RSS_FLOOR_BYTES: f64 = 1024.0 * 1024.0;

/// Comparison options.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Options {
    /// Relative change flagged (0.10 = 10%).
    pub threshold: f64,
    /// Exit non-zero when [`Comparison::has_regression`] (the CLI's job).
    pub fail_on_regression: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            threshold: DEFAULT_THRESHOLD,
            fail_on_regression: false,
        }
    }
}

impl Options {
    /// Rejects thresholds that cannot mean anything.
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

/// What happened to a cell or one of its metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Regression,
    Improvement,
    Unchanged,
    /// In one run only.
    Missing,
    /// Failed in at least one run.
    Failed,
}

impl Verdict {
    fn word(self) -> &'static str {
        match self {
            Verdict::Regression => "REGRESSION",
            Verdict::Improvement => "improvement",
            Verdict::Unchanged => "unchanged",
            Verdict::Missing => "missing",
            Verdict::Failed => "FAILED",
        }
    }
}

/// A compared metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    Throughput,
    AllocP99,
    FreeP99,
    PeakRss,
}

impl Metric {
    pub const ALL: [Metric; 4] = [
        Metric::Throughput,
        Metric::AllocP99,
        Metric::FreeP99,
        Metric::PeakRss,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Metric::Throughput => "throughput",
            Metric::AllocP99 => "alloc p99",
            Metric::FreeP99 => "free p99",
            Metric::PeakRss => "peak RSS",
        }
    }

    pub fn higher_is_better(self) -> bool {
        matches!(self, Metric::Throughput)
    }

    fn value(self, m: &CellMetrics) -> Option<f64> {
        let v = match self {
            Metric::Throughput => m.ops_per_sec,
            Metric::AllocP99 => p99(m, "alloc")?,
            Metric::FreeP99 => p99(m, "free_local")?,
            Metric::PeakRss => m.memory.peak_rss_bytes as f64,
        };
        (v.is_finite() && v > 0.0).then_some(v)
    }

    fn format(self, v: f64) -> String {
        match self {
            Metric::Throughput => format_ops(v),
            Metric::AllocP99 | Metric::FreeP99 => format_ns(v),
            Metric::PeakRss => format_bytes(v),
        }
    }
}

fn p99(m: &CellMetrics, kind: &str) -> Option<f64> {
    let l = m.latency.get(kind)?;
    if l.count == 0 {
        return None;
    }
    l.percentiles
        .iter()
        .find(|p| (p.percentile - 99.0).abs() < 1e-9)
        .or_else(|| l.distribution.iter().find(|p| p.percentile >= 99.0 - 1e-9))
        .map(|p| p.ns)
}

/// Relative min–max spread of repeats, if there are enough of them.
fn spread(repeats: &[f64]) -> Option<f64> {
    if repeats.len() < MIN_REPEATS || repeats.iter().any(|v| !v.is_finite() || *v <= 0.0) {
        return None;
    }
    let mut v = repeats.to_vec();
    v.sort_by(f64::total_cmp);
    let median = if v.len() % 2 == 1 {
        v[v.len() / 2]
    } else {
        (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0
    };
    Some((v[v.len() - 1] - v[0]) / median)
}

/// One metric of one cell in both runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Change {
    pub metric: Metric,
    pub base: f64,
    pub new: f64,
    /// `new / base`.
    pub ratio: f64,
    /// The relative change that had to be exceeded to flag it.
    pub bound: f64,
    /// Whether `bound` came from the repeats' spread (not the threshold).
    pub bound_from_spread: bool,
    pub verdict: Verdict,
}

impl Change {
    /// `ratio − 1`.
    pub fn relative(&self) -> f64 {
        self.ratio - 1.0
    }
}

/// One cell in both runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CellComparison {
    pub key: String,
    pub workload: String,
    pub subject: String,
    pub threads: usize,
    pub verdict: Verdict,
    pub changes: Vec<Change>,
    /// Why a cell is missing or failed, in words.
    pub note: String,
    /// Succeeded in the base run and failed in the new one.
    pub newly_failed: bool,
}

/// The comparison of two runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Comparison {
    pub base_label: String,
    pub new_label: String,
    pub options: Options,
    pub cells: Vec<CellComparison>,
}

fn label(r: &RunResults) -> String {
    let commit = r
        .environment
        .git_commit
        .as_deref()
        .map(|c| format!(", commit {}", c.chars().take(12).collect::<String>()))
        .unwrap_or_default();
    format!("{} on {}{commit}", r.started_at, r.environment.hostname)
}

fn compare_metric(
    metric: Metric,
    base: &CellMetrics,
    new: &CellMetrics,
    opts: &Options,
    latency_floor_ns: f64,
) -> Option<Change> {
    let (b, n) = (metric.value(base)?, metric.value(new)?);
    let ratio = n / b;
    let rel = ratio - 1.0;
    let mut bound = opts.threshold;
    let mut from_spread = false;
    if metric == Metric::Throughput {
        if let (Some(sb), Some(sn)) = (
            spread(&base.ops_per_sec_repeats),
            spread(&new.ops_per_sec_repeats),
        ) {
            let s = K_SPREAD * sb.max(sn);
            if s > bound {
                bound = s;
                from_spread = true;
            }
        }
    }
    let floor = match metric {
        Metric::Throughput => 0.0,
        Metric::AllocP99 | Metric::FreeP99 => latency_floor_ns,
        Metric::PeakRss => RSS_FLOOR_BYTES,
    };
    let beyond = rel.abs() > bound && (n - b).abs() > floor;
    let worse = if metric.higher_is_better() {
        rel < 0.0
    } else {
        rel > 0.0
    };
    let verdict = match (beyond, worse) {
        (false, _) => Verdict::Unchanged,
        (true, true) => Verdict::Regression,
        (true, false) => Verdict::Improvement,
    };
    Some(Change {
        metric,
        base: b,
        new: n,
        ratio,
        bound,
        bound_from_spread: from_spread,
        verdict,
    })
}

fn failure_note(c: &Cell) -> Option<String> {
    match &c.outcome {
        crate::results::Outcome::Failed(f) => Some(f.reason.clone()),
        crate::results::Outcome::Ok(_) => None,
    }
}

/// Compares every cell of `new` with the same cell of `base`.
pub fn compare(base: &RunResults, new: &RunResults, opts: &Options) -> Comparison {
    let latency_floor = base.clock.overhead_ns.max(new.clock.overhead_ns).max(0.0);
    let mut keys: Vec<String> = base.cells.iter().map(|c| c.key()).collect();
    for c in &new.cells {
        let k = c.key();
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    let cells = keys
        .into_iter()
        .filter_map(|key| {
            let b = base.cells.iter().find(|c| c.key() == key);
            let n = new.cells.iter().find(|c| c.key() == key);
            let any = b.or(n)?;
            let mut out = CellComparison {
                key: key.clone(),
                workload: any.workload.clone(),
                subject: any.subject.clone(),
                threads: any.threads,
                verdict: Verdict::Unchanged,
                changes: Vec::new(),
                note: String::new(),
                newly_failed: false,
            };
            match (b, n) {
                (Some(_), None) => {
                    out.verdict = Verdict::Missing;
                    out.note = "only in the base run".into();
                }
                (None, Some(_)) => {
                    out.verdict = Verdict::Missing;
                    out.note = "only in the new run".into();
                }
                (Some(b), Some(n)) => match (b.metrics(), n.metrics()) {
                    (Some(bm), Some(nm)) => {
                        out.changes = Metric::ALL
                            .iter()
                            .filter_map(|m| compare_metric(*m, bm, nm, opts, latency_floor))
                            .collect();
                        out.verdict =
                            if out.changes.iter().any(|c| c.verdict == Verdict::Regression) {
                                Verdict::Regression
                            } else if out
                                .changes
                                .iter()
                                .any(|c| c.verdict == Verdict::Improvement)
                            {
                                Verdict::Improvement
                            } else {
                                Verdict::Unchanged
                            };
                    }
                    (bm, _) => {
                        out.verdict = Verdict::Failed;
                        out.newly_failed = bm.is_some();
                        out.note = match (failure_note(b), failure_note(n)) {
                            (Some(rb), Some(rn)) if rb == rn => {
                                format!("failed in both runs: {rn}")
                            }
                            (Some(rb), Some(rn)) => format!("base failed: {rb}; new failed: {rn}"),
                            (Some(rb), None) => format!("base failed: {rb}"),
                            (None, Some(rn)) => format!("new failed: {rn}"),
                            (None, None) => String::new(),
                        };
                    }
                },
                (None, None) => {}
            }
            Some(out)
        })
        .collect();
    Comparison {
        base_label: label(base),
        new_label: label(new),
        options: *opts,
        cells,
    }
}

/// "3 regressions", "1 improvement", "5 unchanged".
fn count_text(v: Verdict, n: usize) -> String {
    let word = match v {
        Verdict::Regression => "regression",
        Verdict::Improvement => "improvement",
        Verdict::Unchanged => return format!("{n} unchanged"),
        Verdict::Missing => return format!("{n} missing"),
        Verdict::Failed => return format!("{n} failed"),
    };
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

#[derive(Serialize)]
struct HtmlPage {
    base_label: String,
    new_label: String,
    threshold: String,
    rule: String,
    counts: Vec<(String, usize)>,
    has_regression: bool,
    columns: Vec<String>,
    rows: Vec<HtmlRow>,
}

#[derive(Serialize)]
struct HtmlRow {
    key: String,
    color: String,
    verdict: String,
    verdict_class: String,
    cells: Vec<HtmlCell>,
    note: String,
}

#[derive(Serialize)]
struct HtmlCell {
    text: String,
    change: String,
    class: String,
}

impl Comparison {
    /// Any regression, or a cell that newly fails.
    pub fn has_regression(&self) -> bool {
        self.cells
            .iter()
            .any(|c| c.verdict == Verdict::Regression || c.newly_failed)
    }

    /// Cells per verdict, in a fixed order.
    pub fn counts(&self) -> Vec<(Verdict, usize)> {
        [
            Verdict::Regression,
            Verdict::Improvement,
            Verdict::Unchanged,
            Verdict::Failed,
            Verdict::Missing,
        ]
        .into_iter()
        .map(|v| (v, self.cells.iter().filter(|c| c.verdict == v).count()))
        .collect()
    }

    fn rule_text(&self) -> String {
        format!(
            "A change is flagged when it exceeds {:.0}%, or, for throughput with ≥{MIN_REPEATS} repeats on both sides, {K_SPREAD}× the larger relative min–max spread of the repeats if that is wider. Latency changes under one clock reading and peak-RSS changes under {} are never flagged.",
            self.options.threshold * 100.0,
            format_bytes(RSS_FLOOR_BYTES)
        )
    }

    /// A plain-text table for the terminal.
    pub fn render_terminal(&self) -> String {
        let mut rows: Vec<Vec<String>> = vec![vec![
            "cell".into(),
            "throughput base → new".into(),
            "Δ thr".into(),
            "Δ alloc p99".into(),
            "Δ free p99".into(),
            "Δ peak RSS".into(),
            "verdict".into(),
        ]];
        for c in &self.cells {
            let get = |m: Metric| c.changes.iter().find(|x| x.metric == m);
            let delta = |m: Metric| {
                get(m)
                    .map(|x| {
                        let mark = match x.verdict {
                            Verdict::Regression => " !",
                            Verdict::Improvement => " +",
                            _ => "",
                        };
                        format!("{}{mark}", pct_change(x.relative()))
                    })
                    .unwrap_or_else(|| "—".into())
            };
            let thr = get(Metric::Throughput)
                .map(|x| format!("{} → {}", format_ops(x.base), format_ops(x.new)))
                .unwrap_or_else(|| "—".into());
            let mut verdict = c.verdict.word().to_string();
            let flagged: Vec<&str> = c
                .changes
                .iter()
                .filter(|x| x.verdict == c.verdict && c.verdict != Verdict::Unchanged)
                .map(|x| x.metric.name())
                .collect();
            if !flagged.is_empty() {
                verdict.push_str(&format!(" ({})", flagged.join(", ")));
            }
            if !c.note.is_empty() {
                verdict.push_str(&format!(": {}", c.note));
            }
            rows.push(vec![
                c.key.clone(),
                thr,
                delta(Metric::Throughput),
                delta(Metric::AllocP99),
                delta(Metric::FreeP99),
                delta(Metric::PeakRss),
                verdict,
            ]);
        }
        let ncol = rows[0].len();
        let widths: Vec<usize> = (0..ncol)
            .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
            .collect();
        let mut out = format!(
            "base: {}\nnew:  {}\n{}\n\n",
            self.base_label,
            self.new_label,
            self.rule_text()
        );
        for (ri, r) in rows.iter().enumerate() {
            let mut line = String::new();
            for (i, v) in r.iter().enumerate() {
                let pad = widths[i].saturating_sub(v.chars().count());
                if i == ncol - 1 {
                    line.push_str(v);
                } else if i == 0 {
                    line.push_str(v);
                    line.push_str(&" ".repeat(pad + 2));
                } else {
                    line.push_str(&" ".repeat(pad));
                    line.push_str(v);
                    line.push_str("  ");
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
            if ri == 0 {
                // The verdict column is ragged (notes), so the rule stops at its header.
                let w = widths[..ncol - 1].iter().sum::<usize>()
                    + 2 * (ncol - 1)
                    + r[ncol - 1].chars().count();
                out.push_str(&"-".repeat(w));
                out.push('\n');
            }
        }
        let counts: Vec<String> = self
            .counts()
            .iter()
            .map(|(v, n)| count_text(*v, *n))
            .collect();
        out.push_str(&format!("\n{}\n", counts.join(", ")));
        if self.has_regression() {
            out.push_str("Regressions found.\n");
        }
        out
    }

    /// A self-contained HTML page of the same table.
    pub fn render_html(&self) -> anyhow::Result<String> {
        let columns = Metric::ALL.iter().map(|m| m.name().to_string()).collect();
        let rows = self
            .cells
            .iter()
            .map(|c| HtmlRow {
                key: c.key.clone(),
                color: subject_color(&c.subject).to_string(),
                verdict: c.verdict.word().to_string(),
                verdict_class: format!("verdict-{:?}", c.verdict).to_lowercase(),
                cells: Metric::ALL
                    .iter()
                    .map(|m| match c.changes.iter().find(|x| x.metric == *m) {
                        Some(x) => HtmlCell {
                            text: format!("{} → {}", m.format(x.base), m.format(x.new)),
                            // The bound is worth showing only where the
                            // repeats widened it beyond the threshold.
                            change: if x.bound_from_spread {
                                format!(
                                    "{} (noise ±{:.1}%)",
                                    pct_change(x.relative()),
                                    x.bound * 100.0
                                )
                            } else {
                                pct_change(x.relative())
                            },
                            class: match x.verdict {
                                Verdict::Regression => "verdict-regression".into(),
                                Verdict::Improvement => "verdict-improvement".into(),
                                _ => String::new(),
                            },
                        },
                        None => HtmlCell {
                            text: "—".into(),
                            change: String::new(),
                            class: String::new(),
                        },
                    })
                    .collect(),
                note: c.note.clone(),
            })
            .collect();
        let page = HtmlPage {
            base_label: self.base_label.clone(),
            new_label: self.new_label.clone(),
            threshold: format!("{:.0}%", self.options.threshold * 100.0),
            rule: self.rule_text(),
            counts: self
                .counts()
                .iter()
                .map(|(v, n)| (count_text(*v, *n), *n))
                .collect(),
            has_regression: self.has_regression(),
            columns,
            rows,
        };
        crate::report::template::render("compare.html", &page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;
    use crate::results::Outcome;

    fn scale_throughput(r: &mut RunResults, key: &str, factor: f64) {
        let c = r.cells.iter_mut().find(|c| c.key() == key).unwrap();
        let Outcome::Ok(m) = &mut c.outcome else {
            panic!("{key} is not a successful cell")
        };
        m.ops_per_sec *= factor;
        for v in m.ops_per_sec_repeats.iter_mut() {
            *v *= factor;
        }
    }

    fn cell<'a>(c: &'a Comparison, key: &str) -> &'a CellComparison {
        c.cells.iter().find(|x| x.key == key).unwrap()
    }

    #[test]
    fn slowed_subject_is_a_regression_and_the_rest_unchanged() {
        let base = fixture::run_results();
        let mut new = base.clone();
        for t in fixture::THREADS {
            scale_throughput(&mut new, &format!("larson-small/sharded/t{t}"), 0.7);
        }
        let c = compare(&base, &new, &Options::default());
        let slowed = cell(&c, "larson-small/sharded/t4");
        assert_eq!(slowed.verdict, Verdict::Regression);
        let thr = &slowed.changes[0];
        assert_eq!(thr.metric, Metric::Throughput);
        assert!((thr.ratio - 0.7).abs() < 1e-9);
        assert_eq!(
            cell(&c, "larson-small/jemalloc/t4").verdict,
            Verdict::Unchanged
        );
        assert_eq!(
            cell(&c, "producer-consumer/sharded/t4").verdict,
            Verdict::Unchanged
        );
        assert!(c.has_regression());
        let regressions = c
            .cells
            .iter()
            .filter(|x| x.verdict == Verdict::Regression)
            .count();
        assert_eq!(regressions, fixture::THREADS.len());
        let text = c.render_terminal();
        assert!(text.contains("larson-small/sharded/t4"));
        assert!(text.contains("REGRESSION (throughput)"));
    }

    #[test]
    fn identical_runs_have_no_regression_and_failures_are_not_new() {
        let base = fixture::run_results();
        let c = compare(&base, &base, &Options::default());
        assert!(!c.has_regression());
        assert_eq!(cell(&c, fixture::FAILED_KEY).verdict, Verdict::Failed);
        assert!(!cell(&c, fixture::FAILED_KEY).newly_failed);
    }

    #[test]
    fn faster_and_leaner_is_an_improvement() {
        let base = fixture::run_results();
        let mut new = base.clone();
        scale_throughput(&mut new, "larson-small/gil/t2", 1.5);
        let c = compare(&base, &new, &Options::default());
        assert_eq!(
            cell(&c, "larson-small/gil/t2").verdict,
            Verdict::Improvement
        );
        assert!(!c.has_regression());
    }

    #[test]
    fn lower_is_better_for_latency_and_rss() {
        let base = fixture::run_results();
        let mut new = base.clone();
        let key = "larson-small/system/t2";
        let c = new.cells.iter_mut().find(|c| c.key() == key).unwrap();
        let Outcome::Ok(m) = &mut c.outcome else {
            panic!()
        };
        m.memory.peak_rss_bytes *= 2;
        for p in m.latency.get_mut("alloc").unwrap().percentiles.iter_mut() {
            p.ns *= 0.5;
        }
        let cmp = compare(&base, &new, &Options::default());
        let cc = cell(&cmp, key);
        let v = |m: Metric| cc.changes.iter().find(|x| x.metric == m).unwrap().verdict;
        assert_eq!(v(Metric::PeakRss), Verdict::Regression);
        assert_eq!(v(Metric::AllocP99), Verdict::Improvement);
        assert_eq!(v(Metric::Throughput), Verdict::Unchanged);
        assert_eq!(cc.verdict, Verdict::Regression);
    }

    #[test]
    fn changes_inside_the_repeat_spread_are_not_flagged() {
        let key = "larson-small/tcache/t2";
        let mut base = fixture::run_results();
        // Noisy repeats on both sides: ±20% around the median.
        let c = base.cells.iter_mut().find(|c| c.key() == key).unwrap();
        let Outcome::Ok(m) = &mut c.outcome else {
            panic!()
        };
        let med = m.ops_per_sec;
        m.ops_per_sec_repeats = vec![med * 0.8, med, med * 1.2];
        let mut new = base.clone();
        scale_throughput(&mut new, key, 0.85);
        let cmp = compare(&base, &new, &Options::default());
        let ch = &cell(&cmp, key).changes[0];
        assert_eq!(
            ch.verdict,
            Verdict::Unchanged,
            "15% drop inside a 40% spread"
        );
        assert!(ch.bound_from_spread);
        assert!((ch.bound - 0.4).abs() < 1e-9);

        // The same drop with tight repeats is flagged.
        let tight = fixture::run_results();
        let mut slowed = tight.clone();
        scale_throughput(&mut slowed, key, 0.85);
        let cmp = compare(&tight, &slowed, &Options::default());
        assert_eq!(cell(&cmp, key).verdict, Verdict::Regression);

        // With fewer than MIN_REPEATS repeats the threshold alone applies.
        let mut few = base.clone();
        let mut few_new = new.clone();
        for r in [&mut few, &mut few_new] {
            let c = r.cells.iter_mut().find(|c| c.key() == key).unwrap();
            let Outcome::Ok(m) = &mut c.outcome else {
                panic!()
            };
            m.ops_per_sec_repeats.truncate(2);
        }
        let cmp = compare(&few, &few_new, &Options::default());
        assert_eq!(cell(&cmp, key).verdict, Verdict::Regression);
    }

    #[test]
    fn missing_and_newly_failed_cells() {
        let base = fixture::run_results();
        let mut new = base.clone();
        new.cells.retain(|c| c.key() != "larson-small/null/t1");
        let c = new
            .cells
            .iter_mut()
            .find(|c| c.key() == "larson-small/gil/t4")
            .unwrap();
        c.outcome = Outcome::Failed(crate::results::Failure {
            kind: crate::results::FailureKind::Signal,
            reason: "killed by SIGSEGV".into(),
            exit_code: None,
            signal: Some(11),
            stderr_tail: String::new(),
        });
        let cmp = compare(&base, &new, &Options::default());
        assert_eq!(cell(&cmp, "larson-small/null/t1").verdict, Verdict::Missing);
        let failed = cell(&cmp, "larson-small/gil/t4");
        assert_eq!(failed.verdict, Verdict::Failed);
        assert!(failed.newly_failed);
        assert!(failed.note.contains("SIGSEGV"));
        assert!(cmp.has_regression());
    }

    #[test]
    fn bad_threshold_is_rejected_by_name() {
        let o = Options {
            threshold: -0.1,
            fail_on_regression: false,
        };
        let e = o.validate().unwrap_err().to_string();
        assert!(e.contains("threshold"));
        assert!(Options::default().validate().is_ok());
    }

    #[test]
    fn html_is_self_contained() {
        let base = fixture::run_results();
        let mut new = base.clone();
        scale_throughput(&mut new, "larson-small/sharded/t1", 0.7);
        let html = compare(&base, &new, &Options::default())
            .render_html()
            .unwrap();
        assert!(html.contains("verdict-regression"));
        assert!(!html.contains("http://") && !html.contains("https://"));
    }
}
