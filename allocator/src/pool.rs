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
//! The header itself is `pool_header.rs`.

use core::ptr::null_mut;

use crate::geometry::Geometry;
pub(crate) use crate::pool_header::{Pool, DUMMY_SZIDX};
use crate::sync::{AtomicPtr, AtomicU32, Ordering, UnsafeCell};

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
pub(crate) unsafe fn next_of(block: *mut u8) -> *mut u8 {
    #[cfg(loom)]
    link_shadow::read(block);
    // SAFETY: free blocks are at least 8 bytes and 8-aligned, and their
    // first word holds the list link (caller's contract).
    unsafe { block.cast::<*mut u8>().read() }
}

/// Writes a free block's next-pointer.
///
/// # Safety
/// `block` must be a block the caller may write (free, or being freed).
#[inline(always)]
pub(crate) unsafe fn set_next(block: *mut u8, next: *mut u8) {
    #[cfg(loom)]
    link_shadow::write(block);
    // SAFETY: as for `next_of`; the caller owns the block.
    unsafe { block.cast::<*mut u8>().write(next) }
}

/// Under loom, the link word of every block is shadowed by a loom cell
/// (keyed by the block's address, made on first use in each execution), so
/// that handing a linked block to another thread without the right
/// ordering (a remote free posted with `Relaxed`, say) fails the model as a
/// causality violation, as for any other plain field: the link itself
/// lives in the block, raw memory that loom cannot see.
#[cfg(loom)]
mod link_shadow {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    struct Shadow(loom::cell::UnsafeCell<()>);
    // SAFETY: loom runs a model's threads one at a time; the cell only
    // records accesses for the checker.
    unsafe impl Send for Shadow {}
    // SAFETY: as above.
    unsafe impl Sync for Shadow {}

    loom::lazy_static! {
        static ref CELLS: Mutex<HashMap<usize, Arc<Shadow>>> = Mutex::new(HashMap::new());
    }

    fn cell(block: *mut u8) -> Arc<Shadow> {
        // A std lock, which the model does not see: it adds no ordering.
        let mut m = CELLS.lock().unwrap_or_else(|p| p.into_inner());
        m.entry(block as usize)
            .or_insert_with(|| Arc::new(Shadow(loom::cell::UnsafeCell::new(()))))
            .clone()
    }

    pub(super) fn read(block: *mut u8) {
        cell(block).0.with(|_| ());
    }

    pub(super) fn write(block: *mut u8) {
        cell(block).0.with_mut(|_| ());
    }
}

/// Writes a header for a pool just carved from `arenaindex`'s arena.
///
/// # Safety
/// `p` must be a fresh, pool-aligned, writable pool of `g`.
pub(crate) unsafe fn carve_header(p: *mut Pool, arenaindex: u32) {
    // SAFETY: the caller hands us exclusive, writable pool memory; writing
    // a whole header initialises every field, atomics included.
    unsafe {
        p.write(Pool {
            ref_count: AtomicU32::new(0),
            szidx: AtomicU32::new(DUMMY_SZIDX),
            freeblock: UnsafeCell::new(null_mut()),
            nextpool: UnsafeCell::new(null_mut()),
            prevpool: UnsafeCell::new(null_mut()),
            owner: AtomicPtr::new(null_mut()),
            arenaindex,
            nextoffset: UnsafeCell::new(0),
            maxnextoffset: UnsafeCell::new(0),
            in_ring: UnsafeCell::new(false),
            current: UnsafeCell::new(false),
        })
    }
}

/// Blocks in use.
///
/// # Safety
/// `p` must be a live pool header.
#[inline(always)]
pub(crate) unsafe fn ref_count(p: *mut Pool) -> u32 {
    // SAFETY: caller's contract.
    unsafe { (*p).ref_count.load(Ordering::Relaxed) }
}

/// The pool's size class.
///
/// # Safety
/// `p` must be a live, initialised pool header.
#[inline(always)]
pub(crate) unsafe fn szidx(p: *mut Pool) -> usize {
    // SAFETY: caller's contract.
    unsafe { (*p).szidx.load(Ordering::Relaxed) as usize }
}

/// Makes an empty pool ready to serve class `idx`. A pool that last
/// served the same class keeps its free list (CPython's "luckily, this
/// pool last contained blocks of the same size class"); any other is
/// re-initialised, with no block bumped yet.
///
/// # Safety
/// `p` must be an empty pool (`ref_count == 0`) owned by the caller.
pub(crate) unsafe fn init(p: *mut Pool, idx: usize, g: &Geometry) {
    // SAFETY: the caller owns the empty pool `p`.
    unsafe {
        debug_assert_eq!(ref_count(p), 0, "init needs an empty pool");
        if szidx(p) != idx || (*p).freeblock.get().is_null() {
            (*p).szidx.store(idx as u32, Ordering::Relaxed);
            (*p).freeblock.set(null_mut());
            (*p).nextoffset.set(g.pool_header_size() as u32);
            (*p).maxnextoffset
                .set((g.pool_size - g.class_size(idx)) as u32);
        }
    }
}

