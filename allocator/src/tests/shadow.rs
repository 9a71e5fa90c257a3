//! Seeded random sequences against a shadow model of the live blocks.
//!
//! The model knows every live block's address, layout, class and tag. After
//! each allocation it checks what the core handed out: non-null, aligned,
//! overlapping no live block, and (for pool blocks) on the block grid of a
//! pool initialised for the block's class. Before each free it checks the
//! block still holds its tag; after each `realloc` it checks the first
//! `min(old, new)` bytes came along. At a stride it compares the core's
//! accounting with the model: the byte identity, bytes requested live, raw
//! allocations live, and blocks in use per class.

use core::alloc::Layout;
use std::collections::BTreeMap;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::{check_core, fill, holds, scale, view, GEOMETRIES};
use crate::geometry::Geometry;
use crate::pool::pool_of;
use crate::pymalloc::Pymalloc;

/// A live block as the model sees it.
struct Block {
    ptr: *mut u8,
    layout: Layout,
    class: Option<usize>,
    tag: u64,
}

/// The shadow model.
struct Model {
    g: Geometry,
    live: Vec<Block>,
    /// Start address -> end address of every live block's extent (the whole
    /// block for pool blocks, the requested bytes for raw ones).
    extents: BTreeMap<usize, usize>,
    per_class: Vec<usize>,
    requested: usize,
    raw_allocs: usize,
    raw_bytes: usize,
    next_tag: u64,
}

impl Model {
    fn new(g: Geometry) -> Model {
        Model {
            g,
            live: Vec::new(),
            extents: BTreeMap::new(),
            per_class: vec![0; g.nclasses()],
            requested: 0,
            raw_allocs: 0,
            raw_bytes: 0,
            next_tag: 1,
        }
    }

    fn extent(&self, b: &Block) -> usize {
        match b.class {
            Some(idx) => self.g.class_size(idx),
            None => b.layout.size().max(1),
        }
    }

    /// Checks a block the core just handed out and records it with a fresh
    /// tag. `class` is the class it must be in: the layout's, except after
    /// a `realloc` that stayed in place, which keeps the old class.
    fn admit(&mut self, ptr: *mut u8, layout: Layout, class: Option<usize>, what: &str) -> Block {
        assert!(!ptr.is_null(), "{what} of {layout:?} returned null");
        let a = ptr as usize;
        assert_eq!(
            a % layout.align(),
            0,
            "{what} of {layout:?} returned misaligned {ptr:?}"
        );
        if let Some(idx) = class {
            let p = pool_of(ptr, &self.g);
            // SAFETY: the block is live, so its pool header is valid.
            let v = unsafe { view(p) };
            let (hdr, size) = (self.g.pool_header_size(), self.g.class_size(idx));
            let off = a - p as usize;
            assert_eq!(
                v.szidx as usize, idx,
                "{what}: {ptr:?} is in a pool of another class"
            );
            assert!(
                off >= hdr
                    && (off - hdr) % size == 0
                    && off + size <= hdr + self.g.blocks_per_pool(idx) * size,
                "{what}: {ptr:?} at offset {off} is off the block grid of its pool (class {idx})"
            );
            assert!(v.ref_count >= 1);
        }
        let tag = self.next_tag;
        self.next_tag += 1;
        let b = Block {
            ptr,
            layout,
            class,
            tag,
        };
        let end = a + self.extent(&b);
        if let Some((&s, &e)) = self.extents.range(..end).next_back() {
            assert!(
                e <= a,
                "{what}: [{a:#x}, {end:#x}) overlaps live block [{s:#x}, {e:#x})"
            );
        }
        self.extents.insert(a, end);
        match class {
            Some(idx) => self.per_class[idx] += 1,
            None => {
                self.raw_allocs += 1;
                self.raw_bytes += layout.size();
            }
        }
        self.requested += layout.size();
        b
    }

    /// Forgets a block about to be freed (or moved by realloc).
    fn retire(&mut self, b: &Block) {
        assert!(self.extents.remove(&(b.ptr as usize)).is_some());
        match b.class {
            Some(idx) => self.per_class[idx] -= 1,
            None => {
                self.raw_allocs -= 1;
                self.raw_bytes -= b.layout.size();
            }
        }
        self.requested -= b.layout.size();
    }

