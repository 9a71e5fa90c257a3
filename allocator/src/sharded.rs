//! `sharded`: lock-free per-thread heaps with pymalloc's geometry.
//!
//! The mimalloc design that free-threaded CPython (PEP 703) adopted, built
//! on the same pools, size classes and `usedpools` rings as the other
//! allocators (`heap.rs` is shared; only the [`PoolSource`] differs).
//!
//! # Ownership
//! Every thread owns a [`ThreadHeap`]; every pool belongs to one heap
//! (`Pool::owner`). The owner allocates and frees on the pool's local free
//! list with plain loads and stores: no lock, no atomic read-modify-write.
//!
//! # Remote frees
//! A thread freeing a block of a pool it does not own pushes the block on
//! the pool's `remote` stack with one CAS ([`pool::push_remote`]). The
//! owner takes the whole stack with one swap when the pool's local list runs
//! dry, before declaring it full.
//!
//! # Full pools: `NOTIFY` and the delayed-free stack
//! A full pool leaves its ring, so its owner would never look at its remote
//! stack again. Before unlinking it, the owner sets the `NOTIFY` bit in the
//! pool's remote word (a CAS from "empty" that fails if a block arrived
//! meanwhile, in which case the owner collects instead). A remote free that
//! finds `NOTIFY` pushes the block on the owner *heap's* `delayed` stack
//! instead (one CAS). The owner drains that stack when a class's ring is
//! empty, before taking a new pool from the arenas: each block is freed
//! locally, which puts its full pool back at the front of its ring (and
//! clears `NOTIFY`), or returns the pool to its arena if it was the last
//! block. This is mimalloc's delayed free, with the flag kept per pool.
//! A block in transit on any stack is still counted in its pool's
//! `ref_count`, so a pool can never be returned to its arena while a block
//! of it is on its way back.
//!
//! # Thread exit
//! A heap whose thread exits is *abandoned*, never leaked: its owner drains
//! its delayed stack, collects every pool's remote stack, returns empty
//! pools to their arenas, sets `NOTIFY` on every remaining pool and marks
//! the heap `ABANDONED`. From then on every remote free into that heap goes
//! to its delayed stack, after which the freeing thread tries to become the
//! heap's *collector* (a CAS `ABANDONED → COLLECTING`): the collector frees
//! the delayed blocks into their pools, returns pools whose last block came
//! back to their arenas, and sets `ABANDONED` again. The pusher (push, then
//! read the state) and the collector (write the state, then read the stack)
//! each put a `SeqCst` fence between their write and their read, so at least
//! one of them sees the other's write: no block is left behind. (Fences
//! rather than `SeqCst` accesses: the C++ model guarantees this pattern with
//! fences, and loom checks fences but treats `SeqCst` accesses as `AcqRel`.) A new thread adopts an abandoned heap
//! (`ABANDONED → OWNED`) before creating one, taking its pools over ("pools
//! adopted"). So memory freed after its owner exited comes back to the
//! arenas, and the number of heaps is bounded by the most threads alive at
//! once.
//!
//! # Locks
//! Only arena operations — taking an empty pool, returning one, mapping or
//! unmapping an arena, and the statistics walk — take the arena lock. The
//! allocation and free fast paths, local or remote, never do.

use core::alloc::Layout;
use core::ptr::null_mut;

use crate::arena::Arenas;
use crate::geometry::Geometry;
use crate::heap::{Heap, PoolSource};
use crate::os::{self, raw};
use crate::pool::{self, pool_of, Pool};
use crate::pymalloc::{copy_for_realloc, ReallocPlan};
use crate::stats::Stats;
use crate::sync::{fence, lock, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Mutex, Ordering};

/// Heap states.
const OWNED: u32 = 0;
const ABANDONED: u32 = 1;
const COLLECTING: u32 = 2;

/// One thread's heap.
pub(crate) struct ThreadHeap {
    heap: Heap,
    /// [`OWNED`], [`ABANDONED`] or [`COLLECTING`].
    state: AtomicU32,
    /// Blocks freed remotely into pools carrying `NOTIFY`, linked through
    /// their first word.
    delayed: AtomicPtr<u8>,
    /// Next heap in the allocator's list of all heaps; set before publication.
    next_all: *mut ThreadHeap,
    /// Pools this heap holds; touched only by whoever owns the heap.
    npools: usize,
    // Counters, written only by whoever owns the heap (plain load + store),
    // atomic so that statistics can read them from another thread.
    /// Requested bytes allocated minus freed by this heap's thread (a
    /// thread freeing others' blocks goes negative; the sum is exact).
    requested: AtomicUsize,
    raw_allocs: AtomicUsize,
    raw_bytes: AtomicUsize,
    remote_pushed: AtomicU64,
    remote_collected: AtomicU64,
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

/// The pool source of one heap: the shared arenas, plus remote collection.
struct Source<'a> {
    core: &'a ShardedCore,
    h: *mut ThreadHeap,
    /// True when `h` is an abandoned heap worked on by a collector: its
    /// pools keep `NOTIFY`, since no thread allocates from them.
    abandoned: bool,
}

