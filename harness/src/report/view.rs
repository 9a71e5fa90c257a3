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
    pub table: Option<MiniTable>,
}

#[derive(Debug, Serialize)]
pub struct ChartView {
    pub title: String,
    pub svg: String,
}

/// A plain table of figures under a chart.
#[derive(Debug, Serialize)]
pub struct MiniTable {
    pub head: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

/// The summary table: subjects × metrics, one block per thread count.
#[derive(Debug, Serialize)]
pub struct TableView {
    pub columns: Vec<Column>,
    pub blocks: Vec<TableBlock>,
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
    pub cells: Vec<TableCell>,
    /// Set for a failed cell: the other cells are then empty.
    pub failure: Option<FailureView>,
}

#[derive(Debug, Serialize)]
pub struct TableCell {
    pub text: String,
    pub best: bool,
}

#[derive(Debug, Serialize)]
pub struct FailureView {
    pub kind: String,
    pub reason: String,
    pub detail: String,
    pub stderr_tail: String,
}
