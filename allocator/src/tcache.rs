//! `tcache`: per-thread caches of blocks in front of the `locked` core.
//!
//! The glibc tcache / tcmalloc thread-cache idea: each thread keeps, per
//! size class, a LIFO bin of free blocks. Allocation pops from the bin;
//! when it is empty, one lock acquisition moves a *batch* of blocks from
//! the core into it. Free pushes onto the bin; when the bin holds twice the
//! batch, one acquisition gives a batch back. Blocks have no owner: a block
//! freed by another thread simply joins that thread's bin. Caching alone,
//! no lock-free machinery: this shows how far it gets, next to `locked` (no
//! cache) and `sharded`.
//!
//! # Giving memory back
//! A block parked in a cache keeps its pool, and so its arena, from being
//! returned to the OS. Three rules bound that:
//!
//! * **Batches shrink with the block size**: a class moves
//!   `clamp(BATCH_BYTES / size, 2, batch)` blocks at a time (tcmalloc's
//!   rule), so a bin of 512-byte blocks does not hold 32 of them.
//! * **A byte cap per thread** ([`DEFAULT_CACHE_BYTES`]): a free that takes
//!   a thread's cache over it gives half of its bin back under one lock
//!   acquisition, so a thread never caches much more than its cap, even one
//!   that frees more than it allocates (a consumer). The cap is above what
//!   a thread allocating from every class at once keeps in its bins (up to
//!   two batches of `BATCH_BYTES` per class), so it binds only such a
//!   thread, not a busy one.
//! * **A global trim generation**: [`Tcache::trim`] bumps a counter that
//!   every thread compares with the value it last saw at each call (one
//!   load of a line that is only written by `trim`); a thread that sees it
//!   moved flushes its whole cache before serving the call. So the caches
//!   of threads that stopped allocating go back at their next call, and at
//!   the latest when they exit, when a thread's bins are flushed and its
//!   cache kept for the next thread.

use core::alloc::Layout;
use core::ptr::null_mut;

use crate::geometry::{Geometry, SizeClasses, MAX_CLASSES};
use crate::locked::Locked;
use crate::os;
use crate::per_thread::PerThread;
use crate::pymalloc::{copy_for_realloc, Pymalloc, ReallocPlan};
use crate::stats::Stats;
use crate::sync::{AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering, UnsafeCell};

/// Blocks moved per lock acquisition for small classes unless configured
/// otherwise.
pub const DEFAULT_BATCH: usize = 32;

/// Bytes a batch of a class holds at most (with at least two blocks).
pub const BATCH_BYTES: usize = 4 << 10;

/// Bytes a thread's cache holds before it gives half back, unless
/// configured otherwise.
pub const DEFAULT_CACHE_BYTES: usize = 256 << 10;

const IN_USE: u32 = 0;
const FREE: u32 = 1;

/// One size class's cached blocks, linked through their first word.
#[derive(Clone, Copy)]
struct Bin {
    head: *mut u8,
    count: usize,
    /// Blocks the next refill takes: 1 after a flush of the whole cache,
    /// doubling with each refill up to the class's batch.
    fill: u32,
}

const EMPTY_BIN: Bin = Bin {
    head: null_mut(),
    count: 0,
    fill: 1,
};

/// The owner's state of one cache.
struct Bins {
    bins: [Bin; MAX_CLASSES],
    /// Block bytes in the bins.
    bytes: usize,
    /// The trim generation this cache last honoured.
    seen_trim: u64,
}

/// One thread's cache.
pub(crate) struct ThreadCache {
    local: UnsafeCell<Bins>,
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
    classes: SizeClasses,
    /// Blocks moved per acquisition, per class.
    batch: [u32; MAX_CLASSES],
    /// Cache bytes a thread may hold before giving half back.
    cap: usize,
    /// Bumped by [`trim`](Self::trim); see the module docs.
    trim_generation: AtomicU64,
    caches: AtomicPtr<ThreadCache>,
}

// SAFETY: caches are handed to one thread at a time through their `state`
// CAS; the core is behind its lock; the list is append-only.
unsafe impl Sync for TcacheCore {}
// SAFETY: as above.
unsafe impl Send for TcacheCore {}

impl TcacheCore {
    /// A core moving at most `batch` blocks per acquisition (fewer for
    /// large classes) and keeping at most `cap` bytes per thread.
    pub(crate) fn new(g: Geometry, batch: usize, cap: usize) -> TcacheCore {
        let batch = batch.max(1);
        let mut per_class = [0u32; MAX_CLASSES];
        for (idx, b) in per_class.iter_mut().enumerate().take(g.nclasses()) {
            *b = (BATCH_BYTES / g.class_size(idx)).clamp(2.min(batch), batch) as u32;
        }
        TcacheCore {
            core: Locked::new(g),
            classes: SizeClasses::new(&g),
            batch: per_class,
            cap,
            trim_generation: AtomicU64::new(0),
            caches: AtomicPtr::new(null_mut()),
        }
    }

