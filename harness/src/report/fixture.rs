//! Synthetic but realistic [`RunResults`] for tests, the fixture report
//! example and report development. Compiled only for tests and with the
//! `fixture` feature, never into the release binary.
//!
//! The figures come from small models (throughput scaling per subject,
//! exponential latency tails on the nines axis, an RSS ramp–plateau–drain
//! curve, an accounting breakdown that sums exactly to `mapped`), not from a
//! real run, so reports and `compare` can be exercised deterministically
//! without running allocators. The shape covers what a real suite
//! produces: our subjects with accounting, references with their own
//! counters, the `null` subject as the floor, two workloads at 1, 2 and 4
//! threads on a 2-core machine (so the oversubscription warning shows),
//! [`REPEATS`] repeats per cell (merged and floored by the same code as a
//! real run), percentiles below the clock's resolution, a workload whose
//! live bytes are too few for a fragmentation ratio (its cells carry the
//! note instead), `gil` wait latencies, one cell run on a busy machine
//! ([`BUSY_KEY`]), a selfcheck, and one failed cell ([`FAILED_KEY`]).

use std::collections::BTreeMap;

use crate::cli::repeats;
use crate::results::{
    Accounting, Cell, CellMetrics, ClassRow, ClockInfo, Environment, Failure, FailureKind,
    Fragmentation, GilCounters, Latency, Load, Memory, OpCounts, Outcome, Percentile, RssSample,
    RunMetrics, RunResults, Sampling, SelfCheck, Verification, SCHEMA_VERSION,
};

/// Subjects in the fixture.
pub const SUBJECTS: &[&str] = &["gil", "tcache", "sharded", "system", "jemalloc", "null"];
/// Workloads in the fixture.
pub const WORKLOADS: &[&str] = &["larson-small", "producer-consumer"];
/// Thread counts in the fixture.
pub const THREADS: &[usize] = &[1, 2, 4];
/// The one failed cell's key.
pub const FAILED_KEY: &str = "producer-consumer/tcache/t4";
/// The cell whose second repeat ran while other processes were busy.
pub const BUSY_KEY: &str = "larson-small/system/t2";
/// Repeats per cell, as `run` and `suite` default to: intervals are the
/// range of the repeats, not 95% intervals.
pub const REPEATS: usize = 3;
/// The clock: overhead subtracted from every sample, and its resolution.
pub const CLOCK_OVERHEAD_NS: f64 = 20.0;
pub const CLOCK_RESOLUTION_NS: f64 = 6.0;
/// Requested live bytes below which there is no fragmentation ratio.
const MIN_LIVE_FOR_RATIO: u64 = 1 << 20;

fn clock() -> ClockInfo {
    ClockInfo {
        source: "tsc".into(),
        ns_per_tick: 0.4167,
        overhead_ns: CLOCK_OVERHEAD_NS,
        resolution_ns: CLOCK_RESOLUTION_NS,
    }
}

const MIB: f64 = 1024.0 * 1024.0;

/// Single-thread throughput (ops/s) and parallel efficiency per subject.
fn throughput_model(subject: &str) -> (f64, f64) {
    match subject {
        "gil" => (28e6, -0.45),
        "tcache" => (45e6, 0.85),
        "sharded" => (40e6, 0.95),
        "system" => (30e6, 0.8),
        "jemalloc" => (50e6, 0.92),
        _ => (400e6, 0.97),
    }
}

fn is_ours(subject: &str) -> bool {
    matches!(subject, "gil" | "locked" | "tcache" | "sharded")
}

/// A percentile as the harness reports it: below the clock's resolution
/// when it is that close to the subtracted overhead.
fn point(percentile: f64, ns: f64) -> Percentile {
    Percentile {
        percentile,
        ns,
        below_resolution: ns <= CLOCK_RESOLUTION_NS,
    }
}

