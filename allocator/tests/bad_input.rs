//! Bad input (DESIGN.md §8), through `Locked` and `Gil` in both geometries:
//! sizes near `isize::MAX` get null without a panic or a wrapped size;
//! `realloc` across classes and paths keeps the first `min(old, new)`
//! bytes; a failed `realloc` leaves the old block intact and freeable;
//! zero-size layouts passed directly get unique, freeable blocks.

mod support;

use std::alloc::{GlobalAlloc, Layout};

use allocator::{Geometry, Gil, Locked, PoolStats};
use support::{fill, holds};

/// The largest size `Layout` accepts at alignment 8.
const HUGE: usize = isize::MAX as usize - 7;

fn for_each_allocator(f: impl Fn(&dyn Subject, Geometry)) {
    for g in [Geometry::CLASSIC, Geometry::MODERN] {
        f(&Locked::new(g), g);
        let gil = Gil::new(g);
        f(&gil, g);
        let _span = gil.hold();
        f(&gil, g);
    }
}

/// An allocator with stats, as a trait object.
trait Subject: GlobalAlloc + PoolStats {}
impl<T: GlobalAlloc + PoolStats> Subject for T {}

fn nothing_live(a: &dyn Subject) {
    let s = a.stats();
    s.bytes.check().unwrap();
    assert_eq!(
        (s.requested_live, s.raw_live_allocs, s.blocks_in_use()),
        (0, 0, 0),
        "{s}"
    );
}

#[test]
#[cfg_attr(miri, ignore = "Miri stops on a huge malloc instead of returning null")]
fn sizes_near_isize_max_return_null() {
    for_each_allocator(|a, g| {
        for (size, align) in [
            (HUGE, 8),
            (HUGE, 1),
            (isize::MAX as usize - 4095, 4096),
            (1 << 62, 16),
        ] {
            let l = Layout::from_size_align(size, align).unwrap();
            // SAFETY: a valid, non-zero layout.
            let p = unsafe { a.alloc(l) };
            assert!(p.is_null(), "{g:?}: {l:?} was served at {p:?}");
            // SAFETY: as above.
            let z = unsafe { a.alloc_zeroed(l) };
            assert!(z.is_null(), "{g:?}: zeroed {l:?} was served");
        }
        nothing_live(a);
    });
}

#[test]
fn realloc_across_classes_keeps_the_prefix() {
    for_each_allocator(|a, g| {
        // (old size, new size, alignment): pool -> raw, raw -> pool, within a
        // class in place, pool -> pool across classes, raw -> raw, and
        // alignments only the raw allocator serves.
        let cases = [
            (16, 600, 8),
            (600, 16, 8),
            (48, 40, 8),
            (16, 500, 8),
            (500, 16, 8),
            (600, 5000, 8),
            (5000, 600, 8),
            (24, 300, 32),
            (300, 24, 4096),
            (0, 100, 8),
        ];
        for (k, (old, new, align)) in cases.into_iter().enumerate() {
            let l = Layout::from_size_align(old, align).unwrap();
            let t = 0xC0DE_0000 + k as u64;
            // SAFETY: a valid layout; zero sizes are defined by these allocators.
            let p = unsafe { a.alloc(l) };
            assert!(!p.is_null());
            // SAFETY: live for `old` bytes.
            unsafe { fill(p, old, t) };
            // SAFETY: live with `l`; `new` is non-zero and valid at `align`.
            let q = unsafe { a.realloc(p, l, new) };
            assert!(!q.is_null(), "{g:?}: realloc {old} -> {new} failed");
            assert_eq!(
                q as usize % align,
                0,
                "{g:?}: realloc {old} -> {new} misaligned"
            );
            // SAFETY: live for `new` bytes.
            let kept = unsafe { holds(q, old.min(new), t) };
            assert!(
                kept,
                "{g:?}: realloc {old} -> {new} (align {align}) lost bytes"
            );
            // SAFETY: live for `new` bytes.
            unsafe { q.write_bytes(0xEE, new) };
            if (old, new) == (48, 40) {
                assert_eq!(q, p, "{g:?}: 48 -> 40 stays in its 48-byte block");
            }
            assert_eq!(a.stats().requested_live, new);
            // SAFETY: live with the new size at the old alignment.
            unsafe { a.dealloc(q, Layout::from_size_align(new, align).unwrap()) };
        }
        nothing_live(a);
    });
}

#[test]
#[cfg_attr(miri, ignore = "Miri stops on a huge malloc instead of returning null")]
fn failed_realloc_leaves_the_old_block_intact() {
    for_each_allocator(|a, g| {
        for (size, align) in [(48, 8), (512, 8), (600, 8), (64, 4096)] {
            let l = Layout::from_size_align(size, align).unwrap();
            let t = 0xFA11_0000 + size as u64;
            // SAFETY: a valid non-zero layout.
            let p = unsafe { a.alloc(l) };
            assert!(!p.is_null());
            // SAFETY: live for `size` bytes.
            unsafe { fill(p, size, t) };
            let before = a.stats();
            let huge = isize::MAX as usize - (align - 1);
            // SAFETY: live with `l`; `huge` rounded up to `align` does not
            // exceed isize::MAX, as GlobalAlloc::realloc requires.
            let q = unsafe { a.realloc(p, l, huge) };
            assert!(q.is_null(), "{g:?}: realloc {size} -> {huge} succeeded");
            // SAFETY: the old block is still live (the realloc failed).
            let intact = unsafe { holds(p, size, t) };
            assert!(intact, "{g:?}: failed realloc damaged the block");
            assert_eq!(
                a.stats(),
                before,
                "{g:?}: failed realloc changed the accounting"
            );
            // Still usable and freeable with its old layout.
            // SAFETY: as above.
            unsafe {
                fill(p, size, !t);
                a.dealloc(p, l);
            }
        }
        nothing_live(a);
    });
}

#[test]
fn zero_size_layouts_get_unique_freeable_blocks() {
    for_each_allocator(|a, g| {
        for align in [1, 8, 16, 32, 4096] {
            let l = Layout::from_size_align(0, align).unwrap();
            // SAFETY: zero-size layouts are defined by these allocators (DESIGN.md §8).
            let mut ps: Vec<*mut u8> = (0..100).map(|_| unsafe { a.alloc(l) }).collect();
            assert!(
                ps.iter().all(|p| !p.is_null() && *p as usize % align == 0),
                "{g:?} align {align}"
            );
            ps.sort_unstable();
            ps.dedup();
            assert_eq!(
                ps.len(),
                100,
                "{g:?} align {align}: zero-size blocks not unique"
            );
            for p in ps {
                // SAFETY: live, allocated with `l`.
                unsafe { a.dealloc(p, l) };
            }
        }
        nothing_live(a);
    });
}
