//! A pool: one pool-sized, pool-aligned unit of an arena holding blocks of
//! one size class, with its header at the start.
//!
//! Blocks are in one of three states, as in CPython: never used (beyond
//! `nextoffset`, handed out by bumping it), free (on the `freeblock` list,
//! threaded through the blocks' first word, LIFO), or allocated. A pool in
//! its heap's `usedpools` ring always has a non-null `freeblock`: taking the
//! last free block bumps the next never-used one onto the list, and when
//! none is left the pool is full and leaves the ring.
//!
//! The header is shared by all four allocators so that they have the same
//! geometry. Its last two fields serve only `sharded`: `remote` is the
//! stack of blocks freed by other threads (see `sharded`), `owner` the heap
//! that owns the pool. `ref_count` and `szidx` are atomics only so that a
//! statistics walk may read pools it does not own; their writer is always
//! the pool's owner, so plain `load`/`store` (never read-modify-write)
//! suffice and cost nothing over plain fields on x86-64.

use core::ptr::null_mut;

use crate::geometry::Geometry;
use crate::sync::{AtomicPtr, AtomicU32, AtomicUsize, Ordering};

/// `szidx` of a pool carved but never initialised for a class.
pub(crate) const DUMMY_SZIDX: u32 = u32::MAX;

/// Low bit of [`Pool::remote`]: the owner is not looking at this pool's
/// remote stack (the pool is full and out of its ring, or its heap is
/// abandoned), so remote frees must go to the owner heap's delayed-free
/// stack instead. Set only while the stack is empty.
pub(crate) const NOTIFY: usize = 1;

/// A pool header. Fields are reached through raw pointers to the pool
/// (`(*p).field`), never through a `&Pool`, since other threads may read
/// the atomic fields while the owner writes the plain ones.
#[repr(C)]
pub(crate) struct Pool {
    /// Blocks in use (CPython `ref.count`); written by the owner only.
    pub(crate) ref_count: AtomicU32,
    /// Size-class index, or [`DUMMY_SZIDX`]; written by the owner only.
    pub(crate) szidx: AtomicU32,
    /// Head of the free-block list.
    pub(crate) freeblock: *mut u8,
    /// Ring links in `usedpools`; `nextpool` also links `freepools`.
    pub(crate) nextpool: *mut Pool,
    pub(crate) prevpool: *mut Pool,
    /// Index of the arena this pool belongs to.
    pub(crate) arenaindex: u32,
    /// Offset of the next never-used block.
    pub(crate) nextoffset: u32,
    /// Largest offset at which a whole block still fits.
    pub(crate) maxnextoffset: u32,
    /// Whether the pool is linked in its heap's `usedpools` ring.
    pub(crate) in_ring: bool,
    /// `sharded`: stack of remotely freed blocks, with [`NOTIFY`] in bit 0.
    pub(crate) remote: AtomicUsize,
    /// `sharded`: the owning heap.
    pub(crate) owner: AtomicPtr<()>,
}

/// Size of a pool header before rounding to the geometry's alignment.
pub(crate) const POOL_HEADER_SIZE: usize = core::mem::size_of::<Pool>();

/// The pool holding `block`, found by masking the address to the pool size.
#[inline(always)]
pub(crate) fn pool_of(block: *mut u8, g: &Geometry) -> *mut Pool {
    ((block as usize) & !(g.pool_size - 1)) as *mut Pool
}

/// Reads the next-pointer stored in a free block's first word.
///
/// # Safety
/// `block` must be a free block of a live pool (its first word is a link).
#[inline(always)]
unsafe fn next_of(block: *mut u8) -> *mut u8 {
    // SAFETY: free blocks are at least 8 bytes and 8-aligned, and their
    // first word holds the list link (caller's contract).
    unsafe { block.cast::<*mut u8>().read() }
}