    fn cache_bytes() -> usize {
        core::mem::size_of::<ThreadCache>().next_multiple_of(4096)
    }

    /// Gives every cached block of `c` back under one acquisition.
    ///
    /// # Safety
    /// The caller owns `c`.
    #[inline(never)]
    unsafe fn flush_all(&self, c: *mut ThreadCache) {
        let g = self.core.geometry();
        let mut core = self.core.core();
        // SAFETY: `c` is ours; we hold the core's lock.
        unsafe {
            (*c).local.with_mut(|l| {
                for idx in 0..g.nclasses() {
                    let n = (*l).bins[idx].count;
                    Self::give_back(&mut core, c, &mut *l, idx, n, g.class_size(idx));
                    (*l).bins[idx].fill = 1;
                }
            });
        }
    }

    /// Moves `n` blocks of bin `idx` (blocks of `size` bytes) back to the core.
    ///
    /// # Safety
    /// The caller owns `c` (whose bins are `l`) and holds the core's lock
    /// through `core`.
    unsafe fn give_back(
        core: &mut Pymalloc,
        c: *mut ThreadCache,
        l: &mut Bins,
        idx: usize,
        n: usize,
        size: usize,
    ) {
        if n == 0 {
            return;
        }
        // SAFETY: bin blocks are free blocks of the core's pools, linked
        // through their first word.
        unsafe {
            let bin = &mut l.bins[idx];
            debug_assert!(n <= bin.count);
            for _ in 0..n {
                let b = bin.head;
                bin.head = b.cast::<*mut u8>().read();
                core.free_class(b);
            }
            bin.count -= n;
            l.bytes -= n * size;
            add(&(*c).cached, n.wrapping_neg());
        }
    }

    /// Whether `c` must flush before serving a call: [`trim`](Self::trim)
    /// ran since it last looked.
    ///
    /// # Safety
    /// The caller owns `c`.
    #[inline(always)]
    unsafe fn trim_pending(&self, c: *mut ThreadCache) -> bool {
        let gen = self.trim_generation.load(Ordering::Relaxed);
        // SAFETY: caller's contract.
        unsafe { (*c).local.with(|l| (*l).seen_trim != gen) }
    }

    /// Honours a pending trim: flushes everything, remembers the generation.
    ///
    /// # Safety
    /// The caller owns `c`.
    #[cold]
    #[inline(never)]
    unsafe fn honour_trim(&self, c: *mut ThreadCache) {
        let gen = self.trim_generation.load(Ordering::Relaxed);
        // SAFETY: caller's contract.
        unsafe {
            self.flush_all(c);
            (*c).local.with_mut(|l| (*l).seen_trim = gen);
        }
    }

    /// Asks every thread to flush its cache at its next call, and flushes
    /// `c` (the caller's cache, if it has one) now.
    ///
    /// # Safety
    /// `c` is null or the calling thread's cache.
    pub(crate) unsafe fn trim(&self, c: *mut ThreadCache) {
        self.trim_generation.fetch_add(1, Ordering::Relaxed);
        if !c.is_null() {
            // SAFETY: caller's contract.
            unsafe { self.honour_trim(c) };
        }
    }

    /// Fills bin `idx` with a batch of blocks under one acquisition.
    ///
    /// # Safety
    /// The caller owns `c`.
    #[inline(never)]
    unsafe fn refill(&self, c: *mut ThreadCache, idx: usize) -> bool {
        let size = self.core.geometry().class_size(idx);
        let mut core = self.core.core();
        // SAFETY: `c` is ours; fresh blocks from the core are free for us.
        unsafe {
            let n = (*c).local.with_mut(|l| {
                let bin = &mut (*l).bins[idx];
                let want = bin.fill as usize;
                bin.fill = (bin.fill * 2).min(self.batch[idx]);
                let mut n = 0;
                while n < want {
                    let b = core.alloc_class(idx);
                    if b.is_null() {
                        break;
                    }
                    b.cast::<*mut u8>().write(bin.head);
                    bin.head = b;
                    n += 1;
                }
                bin.count += n;
                (*l).bytes += n * size;
                n
            });
            add(&(*c).cached, n);
            n > 0
        }
    }
}

