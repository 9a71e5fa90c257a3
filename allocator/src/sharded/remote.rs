//! Remote frees: a block freed by a thread other than its pool's owner.
//! The freeing thread gathers such blocks per destination heap in its
//! outbox table and posts a whole batch with one CAS onto the owner's
//! inbound stack; the owner drains that stack when a class runs dry (see
//! the module docs of `sharded`).

use super::*;

/// Blocks gathered for one destination heap, linked through their first
/// word, `head` to `tail`.
#[derive(Clone, Copy)]
pub(super) struct Outbox {
    dest: *mut ThreadHeap,
    head: *mut u8,
    tail: *mut u8,
    count: u32,
}

pub(super) const NO_OUTBOX: Outbox = Outbox {
    dest: null_mut(),
    head: null_mut(),
    tail: null_mut(),
    count: 0,
};

/// The outbox slot of destination heap `dest` (heaps are page-aligned).
#[inline(always)]
pub(super) fn slot_of(dest: *mut ThreadHeap) -> usize {
    let a = dest as usize >> 12;
    (a ^ (a >> 4)) & (REMOTE_SLOTS - 1)
}

impl ShardedCore {
    /// Frees every block of `h`'s inbound stack into its pool.
    /// `abandoned`: `h` is being worked on by a collector.
    ///
    /// # Safety
    /// The caller owns `h` (as its thread or as its collector).
    #[inline(never)]
    pub(super) unsafe fn drain_inbound(&self, h: *mut ThreadHeap, abandoned: bool) {
        // SAFETY: caller's contract; Acquire pairs with the posters' CAS so
        // their link writes are visible. Every block is an allocated block
        // of one of `h`'s pools.
        unsafe {
            let mut b = (*h).inbound.0.swap(null_mut(), Ordering::Acquire);
            let mut src = self.source(h, abandoned);
            let mut n = 0;
            while !b.is_null() {
                let next = next_of(b);
                let p = pool_of(b, &self.g);
                debug_assert_eq!((*p).owner.load(Ordering::Relaxed), h.cast());
                n += 1;
                // Into its pool, not onto the heap's list: measured faster
                // in the producer/consumer bench (the pool's list is taken
                // whole when the pool becomes current again).
                (*h).heap.free(p, b, &mut src);
                b = next;
            }
            bump64(&(*h).remote_collected, n);
        }
    }

    /// Puts a block of heap `owner`'s pool into `h`'s outbox for `owner`,
    /// posting the batch when it is full or `owner` has exited.
    ///
    /// # Safety
    /// `h` is the calling thread's heap; `ptr` a live block, now owned by
    /// the caller, of a pool of heap `owner` (not `h`).
    #[inline(never)]
    pub(super) unsafe fn free_remote(
        &self,
        h: *mut ThreadHeap,
        owner: *mut ThreadHeap,
        ptr: *mut u8,
    ) {
        // SAFETY: `h` is ours; heaps stay mapped while the core lives; the
        // block is ours to link.
        unsafe {
            let k = slot_of(owner);
            // The common case: the slot gathers for `owner` and has room.
            let linked = (*h).local.with_mut(|l| {
                let o = (*l).outboxes.get_unchecked_mut(k);
                if o.dest != owner || o.count + 1 >= REMOTE_BATCH {
                    return false;
                }
                set_next(ptr, o.head);
                if o.head.is_null() {
                    o.tail = ptr;
                }
                o.head = ptr;
                o.count += 1;
                true
            });
            if linked && (*owner).state.0.load(Ordering::Relaxed) == OWNED {
                return;
            }
            self.free_remote_slow(h, owner, ptr, k, linked);
        }
    }

    /// The rest of [`free_remote`](Self::free_remote): the slot holds
    /// another destination (post that batch first), or the batch is full,
    /// or `owner` has exited (post now, so the block does not wait).
    ///
    /// # Safety
    /// As for `free_remote`; `k` is `owner`'s slot, and `linked` says
    /// whether `ptr` is in it already.
    #[inline(never)]
    pub(super) unsafe fn free_remote_slow(
        &self,
        h: *mut ThreadHeap,
        owner: *mut ThreadHeap,
        ptr: *mut u8,
        k: usize,
        linked: bool,
    ) {
        // SAFETY: as in `free_remote`.
        unsafe {
            let gone = (*owner).state.0.load(Ordering::Relaxed) != OWNED;
            let (evicted, full) = (*h).local.with_mut(|l| {
                let o = (*l).outboxes.get_unchecked_mut(k);
                let mut evicted = NO_OUTBOX;
                if o.dest != owner {
                    evicted = *o;
                    *o = Outbox {
                        dest: owner,
                        ..NO_OUTBOX
                    };
                }
                if !linked {
                    set_next(ptr, o.head);
                    if o.head.is_null() {
                        o.tail = ptr;
                    }
                    o.head = ptr;
                    o.count += 1;
                }
                let mut full = NO_OUTBOX;
                if o.count >= REMOTE_BATCH || gone {
                    full = core::mem::replace(
                        o,
                        Outbox {
                            dest: owner,
                            ..NO_OUTBOX
                        },
                    );
                }
                (evicted, full)
            });
            self.post(h, evicted);
            self.post(h, full);
        }
    }

    /// Posts every outbox of `h`.
    ///
    /// # Safety
    /// The caller owns `h`.
    pub(super) unsafe fn post_all(&self, h: *mut ThreadHeap) {
        for k in 0..REMOTE_SLOTS {
            // SAFETY: `h` is ours; the batch is taken out of the outbox
            // before it is posted.
            unsafe {
                let o = (*h).local.with_mut(|l| {
                    let o = (*l).outboxes[k];
                    (*l).outboxes[k] = NO_OUTBOX;
                    o
                });
                self.post(h, o);
            }
        }
    }

    /// Pushes a batch onto its destination's inbound stack with one CAS,
    /// then collects the destination if its thread has exited.
    ///
    /// # Safety
    /// The caller owns `h` and the batch's blocks (taken out of `h`'s
    /// outboxes), allocated blocks of pools of `o.dest`.
    pub(super) unsafe fn post(&self, h: *mut ThreadHeap, o: Outbox) {
        if o.count == 0 {
            return;
        }
        // SAFETY: heaps stay mapped while the core lives; the blocks are ours.
        unsafe {
            let inbound = &(*o.dest).inbound.0;
            let mut cur = inbound.load(Ordering::Relaxed);
            loop {
                set_next(o.tail, cur);
                // Release: whoever takes the stack sees the links.
                match inbound.compare_exchange_weak(
                    cur,
                    o.head,
                    Ordering::Release,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => break,
                    Err(now) => cur = now,
                }
            }
            bump64(&(*h).remote_posted, o.count as u64);
            // Pairs with the fence in `detach` / `collect_abandoned`.
            fence(Ordering::SeqCst);
            if (*o.dest).state.0.load(Ordering::Relaxed) == ABANDONED {
                self.collect_abandoned(o.dest);
            }
        }
    }
}
