//! The results file: what one `poolbench` run measured, as versioned JSON.
//!
//! Everything downstream (HTML reports, `compare`, external tools) reads
//! only this schema, never the harness's in-memory types, so the schema is
//! the contract. Bump [`SCHEMA_VERSION`] on any incompatible change; readers
//! refuse files of another version with a clear error rather than guessing.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// Version of the layout below.
pub const SCHEMA_VERSION: u32 = 1;

/// One run: every cell of a subjects × workloads × threads sweep.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunResults {
    pub schema_version: u32,
    /// `poolbench` version (crate version).
    pub poolbench_version: String,
    /// Wall-clock start, RFC 3339 UTC.
    pub started_at: String,
    /// Wall-clock end, RFC 3339 UTC.
    pub finished_at: String,
    /// The exact command line that produced the run.
    pub command: Vec<String>,
    pub environment: Environment,
    pub clock: ClockInfo,
    pub cells: Vec<Cell>,
}

/// Where the run happened.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Environment {
    pub cpu_model: String,
    /// Logical CPUs available to the process.
    pub logical_cores: usize,
    pub kernel: String,
    pub os: String,
    pub hostname: String,
    pub rustc: String,
    /// `release` or `debug`: a debug build's figures mean little.
    pub profile: String,
    pub git_commit: Option<String>,
    /// Versions of the reference allocator crates and their libraries.
    pub crate_versions: BTreeMap<String, String>,
}

/// The clock latencies were taken with.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ClockInfo {
    /// `tsc` (x86-64 time-stamp counter) or `monotonic` (clock_gettime).
    pub source: String,
    /// Nanoseconds per clock tick, from calibration.
    pub ns_per_tick: f64,
    /// Median cost of one reading of the clock, in ns; latencies include it
    /// once (start and stop readings straddle the operation).
    pub overhead_ns: f64,
}

/// One (subject, workload, threads) cell, run in its own child process.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Cell {
    pub subject: String,
    /// Preset or workload-file name.
    pub workload: String,
    pub threads: usize,
    /// Values of swept workload fields, by field name (empty if none).
    #[serde(default)]
    pub sweep: BTreeMap<String, String>,
    /// The fully resolved workload the cell ran, as the harness serialises it.
    pub workload_params: serde_json::Value,
    pub outcome: Outcome,
}

impl Cell {
    /// Metrics if the cell succeeded.
    pub fn metrics(&self) -> Option<&CellMetrics> {
        match &self.outcome {
            Outcome::Ok(m) => Some(m),
            Outcome::Failed(_) => None,
        }
    }

    /// A key that names the cell across runs (for `compare`).
    pub fn key(&self) -> String {
        let mut k = format!("{}/{}/t{}", self.workload, self.subject, self.threads);
        for (f, v) in &self.sweep {
            k.push_str(&format!("/{f}={v}"));
        }
        k
    }
}

/// How a cell ended.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Ok(Box<CellMetrics>),
    Failed(Failure),
}

/// Why a cell failed; the other cells are unaffected.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Failure {
    pub kind: FailureKind,
    /// One line a person can act on.
    pub reason: String,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// The last lines the child wrote to stderr.
    pub stderr_tail: String,
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// Killed by a signal (SIGSEGV, SIGABRT, ...).
    Signal,
    /// Exited non-zero without a verification report.
    Exit,
    /// Ran past the cell timeout and was killed.
    Timeout,
    /// A block's tag or alignment was wrong.
    Verification,
    /// The child could not be started or its report could not be read.
    Harness,
}

