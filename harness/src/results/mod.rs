//! The results file: what one `poolbench` run measured, as versioned JSON.
//!
//! Everything downstream (HTML reports, `compare`, external tools) reads
//! only this schema, never the harness's in-memory types, so the schema is
//! the contract. Bump [`SCHEMA_VERSION`] on any incompatible change; readers
//! refuse files of another version with a clear error rather than guessing.
//! Units are in field names (`_ns`, `_s`, `_bytes`, `ops_per_sec`).
//!
//! A cell is run `repeats` times, each in a fresh child process; a child's
//! figures are a [`RunMetrics`], and the cell's [`CellMetrics`] keeps every
//! one of them next to [`Estimate`]s (median and confidence interval)
//! over the repeats. Statistics live in `crate::stats`, not here: this
//! module is data only.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// The subject whose time per operation is the harness's own: the floor.
pub const FLOOR_SUBJECT: &str = "null";

/// Version of the layout below.
pub const SCHEMA_VERSION: u32 = 2;

/// One run: every cell of a subjects × workloads × threads sweep.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct RunResults {
    pub schema_version: u32,
    /// `poolbench` version (crate version).
    pub poolbench_version: String,
    /// Wall-clock start, RFC 3339 UTC.
    pub started_at: String,
    /// Wall-clock end, RFC 3339 UTC (of the last cell written so far).
    pub finished_at: String,
    /// The exact command line that produced the run.
    pub command: Vec<String>,
    /// Repeats per cell, interleaved across cells (repeat 1 of every cell,
    /// then repeat 2, ...).
    pub repeats: u32,
    pub environment: Environment,
    pub clock: ClockInfo,
    /// The cost of poolbench itself per operation (the `null` subject), per
    /// workload, thread count and sweep point.
    #[serde(default)]
    pub floors: Vec<Floor>,
    pub cells: Vec<Cell>,
    /// True while cells are still being written (an interrupted run's file).
    #[serde(default)]
    pub partial: bool,
    /// What the run left out and why (a Python workload where there is no
    /// `python3`), one line each.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
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
    /// `LD_PRELOAD` of the parent process, if set: every "system" figure
    /// then measures that library, not glibc.
    #[serde(default)]
    pub ld_preload: Option<String>,
    /// The shared object `malloc` resolves to in this process.
    #[serde(default)]
    pub malloc_library: Option<String>,
    /// Worker threads were pinned to CPUs (`--pin`).
    #[serde(default)]
    pub pinned: bool,
    /// The 1-minute load average when the run started.
    #[serde(default)]
    pub load_at_start: Option<f64>,
    /// What this machine allows (`poolbench selfcheck`), when it was run.
    #[serde(default)]
    pub selfcheck: Option<SelfCheck>,
}

/// What `poolbench selfcheck` measures: how far this machine's figures
/// can be trusted.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct SelfCheck {
    /// Median cost of one clock reading (what every latency sample pays).
    pub clock_overhead_ns: f64,
    /// Spread (p90 − p10) of back-to-back readings: below it a latency is
    /// not resolved.
    pub clock_resolution_ns: f64,
    /// The harness floor at 1 thread (null subject), ns per op, by preset.
    pub floor_ns_per_op: BTreeMap<String, f64>,
    /// The calibration subject's error: |measured − (floor + spin)| / spin.
    pub calibration_error: f64,
    /// The spin the calibration used, ns per call.
    pub calibration_spin_ns: f64,
    /// Relative spread (max − min) / median of a short cell repeated.
    pub spread: f64,
}

/// The clock latencies were taken with.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ClockInfo {
    /// `tsc` (x86-64 time-stamp counter) or `monotonic` (clock_gettime).
    pub source: String,
    /// Nanoseconds per clock tick, from calibration.
    pub ns_per_tick: f64,
    /// Median cost of a pair of back-to-back readings, in ns: subtracted
    /// from every latency sample.
    pub overhead_ns: f64,
    /// p90 − p10 of back-to-back pairs: latencies closer to the overhead
    /// than this are reported as below the clock's resolution.
    #[serde(default)]
    pub resolution_ns: f64,
}

