//! `tcache`: per-thread caches of blocks in front of the `locked` core.
//!
//! The glibc tcache / tcmalloc thread-cache idea: each thread keeps, per
//! size class, a LIFO bin of free blocks. Allocation pops from the bin;
//! when it is empty, one lock acquisition moves a *batch* of blocks (default
//! 32) from the core into it. Free pushes onto the bin; when the bin holds
//! twice the batch, one acquisition gives a batch back. Blocks have no owner:
//! a block freed by another thread simply joins that thread's bin. When a
//! thread exits, its bins are flushed back to the core and its cache is
//! kept for the next thread. Caching alone, no lock-free machinery: this
//! shows how far it gets, next to `locked` (no cache) and `sharded`.

use core::alloc::Layout;
use core::ptr::null_mut;

use crate::geometry::{Geometry, MAX_CLASSES};
use crate::locked::Locked;
use crate::os;
use crate::pymalloc::{copy_for_realloc, ReallocPlan};
use crate::stats::Stats;
use crate::sync::{AtomicPtr, AtomicU32, AtomicUsize, Ordering};

/// Blocks moved per lock acquisition unless configured otherwise.
pub const DEFAULT_BATCH: usize = 32;

const IN_USE: u32 = 0;
const FREE: u32 = 1;

/// One size class's cached blocks, linked through their first word.
#[derive(Clone, Copy)]
struct Bin {
    head: *mut u8,
    count: usize,
}

/// One thread's cache.
pub(crate) struct ThreadCache {
    bins: [Bin; MAX_CLASSES],
    /// [`IN_USE`] or [`FREE`] (kept for the next thread).
    state: AtomicU32,
    next_all: *mut ThreadCache,
    // Written by the owning thread only (load + store), read by `stats`.
    /// Blocks in the bins.
    cached: AtomicUsize,
    /// Small-request bytes allocated minus freed by this thread.
    requested: AtomicUsize,
}

#[inline(always)]
fn add(c: &AtomicUsize, d: usize) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(d), Ordering::Relaxed);
}

/// The shared part: the locked core and the list of caches.
pub(crate) struct TcacheCore {
    core: Locked,
    batch: usize,
    caches: AtomicPtr<ThreadCache>,
}

// SAFETY: caches are handed to one thread at a time through their `state`
// CAS; the core is behind its lock; the list is append-only.
unsafe impl Sync for TcacheCore {}
// SAFETY: as above.
unsafe impl Send for TcacheCore {}

impl TcacheCore {
    pub(crate) fn new(g: Geometry, batch: usize) -> TcacheCore {
        TcacheCore {
            core: Locked::new(g),
            batch: batch.max(1),
            caches: AtomicPtr::new(null_mut()),
        }
    }

    fn cache_bytes() -> usize {
        core::mem::size_of::<ThreadCache>().next_multiple_of(4096)
    }

    /// A cache for the calling thread: a free one if any, else a new one.
    pub(crate) fn attach(&self) -> *mut ThreadCache {
        let mut c = self.caches.load(Ordering::Acquire);
        while !c.is_null() {
            // SAFETY: caches stay mapped while the core lives.
            unsafe {
                if (*c)
                    .state
                    .compare_exchange(FREE, IN_USE, Ordering::Acquire, Ordering::Relaxed)
                    .is_ok()
                {
                    return c;
                }
                c = (*c).next_all;
            }
        }
        let mem = os::map(Self::cache_bytes()).cast::<ThreadCache>();
        if mem.is_null() {
            return null_mut();
        }
        // SAFETY: fresh page-aligned memory large enough for a cache.
        unsafe {
            mem.write(ThreadCache {
                bins: [Bin {
                    head: null_mut(),
                    count: 0,
                }; MAX_CLASSES],
                state: AtomicU32::new(IN_USE),
                next_all: null_mut(),
                cached: AtomicUsize::new(0),
                requested: AtomicUsize::new(0),
            });
            let mut head = self.caches.load(Ordering::Relaxed);
            loop {
                (*mem).next_all = head;
                match self.caches.compare_exchange_weak(
                    head,
                    mem,
                    Ordering::Release,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => break,
                    Err(now) => head = now,
                }
            }
        }
        mem
    }

    /// Flushes every bin of an exiting thread and frees its cache for reuse.
    ///
    /// # Safety
    /// `c` must be the caller's cache from `attach`, unused afterwards.
    pub(crate) unsafe fn detach(&self, c: *mut ThreadCache) {
        // SAFETY: `c` is ours until the state store.
        unsafe {
            {
                let mut core = self.core.core();
                for idx in 0..MAX_CLASSES {
                    let n = (*c).bins[idx].count;
                    Self::give_back(&mut core, c, idx, n);
                }
            }
            (*c).state.store(FREE, Ordering::Release);
        }
    }

