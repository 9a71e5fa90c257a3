//! `sharded` under threads: tag-checked stress with remote frees, and
//! blocks outliving the threads that allocated them.

mod support;

use std::alloc::{GlobalAlloc, Layout};
use std::sync::mpsc;

use allocator::{Geometry, PoolStats, Sharded};
use support::stress::{alloc_tagged, free_checked, stress};
use support::tag;

static STRESSED: Sharded = Sharded::new(Geometry::CLASSIC);

/// Issue 3: 8 threads, 10^6 ops each, half of the frees remote.
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
    assert_eq!(s.blocks_in_use(), 0, "every block came back: {s}");
    assert!(s.extra.remote_frees_pushed > 0);
    assert_eq!(
        s.extra.remote_frees_pushed, s.extra.remote_frees_collected,
        "{:?}",
        s.extra
    );
    assert!(
        s.extra.live_heaps <= 1,
        "only the main thread (it freed the leftovers) holds a heap: {:?}",
        s.extra
    );
    println!("{s}\n{:?}", s.extra);
}

static TRANSFER: Sharded = Sharded::new(Geometry::CLASSIC);

/// mimalloc test-stress's transfer pattern: 1000 short-lived threads each
/// leave live blocks for the main thread, which frees them after the
/// thread exited. Memory must come back.
#[test]
fn thousand_threads_leave_blocks_behind() {
    let a: &'static Sharded = &TRANSFER;
    let start = a.stats();
    let (tx, rx) = mpsc::channel();
    let mut max_arenas = 0;
    for t in 0..1000usize {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for i in 0..200u64 {
                let size = 8 + (i as usize * 37 + t) % 500;
                let b = alloc_tagged(a, Layout::from_size_align(size, 8).unwrap(), tag(t, i));
                // Keep half for the main thread; free a quarter here.
                if i % 4 == 0 {
                    free_checked(a, b);
                } else {
                    tx.send(b).unwrap();
                }
            }
        })
        .join()
        .unwrap();
        max_arenas = max_arenas.max(a.stats().arenas_current);
        // The main thread frees the previous thread's blocks while later
        // threads run: these are frees into abandoned heaps.
        for b in rx.try_iter() {
            free_checked(a, b);
        }
    }
    drop(tx);
    let end = a.stats();
    end.bytes.check().unwrap();
    println!(
        "arenas: start {} peak {} end {} (mapped {} bytes), heaps live {} abandoned {}, pools adopted {}",
        start.arenas_current,
        max_arenas,
        end.arenas_current,
        end.bytes.mapped,
        end.extra.live_heaps,
        end.extra.abandoned_heaps,
        end.extra.pools_adopted
    );
    assert_eq!(end.blocks_in_use(), 0, "{end}");
    assert!(
        end.arenas_current <= start.arenas_current + 2,
        "memory held after drain: {end}"
    );
    // Heaps are reused: at most the main thread's plus a couple.
    assert!(
        end.extra.live_heaps + end.extra.abandoned_heaps <= 4,
        "{:?}",
        end.extra
    );
}

/// Blocks freed by a thread that never allocated (it gets a heap on its
/// first free) and by threads that have all exited.
#[test]
fn frees_from_foreign_and_dead_threads() {
    let a: &'static Sharded = Box::leak(Box::new(Sharded::new(Geometry::MODERN)));
    let blocks: Vec<_> = std::thread::spawn(move || {
        (0..5000u64)
            .map(|i| {
                alloc_tagged(
                    a,
                    Layout::from_size_align(16 + (i as usize % 400), 16).unwrap(),
                    tag(7, i),
                )
            })
            .collect::<Vec<_>>()
    })
    .join()
    .unwrap();
    let mid = a.stats();
    assert_eq!(mid.extra.abandoned_heaps, 1);
    std::thread::spawn(move || {
        for b in blocks {
            free_checked(a, b);
        }
    })
    .join()
    .unwrap();
    let s = a.stats();
    s.bytes.check().unwrap();
    assert_eq!(s.blocks_in_use(), 0, "{s}");
    assert!(s.arenas_current <= 1, "{s}");
}

