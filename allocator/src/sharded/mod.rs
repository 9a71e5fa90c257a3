//! `sharded`: lock-free per-thread heaps with pymalloc's geometry.
//!
//! The mimalloc design that free-threaded CPython (PEP 703) adopted, built
//! on the same pools, size classes and `usedpools` rings as the other
//! allocators (`heap.rs` is shared; only the `PoolSource` differs), with
//! snmalloc's batched remote frees.
//!
//! # Ownership and the fast paths
//! Every thread owns a `ThreadHeap`; every pool belongs to one heap
//! (`Pool::owner`). A heap keeps, per size class, a free list of its own
//! (a *bin*: head, count, limit) next to its `usedpools` rings, as
//! jemalloc's and snmalloc's thread caches do, but holding only blocks of
//! the heap's own pools. Blocks on a bin still count as in use in their
//! pools' `ref_count`: the heap holds them. The fast paths are:
//!
//! * alloc: the class by table lookup (`SizeClasses`), pop the bin. No
//!   pool header is touched. (Pool headers all sit at 4 KiB-aligned
//!   addresses in the classic geometry, so they share one L1 set; keeping
//!   them off the allocation path matters under random-size churn.)
//! * free: the class, the pool by masking the address, a read of the
//!   pool's owner; if it is this heap and the bin is below its limit, push.
//!
//! Plain loads and stores only, no lock, no atomic read-modify-write, and
//! every other case is a tail call out of line. When a bin is empty, it is
//! refilled from the class's *current* pool, taking its whole free list at
//! once (blocks freed back into the pool) or carving up to a bin's limit of
//! never-used blocks; a spent current pool leaves (a full pool, out of its
//! ring) and the first pool of the class's ring, or a fresh one, becomes
//! current. When a bin is full, a free gives it back to its pools down to
//! half its limit, which moves those pools through pymalloc's states
//! (full → used → empty) as CPython's free would. So one object allocated
//! and freed in a loop, and random replacement across classes, run on the
//! bins alone.
//!
//! # Empty pools
//! A pool whose last block comes back goes to the heap's own cache of empty
//! pools, a LIFO of at most [`EMPTY_CACHE_BYTES`]; the heap takes pools
//! from that cache before the arenas, re-initialising one only when it last
//! served another class. Only when the cache is full or empty does a pool
//! move to or from the arenas, under the arena lock. So churn that empties
//! and refills pools of many classes does not take the lock per pool
//! (rpmalloc keeps its span caches for the same reason).
//!
//! # Remote frees: outboxes and the inbound stack
//! A thread freeing a block of a pool another heap owns does not touch that
//! pool. It links the block into its own *outbox* for the owner heap (a
//! small direct-mapped table of [`REMOTE_SLOTS`] destinations, each a
//! linked batch), and *posts* a batch, with one CAS, onto the owner heap's
//! `inbound` stack once it holds [`REMOTE_BATCH`] blocks, when another
//! destination needs its slot, when the owner has exited, when the freeing
//! thread takes a pool from the arenas, and when it exits. This is
//! snmalloc's message passing: one atomic operation per batch instead of
//! one per block, and no cache line of the owner's pools written by other
//! threads. The owner takes its whole inbound stack with one swap when a
//! class's list and ring run empty, before taking a new pool, and frees each block
//! locally: a pool that was full rejoins the front of its ring. A block in
//! an outbox or on an inbound stack is still counted in its pool's
//! `ref_count`, so a pool can never be returned to its arena while a block
//! of it is on its way back, and the `remote_frees_pushed` statistic counts
//! blocks when they are posted.
//!
//! # Thread exit
//! A heap whose thread exits is *abandoned*, never leaked: its owner posts
//! its outboxes, drains its inbound stack, returns its empty pools to the
//! arenas and marks the heap `ABANDONED`. From then on a thread posting to
//! that heap tries to become its *collector* (a CAS `ABANDONED →
//! COLLECTING`): the collector frees the inbound blocks into their pools,
//! returns pools whose last block came back to their arenas, and sets
//! `ABANDONED` again. The poster (push, then read the state) and the
//! collector (write the state, then read the stack) each put a `SeqCst`
//! fence between their write and their read, so at least one of them sees
//! the other's write: no block is left behind. (Fences rather than `SeqCst`
//! accesses: the C++ model guarantees this pattern with fences, and loom
//! checks fences but treats `SeqCst` accesses as `AcqRel`.) A freeing
//! thread posts at once to a heap it sees abandoned, so blocks of exited
//! threads do not wait in outboxes. A new thread adopts an abandoned heap
//! (`ABANDONED → OWNED`) before creating one, taking its pools over
//! ("pools adopted"). So memory freed after its owner exited comes back to
//! the arenas, and the number of heaps is bounded by the most threads alive
//! at once.
//!
//! # Statistics
//! Counters are written only by a heap's owner (plain load and store of an
//! atomic, so that the statistics walk may read them from another
//! thread): requested bytes per call, bin counts, raw allocations on the
//! raw path, remote frees per batch. Everything about pools and blocks is
//! derived from the pool headers when statistics are asked for; blocks on
//! bins are then moved from "in use" to "available" (a pool whose only free
//! blocks are on a bin counts as full).
//!
//! # Locks
//! Only arena operations (taking an empty pool the heap's cache cannot
//! give, returning one the cache cannot keep, mapping or unmapping an
//! arena) and the statistics walk take the arena lock. The allocation and
//! free fast paths, local or remote, never do.
//!
//! # For code outside this file
//! How a thread finds its heap is `thread.rs` (a per-allocator fast map
//! from the thread pointer, then a one-entry thread-local cache, in front
//! of a per-thread binding table); the registry of heaps is the `heaps`
//! list of `ShardedCore` (never shrinks while the core lives); the arena
//! lock is a `sync::Mutex<Arenas>`, the only lock. The fork handlers
//! (`crate::fork`, and `sharded/fork.rs`) hold the arena lock
//! across `fork()`; in the child the fast map forgets the parent's other
//! threads, and their heaps are `ORPHANED`: never used again (they may have
//! been mid-operation), which leaks their memory to the child, and blocks
//! in their outboxes with it.