/// Writes a free block's next-pointer.
///
/// # Safety
/// `block` must be a block the caller may write (free, or being freed).
#[inline(always)]
unsafe fn set_next(block: *mut u8, next: *mut u8) {
    // SAFETY: as for `next_of`; the caller owns the block.
    unsafe { block.cast::<*mut u8>().write(next) }
}

/// Writes a header for a pool just carved from `arenaindex`'s arena.
///
/// # Safety
/// `p` must be a fresh, pool-aligned, writable pool of `g`.
pub(crate) unsafe fn carve(p: *mut Pool, arenaindex: u32) {
    // SAFETY: the caller hands us exclusive, writable pool memory; writing
    // a whole header initialises every field, atomics included.
    unsafe {
        p.write(Pool {
            ref_count: AtomicU32::new(0),
            szidx: AtomicU32::new(DUMMY_SZIDX),
            freeblock: null_mut(),
            nextpool: null_mut(),
            prevpool: null_mut(),
            arenaindex,
            nextoffset: 0,
            maxnextoffset: 0,
            in_ring: false,
            remote: AtomicUsize::new(0),
            owner: AtomicPtr::new(null_mut()),
        })
    }
}

/// Makes an empty pool ready to serve class `idx` and takes its first
/// block. A pool that last served the same class keeps its free list
/// (CPython's "luckily, this pool last contained blocks of the same size
/// class"); any other is re-initialised.
///
/// # Safety
/// `p` must be an empty pool (`ref_count == 0`) owned by the caller.
pub(crate) unsafe fn init_and_take(p: *mut Pool, idx: usize, g: &Geometry) -> *mut u8 {
    // SAFETY: the caller owns the empty pool `p`.
    unsafe {
        if (*p).szidx.load(Ordering::Relaxed) != idx as u32 || (*p).freeblock.is_null() {
            let size = g.class_size(idx);
            (*p).szidx.store(idx as u32, Ordering::Relaxed);
            (*p).freeblock = null_mut();
            (*p).nextoffset = g.pool_header_size() as u32;
            (*p).maxnextoffset = (g.pool_size - size) as u32;
            bump(p, size);
        }
        take(p, g.class_size(idx))
    }
}

/// Pops a block; if that empties the free list, bumps the next never-used
/// block onto it. Returns the block; afterwards `freeblock` is null exactly
/// when the pool has no block left for the local list (it may still have
/// remotely freed ones, which the caller checks).
///
/// # Safety
/// `p` must be owned by the caller, initialised for a class of `size`
/// bytes, with a non-null `freeblock`.
#[inline(always)]
pub(crate) unsafe fn take(p: *mut Pool, size: usize) -> *mut u8 {
    // SAFETY: the caller owns `p` and its free list is non-empty.
    unsafe {
        let bp = (*p).freeblock;
        let rc = (*p).ref_count.load(Ordering::Relaxed);
        (*p).ref_count.store(rc + 1, Ordering::Relaxed);
        (*p).freeblock = next_of(bp);
        if (*p).freeblock.is_null() {
            bump(p, size);
        }
        bp
    }
}

/// Moves one never-used block onto the (empty) free list, if one fits.
///
/// # Safety
/// `p` must be owned by the caller and have an empty free list.
#[inline]
unsafe fn bump(p: *mut Pool, size: usize) {
    // SAFETY: the offset is within the pool (checked against maxnextoffset),
    // and the block there has never been handed out.
    unsafe {
        if (*p).nextoffset <= (*p).maxnextoffset {
            let bp = p.cast::<u8>().add((*p).nextoffset as usize);
            (*p).nextoffset += size as u32;
            set_next(bp, null_mut());
            (*p).freeblock = bp;
        }
    }
}

/// What freeing a block did to its pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FreeTransition {
    /// Still some blocks in use and some free.
    Used,
    /// The pool was full and now has a free block (full → used).
    WasFull,
    /// No block is in use any more (used → empty).
    Empty,
}

