//! Cells grouped the way a report presents them.
//!
//! A group is one workload with one combination of swept field values:
//! within it, cells differ only by subject and thread count, so
//! "throughput vs threads, one line per subject" is well defined. A sweep
//! over, say, block size therefore yields one report section per size
//! rather than one crowded chart.

use crate::results::{Cell, CellMetrics, Latency, Percentile, RunResults};

use super::palette;

/// Cells of one workload and sweep point.
#[derive(Debug)]
pub struct Group<'a> {
    /// HTML id, unique in the page, `[a-z0-9-]` only.
    pub id: String,
    pub workload: String,
    /// `field=value, ...` of the sweep point; empty without a sweep.
    pub sweep: String,
    pub cells: Vec<&'a Cell>,
}

impl<'a> Group<'a> {
    /// Groups in order of first appearance in the results.
    pub fn all(results: &'a RunResults) -> Vec<Group<'a>> {
        let mut groups: Vec<Group<'a>> = Vec::new();
        for cell in &results.cells {
            let sweep = cell
                .sweep
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ");
            match groups
                .iter_mut()
                .find(|g| g.workload == cell.workload && g.sweep == sweep)
            {
                Some(g) => g.cells.push(cell),
                None => {
                    let n = groups.len() + 1;
                    let id = format!("w{n}-{}", slug(&format!("{} {}", cell.workload, sweep)));
                    groups.push(Group {
                        id,
                        workload: cell.workload.clone(),
                        sweep,
                        cells: vec![cell],
                    });
                }
            }
        }
        groups
    }

    /// Title for headings: the workload, plus the sweep point.
    pub fn title(&self) -> String {
        if self.sweep.is_empty() {
            self.workload.clone()
        } else {
            format!("{} · {}", self.workload, self.sweep)
        }
    }

    /// Subjects in report order.
    pub fn subjects(&self) -> Vec<&'a str> {
        let mut s: Vec<&'a str> = self.cells.iter().map(|c| c.subject.as_str()).collect();
        s.sort_by_key(|n| palette::rank(n));
        s.dedup();
        s
    }

    /// Thread counts, ascending.
    pub fn threads(&self) -> Vec<usize> {
        let mut t: Vec<usize> = self.cells.iter().map(|c| c.threads).collect();
        t.sort_unstable();
        t.dedup();
        t
    }

    pub fn max_threads(&self) -> usize {
        self.threads().last().copied().unwrap_or(1)
    }

    pub fn cell(&self, subject: &str, threads: usize) -> Option<&'a Cell> {
        self.cells
            .iter()
            .copied()
            .find(|c| c.subject == subject && c.threads == threads)
    }

    pub fn metrics(&self, subject: &str, threads: usize) -> Option<&'a CellMetrics> {
        self.cell(subject, threads).and_then(|c| c.metrics())
    }

    /// Failed cells at `threads`, as "subject (reason)" notes.
    pub fn failures_at(&self, threads: usize) -> Vec<String> {
        self.cells
            .iter()
            .filter(|c| c.threads == threads)
            .filter_map(|c| match &c.outcome {
                crate::results::Outcome::Failed(f) => Some(format!(
                    "{} failed at {} threads: {}",
                    c.subject, threads, f.reason
                )),
                crate::results::Outcome::Ok(_) => None,
            })
            .collect()
    }
}

/// `[a-z0-9-]` rendering of a name, for ids.
pub fn slug(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

/// Latency at percentile `p` (0..100): from the fixed percentiles when
/// listed, else the first distribution point at or above `p`.
pub fn percentile(lat: &Latency, p: f64) -> Option<Percentile> {
    if lat.count == 0 {
        return None;
    }
    if let Some(x) = lat
        .percentiles
        .iter()
        .find(|x| (x.percentile - p).abs() < 1e-9)
    {
        return Some(*x);
    }
    lat.distribution
        .iter()
        .find(|x| x.percentile >= p - 1e-9)
        .copied()
}

/// Whether any repeat of the cell ran while the machine was busy
/// (`Load::high`), and if so how busy, compactly: "repeats 1, 3 of 3:
/// other processes used 70%, 66% of the CPU time".
pub fn busy(m: &CellMetrics) -> Option<String> {
    let n = m.runs.len();
    let busy: Vec<(usize, &crate::results::Load)> = m
        .runs
        .iter()
        .enumerate()
        .filter(|(_, r)| r.load.high())
        .map(|(i, r)| (i + 1, &r.load))
        .collect();
    if busy.is_empty() {
        return None;
    }
    let list = |v: Vec<String>| v.join(", ");
    let which = list(busy.iter().map(|(i, _)| i.to_string()).collect());
    let others: Vec<String> = busy
        .iter()
        .filter_map(|(_, l)| l.others_busy_fraction.filter(|o| *o > 0.25))
        .map(|o| format!("{:.0}%", o * 100.0))
        .collect();
    let steal: Vec<String> = busy
        .iter()
        .filter_map(|(_, l)| l.steal_fraction.filter(|s| *s > 0.05))
        .map(|s| format!("{:.0}%", s * 100.0))
        .collect();
    let mut what = Vec::new();
    if !others.is_empty() {
        what.push(format!(
            "other processes used {} of the CPU time",
            list(others)
        ));
    }
    if !steal.is_empty() {
        what.push(format!("the hypervisor stole {}", list(steal)));
    }
    Some(format!(
        "repeat{} {which} of {n}: {}",
        if busy.len() == 1 { "" } else { "s" },
        what.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixture;

    #[test]
    fn groups_follow_workloads() {
        let r = fixture::run_results();
        let g = Group::all(&r);
        assert_eq!(g.len(), fixture::WORKLOADS.len());
        assert_eq!(g[0].id, "w1-larson-small");
        assert_eq!(g[0].subjects(), fixture::SUBJECTS);
        assert_eq!(g[0].threads(), fixture::THREADS);
    }

    #[test]
    fn slugs_are_id_safe() {
        assert_eq!(slug("Larson small / size=64 "), "larson-small-size-64");
    }
}
