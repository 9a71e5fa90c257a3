//! Loom models of the atomic protocols (run with `RUSTFLAGS="--cfg loom"`,
//! see `scripts/loom.sh`). Each allocator model builds its own allocator
//! core on the tiny geometry (four 1 KiB pools per arena), so that
//! pool-full, pool-empty and arena-release transitions happen in a few
//! operations, and drives threads through the explicit attach / alloc /
//! free / detach API that the `#[global_allocator]` wrappers call. A detach
//! stands for a thread's exit.
//!
//! What every allocator model checks at the end: no block handed out twice
//! while live, every block freed exactly once came back (`blocks_in_use ==
//! 0`, `requested_live == 0`), and the accounting identity holds. Along the
//! way, loom checks every access to a `sync::UnsafeCell` (pool headers,
//! heap lists, cache bins) against the happens-before order, so a hand-over
//! without the right ordering fails as a causality violation.
//!
//! The GIL models drive `GilLock` itself, guarding a counter in a
//! `sync::UnsafeCell` as the real GIL guards the pymalloc core: loom checks
//! that holders never overlap, and reports a deadlock if a wake-up is lost
//! (every thread asleep).

use core::alloc::Layout;
use std::collections::HashSet;

use loom::sync::Arc;
use loom::thread;

use crate::geometry::Geometry;
use crate::gil_lock::GilLock;
use crate::per_thread::PerThread;
use crate::sharded::ShardedCore;
use crate::stats::Stats;
use crate::sync::UnsafeCell;
use crate::tcache::TcacheCore;

const G: Geometry = Geometry::TINY;

/// Runs a model of the `sharded` core: a heap's detach and a statistics
/// walk touch every class's list (atomics, each a loom branch point), so
/// these executions are longer than loom's default bound allows.
fn sharded_model(f: impl Fn() + Sync + Send + 'static) {
    let mut b = loom::model::Builder::new();
    b.max_branches = 20_000;
    b.check(f);
}

fn layout(size: usize) -> Layout {
    Layout::from_size_align(size, 16).unwrap()
}

fn assert_drained(s: &Stats) {
    s.bytes.check().unwrap();
    assert_eq!(
        s.blocks_in_use(),
        s.extra.cached_blocks,
        "a block was lost:\n{s}"
    );
    assert_eq!(s.requested_live, 0, "requested bytes leaked:\n{s}");
}

fn distinct(blocks: &[usize]) {
    let set: HashSet<_> = blocks.iter().collect();
    assert_eq!(
        set.len(),
        blocks.len(),
        "a block was handed out twice: {blocks:x?}"
    );
}

/// Two threads free blocks of the owner's pool and exit (posting them)
/// while the owner allocates from it, runs it dry, and takes back what was
/// posted or takes a new pool.
#[test]
fn remote_frees_race_owner_collect() {
    sharded_model(|| {
        let core = Arc::new(ShardedCore::new(G));
        let l = layout(256); // three blocks per 1 KiB pool
        let owner = core.attach();
        // SAFETY: `owner` is this thread's heap; blocks are freed once each.
        let (b1, b2) = unsafe { (core.alloc(owner, l) as usize, core.alloc(owner, l) as usize) };
        let remotes: Vec<_> = [b1, b2]
            .into_iter()
            .map(|b| {
                let core = core.clone();
                thread::spawn(move || {
                    let h = core.attach();
                    // SAFETY: `h` is this thread's heap; `b` is a live block
                    // handed to this thread, freed once.
                    unsafe {
                        core.dealloc(h, b as *mut u8, l);
                        core.detach(h);
                    }
                })
            })
            .collect();
        // The owner takes the pool's third block, runs it dry, and needs
        // more: it collects the remote frees or marks the pool full.
        // SAFETY: as above.
        let mine: Vec<usize> = (0..3)
            .map(|_| unsafe { core.alloc(owner, l) as usize })
            .collect();
        for r in remotes {
            r.join().unwrap();
        }
        let mut live = mine.clone();
        live.extend([b1, b2]);
        distinct(&mine);
        for b in mine {
            // SAFETY: owner frees its own live blocks once.
            unsafe { core.dealloc(owner, b as *mut u8, l) };
        }
        // SAFETY: the owner "exits".
        unsafe { core.detach(owner) };
        let s = core.stats();
        assert_drained(&s);
        assert_eq!(
            s.extra.remote_frees_pushed, s.extra.remote_frees_collected,
            "{:?}",
            s.extra
        );
        assert_eq!(
            s.pools_used + s.pools_full,
            0,
            "a pool was not released:\n{s}"
        );
    });
}

