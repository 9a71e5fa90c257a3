//! The pymalloc core: one heap over one set of arenas, plus the raw
//! allocator for what pools do not serve. Not thread-safe by itself: it is
//! the state that the `gil`, `locked` and `tcache` allocators protect with
//! their lock.
//!
//! Which path serves a block is decided from its `Layout` alone, which
//! `GlobalAlloc` passes to `dealloc` too, so no address-range check (CPython's
//! `address_in_range`) is needed: a layout the geometry maps to a class was
//! served from a pool, any other by the raw allocator.

use core::alloc::Layout;
use core::ptr::null_mut;

use crate::arena::Arenas;
use crate::geometry::Geometry;
use crate::heap::Heap;
use crate::os::raw;
use crate::pool::pool_of;
use crate::stats::Stats;

/// How a `realloc` is served; every allocator of the crate follows it.
pub(crate) enum ReallocPlan {
    /// The new size is not a valid layout: fail, leaving the block alone.
    Invalid,
    /// Same pool block: it still fits and shrinks by less than a quarter
    /// (CPython's `pymalloc_realloc` rule).
    InPlace,
    /// Both sizes belong to the raw allocator: its `realloc` keeps the bytes.
    Raw,
    /// Allocate `Layout`, copy `min(old, new)` bytes, free the old block.
    Move(Layout),
}

impl ReallocPlan {
    pub(crate) fn new(g: &Geometry, layout: Layout, new_size: usize) -> ReallocPlan {
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return ReallocPlan::Invalid;
        };
        match (
            g.class_of(layout.size(), layout.align()),
            g.class_of(new_size, layout.align()),
        ) {
            (Some(old), Some(_)) => {
                let class_size = g.class_size(old);
                if new_size <= class_size && 4 * new_size > 3 * class_size {
                    ReallocPlan::InPlace
                } else {
                    ReallocPlan::Move(new_layout)
                }
            }
            (None, None) => ReallocPlan::Raw,
            _ => ReallocPlan::Move(new_layout),
        }
    }
}

/// Copies the bytes valid in both blocks of a `ReallocPlan::Move`.
///
/// # Safety
/// `from` must be live for `old_size` bytes, `to` for `new_size`, distinct.
#[inline]
pub(crate) unsafe fn copy_for_realloc(
    from: *mut u8,
    old_size: usize,
    to: *mut u8,
    new_size: usize,
) {
    // SAFETY: caller's contract.
    unsafe { core::ptr::copy_nonoverlapping(from, to, old_size.min(new_size)) }
}

/// The pymalloc state that one lock protects.
pub(crate) struct Pymalloc {
    pub(crate) heap: Heap,
    pub(crate) arenas: Arenas,
    /// Bytes requested and not freed, small and raw.
    pub(crate) requested_live: usize,
    pub(crate) raw_live_allocs: usize,
    pub(crate) raw_live_bytes: usize,
}

impl Pymalloc {
    crate::const_fn! {
        pub(crate) fn new(g: Geometry) -> Pymalloc {
            Pymalloc {
                heap: Heap::new(g),
                arenas: Arenas::new(g),
                requested_live: 0,
                raw_live_allocs: 0,
                raw_live_bytes: 0,
            }
        }
    }

    #[inline(always)]
    pub(crate) fn geometry(&self) -> &Geometry {
        &self.heap.g
    }

    /// Allocates a block of class `idx` (no accounting of requested bytes).
    #[inline(always)]
    pub(crate) fn alloc_class(&mut self, idx: usize) -> *mut u8 {
        // SAFETY: `idx` comes from the geometry's `class_of`; we own heap and arenas.
        unsafe { self.heap.alloc(idx, &mut self.arenas) }
    }

    /// Frees a block of a class (no accounting of requested bytes).
    ///
    /// # Safety
    /// `ptr` must be a live block of this core's pools.
    #[inline(always)]
    pub(crate) unsafe fn free_class(&mut self, ptr: *mut u8) {
        let p = pool_of(ptr, &self.heap.g);
        // SAFETY: the block is ours, so its pool is one of our heap's.
        unsafe { self.heap.free(p, ptr, &mut self.arenas) }
    }

    /// `GlobalAlloc::alloc` for the core.
    #[inline]
    pub(crate) fn alloc(&mut self, layout: Layout) -> *mut u8 {
        let b = match self.heap.g.class_of(layout.size(), layout.align()) {
            Some(idx) => self.alloc_class(idx),
            None => self.raw_alloc(layout),
        };
        if !b.is_null() {
            self.requested_live += layout.size();
        }
        b
    }

    /// `GlobalAlloc::dealloc` for the core.
    ///
    /// # Safety
    /// `ptr` must be live from this core's `alloc`/`realloc` with `layout`.
    #[inline]
    pub(crate) unsafe fn dealloc(&mut self, ptr: *mut u8, layout: Layout) {
        self.requested_live = self.requested_live.wrapping_sub(layout.size());
        if self
            .heap
            .g
            .class_of(layout.size(), layout.align())
            .is_some()
        {
            // SAFETY: the layout maps to a class, so the block is a pool block.
            unsafe { self.free_class(ptr) }
        } else {
            self.raw_live_allocs = self.raw_live_allocs.wrapping_sub(1);
            self.raw_live_bytes = self.raw_live_bytes.wrapping_sub(layout.size());
            // SAFETY: a layout without a class was served raw.
            unsafe { raw::dealloc(ptr) }
        }
    }

    fn raw_alloc(&mut self, layout: Layout) -> *mut u8 {
        let b = raw::alloc(layout);
        if !b.is_null() {
            self.raw_live_allocs += 1;
            self.raw_live_bytes += layout.size();
        }
        b
    }

    /// `GlobalAlloc::realloc` for the core: in place when the class still
    /// fits (CPython's rule), by the raw allocator's realloc when both old
    /// and new are raw, else allocate, copy `min(old, new)` bytes, free.
    /// On failure the old block is untouched and null is returned.
    ///
    /// # Safety
    /// `ptr` must be live with `layout`; `new_size` must be non-zero.
    pub(crate) unsafe fn realloc(
        &mut self,
        ptr: *mut u8,
        layout: Layout,
        new_size: usize,
    ) -> *mut u8 {
        let delta = |v: usize| v.wrapping_sub(layout.size()).wrapping_add(new_size);
        match ReallocPlan::new(&self.heap.g, layout, new_size) {
            ReallocPlan::Invalid => null_mut(),
            ReallocPlan::InPlace => {
                self.requested_live = delta(self.requested_live);
                ptr
            }
            ReallocPlan::Raw => {
                // SAFETY: the block is raw with `layout`; the new size is valid.
                let b = unsafe { raw::realloc(ptr, layout, new_size) };
                if !b.is_null() {
                    self.requested_live = delta(self.requested_live);
                    self.raw_live_bytes = delta(self.raw_live_bytes);
                }
                b
            }
            ReallocPlan::Move(new_layout) => {
                let b = self.alloc(new_layout);
                if !b.is_null() {
                    // SAFETY: both blocks are live and distinct; the old one
                    // is freed once, after the copy.
                    unsafe {
                        copy_for_realloc(ptr, layout.size(), b, new_size);
                        self.dealloc(ptr, layout);
                    }
                }
                b
            }
        }
    }

    /// The `_debugmallocstats` breakdown.
    pub(crate) fn stats(&self) -> Stats {
        let mut s = Stats::empty(self.heap.g);
        self.arenas.account(&mut s);
        s.requested_live = self.requested_live;
        s.raw_live_allocs = self.raw_live_allocs;
        s.raw_live_bytes = self.raw_live_bytes;
        s
    }
}
