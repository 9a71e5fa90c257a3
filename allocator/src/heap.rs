//! A heap: the per-size-class `usedpools` rings and the block alloc/free
//! paths of CPython's `pymalloc_alloc` / `pymalloc_free`.
//!
//! `usedpools[idx]` is the head of a circular doubly linked ring of the
//! pools of class `idx` that have a free block; full pools leave the ring
//! and come back to its front when a block is freed into them, and empty
//! pools go back to where they came from. Where pools come from and go to
//! is a [`PoolSource`]: the arenas themselves for the single-lock
//! allocators; for `sharded`, a per-heap cache of empty pools in front of
//! the arenas and their lock. That keeps this file the one implementation
//! of pymalloc's block logic that every allocator shares.
//!
//! The alloc path is split so that callers can inline the fast part
//! ([`Heap::alloc`]: pop from the ring's first pool) and keep everything
//! else out of line ([`Heap::alloc_slow`]).

use core::ptr::null_mut;

use crate::arena::Arenas;
use crate::geometry::{Geometry, MAX_CLASSES};
use crate::pool::{self, FreeTransition, Pool};
use crate::sync::UnsafeCell;

/// Where a heap gets empty pools and returns them.
pub(crate) trait PoolSource {
    /// An empty pool, or null when the OS refuses memory.
    fn get_pool(&mut self) -> *mut Pool;

    /// Takes back an empty pool.
    ///
    /// # Safety
    /// `p` must come from `get_pool` of this source, have no block in use
    /// and be linked in no ring.
    unsafe fn put_pool(&mut self, p: *mut Pool);

    /// Whether an emptied pool that is the only one in its ring stays there
    /// instead of going back to its source. pymalloc returns it (the pool
    /// thrashes between ring and arena when one object is allocated and
    /// freed in a loop, a cost hidden in CPython's lock); a per-thread heap
    /// keeps it, as mimalloc keeps a page it would otherwise retire.
    #[inline(always)]
    fn keep_last_empty(&self) -> bool {
        false
    }
}

impl PoolSource for Arenas {
    #[inline]
    fn get_pool(&mut self) -> *mut Pool {
        Arenas::get_pool(self)
    }

    #[inline]
    unsafe fn put_pool(&mut self, p: *mut Pool) {
        // SAFETY: forwarded contract.
        unsafe { Arenas::put_pool(self, p) }
    }
}

/// The `usedpools` rings of one heap.
pub(crate) struct Heap {
    pub(crate) g: Geometry,
    usedpools: UnsafeCell<[*mut Pool; MAX_CLASSES]>,
}

// SAFETY: a heap's pools are reached only by whoever owns the heap (under a
// lock, or its owning thread), so moving the heap between threads is fine.
unsafe impl Send for Heap {}

impl Heap {
    crate::const_fn! {
        pub(crate) fn new(g: Geometry) -> Heap {
            Heap { g, usedpools: UnsafeCell::new([null_mut(); MAX_CLASSES]) }
        }
    }

    /// The first pool of ring `idx` (null if empty).
    ///
    /// # Safety
    /// The caller owns the heap; `idx < MAX_CLASSES`.
    #[inline(always)]
    pub(crate) unsafe fn ring(&self, idx: usize) -> *mut Pool {
        debug_assert!(idx < MAX_CLASSES);
        // SAFETY: the caller owns the heap; `idx` is in bounds.
        unsafe { self.usedpools.with(|r| *(*r).get_unchecked(idx)) }
    }

    /// The first pool of ring `idx`, for tests holding the whole core.
    #[cfg(test)]
    pub(crate) fn ring_head(&self, idx: usize) -> *mut Pool {
        // SAFETY: tests call this on a core they own, quiescent.
        unsafe { self.ring(idx) }
    }

    /// # Safety
    /// As for [`ring`](Self::ring).
    #[inline(always)]
    unsafe fn set_ring(&self, idx: usize, p: *mut Pool) {
        debug_assert!(idx < MAX_CLASSES);
        // SAFETY: the caller owns the heap; `idx` is in bounds.
        unsafe {
            self.usedpools
                .with_mut(|r| *(*r).get_unchecked_mut(idx) = p)
        }
    }

    /// Allocates a block of class `idx` from the first pool of its ring;
    /// null when the ring is empty (then call [`alloc_slow`](Self::alloc_slow)).
    ///
    /// # Safety
    /// `idx` must be a class of the heap's geometry; the caller owns the heap.
    #[inline(always)]
    pub(crate) unsafe fn alloc_fast(&self, idx: usize) -> *mut u8 {
        // SAFETY: pools in the ring belong to this heap and have a free block.
        unsafe {
            let p = self.ring(idx);
            if p.is_null() {
                return null_mut();
            }
            let b = pool::take(p, &self.g);
            if (*p).freeblock.get().is_null() {
                self.pool_full(idx, p);
            }
            b
        }
    }

    /// A pool ran out of blocks: it leaves its ring.
    ///
    /// # Safety
    /// `p` is the first pool of ring `idx` and has no free block.
    #[inline(never)]
    unsafe fn pool_full(&self, idx: usize, p: *mut Pool) {
        // SAFETY: caller's contract.
        unsafe { self.unlink(idx, p) }
    }

