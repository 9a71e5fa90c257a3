//! The results schema round-trips: `RunResults` → JSON → `RunResults` is
//! the identity, for every field (a results file read back by `report` or
//! `compare` must be exactly what was measured, floats included).

use std::collections::BTreeMap;

use harness::results::*;
use rand::{Rng, SeedableRng};

fn latency(rng: &mut rand::rngs::SmallRng) -> Latency {
    let mut f = || rng.random::<f64>() * 10f64.powi(rng.random_range(-3..9));
    Latency {
        count: 123_457,
        min_ns: f(),
        max_ns: f(),
        mean_ns: f(),
        stdev_ns: f(),
        percentiles: [50.0, 99.0, 99.99]
            .iter()
            .map(|&p| Percentile {
                percentile: p,
                ns: f(),
            })
            .collect(),
        distribution: (0..50)
            .map(|i| Percentile {
                percentile: 100.0 * (1.0 - 0.5f64.powi(i)),
                ns: f(),
            })
            .collect(),
        hdr_v2: Some("HISTFAAAAB54nJNpmSzMwMDAyAABzFCaEUoDAA".into()),
    }
}

fn sample(seed: u64) -> RunResults {
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let mut m = CellMetrics {
        ops: 4_000_000,
        duration_s: rng.random(),
        ops_per_sec: rng.random::<f64>() * 1e8,
        ops_per_sec_repeats: (0..3).map(|_| rng.random::<f64>() * 1e8).collect(),
        warmup_ops: 1000,
        counts: OpCounts {
            allocs: 2,
            frees_local: 1,
            frees_remote: 1,
            reallocs: 3,
            bytes_requested: 4096,
        },
        sampling: Sampling {
            one_in: 16,
            overhead: Some(rng.random()),
            requested_one_in: 1,
            overhead_at_requested: Some(rng.random()),
        },
        verification: Verification {
            enabled: true,
            blocks_checked: 99,
        },
        gil: Some(GilCounters {
            acquisitions: 10,
            contended: 3,
            switches: 2,
            switch_interval_us: 5000,
        }),
        ..Default::default()
    };
    for k in ["alloc", "free_local", "free_remote", "realloc", "gil_wait"] {
        m.latency.insert(k.into(), latency(&mut rng));
    }
    m.memory = Memory {
        rss_timeline: (0..20)
            .map(|i| RssSample {
                t_s: i as f64 * rng.random::<f64>(),
                rss_bytes: 1 << 20,
            })
            .collect(),
        rss_baseline_bytes: 1,
        peak_rss_bytes: 2,
        rss_after_drain_bytes: 3,
        requested_peak_bytes: 4,
        fragmentation: Some(1.0 + rng.random::<f64>()),
        accounting_at_peak: Some(Accounting {
            requested_live: 5,
            mapped: 262_144,
            extra: BTreeMap::from([("cached_blocks".into(), 7)]),
            classes: vec![ClassRow {
                size: 48,
                pools: 1,
                full_pools: 0,
                blocks_in_use: 3,
                available_blocks: 80,
            }],
            ..Default::default()
        }),
        accounting_at_end: Some(Accounting::default()),
        reference_stats: BTreeMap::from([("allocated".into(), 12)]),
    };
    let cell = |subject: &str, outcome| Cell {
        subject: subject.into(),
        workload: "larson".into(),
        threads: 2,
        sweep: BTreeMap::from([("size".into(), "64".into())]),
        workload_params: serde_json::json!({"name": "larson", "threads": 2, "ratio": 0.1}),
        outcome,
    };
    RunResults {
        schema_version: SCHEMA_VERSION,
        poolbench_version: "0.1.0".into(),
        started_at: "2026-11-21T16:44:26Z".into(),
        finished_at: "2026-11-21T16:45:01Z".into(),
        command: vec!["poolbench".into(), "suite".into()],
        environment: Environment {
            cpu_model: "x".into(),
            logical_cores: 2,
            git_commit: Some("abc".into()),
            crate_versions: BTreeMap::from([("mimalloc".into(), "0.1.52".into())]),
            ..Default::default()
        },
        clock: ClockInfo {
            source: "tsc".into(),
            ns_per_tick: rng.random(),
            overhead_ns: rng.random::<f64>() * 30.0,
        },
        cells: vec![
            cell("sharded", Outcome::Ok(Box::new(m))),
            cell(
                "gil",
                Outcome::Failed(Failure {
                    kind: FailureKind::Signal,
                    reason: "killed by signal 11 (SIGSEGV)".into(),
                    exit_code: None,
                    signal: Some(11),
                    stderr_tail: "line 1\nline \"2\"".into(),
                }),
            ),
        ],
    }
}

#[test]
fn run_results_round_trip_through_json_exactly() {
    for seed in 0..200 {
        let r = sample(seed);
        let text = serde_json::to_string_pretty(&r).unwrap();
        let back: RunResults = serde_json::from_str(&text).unwrap();
        // Compared whole; the Debug dump of a mismatch is too large to help.
        assert!(
            back == r,
            "seed {seed}: the JSON round trip changed the results"
        );
    }
}

#[test]
fn run_results_round_trip_through_a_file() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("poolbench-schema");
    let path = dir.join("r.json");
    let r = sample(7);
    r.save(&path).unwrap();
    assert_eq!(RunResults::load(&path).unwrap(), r);
}