/// A thread posts a block it freed to its owner while the owner runs; the
/// owner, out of blocks, takes the inbound stack and reuses the block. The
/// owner waits for the post with a relaxed load, which orders nothing: the
/// post's `Release` and the take's `Acquire` alone must make the block's
/// link visible (loom shadows block links, see `pool.rs`).
#[test]
fn remote_post_races_owner_drain() {
    sharded_model(|| {
        let core = Arc::new(ShardedCore::new(G));
        let l = layout(256); // three blocks per 1 KiB pool
        let owner = core.attach();
        // SAFETY: `owner` is this thread's heap; blocks are freed once each.
        let b1 = unsafe { core.alloc(owner, l) as usize };
        let remote = {
            let core = core.clone();
            thread::spawn(move || {
                let h = core.attach();
                // SAFETY: `h` is this thread's heap; `b1` is a live block
                // handed to this thread, freed once; its exit posts it.
                unsafe {
                    core.dealloc(h, b1 as *mut u8, l);
                    core.detach(h);
                }
            })
        };
        // SAFETY: as above.
        let mut mine: Vec<usize> = (0..2)
            .map(|_| unsafe { core.alloc(owner, l) as usize })
            .collect();
        while !core.inbound_pending(owner) {
            thread::yield_now();
        }
        // The pool is spent: the next block is the one posted back.
        // SAFETY: as above.
        let again = unsafe { core.alloc(owner, l) as usize };
        assert_eq!(again, b1, "the posted block was not taken back");
        mine.push(again);
        remote.join().unwrap();
        distinct(&mine);
        for b in mine {
            // SAFETY: the owner frees its own live blocks once.
            unsafe { core.dealloc(owner, b as *mut u8, l) };
        }
        // SAFETY: the owner "exits".
        unsafe { core.detach(owner) };
        let s = core.stats();
        assert_drained(&s);
        assert_eq!(
            s.extra.remote_frees_pushed, s.extra.remote_frees_collected,
            "{:?}",
            s.extra
        );
    });
}

/// A heap's thread exits while another thread frees its blocks and a
/// third thread attaches (and may adopt the abandoned heap).
#[test]
fn abandon_races_remote_free_and_adoption() {
    sharded_model(|| {
        let core = Arc::new(ShardedCore::new(G));
        let l = layout(256);
        let a = core.attach();
        // SAFETY: `a` is this thread's heap until handed to the exiting thread.
        let blocks = unsafe { [core.alloc(a, l) as usize, core.alloc(a, l) as usize] };
        let a_addr = a as usize;
        let exiter = {
            let core = core.clone();
            // SAFETY: the heap's "thread" exits; nothing uses `a` afterwards
            // except through the adoption protocol.
            thread::spawn(move || unsafe { core.detach(a_addr as *mut _) })
        };
        let freer = {
            let core = core.clone();
            thread::spawn(move || {
                let h = core.attach();
                // SAFETY: `h` is this thread's heap; both blocks are live
                // and freed once each.
                unsafe {
                    for b in blocks {
                        core.dealloc(h, b as *mut u8, l);
                    }
                    core.detach(h);
                }
            })
        };
        let c = core.attach();
        // SAFETY: `c` is this thread's heap (new, or adopted from `a`).
        unsafe {
            let x = core.alloc(c, l);
            assert!(!x.is_null());
            core.dealloc(c, x, l);
        }
        exiter.join().unwrap();
        freer.join().unwrap();
        // SAFETY: the adopting thread "exits".
        unsafe { core.detach(c) };
        let s = core.stats();
        if s.blocks_in_use() != 0 {
            panic!("lost blocks:\n{}\n{:?}", core.describe(), s.extra);
        }
        assert_drained(&s);
        assert_eq!(
            s.pools_used + s.pools_full,
            0,
            "the pool did not end empty:\n{s}"
        );
    });
}

