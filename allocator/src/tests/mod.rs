//! In-crate tests of the pymalloc core, with access to its internals.
//!
//! [`check_core`] is the invariant checker: it walks the arena table and
//! `usable_arenas` (through `arena::walk`), every `usedpools` ring, and
//! every carved pool's block lists, and says what is wrong. The transition
//! tests (`transitions`) drive the core step by step and look at where each
//! pool went; the shadow tests (`shadow`) run seeded random sequences
//! against a model of the live blocks. Both call the checker after every
//! operation, or at a fixed stride where the sequence is long.
//!
//! Under Miri the iteration counts shrink (see [`scale`]) so the whole
//! module runs in minutes; the multi-threaded tests live in `tests/` and are
//! not run under Miri.

mod shadow;
mod transitions;

use std::collections::HashSet;

use crate::geometry::Geometry;
use crate::pool::{Pool, DUMMY_SZIDX};
use crate::pymalloc::Pymalloc;
use crate::sync::Ordering;

/// `n` normally, `miri` under Miri, whose interpreter is ~1000× slower.
pub(crate) const fn scale(n: usize, miri: usize) -> usize {
    if cfg!(miri) {
        miri
    } else {
        n
    }
}

/// The geometries every randomized test runs.
pub(crate) const GEOMETRIES: [Geometry; 3] = [Geometry::CLASSIC, Geometry::MODERN, Geometry::TINY];

/// A pool's header fields, read for checks.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PoolView {
    pub(crate) ref_count: usize,
    pub(crate) szidx: u32,
    pub(crate) in_ring: bool,
    pub(crate) freeblock: *mut u8,
    pub(crate) nextpool: *mut Pool,
    pub(crate) prevpool: *mut Pool,
    pub(crate) arenaindex: u32,
    pub(crate) nextoffset: usize,
}

/// Reads the header of `p`.
///
/// # Safety
/// `p` must be a carved pool of a live arena.
pub(crate) unsafe fn view(p: *mut Pool) -> PoolView {
    // SAFETY: the caller guarantees a valid header.
    unsafe {
        PoolView {
            ref_count: (*p).ref_count.load(Ordering::Relaxed) as usize,
            szidx: (*p).szidx.load(Ordering::Relaxed),
            in_ring: (*p).in_ring.get(),
            freeblock: (*p).freeblock.get(),
            nextpool: (*p).nextpool.get(),
            prevpool: (*p).prevpool.get(),
            arenaindex: (*p).arenaindex,
            nextoffset: (*p).nextoffset.get() as usize,
        }
    }
}

/// Checks the block lists of an in-use pool of class `idx`: every block
/// on its free list lies on the pool's block grid below `nextoffset`, no
/// block is listed twice, and free + in use + never used = blocks per pool.
///
/// # Safety
/// `p` must be a carved pool of a live arena with `ref_count > 0`.
unsafe fn check_pool_blocks(p: *mut Pool, idx: usize, g: &Geometry) -> Result<(), String> {
    // SAFETY: as the caller guarantees.
    let v = unsafe { view(p) };
    let (hdr, size, n) = (
        g.pool_header_size(),
        g.class_size(idx),
        g.blocks_per_pool(idx),
    );
    let base = p as usize;
    if v.nextoffset < hdr || (v.nextoffset - hdr) % size != 0 || v.nextoffset > hdr + n * size {
        return Err(format!(
            "pool {p:?} class {idx}: nextoffset {} off the block grid",
            v.nextoffset
        ));
    }
    let bumped = (v.nextoffset - hdr) / size;
    let mut seen = HashSet::new();
    let mut b = v.freeblock;
    while !b.is_null() {
        let off = (b as usize).wrapping_sub(base);
        if off < hdr || off >= v.nextoffset || (off - hdr) % size != 0 {
            return Err(format!(
                "pool {p:?} class {idx}: free block at offset {off} off the grid below {}",
                v.nextoffset
            ));
        }
        if !seen.insert(off) || seen.len() > n {
            return Err(format!(
                "pool {p:?} class {idx}: free list revisits offset {off}"
            ));
        }
        // SAFETY: `b` is a free block of this pool (checked above), whose
        // first word is the list link.
        b = unsafe { b.cast::<*mut u8>().read() };
    }
    if seen.len() + v.ref_count != bumped {
        return Err(format!(
            "pool {p:?} class {idx}: {} free + {} in use but {bumped} blocks handed out by bumping",
            seen.len(),
            v.ref_count
        ));
    }
    Ok(())
}