/// A median over repeats with its interval.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Estimate {
    pub median: f64,
    /// Lower end of the interval.
    pub low: f64,
    /// Upper end of the interval.
    pub high: f64,
    /// Number of values.
    pub n: u32,
    /// Probability that the interval holds the true median: 0.95 or more
    /// with enough repeats (order statistics); below that it is the range
    /// of the values and says so.
    pub confidence: f64,
}

/// The harness's own cost at one configuration.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Floor {
    pub workload: String,
    pub threads: usize,
    #[serde(default)]
    pub sweep: BTreeMap<String, String>,
    /// `null`'s wall time per operation.
    pub ns_per_op: Estimate,
}

/// What kind of workload a cell ran (DESIGN.md §4).
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CellKind {
    /// A synthetic workload (a preset or a workload file).
    #[default]
    Synthetic,
    /// An application program with the subject as its global allocator.
    App,
    /// An external command under the subject.
    Program,
}

/// One (subject, workload, threads) cell.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Cell {
    pub subject: String,
    #[serde(default)]
    pub kind: CellKind,
    /// Preset or workload-file name.
    pub workload: String,
    pub threads: usize,
    /// Values of swept workload fields, by field name (empty if none).
    #[serde(default)]
    pub sweep: BTreeMap<String, String>,
    /// The fully resolved workload the cell ran, as the harness serialises it.
    pub workload_params: serde_json::Value,
    /// The environment variables the harness set for this subject in the
    /// cell's child only: `LD_PRELOAD` (the library, absolute) and, for our
    /// preload build, `POOLBENCH_ALLOCATOR` and `POOLBENCH_GEOMETRY`;
    /// `PYTHONMALLOC` for a CPython program. Empty for a subject in the
    /// binary.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub subject_env: BTreeMap<String, String>,
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

    /// The key of its configuration (everything but the subject).
    pub fn config_key(&self) -> String {
        let mut k = format!("{}/t{}", self.workload, self.threads);
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

/// A successful cell: every repeat and the estimates over them.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct CellMetrics {
    /// Every repeat's figures, in the order they ran.
    pub runs: Vec<RunMetrics>,
    /// Operations per second of the measured phase.
    pub ops_per_sec: Estimate,
    /// Wall time per operation per thread (`threads / ops_per_sec`), ns.
    pub ns_per_op: Estimate,
    /// Operations per CPU-second of the worker threads.
    pub ops_per_cpu_sec: Estimate,
    /// `ns_per_op` minus the floor of the same configuration, when the run
    /// measured one: the allocator's own cost.
    #[serde(default)]
    pub above_floor_ns_per_op: Option<Estimate>,
    /// Ran faster than the floor beyond the noise: a figure that measures
    /// the harness, or a broken subject.
    #[serde(default)]
    pub below_floor: bool,
    /// Peak RSS of the child, bytes.
    pub peak_rss_bytes: Estimate,
    /// Fragmentation (see [`Fragmentation`]), when it means something.
    #[serde(default)]
    pub fragmentation: Option<Estimate>,
    /// Latency by operation kind over every repeat's samples.
    pub latency: BTreeMap<String, Latency>,
    /// Parameters of the subject (the calibration spin), if any.
    #[serde(default)]
    pub subject_params: BTreeMap<String, f64>,
    /// A program cell's own figure over the repeats (see
    /// [`ProgramRun::metric`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<Estimate>,
}

impl CellMetrics {
    /// The repeat whose throughput is the median (the lower middle one
    /// for an even count): memory timelines, counters and accounting
    /// describe a run that actually happened.
    pub fn representative(&self) -> Option<&RunMetrics> {
        let mut order: Vec<&RunMetrics> = self.runs.iter().collect();
        order.sort_by(|a, b| a.ops_per_sec.total_cmp(&b.ops_per_sec));
        order.get(order.len().saturating_sub(1) / 2).copied()
    }

