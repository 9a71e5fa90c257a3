//! `workloads/{larson,xmalloc,python}/<subject>`: three of the harness's
//! presets run in-process through `harness::measure::run_cell` (the code
//! `poolbench` runs in each cell's child process), scaled down: 2 threads,
//! [`OPS_PER_THREAD`] measured operations per thread after
//! [`WARMUP_OPS`] unmeasured ones, no minimum time, no latency or verify
//! pass, everything else as the preset defines it (sizes, lifetimes,
//! remote frees, rounds).
//!
//! One iteration is one cell. The routine returns the driver's own
//! measured-phase duration (`iter_custom`), not the cell's wall time: a
//! cell also spawns threads, fills slot tables, warms up and frees what is
//! left at the end (drain), which is harness work, not the workload's
//! steady state. So criterion's elements/s is the same ops/s figure
//! `poolbench run` reports for the cell, and the two can be compared.
//!
//! In-process cells share one address space, so unlike `poolbench`'s
//! child processes, a subject's memory state carries over from one cell to
//! the next (as it would in a long-running program).

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use harness::measure::clock::Clock;
use harness::measure::{run_cell, Options};
use harness::results::RunMetrics;
use harness::spec::workload::{Checked, Workload};
use harness::subjects::Subject;

use benches::subjects;

const PRESETS: [&str; 3] = ["larson", "xmalloc", "python"];
const THREADS: usize = 2;
/// Measured operations per thread: a cell of a few milliseconds on the
/// slowest subject, so 10 samples fit the group's measurement time.
const OPS_PER_THREAD: u64 = 40_000;
const WARMUP_OPS: u64 = 2_000;

/// The preset `name` at the benches' fixed parameters.
fn workload(name: &str) -> Checked {
    let preset = harness::spec::preset::get(name).unwrap_or_else(|e| panic!("{e}"));
    Workload {
        threads: THREADS,
        ops_per_thread: Some(OPS_PER_THREAD),
        duration_ms: None,
        min_time_ms: 0,
        warmup_ops: WARMUP_OPS,
        latency_sample_one_in: 0,
        verify: false,
        ..preset
    }
    .check()
    .unwrap_or_else(|e| panic!("{e}"))
}

/// Runs one cell; a cell that fails (allocation failure) fails the bench
/// with the driver's report.
fn cell(s: &dyn Subject, w: &Checked, clock: Clock) -> RunMetrics {
    let opts = Options {
        clock,
        stress: false,
        pin: false,
    };
    run_cell(s, w, &opts)
        .unwrap_or_else(|e| panic!("cell {}/{} failed: {e}", w.name, s.info().name))
}

fn workloads(c: &mut Criterion) {
    let subjects = subjects();
    // Calibrated once: `run_cell` would spend 30 ms calibrating per cell.
    let clock = Clock::calibrate();
    for name in PRESETS {
        let w = workload(name);
        let mut g = c.benchmark_group(format!("workloads/{name}"));
        g.sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3))
            .sample_size(10)
            .nresamples(20_000);
        for s in &subjects {
            // A first cell, unmeasured, gives the operation count the
            // driver measures for this workload (the same on every run:
            // plans are deterministic) and checks the subject passes.
            let ops = cell(s.as_ref(), &w, clock).ops;
            g.throughput(Throughput::Elements(ops));
            g.bench_function(s.info().name, |b| {
                b.iter_custom(|iters| {
                    (0..iters)
                        .map(|_| Duration::from_secs_f64(cell(s.as_ref(), &w, clock).duration_s))
                        .sum()
                });
            });
        }
        g.finish();
    }
}

criterion_group!(benches, workloads);
criterion_main!(benches);
