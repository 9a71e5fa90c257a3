//! The results schema round-trips: `RunResults` → JSON → `RunResults` is
//! the identity, for every field (a results file read back by `report` or
//! `compare` must be exactly what was measured, floats included), and a
//! file of another schema version is refused by name.

use harness::report::fixture;
use harness::results::*;
use rand::{Rng, SeedableRng};

/// The fixture run with awkward floats in every figure that carries one.
fn sample(seed: u64) -> RunResults {
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let mut f = || rng.random::<f64>() * 10f64.powi(rng.random_range(-3..9));
    let mut r = fixture::run_results();
    r.clock.ns_per_tick = f();
    r.clock.resolution_ns = f();
    for c in &mut r.cells {
        if let Outcome::Ok(m) = &mut c.outcome {
            m.ops_per_sec.median = f();
            m.ops_per_sec.low = f();
            m.ns_per_op.confidence = f();
            m.above_floor_ns_per_op = Some(Estimate {
                median: f(),
                ..Default::default()
            });
            for run in &mut m.runs {
                run.ops_per_sec = f();
                run.worker_cpu_s = f();
                run.load.steal_fraction = Some(f());
                run.memory.fragmentation.own_ratio = Some(f());
                run.sampling.perturbation = Some(f());
                for l in run.latency.values_mut() {
                    l.mean_ns = f();
                    for p in &mut l.percentiles {
                        p.ns = f();
                    }
                }
            }
        }
    }
    r.floors.push(Floor {
        workload: "w".into(),
        threads: 2,
        sweep: Default::default(),
        ns_per_op: Estimate {
            median: f(),
            low: f(),
            high: f(),
            n: 5,
            confidence: f(),
        },
    });
    r
}

#[test]
fn run_results_round_trip_through_json_exactly() {
    for seed in 0..20 {
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
fn run_results_round_trip_through_a_file_and_other_versions_are_refused() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("poolbench-schema");
    let path = dir.join("r.json");
    let r = sample(7);
    r.save(&path).unwrap();
    assert_eq!(RunResults::load(&path).unwrap(), r);
    let mut old = serde_json::to_value(&r).unwrap();
    old["schema_version"] = 1.into();
    std::fs::write(&path, old.to_string()).unwrap();
    let e = RunResults::load(&path).unwrap_err().to_string();
    assert!(e.contains("schema_version 1 is not supported"), "{e}");
}