/// Pushes `block` on its pool's free list.
///
/// # Safety
/// `p` must be owned by the caller and `block` an allocated block of it.
#[inline(always)]
pub(crate) unsafe fn give(p: *mut Pool, block: *mut u8) -> FreeTransition {
    // SAFETY: the caller owns `p`; `block` is one of its allocated blocks.
    unsafe {
        let last = (*p).freeblock;
        set_next(block, last);
        (*p).freeblock = block;
        let rc = (*p).ref_count.load(Ordering::Relaxed).wrapping_sub(1);
        (*p).ref_count.store(rc, Ordering::Relaxed);
        if rc == 0 {
            FreeTransition::Empty
        } else if last.is_null() {
            FreeTransition::WasFull
        } else {
            FreeTransition::Used
        }
    }
}

/// `sharded`: pushes a block freed by a thread that does not own `p` onto
/// its remote stack with one CAS. Returns false, without pushing, when the
/// pool carries [`NOTIFY`]: the caller must hand the block to the owner
/// heap instead.
///
/// # Safety
/// `block` must be an allocated block of `p`, owned by the caller, and `p`
/// a live pool (it cannot be released while it has an allocated block).
#[inline]
pub(crate) unsafe fn push_remote(p: *mut Pool, block: *mut u8) -> bool {
    // SAFETY: `p` is live while `block` is allocated; the block is ours to write.
    unsafe {
        let remote = &(*p).remote;
        let mut cur = remote.load(Ordering::Relaxed);
        loop {
            if cur & NOTIFY != 0 {
                return false;
            }
            set_next(block, cur as *mut u8);
            // Release: the owner that takes the stack must see the link.
            match remote.compare_exchange_weak(
                cur,
                block as usize,
                Ordering::Release,
                Ordering::Relaxed,
            ) {
                Ok(_) => return true,
                Err(now) => cur = now,
            }
        }
    }
}

/// `sharded`: takes the whole remote stack and gives every block back to
/// the local free list. Returns how many blocks came back. [`NOTIFY`] is
/// never set while the stack holds blocks, so it is left as it is.
///
/// # Safety
/// `p` must be owned by the caller.
#[inline]
pub(crate) unsafe fn collect_remote(p: *mut Pool) -> usize {
    // SAFETY: the caller owns `p`; the Acquire swap makes every pusher's
    // link write visible before we walk the list.
    unsafe {
        // The common case, nothing to take, costs one load.
        if (*p).remote.load(Ordering::Relaxed) & !NOTIFY == 0 {
            return 0;
        }
        let mut b = (*p).remote.swap(0, Ordering::Acquire) as *mut u8;
        let mut n = 0;
        while !b.is_null() {
            let next = next_of(b);
            // Cannot empty the pool: the caller holds a block of it or
            // checks `ref_count` afterwards.
            give(p, b);
            n += 1;
            b = next;
        }
        n
    }
}

/// `sharded`: sets [`NOTIFY`] on a pool whose owner stops looking at its
/// remote stack, unless blocks arrived meanwhile. True if the pool carries
/// `NOTIFY` now; false if its stack is non-empty (collect it, then retry).
///
/// # Safety
/// `p` must be owned by the caller.
pub(crate) unsafe fn try_mark_notify(p: *mut Pool) -> bool {
    // SAFETY: `p` is a live pool owned by the caller.
    let remote = unsafe { &(*p).remote };
    match remote.compare_exchange(0, NOTIFY, Ordering::AcqRel, Ordering::Relaxed) {
        Ok(_) => true,
        Err(now) => now == NOTIFY,
    }
}

/// `sharded`: clears [`NOTIFY`] on a pool its owner looks at again.
///
/// # Safety
/// `p` must be owned by the caller.
pub(crate) unsafe fn unmark_notify(p: *mut Pool) {
    // SAFETY: `p` is a live pool owned by the caller. While NOTIFY is set
    // nobody pushes, so the word is exactly NOTIFY or already clear.
    let _ =
        unsafe { &(*p).remote }.compare_exchange(NOTIFY, 0, Ordering::AcqRel, Ordering::Relaxed);
}
