//! `contention/{1,2,4}-threads/<subject>`: that many threads doing 48-byte
//! alloc+free pairs at once on one subject, to show how each concurrency
//! strategy scales: `gil` and `locked` serialise every thread on one lock
//! (their time per pair grows with threads), `sharded` and the references
//! keep per-thread state (flat on distinct cores).
//!
//! Each sample starts its threads once, releases them together with a
//! barrier, and returns the wall time from the release to the last
//! thread's end (`iter_custom`); an iteration is one pair *per thread*, so
//! the throughput criterion reports (elements/s) is pairs per second over
//! all threads, and a flat time per iteration means perfect scaling.
//!
//! This machine has 2 cores: 4 threads oversubscribe it, so the 4-thread
//! figures include the scheduler time-slicing threads (wall time at best
//! twice the 2-thread time per iteration), not just allocator contention.
//! `gil` threads hold the GIL for their whole span and hand it over when a
//! waiter has waited a switch interval (5 ms): its multi-thread figures
//! include those hand-offs and show at best one thread's throughput.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};

use benches::{block, subjects, threaded_pairs};

const THREADS: [usize; 3] = [1, 2, 4];
const SIZE: usize = 48;

fn contention(c: &mut Criterion) {
    let subjects = subjects();
    let layout = block(SIZE).unwrap_or_else(|| unreachable!("size is non-zero"));
    for threads in THREADS {
        let plural = if threads == 1 { "thread" } else { "threads" };
        let mut g = c.benchmark_group(format!("contention/{threads}-{plural}"));
        // Samples of milliseconds (threads are started per sample): flat
        // sampling, fewer and longer samples than the micro group.
        g.sampling_mode(SamplingMode::Flat)
            .warm_up_time(Duration::from_millis(500))
            .measurement_time(Duration::from_secs(3))
            .sample_size(20)
            .nresamples(20_000)
            .throughput(Throughput::Elements(threads as u64));
        for s in &subjects {
            g.bench_function(s.info().name, |b| {
                b.iter_custom(|iters| threaded_pairs(s.as_ref(), threads, iters, layout));
            });
        }
        g.finish();
    }
}

criterion_group!(benches, contention);
criterion_main!(benches);