#[test]
fn realloc_keeps_bytes_and_large_alignment_is_honoured() {
    let a: &'static Sharded = Box::leak(Box::new(Sharded::new(Geometry::CLASSIC)));
    let l = Layout::from_size_align(24, 8).unwrap();
    // SAFETY: valid layouts; every block is freed with its own layout.
    unsafe {
        let p = a.alloc(l);
        for i in 0..24 {
            p.add(i).write(i as u8);
        }
        let q = a.realloc(p, l, 700);
        assert!(!q.is_null());
        for i in 0..24 {
            assert_eq!(q.add(i).read(), i as u8);
        }
        let r = a.realloc(q, Layout::from_size_align(700, 8).unwrap(), 10);
        for i in 0..10 {
            assert_eq!(r.add(i).read(), i as u8);
        }
        a.dealloc(r, Layout::from_size_align(10, 8).unwrap());
        let big = Layout::from_size_align(64, 4096).unwrap();
        let p = a.alloc(big);
        assert_eq!(p as usize % 4096, 0);
        a.dealloc(p, big);
        assert!(a
            .alloc(Layout::from_size_align(isize::MAX as usize - 7, 8).unwrap())
            .is_null());
    }
    assert_eq!(a.stats().requested_live, 0);
}

/// A thread using more allocators than its binding table holds: the least
/// recently used binding is detached (its heap abandoned, then adopted
/// again), and every block still comes back.
#[test]
fn one_thread_many_instances() {
    let all: Vec<&'static Sharded> = (0..10)
        .map(|_| &*Box::leak(Box::new(Sharded::new(Geometry::CLASSIC))))
        .collect();
    let l = Layout::from_size_align(48, 8).unwrap();
    let mut live = Vec::new();
    for round in 0..50u64 {
        for (i, a) in all.iter().enumerate() {
            live.push((i, alloc_tagged(*a, l, tag(i, round))));
        }
    }
    for (i, b) in live {
        free_checked(all[i], b);
    }
    for a in all {
        let s = a.stats();
        s.bytes.check().unwrap();
        assert_eq!(s.blocks_in_use(), 0, "{s}");
        assert_eq!(s.requested_live, 0);
    }
}

/// After `forget_other_threads` (what a `fork()` child calls), a thread of
/// the "parent" that is still bound loses its fast-map slot and goes on
/// through its binding: its blocks stay valid and come back.
#[test]
fn forgotten_threads_fall_back_to_their_bindings() {
    let a: &'static Sharded = Box::leak(Box::new(Sharded::new(Geometry::CLASSIC)));
    let l = Layout::from_size_align(64, 8).unwrap();
    let (to_worker, rx) = mpsc::channel::<()>();
    let (tx, from_worker) = mpsc::channel::<()>();
    let worker = std::thread::spawn(move || {
        let mut mine: Vec<_> = (0..100u64).map(|i| alloc_tagged(a, l, tag(1, i))).collect();
        tx.send(()).unwrap();
        rx.recv().unwrap();
        // The slot is gone: these calls find the thread's state through
        // its binding.
        mine.extend((100..200u64).map(|i| alloc_tagged(a, l, tag(1, i))));
        for b in mine {
            free_checked(a, b);
        }
    });
    from_worker.recv().unwrap();
    a.forget_other_threads();
    let b = alloc_tagged(a, l, tag(0, 0));
    free_checked(a, b);
    to_worker.send(()).unwrap();
    worker.join().unwrap();
    let s = a.stats();
    s.bytes.check().unwrap();
    assert_eq!(s.blocks_in_use(), 0, "{s}");
    assert_eq!(s.requested_live, 0);
}