/// `sharded`: takes the whole free list of `p` and counts its blocks in
/// use (a heap holds them now). Returns the list (null if empty) and its
/// length, found without walking it: every bumped block is then either
/// in use or on the list.
///
/// # Safety
/// `p` must be owned by the caller and initialised for a class of `size`.
pub(crate) unsafe fn take_list(p: *mut Pool, size: usize, g: &Geometry) -> (*mut u8, u32) {
    // SAFETY: the caller owns `p`.
    unsafe {
        let list = (*p).freeblock.get();
        if list.is_null() {
            return (null_mut(), 0);
        }
        (*p).freeblock.set(null_mut());
        let bumped = ((*p).nextoffset.get() as usize - g.pool_header_size()) / size;
        let n = bumped as u32 - ref_count(p);
        (*p).ref_count.store(bumped as u32, Ordering::Relaxed);
        (list, n)
    }
}

/// `sharded`: links up to `max` never-used blocks of `p` into a list and
/// counts them in use. Returns the list (null if none is left) and its
/// length.
///
/// # Safety
/// `p` must be owned by the caller, initialised for a class of `size`.
pub(crate) unsafe fn carve_blocks(p: *mut Pool, size: usize, max: u32) -> (*mut u8, u32) {
    // SAFETY: the blocks between `nextoffset` and `maxnextoffset` lie in
    // the pool and have never been handed out.
    unsafe {
        let (mut off, end) = ((*p).nextoffset.get(), (*p).maxnextoffset.get());
        let mut head: *mut u8 = null_mut();
        let mut tail: *mut u8 = null_mut();
        let mut n = 0;
        while off <= end && n < max {
            let b = p.cast::<u8>().add(off as usize);
            if tail.is_null() {
                head = b;
            } else {
                set_next(tail, b);
            }
            tail = b;
            off += size as u32;
            n += 1;
        }
        if n == 0 {
            return (null_mut(), 0);
        }
        set_next(tail, null_mut());
        (*p).nextoffset.set(off);
        (*p).ref_count.store(ref_count(p) + n, Ordering::Relaxed);
        (head, n)
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
        debug_assert_eq!(ref_count(p), 0, "init_and_take needs an empty pool");
        if szidx(p) != idx || (*p).freeblock.get().is_null() {
            let size = g.class_size(idx);
            (*p).szidx.store(idx as u32, Ordering::Relaxed);
            (*p).freeblock.set(null_mut());
            (*p).nextoffset.set(g.pool_header_size() as u32);
            (*p).maxnextoffset.set((g.pool_size - size) as u32);
            bump(p, size);
        }
        take(p, g)
    }
}

/// Pops a block; if that empties the free list, bumps the next never-used
/// block onto it. Returns the block; afterwards `freeblock` is null exactly
/// when the pool is full.
///
/// # Safety
/// `p` must be owned by the caller, initialised for a class of `g`, with a
/// non-null `freeblock`.
#[inline(always)]
pub(crate) unsafe fn take(p: *mut Pool, g: &Geometry) -> *mut u8 {
    // SAFETY: forwarded contract.
    unsafe {
        let bp = pop(p);
        if (*p).freeblock.get().is_null() {
            bump(p, g.class_size(szidx(p)));
        }
        bp
    }
}

/// Pops a block off the free list, without bumping: afterwards `freeblock`
/// may be null with never-used blocks left (see [`bump`]).
///
/// # Safety
/// `p` must be owned by the caller, initialised, with a non-null
/// `freeblock`.
#[inline(always)]
pub(crate) unsafe fn pop(p: *mut Pool) -> *mut u8 {
    // SAFETY: the caller owns `p` and its free list is non-empty.
    unsafe {
        let bp = (*p).freeblock.get();
        debug_assert!(!bp.is_null(), "take from a pool with no free block");
        let rc = ref_count(p);
        (*p).ref_count.store(rc + 1, Ordering::Relaxed);
        (*p).freeblock.set(next_of(bp));
        bp
    }
}

/// Moves one never-used block onto the (empty) free list, if one fits.
///
/// # Safety
/// `p` must be owned by the caller and have an empty free list; `size` its
/// block size.
#[inline]
pub(crate) unsafe fn bump(p: *mut Pool, size: usize) {
    // SAFETY: the offset is within the pool (checked against maxnextoffset),
    // and the block there has never been handed out.
    unsafe {
        let off = (*p).nextoffset.get();
        if off <= (*p).maxnextoffset.get() {
            let bp = p.cast::<u8>().add(off as usize);
            (*p).nextoffset.set(off + size as u32);
            set_next(bp, null_mut());
            (*p).freeblock.set(bp);
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
        let rc = ref_count(p);
        debug_assert!(rc > 0, "give to a pool with no block in use");
        let last = (*p).freeblock.get();
        set_next(block, last);
        (*p).freeblock.set(block);
        let rc = rc.wrapping_sub(1);
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
