//! A heap's pools: refilling a class's list from its current pool or
//! another, giving surplus blocks back to their pools, and the heap's
//! cache of empty pools in front of the arenas.

use super::*;

/// The pool source of one heap: its cache of empty pools, then the arenas.
pub(super) struct Source<'a> {
    core: &'a ShardedCore,
    h: *mut ThreadHeap,
    /// True when `h` is an abandoned heap worked on by a collector: it
    /// keeps no empty pool, since no thread allocates from it.
    abandoned: bool,
}

impl PoolSource for Source<'_> {
    fn get_pool(&mut self) -> *mut Pool {
        debug_assert!(!self.abandoned, "a collector never allocates");
        // SAFETY: `h` is ours; cached pools are empty pools of ours.
        unsafe {
            let cached = (*self.h).local.with_mut(|l| {
                let p = (*l).empty;
                if !p.is_null() {
                    (*l).empty = (*p).nextpool.get();
                    (*l).nempty -= 1;
                }
                p
            });
            if !cached.is_null() {
                return cached;
            }
            // About to take the arena lock: a good moment to send what
            // this thread freed for others too.
            self.core.post_all(self.h);
            let p = lock(&self.core.arenas).get_pool();
            if !p.is_null() {
                // An empty pool from the arenas is ours alone now: no block
                // of it is live, so no other thread can reach it.
                (*p).owner.store(self.h.cast(), Ordering::Relaxed);
                (*self.h).local.with_mut(|l| (*l).npools += 1);
            }
            p
        }
    }

    unsafe fn put_pool(&mut self, p: *mut Pool) {
        // SAFETY: the pool is empty and unlinked; every block is on its
        // free list (blocks in transit count in `ref_count`), so nobody
        // else can reach it. The heap is ours.
        unsafe {
            debug_assert_eq!(pool::ref_count(p), 0, "put_pool of a pool in use");
            debug_assert!(!(*p).in_ring.get(), "put_pool of a pool in a ring");
            let cap = if self.abandoned {
                0
            } else {
                self.core.empty_cap
            };
            let kept = (*self.h).local.with_mut(|l| {
                if (*l).nempty < cap {
                    (*p).nextpool.set((*l).empty);
                    (*l).empty = p;
                    (*l).nempty += 1;
                    true
                } else {
                    (*l).npools -= 1;
                    false
                }
            });
            if !kept {
                lock(&self.core.arenas).put_pool(p);
            }
        }
    }
}

impl ShardedCore {
    #[inline(always)]
    /// The pool source of heap `h` (`abandoned`: worked on by a collector).
    pub(super) fn source(&self, h: *mut ThreadHeap, abandoned: bool) -> Source<'_> {
        Source {
            core: self,
            h,
            abandoned,
        }
    }

    /// Fills the empty list of class `idx`: from its current pool's own
    /// free list (blocks that came back through the pool, remote ones
    /// among them), else by carving never-used blocks of it; once the
    /// current pool is spent, another pool becomes current: the first of
    /// the class's ring, after taking back what other threads freed, or a
    /// pool from the heap's cache or the arenas. False when out of memory.
    ///
    /// # Safety
    /// `h` is the calling thread's heap; `idx` a class of the geometry
    /// whose list is empty.
    #[inline(never)]
    pub(super) unsafe fn refill(&self, h: *mut ThreadHeap, idx: usize) -> bool {
        // SAFETY: `h` and its pools are ours.
        unsafe {
            let bin = &(*h).bins[idx];
            debug_assert!(bin.free.get().is_null());
            let size = self.g.class_size(idx);
            let mut p = bin.pool.load(Ordering::Relaxed);
            loop {
                if !p.is_null() {
                    let (mut list, mut n) = pool::take_list(p, size, &self.g);
                    if list.is_null() {
                        (list, n) = pool::carve_blocks(p, size, bin.limit);
                    }
                    if !list.is_null() {
                        bin.free.set(list);
                        bin.count.store(n, Ordering::Relaxed);
                        return true;
                    }
                    // Spent: every block is in use. It stays out of the
                    // ring, a full pool, until a block comes back.
                    (*p).current.set(false);
                    bin.pool.store(null_mut(), Ordering::Relaxed);
                }
                // No pool of the class with free blocks: take back what
                // other threads freed first.
                if (*h).heap.ring(idx).is_null()
                    && !(*h).inbound.0.load(Ordering::Relaxed).is_null()
                {
                    self.drain_inbound(h, false);
                }
                p = (*h).heap.ring(idx);
                if p.is_null() {
                    p = self.source(h, false).get_pool();
                    if p.is_null() {
                        return false;
                    }
                    pool::init(p, idx, &self.g);
                } else {
                    (*h).heap.unlink(idx, p);
                }
                (*p).current.set(true);
                bin.pool.store(p, Ordering::Relaxed);
            }
        }
    }

    /// Gives `n` blocks from the head of the list of class `idx` back to
    /// their pools, which may rejoin their ring or go back to the cache or
    /// the arenas.
    ///
    /// # Safety
    /// The caller owns `h`; the list holds at least `n` blocks.
    #[inline(never)]
    pub(super) unsafe fn give_back(&self, h: *mut ThreadHeap, idx: usize, n: u32) {
        // SAFETY: `h` and its pools are ours; listed blocks are free blocks
        // of its pools, counted in use there.
        unsafe {
            let bin = &(*h).bins[idx];
            debug_assert!(n <= bin.count.load(Ordering::Relaxed));
            let mut src = self.source(h, false);
            for _ in 0..n {
                let b = bin.free.get();
                bin.free.set(next_of(b));
                (*h).heap.free(pool_of(b, &self.g), b, &mut src);
            }
            bin.count
                .store(bin.count.load(Ordering::Relaxed) - n, Ordering::Relaxed);
        }
    }

    /// Empties the list of class `idx` into its pools, and makes its
    /// current pool an ordinary one: in its ring if it has free blocks,
    /// out of it if full. Returns that pool if it is empty instead, for
    /// the caller to return; else null.
    ///
    /// # Safety
    /// The caller owns `h`.
    pub(super) unsafe fn unbin(&self, h: *mut ThreadHeap, idx: usize) -> *mut Pool {
        // SAFETY: `h` and its pools are ours.
        unsafe {
            let bin = &(*h).bins[idx];
            self.give_back(h, idx, bin.count.load(Ordering::Relaxed));
            let p = bin.pool.load(Ordering::Relaxed);
            if p.is_null() {
                return null_mut();
            }
            bin.pool.store(null_mut(), Ordering::Relaxed);
            (*p).current.set(false);
            if pool::ref_count(p) == 0 {
                return p;
            }
            if !(*p).freeblock.get().is_null() {
                (*h).heap.link_front(idx, p);
            }
            null_mut()
        }
    }
}