/// The last free of an arena (which unmaps it) races with an allocation
/// that needs a pool.
#[test]
fn arena_release_races_allocation() {
    sharded_model(|| {
        let core = Arc::new(ShardedCore::new(G));
        let l = layout(512); // one block per pool: each allocation takes a pool
        let h1 = core.attach();
        // SAFETY: `h1` is this thread's heap.
        let first: Vec<usize> = (0..4)
            .map(|_| unsafe { core.alloc(h1, l) as usize })
            .collect();
        // A fifth pool comes from a second arena, so the first may be unmapped.
        // SAFETY: as above.
        let fifth = unsafe { core.alloc(h1, l) as usize };
        let other = {
            let core = core.clone();
            thread::spawn(move || {
                let h2 = core.attach();
                // SAFETY: `h2` is this thread's heap; its blocks are freed once.
                unsafe {
                    let x = core.alloc(h2, l);
                    let y = core.alloc(h2, l);
                    assert!(!x.is_null() && !y.is_null() && x != y);
                    x.write_bytes(0x5A, 512);
                    y.write_bytes(0xA5, 512);
                    core.dealloc(h2, x, l);
                    core.dealloc(h2, y, l);
                    core.detach(h2);
                }
            })
        };
        for b in first {
            // SAFETY: owner frees its blocks once; the last one empties arena 1.
            unsafe { core.dealloc(h1, b as *mut u8, l) };
        }
        other.join().unwrap();
        // SAFETY: as above, then the owner exits.
        unsafe {
            core.dealloc(h1, fifth as *mut u8, l);
            core.detach(h1);
        }
        let s = core.stats();
        assert_drained(&s);
        assert!(s.arenas_current <= 1, "an empty arena was kept:\n{s}");
    });
}

/// One thread's cache flushes a batch back to the core while another
/// thread's cache refills from it.
#[test]
fn tcache_flush_races_refill() {
    loom::model(|| {
        let core = Arc::new(TcacheCore::new(G, 2, usize::MAX));
        let l = layout(256);
        let other = {
            let core = core.clone();
            thread::spawn(move || {
                let c = core.attach();
                // SAFETY: `c` is this thread's cache; blocks freed once each.
                unsafe {
                    let got: Vec<usize> = (0..3).map(|_| core.alloc(c, l) as usize).collect();
                    distinct(&got);
                    for b in &got {
                        (*b as *mut u8).write_bytes(0x11, 256);
                    }
                    for b in got {
                        core.dealloc(c, b as *mut u8, l);
                    }
                    core.detach(c);
                }
            })
        };
        let c = core.attach();
        // SAFETY: `c` is this thread's cache. Four frees reach twice the
        // batch and flush two blocks back while the other thread refills.
        unsafe {
            let mine: Vec<usize> = (0..4).map(|_| core.alloc(c, l) as usize).collect();
            distinct(&mine);
            for b in &mine {
                (*b as *mut u8).write_bytes(0x22, 256);
            }
            for b in mine {
                core.dealloc(c, b as *mut u8, l);
            }
        }
        other.join().unwrap();
        // SAFETY: this thread "exits".
        unsafe { core.detach(c) };
        let s = core.stats();
        assert_drained(&s);
        assert_eq!(s.extra.cached_blocks, 0);
    });
}

/// The GIL and the state it guards.
struct Guarded {
    gil: GilLock,
    counter: UnsafeCell<u32>,
}

// SAFETY: `counter` is touched only with the GIL held, which the models
// check.
unsafe impl Sync for Guarded {}
// SAFETY: as above.
unsafe impl Send for Guarded {}