    /// Compares the core's accounting with the model.
    fn compare(&self, c: &Pymalloc, op: usize) {
        let s = c.stats();
        if let Err(e) = s.bytes.check() {
            panic!("op {op}: {e}");
        }
        assert_eq!(s.requested_live, self.requested, "op {op}: requested live");
        assert_eq!(
            s.raw_live_allocs, self.raw_allocs,
            "op {op}: raw allocations live"
        );
        assert_eq!(s.raw_live_bytes, self.raw_bytes, "op {op}: raw bytes live");
        for (idx, (cs, &n)) in s.classes().iter().zip(&self.per_class).enumerate() {
            assert_eq!(cs.blocks_in_use, n, "op {op}: blocks in use of class {idx}");
        }
    }
}

/// A request shape mixing every path: small sizes (including zero and the
/// class boundaries), raw sizes, and alignments the classes do and do not
/// guarantee.
fn random_layout(rng: &mut SmallRng, g: &Geometry) -> Layout {
    let (size, align) = match rng.random_range(0..100) {
        0..=64 => (rng.random_range(0..=512), 1 << rng.random_range(0..=3)),
        65..=74 => {
            let idx = rng.random_range(0..g.nclasses());
            (g.class_size(idx) + rng.random_range(0..=1), 8)
        }
        75..=82 => (rng.random_range(513..=3000), 8),
        83..=90 => (rng.random_range(0..=512), 16),
        91..=96 => (rng.random_range(0..=300), 32),
        97..=98 => (rng.random_range(0..=100), 64),
        _ => (rng.random_range(0..=64), 4096),
    };
    Layout::from_size_align(size, align).unwrap()
}

/// Runs `ops` random operations on a fresh core. The live count swings
/// between growth and drain phases of `phase` operations (up to about
/// `max_live` blocks), so pools fill, empty and arenas are released.
/// Accounting is compared every `stride` operations and the invariant
/// checker runs every `core_stride`.
fn run(
    g: Geometry,
    seed: u64,
    ops: usize,
    max_live: usize,
    phase: usize,
    stride: usize,
    core_stride: usize,
) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let mut c = Pymalloc::new(g);
    let mut m = Model::new(g);
    for op in 0..ops {
        let growing = (op / phase) % 2 == 0;
        let roll = rng.random_range(0..100);
        if roll < 8 && !m.live.is_empty() {
            // realloc to a new size, possibly across classes or paths.
            let i = rng.random_range(0..m.live.len());
            let new_size = match rng.random_range(0..10) {
                0 => rng.random_range(513..=2000),
                _ => rng.random_range(1..=600),
            };
            let old = m.live.swap_remove(i);
            // SAFETY: a live block of ours, readable for its layout's size.
            let intact = unsafe { holds(old.ptr, old.layout.size(), old.tag) };
            assert!(intact, "op {op}: block corrupted before realloc");
            m.retire(&old);
            // SAFETY: `old` is live with its layout; `new_size` is non-zero.
            let p = unsafe { c.realloc(old.ptr, old.layout, new_size) };
            let nl = Layout::from_size_align(new_size, old.layout.align()).unwrap();
            let class = match old.class {
                // In place: the block stays in its pool and class, which
                // must still hold the new size.
                Some(idx) if p == old.ptr => {
                    assert!(
                        new_size <= g.class_size(idx),
                        "op {op}: realloc kept a {}-byte block for {new_size} bytes",
                        g.class_size(idx)
                    );
                    Some(idx)
                }
                _ => g.class_of(new_size, nl.align()),
            };
            let mut b = m.admit(p, nl, class, "realloc");
            let kept = old.layout.size().min(new_size);
            // SAFETY: the new block is live for `new_size` >= `kept` bytes.
            let kept_ok = unsafe { holds(p, kept, old.tag) };
            assert!(
                kept_ok,
                "op {op}: realloc {:?} -> {new_size} lost bytes",
                old.layout
            );
            b.tag = old.tag;
            // SAFETY: as above.
            unsafe { fill(p, new_size, b.tag) };
            m.live.push(b);
        } else if m.live.is_empty()
            || (m.live.len() < max_live && rng.random_range(0..100) < if growing { 60 } else { 35 })
        {
            let l = random_layout(&mut rng, &g);
            let p = c.alloc(l);
            let b = m.admit(p, l, g.class_of(l.size(), l.align()), "alloc");
            // SAFETY: the block is live for `l.size()` bytes.
            unsafe { fill(p, l.size(), b.tag) };
            m.live.push(b);
        } else {
            let i = rng.random_range(0..m.live.len());
            let b = m.live.swap_remove(i);
            // SAFETY: a live block of ours, readable for its layout's size.
            let intact = unsafe { holds(b.ptr, b.layout.size(), b.tag) };
            assert!(intact, "op {op}: block {:?} corrupted", b.layout);
            m.retire(&b);
            // SAFETY: live, allocated by `c` with this layout.
            unsafe { c.dealloc(b.ptr, b.layout) };
        }
        if op % stride == 0 {
            m.compare(&c, op);
        }
        if op % core_stride == 0 {
            if let Err(e) = check_core(&c) {
                panic!("{g:?} seed {seed} op {op}: {e}");
            }
        }
    }
    m.compare(&c, ops);
    for b in std::mem::take(&mut m.live) {
        // SAFETY: a live block of ours.
        assert!(unsafe { holds(b.ptr, b.layout.size(), b.tag) });
        m.retire(&b);
        // SAFETY: live, allocated by `c` with this layout.
        unsafe { c.dealloc(b.ptr, b.layout) };
    }
    m.compare(&c, ops);
    check_core(&c).unwrap();
    let s = c.stats();
    assert!(
        s.arenas_current <= 1,
        "{g:?}: {} arenas left after freeing everything",
        s.arenas_current
    );
    assert_eq!(
        (s.requested_live, s.raw_live_allocs, s.blocks_in_use()),
        (0, 0, 0)
    );
}