/// HdrHistogram-like percentile points: halving the remaining tail
/// four steps at a time, up to 99.999%, then the maximum.
fn distribution(base_ns: f64, slope: f64) -> (Vec<Percentile>, Vec<Percentile>, f64) {
    let at = |p: f64| {
        let x = if p >= 100.0 {
            5.3
        } else {
            -(1.0 - p / 100.0).log10()
        };
        // Quantise to whole ns as a histogram would.
        (base_ns * (slope * x).exp()).round()
    };
    let mut dist = Vec::new();
    let mut i = 0;
    loop {
        let p = 100.0 * (1.0 - 0.5f64.powf(i as f64 / 4.0));
        if p > 99.999 {
            break;
        }
        dist.push(point(p, at(p)));
        i += 1;
    }
    dist.push(point(100.0, at(100.0)));
    let fixed = [50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 99.99, 100.0]
        .iter()
        .map(|&p| point(p, at(p)))
        .collect();
    (fixed, dist, at(100.0))
}

fn latency(count: u64, base_ns: f64, slope: f64) -> Latency {
    let (percentiles, distribution, max) = distribution(base_ns, slope);
    Latency {
        count,
        min_ns: (base_ns * 0.6).round(),
        max_ns: max,
        mean_ns: base_ns * 1.3,
        stdev_ns: base_ns * 0.9,
        percentiles,
        distribution,
        hdr_v2: None,
    }
}

fn accounting(requested: u64, subject: &str, at_end: bool) -> Accounting {
    let r = requested as f64;
    let spare = match subject {
        "sharded" => 0.25,
        "tcache" => 0.12,
        _ => 0.06,
    };
    let (allocated, available, empty, headers, quant) = if at_end {
        (0.0, 0.0, r * 0.2, 0.0, 0.0)
    } else {
        (r * 1.06, r * spare, r * 0.05, r * 0.004, r * 0.01)
    };
    let parts = [allocated, available, empty, headers, quant].map(|v| v.round() as u64);
    let subtotal: u64 = parts.iter().sum();
    let alignment = (subtotal as f64 * 0.015).round() as u64;
    let mapped = subtotal + alignment;
    let mut extra = BTreeMap::new();
    if subject == "sharded" {
        extra.insert("live_heaps".to_string(), if at_end { 0 } else { 4 });
        extra.insert("abandoned_heaps".to_string(), if at_end { 4 } else { 0 });
        extra.insert("remote_frees_pushed".to_string(), 1200);
    }
    if subject == "tcache" && !at_end {
        extra.insert("cached_blocks".to_string(), 512);
    }
    Accounting {
        requested_live: if at_end { 0 } else { requested },
        allocated_blocks: parts[0],
        available_blocks: parts[1],
        empty_pools: parts[2],
        pool_headers: parts[3],
        quantization: parts[4],
        arena_alignment: alignment,
        mapped,
        raw_live_bytes: 0,
        arenas_current: mapped.div_ceil(1 << 20),
        arenas_highwater: mapped.div_ceil(1 << 20),
        arenas_allocated_total: mapped.div_ceil(1 << 20) + 2,
        arenas_reclaimed: 2,
        pools_used: 40,
        pools_full: 300,
        pools_empty: 12,
        extra,
        classes: vec![
            ClassRow {
                size: 32,
                pools: 120,
                full_pools: 110,
                blocks_in_use: 60_000,
                available_blocks: 1_200,
            },
            ClassRow {
                size: 64,
                pools: 220,
                full_pools: 190,
                blocks_in_use: 52_000,
                available_blocks: 3_100,
            },
        ],
    }
}

/// Relative deviation of each repeat from the cell's median rate, before
/// scaling by the subject's noise (a fixed pattern: deterministic).
const REPEAT_PATTERN: [f64; REPEATS] = [-1.0, 0.0, 0.5];

