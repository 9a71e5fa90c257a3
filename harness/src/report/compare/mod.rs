//! `poolbench compare BASE.json NEW.json`: per-cell ratios between two
//! runs, with changes beyond the noise flagged.
//!
//! Cells are matched by [`Cell::key`] (workload, subject, threads, sweep
//! point). For each matched pair where both cells succeeded, these metrics
//! are compared as `ratio = new / base` of their medians over repeats:
//!
//! | metric | better | per-repeat values |
//! | --- | --- | --- |
//! | throughput | higher | each repeat's ops/s |
//! | alloc p50, alloc p99 | lower | each repeat's percentile (clock overhead subtracted) |
//! | free p99 (local frees, else remote) | lower | as alloc |
//! | peak RSS | lower | each repeat's peak RSS |
//!
//! **Noise model.** A change is flagged only when it is beyond both the
//! threshold and the measured noise: the median ratio is off 1 by more than
//! the threshold, *and* the 95% percentile-bootstrap interval of the ratio
//! of medians (resampling each side's repeats, fixed seed) excludes 1
//! (`crate::stats::differs`). With one repeat per side there is no noise
//! estimate and the threshold alone decides; the output says so. Latency
//! percentiles with fewer than [`MIN_TAIL_SAMPLES`] samples at or beyond
//! them are not compared; latency changes of [`LATENCY_FLOOR_TICKS`]
//! clock resolutions or less, and
//! peak-RSS changes under [`RSS_FLOOR_BYTES`], are never flagged. A repeat
//! whose percentile is below the resolution counts as the resolution (the
//! most it can be), not as missing: dropping it would leave the cell one
//! repeat, and no noise estimate, on that side.
//!
//! **Drift between runs.** A flagged change must also stand out from the
//! drift of the machine between the two runs and from the cell's own
//! spread: see `drift.rs`.
//!
//! **Verdicts per cell:** `Missing` when only one run has the cell,
//! `Failed` when either side failed, else `Regression` if any metric got
//! worse beyond its bound, else `Improvement` if any got better, else
//! `Unchanged`. [`Comparison::has_regression`] is true for any
//! `Regression`, and for a cell that succeeded in the base run but fails
//! in the new one (a crash is worse than a slowdown); a cell failing in
//! both runs, or missing from one, is reported but is not a regression.

use serde::Serialize;

use crate::report::{format_bytes, format_ops, pct_change, subject_color};
use crate::results::{Cell, CellMetrics, RunResults};
use crate::stats;

mod drift;
mod metric;
use drift::z_score;
pub use drift::{Drift, DRIFT_MIN_CELLS, DRIFT_Z};
pub use metric::Metric;

/// Default relative change flagged: 10%.
pub const DEFAULT_THRESHOLD: f64 = 0.10;
/// Latency differences of at most this many clock resolutions are not
/// flagged: each side's figure carries a resolution step of quantization
/// and one of its calibrated overhead (which itself moves by a step from
/// one cell to the next), so two steps are the clock, not the allocator.
pub const LATENCY_FLOOR_TICKS: f64 = 2.0;
/// Samples a latency percentile must have at or beyond it to be compared
/// (so a p99 needs 5,000 timed operations of its kind).
pub const MIN_TAIL_SAMPLES: f64 = 50.0;
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

/// One metric of one cell in both runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Change {
    pub metric: Metric,
    /// Medians over repeats.
    pub base: f64,
    pub new: f64,
    /// `new / base`.
    pub ratio: f64,
    /// 95% bootstrap interval of the ratio, when both sides have more than
    /// one repeat.
    pub interval: Option<(f64, f64)>,
    /// The threshold the ratio had to exceed.
    pub bound: f64,
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
    /// How each metric moved over all cells (metrics with enough cells).
    pub drift: Vec<Drift>,
}

fn label(r: &RunResults) -> String {
    let commit = r
        .environment
        .git_commit
        .as_deref()
        .map(|c| format!(", commit {}", c.chars().take(12).collect::<String>()))
        .unwrap_or_default();
    format!(
        "{} on {}{commit}, {} repeat(s)",
        r.started_at, r.environment.hostname, r.repeats
    )
}