/// What a successful cell measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct CellMetrics {
    /// Operations in the measured phase (allocs + frees + reallocs).
    pub ops: u64,
    /// Length of the measured phase, seconds.
    pub duration_s: f64,
    /// `ops / duration_s`; the median over repeats when there are several.
    pub ops_per_sec: f64,
    /// Throughput of each repeat, in order (one entry without repeats).
    pub ops_per_sec_repeats: Vec<f64>,
    pub warmup_ops: u64,
    pub counts: OpCounts,
    /// Latency per operation kind: `alloc`, `free_local`, `free_remote`,
    /// `realloc`, and `gil_wait` for the `gil` subject.
    pub latency: BTreeMap<String, Latency>,
    /// Latency sampling: one op in `one_in` was timed.
    pub sampling: Sampling,
    pub memory: Memory,
    pub verification: Verification,
    /// GIL counters, for the `gil` subject.
    pub gil: Option<GilCounters>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct OpCounts {
    pub allocs: u64,
    pub frees_local: u64,
    pub frees_remote: u64,
    pub reallocs: u64,
    /// Bytes requested by allocations and reallocations.
    pub bytes_requested: u64,
}

/// One latency distribution, in nanoseconds.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Latency {
    pub count: u64,
    pub min_ns: f64,
    pub max_ns: f64,
    pub mean_ns: f64,
    pub stdev_ns: f64,
    /// Fixed percentiles: 50, 75, 90, 95, 99, 99.9, 99.99, 100.
    pub percentiles: Vec<Percentile>,
    /// HdrHistogram-style percentile distribution (quantile iteration),
    /// dense enough to plot on a "nines" axis.
    pub distribution: Vec<Percentile>,
    /// The merged histogram in HdrHistogram's V2 log format
    /// (base64 of the V2-deflate encoding), values in ns.
    pub hdr_v2: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Percentile {
    /// 0..=100.
    pub percentile: f64,
    pub ns: f64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Sampling {
    /// One op in this many is timed (1 = every op).
    pub one_in: u32,
    /// Measured throughput cost of recording, as a fraction (0.03 = 3%),
    /// when it was measured.
    pub overhead: Option<f64>,
    /// The `one_in` the workload asked for; differs from `one_in` when the
    /// driver raised it because recording cost more than 5%.
    #[serde(default)]
    pub requested_one_in: u32,
    /// The overhead measured at `requested_one_in` (equal to `overhead`
    /// when `one_in` was not raised).
    #[serde(default)]
    pub overhead_at_requested: Option<f64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Memory {
    /// RSS sampled by a sampler thread; `t_s` from the start of the cell.
    pub rss_timeline: Vec<RssSample>,
    /// RSS of the child before the workload ran.
    pub rss_baseline_bytes: u64,
    /// Peak RSS of the child (getrusage `ru_maxrss`).
    pub peak_rss_bytes: u64,
    /// RSS after every block was freed.
    pub rss_after_drain_bytes: u64,
    /// Most bytes live at once as requested by the workload.
    pub requested_peak_bytes: u64,
    /// Memory held / bytes requested live, at peak; `None` if unknown.
    pub fragmentation: Option<f64>,
    /// Our subjects: the `_debugmallocstats` breakdown at peak.
    pub accounting_at_peak: Option<Accounting>,
    /// Our subjects: the breakdown after everything was freed.
    pub accounting_at_end: Option<Accounting>,
    /// Reference allocators: their own statistics by their own names
    /// (jemalloc `allocated`, `active`, `resident`, `mapped`, ...).
    #[serde(default)]
    pub reference_stats: BTreeMap<String, u64>,
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RssSample {
    pub t_s: f64,
    pub rss_bytes: u64,
}

/// DESIGN.md §7's names. The byte categories from `allocated_blocks` to
/// `arena_alignment` sum exactly to `mapped`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Accounting {
    pub requested_live: u64,
    pub allocated_blocks: u64,
    pub available_blocks: u64,
    pub empty_pools: u64,
    pub pool_headers: u64,
    pub quantization: u64,
    pub arena_alignment: u64,
    pub mapped: u64,
    pub raw_live_bytes: u64,
    pub arenas_current: u64,
    pub arenas_highwater: u64,
    pub arenas_allocated_total: u64,
    pub arenas_reclaimed: u64,
    pub pools_used: u64,
    pub pools_full: u64,
    pub pools_empty: u64,
    /// Allocator-specific counters (`cached_blocks`, `live_heaps`,
    /// `abandoned_heaps`, `pools_adopted`, `remote_frees_pushed`,
    /// `remote_frees_collected`), zero ones left out.
    #[serde(default)]
    pub extra: BTreeMap<String, u64>,
    /// Size classes with at least one pool.
    pub classes: Vec<ClassRow>,
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ClassRow {
    pub size: u64,
    pub pools: u64,
    pub full_pools: u64,
    pub blocks_in_use: u64,
    pub available_blocks: u64,
}

impl From<&allocator::Stats> for Accounting {
    fn from(s: &allocator::Stats) -> Self {
        let b = &s.bytes;
        let e = &s.extra;
        let extra = [
            ("cached_blocks", e.cached_blocks as u64),
            ("live_heaps", e.live_heaps as u64),
            ("abandoned_heaps", e.abandoned_heaps as u64),
            ("pools_adopted", e.pools_adopted),
            ("remote_frees_pushed", e.remote_frees_pushed),
            ("remote_frees_collected", e.remote_frees_collected),
        ]
        .into_iter()
        .filter(|(_, v)| *v != 0)
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Accounting {
            requested_live: s.requested_live as u64,
            allocated_blocks: b.allocated_blocks as u64,
            available_blocks: b.available_blocks as u64,
            empty_pools: b.empty_pools as u64,
            pool_headers: b.pool_headers as u64,
            quantization: b.quantization as u64,
            arena_alignment: b.arena_alignment as u64,
            mapped: b.mapped as u64,
            raw_live_bytes: s.raw_live_bytes as u64,
            arenas_current: s.arenas_current as u64,
            arenas_highwater: s.arenas_highwater as u64,
            arenas_allocated_total: s.arenas_allocated_total,
            arenas_reclaimed: s.arenas_reclaimed,
            pools_used: s.pools_used as u64,
            pools_full: s.pools_full as u64,
            pools_empty: s.pools_empty as u64,
            extra,
            classes: s
                .classes()
                .iter()
                .filter(|c| c.pools > 0)
                .map(|c| ClassRow {
                    size: c.size as u64,
                    pools: c.pools as u64,
                    full_pools: c.full_pools as u64,
                    blocks_in_use: c.blocks_in_use as u64,
                    available_blocks: c.available_blocks as u64,
                })
                .collect(),
        }
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Verification {
    pub enabled: bool,
    /// Blocks whose tag was checked before being freed.
    pub blocks_checked: u64,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct GilCounters {
    pub acquisitions: u64,
    /// Acquisitions that had to wait.
    pub contended: u64,
    /// Hand-offs forced by the switch interval.
    pub switches: u64,
    pub switch_interval_us: u64,
}

impl RunResults {
    /// Reads a results file, refusing other schema versions by name.
    pub fn load(path: &Path) -> Result<RunResults> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read results file {}", path.display()))?;
        let probe: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", path.display()))?;
        match probe.get("schema_version").and_then(|v| v.as_u64()) {
            Some(v) if v == SCHEMA_VERSION as u64 => {}
            Some(v) => bail!(
                "{}: schema_version {v} is not supported (this poolbench reads {SCHEMA_VERSION})",
                path.display()
            ),
            None => bail!(
                "{}: no schema_version field; not a poolbench results file",
                path.display()
            ),
        }
        serde_json::from_value(probe).with_context(|| {
            format!(
                "{}: does not match results schema v{SCHEMA_VERSION}",
                path.display()
            )
        })
    }

    /// Writes the results as pretty JSON, through a temporary file so a
    /// crash never leaves a truncated results file behind.
    pub fn save(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
        }
        let tmp = path.with_extension("json.tmp");
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
        std::fs::rename(&tmp, path)
            .with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))
    }
}
