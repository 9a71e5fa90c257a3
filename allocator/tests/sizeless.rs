//! Size-less free, as C's `free` and `malloc_usable_size` need it: from an
//! address alone, `arena_map` tells a pool block of ours (with its class
//! size) from anything else, and every allocator takes the block back with
//! the layout `(usable size, 1)`, keeping its accounting exact when the
//! block was requested at its class size.

use std::alloc::{GlobalAlloc, Layout, System};

use allocator::{arena_map, Geometry, Gil, Locked, PoolStats, Sharded, Tcache};

trait Subject: GlobalAlloc + PoolStats {}
impl<T: GlobalAlloc + PoolStats> Subject for T {}

/// Allocates every class at its class size and a few raw sizes, checks
/// what the map says about each block, frees the pool blocks by address
/// alone and checks that nothing is left.
fn round_trip(a: &dyn Subject, g: Geometry) {
    let mut blocks = Vec::new();
    for idx in 0..g.nclasses() {
        let size = g.class_size(idx);
        for _ in 0..3 {
            let l = Layout::from_size_align(size, 1).unwrap();
            // SAFETY: a non-zero size.
            let p = unsafe { a.alloc(l) };
            assert!(!p.is_null());
            assert!(arena_map::owns(p), "class {idx} block not found");
            // SAFETY: a live block of ours.
            assert_eq!(unsafe { arena_map::usable_size(p) }, Some(size));
            blocks.push(p);
        }
    }
    // Raw requests are not ours: they belong to the C library.
    for (size, align) in [(513, 8), (100_000, 8), (64, 64)] {
        let l = Layout::from_size_align(size, align).unwrap();
        // SAFETY: a non-zero size.
        let p = unsafe { a.alloc(l) };
        assert!(!p.is_null());
        // SAFETY: a live raw block: no arena of ours holds it.
        assert_eq!(unsafe { arena_map::usable_size(p) }, None, "{l:?}");
        // SAFETY: allocated just above with `l`.
        unsafe { a.dealloc(p, l) };
    }
    for p in blocks {
        // SAFETY: a live pool block of `a`, freed by its address alone.
        unsafe {
            let size = arena_map::usable_size(p).unwrap();
            a.dealloc(p, Layout::from_size_align(size, 1).unwrap());
        }
    }
    let s = a.stats();
    s.bytes.check().unwrap();
    assert_eq!(
        (
            s.requested_live,
            s.blocks_in_use() - s.extra.cached_blocks,
            s.raw_live_allocs
        ),
        (0, 0, 0),
        "{s}"
    );
}

/// One test, so that no other test of this binary maps an arena where
/// `a_released_arena_is_forgotten` looks for a forgotten one.
#[test]
fn size_less_free() {
    every_allocator_frees_by_address();
    foreign_addresses_are_not_ours();
    a_released_arena_is_forgotten();
}

fn every_allocator_frees_by_address() {
    for g in [Geometry::CLASSIC, Geometry::MODERN] {
        round_trip(&Locked::new(g), g);
        round_trip(&Gil::new(g), g);
        round_trip(&Tcache::new(g), g);
        round_trip(&Sharded::new(g), g);
    }
}

fn foreign_addresses_are_not_ours() {
    let l = Layout::from_size_align(48, 8).unwrap();
    // SAFETY: a non-zero size.
    let p = unsafe { System.alloc(l) };
    let on_stack = 7u64;
    for addr in [p as *const u8, &on_stack as *const u64 as *const u8] {
        assert!(!arena_map::owns(addr));
        // SAFETY: not in any arena of ours.
        assert_eq!(unsafe { arena_map::usable_size(addr) }, None);
    }
    // SAFETY: allocated above with `l`.
    unsafe { System.dealloc(p, l) };
}

fn a_released_arena_is_forgotten() {
    let g = Geometry::CLASSIC;
    let a = Locked::new(g);
    let l = Layout::from_size_align(64, 8).unwrap();
    // Fill more than one arena, so that freeing everything releases one
    // (the last usable arena is kept, as in CPython).
    let per_arena = g.pools_per_arena() * g.blocks_per_pool(g.class_of(64, 8).unwrap());
    // SAFETY: non-zero sizes; every block is freed once below.
    let blocks: Vec<_> = (0..2 * per_arena).map(|_| unsafe { a.alloc(l) }).collect();
    let first = blocks[0];
    for &p in &blocks {
        // SAFETY: allocated above with `l`.
        unsafe { a.dealloc(p, l) };
    }
    assert!(a.stats().arenas_reclaimed >= 1);
    drop(a);
    // Dropping the allocator unmapped every arena: none is ours any more.
    assert!(!arena_map::owns(first));
}