#[test]
fn random_sequences_match_the_shadow_model() {
    // About 1.05M operations in all across the geometries.
    for (k, (g, ops)) in GEOMETRIES
        .into_iter()
        .zip([400_000, 400_000, 250_000])
        .enumerate()
    {
        run(
            g,
            0x5eed + k as u64,
            scale(ops, 300),
            3000,
            scale(20_000, 100),
            scale(997, 7),
            scale(20_011, 50),
        );
    }
}

#[test]
fn invariants_hold_after_every_operation() {
    for (k, g) in GEOMETRIES.into_iter().enumerate() {
        run(
            g,
            0xc0ffee + k as u64,
            scale(6000, 100),
            400,
            scale(700, 40),
            1,
            1,
        );
    }
}

#[test]
fn freed_blocks_are_reused() {
    for g in GEOMETRIES {
        let mut c = Pymalloc::new(g);
        let classes: Vec<usize> = if cfg!(miri) {
            // Few blocks per pool: Miri checks each access, slowly.
            vec![g.nclasses() / 2, g.nclasses() - 1]
        } else {
            (0..g.nclasses()).collect()
        };
        for idx in classes {
            let l = Layout::from_size_align(g.class_size(idx), 8).unwrap();
            let bpp = g.blocks_per_pool(idx);
            // Within one pool: freeing everything and allocating as many
            // again hands out exactly the same blocks.
            if bpp > 1 {
                let n = bpp - 1;
                let mut first: Vec<usize> = (0..n).map(|_| c.alloc(l) as usize).collect();
                for &b in first.iter().rev() {
                    // SAFETY: live blocks of ours with layout `l`.
                    unsafe { c.dealloc(b as *mut u8, l) };
                }
                let mut second: Vec<usize> = (0..n).map(|_| c.alloc(l) as usize).collect();
                first.sort_unstable();
                second.sort_unstable();
                assert_eq!(first, second, "{g:?} class {idx}: freed blocks not reused");
                for b in second {
                    // SAFETY: as above.
                    unsafe { c.dealloc(b as *mut u8, l) };
                }
            }
            // Over several pools: the second round maps no arena and carves
            // no pool.
            let n = scale(3 * bpp + 1, bpp + 1);
            let carved = |c: &Pymalloc| {
                c.arenas
                    .views()
                    .iter()
                    .map(|a| a.carved.len())
                    .sum::<usize>()
            };
            let blocks: Vec<*mut u8> = (0..n).map(|_| c.alloc(l)).collect();
            let (arenas, pools) = (c.stats().arenas_allocated_total, carved(&c));
            for (k, &b) in blocks.iter().enumerate() {
                if k % 2 == 0 {
                    // SAFETY: as above.
                    unsafe { c.dealloc(b, l) };
                }
            }
            for (k, &b) in blocks.iter().enumerate() {
                if k % 2 == 1 {
                    // SAFETY: as above.
                    unsafe { c.dealloc(b, l) };
                }
            }
            let again: Vec<*mut u8> = (0..n).map(|_| c.alloc(l)).collect();
            assert_eq!(
                c.stats().arenas_allocated_total,
                arenas,
                "{g:?} class {idx}: a new arena was mapped"
            );
            assert_eq!(
                carved(&c),
                pools,
                "{g:?} class {idx}: a new pool was carved"
            );
            assert_eq!(c.stats().classes[idx].blocks_in_use, n);
            for b in again {
                // SAFETY: as above.
                unsafe { c.dealloc(b, l) };
            }
            check_core(&c).unwrap();
        }
    }
}
