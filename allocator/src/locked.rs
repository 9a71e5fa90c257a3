//! `locked`: the pymalloc core behind one mutex taken around every call.
//!
//! This is what making pymalloc thread-safe with a plain lock costs: every
//! allocation and free pays an acquire/release pair, and under contention
//! threads queue on it. Compare with [`Gil`](crate::Gil), which amortises
//! one acquisition over a span of work.

use core::alloc::{GlobalAlloc, Layout};

use crate::geometry::Geometry;
use crate::pymalloc::Pymalloc;
use crate::stats::Stats;
use crate::sync::{lock, Mutex, MutexGuard};
use crate::PoolStats;

/// The pymalloc core with a lock around every call.
pub struct Locked {
    /// Copy of the core's geometry, readable without the lock.
    g: Geometry,
    core: Mutex<Pymalloc>,
}

impl Locked {
    crate::const_fn! {
        /// A `locked` allocator with geometry `g`. Nothing is mapped until
        /// the first allocation.
        pub fn new(g: Geometry) -> Locked {
            Locked { g, core: Mutex::new(Pymalloc::new(g)) }
        }
    }

    /// The geometry this allocator runs.
    #[inline(always)]
    pub fn geometry(&self) -> Geometry {
        self.g
    }

    /// Holds the lock (for `tcache`, which moves batches under one acquisition).
    #[inline]
    pub(crate) fn core(&self) -> MutexGuard<'_, Pymalloc> {
        lock(&self.core)
    }
}

// SAFETY: every method takes the lock around the core, which upholds the
// GlobalAlloc contract itself: blocks are unique, sized and aligned per
// layout (size classes step by the geometry's alignment and larger
// alignments go to the raw allocator), and null signals failure.
unsafe impl GlobalAlloc for Locked {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        lock(&self.core).alloc(layout)
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller passes a live block of ours with its layout.
        unsafe { lock(&self.core).dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded GlobalAlloc contract.
        unsafe { lock(&self.core).realloc(ptr, layout, new_size) }
    }
}

impl PoolStats for Locked {
    fn stats(&self) -> Stats {
        lock(&self.core).stats()
    }
}
