//! Synthetic but realistic [`RunResults`] for tests, the browser check and
//! report development.
//!
//! The figures come from small models (throughput scaling per subject,
//! exponential latency tails on the nines axis, an RSS ramp–plateau–drain
//! curve, an accounting breakdown that sums exactly to `mapped`), not from a
//! real run, so reports and `compare` can be exercised deterministically
//! without running allocators. The shape covers what a real suite
//! produces: our subjects with accounting, references without, the `null`
//! subject, two workloads at 1, 2 and 4 threads on a 2-core machine (so the
//! oversubscription warning shows), repeats, `gil` wait latencies, and one
//! failed cell.

use std::collections::BTreeMap;

use crate::results::{
    Accounting, Cell, CellMetrics, ClassRow, ClockInfo, Environment, Failure, FailureKind,
    Fragmentation, GilCounters, Latency, Load, Memory, OpCounts, Outcome, Percentile, RssSample,
    RunMetrics, RunResults, Sampling, Verification, SCHEMA_VERSION,
};
use crate::stats;

/// Subjects in the fixture.
pub const SUBJECTS: &[&str] = &["gil", "tcache", "sharded", "system", "jemalloc", "null"];
/// Workloads in the fixture.
pub const WORKLOADS: &[&str] = &["larson-small", "producer-consumer"];
/// Thread counts in the fixture.
pub const THREADS: &[usize] = &[1, 2, 4];
/// The one failed cell's key.
pub const FAILED_KEY: &str = "producer-consumer/tcache/t4";

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
        (base_ns * (slope * x).exp()).round().max(1.0)
    };
    let mut dist = Vec::new();
    let mut i = 0;
    loop {
        let p = 100.0 * (1.0 - 0.5f64.powf(i as f64 / 4.0));
        if p > 99.999 {
            break;
        }
        dist.push(Percentile {
            percentile: p,
            ns: at(p),
            below_resolution: false,
        });
        i += 1;
    }
    dist.push(Percentile {
        percentile: 100.0,
        ns: at(100.0),
        below_resolution: false,
    });
    let fixed = [50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 99.99, 100.0]
        .iter()
        .map(|&p| Percentile {
            percentile: p,
            ns: at(p),
            below_resolution: base_ns < 5.0 && p <= 50.0,
        })
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