/// Checks every invariant of a core: the arenas (see `Arenas::check`),
/// each `usedpools` ring (doubly linked, one class, every member used and
/// flagged `in_ring`), and every carved pool (empty ones on their arena's
/// `freepools`, full ones off every ring, used ones in their class's ring,
/// block lists consistent with `ref_count`).
pub(crate) fn check_core(c: &Pymalloc) -> Result<(), String> {
    c.arenas.check()?;
    let g = *c.geometry();
    let mut ringed = HashSet::new();
    for idx in 0..g.nclasses() {
        let head = c.heap.ring_head(idx);
        if head.is_null() {
            continue;
        }
        let mut p = head;
        loop {
            // SAFETY: ring members are carved pools of live arenas (verified
            // below against the arena walk).
            let v = unsafe { view(p) };
            // SAFETY: as above, for the next member.
            let back = unsafe { view(v.nextpool).prevpool };
            if back != p {
                return Err(format!("ring {idx}: {p:?}.next.prev is {back:?}"));
            }
            if v.szidx as usize != idx || !v.in_ring || v.freeblock.is_null() {
                return Err(format!("ring {idx}: member {p:?} is {v:?}"));
            }
            if v.ref_count == 0 || v.ref_count >= g.blocks_per_pool(idx) {
                return Err(format!(
                    "ring {idx}: member {p:?} with {} of {} blocks in use is not a used pool",
                    v.ref_count,
                    g.blocks_per_pool(idx)
                ));
            }
            if !ringed.insert(p) {
                return Err(format!("ring {idx}: {p:?} reached twice"));
            }
            p = v.nextpool;
            if p == head {
                break;
            }
        }
    }
    let mut carved_ringed = 0;
    for a in c.arenas.views() {
        for &p in &a.carved {
            // SAFETY: carved pools of a live arena have valid headers.
            let v = unsafe { view(p) };
            if v.arenaindex != a.index {
                return Err(format!(
                    "pool {p:?} in arena {} says arena {}",
                    a.index, v.arenaindex
                ));
            }
            let on_free = a.freepools.contains(&p);
            if v.ref_count == 0 {
                if !on_free || v.in_ring {
                    return Err(format!(
                        "empty pool {p:?} (on freepools: {on_free}) is {v:?}"
                    ));
                }
                continue;
            }
            if on_free {
                return Err(format!("pool {p:?} with blocks in use is on freepools"));
            }
            if v.szidx == DUMMY_SZIDX || v.szidx as usize >= g.nclasses() {
                return Err(format!("pool {p:?} in use with class {}", v.szidx));
            }
            let idx = v.szidx as usize;
            let n = g.blocks_per_pool(idx);
            let full = v.ref_count == n;
            if v.ref_count > n || full == v.in_ring || full != v.freeblock.is_null() {
                return Err(format!("pool {p:?} of class {idx} ({n} blocks) is {v:?}"));
            }
            if v.in_ring != ringed.contains(&p) {
                return Err(format!(
                    "pool {p:?} says in_ring {} but the rings disagree",
                    v.in_ring
                ));
            }
            carved_ringed += usize::from(v.in_ring);
            // SAFETY: a carved pool of a live arena with blocks in use.
            unsafe { check_pool_blocks(p, idx, &g)? };
        }
    }
    if carved_ringed != ringed.len() {
        return Err(format!(
            "{} pools in rings but only {carved_ringed} of them are carved used pools",
            ringed.len()
        ));
    }
    c.stats().bytes.check()
}

/// Fills `len` bytes at `p` with the pattern of `tag`: the tag's eight
/// bytes, then its low byte repeated. The pattern at an offset does not
/// depend on the block's length, so a prefix survives `realloc`.
///
/// # Safety
/// `p` must be writable for `len` bytes.
pub(crate) unsafe fn fill(p: *mut u8, len: usize, tag: u64) {
    let head = tag.to_le_bytes();
    let k = len.min(8);
    // SAFETY: both writes stay within the `len` bytes the caller gave us.
    unsafe {
        core::ptr::copy_nonoverlapping(head.as_ptr(), p, k);
        p.add(k).write_bytes(tag as u8, len - k);
    }
}

/// Whether the first `len` bytes at `p` still hold the pattern of `tag`.
///
/// # Safety
/// `p` must be readable for `len` bytes.
pub(crate) unsafe fn holds(p: *const u8, len: usize, tag: u64) -> bool {
    // SAFETY: the caller guarantees `len` readable bytes.
    let s = unsafe { core::slice::from_raw_parts(p, len) };
    let k = len.min(8);
    s[..k] == tag.to_le_bytes()[..k] && s[k..].iter().all(|&b| b == tag as u8)
}