/// One repeat of a cell: `k` is the repeat's index.
fn run(subject: &str, workload: &str, threads: usize, k: usize) -> RunMetrics {
    let pc = workload == "producer-consumer";
    let wl_factor = if pc { 0.6 } else { 1.0 };
    let (single, eff) = throughput_model(subject);
    let t = threads as f64;
    let noise = if subject == "gil" { 0.06 } else { 0.02 };
    let rate = single * t.powf(eff) * wl_factor * (1.0 + noise * REPEAT_PATTERN[k]);
    let ops_per_thread: u64 = 2_000_000;
    let ops = ops_per_thread * threads as u64;
    let duration_s = ops as f64 / rate;

    let contended = subject == "gil" || subject == "system";
    let base_alloc = match subject {
        "gil" => 18.0 * t.powf(1.2),
        "tcache" => 12.0,
        "sharded" => 14.0,
        "system" => 22.0 * t.powf(0.3),
        "jemalloc" => 11.0,
        // Below the clock's resolution up to about p90.
        _ => 2.0,
    };
    let slope = if contended {
        0.55 + 0.2 * t.log2()
    } else {
        0.45
    };
    let sampled = ops / 16;
    let mut lat = BTreeMap::new();
    lat.insert("alloc".to_string(), latency(sampled / 2, base_alloc, slope));
    lat.insert(
        "free_local".to_string(),
        latency(sampled / 3, base_alloc * 0.8, slope),
    );
    if pc {
        lat.insert(
            "free_remote".to_string(),
            latency(sampled / 6, base_alloc * 1.6, slope + 0.1),
        );
    }
    let mut gil = None;
    if subject == "gil" {
        if threads > 1 {
            // Waits approach the 5 ms switch interval in the tail.
            lat.insert(
                "gil_wait".to_string(),
                latency(sampled / 10, 400.0 * t, (5e6f64 / (400.0 * t)).ln() / 4.0),
            );
        }
        gil = Some(GilCounters {
            acquisitions: ops / 50,
            contended: if threads > 1 { ops / 50 / 3 } else { 0 },
            switches: if threads > 1 {
                (duration_s * 200.0) as u64
            } else {
                0
            },
            switch_interval_us: 5000,
        });
    }

    // Producer-consumer keeps few bytes live: too few for a ratio below
    // 4 threads. The null subject's blocks are bump-allocated.
    let requested_live = if pc {
        (300.0 * 1024.0 * t) as u64
    } else {
        (16.0 * MIB * t) as u64
    };
    let baseline = (4.0 * MIB) as u64;
    let (frag, after_drain) = match subject {
        "gil" => (1.25, 0.2),
        "tcache" => (1.33, 0.25),
        "sharded" => (1.45, 0.3),
        "system" => (1.32, 0.6),
        "jemalloc" => (1.12, 0.1),
        _ => (1.6, 1.0),
    };
    let wobble = 1.0 + 0.01 * REPEAT_PATTERN[k];
    let (accounting_at_peak, accounting_at_end, held) = if is_ours(subject) {
        let peak = accounting(requested_live, subject, false);
        let end = accounting(requested_live, subject, true);
        let held = peak.mapped as f64;
        (Some(peak), Some(end), held)
    } else {
        (None, None, requested_live as f64 * frag)
    };
    let above_baseline = held * 1.02 * wobble;
    let rss_at_end = baseline + above_baseline as u64;
    let peak_rss = baseline + (above_baseline * 1.03) as u64;
    let after = baseline + (held * after_drain) as u64;
    let (ratio, note) = if requested_live < MIN_LIVE_FOR_RATIO {
        (
            None,
            Some(format!(
                "{requested_live} bytes requested live at the end of the measured phase, below \
                 {MIN_LIVE_FOR_RATIO}: the ratio would measure fixed costs, not packing"
            )),
        )
    } else {
        (Some(above_baseline / requested_live as f64), None)
    };
    let samples = 60;
    let total_s = duration_s * 1.15;
    let rss_timeline = (0..=samples)
        .map(|i| {
            let x = i as f64 / samples as f64;
            let level = if x < 0.3 {
                x / 0.3
            } else if x < 0.88 {
                // A small deterministic ripple: blocks come and go.
                0.97 + 0.03 * (x * 40.0).sin().abs()
            } else {
                0.0
            };
            let rss = if x < 0.88 {
                baseline as f64 + level * (peak_rss - baseline) as f64
            } else {
                let d = ((x - 0.88) / 0.12).min(1.0);
                peak_rss as f64 + d * (after as f64 - peak_rss as f64)
            };
            RssSample {
                t_s: x * total_s,
                rss_bytes: rss.round() as u64,
                live_bytes: (level * requested_live as f64) as u64,
            }
        })
        .collect();
    let allocs = ops / 2;
    let mut own_counters = BTreeMap::new();
    let mut own = |k: &str, v: f64| {
        own_counters.insert(k.to_string(), v as u64);
    };
    match subject {
        "jemalloc" => {
            own("allocated", requested_live as f64 * 1.02);
            own("active", requested_live as f64 * 1.08);
            own("metadata", 2.0 * MIB);
            own("resident", held);
            own("mapped", held + 2.0 * MIB);
            own("retained", MIB);
        }
        "system" => {
            own("arena", held);
            own("hblkhd", 0.0);
            own("uordblks", requested_live as f64 * 1.05);
            own("fordblks", held - requested_live as f64 * 1.05);
        }
        "null" => {
            own("bumped", (allocs * 48) as f64);
            own("capacity", 64.0 * 1024.0 * MIB);
        }
        _ => {}
    }
    let busy = format!("{workload}/{subject}/t{threads}") == BUSY_KEY && k == 1;
    RunMetrics {
        ops,
        ops_per_thread,
        duration_s,
        ops_per_sec: rate,
        cpu_user_s: duration_s * t.min(2.0) * 0.97,
        cpu_sys_s: duration_s * 0.01,
        worker_cpu_s: duration_s * t.min(2.0) * 0.95,
        probe_ops_per_sec: rate * 0.98,
        warmup_ops: ops_per_thread / 10,
        cycle_ops: 262_144,
        counts: OpCounts {
            allocs,
            frees_local: if pc { allocs / 2 } else { allocs },
            frees_remote: if pc { allocs / 2 } else { 0 },
            reallocs: 0,
            bytes_requested: allocs * 48,
        },
        latency: lat,
        sampling: Sampling {
            one_in: 16,
            ops_per_thread: ops_per_thread / 4,
            perturbation: Some(if subject == "gil" && threads > 1 {
                0.18
            } else {
                0.04 + 0.01 * REPEAT_PATTERN[k]
            }),
        },
        memory: Memory {
            rss_timeline,
            rss_baseline_bytes: baseline,
            peak_rss_bytes: peak_rss,
            rss_after_drain_bytes: after,
            requested_live_bytes: requested_live,
            rss_at_end_bytes: rss_at_end,
            fragmentation: Fragmentation {
                ratio,
                note,
                own_ratio: accounting_at_peak
                    .as_ref()
                    .map(|a| a.mapped as f64 / requested_live.max(1) as f64),
            },
            accounting_at_peak,
            accounting_at_end,
            own_counters,
        },
        verification: Verification {
            enabled: true,
            ops_per_thread: 262_144,
            blocks_checked: allocs,
        },
        gil,
        load: Load {
            loadavg_start: Some(if busy { 2.6 } else { 0.4 }),
            loadavg_end: Some(if busy { 3.1 } else { 0.5 }),
            steal_fraction: Some(0.0),
            others_busy_fraction: Some(if busy { 0.6 } else { 0.02 }),
            pinned: false,
        },
        drained_blocks: 1000,
        clock: clock(),
        subject_params: BTreeMap::new(),
        unit: None,
        checksum: None,
        measured_span_s: None,
        program: None,
    }
}