use core::alloc::Layout;
use core::ptr::null_mut;

use crate::arena::Arenas;
use crate::geometry::{Geometry, SizeClasses, MAX_CLASSES};
use crate::heap::{Heap, PoolSource};
use crate::os::{self, raw};
use crate::per_thread::PerThread;
use crate::pool::{self, next_of, pool_of, set_next, Pool};
use crate::pymalloc::{copy_for_realloc, ReallocPlan};
use crate::stats::Stats;
use crate::sync::{
    fence, lock, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Mutex, Ordering, UnsafeCell,
};

#[cfg(not(loom))]
mod fork;
mod pools;
mod remote;

use self::remote::{Outbox, NO_OUTBOX};

/// Heap states.
const OWNED: u32 = 0;
const ABANDONED: u32 = 1;
const COLLECTING: u32 = 2;

/// Blocks gathered for one destination heap before they are posted.
pub const REMOTE_BATCH: u32 = 64;

/// Destination heaps a thread's outbox table holds at once (a power of two).
pub const REMOTE_SLOTS: usize = 16;

/// Bytes of free blocks a heap's list for one class holds before giving
/// back down to half of that.
pub const BIN_BYTES: usize = 4 << 10;

/// Least and most blocks a heap's list for one class holds before giving
/// back down to half.
pub const BIN_BLOCKS: (usize, usize) = (8, 128);

/// Bytes of empty pools a heap keeps for reuse before returning pools to
/// the arenas (at least two pools are kept whatever the pool size).
pub const EMPTY_CACHE_BYTES: usize = 64 << 10;

/// A value on a cache line of its own, so that a word other threads write
/// does not share a line with the owner's hot fields (128 bytes: x86-64
/// prefetches lines in pairs).
#[repr(C, align(128))]
struct Line<T>(T);

/// The owner's private state besides the rings.
struct Local {
    /// Cached empty pools, linked through `nextpool`.
    empty: *mut Pool,
    nempty: usize,
    /// Pools this heap holds (rings, full, cached).
    npools: usize,
    outboxes: [Outbox; REMOTE_SLOTS],
}

/// A heap's free list for one class: free blocks of the heap's own pools,
/// which still count as in use in their pools' `ref_count` (the heap
/// holds them), plus the class's current pool, from which the list is
/// refilled.
#[repr(C, align(32))]
struct Bin {
    /// Head of the list, linked through the blocks' first word.
    free: UnsafeCell<*mut u8>,
    /// The current pool of the class, or null. Atomic (written by the
    /// owner only) so that statistics can read it.
    pool: AtomicPtr<Pool>,
    /// Blocks on the list. Atomic (written by the owner only, plain load
    /// and store) so that statistics can read it.
    count: AtomicU32,
    /// Blocks the list may hold before a free gives it back down to half
    /// of that to their pools ([`BIN_BYTES`] worth, within [`BIN_BLOCKS`]);
    /// also the most never-used blocks carved into it at a time.
    limit: u32,
}

