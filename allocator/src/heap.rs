//! A heap: the per-size-class `usedpools` rings and the block alloc/free
//! paths of CPython's `pymalloc_alloc` / `pymalloc_free`.
//!
//! `usedpools[idx]` is the head of a circular doubly linked ring of the
//! pools of class `idx` that have a free block; full pools leave the ring
//! and come back to its front when a block is freed into them, and empty
//! pools go back to their arena. Where pools come from and go to is a
//! [`PoolSource`]: the arenas themselves for the single-lock allocators, the
//! arenas behind their lock for `sharded`, whose source also knows how to
//! find blocks other threads freed into a pool. That keeps this file the one
//! implementation of pymalloc's block logic that every allocator shares.

use core::ptr::null_mut;

use crate::arena::Arenas;
use crate::geometry::{Geometry, MAX_CLASSES};
use crate::pool::{self, FreeTransition, Pool};

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

    /// Called when a pool's local free list has run dry: returns true if it
    /// found more blocks for it (the pool stays in its ring), false if the
    /// pool is full.
    ///
    /// # Safety
    /// `p` must be a pool owned by the caller's heap.
    #[inline(always)]
    unsafe fn refill(&mut self, _p: *mut Pool) -> bool {
        false
    }

    /// Whether an emptied pool that is the only one in its ring stays there
    /// instead of going back to its arena. pymalloc returns it (the pool
    /// thrashes between ring and arena when one object is allocated and
    /// freed in a loop, a cost hidden in CPython's lock); a per-thread heap
    /// keeps it, as mimalloc keeps a page it would otherwise retire, because
    /// the arenas are shared and behind a lock.
    #[inline(always)]
    fn keep_last_empty(&self) -> bool {
        false
    }

    /// Called when a full pool got a block back and rejoined its ring.
    ///
    /// # Safety
    /// `p` must be a pool owned by the caller's heap.
    #[inline(always)]
    unsafe fn relinked(&mut self, _p: *mut Pool) {}
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
    usedpools: [*mut Pool; MAX_CLASSES],
}

// SAFETY: a heap's pools are reached only by whoever owns the heap (under a
// lock, or its owning thread), so moving the heap between threads is fine.
unsafe impl Send for Heap {}

impl Heap {
    crate::const_fn! {
        pub(crate) fn new(g: Geometry) -> Heap {
            Heap { g, usedpools: [null_mut(); MAX_CLASSES] }
        }
    }

    /// Allocates a block of class `idx`; null when out of memory.
    ///
    /// # Safety
    /// `idx` must be a class of the heap's geometry; the caller owns the heap.
    #[inline(always)]
    pub(crate) unsafe fn alloc<S: PoolSource>(&mut self, idx: usize, src: &mut S) -> *mut u8 {
        // SAFETY: pools in the ring belong to this heap and have a free block.
        unsafe {
            let p = *self.usedpools.get_unchecked(idx);
            if !p.is_null() {
                let b = pool::take(p, self.g.class_size(idx));
                if (*p).freeblock.is_null() && !src.refill(p) {
                    self.unlink(idx, p);
                }
                return b;
            }
            self.alloc_from_new_pool(idx, src)
        }
    }

    /// # Safety
    /// As for [`alloc`](Self::alloc), with the ring of `idx` empty.
    #[inline(never)]
    unsafe fn alloc_from_new_pool<S: PoolSource>(&mut self, idx: usize, src: &mut S) -> *mut u8 {
        let p = src.get_pool();
        if p.is_null() {
            return null_mut();
        }
        // SAFETY: the source hands us an empty pool of our own.
        unsafe {
            let b = pool::init_and_take(p, idx, &self.g);
            if !(*p).freeblock.is_null() || src.refill(p) {
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
    pub(crate) unsafe fn free<S: PoolSource>(&mut self, p: *mut Pool, block: *mut u8, src: &mut S) {
        // SAFETY: the caller owns `p` through this heap.
        unsafe {
            let t = pool::give(p, block);
            self.after_free(p, t, src);
        }
    }

    /// Moves `p` between rings and arena after blocks came back to it.
    ///
    /// # Safety
    /// `p` must be a pool of this heap whose blocks were just freed with
    /// transition `t`.
    #[inline(always)]
    pub(crate) unsafe fn after_free<S: PoolSource>(
        &mut self,
        p: *mut Pool,
        t: FreeTransition,
        src: &mut S,
    ) {
        // SAFETY: the caller owns `p`.
        unsafe {
            match t {
                FreeTransition::Used => {}
                FreeTransition::WasFull => {
                    if !(*p).in_ring {
                        let idx = (*p).szidx.load(crate::sync::Ordering::Relaxed) as usize;
                        self.link_front(idx, p);
                        src.relinked(p);
                    }
                }
                FreeTransition::Empty => {
                    if (*p).in_ring {
                        if (*p).nextpool == p && src.keep_last_empty() {
                            return;
                        }
                        let idx = (*p).szidx.load(crate::sync::Ordering::Relaxed) as usize;
                        self.unlink(idx, p);
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
    pub(crate) unsafe fn link_front(&mut self, idx: usize, p: *mut Pool) {
        // SAFETY: ring members are live pools of this heap.
        unsafe {
            let head = self.usedpools[idx];
            if head.is_null() {
                (*p).nextpool = p;
                (*p).prevpool = p;
            } else {
                let tail = (*head).prevpool;
                (*p).nextpool = head;
                (*p).prevpool = tail;
                (*tail).nextpool = p;
                (*head).prevpool = p;
            }
            (*p).in_ring = true;
            self.usedpools[idx] = p;
        }
    }

    /// Removes `p` from ring `idx`.
    ///
    /// # Safety
    /// `p` must be in ring `idx` of this heap.
    #[inline]
    pub(crate) unsafe fn unlink(&mut self, idx: usize, p: *mut Pool) {
        // SAFETY: `p` and its neighbours are live ring members.
        unsafe {
            let next = (*p).nextpool;
            if next == p {
                self.usedpools[idx] = null_mut();
            } else {
                let prev = (*p).prevpool;
                (*prev).nextpool = next;
                (*next).prevpool = prev;
                if self.usedpools[idx] == p {
                    self.usedpools[idx] = next;
                }
            }
            (*p).in_ring = false;
        }
    }

    /// The first pool of ring `idx` (null if empty), for walking rings.
    pub(crate) fn ring(&self, idx: usize) -> *mut Pool {
        self.usedpools[idx]
    }
}