    /// Moves `n` blocks of bin `idx` back to the core.
    ///
    /// # Safety
    /// The caller owns `c` and holds the core's lock through `core`.
    unsafe fn give_back(
        core: &mut crate::pymalloc::Pymalloc,
        c: *mut ThreadCache,
        idx: usize,
        n: usize,
    ) {
        // SAFETY: bin blocks are free blocks of the core's pools, linked
        // through their first word.
        unsafe {
            let bin = &mut (*c).bins[idx];
            for _ in 0..n {
                let b = bin.head;
                bin.head = b.cast::<*mut u8>().read();
                core.free_class(b);
            }
            bin.count -= n;
            add(&(*c).cached, n.wrapping_neg());
        }
    }

    /// Allocates with cache `c`.
    ///
    /// # Safety
    /// `c` must be the calling thread's cache of this core.
    #[inline(always)]
    pub(crate) unsafe fn alloc(&self, c: *mut ThreadCache, layout: Layout) -> *mut u8 {
        let g = self.core.geometry();
        let Some(idx) = g.class_of(layout.size(), layout.align()) else {
            return self.core.core().alloc(layout);
        };
        // SAFETY: `c` is ours; its bins hold free blocks linked through
        // their first word.
        unsafe {
            let bin = &mut (*c).bins[idx];
            if bin.count == 0 && !self.refill(c, idx) {
                return null_mut();
            }
            let bin = &mut (*c).bins[idx];
            let b = bin.head;
            bin.head = b.cast::<*mut u8>().read();
            bin.count -= 1;
            add(&(*c).cached, usize::MAX);
            add(&(*c).requested, layout.size());
            b
        }
    }

    /// Fills bin `idx` with up to a batch of blocks under one acquisition.
    ///
    /// # Safety
    /// The caller owns `c`.
    #[inline(never)]
    unsafe fn refill(&self, c: *mut ThreadCache, idx: usize) -> bool {
        let mut core = self.core.core();
        // SAFETY: `c` is ours; fresh blocks from the core are free for us.
        unsafe {
            let bin = &mut (*c).bins[idx];
            let mut n = 0;
            while n < self.batch {
                let b = core.alloc_class(idx);
                if b.is_null() {
                    break;
                }
                b.cast::<*mut u8>().write(bin.head);
                bin.head = b;
                n += 1;
            }
            bin.count += n;
            add(&(*c).cached, n);
            n > 0
        }
    }

    /// Frees with cache `c`.
    ///
    /// # Safety
    /// `c` must be the calling thread's cache of this core; `ptr` a live
    /// block of this core with `layout`.
    #[inline(always)]
    pub(crate) unsafe fn dealloc(&self, c: *mut ThreadCache, ptr: *mut u8, layout: Layout) {
        let g = self.core.geometry();
        let Some(idx) = g.class_of(layout.size(), layout.align()) else {
            // SAFETY: a layout without a class was served raw by the core.
            unsafe { self.core.core().dealloc(ptr, layout) };
            return;
        };
        // SAFETY: `c` is ours and `ptr` a block we may now link.
        unsafe {
            let bin = &mut (*c).bins[idx];
            ptr.cast::<*mut u8>().write(bin.head);
            bin.head = ptr;
            bin.count += 1;
            add(&(*c).cached, 1);
            add(&(*c).requested, layout.size().wrapping_neg());
            if bin.count >= 2 * self.batch {
                let mut core = self.core.core();
                Self::give_back(&mut core, c, idx, self.batch);
            }
        }
    }

    /// Resizes with cache `c`: in place when the class still fits,
    /// otherwise allocate, copy, free, as the core does.
    ///
    /// # Safety
    /// As for `dealloc`; `new_size` valid for the alignment.
    pub(crate) unsafe fn realloc(
        &self,
        c: *mut ThreadCache,
        ptr: *mut u8,
        layout: Layout,
        new_size: usize,
    ) -> *mut u8 {
        // SAFETY: caller's contract.
        unsafe {
            match ReallocPlan::new(&self.core.geometry(), layout, new_size) {
                ReallocPlan::Invalid => null_mut(),
                ReallocPlan::InPlace => {
                    add(&(*c).requested, new_size.wrapping_sub(layout.size()));
                    ptr
                }
                ReallocPlan::Raw => self.core.core().realloc(ptr, layout, new_size),
                ReallocPlan::Move(new_layout) => {
                    let b = self.alloc(c, new_layout);
                    if !b.is_null() {
                        copy_for_realloc(ptr, layout.size(), b, new_size);
                        self.dealloc(c, ptr, layout);
                    }
                    b
                }
            }
        }
    }