/// One thread's heap.
#[repr(C)]
pub(crate) struct ThreadHeap {
    bins: [Bin; MAX_CLASSES],
    heap: Heap,
    local: UnsafeCell<Local>,
    // Counters, written only by whoever owns the heap (plain load + store),
    // atomic so that statistics can read them from another thread.
    /// Requested bytes allocated minus freed by this heap's thread (a
    /// thread freeing others' blocks goes negative; the sum is exact).
    requested: AtomicUsize,
    raw_allocs: AtomicUsize,
    raw_bytes: AtomicUsize,
    remote_posted: AtomicU64,
    remote_collected: AtomicU64,
    /// Blocks other threads freed into this heap's pools, linked through
    /// their first word: written by every poster.
    inbound: Line<AtomicPtr<u8>>,
    /// [`OWNED`], [`ABANDONED`] or [`COLLECTING`]: read by every poster,
    /// written at thread exit and adoption and by collectors.
    state: Line<AtomicU32>,
    /// Next heap in the allocator's list of all heaps; set before publication.
    next_all: *mut ThreadHeap,
}

/// Adds `d` (two's complement for negative) to an owner-written counter.
#[inline(always)]
fn bump(c: &AtomicUsize, d: usize) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(d), Ordering::Relaxed);
}

#[inline(always)]
fn bump64(c: &AtomicU64, d: u64) {
    c.store(c.load(Ordering::Relaxed).wrapping_add(d), Ordering::Relaxed);
}

/// The shared state of a `sharded` allocator.
pub(crate) struct ShardedCore {
    g: Geometry,
    classes: SizeClasses,
    /// Empty pools a heap keeps (from [`EMPTY_CACHE_BYTES`]).
    empty_cap: usize,
    arenas: Mutex<Arenas>,
    /// Every heap ever made, newest first; heaps are reused, never freed
    /// before the allocator itself.
    heaps: AtomicPtr<ThreadHeap>,
    live_heaps: AtomicUsize,
    abandoned_heaps: AtomicUsize,
    pools_adopted: AtomicU64,
    /// The arena lock, held by the forking thread across `fork()`.
    fork_arenas: crate::fork::HeldAcrossFork<crate::sync::MutexGuard<'static, Arenas>>,
}

// SAFETY: heaps are handed to one owner at a time through their `state`
// CASes; arenas are behind a mutex; everything else is atomic.
unsafe impl Sync for ShardedCore {}
// SAFETY: as above; the core owns its mappings.
unsafe impl Send for ShardedCore {}

impl ShardedCore {
    pub(crate) fn new(g: Geometry) -> ShardedCore {
        ShardedCore {
            g,
            classes: SizeClasses::new(&g),
            empty_cap: (EMPTY_CACHE_BYTES / g.pool_size).max(2),
            arenas: Mutex::new(Arenas::new(g)),
            heaps: AtomicPtr::new(null_mut()),
            live_heaps: AtomicUsize::new(0),
            abandoned_heaps: AtomicUsize::new(0),
            pools_adopted: AtomicU64::new(0),
            fork_arenas: crate::fork::HeldAcrossFork::new(),
        }
    }

    fn heap_bytes() -> usize {
        core::mem::size_of::<ThreadHeap>().next_multiple_of(4096)
    }

    /// Becomes the collector of abandoned heap `h` for as long as it has
    /// inbound blocks and nobody else is collecting.
    ///
    /// # Safety
    /// `h` must be a heap of this core.
    #[inline(never)]
    unsafe fn collect_abandoned(&self, h: *mut ThreadHeap) {
        // SAFETY: the CAS gives us exclusive ownership of `h` until we store
        // ABANDONED back; heaps stay mapped while the core lives.
        unsafe {
            while (*h)
                .state
                .0
                .compare_exchange(ABANDONED, COLLECTING, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                self.drain_inbound(h, true);
                (*h).state.0.store(ABANDONED, Ordering::Release);
                fence(Ordering::SeqCst);
                if (*h).inbound.0.load(Ordering::Relaxed).is_null() {
                    return;
                }
            }
        }
    }

