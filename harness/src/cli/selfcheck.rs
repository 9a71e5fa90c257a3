//! `poolbench selfcheck`: what this machine allows.
//!
//! Four figures bound how far any other figure can be trusted here:
//!
//! - **clock overhead** (and resolution): what every latency sample pays,
//!   measured in this process;
//! - **the floor per preset**: the `null` subject's time per operation at
//!   1 thread, that is poolbench's own cost on that workload;
//! - **the calibration error**: a `pair` workload (one 48-byte block
//!   allocated and freed at once, nothing written) run on `null` and on
//!   `spin`, which is `null` plus a known cost per call; the difference of
//!   their times per operation must be that cost: the error is
//!   `|(spin − null) − cost| / cost`;
//! - **the spread**: `(max − min) / median` of the `system` subject's
//!   throughput over the repeats of the same `pair` cell.
//!
//! All cells run as children, repeats interleaved, exactly as `run` does.
//! The figures are printed (`--json`: one JSON object) and kept in
//! `OUT/selfcheck.json`, from which every later run on the same machine and
//! build copies them into its results' environment.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, SystemTime};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::cli::cell::{run_once, ChildOptions};
use crate::cli::out::check_out_dir;
use crate::cli::sweep::{CellSpec, Work};
use crate::cli::{SelfcheckArgs, EXIT_ERROR, EXIT_OK};
use crate::measure::clock::Clock;
use crate::results::{RunMetrics, RunResults, SelfCheck};
use crate::spec::workload::{Checked, Workload};
use crate::stats;
use crate::subjects::spin::{DEFAULT_SPIN_NS, SPIN_ENV};

/// The file the figures are kept in, under the output directory.
const FILE: &str = "selfcheck.json";
/// Kept figures older than this are not copied into a run.
const FRESH_FOR: Duration = Duration::from_secs(24 * 3600);
/// Longest a selfcheck cell may take.
const CELL_TIMEOUT: Duration = Duration::from_secs(120);

/// The selfcheck figures with what they were measured on.
#[derive(Serialize, Deserialize)]
struct Kept {
    hostname: String,
    git_commit: Option<String>,
    poolbench_version: String,
    measured_at_unix_s: u64,
    selfcheck: SelfCheck,
}

/// The `pair` calibration workload: 48-byte blocks, freed at once,
/// nothing written, at least 100 ms measured.
pub fn pair_workload() -> Result<Checked> {
    let mut w = Workload::default();
    for (f, v) in [
        ("name", "pair"),
        ("size", "48"),
        ("lifetime", "immediate"),
        ("touch_bytes", "0"),
        ("warmup_ops", "10000"),
        ("min_time_ms", "100"),
        ("latency_sample_one_in", "0"),
    ] {
        w.set(f, v)?;
    }
    Ok(w.check()?)
}

/// Runs `(subject, workload)` cells `repeat` times, interleaved; the time
/// per operation of every repeat, per cell.
fn measure(
    cells: &[(&str, Checked)],
    repeat: u32,
    progress: &dyn Fn(&str),
) -> Result<Vec<Vec<f64>>> {
    let exe = std::env::current_exe().context("cannot find the poolbench executable")?;
    let cancel = AtomicBool::new(false);
    let mut out = vec![Vec::new(); cells.len()];
    for r in 0..repeat {
        for (i, (subject, w)) in cells.iter().enumerate() {
            progress(&format!("{}/{subject} (repeat {}/{repeat})", w.name, r + 1));
            let spec = CellSpec {
                subject: subject.to_string(),
                work: Work::Synthetic(Box::new(w.clone())),
                sweep: Default::default(),
                subject_env: Default::default(),
            };
            let m: RunMetrics =
                run_once(&exe, &spec, ChildOptions::default(), CELL_TIMEOUT, &cancel)
                    .map_err(|f| anyhow::anyhow!("{}/{subject}: {}", w.name, f.reason))?;
            out[i].push(w.threads as f64 * 1e9 / m.ops_per_sec);
        }
    }
    Ok(out)
}

