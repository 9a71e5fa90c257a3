//! The view model handed to the templates.
//!
//! Everything here is already formatted text (or finished SVG markup):
//! the templates only lay it out, so number formatting and the choice of
//! what to show stay in Rust where they are tested.

use serde::Serialize;

/// The whole report page.
#[derive(Debug, Serialize)]
pub struct Page {
    pub title: String,
    pub poolbench_version: String,
    pub started_at: String,
    pub finished_at: String,
    pub command: String,
    pub cells_total: usize,
    pub cells_failed: usize,
    pub environment: EnvView,
    pub subjects: Vec<Swatch>,
    pub groups: Vec<GroupView>,
}

/// A subject and its colour.
#[derive(Debug, Serialize)]
pub struct Swatch {
    pub name: String,
    pub color: String,
}

/// Environment rows and warnings.
#[derive(Debug, Serialize)]
pub struct EnvView {
    pub rows: Vec<(String, String)>,
    /// What this machine allows (`poolbench selfcheck`), when it ran.
    pub selfcheck: Vec<(String, String)>,
    /// What changes the meaning of figures (LD_PRELOAD, a subject below
    /// the floor): shown first, prominently.
    pub alerts: Vec<String>,
    /// Read before trusting the figures (a busy machine, few repeats, ...).
    pub warnings: Vec<String>,
}

/// One workload (and sweep point).
#[derive(Debug, Serialize)]
pub struct GroupView {
    pub id: String,
    pub title: String,
    /// The resolved workload parameters as compact `key=value` text.
    pub params: String,
    pub summary: TableView,
    pub sections: Vec<SectionView>,
}

/// A chart section: throughput, latency, memory or fragmentation.
#[derive(Debug, Serialize)]
pub struct SectionView {
    pub id: String,
    /// `throughput`, `latency`, `memory`, `fragmentation`.
    pub kind: String,
    pub title: String,
    pub intro: String,
    pub charts: Vec<ChartView>,
    pub notes: Vec<String>,
    pub tables: Vec<MiniTable>,
}

#[derive(Debug, Serialize)]
pub struct ChartView {
    pub title: String,
    pub svg: String,
}

/// A plain table of figures under a chart.
#[derive(Debug, Serialize)]
pub struct MiniTable {
    /// What the table shows (empty: the section says it).
    pub caption: String,
    pub head: Vec<String>,
    /// The last column is free text (left-aligned, wrapping).
    pub text_last: bool,
    pub rows: Vec<Vec<String>>,
}

/// The summary table: subjects × metrics, one block per thread count.
#[derive(Debug, Serialize)]
pub struct TableView {
    /// How to read it: what the intervals are, what is marked.
    pub lede: String,
    pub columns: Vec<Column>,
    pub blocks: Vec<TableBlock>,
    /// Under the table: busy cells, cells below the floor.
    pub notes: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct Column {
    pub name: String,
    /// "higher is better" / "lower is better" / empty.
    pub hint: String,
}

#[derive(Debug, Serialize)]
pub struct TableBlock {
    pub threads: usize,
    pub oversubscribed: bool,
    pub rows: Vec<TableRow>,
}

#[derive(Debug, Serialize)]
pub struct TableRow {
    pub subject: String,
    pub color: String,
    /// Why the cell's figures are doubtful (the machine was busy); empty
    /// when they are not.
    pub busy: String,
    pub cells: Vec<TableCell>,
    /// Set for a failed cell: the other cells are then empty.
    pub failure: Option<FailureView>,
}

#[derive(Debug, Serialize)]
pub struct TableCell {
    /// The median (or the value).
    pub text: String,
    /// Its interval, `[low, high]`; empty when there is none.
    pub interval: String,
    /// Tooltip: the median, the interval and what the interval is.
    pub title: String,
    /// Fastest of its thread count beyond the noise.
    pub best: bool,
    /// Marks after the value.
    pub flags: Vec<Flag>,
}

/// A short mark on a figure (`<floor`), with its explanation.
#[derive(Debug, Serialize)]
pub struct Flag {
    pub text: String,
    /// CSS class: `floor`, `res`.
    pub class: String,
    pub title: String,
}

#[derive(Debug, Serialize)]
pub struct FailureView {
    pub kind: String,
    pub reason: String,
    pub detail: String,
    pub stderr_tail: String,
}