fn metrics(subject: &str, workload: &str, threads: usize) -> CellMetrics {
    let runs = (0..REPEATS)
        .map(|k| run(subject, workload, threads, k))
        .collect::<Vec<_>>();
    // Every repeat's latencies are the same model: the merged
    // distribution is any one of them (with every repeat's samples).
    let latency: BTreeMap<String, Latency> = runs[0]
        .latency
        .iter()
        .map(|(k, l)| {
            let mut l = l.clone();
            l.count *= REPEATS as u64;
            (k.clone(), l)
        })
        .collect();
    let mut m = repeats::merge(runs, threads);
    m.latency = latency;
    m
}

/// The fixture run: 2 workloads × 6 subjects × 3 thread counts, one failed,
/// with floors attached as a real run attaches them.
pub fn run_results() -> RunResults {
    let mut cells = Vec::new();
    for wl in WORKLOADS {
        for &threads in THREADS {
            for subject in SUBJECTS {
                let cell = Cell {
                    subject: subject.to_string(),
                    kind: Default::default(),
                    workload: wl.to_string(),
                    threads,
                    sweep: BTreeMap::new(),
                    workload_params: serde_json::json!({
                        "name": wl,
                        "threads": threads,
                        "ops_per_thread": 2_000_000,
                        "geometry": "modern",
                    }),
                    subject_env: BTreeMap::new(),
                    outcome: Outcome::Ok(Box::new(metrics(subject, wl, threads))),
                };
                cells.push(cell);
            }
        }
    }
    for c in cells.iter_mut() {
        if c.key() == FAILED_KEY {
            c.outcome = Outcome::Failed(Failure {
                kind: FailureKind::Verification,
                reason: "block tag mismatch in slot 117 after a remote free (expected 0x5a5a0075, found 0x00000000)".into(),
                exit_code: Some(3),
                signal: None,
                stderr_tail: "verify: thread 2 slot 117: tag mismatch\n".into(),
            });
        }
    }
    let mut crate_versions = BTreeMap::new();
    crate_versions.insert("mimalloc".to_string(), "0.1.48".to_string());
    crate_versions.insert("tikv-jemallocator".to_string(), "0.6.1".to_string());
    crate_versions.insert("snmalloc-rs".to_string(), "0.7.2".to_string());
    let floor_ns = |wl: &str| {
        let (single, _) = throughput_model("null");
        let f = if wl == "producer-consumer" { 0.6 } else { 1.0 };
        1e9 / (single * f)
    };
    let mut results = RunResults {
        schema_version: SCHEMA_VERSION,
        poolbench_version: env!("CARGO_PKG_VERSION").to_string(),
        started_at: "2026-11-21T12:00:00Z".into(),
        finished_at: "2026-11-21T12:03:41Z".into(),
        command: [
            "poolbench",
            "suite",
            "--subjects",
            "gil,tcache,sharded,system,jemalloc,null",
            "--threads",
            "1,2,4",
            "--repeat",
            "3",
        ]
        .map(String::from)
        .to_vec(),
        environment: Environment {
            cpu_model: "Fixture CPU @ 2.0GHz (synthetic results)".into(),
            logical_cores: 2,
            kernel: "6.1.0-fixture".into(),
            os: "Debian GNU/Linux 12 (bookworm)".into(),
            hostname: "fixture-host".into(),
            rustc: "rustc 1.83.0 (90b35a623 2024-11-26)".into(),
            profile: "release".into(),
            git_commit: Some("0123456789abcdef0123456789abcdef01234567".into()),
            crate_versions,
            ld_preload: None,
            malloc_library: Some("/lib/x86_64-linux-gnu/libc.so.6".into()),
            pinned: false,
            load_at_start: Some(0.4),
            selfcheck: Some(SelfCheck {
                clock_overhead_ns: CLOCK_OVERHEAD_NS,
                clock_resolution_ns: CLOCK_RESOLUTION_NS,
                floor_ns_per_op: WORKLOADS
                    .iter()
                    .map(|w| (w.to_string(), floor_ns(w)))
                    .collect(),
                calibration_error: 0.031,
                calibration_spin_ns: 50.0,
                spread: 0.08,
            }),
        },
        clock: clock(),
        repeats: REPEATS as u32,
        floors: Vec::new(),
        cells,
        partial: false,
        notes: Vec::new(),
    };
    repeats::attach_floors(&mut results);
    results
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounting_identity_holds_in_the_fixture() {
        let r = run_results();
        let mut checked = 0;
        for c in &r.cells {
            let Some(m) = c.metrics().and_then(|m| m.representative()) else {
                continue;
            };
            for a in [&m.memory.accounting_at_peak, &m.memory.accounting_at_end]
                .into_iter()
                .flatten()
            {
                let sum = a.allocated_blocks
                    + a.available_blocks
                    + a.empty_pools
                    + a.pool_headers
                    + a.quantization
                    + a.arena_alignment;
                assert_eq!(sum, a.mapped, "{}", c.key());
                checked += 1;
            }
        }
        assert_eq!(
            checked,
            3 * 2 * 3 * 2 - 2,
            "our subjects × workloads × threads × 2, less the failed cell"
        );
    }

    #[test]
    fn exactly_one_cell_failed() {
        let r = run_results();
        let failed: Vec<String> = r
            .cells
            .iter()
            .filter(|c| c.metrics().is_none())
            .map(|c| c.key())
            .collect();
        assert_eq!(failed, [FAILED_KEY]);
    }
}