impl Guarded {
    /// Takes the GIL, bumps the counter, releases it.
    fn one_call(&self) {
        self.gil.take(core::time::Duration::from_millis(5));
        // SAFETY: we hold the GIL.
        unsafe { self.counter.with_mut(|c| *c += 1) };
        self.gil.release();
    }
}

/// Three threads take the GIL per call, as a program without spans does:
/// the uncontended path (one CAS) races the sleeping path, and every
/// release must wake a sleeper that counted itself in.
#[test]
fn gil_per_call_takers_exclude_each_other_and_wake_sleepers() {
    loom::model(|| {
        let g = Arc::new(Guarded {
            gil: GilLock::new(),
            counter: UnsafeCell::new(0),
        });
        let others: Vec<_> = (0..2)
            .map(|_| {
                let g = g.clone();
                thread::spawn(move || g.one_call())
            })
            .collect();
        g.one_call();
        for t in others {
            t.join().unwrap();
        }
        // SAFETY: every other thread has finished.
        assert_eq!(unsafe { g.counter.with(|c| *c) }, 3);
        assert_eq!(g.gil.acquisitions(), 3);
    });
}

/// A holder keeps the GIL for a span until a waiter asks it to drop (in
/// the model a waiter asks before it sleeps); it drops it by force and
/// waits for the hand-over, then takes it back. Neither may sleep forever,
/// and the waiter gets the GIL before the holder's second turn.
#[test]
fn gil_forced_switch_hands_over_to_the_waiter() {
    loom::model(|| {
        let g = Arc::new(Guarded {
            gil: GilLock::new(),
            counter: UnsafeCell::new(0),
        });
        g.gil.take(core::time::Duration::from_millis(5));
        let waiter = {
            let g = g.clone();
            thread::spawn(move || {
                g.gil.take(core::time::Duration::from_millis(5));
                // SAFETY: we hold the GIL; the holder's first turn is over.
                let seen = unsafe { g.counter.with_mut(|c| std::mem::replace(&mut *c, 10)) };
                assert_eq!(
                    seen, 1,
                    "the waiter ran before the holder's first turn ended"
                );
                g.gil.release();
            })
        };
        // SAFETY: we hold the GIL.
        unsafe { g.counter.with_mut(|c| *c += 1) };
        // The span goes on until a waiter asks for the GIL.
        while !g.gil.drop_requested() {
            thread::yield_now();
        }
        g.gil.release_forced();
        g.gil.take(core::time::Duration::from_millis(5));
        // SAFETY: we hold the GIL again.
        let seen = unsafe { g.counter.with_mut(|c| std::mem::replace(&mut *c, 11)) };
        assert_eq!(
            seen, 10,
            "the holder took the GIL back before the waiter's turn"
        );
        g.gil.release();
        waiter.join().unwrap();
    });
}

/// A thread exits, leaving its cache to the next thread, which takes it
/// while the exit may still be under way: the state CAS alone must hand the
/// bins over (they are a `sync::UnsafeCell`).
#[test]
fn tcache_cache_handed_to_the_next_thread() {
    loom::model(|| {
        let core = Arc::new(TcacheCore::new(G, 2, usize::MAX));
        let l = layout(256);
        let first = {
            let core = core.clone();
            thread::spawn(move || {
                let c = core.attach();
                // SAFETY: `c` is this thread's cache; the block is freed once.
                unsafe {
                    let b = core.alloc(c, l);
                    b.write_bytes(0x33, 256);
                    core.dealloc(c, b, l);
                    core.detach(c);
                }
            })
        };
        while !core.has_free_cache() {
            thread::yield_now();
        }
        let c = core.attach();
        // SAFETY: `c` is this thread's cache (the first thread's, reused).
        unsafe {
            let b = core.alloc(c, l);
            assert!(!b.is_null());
            core.dealloc(c, b, l);
            core.detach(c);
        }
        first.join().unwrap();
        let s = core.stats();
        assert_drained(&s);
        assert_eq!(s.extra.cached_blocks, 0);
    });
}