    /// # Safety
    /// As for [`alloc`](Self::alloc).
    #[inline(never)]
    unsafe fn alloc_raw(&self, h: *mut ThreadHeap, layout: Layout) -> *mut u8 {
        let b = raw::alloc(layout);
        if !b.is_null() {
            // SAFETY: `h` is ours.
            unsafe {
                bump(&(*h).raw_allocs, 1);
                bump(&(*h).raw_bytes, layout.size());
                bump(&(*h).requested, layout.size());
            }
        }
        b
    }

    /// # Safety
    /// As for [`dealloc`](Self::dealloc), for a block the raw allocator served.
    #[inline(never)]
    unsafe fn dealloc_raw(&self, h: *mut ThreadHeap, ptr: *mut u8, layout: Layout) {
        // SAFETY: `h` is ours; the block is a live raw block.
        unsafe {
            bump(&(*h).requested, layout.size().wrapping_neg());
            bump(&(*h).raw_allocs, usize::MAX);
            bump(&(*h).raw_bytes, layout.size().wrapping_neg());
            raw::dealloc(ptr);
        }
    }
}

/// The per-thread interface the registry (`thread`) drives.
impl PerThread for ShardedCore {
    type Config = Geometry;
    type Local = ThreadHeap;

    fn build(c: Geometry) -> Self {
        ShardedCore::new(c)
    }