    /// Every repeat's throughput, in the order they ran.
    pub fn rates(&self) -> Vec<f64> {
        self.runs.iter().map(|r| r.ops_per_sec).collect()
    }
}

/// What one child process measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RunMetrics {
    /// Operations in the measured phase (allocs + frees + reallocs; a
    /// handoff counts once, as its remote free).
    pub ops: u64,
    /// Operations per thread, as calibrated from the probe.
    pub ops_per_thread: u64,
    /// Length of the measured phase, seconds.
    pub duration_s: f64,
    /// `ops / duration_s`.
    pub ops_per_sec: f64,
    /// CPU time of the child during the measured phase.
    pub cpu_user_s: f64,
    pub cpu_sys_s: f64,
    /// CPU time of the worker threads in the measured phase (per-thread
    /// clocks: time spent waiting for a core on a busy machine is not in
    /// it, barrier waits are).
    #[serde(default)]
    pub worker_cpu_s: f64,
    /// The probe's rate, ops/s, from which the phase was sized.
    pub probe_ops_per_sec: f64,
    /// Ops per thread before the measured phase (fill and warm-up).
    pub warmup_ops: u64,
    /// Ops of the replayed cycle per thread (thread 0).
    pub cycle_ops: u64,
    pub counts: OpCounts,
    /// Latency per operation kind: `alloc`, `free_local`, `free_remote`,
    /// `realloc`, and `gil_wait` for the `gil` subject.
    pub latency: BTreeMap<String, Latency>,
    pub sampling: Sampling,
    pub memory: Memory,
    pub verification: Verification,
    /// GIL counters, for the `gil` subject.
    pub gil: Option<GilCounters>,
    /// Machine load while the cell ran.
    pub load: Load,
    /// Blocks freed at the drain.
    #[serde(default)]
    pub drained_blocks: u64,
    /// The child's clock (its overhead was subtracted from its latencies).
    #[serde(default)]
    pub clock: ClockInfo,
    /// Parameters of the subject (the calibration spin), if any.
    #[serde(default)]
    pub subject_params: BTreeMap<String, f64>,
    /// An application's unit of work (`trees`, `words`, ...): `ops` count
    /// it, and `ops_per_sec` is units per second. `None`: operations.
    #[serde(default)]
    pub unit: Option<String>,
    /// An application's result checksum (equal across subjects and thread
    /// counts when the result is right).
    #[serde(default)]
    pub checksum: Option<u64>,
    /// An application's measured part on the RSS timeline's clock.
    #[serde(default)]
    pub measured_span_s: Option<(f64, f64)>,
    /// A program cell's figures beyond time and memory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<ProgramRun>,
}

/// What a program cell's child did, from `wait4`'s resource usage and its
/// output. Its wall time is `duration_s` (from the spawn to the exit), its
/// CPU time `cpu_user_s`/`cpu_sys_s` and its peak RSS
/// `memory.peak_rss_bytes`; all of them include the descendants it
/// waited for.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct ProgramRun {
    /// Page faults served without I/O (`ru_minflt`).
    pub minor_faults: u64,
    /// Page faults that needed I/O (`ru_majflt`).
    pub major_faults: u64,
    /// Context switches: waits (`ru_nvcsw`) and preemptions (`ru_nivcsw`).
    pub voluntary_switches: u64,
    pub involuntary_switches: u64,
    /// The program's own figure: the first capture group of the metric
    /// pattern in the last line of its output that matches (stdout first,
    /// then stderr).
    #[serde(default)]
    pub metric: Option<f64>,
    /// What the figure is: its unit (`ops/s` for the bundled Python
    /// workloads), else the pattern it was parsed with.
    #[serde(default)]
    pub metric_name: Option<String>,
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