impl PoolSource for Source<'_> {
    fn get_pool(&mut self) -> *mut Pool {
        let p = lock(&self.core.arenas).get_pool();
        if !p.is_null() {
            // SAFETY: an empty pool from the arenas is ours alone now; no
            // block of it is live, so no other thread can reach it.
            unsafe {
                (*p).remote.store(0, Ordering::Relaxed);
                (*p).owner.store(self.h.cast(), Ordering::Relaxed);
                (*self.h).npools += 1;
            }
        }
        p
    }

    unsafe fn put_pool(&mut self, p: *mut Pool) {
        // SAFETY: the pool is empty and unlinked; every block is on its
        // local list (blocks in transit count in `ref_count`), so nobody
        // else can reach it. The heap is ours.
        unsafe {
            (*self.h).npools -= 1;
            lock(&self.core.arenas).put_pool(p);
        }
    }

    #[inline]
    unsafe fn refill(&mut self, p: *mut Pool) -> bool {
        // SAFETY: `p` is a pool of our heap.
        unsafe {
            loop {
                if self.core.collect(self.h, p) > 0 {
                    return true;
                }
                if pool::try_mark_notify(p) {
                    return false;
                }
                // A block arrived between the collect and the mark: go again.
            }
        }
    }

    #[inline(always)]
    fn keep_last_empty(&self) -> bool {
        // A collector returns everything it can: nobody allocates there.
        !self.abandoned
    }

    #[inline]
    unsafe fn relinked(&mut self, p: *mut Pool) {
        if !self.abandoned {
            // SAFETY: `p` is a pool of our heap.
            unsafe { pool::unmark_notify(p) }
        }
    }
}

