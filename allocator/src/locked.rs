//! `locked`: the pymalloc core behind one mutex taken around every call.
//!
//! This is what making pymalloc thread-safe with a plain lock costs: every
//! allocation and free pays an acquire/release pair, and under contention
//! threads queue on it. Compare with [`Gil`](crate::Gil), which amortises
//! one acquisition over a span of work.
//!
//! The core and its lock live at a stable address (`stable`), so that the
//! fork handlers can take the lock; the `Locked` value holds a pointer.

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::null_mut;

use crate::fork::{ForkHooks, HeldAcrossFork};
use crate::geometry::Geometry;
use crate::pymalloc::Pymalloc;
use crate::stable::StableHome;
use crate::stats::Stats;
use crate::sync::{lock, Mutex, MutexGuard};
use crate::PoolStats;

/// The shared state: the core behind its lock.
pub(crate) struct LockedCore {
    core: Mutex<Pymalloc>,
    /// The lock, held by the forking thread across `fork()`.
    fork: HeldAcrossFork<MutexGuard<'static, Pymalloc>>,
}

/// The pymalloc core with a lock around every call.
pub struct Locked {
    /// The core's geometry, readable without the lock.
    g: Geometry,
    home: StableHome<LockedCore>,
}

impl Locked {
    /// A `locked` allocator with geometry `g`. Nothing is mapped until the
    /// first allocation.
    #[cfg(not(loom))]
    pub const fn new(g: Geometry) -> Locked {
        Locked {
            g,
            home: StableHome::new(),
        }
    }

    /// Under loom the shared state is made at once, by the constructing
    /// thread: its publication (a plain atomic, see `stable`) is invisible
    /// to the model, so a state made by one model thread and used by
    /// another would look like a data race.
    #[cfg(loom)]
    pub fn new(g: Geometry) -> Locked {
        let l = Locked {
            g,
            home: StableHome::new(),
        };
        l.shared();
        l
    }

    /// The geometry this allocator runs.
    #[inline(always)]
    pub fn geometry(&self) -> Geometry {
        self.g
    }

    /// The shared state, created on first use; `None` when out of memory.
    #[inline(always)]
    fn shared(&self) -> Option<&LockedCore> {
        self.home.get(|| LockedCore {
            core: Mutex::new(Pymalloc::new(self.g)),
            fork: HeldAcrossFork::new(),
        })
    }

    /// The shared state of an allocator that handed out a block.
    #[inline(always)]
    fn owner_of(&self) -> &LockedCore {
        match self.home.existing() {
            Some(c) => c,
            None => crate::fatal("block freed to a `locked` allocator that never allocated"),
        }
    }

    /// Holds the lock (for `tcache`, which moves batches under one
    /// acquisition). Aborts if the core's first mapping (a page) fails.
    #[inline]
    pub(crate) fn core(&self) -> MutexGuard<'_, Pymalloc> {
        match self.shared() {
            Some(c) => lock(&c.core),
            None => crate::fatal("out of memory for the locked core"),
        }
    }
}

// SAFETY: every method takes the lock around the core, which upholds the
// GlobalAlloc contract itself: blocks are unique, sized and aligned per
// layout (size classes step by the geometry's alignment and larger
// alignments go to the raw allocator), and null signals failure.
unsafe impl GlobalAlloc for Locked {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.shared() {
            Some(c) => lock(&c.core).alloc(layout),
            None => null_mut(),
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller passes a live block of ours with its layout.
        unsafe { lock(&self.owner_of().core).dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded GlobalAlloc contract.
        unsafe { lock(&self.owner_of().core).realloc(ptr, layout, new_size) }
    }
}

impl PoolStats for Locked {
    fn stats(&self) -> Stats {
        match self.home.existing() {
            Some(c) => lock(&c.core).stats(),
            None => Stats::empty(self.g),
        }
    }
}

impl ForkHooks for LockedCore {
    fn lock_all(&self) {
        // SAFETY: a fork handler; the home outlives the hold (it leaves the
        // registry, which the handlers hold, before it is unmapped).
        unsafe {
            self.fork.hold(core::mem::transmute::<
                MutexGuard<'_, Pymalloc>,
                MutexGuard<'static, Pymalloc>,
            >(lock(&self.core)))
        }
    }

    unsafe fn parent(&self) {
        // SAFETY: a fork handler.
        unsafe { self.fork.release() }
    }

    unsafe fn child(&self) {
        // SAFETY: a fork handler; the forking thread held the lock, so the
        // core is as consistent as in the parent.
        unsafe { self.fork.release() }
    }
}