/// One latency distribution, in nanoseconds, with the clock's overhead
/// subtracted.
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
    /// The histogram of raw readings (clock overhead included) in ns, in
    /// HdrHistogram's V2 log format (base64 of the V2-deflate encoding).
    pub hdr_v2: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Percentile {
    /// 0..=100.
    pub percentile: f64,
    /// The latency with the clock's overhead subtracted (0 when below it).
    pub ns: f64,
    /// Closer to the clock's overhead than its resolution: not a number to
    /// quote.
    #[serde(default)]
    pub below_resolution: bool,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Sampling {
    /// On average one op in this many was timed, at geometrically
    /// distributed intervals (0: no latency pass).
    pub one_in: u32,
    /// Operations per thread in the latency pass.
    pub ops_per_thread: u64,
    /// How much slower the latency pass ran than the measured phase
    /// (measured rate / latency-pass rate − 1): what timing some
    /// operations cost the others.
    pub perturbation: Option<f64>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Memory {
    /// RSS and requested-live bytes sampled over the cell; `t_s` from the
    /// start of the measured phase's warm-up.
    pub rss_timeline: Vec<RssSample>,
    /// RSS of the child with the harness's buffers allocated and touched,
    /// before the workload ran.
    pub rss_baseline_bytes: u64,
    /// Peak RSS of the child's own memory (`VmHWM`, not `ru_maxrss`,
    /// which includes the memory it was forked with).
    pub peak_rss_bytes: u64,
    /// RSS after every block was freed.
    pub rss_after_drain_bytes: u64,
    /// Requested live bytes at the end of the measured phase.
    pub requested_live_bytes: u64,
    /// RSS at the end of the measured phase.
    pub rss_at_end_bytes: u64,
    pub fragmentation: Fragmentation,
    /// Our subjects: the `_debugmallocstats` breakdown at the end of the
    /// measured phase.
    pub accounting_at_peak: Option<Accounting>,
    /// Our subjects: the breakdown after everything was freed.
    pub accounting_at_end: Option<Accounting>,
    /// The subject's own counters by its own names (jemalloc `resident`,
    /// mimalloc `current_commit`, ...), at the end of the measured phase.
    #[serde(default)]
    pub own_counters: BTreeMap<String, u64>,
}

/// One definition for every subject: resident bytes above the cell's
/// baseline over requested live bytes, at the end of the measured phase.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Fragmentation {
    /// The ratio, when live bytes are large enough for it to mean
    /// something.
    pub ratio: Option<f64>,
    /// Why there is no ratio, when there is none.
    pub note: Option<String>,
    /// Cross-check for our subjects: bytes held from the OS by their own
    /// accounting over requested live.
    pub own_ratio: Option<f64>,
}

#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct RssSample {
    pub t_s: f64,
    pub rss_bytes: u64,
    /// Requested live bytes at that moment, derived from the tapes.
    #[serde(default)]
    pub live_bytes: u64,
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
    /// A verify pass ran.
    pub enabled: bool,
    /// Operations per thread it ran.
    pub ops_per_thread: u64,
    /// Blocks whose tag was checked.
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

/// How busy the machine was while a cell ran.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
pub struct Load {
    /// 1-minute load average at the start and end of the cell.
    pub loadavg_start: Option<f64>,
    pub loadavg_end: Option<f64>,
    /// Fraction of CPU time stolen by the hypervisor during the measured
    /// phase (`/proc/stat` steal), over all CPUs.
    pub steal_fraction: Option<f64>,
    /// Fraction of the machine's CPU time used by other processes during
    /// the measured phase.
    pub others_busy_fraction: Option<f64>,
    /// Worker threads pinned to CPUs.
    pub pinned: bool,
}

impl Load {
    /// Whether the machine was busy enough during the cell to doubt it.
    pub fn high(&self) -> bool {
        self.steal_fraction.is_some_and(|s| s > 0.05)
            || self.others_busy_fraction.is_some_and(|b| b > 0.25)
    }
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

    /// Writes the results as pretty JSON, through a temporary file renamed
    /// into place, so a crash never leaves a truncated results file.
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

    /// The floor of a cell's configuration, if the run measured one.
    pub fn floor_of(&self, cell: &Cell) -> Option<&Floor> {
        self.floors.iter().find(|f| {
            f.workload == cell.workload && f.threads == cell.threads && f.sweep == cell.sweep
        })
    }
}
