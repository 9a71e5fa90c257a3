//! Multithreaded stress on `locked` and `gil`: four threads allocate, free,
//! realloc, and hand blocks to the next thread over a channel, which frees
//! them (cross-thread frees). Every block is filled with a tag of
//! (thread, sequence) when allocated and checked before it is freed; every
//! pointer is checked for alignment. At the end nothing is live and the
//! accounting identity holds.
//!
//! Under `gil`, threads hold the GIL for spans, drop and re-take it now and
//! then, and release it (`allow_threads`) around the one blocking call, the
//! final channel drain, as CPython code must.

mod support;

use std::alloc::{GlobalAlloc, Layout};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Barrier;
use std::time::Duration;

use allocator::{Geometry, Gil, Locked, PoolStats};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use support::{fill, holds, random_layout, tag};

const THREADS: usize = 4;
const OPS: usize = 60_000;

/// A block in flight: address, layout and tag.
#[derive(Clone, Copy)]
struct Block {
    addr: usize,
    layout: Layout,
    tag: u64,
}

/// Runs a blocking operation: under `gil`, with the GIL released.
type AllowThreads<'a> = &'a mut dyn FnMut(&mut dyn FnMut());

/// How a thread reaches the allocator.
trait Driver: GlobalAlloc + PoolStats + Sync {
    /// Runs the thread body; `gil` runs it in a span holding the GIL.
    fn run(&self, body: &mut dyn FnMut(AllowThreads<'_>));
}

impl Driver for Locked {
    fn run(&self, body: &mut dyn FnMut(AllowThreads<'_>)) {
        body(&mut |blocking| blocking());
    }
}

impl Driver for Gil {
    fn run(&self, body: &mut dyn FnMut(AllowThreads<'_>)) {
        let mut guard = self.hold();
        body(&mut |blocking| guard.allow_threads(&mut *blocking));
    }
}

/// Checks and frees a block.
///
/// # Safety
/// `b` must be live in `a` with its layout.
unsafe fn release<A: GlobalAlloc>(a: &A, b: Block, who: usize) {
    let p = b.addr as *mut u8;
    // SAFETY: the block is live for its layout's size (caller's contract).
    let intact = unsafe { holds(p, b.layout.size(), b.tag) };
    assert!(
        intact,
        "thread {who}: block {:?} tagged {:#x} corrupted before free",
        b.layout, b.tag
    );
    // SAFETY: as above.
    unsafe { a.dealloc(p, b.layout) };
}

fn worker<A: Driver>(
    a: &A,
    me: usize,
    g: Geometry,
    to_next: Sender<Block>,
    inbox: Receiver<Block>,
    span_ops: usize,
) {
    let mut rng = SmallRng::seed_from_u64(0x57AE55 + me as u64);
    let mut live: Vec<Block> = Vec::new();
    let mut seq = 0u64;
    let mut to_next = Some(to_next);
    a.run(&mut |allow_threads| {
        for op in 0..OPS {
            if op % span_ops == span_ops - 1 {
                // Let the others in for a moment (a no-op under `locked`).
                allow_threads(&mut std::thread::yield_now);
            }
            // Free what other threads handed us.
            while let Ok(b) = inbox.try_recv() {
                // SAFETY: a live block of `a`, handed over whole.
                unsafe { release(a, b, me) };
            }
            let roll = rng.random_range(0..100);
            if live.len() < 64 || roll < 45 {
                let layout = random_layout(&mut rng, &g);
                // SAFETY: a valid layout (zero sizes are defined here).
                let p = unsafe { a.alloc(layout) };
                assert!(!p.is_null(), "thread {me}: {layout:?} failed");
                assert_eq!(
                    p as usize % layout.align(),
                    0,
                    "thread {me}: {layout:?} misaligned at {p:?}"
                );
                seq += 1;
                let t = tag(me, seq);
                // SAFETY: live for `layout.size()` bytes.
                unsafe { fill(p, layout.size(), t) };
                live.push(Block {
                    addr: p as usize,
                    layout,
                    tag: t,
                });
            } else if roll < 55 {
                let i = rng.random_range(0..live.len());
                let b = live[i];
                let new = rng.random_range(1..=1200);
                // SAFETY: live with its layout; `new` is non-zero and valid.
                let q = unsafe { a.realloc(b.addr as *mut u8, b.layout, new) };
                assert!(
                    !q.is_null() && q as usize % b.layout.align() == 0,
                    "thread {me}: realloc"
                );
                // SAFETY: live for `new` bytes.
                let kept = unsafe { holds(q, b.layout.size().min(new), b.tag) };
                assert!(kept, "thread {me}: realloc lost bytes");
                let layout = Layout::from_size_align(new, b.layout.align()).unwrap();
                // SAFETY: as above.
                unsafe { fill(q, new, b.tag) };
                live[i] = Block {
                    addr: q as usize,
                    layout,
                    tag: b.tag,
                };
            } else {
                let i = rng.random_range(0..live.len());
                let b = live.swap_remove(i);
                if roll < 80 {
                    // Remote free: the next thread frees it.
                    to_next.as_ref().unwrap().send(b).unwrap();
                } else {
                    // SAFETY: a live block of ours.
                    unsafe { release(a, b, me) };
                }
            }
        }
        for b in std::mem::take(&mut live) {
            // SAFETY: live blocks of ours.
            unsafe { release(a, b, me) };
        }
        // No more sends from us; drain until every sender is gone. The
        // receive blocks, so under the GIL it runs with the GIL released;
        // the frees run with it held.
        to_next = None;
        loop {
            let mut got = None;
            allow_threads(&mut || got = Some(inbox.recv()));
            match got.unwrap() {
                // SAFETY: a live block of `a`, handed over whole.
                Ok(b) => unsafe { release(a, b, me) },
                Err(_) => break,
            }
        }
    });
}

fn stress<A: Driver>(a: &A, g: Geometry, span_ops: usize) {
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..THREADS).map(|_| channel::<Block>()).unzip();
    let start = Barrier::new(THREADS);
    std::thread::scope(|s| {
        for (me, inbox) in receivers.into_iter().enumerate() {
            let to_next = senders[(me + 1) % THREADS].clone();
            let start = &start;
            s.spawn(move || {
                start.wait();
                worker(a, me, g, to_next, inbox, span_ops)
            });
        }
        drop(senders);
    });
    let st = a.stats();
    st.bytes.check().unwrap();
    assert_eq!(
        (st.requested_live, st.raw_live_allocs, st.blocks_in_use()),
        (0, 0, 0),
        "{st}"
    );
    assert!(st.arenas_current <= 1, "{st}");
    assert!(st.arenas_allocated_total >= 1);
}

#[test]
#[cfg_attr(miri, ignore = "multi-threaded or long: run natively")]
fn locked_four_threads_with_cross_thread_frees() {
    for g in [Geometry::CLASSIC, Geometry::MODERN] {
        stress(&Locked::new(g), g, usize::MAX);
    }
}

#[test]
#[cfg_attr(miri, ignore = "multi-threaded or long: run natively")]
fn gil_four_threads_with_cross_thread_frees() {
    for g in [Geometry::CLASSIC, Geometry::MODERN] {
        let a = Gil::new(g);
        a.set_switch_interval(Duration::from_micros(200));
        stress(&a, g, 500);
        let gs = a.gil_stats();
        assert!(gs.acquisitions >= THREADS as u64, "{gs:?}");
    }
}
