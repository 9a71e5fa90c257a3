//! Pool and arena state transitions, step by step, with the invariant
//! checker after every operation.
//!
//! `TINY` (four 1 KiB pools per arena) makes arenas cheap to fill: its
//! 512-byte class has exactly one block per pool, so each such block takes
//! one pool and the tests choose precisely how many free pools each arena
//! has.

use core::alloc::Layout;

use super::{check_core, scale, view};
use crate::geometry::Geometry;
use crate::pool::{pool_of, Pool};
use crate::pymalloc::Pymalloc;

fn checked(c: &Pymalloc) {
    if let Err(e) = check_core(c) {
        panic!("invariant broken: {e}");
    }
}

fn alloc(c: &mut Pymalloc, l: Layout) -> *mut u8 {
    let b = c.alloc(l);
    assert!(!b.is_null(), "allocation of {l:?} failed");
    checked(c);
    b
}

fn free(c: &mut Pymalloc, b: *mut u8, l: Layout) {
    // SAFETY: the tests free only blocks they allocated with `l`.
    unsafe { c.dealloc(b, l) };
    checked(c);
}

/// The header of a pool the test knows to be carved in a live arena (it
/// holds a block of the test's, or the test just emptied it and its arena
/// is kept).
fn pool(p: *mut Pool) -> super::PoolView {
    // SAFETY: callers pass pools of live arenas only, whose headers are valid.
    unsafe { view(p) }
}

fn arena_of(b: *mut u8, g: &Geometry) -> u32 {
    // SAFETY: `b` is a live pool block, so its pool header is valid.
    unsafe { view(pool_of(b, g)).arenaindex }
}

#[test]
fn pool_goes_used_full_used_empty_and_full_pools_return_to_the_front() {
    let g = Geometry::CLASSIC;
    let mut c = Pymalloc::new(g);
    let l = Layout::from_size_align(48, 8).unwrap();
    let idx = g.class_of(48, 8).unwrap();
    let n = g.blocks_per_pool(idx);

    // used: the first block links a fresh pool at the head of its ring.
    let first = alloc(&mut c, l);
    let p1 = pool_of(first, &g);
    assert_eq!(c.heap.ring_head(idx), p1);
    let v = pool(p1);
    assert!(v.in_ring && v.ref_count == 1);
    assert_eq!(c.stats().pools_used, 1);

    // full: after n blocks the pool leaves the ring.
    let mut in_p1 = vec![first];
    for _ in 1..n {
        let b = alloc(&mut c, l);
        assert_eq!(pool_of(b, &g), p1, "a used pool serves its class first");
        in_p1.push(b);
    }
    let v = pool(p1);
    assert!(!v.in_ring && v.freeblock.is_null() && v.ref_count == n);
    assert!(c.heap.ring_head(idx).is_null());
    let s = c.stats();
    assert_eq!(
        (s.pools_full, s.classes[idx].full_pools, s.pools_used),
        (1, 1, 0)
    );

    // a second pool, used, is now the ring.
    let in_p2 = [alloc(&mut c, l), alloc(&mut c, l)];
    let p2 = pool_of(in_p2[0], &g);
    assert_ne!(p1, p2);
    assert_eq!(c.heap.ring_head(idx), p2);

    // full -> used: p1 goes to the FRONT, ahead of p2.
    let back = in_p1.swap_remove(n / 2);
    free(&mut c, back, l);
    assert_eq!(
        c.heap.ring_head(idx),
        p1,
        "a pool that was full goes to the front"
    );
    let v = pool(p1);
    assert!(v.in_ring && v.ref_count == n - 1 && v.nextpool == p2 && v.prevpool == p2);
    // ...and the block just freed is the next one handed out (LIFO).
    let again = alloc(&mut c, l);
    assert_eq!(again, back);
    in_p1.push(again);
    assert_eq!(c.heap.ring_head(idx), p2, "full again, p1 left the ring");

    // used -> empty: p2 goes to its arena's freepools.
    let a = arena_of(in_p2[0], &g);
    let before = c.arenas.nfreepools_of(a);
    for b in in_p2 {
        free(&mut c, b, l);
    }
    let v = pool(p2);
    assert!(!v.in_ring && v.ref_count == 0);
    assert!(c.heap.ring_head(idx).is_null());
    assert_eq!(c.arenas.nfreepools_of(a), before + 1);
    let arena = c.arenas.views().into_iter().find(|v| v.index == a).unwrap();
    assert_eq!(
        arena.freepools.first(),
        Some(&p2),
        "empty pool heads freepools"
    );

    // the empty pool is reused, re-initialised, by another class.
    let l16 = Layout::from_size_align(16, 8).unwrap();
    let small = alloc(&mut c, l16);
    assert_eq!(pool_of(small, &g), p2, "freepools are taken before carving");
    assert_eq!(pool(p2).szidx as usize, g.class_of(16, 8).unwrap());

    free(&mut c, small, l16);
    for b in in_p1 {
        free(&mut c, b, l);
    }
    let s = c.stats();
    assert_eq!(
        (s.arenas_current, s.blocks_in_use(), s.requested_live),
        (1, 0, 0)
    );
}

