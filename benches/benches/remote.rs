//! `remote/producer-consumer/<subject>`: one thread allocates 48-byte
//! blocks and hands them, 256 at a time over a bounded channel, to a
//! second thread that frees every one: all frees are remote, the case
//! `sharded`'s batched remote frees (outboxes posted to the owner's
//! inbound stack, like snmalloc's message queues; mimalloc's per-page
//! remote-free lists) exist for. An element is one block, allocated on one
//! thread and freed on the other; the time is the wall time from both
//! threads' release to the consumer's last free (`iter_custom`), channel
//! traffic included, so compare subjects with each other rather than with
//! the micro figures. `gil` releases the GIL around every channel call.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};

use benches::{block, producer_consumer, subjects};

const SIZE: usize = 48;

fn remote(c: &mut Criterion) {
    let subjects = subjects();
    let layout = block(SIZE).unwrap_or_else(|| unreachable!("size is non-zero"));
    let mut g = c.benchmark_group("remote/producer-consumer");
    g.sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3))
        .sample_size(20)
        .nresamples(20_000)
        .throughput(Throughput::Elements(1));
    for s in &subjects {
        g.bench_function(s.info().name, |b| {
            b.iter_custom(|iters| producer_consumer(s.as_ref(), iters, layout));
        });
    }
    g.finish();
}

criterion_group!(benches, remote);
criterion_main!(benches);