    /// Allocates a block of class `idx`; null when out of memory.
    ///
    /// # Safety
    /// `idx` must be a class of the heap's geometry; the caller owns the heap.
    #[inline(always)]
    pub(crate) unsafe fn alloc<S: PoolSource>(&self, idx: usize, src: &mut S) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe {
            let b = self.alloc_fast(idx);
            if !b.is_null() {
                return b;
            }
            self.alloc_from_new_pool(idx, src)
        }
    }

    /// Allocates a block of class `idx` from a fresh pool of `src`; the
    /// caller found ring `idx` empty.
    ///
    /// # Safety
    /// As for [`alloc`](Self::alloc).
    #[inline(never)]
    pub(crate) unsafe fn alloc_from_new_pool<S: PoolSource>(
        &self,
        idx: usize,
        src: &mut S,
    ) -> *mut u8 {
        let p = src.get_pool();
        if p.is_null() {
            return null_mut();
        }
        // SAFETY: the source hands us an empty pool of our own.
        unsafe {
            let b = pool::init_and_take(p, idx, &self.g);
            if !(*p).freeblock.get().is_null() {
                self.link_front(idx, p);
            }
            b
        }
    }

    /// Frees `block` of pool `p`.
    ///
    /// # Safety
    /// `block` must be an allocated block of `p`, a pool of this heap.
    #[inline(always)]
    pub(crate) unsafe fn free<S: PoolSource>(&self, p: *mut Pool, block: *mut u8, src: &mut S) {
        // SAFETY: the caller owns `p` through this heap.
        unsafe {
            let t = pool::give(p, block);
            if t != FreeTransition::Used {
                self.after_free(p, t, src);
            }
        }
    }

    /// Moves `p` between ring and source after a block came back to it.
    ///
    /// # Safety
    /// `p` must be a pool of this heap whose block was just freed with
    /// transition `t`.
    #[inline(never)]
    pub(crate) unsafe fn after_free<S: PoolSource>(
        &self,
        p: *mut Pool,
        t: FreeTransition,
        src: &mut S,
    ) {
        // SAFETY: the caller owns `p`.
        unsafe {
            // A heap's current pool (`sharded`) stays where it is.
            if (*p).current.get() {
                return;
            }
            match t {
                FreeTransition::Used => {}
                FreeTransition::WasFull => {
                    self.link_front(pool::szidx(p), p);
                }
                FreeTransition::Empty => {
                    if (*p).in_ring.get() {
                        if (*p).nextpool.get() == p && src.keep_last_empty() {
                            return;
                        }
                        self.unlink(pool::szidx(p), p);
                    }
                    src.put_pool(p);
                }
            }
        }
    }

    /// Inserts `p` at the front of ring `idx` (CPython's full → used rule:
    /// the pool that just got a block back is used first).
    ///
    /// # Safety
    /// `p` must be a pool of this heap of class `idx`, in no ring.
    #[inline]
    pub(crate) unsafe fn link_front(&self, idx: usize, p: *mut Pool) {
        // SAFETY: ring members are live pools of this heap.
        unsafe {
            debug_assert!(
                !(*p).in_ring.get(),
                "link_front of a pool already in a ring"
            );
            debug_assert!(!(*p).freeblock.get().is_null(), "link_front of a full pool");
            let head = self.ring(idx);
            if head.is_null() {
                (*p).nextpool.set(p);
                (*p).prevpool.set(p);
            } else {
                let tail = (*head).prevpool.get();
                (*p).nextpool.set(head);
                (*p).prevpool.set(tail);
                (*tail).nextpool.set(p);
                (*head).prevpool.set(p);
            }
            (*p).in_ring.set(true);
            self.set_ring(idx, p);
        }
    }

    /// Removes `p` from ring `idx`.
    ///
    /// # Safety
    /// `p` must be in ring `idx` of this heap.
    #[inline]
    pub(crate) unsafe fn unlink(&self, idx: usize, p: *mut Pool) {
        // SAFETY: `p` and its neighbours are live ring members.
        unsafe {
            debug_assert!((*p).in_ring.get(), "unlink of a pool in no ring");
            let next = (*p).nextpool.get();
            if next == p {
                self.set_ring(idx, null_mut());
            } else {
                let prev = (*p).prevpool.get();
                (*prev).nextpool.set(next);
                (*next).prevpool.set(prev);
                if self.ring(idx) == p {
                    self.set_ring(idx, next);
                }
            }
            (*p).in_ring.set(false);
        }
    }

    /// Calls `f` on every pool in the rings; `f` may unlink the pool it is
    /// given (and nothing else).
    ///
    /// # Safety
    /// The caller owns the heap.
    pub(crate) unsafe fn for_each_ring_pool(&self, mut f: impl FnMut(*mut Pool)) {
        // SAFETY: ring members are live pools of this heap; we count the
        // ring before walking it so that unlinking the current pool does
        // not derail us.
        unsafe {
            for idx in 0..self.g.nclasses() {
                let first = self.ring(idx);
                if first.is_null() {
                    continue;
                }
                let (mut n, mut p) = (1, (*first).nextpool.get());
                while p != first {
                    n += 1;
                    p = (*p).nextpool.get();
                }
                let mut p = first;
                for _ in 0..n {
                    let next = (*p).nextpool.get();
                    f(p);
                    p = next;
                }
            }
        }
    }
}