/// Whether a difference clears the metric's floor. Latency counts whole
/// steps of the clock (`floor` is one step): the same step comes out of two
/// cells' calibrations a few parts in 10⁵ apart, so two steps must not
/// read as a hair more than two.
fn beyond_floor(metric: Metric, diff: f64, floor: f64) -> bool {
    match metric {
        Metric::AllocP50 | Metric::AllocP99 | Metric::FreeP99 if floor > 0.0 => {
            (diff / floor).round() > LATENCY_FLOOR_TICKS
        }
        _ => diff > floor,
    }
}

fn compare_metric(
    metric: Metric,
    base: &CellMetrics,
    new: &CellMetrics,
    opts: &Options,
    latency_step_ns: f64,
    drift: Option<&Drift>,
) -> Option<Change> {
    let (bv, nv) = (metric.values(base), metric.values(new));
    let (b, n) = (stats::median(&bv)?, stats::median(&nv)?);
    let ratio = n / b;
    let rel = ratio - 1.0;
    let interval = if bv.len() > 1 && nv.len() > 1 {
        stats::ratio_interval(&bv, &nv).map(|(_, lo, hi)| (lo, hi))
    } else {
        None
    };
    let beyond_noise = interval.is_none_or(|(lo, hi)| lo > 1.0 || hi < 1.0);
    let floor = match metric {
        Metric::Throughput => 0.0,
        Metric::AllocP50 | Metric::AllocP99 | Metric::FreeP99 => latency_step_ns,
        Metric::PeakRss => RSS_FLOOR_BYTES,
    };
    let beyond = beyond_noise
        && rel.abs() > opts.threshold
        && beyond_floor(metric, (n - b).abs(), floor)
        && z_score(ratio, &bv, &nv, drift).is_none_or(|z| z > DRIFT_Z);
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
        interval,
        bound: opts.threshold,
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
    let latency_step = base
        .clock
        .resolution_ns
        .max(new.clock.resolution_ns)
        .max(0.0);
    let matched: Vec<(usize, &CellMetrics, &CellMetrics)> = base
        .cells
        .iter()
        .filter_map(|b| {
            let n = new.cells.iter().find(|c| c.key() == b.key())?;
            Some((b.threads, b.metrics()?, n.metrics()?))
        })
        .collect();
    let mut threads: Vec<usize> = matched.iter().map(|m| m.0).collect();
    threads.sort_unstable();
    threads.dedup();
    let drift: Vec<Drift> = Metric::ALL
        .iter()
        .flat_map(|m| threads.iter().filter_map(|t| Drift::of(*m, *t, &matched)))
        .collect();
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
                            .filter_map(|m| {
                                let d = drift
                                    .iter()
                                    .find(|d| d.metric == *m && d.threads == any.threads);
                                compare_metric(*m, bm, nm, opts, latency_step, d)
                            })
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
        drift,
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
            "A change is flagged when the median ratio is off by more than {:.0}%, its 95% bootstrap interval (over the repeats of both runs) excludes 1, and it lies more than {} noise spreads from the median change of all cells at its thread count (the drift between the runs, measured where at least {} cells have the metric, combined with the cell's own spread over its repeats); with a single repeat on a side there is no noise estimate and the threshold alone decides. A latency percentile is compared only where at least {} samples lie at or beyond it; latency changes of at most {} clock resolutions (a percentile below the resolution counts as the resolution) and peak-RSS changes under {} are never flagged.{}",
            self.options.threshold * 100.0,
            DRIFT_Z,
            DRIFT_MIN_CELLS,
            MIN_TAIL_SAMPLES,
            LATENCY_FLOOR_TICKS,
            format_bytes(RSS_FLOOR_BYTES),
            self.drift_text()
        )
    }

    /// " Drift between the runs: throughput −3.1% (spread 4.2%, 198 cells); …"
    fn drift_text(&self) -> String {
        if self.drift.is_empty() {
            return String::new();
        }
        let parts: Vec<String> = self
            .drift
            .iter()
            .map(|d| {
                format!(
                    "{} at {} thread{} {} (spread {:.1}%, {} cells)",
                    d.metric.name(),
                    d.threads,
                    if d.threads == 1 { "" } else { "s" },
                    pct_change(d.common_log.exp() - 1.0),
                    d.spread_log * 100.0,
                    d.cells
                )
            })
            .collect();
        format!(" Drift between the runs: {}.", parts.join("; "))
    }

    /// A plain-text table for the terminal.
    pub fn render_terminal(&self) -> String {
        let mut rows: Vec<Vec<String>> = vec![vec![
            "cell".into(),
            "throughput base → new".into(),
            "Δ thr".into(),
            "Δ alloc p50".into(),
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
                delta(Metric::AllocP50),
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
                            change: match x.interval {
                                Some((lo, hi)) => format!(
                                    "{} [{}, {}]",
                                    pct_change(x.relative()),
                                    pct_change(lo - 1.0),
                                    pct_change(hi - 1.0)
                                ),
                                None => format!("{} (no noise estimate)", pct_change(x.relative())),
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

    fn metrics_mut<'a>(r: &'a mut RunResults, key: &str) -> &'a mut CellMetrics {
        let c = r.cells.iter_mut().find(|c| c.key() == key).unwrap();
        let Outcome::Ok(m) = &mut c.outcome else {
            panic!("{key} is not a successful cell")
        };
        m
    }

    fn scale_throughput(r: &mut RunResults, key: &str, factor: f64) {
        let m = metrics_mut(r, key);
        for run in m.runs.iter_mut() {
            run.ops_per_sec *= factor;
        }
        m.ops_per_sec = stats::estimate(&m.rates());
    }

    fn cell<'a>(c: &'a Comparison, key: &str) -> &'a CellComparison {
        c.cells.iter().find(|x| x.key == key).unwrap()
    }

    /// The whole machine 5–15% slower in the new run (each cell by its own
    /// amount), and one subject 40% slower on top: only that subject is
    /// flagged, and the drift is reported.
    #[test]
    fn drift_of_the_whole_machine_is_not_a_regression() {
        let base = fixture::run_results();
        let mut new = base.clone();
        let keys: Vec<String> = base
            .cells
            .iter()
            .filter(|c| c.metrics().is_some())
            .map(|c| c.key())
            .collect();
        for (i, key) in keys.iter().enumerate() {
            let machine = 0.85 + 0.10 * (i % 7) as f64 / 6.0;
            let own = if key.contains("/sharded/") { 0.6 } else { 1.0 };
            scale_throughput(&mut new, key, machine * own);
        }
        let c = compare(&base, &new, &Options::default());
        let d = c
            .drift
            .iter()
            .find(|d| d.metric == Metric::Throughput)
            .expect("enough cells");
        assert!((0.85..0.95).contains(&d.common_log.exp()), "{d:?}");
        for x in &c.cells {
            let thr = x.changes.iter().find(|ch| ch.metric == Metric::Throughput);
            let Some(thr) = thr else { continue };
            let expected = if x.subject == "sharded" {
                Verdict::Regression
            } else {
                Verdict::Unchanged
            };
            assert_eq!(thr.verdict, expected, "{} ratio {:.3}", x.key, thr.ratio);
        }
        assert!(c
            .render_terminal()
            .contains("Drift between the runs: throughput"));
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
        for run in metrics_mut(&mut new, key).runs.iter_mut() {
            run.memory.peak_rss_bytes *= 2;
            for p in run.latency.get_mut("alloc").unwrap().percentiles.iter_mut() {
                p.ns *= 0.5;
            }
        }
        let cmp = compare(&base, &new, &Options::default());
        let cc = cell(&cmp, key);
        let v = |m: Metric| cc.changes.iter().find(|x| x.metric == m).unwrap().verdict;
        assert_eq!(v(Metric::PeakRss), Verdict::Regression);
        assert_eq!(v(Metric::AllocP99), Verdict::Improvement);
        assert_eq!(v(Metric::Throughput), Verdict::Unchanged);
        assert_eq!(cc.verdict, Verdict::Regression);
    }

    /// A percentile below the resolution in the base counts as the
    /// resolution; moving up by two steps of the clock is the clock, by
    /// four is a change.
    #[test]
    fn a_step_or_two_of_the_clock_is_not_a_latency_change() {
        let key = "larson-small/jemalloc/t1";
        let res = fixture::CLOCK_RESOLUTION_NS;
        let set_p99 = |r: &mut RunResults, ns: f64| {
            for run in metrics_mut(r, key).runs.iter_mut() {
                for p in run.latency.get_mut("alloc").unwrap().percentiles.iter_mut() {
                    if p.percentile == 99.0 {
                        p.ns = ns;
                        p.below_resolution = ns <= res;
                    }
                }
            }
        };
        let mut base = fixture::run_results();
        set_p99(&mut base, res / 2.0);
        let verdict = |new: &RunResults| {
            let cmp = compare(&base, new, &Options::default());
            let cc = cell(&cmp, key);
            cc.changes
                .iter()
                .find(|x| x.metric == Metric::AllocP99)
                .unwrap()
                .verdict
        };
        let mut new = base.clone();
        set_p99(&mut new, 3.0 * res);
        assert_eq!(verdict(&new), Verdict::Unchanged);
        set_p99(&mut new, 5.0 * res);
        assert_eq!(verdict(&new), Verdict::Regression);
    }

    /// A p99 resting on fewer than `MIN_TAIL_SAMPLES` samples is not
    /// compared, however far it moved.
    #[test]
    fn a_tail_on_a_handful_of_samples_is_not_compared() {
        let key = "larson-small/jemalloc/t1";
        let mut base = fixture::run_results();
        for run in metrics_mut(&mut base, key).runs.iter_mut() {
            run.latency.get_mut("alloc").unwrap().count = 600;
        }
        let mut new = base.clone();
        for run in metrics_mut(&mut new, key).runs.iter_mut() {
            for p in run.latency.get_mut("alloc").unwrap().percentiles.iter_mut() {
                p.ns *= 10.0;
            }
        }
        let cmp = compare(&base, &new, &Options::default());
        let cc = cell(&cmp, key);
        assert!(!cc.changes.iter().any(|x| x.metric == Metric::AllocP99));
        // The median rests on 300 samples: compared, and worse.
        let p50 = cc.changes.iter().find(|x| x.metric == Metric::AllocP50);
        assert_eq!(p50.map(|c| c.verdict), Some(Verdict::Regression));
    }

    #[test]
    fn changes_inside_the_noise_are_not_flagged() {
        let key = "larson-small/tcache/t2";
        let mut base = fixture::run_results();
        // Noisy repeats: ±20% around the median.
        {
            let m = metrics_mut(&mut base, key);
            let med = m.ops_per_sec.median;
            for (run, f) in m.runs.iter_mut().zip([0.8, 1.0, 1.2]) {
                run.ops_per_sec = med * f;
            }
        }
        let mut new = base.clone();
        scale_throughput(&mut new, key, 0.85);
        let cmp = compare(&base, &new, &Options::default());
        let ch = &cell(&cmp, key).changes[0];
        assert_eq!(ch.verdict, Verdict::Unchanged, "15% drop inside ±20% noise");
        let (lo, hi) = ch.interval.expect("three repeats a side");
        assert!(lo < 1.0 && hi > 0.85, "{lo} {hi}");

        // The same drop with tight repeats is flagged.
        let tight = fixture::run_results();
        let mut slowed = tight.clone();
        scale_throughput(&mut slowed, key, 0.85);
        let cmp = compare(&tight, &slowed, &Options::default());
        assert_eq!(cell(&cmp, key).verdict, Verdict::Regression);

        // With one repeat a side there is no noise estimate: the threshold
        // alone decides.
        let mut one = base.clone();
        let mut one_new = new.clone();
        for r in [&mut one, &mut one_new] {
            metrics_mut(r, key).runs.truncate(1);
        }
        let cmp = compare(&one, &one_new, &Options::default());
        assert_eq!(cell(&cmp, key).verdict, Verdict::Regression);
        assert!(cell(&cmp, key).changes[0].interval.is_none());
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