    pub(crate) fn stats(&self) -> Stats {
        let mut s = crate::PoolStats::stats(&self.core);
        let mut c = self.caches.load(Ordering::Acquire);
        while !c.is_null() {
            // SAFETY: caches stay mapped while the core lives; we read only
            // their atomic counters.
            unsafe {
                s.extra.cached_blocks += (*c).cached.load(Ordering::Relaxed);
                s.requested_live = s
                    .requested_live
                    .wrapping_add((*c).requested.load(Ordering::Relaxed));
                c = (*c).next_all;
            }
        }
        s
    }
}

impl Drop for TcacheCore {
    fn drop(&mut self) {
        let mut c = self.caches.load(Ordering::Acquire);
        while !c.is_null() {
            // SAFETY: every cache was mapped by `attach` with this size and
            // nothing can use it while the core is being dropped.
            unsafe {
                let next = (*c).next_all;
                os::unmap(c.cast(), Self::cache_bytes());
                c = next;
            }
        }
    }
}

#[cfg(not(loom))]
pub use self::global::Tcache;

#[cfg(not(loom))]
mod global {
    use super::*;
    use crate::thread::{PerThread, Registered};

    impl PerThread for TcacheCore {
        type Config = (Geometry, usize);
        type Local = ThreadCache;

        fn build((g, batch): (Geometry, usize)) -> Self {
            TcacheCore::new(g, batch)
        }

        fn attach(&self) -> *mut ThreadCache {
            TcacheCore::attach(self)
        }

        unsafe fn detach(&self, c: *mut ThreadCache) {
            // SAFETY: forwarded contract.
            unsafe { TcacheCore::detach(self, c) }
        }

        unsafe fn alloc(&self, c: *mut ThreadCache, layout: Layout) -> *mut u8 {
            // SAFETY: forwarded contract.
            unsafe { TcacheCore::alloc(self, c, layout) }
        }

        unsafe fn dealloc(&self, c: *mut ThreadCache, ptr: *mut u8, layout: Layout) {
            // SAFETY: forwarded contract.
            unsafe { TcacheCore::dealloc(self, c, ptr, layout) }
        }

        unsafe fn realloc(
            &self,
            c: *mut ThreadCache,
            ptr: *mut u8,
            layout: Layout,
            new_size: usize,
        ) -> *mut u8 {
            // SAFETY: forwarded contract.
            unsafe { TcacheCore::realloc(self, c, ptr, layout, new_size) }
        }

        fn stats(&self) -> Stats {
            TcacheCore::stats(self)
        }

        fn empty_stats(&(g, _): &(Geometry, usize)) -> Stats {
            Stats::empty(g)
        }
    }

    /// Per-thread caches in front of the `locked` core (see the module docs).
    pub struct Tcache {
        inner: Registered<TcacheCore>,
    }

    impl Tcache {
        /// A `tcache` allocator moving [`DEFAULT_BATCH`] blocks per lock
        /// acquisition.
        pub const fn new(g: Geometry) -> Tcache {
            Tcache::with_batch(g, DEFAULT_BATCH)
        }

        /// A `tcache` allocator moving `batch` blocks per lock acquisition.
        pub const fn with_batch(g: Geometry, batch: usize) -> Tcache {
            Tcache {
                inner: Registered::new((g, batch)),
            }
        }

        /// The geometry this allocator runs.
        pub fn geometry(&self) -> Geometry {
            self.inner.config().0
        }
    }

    crate::thread::delegate_to_registered!(Tcache);
}

/// Cache state after `fork()` for the caches of every thread but the
/// forking one.
#[cfg(not(loom))]
const ORPHANED: u32 = 2;

/// Fork (see `fork`). The core's lock belongs to its `Locked`, which has
/// hooks of its own. In the child, the caches of threads that do not exist
/// there are *orphaned*: their bins, written without a lock, may have been
/// caught mid-update, so no thread takes them over (attach takes only
/// `FREE` caches, which their last owner flushed under the core's lock);
/// their blocks are lost to the child.
#[cfg(not(loom))]
impl crate::fork::ForkPerThread for TcacheCore {
    unsafe fn child(&self, mine: *mut ()) {
        let mut c = self.caches.load(Ordering::Acquire);
        while !c.is_null() {
            // SAFETY: caches stay mapped while the core lives; the child
            // has one thread, this one.
            unsafe {
                if c.cast() != mine && (*c).state.load(Ordering::Relaxed) == IN_USE {
                    (*c).state.store(ORPHANED, Ordering::Relaxed);
                }
                c = (*c).next_all;
            }
        }
    }
}
