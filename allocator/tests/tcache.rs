//! `tcache` under threads: tag-checked stress with frees by other threads,
//! thread-exit flushing, and the accounting with blocks parked in caches.

mod support;

use std::alloc::Layout;
use std::sync::mpsc;

use allocator::tcache::DEFAULT_CACHE_BYTES;
use allocator::{Geometry, Locked, PoolStats, Tcache};
use support::stress::{alloc_tagged, free_checked, stress, stress_then_idle};
use support::tag;

static STRESSED: Tcache = Tcache::new(Geometry::CLASSIC);
static STRESSED_LOCKED: Locked = Locked::new(Geometry::CLASSIC);

/// Issue 3: 8 threads, 10^6 ops each, half of the frees by another thread.
/// Issue 12: afterwards the arenas still mapped are within twice those of
/// `locked` after the same stress: exited threads flushed their caches,
/// the byte cap bounds what the main thread (which freed the leftovers)
/// keeps, and a trim returns that too.
#[test]
fn stress_8_threads_half_remote() {
    let ops = if cfg!(debug_assertions) {
        300_000
    } else {
        1_000_000
    };
    stress(&STRESSED_LOCKED, 8, ops, 50, 600);
    let locked = STRESSED_LOCKED.stats();
    stress(&STRESSED, 8, ops, 50, 600);
    let s = STRESSED.stats();
    s.bytes.check().unwrap();
    assert_eq!(s.requested_live, 0, "{s}");
    // Exited threads flushed their caches; only the main thread's remain,
    // within the byte cap.
    assert_eq!(
        s.blocks_in_use(),
        s.extra.cached_blocks,
        "{s}\n{:?}",
        s.extra
    );
    assert!(
        s.bytes.allocated_blocks <= DEFAULT_CACHE_BYTES,
        "the main thread caches more than its cap: {s}"
    );
    STRESSED.trim();
    let trimmed = STRESSED.stats();
    println!(
        "arenas after the stress: locked {}, tcache {} ({} blocks cached), after trim {}",
        locked.arenas_current, s.arenas_current, s.extra.cached_blocks, trimmed.arenas_current
    );
    assert_eq!(trimmed.extra.cached_blocks, 0, "{:?}", trimmed.extra);
    assert!(
        trimmed.arenas_current <= 2 * locked.arenas_current.max(1),
        "tcache keeps {} arenas, locked {}:\n{trimmed}",
        trimmed.arenas_current,
        locked.arenas_current
    );
}

static IDLE: Tcache = Tcache::new(Geometry::CLASSIC);
static IDLE_LOCKED: Locked = Locked::new(Geometry::CLASSIC);

/// Threads that stay alive but stop allocating: their caches go back when
/// a trim was asked for and they make their next call. Arenas mapped then
/// are within twice those of `locked` in the same state.
#[test]
fn idle_threads_give_their_caches_back_at_their_next_call() {
    let ops = if cfg!(debug_assertions) {
        20_000
    } else {
        100_000
    };
    let locked = stress_then_idle(&IDLE_LOCKED, 8, ops, &|| {}, &|| IDLE_LOCKED.stats());
    let before = std::sync::Mutex::new(None);
    let after = stress_then_idle(
        &IDLE,
        8,
        ops,
        &|| {
            *before.lock().unwrap() = Some(IDLE.stats());
            IDLE.trim();
        },
        &|| IDLE.stats(),
    );
    let before = before.into_inner().unwrap().unwrap();
    println!(
        "arenas with 8 idle threads: locked {}, tcache {} ({} blocks cached), after trim and one call each {} ({} cached)",
        locked.arenas_current,
        before.arenas_current,
        before.extra.cached_blocks,
        after.arenas_current,
        after.extra.cached_blocks
    );
    assert!(
        before.bytes.allocated_blocks <= 9 * DEFAULT_CACHE_BYTES,
        "caches beyond their caps: {before}"
    );
    assert!(after.extra.cached_blocks < before.extra.cached_blocks);
    assert!(
        after.arenas_current <= 2 * locked.arenas_current.max(1),
        "tcache keeps {} arenas, locked {}:\n{after}",
        after.arenas_current,
        locked.arenas_current
    );
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