/// What builds a [`TcacheCore`]: geometry, batch, byte cap.
#[derive(Clone, Copy)]
pub(crate) struct Config {
    g: Geometry,
    batch: usize,
    cap: usize,
}

/// The per-thread interface the registry (`thread`) drives.
impl PerThread for TcacheCore {
    type Config = Config;
    type Local = ThreadCache;

    fn build(c: Config) -> Self {
        TcacheCore::new(c.g, c.batch, c.cap)
    }

    /// A cache for the calling thread: a free one if any, else a new one.
    fn attach(&self) -> *mut ThreadCache {
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
                local: UnsafeCell::new(Bins {
                    bins: [EMPTY_BIN; MAX_CLASSES],
                    bytes: 0,
                    seen_trim: self.trim_generation.load(Ordering::Relaxed),
                }),
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
    unsafe fn detach(&self, c: *mut ThreadCache) {
        // SAFETY: `c` is ours until the state store.
        unsafe {
            self.flush_all(c);
            (*c).state.store(FREE, Ordering::Release);
        }
    }

    /// The common case of [`alloc`](Self::alloc): a pop from a non-empty
    /// bin with no trim pending; null (nothing changed) otherwise.
    ///
    /// # Safety
    /// `c` must be the calling thread's cache of this core.
    #[inline(always)]
    unsafe fn alloc_fast(&self, c: *mut ThreadCache, layout: Layout) -> *mut u8 {
        let Some(idx) = self.classes.class_of(layout.size(), layout.align()) else {
            return null_mut();
        };
        // SAFETY: `c` is ours; its bins hold free blocks linked through
        // their first word.
        unsafe {
            if self.trim_pending(c) {
                return null_mut();
            }
            let b = (*c).local.with_mut(|l| {
                let bin = (*l).bins.get_unchecked_mut(idx);
                let b = bin.head;
                if !b.is_null() {
                    bin.head = b.cast::<*mut u8>().read();
                    bin.count -= 1;
                    (*l).bytes -= self.core.geometry().class_size(idx);
                }
                b
            });
            if !b.is_null() {
                add(&(*c).cached, usize::MAX);
                add(&(*c).requested, layout.size());
            }
            b
        }
    }

    /// Allocates with cache `c`.
    ///
    /// # Safety
    /// `c` must be the calling thread's cache of this core.
    #[inline(never)]
    unsafe fn alloc(&self, c: *mut ThreadCache, layout: Layout) -> *mut u8 {
        let Some(idx) = self.classes.class_of(layout.size(), layout.align()) else {
            return self.core.core().alloc(layout);
        };
        // SAFETY: `c` is ours.
        unsafe {
            if self.trim_pending(c) {
                self.honour_trim(c);
            }
            let b = self.alloc_fast(c, layout);
            if !b.is_null() {
                return b;
            }
            if !self.refill(c, idx) {
                return null_mut();
            }
            self.alloc_fast(c, layout)
        }
    }

    /// The common case of [`dealloc`](Self::dealloc): a push onto a bin
    /// that stays below its flush threshold and the thread's byte cap, with
    /// no trim pending; false (nothing changed) otherwise.
    ///
    /// # Safety
    /// `c` must be the calling thread's cache of this core; `ptr` a live
    /// block of this core with `layout`.
    #[inline(always)]
    unsafe fn dealloc_fast(&self, c: *mut ThreadCache, ptr: *mut u8, layout: Layout) -> bool {
        let Some(idx) = self.classes.class_of(layout.size(), layout.align()) else {
            return false;
        };
        // SAFETY: `c` is ours and `ptr` a block we may now link.
        unsafe {
            if self.trim_pending(c) {
                return false;
            }
            let size = self.core.geometry().class_size(idx);
            let limit = 2 * *self.batch.get_unchecked(idx) as usize;
            let done = (*c).local.with_mut(|l| {
                let bin = (*l).bins.get_unchecked_mut(idx);
                if bin.count + 1 >= limit || (*l).bytes + size > self.cap {
                    return false;
                }
                ptr.cast::<*mut u8>().write(bin.head);
                bin.head = ptr;
                bin.count += 1;
                (*l).bytes += size;
                true
            });
            if done {
                add(&(*c).cached, 1);
                add(&(*c).requested, layout.size().wrapping_neg());
            }
            done
        }
    }

    /// Frees with cache `c`.
    ///
    /// # Safety
    /// `c` must be the calling thread's cache of this core; `ptr` a live
    /// block of this core with `layout`.
    #[inline(never)]
    unsafe fn dealloc(&self, c: *mut ThreadCache, ptr: *mut u8, layout: Layout) {
        let Some(idx) = self.classes.class_of(layout.size(), layout.align()) else {
            // SAFETY: a layout without a class was served raw by the core.
            unsafe { self.core.core().dealloc(ptr, layout) };
            return;
        };
        // SAFETY: `c` is ours and `ptr` a block we may now link.
        unsafe {
            if self.trim_pending(c) {
                self.honour_trim(c);
            }
            if self.dealloc_fast(c, ptr, layout) {
                return;
            }
            let size = self.core.geometry().class_size(idx);
            let (over_bin, over_cap) = (*c).local.with_mut(|l| {
                let bin = &mut (*l).bins[idx];
                ptr.cast::<*mut u8>().write(bin.head);
                bin.head = ptr;
                bin.count += 1;
                (*l).bytes += size;
                (
                    bin.count >= 2 * self.batch[idx] as usize,
                    (*l).bytes > self.cap,
                )
            });
            add(&(*c).cached, 1);
            add(&(*c).requested, layout.size().wrapping_neg());
            if over_cap {
                // Over the thread's cap: this bin gives half back.
                let mut core = self.core.core();
                (*c).local.with_mut(|l| {
                    let n = (*l).bins[idx].count.div_ceil(2);
                    Self::give_back(&mut core, c, &mut *l, idx, n, size)
                });
            } else if over_bin {
                let mut core = self.core.core();
                (*c).local.with_mut(|l| {
                    Self::give_back(&mut core, c, &mut *l, idx, self.batch[idx] as usize, size)
                });
            }
        }
    }

    /// Resizes with cache `c`: in place when the class still fits,
    /// otherwise allocate, copy, free, as the core does.
    ///
    /// # Safety
    /// As for `dealloc`; `new_size` valid for the alignment.
    unsafe fn realloc(
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

    fn stats(&self) -> Stats {
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

    fn empty_stats(c: &Config) -> Stats {
        Stats::empty(c.g)
    }
}

#[cfg(all(test, loom))]
impl TcacheCore {
    /// Whether some cache waits for a thread. The list is read as
    /// `attach` reads it; the states with relaxed loads, which order
    /// nothing, so that models spin on it without adding synchronisation
    /// to the hand-over they check.
    pub(crate) fn has_free_cache(&self) -> bool {
        let mut c = self.caches.load(Ordering::Acquire);
        while !c.is_null() {
            // SAFETY: caches stay mapped while the core lives.
            unsafe {
                if (*c).state.load(Ordering::Relaxed) == FREE {
                    return true;
                }
                c = (*c).next_all;
            }
        }
        false
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
    use crate::thread::Registered;

    /// Per-thread caches in front of the `locked` core (see the module docs).
    pub struct Tcache {
        inner: Registered<TcacheCore>,
    }

    impl Tcache {
        /// A `tcache` allocator moving up to [`DEFAULT_BATCH`] blocks per
        /// lock acquisition and keeping up to [`DEFAULT_CACHE_BYTES`] per
        /// thread.
        pub const fn new(g: Geometry) -> Tcache {
            Tcache::with_limits(g, DEFAULT_BATCH, DEFAULT_CACHE_BYTES)
        }

        /// A `tcache` allocator moving up to `batch` blocks per lock
        /// acquisition.
        pub const fn with_batch(g: Geometry, batch: usize) -> Tcache {
            Tcache::with_limits(g, batch, DEFAULT_CACHE_BYTES)
        }

        /// A `tcache` allocator moving up to `batch` blocks per lock
        /// acquisition and keeping up to `cache_bytes` per thread.
        pub const fn with_limits(g: Geometry, batch: usize, cache_bytes: usize) -> Tcache {
            Tcache {
                inner: Registered::new(Config {
                    g,
                    batch,
                    cap: cache_bytes,
                }),
            }
        }

        /// In the child of a `fork()`, before it starts threads: forgets
        /// the parent's other threads, whose thread pointers the child's
        /// new threads may reuse (see `thread.rs`). A `pthread_atfork`
        /// child handler calls this.
        pub fn forget_other_threads(&self) {
            self.inner.forget_other_threads();
        }

        /// The geometry this allocator runs.
        pub fn geometry(&self) -> Geometry {
            self.inner.config().g
        }

        /// Returns cached blocks to the pools: the calling thread's now,
        /// every other thread's at its next call to this allocator (or
        /// when it exits).
        pub fn trim(&self) {
            if self.inner.existing().is_none() {
                return;
            }
            if let Some((shared, c)) = self.inner.local() {
                // SAFETY: `c` is the calling thread's cache.
                unsafe { shared.trim(c) };
            }
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