    /// Gives the calling thread a heap: an abandoned one if any (adopting
    /// its pools), else a new one. Null when out of memory.
    fn attach(&self) -> *mut ThreadHeap {
        let mut h = self.heaps.load(Ordering::Acquire);
        while !h.is_null() {
            // SAFETY: heaps in the list stay mapped while the core lives.
            unsafe {
                // Acquire: the previous owner's or collector's writes to the
                // heap's plain state happen before ours.
                if (*h).state.0.load(Ordering::Relaxed) == ABANDONED
                    && (*h)
                        .state
                        .0
                        .compare_exchange(ABANDONED, OWNED, Ordering::Acquire, Ordering::Relaxed)
                        .is_ok()
                {
                    self.abandoned_heaps.fetch_sub(1, Ordering::Relaxed);
                    self.live_heaps.fetch_add(1, Ordering::Relaxed);
                    let n = (*h).local.with(|l| (*l).npools);
                    self.pools_adopted.fetch_add(n as u64, Ordering::Relaxed);
                    // Whatever was freed into it meanwhile comes back.
                    if !(*h).inbound.0.load(Ordering::Relaxed).is_null() {
                        self.drain_inbound(h, false);
                    }
                    return h;
                }
                h = (*h).next_all;
            }
        }
        let mem = os::map(Self::heap_bytes()).cast::<ThreadHeap>();
        if mem.is_null() {
            return null_mut();
        }
        // SAFETY: fresh page-aligned memory, large enough for a heap.
        unsafe {
            mem.write(ThreadHeap {
                bins: core::array::from_fn(|idx| Bin {
                    free: UnsafeCell::new(null_mut()),
                    pool: AtomicPtr::new(null_mut()),
                    count: AtomicU32::new(0),
                    limit: if idx < self.g.nclasses() {
                        (BIN_BYTES / self.g.class_size(idx)).clamp(BIN_BLOCKS.0, BIN_BLOCKS.1)
                            as u32
                    } else {
                        0
                    },
                }),
                heap: Heap::new(self.g),
                local: UnsafeCell::new(Local {
                    empty: null_mut(),
                    nempty: 0,
                    npools: 0,
                    outboxes: [NO_OUTBOX; REMOTE_SLOTS],
                }),
                requested: AtomicUsize::new(0),
                raw_allocs: AtomicUsize::new(0),
                raw_bytes: AtomicUsize::new(0),
                remote_posted: AtomicU64::new(0),
                remote_collected: AtomicU64::new(0),
                inbound: Line(AtomicPtr::new(null_mut())),
                state: Line(AtomicU32::new(OWNED)),
                next_all: null_mut(),
            });
            let mut head = self.heaps.load(Ordering::Relaxed);
            loop {
                (*mem).next_all = head;
                match self.heaps.compare_exchange_weak(
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
        self.live_heaps.fetch_add(1, Ordering::Relaxed);
        mem
    }

    /// Abandons the heap of an exiting thread (see the module docs).
    ///
    /// # Safety
    /// `h` must be the caller's heap from [`attach`](Self::attach), unused
    /// by the caller afterwards.
    unsafe fn detach(&self, h: *mut ThreadHeap) {
        // SAFETY: until the state store below, `h` is ours alone.
        unsafe {
            self.post_all(h);
            if !(*h).inbound.0.load(Ordering::Relaxed).is_null() {
                self.drain_inbound(h, false);
            }
            // Empty pools go back: current pools left empty, any in the
            // rings, then the cache.
            let (mut kept, mut n) = (null_mut::<Pool>(), 0);
            for idx in 0..self.g.nclasses() {
                let p = self.unbin(h, idx);
                if !p.is_null() {
                    (*p).nextpool.set(kept);
                    kept = p;
                    n += 1;
                }
            }
            (*h).heap.for_each_ring_pool(|p| {
                if pool::ref_count(p) == 0 {
                    (*h).heap.unlink(pool::szidx(p), p);
                    (*p).nextpool.set(kept);
                    kept = p;
                    n += 1;
                }
            });
            let mut cached = (*h).local.with_mut(|l| {
                let c = (*l).empty;
                (*l).npools -= n + (*l).nempty;
                (*l).empty = null_mut();
                (*l).nempty = 0;
                c
            });
            if !kept.is_null() || !cached.is_null() {
                let mut arenas = lock(&self.arenas);
                for list in [&mut kept, &mut cached] {
                    while !list.is_null() {
                        let next = (*(*list)).nextpool.get();
                        arenas.put_pool(*list);
                        *list = next;
                    }
                }
            }
            self.live_heaps.fetch_sub(1, Ordering::Relaxed);
            self.abandoned_heaps.fetch_add(1, Ordering::Relaxed);
            (*h).state.0.store(ABANDONED, Ordering::Release);
            fence(Ordering::SeqCst);
            if !(*h).inbound.0.load(Ordering::Relaxed).is_null() {
                self.collect_abandoned(h);
            }
        }
    }

    /// The common case of [`alloc`](Self::alloc), inlined into every
    /// caller: a pop from the heap's list for the class (no pool header is
    /// touched); null (nothing changed) when the list is empty or the
    /// request is not for a pool.
    ///
    /// # Safety
    /// As for [`alloc`](Self::alloc).
    #[inline(always)]
    unsafe fn alloc_fast(&self, h: *mut ThreadHeap, layout: Layout) -> *mut u8 {
        // SAFETY: `h` is ours; blocks on its lists are free blocks it holds.
        unsafe {
            let Some(idx) = self.classes.class_of(layout.size(), layout.align()) else {
                return null_mut();
            };
            let bin = (*h).bins.get_unchecked(idx);
            let b = bin.free.get();
            if b.is_null() {
                return null_mut();
            }
            bin.free.set(next_of(b));
            bin.count
                .store(bin.count.load(Ordering::Relaxed) - 1, Ordering::Relaxed);
            bump(&(*h).requested, layout.size());
            b
        }
    }

    /// Allocates with heap `h`.
    ///
    /// # Safety
    /// `h` must be the calling thread's heap of this core.
    #[inline]
    unsafe fn alloc(&self, h: *mut ThreadHeap, layout: Layout) -> *mut u8 {
        // SAFETY: `h` is ours; pools reached through it are ours.
        unsafe {
            let b = self.alloc_fast(h, layout);
            if !b.is_null() {
                return b;
            }
            let Some(idx) = self.classes.class_of(layout.size(), layout.align()) else {
                return self.alloc_raw(h, layout);
            };
            if !self.refill(h, idx) {
                return null_mut();
            }
            self.alloc_fast(h, layout)
        }
    }

    /// The common case of [`dealloc`](Self::dealloc), inlined into every
    /// caller: a block of one of the heap's pools goes on the heap's list
    /// for its class, below the list's limit (the pool header is read for
    /// its owner, never written). False (nothing changed) otherwise.
    ///
    /// # Safety
    /// As for [`dealloc`](Self::dealloc).
    #[inline(always)]
    unsafe fn dealloc_fast(&self, h: *mut ThreadHeap, ptr: *mut u8, layout: Layout) -> bool {
        // SAFETY: as in `dealloc`; the block's pool is ours.
        unsafe {
            let Some(idx) = self.classes.class_of(layout.size(), layout.align()) else {
                return false;
            };
            let p = pool_of(ptr, &self.g);
            let bin = (*h).bins.get_unchecked(idx);
            let n = bin.count.load(Ordering::Relaxed);
            if (*p).owner.load(Ordering::Relaxed) != h.cast() || n >= bin.limit {
                return false;
            }
            set_next(ptr, bin.free.get());
            bin.free.set(ptr);
            bin.count.store(n + 1, Ordering::Relaxed);
            bump(&(*h).requested, layout.size().wrapping_neg());
            true
        }
    }

    /// Frees with heap `h`: onto the heap's list for the class if `h` owns
    /// the block's pool (giving the list back to the pools down to half its limit first
    /// if it is full), else into the outbox for the pool's owner.
    ///
    /// # Safety
    /// `h` must be the calling thread's heap of this core; `ptr` a live
    /// block of this core with `layout`.
    #[inline]
    unsafe fn dealloc(&self, h: *mut ThreadHeap, ptr: *mut u8, layout: Layout) {
        // SAFETY: caller's contract; a live block keeps its pool and the
        // pool's owner heap alive and unchanged.
        unsafe {
            // The fast path's cases again, without trying it first: the
            // caller usually just did.
            let Some(idx) = self.classes.class_of(layout.size(), layout.align()) else {
                return self.dealloc_raw(h, ptr, layout);
            };
            let p = pool_of(ptr, &self.g);
            let owner = (*p).owner.load(Ordering::Relaxed).cast::<ThreadHeap>();
            if owner != h {
                bump(&(*h).requested, layout.size().wrapping_neg());
                return self.free_remote(h, owner, ptr);
            }
            debug_assert_eq!(idx, pool::szidx(p));
            let bin = (*h).bins.get_unchecked(idx);
            let n = bin.count.load(Ordering::Relaxed);
            if n >= bin.limit {
                // The list is full: give it back down to half its limit.
                self.give_back(h, idx, n - bin.limit / 2);
            }
            let done = self.dealloc_fast(h, ptr, layout);
            debug_assert!(done);
        }
    }

    /// Resizes with heap `h` (same rules as the pymalloc core).
    ///
    /// # Safety
    /// As for [`dealloc`](Self::dealloc); `new_size` valid for the alignment.
    unsafe fn realloc(
        &self,
        h: *mut ThreadHeap,
        ptr: *mut u8,
        layout: Layout,
        new_size: usize,
    ) -> *mut u8 {
        let delta = new_size.wrapping_sub(layout.size());
        // SAFETY: caller's contract.
        unsafe {
            let mut plan = ReallocPlan::new(&self.g, layout, new_size);
            // A block shrunk in place would be freed under the new size's
            // class and so join another class's list: keep lists pure by
            // moving it unless the class stays the same.
            if let ReallocPlan::InPlace = plan {
                if self.classes.class_of(new_size, layout.align())
                    != self.classes.class_of(layout.size(), layout.align())
                {
                    plan = ReallocPlan::Move(Layout::from_size_align_unchecked(
                        new_size,
                        layout.align(),
                    ));
                }
            }
            match plan {
                ReallocPlan::Invalid => null_mut(),
                ReallocPlan::InPlace => {
                    bump(&(*h).requested, delta);
                    ptr
                }
                ReallocPlan::Raw => {
                    let b = raw::realloc(ptr, layout, new_size);
                    if !b.is_null() {
                        bump(&(*h).requested, delta);
                        bump(&(*h).raw_bytes, delta);
                    }
                    b
                }
                ReallocPlan::Move(new_layout) => {
                    let b = self.alloc(h, new_layout);
                    if !b.is_null() {
                        copy_for_realloc(ptr, layout.size(), b, new_size);
                        self.dealloc(h, ptr, layout);
                    }
                    b
                }
            }
        }
    }

    /// The accounting, summed over heaps.
    fn stats(&self) -> Stats {
        let mut s = Stats::empty(self.g);
        lock(&self.arenas).account(&mut s);
        let (mut req, mut ra, mut rb) = (0usize, 0usize, 0usize);
        let mut h = self.heaps.load(Ordering::Acquire);
        while !h.is_null() {
            // SAFETY: heaps stay mapped while the core lives; we read
            // only their atomic counters.
            unsafe {
                req = req.wrapping_add((*h).requested.load(Ordering::Relaxed));
                ra = ra.wrapping_add((*h).raw_allocs.load(Ordering::Relaxed));
                rb = rb.wrapping_add((*h).raw_bytes.load(Ordering::Relaxed));
                s.extra.remote_frees_pushed += (*h).remote_posted.load(Ordering::Relaxed);
                s.extra.remote_frees_collected += (*h).remote_collected.load(Ordering::Relaxed);
                h = (*h).next_all;
            }
        }
        // Blocks on the heaps' lists are free blocks, though their pools
        // count them in use (so a pool whose only free blocks are listed
        // counts as full): move them to the available figures.
        let g = self.g;
        let mut h = self.heaps.load(Ordering::Acquire);
        while !h.is_null() {
            // SAFETY: heaps stay mapped while the core lives; we read only
            // their atomic fields.
            unsafe {
                for idx in 0..g.nclasses() {
                    let c = &mut s.classes[idx];
                    let n = ((*h).bins[idx].count.load(Ordering::Relaxed) as usize)
                        .min(c.blocks_in_use);
                    c.blocks_in_use -= n;
                    c.available_blocks += n;
                    s.bytes.allocated_blocks -= n * c.size;
                    s.bytes.available_blocks += n * c.size;
                }
                h = (*h).next_all;
            }
        }
        s.requested_live = req;
        s.raw_live_allocs = ra;
        s.raw_live_bytes = rb;
        s.extra.live_heaps = self.live_heaps.load(Ordering::Relaxed);
        s.extra.abandoned_heaps = self.abandoned_heaps.load(Ordering::Relaxed);
        s.extra.pools_adopted = self.pools_adopted.load(Ordering::Relaxed);
        s
    }

    fn empty_stats(c: &Geometry) -> Stats {
        Stats::empty(*c)
    }
}

#[cfg(all(test, loom))]
impl ShardedCore {
    /// Whether blocks wait on `h`'s inbound stack (a relaxed load, which
    /// orders nothing: models spin on it without adding synchronisation).
    pub(crate) fn inbound_pending(&self, h: *mut ThreadHeap) -> bool {
        // SAFETY: heaps stay mapped while the core lives.
        unsafe { !(*h).inbound.0.load(Ordering::Relaxed).is_null() }
    }

    /// Each heap's state, inbound-stack length and ring pools (for model
    /// failure messages).
    pub(crate) fn describe(&self) -> String {
        let mut out = String::new();
        let mut h = self.heaps.load(Ordering::Acquire);
        while !h.is_null() {
            // SAFETY: test-only inspection of a quiescent core.
            unsafe {
                let mut n = 0;
                let mut b = (*h).inbound.0.load(Ordering::Acquire);
                while !b.is_null() {
                    n += 1;
                    b = next_of(b);
                }
                out.push_str(&format!(
                    "heap {h:p}: state {} inbound {n} npools {}; ring pools:",
                    (*h).state.0.load(Ordering::Relaxed),
                    (*h).local.with(|l| (*l).npools)
                ));
                (*h).heap.for_each_ring_pool(|p| {
                    out.push_str(&format!(" {p:p}(rc {})", pool::ref_count(p)))
                });
                out.push('\n');
                h = (*h).next_all;
            }
        }
        out
    }
}

impl Drop for ShardedCore {
    fn drop(&mut self) {
        let mut h = self.heaps.load(Ordering::Acquire);
        while !h.is_null() {
            // SAFETY: every heap was mapped by `attach` with this size and
            // nobody can use it once the core is being dropped.
            unsafe {
                let next = (*h).next_all;
                os::unmap(h.cast(), Self::heap_bytes());
                h = next;
            }
        }
        // The arenas unmap themselves.
    }
}

#[cfg(not(loom))]
pub use self::global::Sharded;

#[cfg(not(loom))]
mod global {
    use super::*;
    use crate::thread::Registered;

    /// Lock-free per-thread heaps over pymalloc's pools (see the module
    /// docs). Usable as a `#[global_allocator]`; each thread gets its heap
    /// on its first call, and gives it up when it exits.
    pub struct Sharded {
        inner: Registered<ShardedCore>,
    }

    impl Sharded {
        /// A `sharded` allocator with geometry `g`. Nothing is mapped until
        /// the first allocation.
        pub const fn new(g: Geometry) -> Sharded {
            Sharded {
                inner: Registered::new(g),
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
            *self.inner.config()
        }
    }

    crate::thread::delegate_to_registered!(Sharded);
}