#[test]
fn usable_arenas_stay_sorted_and_the_fullest_serves_first() {
    let g = Geometry::TINY;
    let per = g.pools_per_arena();
    assert_eq!(per, 4);
    let big = Layout::from_size_align(512, 8).unwrap();
    assert_eq!(g.blocks_per_pool(g.class_of(512, 8).unwrap()), 1);
    let mut c = Pymalloc::new(g);

    // Three full arenas: nothing usable.
    let mut blocks: Vec<*mut u8> = (0..3 * per).map(|_| alloc(&mut c, big)).collect();
    let arenas: Vec<u32> = blocks.iter().map(|&b| arena_of(b, &g)).collect();
    let (a0, a1, a2) = (arenas[0], arenas[per], arenas[2 * per]);
    assert!(a0 != a1 && a1 != a2 && a0 != a2);
    assert!(c.arenas.usable_order().is_empty());

    let mut give_back = |c: &mut Pymalloc, arena: u32| {
        let i = blocks
            .iter()
            .position(|&b| arena_of(b, &g) == arena)
            .unwrap();
        free(c, blocks.swap_remove(i), big);
    };
    // Free 3 pools of a2, then 1 of a1 and 1 of a0: each full arena that
    // gets a pool back enters at the head.
    for a in [a2, a2, a2, a1, a0] {
        give_back(&mut c, a);
    }
    assert_eq!(c.arenas.usable_order(), vec![a0, a1, a2]);

    // An arena that gains a pool slides right past those it now exceeds:
    // a0 goes 1 -> 2, after a1 (which has 1), before a2 (3).
    give_back(&mut c, a0);
    assert_eq!(c.arenas.usable_order(), vec![a1, a0, a2]);
    // New pools come from the head, the fullest usable arena; a1 is full
    // again and leaves the list.
    let b = alloc(&mut c, big);
    assert_eq!(arena_of(b, &g), a1);
    blocks.push(b);
    assert_eq!(c.arenas.usable_order(), vec![a0, a2]);

    // a2 (3 free) becomes wholly free while it is last: kept (bpo-37257).
    let mut give_back = |c: &mut Pymalloc, arena: u32| {
        let i = blocks
            .iter()
            .position(|&b| arena_of(b, &g) == arena)
            .unwrap();
        free(c, blocks.swap_remove(i), big);
    };
    give_back(&mut c, a2);
    assert_eq!(c.stats().arenas_current, 3);
    assert_eq!(c.arenas.usable_order().last(), Some(&a2));
    // a0 becomes wholly free while a2 is after it: released.
    give_back(&mut c, a0);
    give_back(&mut c, a0);
    let s = c.stats();
    assert_eq!((s.arenas_current, s.arenas_reclaimed), (2, 1));
    assert!(!c.arenas.usable_order().contains(&a0));
    for b in std::mem::take(&mut blocks) {
        free(&mut c, b, big);
    }
    let s = c.stats();
    assert_eq!((s.arenas_current, s.arenas_reclaimed), (1, 2));
}

#[test]
fn everything_freed_releases_all_arenas_but_one() {
    for g in [Geometry::CLASSIC, Geometry::TINY] {
        let mut c = Pymalloc::new(g);
        let l = Layout::from_size_align(512, 8).unwrap();
        let per_arena = g.pools_per_arena() * g.blocks_per_pool(g.class_of(512, 8).unwrap());
        let n = scale(3 * per_arena + 5, per_arena + 5);
        let mut blocks: Vec<*mut u8> = (0..n).map(|_| c.alloc(l)).collect();
        assert!(blocks.iter().all(|b| !b.is_null()));
        checked(&c);
        let mapped = c.stats().arenas_current;
        assert!(
            mapped >= 2,
            "{g:?}: the test needs several arenas, got {mapped}"
        );
        // Free in a scrambled but fixed order, checking every invariant
        // after each free (at a stride under Miri, where a full check of
        // hundreds of pools per free would take minutes).
        let (mut i, mut k) = (0, 0);
        while !blocks.is_empty() {
            i = (i + 7919) % blocks.len();
            let b = blocks.swap_remove(i);
            // SAFETY: a live block allocated with `l`.
            unsafe { c.dealloc(b, l) };
            k += 1;
            if k % scale(1, 50) == 0 || blocks.is_empty() {
                checked(&c);
            }
        }
        let s = c.stats();
        assert!(
            s.arenas_current <= 1,
            "{g:?}: {} arenas left",
            s.arenas_current
        );
        assert_eq!(s.arenas_reclaimed as usize, mapped - s.arenas_current);
        assert_eq!(s.bytes.allocated_blocks, 0);
        s.bytes.check().unwrap();
    }
}

#[test]
fn alloc_free_of_one_object_in_a_loop_keeps_its_arena() {
    // bpo-37257: without keeping the last usable arena, each iteration
    // would map and unmap one.
    for g in super::GEOMETRIES {
        let mut c = Pymalloc::new(g);
        let l = Layout::from_size_align(24, 8).unwrap();
        for _ in 0..scale(1000, 20) {
            let b = alloc(&mut c, l);
            free(&mut c, b, l);
        }
        let s = c.stats();
        assert_eq!(
            (
                s.arenas_allocated_total,
                s.arenas_current,
                s.arenas_reclaimed
            ),
            (1, 1, 0),
            "{g:?}"
        );
        assert_eq!(
            s.pools_empty,
            g.pools_per_arena() - usize::from(s.bytes.arena_alignment > 0)
        );
    }
}

#[test]
fn a_pool_whose_only_block_is_freed_goes_straight_from_full_to_empty() {
    // TINY's 512-byte class has one block per pool: a pool is full on its
    // first allocation and empty on its first free, never in the ring.
    let g = Geometry::TINY;
    let mut c = Pymalloc::new(g);
    let l = Layout::from_size_align(500, 16).unwrap();
    let idx = g.class_of(500, 16).unwrap();
    let b = alloc(&mut c, l);
    let p: *mut Pool = pool_of(b, &g);
    assert!(c.heap.ring_head(idx).is_null());
    assert_eq!(c.stats().pools_full, 1);
    free(&mut c, b, l);
    let v = pool(p);
    assert!(v.ref_count == 0 && !v.in_ring);
    assert_eq!(c.stats().pools_full, 0);
}
