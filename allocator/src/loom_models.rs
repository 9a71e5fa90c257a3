//! Loom models of the atomic protocols (run with `RUSTFLAGS="--cfg loom"`,
//! see `scripts/loom.sh`). Each model builds its own allocator core on the
//! tiny geometry (four 1 KiB pools per arena), so that pool-full,
//! pool-empty and arena-release transitions happen in a few operations,
//! and drives threads through the explicit attach / alloc / free / detach
//! API that the `#[global_allocator]` wrappers call. A detach stands for a
//! thread's exit.
//!
//! What every model checks at the end: no block handed out twice while
//! live, every block freed exactly once came back (`blocks_in_use == 0`,
//! `requested_live == 0`), and the accounting identity holds.

use core::alloc::Layout;
use std::collections::HashSet;

use loom::sync::Arc;
use loom::thread;

use crate::geometry::Geometry;
use crate::sharded::ShardedCore;
use crate::stats::Stats;
use crate::tcache::TcacheCore;

const G: Geometry = Geometry::TINY;

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

/// Two threads free blocks of the owner's pool while the owner allocates
/// from it, runs it dry, and collects or marks it full (`NOTIFY`).
#[test]
fn remote_frees_race_owner_collect() {
    loom::model(|| {
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

/// A heap's thread exits while another thread frees its blocks and a
/// third thread attaches (and may adopt the abandoned heap).
#[test]
fn abandon_races_remote_free_and_adoption() {
    loom::model(|| {
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
    loom::model(|| {
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