impl ShardedCore {
    pub(crate) fn new(g: Geometry) -> ShardedCore {
        ShardedCore {
            g,
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

    #[inline(always)]
    fn source(&self, h: *mut ThreadHeap) -> Source<'_> {
        Source {
            core: self,
            h,
            abandoned: false,
        }
    }

    /// Gives the calling thread a heap: an abandoned one if any (adopting
    /// its pools), else a new one. Null when out of memory.
    pub(crate) fn attach(&self) -> *mut ThreadHeap {
        let mut h = self.heaps.load(Ordering::Acquire);
        while !h.is_null() {
            // SAFETY: heaps in the list stay mapped while the core lives.
            unsafe {
                if (*h).state.load(Ordering::Relaxed) == ABANDONED
                    && (*h)
                        .state
                        .compare_exchange(ABANDONED, OWNED, Ordering::SeqCst, Ordering::Relaxed)
                        .is_ok()
                {
                    self.abandoned_heaps.fetch_sub(1, Ordering::Relaxed);
                    self.live_heaps.fetch_add(1, Ordering::Relaxed);
                    self.pools_adopted
                        .fetch_add((*h).npools as u64, Ordering::Relaxed);
                    self.adopt(h);
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
                heap: Heap::new(self.g),
                state: AtomicU32::new(OWNED),
                delayed: AtomicPtr::new(null_mut()),
                next_all: null_mut(),
                npools: 0,
                requested: AtomicUsize::new(0),
                raw_allocs: AtomicUsize::new(0),
                raw_bytes: AtomicUsize::new(0),
                remote_pushed: AtomicU64::new(0),
                remote_collected: AtomicU64::new(0),
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

    /// Takes over an abandoned heap: its ring pools are looked at again, so
    /// they lose `NOTIFY`; then whatever was freed meanwhile comes back.
    ///
    /// # Safety
    /// The caller just won `h` with the `ABANDONED → OWNED` CAS.
    unsafe fn adopt(&self, h: *mut ThreadHeap) {
        // SAFETY: `h` is ours now.
        unsafe {
            for_each_ring_pool(h, |p| pool::unmark_notify(p));
            self.drain_delayed(h, false);
        }
    }

    /// Abandons the heap of an exiting thread (see the module docs).
    ///
    /// # Safety
    /// `h` must be the caller's heap from [`attach`](Self::attach), unused
    /// by the caller afterwards.
    pub(crate) unsafe fn detach(&self, h: *mut ThreadHeap) {
        // SAFETY: until the state store below, `h` is ours alone.
        unsafe {
            self.drain_delayed(h, false);
            for_each_ring_pool(h, |p| self.settle_unowned(h, p));
            self.live_heaps.fetch_sub(1, Ordering::Relaxed);
            self.abandoned_heaps.fetch_add(1, Ordering::Relaxed);
            (*h).state.store(ABANDONED, Ordering::Release);
            fence(Ordering::SeqCst);
            if !(*h).delayed.load(Ordering::Relaxed).is_null() {
                self.collect_abandoned(h);
            }
        }
    }

    /// Takes `p`'s remote stack into its local list. Returns the count.
    ///
    /// # Safety
    /// `p` must be a pool of heap `h`, which the caller owns.
    #[inline]
    unsafe fn collect(&self, h: *mut ThreadHeap, p: *mut Pool) -> usize {
        // SAFETY: caller's contract.
        unsafe {
            let n = pool::collect_remote(p);
            if n > 0 {
                bump64(&(*h).remote_collected, n as u64);
            }
            n
        }
    }

    /// For a ring pool of a heap about to be abandoned: collects its remote
    /// blocks; returns it to its arena if that emptied it, else sets
    /// `NOTIFY` so that later remote frees go to the heap's delayed stack.
    ///
    /// # Safety
    /// The caller owns `h` and `p` is one of its pools, in its ring.
    unsafe fn settle_unowned(&self, h: *mut ThreadHeap, p: *mut Pool) {
        // SAFETY: caller's contract.
        unsafe {
            loop {
                self.collect(h, p);
                if (*p).ref_count.load(Ordering::Relaxed) == 0 {
                    let idx = (*p).szidx.load(Ordering::Relaxed) as usize;
                    (*h).heap.unlink(idx, p);
                    self.source(h).put_pool(p);
                    return;
                }
                if pool::try_mark_notify(p) {
                    return;
                }
            }
        }
    }

    /// Frees every block on `h`'s delayed stack into its pool.
    /// `abandoned`: `h` is being worked on by a collector.
    ///
    /// # Safety
    /// The caller owns `h` (as its thread or as its collector).
    unsafe fn drain_delayed(&self, h: *mut ThreadHeap, abandoned: bool) {
        // SAFETY: caller's contract; Acquire pairs with the pushers' CAS so
        // their link writes are visible. Every block is an allocated block
        // of one of `h`'s pools.
        unsafe {
            let mut b = (*h).delayed.swap(null_mut(), Ordering::Acquire);
            let mut src = Source {
                core: self,
                h,
                abandoned,
            };
            let mut n = 0;
            while !b.is_null() {
                let next = b.cast::<*mut u8>().read();
                let p = pool_of(b, &self.g);
                (*h).heap.free(p, b, &mut src);
                n += 1;
                b = next;
            }
            if n > 0 {
                bump64(&(*h).remote_collected, n);
            }
        }
    }

    /// Becomes the collector of abandoned heap `h` for as long as it has
    /// delayed blocks and nobody else is collecting.
    ///
    /// # Safety
    /// `h` must be a heap of this core.
    unsafe fn collect_abandoned(&self, h: *mut ThreadHeap) {
        // SAFETY: the CAS gives us exclusive ownership of `h` until we store
        // ABANDONED back; heaps stay mapped while the core lives.
        unsafe {
            while (*h)
                .state
                .compare_exchange(ABANDONED, COLLECTING, Ordering::SeqCst, Ordering::Relaxed)
                .is_ok()
            {
                self.drain_delayed(h, true);
                (*h).state.store(ABANDONED, Ordering::Release);
                fence(Ordering::SeqCst);
                if (*h).delayed.load(Ordering::Relaxed).is_null() {
                    return;
                }
            }
        }
    }

    /// Allocates with heap `h`.
    ///
    /// # Safety
    /// `h` must be the calling thread's heap of this core.
    #[inline(always)]
    pub(crate) unsafe fn alloc(&self, h: *mut ThreadHeap, layout: Layout) -> *mut u8 {
        // SAFETY: `h` is ours; pools reached through it are ours.
        unsafe {
            let b = match self.g.class_of(layout.size(), layout.align()) {
                Some(idx) => {
                    if (*h).heap.ring(idx).is_null()
                        && !(*h).delayed.load(Ordering::Relaxed).is_null()
                    {
                        self.drain_delayed(h, false);
                    }
                    (*h).heap.alloc(idx, &mut self.source(h))
                }
                None => {
                    let b = raw::alloc(layout);
                    if !b.is_null() {
                        bump(&(*h).raw_allocs, 1);
                        bump(&(*h).raw_bytes, layout.size());
                    }
                    b
                }
            };
            if !b.is_null() {
                bump(&(*h).requested, layout.size());
            }
            b
        }
    }

    /// Frees with heap `h`: locally if `h` owns the block's pool, else onto
    /// the pool's remote stack or its owner's delayed stack.
    ///
    /// # Safety
    /// `h` must be the calling thread's heap of this core; `ptr` a live
    /// block of this core with `layout`.
    #[inline(always)]
    pub(crate) unsafe fn dealloc(&self, h: *mut ThreadHeap, ptr: *mut u8, layout: Layout) {
        // SAFETY: caller's contract; a live block keeps its pool and the
        // pool's owner heap alive and unchanged.
        unsafe {
            bump(&(*h).requested, layout.size().wrapping_neg());
            if self.g.class_of(layout.size(), layout.align()).is_none() {
                bump(&(*h).raw_allocs, usize::MAX);
                bump(&(*h).raw_bytes, layout.size().wrapping_neg());
                raw::dealloc(ptr);
                return;
            }
            let p = pool_of(ptr, &self.g);
            let owner = (*p).owner.load(Ordering::Relaxed).cast::<ThreadHeap>();
            if owner == h {
                (*h).heap.free(p, ptr, &mut self.source(h));
            } else {
                bump64(&(*h).remote_pushed, 1);
                if !pool::push_remote(p, ptr) {
                    self.free_delayed(owner, ptr);
                }
            }
        }
    }

    /// Hands a block of a `NOTIFY` pool to its owner heap.
    ///
    /// # Safety
    /// `ptr` must be an allocated block, owned by the caller, of a pool of
    /// heap `owner`.
    #[inline(never)]
    unsafe fn free_delayed(&self, owner: *mut ThreadHeap, ptr: *mut u8) {
        // SAFETY: caller's contract; heaps stay mapped while the core lives.
        unsafe {
            let delayed = &(*owner).delayed;
            let mut head = delayed.load(Ordering::Relaxed);
            loop {
                ptr.cast::<*mut u8>().write(head);
                match delayed.compare_exchange_weak(head, ptr, Ordering::Release, Ordering::Relaxed)
                {
                    Ok(_) => break,
                    Err(now) => head = now,
                }
            }
            // Pairs with the fence in `detach` / `collect_abandoned`.
            fence(Ordering::SeqCst);
            if (*owner).state.load(Ordering::Acquire) == ABANDONED {
                self.collect_abandoned(owner);
            }
        }
    }

    /// Resizes with heap `h` (same rules as the pymalloc core).
    ///
    /// # Safety
    /// As for [`dealloc`](Self::dealloc); `new_size` valid for the alignment.
    pub(crate) unsafe fn realloc(
        &self,
        h: *mut ThreadHeap,
        ptr: *mut u8,
        layout: Layout,
        new_size: usize,
    ) -> *mut u8 {
        let delta = new_size.wrapping_sub(layout.size());
        // SAFETY: caller's contract.
        unsafe {
            match ReallocPlan::new(&self.g, layout, new_size) {
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
    pub(crate) fn stats(&self) -> Stats {
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
                s.extra.remote_frees_pushed += (*h).remote_pushed.load(Ordering::Relaxed);
                s.extra.remote_frees_collected += (*h).remote_collected.load(Ordering::Relaxed);
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
}

#[cfg(all(test, loom))]
impl ShardedCore {
    /// Each heap's state, delayed-stack length and ring pools' remote words
    /// (for model failure messages).
    pub(crate) fn describe(&self) -> String {
        let mut out = String::new();
        let mut h = self.heaps.load(Ordering::Acquire);
        while !h.is_null() {
            // SAFETY: test-only inspection of a quiescent core.
            unsafe {
                let mut n = 0;
                let mut b = (*h).delayed.load(Ordering::Acquire);
                while !b.is_null() {
                    n += 1;
                    b = b.cast::<*mut u8>().read();
                }
                out.push_str(&format!(
                    "heap {h:p}: state {} delayed {n} npools {}; ring remotes:",
                    (*h).state.load(Ordering::Relaxed),
                    (*h).npools
                ));
                for_each_ring_pool(h, |p| {
                    out.push_str(&format!(
                        " {:#x}(rc {})",
                        (*p).remote.load(Ordering::Relaxed),
                        (*p).ref_count.load(Ordering::Relaxed)
                    ))
                });
                out.push('\n');
                h = (*h).next_all;
            }
        }
        out
    }
}

/// Calls `f` on every pool in `h`'s rings; `f` may unlink the pool it is given.
///
/// # Safety
/// The caller owns `h`; `f` may only unlink the pool passed to it.
unsafe fn for_each_ring_pool(h: *mut ThreadHeap, mut f: impl FnMut(*mut Pool)) {
    // SAFETY: ring members are live pools of `h`; we count the ring before
    // walking it so that unlinking the current pool does not derail us.
    unsafe {
        for idx in 0..(*h).heap.g.nclasses() {
            let first = (*h).heap.ring(idx);
            if first.is_null() {
                continue;
            }
            let (mut n, mut p) = (1, (*first).nextpool);
            while p != first {
                n += 1;
                p = (*p).nextpool;
            }
            let mut p = first;
            for _ in 0..n {
                let next = (*p).nextpool;
                f(p);
                p = next;
            }
        }
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
    use crate::thread::{PerThread, Registered};

    impl PerThread for ShardedCore {
        type Config = Geometry;
        type Local = ThreadHeap;

        fn build(g: Geometry) -> Self {
            ShardedCore::new(g)
        }

        fn attach(&self) -> *mut ThreadHeap {
            ShardedCore::attach(self)
        }

        unsafe fn detach(&self, h: *mut ThreadHeap) {
            // SAFETY: forwarded contract.
            unsafe { ShardedCore::detach(self, h) }
        }

        unsafe fn alloc(&self, h: *mut ThreadHeap, layout: Layout) -> *mut u8 {
            // SAFETY: forwarded contract.
            unsafe { ShardedCore::alloc(self, h, layout) }
        }

        unsafe fn dealloc(&self, h: *mut ThreadHeap, ptr: *mut u8, layout: Layout) {
            // SAFETY: forwarded contract.
            unsafe { ShardedCore::dealloc(self, h, ptr, layout) }
        }

        unsafe fn realloc(
            &self,
            h: *mut ThreadHeap,
            ptr: *mut u8,
            layout: Layout,
            new_size: usize,
        ) -> *mut u8 {
            // SAFETY: forwarded contract.
            unsafe { ShardedCore::realloc(self, h, ptr, layout, new_size) }
        }

        fn stats(&self) -> Stats {
            ShardedCore::stats(self)
        }

        fn empty_stats(g: &Geometry) -> Stats {
            Stats::empty(*g)
        }
    }

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

        /// The geometry this allocator runs.
        pub fn geometry(&self) -> Geometry {
            *self.inner.config()
        }
    }

    crate::thread::delegate_to_registered!(Sharded);
}

/// Heap state after `fork()` for the heaps of every thread but the forking
/// one: nobody owns, adopts or collects it again.
#[cfg(not(loom))]
const ORPHANED: u32 = 3;

/// Fork (see `fork`). Only arena operations take a lock, so that lock is
/// all the handlers hold. In the child, every heap but the forking
/// thread's is *orphaned*: its owner does not exist there, and its pools
/// and lists, written without a lock, may have been caught mid-update by
/// the fork (an abandoned heap's too: its owner's last writes are not
/// ordered before the fork by any lock). The state `ORPHANED` is one no
/// transition starts from, so the child never allocates from, adopts,
/// collects or waits for such a heap; blocks of its pools freed in the
/// child stay on their remote or delayed stacks. What those threads held
/// is lost to the child, as with glibc's or jemalloc's thread caches.
#[cfg(not(loom))]
impl crate::fork::ForkPerThread for ShardedCore {
    fn lock_all(&self) {
        // SAFETY: a fork handler; the core outlives the hold.
        unsafe {
            self.fork_arenas.hold(core::mem::transmute::<
                crate::sync::MutexGuard<'_, Arenas>,
                crate::sync::MutexGuard<'static, Arenas>,
            >(lock(&self.arenas)))
        }
    }

    unsafe fn parent(&self) {
        // SAFETY: a fork handler.
        unsafe { self.fork_arenas.release() }
    }

    unsafe fn child(&self, mine: *mut ()) {
        // SAFETY: a fork handler; the child has one thread, this one, so
        // nothing races with the walk. Heaps stay mapped while the core
        // lives.
        unsafe {
            self.fork_arenas.release();
            let mine = mine.cast::<ThreadHeap>();
            let (mut live, mut others) = (0, 0);
            let mut h = self.heaps.load(Ordering::Acquire);
            while !h.is_null() {
                if h == mine {
                    live += 1;
                } else {
                    (*h).state.store(ORPHANED, Ordering::Relaxed);
                    others += 1;
                }
                h = (*h).next_all;
            }
            self.live_heaps.store(live, Ordering::Relaxed);
            self.abandoned_heaps.store(others, Ordering::Relaxed);
        }
    }
}
