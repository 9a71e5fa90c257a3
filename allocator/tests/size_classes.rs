//! Size classes and alignment, observed through the public allocators.
//!
//! Which path served a request shows in `stats()`: a pool block counts in
//! its class's `blocks_in_use`, a raw one in `raw_live_allocs`. Every
//! returned pointer is checked against the layout's alignment, and written
//! over its whole size.

use std::alloc::{GlobalAlloc, Layout};

use allocator::geometry::SMALL_REQUEST_THRESHOLD;
use allocator::{Geometry, Gil, Locked, PoolStats};

/// Where a request was served.
#[derive(Debug, PartialEq, Eq)]
enum Served {
    /// From a pool, in a block of this many bytes.
    Pool(usize),
    Raw,
}

/// Allocates `layout` from `a`, checks alignment, writes it, sees which
/// path served it, frees it.
fn serve<A: GlobalAlloc + PoolStats>(a: &A, layout: Layout) -> Served {
    let before = a.stats();
    // SAFETY: any layout may be passed to `alloc`; zero sizes are defined by
    // these allocators (DESIGN.md §8).
    let p = unsafe { a.alloc(layout) };
    assert!(!p.is_null(), "{layout:?}");
    assert_eq!(
        p as usize % layout.align(),
        0,
        "{layout:?} served misaligned at {p:?}"
    );
    // SAFETY: the block is live for `layout.size()` bytes.
    unsafe { p.write_bytes(0x5A, layout.size()) };
    let after = a.stats();
    after.bytes.check().unwrap();
    assert_eq!(after.requested_live - before.requested_live, layout.size());
    let grew: Vec<usize> = (0..after.nclasses)
        .filter(|&i| after.classes[i].blocks_in_use != before.classes[i].blocks_in_use)
        .collect();
    let served = match (
        grew.as_slice(),
        after.raw_live_allocs - before.raw_live_allocs,
    ) {
        ([idx], 0) => {
            assert_eq!(
                after.classes[*idx].blocks_in_use,
                before.classes[*idx].blocks_in_use + 1
            );
            Served::Pool(after.classes[*idx].size)
        }
        ([], 1) => Served::Raw,
        other => panic!("{layout:?}: served by neither or both paths: {other:?}"),
    };
    // SAFETY: live, allocated with `layout`.
    unsafe { a.dealloc(p, layout) };
    assert_eq!(a.stats().requested_live, before.requested_live);
    served
}

fn check_geometry<A: GlobalAlloc + PoolStats>(a: &A, g: Geometry) {
    let l = |size, align| Layout::from_size_align(size, align).unwrap();
    assert_eq!(serve(a, l(42, 8)), Served::Pool(48), "42 -> 48 in {g:?}");
    assert_eq!(serve(a, l(SMALL_REQUEST_THRESHOLD, 8)), Served::Pool(512));
    assert_eq!(
        serve(a, l(SMALL_REQUEST_THRESHOLD + 1, 8)),
        Served::Raw,
        "513 goes raw"
    );
    assert_eq!(
        serve(a, l(0, 1)),
        Served::Pool(g.alignment),
        "zero size gets the smallest class"
    );
    // Every size up to the threshold gets the smallest class that holds it.
    for size in 1..=SMALL_REQUEST_THRESHOLD {
        let want = size.next_multiple_of(g.alignment);
        assert_eq!(
            serve(a, l(size, 8)),
            Served::Pool(want),
            "size {size} in {g:?}"
        );
    }
    // Alignments: what a class guarantees stays in the pools, the rest goes
    // raw, and every one is honoured.
    for size in [0, 1, 8, 42, 100, 512, 513, 5000] {
        for align in [8, 16, 32, 64, 4096] {
            let got = serve(a, l(size, align));
            if size <= SMALL_REQUEST_THRESHOLD && align <= g.alignment {
                assert!(
                    matches!(got, Served::Pool(_)),
                    "{size}/{align} in {g:?}: {got:?}"
                );
            } else {
                assert_eq!(got, Served::Raw, "{size}/{align} in {g:?}");
            }
        }
    }
    // Many live aligned blocks at once, not just one at a time.
    for align in [8, 16, 32, 4096] {
        let layout = l(24, align);
        // SAFETY: a valid non-zero layout.
        let ps: Vec<*mut u8> = (0..200).map(|_| unsafe { a.alloc(layout) }).collect();
        for &p in &ps {
            assert!(
                !p.is_null() && p as usize % align == 0,
                "{p:?} for {layout:?}"
            );
        }
        for p in ps {
            // SAFETY: live, allocated with `layout`.
            unsafe { a.dealloc(p, layout) };
        }
    }
    let s = a.stats();
    assert_eq!(
        (s.requested_live, s.raw_live_allocs, s.blocks_in_use()),
        (0, 0, 0)
    );
}

#[test]
fn locked_maps_sizes_and_honours_alignment() {
    for g in [Geometry::CLASSIC, Geometry::MODERN] {
        check_geometry(&Locked::new(g), g);
    }
}

#[test]
fn gil_maps_sizes_and_honours_alignment() {
    for g in [Geometry::CLASSIC, Geometry::MODERN] {
        let a = Gil::new(g);
        // Once without holding the GIL (taken per call), once inside a span.
        check_geometry(&a, g);
        let _span = a.hold();
        check_geometry(&a, g);
    }
}
