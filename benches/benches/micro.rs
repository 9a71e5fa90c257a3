//! `micro`: single-thread costs of every subject, one call path for all.
//!
//! - `micro/pair/{16,48,128,512,4096}/<subject>`: one `alloc` + `dealloc`
//!   of that many bytes; the 4096-byte pair is above pymalloc's 512-byte
//!   threshold, so our subjects pass it to the system allocator.
//! - `micro/batch/{lifo,fifo}/<subject>`: 1000 allocations of 48 bytes
//!   (a small Python object), then 1000 frees, newest first or oldest
//!   first; an element is one block (one alloc and its free).
//! - `micro/realloc/16-512/<subject>`: a 16-byte block grown by doubling
//!   to 512 bytes (five reallocs, contents kept), then freed; an element is
//!   one realloc.
//! - `micro/churn/16-512/<subject>`: random replacement over 1000 live
//!   blocks of random sizes from 16 to 512 bytes (the `benches` library's
//!   `Churn`); an element is one replacement, a free and an allocation.
//! - `micro/pair-per-call/48/{gil,locked}`: the 48-byte pair with no GIL
//!   span, so `gil` takes and releases the GIL in every call, as it does for
//!   a `#[global_allocator]` program or an `LD_PRELOAD` build; `locked`, a
//!   plain lock per call, is its yardstick.
//!
//! Subjects are called through their `&dyn GlobalAlloc` (see the
//! `benches` library). Except in `pair-per-call`, the `gil` subject runs
//! with the GIL held for the whole sample, as a CPython thread holds it:
//! its single-thread figures are the pymalloc core without any lock.
//! `null` is the harness floor.

use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use std::hint::black_box;
use std::time::Duration;

use benches::{batch, block, realloc_growth, span, subjects, Churn, Order, CHURN_SIZES, GROWTH};
use criterion::measurement::WallTime;
use harness::subjects::Subject;

/// Block sizes of `micro/pair`.
const PAIR_SIZES: [usize; 5] = [16, 48, 128, 512, 4096];
/// Blocks per `micro/batch` iteration.
const BATCH: usize = 1000;
/// Block size of `micro/batch`.
const BATCH_SIZE: usize = 48;

/// Sampling for every micro group: nanosecond-scale routines reach a
/// stable median in a second and a half of measurement; 83 benchmarks fit
/// the full run's budget (see README.md).
fn configure(g: &mut BenchmarkGroup<'_, WallTime>) {
    g.warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(1500))
        .sample_size(50)
        .nresamples(20_000);
}

fn pair(c: &mut Criterion, subjects: &[Box<dyn Subject>]) {
    for size in PAIR_SIZES {
        let layout = block(size).unwrap_or_else(|| unreachable!("sizes are non-zero"));
        let mut g = c.benchmark_group(format!("micro/pair/{size}"));
        configure(&mut g);
        g.throughput(Throughput::Elements(1));
        for s in subjects {
            g.bench_function(s.info().name, |b| {
                let _span = span(s.as_ref());
                b.iter(|| benches::pairs(s.allocator(), layout, 1));
            });
        }
        g.finish();
    }
}

fn batches(c: &mut Criterion, subjects: &[Box<dyn Subject>]) {
    let layout = block(BATCH_SIZE).unwrap_or_else(|| unreachable!("size is non-zero"));
    for order in [Order::Lifo, Order::Fifo] {
        let mut g = c.benchmark_group(format!("micro/batch/{}", order.name()));
        configure(&mut g);
        g.throughput(Throughput::Elements(BATCH as u64));
        for s in subjects {
            g.bench_function(s.info().name, |b| {
                let _span = span(s.as_ref());
                // The vector is allocated once, outside the timed loop.
                let mut blocks = Vec::with_capacity(BATCH);
                b.iter(|| batch(s.allocator(), layout, black_box(&mut blocks), order));
            });
        }
        g.finish();
    }
}

fn realloc(c: &mut Criterion, subjects: &[Box<dyn Subject>]) {
    let mut g = c.benchmark_group(format!(
        "micro/realloc/{}-{}",
        GROWTH[0],
        GROWTH[GROWTH.len() - 1]
    ));
    configure(&mut g);
    g.throughput(Throughput::Elements(GROWTH.len() as u64 - 1));
    for s in subjects {
        g.bench_function(s.info().name, |b| {
            let _span = span(s.as_ref());
            b.iter(|| realloc_growth(s.allocator()));
        });
    }
    g.finish();
}

fn churn(c: &mut Criterion, subjects: &[Box<dyn Subject>]) {
    let mut g = c.benchmark_group(format!("micro/churn/{}-{}", CHURN_SIZES.0, CHURN_SIZES.1));
    configure(&mut g);
    g.throughput(Throughput::Elements(1));
    for s in subjects {
        g.bench_function(s.info().name, |b| {
            let _span = span(s.as_ref());
            // Filled once, outside the timed loop; freed after the sample.
            let mut churn = Churn::new(s.allocator());
            b.iter(|| churn.run(1));
        });
    }
    g.finish();
}

/// Subjects of `micro/pair-per-call`.
const PER_CALL: [&str; 2] = ["gil", "locked"];

fn pair_per_call(c: &mut Criterion, subjects: &[Box<dyn Subject>]) {
    let layout = block(48).unwrap_or_else(|| unreachable!("size is non-zero"));
    let mut g = c.benchmark_group("micro/pair-per-call/48");
    configure(&mut g);
    g.throughput(Throughput::Elements(1));
    for s in subjects
        .iter()
        .filter(|s| PER_CALL.contains(&s.info().name))
    {
        // No span: each call takes the lock (or the GIL) for itself.
        g.bench_function(s.info().name, |b| {
            b.iter(|| benches::pairs(s.allocator(), layout, 1))
        });
    }
    g.finish();
}

fn micro(c: &mut Criterion) {
    let subjects = subjects();
    pair(c, &subjects);
    batches(c, &subjects);
    realloc(c, &subjects);
    churn(c, &subjects);
    pair_per_call(c, &subjects);
}

criterion_group!(benches, micro);
criterion_main!(benches);
