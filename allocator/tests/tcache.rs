//! `tcache` under threads: tag-checked stress with frees by other threads,
//! thread-exit flushing, and the accounting with blocks parked in caches.

mod support;

use std::alloc::Layout;
use std::sync::mpsc;

use allocator::{Geometry, PoolStats, Tcache};
use support::stress::{alloc_tagged, free_checked, stress};
use support::tag;

static STRESSED: Tcache = Tcache::new(Geometry::CLASSIC);

/// Issue 3: 8 threads, 10^6 ops each, half of the frees by another thread.
#[test]
fn stress_8_threads_half_remote() {
    let ops = if cfg!(debug_assertions) {
        300_000
    } else {
        1_000_000
    };
    stress(&STRESSED, 8, ops, 50, 600);
    let s = STRESSED.stats();
    s.bytes.check().unwrap();
    assert_eq!(s.requested_live, 0, "{s}");
    // Exited threads flushed their caches; only the main thread's remain.
    assert_eq!(
        s.blocks_in_use(),
        s.extra.cached_blocks,
        "{s}\n{:?}",
        s.extra
    );
    println!("{s}\n{:?}", s.extra);
}

static TRANSFER: Tcache = Tcache::with_batch(Geometry::MODERN, 8);

#[test]
fn thousand_threads_leave_blocks_behind() {
    let a: &'static Tcache = &TRANSFER;
    let (tx, rx) = mpsc::channel();
    for t in 0..1000usize {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for i in 0..100u64 {
                let b = alloc_tagged(
                    a,
                    Layout::from_size_align(16 + (i as usize * 53) % 480, 16).unwrap(),
                    tag(t, i),
                );
                tx.send(b).unwrap();
            }
        })
        .join()
        .unwrap();
        for b in rx.try_iter() {
            free_checked(a, b);
        }
    }
    let s = a.stats();
    s.bytes.check().unwrap();
    println!(
        "arenas end {} (mapped {}), cached blocks {}",
        s.arenas_current, s.bytes.mapped, s.extra.cached_blocks
    );
    assert_eq!(s.requested_live, 0);
    assert_eq!(s.blocks_in_use(), s.extra.cached_blocks, "{s}");
    assert!(s.arenas_current <= 2, "{s}");
}

#[test]
fn exiting_thread_flushes_its_cache() {
    let a: &'static Tcache = Box::leak(Box::new(Tcache::with_batch(Geometry::CLASSIC, 4)));
    std::thread::spawn(move || {
        let v: Vec<_> = (0..1000u64)
            .map(|i| alloc_tagged(a, Layout::from_size_align(40, 8).unwrap(), i))
            .collect();
        for b in v {
            free_checked(a, b);
        }
        assert!(a.stats().extra.cached_blocks > 0);
    })
    .join()
    .unwrap();
    let s = a.stats();
    assert_eq!(s.extra.cached_blocks, 0, "{:?}", s.extra);
    assert_eq!(s.blocks_in_use(), 0, "{s}");
    assert!(s.arenas_current <= 1);
}