/// Measures every figure (see the module docs).
pub fn measure_all(repeat: u32, progress: &dyn Fn(&str)) -> Result<SelfCheck> {
    let clock = Clock::calibrate();
    let spin_ns = std::env::var(SPIN_ENV)
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(DEFAULT_SPIN_NS);
    let pair = pair_workload()?;
    let mut cells: Vec<(&str, Checked)> = vec![
        ("null", pair.clone()),
        ("spin", pair.clone()),
        ("system", pair),
    ];
    let presets = crate::spec::preset::all();
    for p in &presets {
        cells.push(("null", p.workload.clone().check()?));
    }
    let times = measure(&cells, repeat, progress)?;
    let med = |v: &[f64]| stats::median(v).unwrap_or(f64::NAN);
    let (null, spin, system) = (med(&times[0]), med(&times[1]), med(&times[2]));
    let calibration_error = ((spin - null) - spin_ns).abs() / spin_ns;
    let spread = stats::relative_spread(&stats::estimate(&times[2])).abs();
    let floor_ns_per_op: BTreeMap<String, f64> = presets
        .iter()
        .zip(&times[3..])
        .map(|(p, t)| (p.name.to_string(), med(t)))
        .collect();
    let _ = system;
    Ok(SelfCheck {
        clock_overhead_ns: clock.overhead_ns(),
        clock_resolution_ns: clock.resolution_ns(),
        floor_ns_per_op,
        calibration_error,
        calibration_spin_ns: spin_ns,
        spread,
    })
}

/// The `selfcheck` subcommand.
pub fn command(args: &SelfcheckArgs) -> Result<u8> {
    check_out_dir(&args.out)?;
    let quiet = args.json;
    let sc = measure_all(args.repeat, &|what| {
        if !quiet {
            eprintln!("selfcheck: {what}");
        }
    })?;
    let env = crate::measure::env::capture();
    let kept = Kept {
        hostname: env.hostname.clone(),
        git_commit: env.git_commit.clone(),
        poolbench_version: env!("CARGO_PKG_VERSION").to_string(),
        measured_at_unix_s: unix_now(),
        selfcheck: sc.clone(),
    };
    let path = args.out.join(FILE);
    std::fs::write(&path, serde_json::to_string_pretty(&kept)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    if args.json {
        println!(
            "{}",
            serde_json::json!({
                "clock_overhead_ns": sc.clock_overhead_ns,
                "clock_resolution_ns": sc.clock_resolution_ns,
                "floor_ns_per_op": sc.floor_ns_per_op,
                "calibration_error": sc.calibration_error,
                "calibration_spin_ns": sc.calibration_spin_ns,
                "spread": sc.spread,
            })
        );
    } else {
        print!("{}", render(&sc, args.repeat));
        println!("kept in {}", path.display());
    }
    Ok(if sc.calibration_error <= 0.10 {
        EXIT_OK
    } else {
        eprintln!(
            "poolbench: selfcheck: calibration error {:.1}% is above 10%: figures on this machine are not to be trusted at that precision",
            sc.calibration_error * 100.0
        );
        EXIT_ERROR
    })
}

/// The figures for a person.
pub fn render(sc: &SelfCheck, repeat: u32) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "clock: {:.1} ns per reading (resolution {:.1} ns)\n",
        sc.clock_overhead_ns, sc.clock_resolution_ns
    ));
    s.push_str(&format!(
        "calibration: spin of {:.0} ns per call measured within {:.1}% (median of {repeat})\n",
        sc.calibration_spin_ns,
        sc.calibration_error * 100.0
    ));
    s.push_str(&format!(
        "spread: {:.1}% (max - min over median, system on pair, {repeat} repeats)\n",
        sc.spread * 100.0
    ));
    s.push_str("floor (null subject, 1 thread), ns per op:\n");
    for (preset, ns) in &sc.floor_ns_per_op {
        s.push_str(&format!("  {preset:<14} {ns:>7.2}\n"));
    }
    s
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The kept figures of `out_dir`, if measured on this machine and build
/// within a day.
pub fn cached(out_dir: &Path) -> Option<SelfCheck> {
    let text = std::fs::read_to_string(out_dir.join(FILE)).ok()?;
    let kept: Kept = serde_json::from_str(&text).ok()?;
    let env = crate::measure::env::capture();
    let fresh = unix_now().saturating_sub(kept.measured_at_unix_s) < FRESH_FOR.as_secs();
    (fresh
        && kept.hostname == env.hostname
        && kept.git_commit == env.git_commit
        && kept.poolbench_version == env!("CARGO_PKG_VERSION"))
    .then_some(kept.selfcheck)
}

/// The run's own spread: the median over its cells of the relative
/// spread of their throughput's interval.
pub fn run_spread(results: &RunResults) -> Option<f64> {
    let spreads: Vec<f64> = results
        .cells
        .iter()
        .filter_map(|c| c.metrics())
        .filter(|m| m.ops_per_sec.n > 1)
        .map(|m| stats::relative_spread(&m.ops_per_sec))
        .collect();
    stats::median(&spreads)
}