fn metrics(subject: &str, workload: &str, threads: usize) -> CellMetrics {
    let wl_factor = if workload == "producer-consumer" {
        0.6
    } else {
        1.0
    };
    let (single, eff) = throughput_model(subject);
    let speedup = (threads as f64).powf(eff);
    let median = single * speedup * wl_factor;
    let spread = 0.02;
    let repeats = [
        median * (1.0 - spread),
        median,
        median * (1.0 + spread * 0.5),
    ];
    let ops_per_thread: u64 = 2_000_000;
    let ops = ops_per_thread * threads as u64;
    let duration_s = ops as f64 / median;
    let t = threads as f64;

    let contended = subject == "gil" || subject == "system";
    let base_alloc = match subject {
        "gil" => 18.0 * t.powf(1.2),
        "tcache" => 12.0,
        "sharded" => 14.0,
        "system" => 22.0 * t.powf(0.3),
        "jemalloc" => 11.0,
        _ => 3.0,
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
    if workload == "producer-consumer" {
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

    // The null subject hands out no memory.
    let requested_peak = if subject == "null" {
        0
    } else {
        (16.0 * MIB * t * wl_factor) as u64
    };
    let baseline = (4.0 * MIB) as u64;
    let (frag, after_drain) = match subject {
        "gil" => (1.25, 0.2),
        "tcache" => (1.33, 0.25),
        "sharded" => (1.45, 0.3),
        "system" => (1.32, 0.6),
        "jemalloc" => (1.12, 0.1),
        _ => (0.0, 0.0),
    };
    let (accounting_at_peak, accounting_at_end, fragmentation, held) = if is_ours(subject) {
        let peak = accounting(requested_peak, subject, false);
        let end = accounting(requested_peak, subject, true);
        let f = peak.mapped as f64 / requested_peak as f64;
        let held = peak.mapped as f64;
        (Some(peak), Some(end), Some(f), held)
    } else if subject == "null" {
        (None, None, None, 0.0)
    } else {
        let held = requested_peak as f64 * frag;
        (None, None, Some(frag), held)
    };
    let peak_rss = baseline + held as u64 + (MIB * 0.5) as u64;
    let after = baseline + (requested_peak as f64 * after_drain) as u64;
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
                live_bytes: (level * requested_peak as f64) as u64,
            }
        })
        .collect();
    let mut reference_stats = BTreeMap::new();
    if subject == "jemalloc" {
        reference_stats.insert("allocated".to_string(), requested_peak);
        reference_stats.insert("resident".to_string(), held as u64);
        reference_stats.insert("mapped".to_string(), held as u64 + (2.0 * MIB) as u64);
    }
    let allocs = ops / 2;
    let run = RunMetrics {
        ops,
        ops_per_thread,
        duration_s,
        ops_per_sec: median,
        cpu_user_s: duration_s * t.min(2.0) * 0.97,
        cpu_sys_s: duration_s * 0.01,
        worker_cpu_s: duration_s * t.min(2.0) * 0.95,
        probe_ops_per_sec: median * 0.98,
        warmup_ops: ops_per_thread / 10,
        cycle_ops: 262_144,
        counts: OpCounts {
            allocs,
            frees_local: if workload == "producer-consumer" {
                allocs / 2
            } else {
                allocs
            },
            frees_remote: if workload == "producer-consumer" {
                allocs / 2
            } else {
                0
            },
            reallocs: 0,
            bytes_requested: allocs * 48,
        },
        latency: lat.clone(),
        sampling: Sampling {
            one_in: 16,
            ops_per_thread: ops_per_thread / 4,
            perturbation: Some(0.12),
        },
        memory: Memory {
            rss_timeline,
            rss_baseline_bytes: baseline,
            peak_rss_bytes: peak_rss,
            rss_after_drain_bytes: after,
            requested_live_bytes: requested_peak,
            rss_at_end_bytes: peak_rss,
            fragmentation: Fragmentation {
                ratio: fragmentation,
                note: fragmentation
                    .is_none()
                    .then(|| "no bytes requested live".to_string()),
                own_ratio: accounting_at_peak
                    .as_ref()
                    .map(|a| a.mapped as f64 / requested_peak.max(1) as f64),
            },
            accounting_at_peak,
            accounting_at_end,
            own_counters: reference_stats,
        },
        verification: Verification {
            enabled: true,
            ops_per_thread: 262_144,
            blocks_checked: allocs,
        },
        gil,
        load: Load {
            loadavg_start: Some(0.4),
            loadavg_end: Some(1.1),
            steal_fraction: Some(0.0),
            others_busy_fraction: Some(0.02),
            pinned: false,
        },
        drained_blocks: 1000,
        clock: ClockInfo {
            source: "tsc".into(),
            ns_per_tick: 0.4167,
            overhead_ns: 9.0,
            resolution_ns: 2.0,
        },
        subject_params: BTreeMap::new(),
        unit: None,
        checksum: None,
        measured_span_s: None,
    };
    let runs: Vec<RunMetrics> = repeats
        .iter()
        .map(|&rate| RunMetrics {
            ops_per_sec: rate,
            duration_s: ops as f64 / rate,
            ..run.clone()
        })
        .collect();
    let est =
        |f: &dyn Fn(&RunMetrics) -> f64| stats::estimate(&runs.iter().map(f).collect::<Vec<_>>());
    CellMetrics {
        ops_per_sec: est(&|r| r.ops_per_sec),
        ns_per_op: est(&|r| t * 1e9 / r.ops_per_sec),
        ops_per_cpu_sec: est(&|r| r.ops as f64 / r.worker_cpu_s),
        above_floor_ns_per_op: None,
        below_floor: false,
        peak_rss_bytes: est(&|r| r.memory.peak_rss_bytes as f64),
        fragmentation: fragmentation.map(|f| stats::estimate(&[f * 0.99, f, f * 1.01])),
        latency: lat,
        subject_params: BTreeMap::new(),
        runs,
    }
}

/// The fixture run: 2 workloads × 6 subjects × 3 thread counts, one failed.
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
    RunResults {
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
            "--repeats",
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
            ..Default::default()
        },
        clock: ClockInfo {
            source: "tsc".into(),
            ns_per_tick: 0.4167,
            overhead_ns: 9.0,
            resolution_ns: 2.0,
        },
        repeats: 3,
        floors: Vec::new(),
        cells,
        partial: false,
    }
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
