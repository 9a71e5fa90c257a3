//! Which addresses are ours: the size-less `free` of C.
//!
//! `GlobalAlloc::dealloc` passes a `Layout`, from which the path that
//! served a block follows; C's `free(ptr)` and `malloc_usable_size(ptr)`
//! carry nothing but the address. CPython answers "is this block one of
//! pymalloc's?" with `address_in_range`, since 3.10 through a radix tree
//! over the address space (`arena_map`), because reading a would-be pool
//! header in front of an arbitrary pointer may touch unmapped memory.
//!
//! This is that radix tree, process-wide and shared by every allocator of
//! the crate: one byte per 4 KiB page of the 48-bit address space, in three
//! levels of 4096 entries (a 32 KiB root in static memory, middle nodes and
//! 4 KiB leaves mapped on first use and never freed, as in CPython). A
//! page's byte is zero unless an arena of ours covers it; then it encodes
//! the arena's pool size and alignment, which is all it takes to find the
//! pool header (mask the address) and from it the block's size class.
//! Arenas are page-aligned mappings, so whole pages belong to one arena.
//!
//! An arena's pages are marked right after it is mapped, before any block
//! of it is handed out, and cleared before it is unmapped, after its last
//! block came back: a lookup of a live block (or of any address that was
//! never one of ours) needs no lock, only three dependent loads.

use core::ptr::null_mut;

use crate::geometry::Geometry;
use crate::os;
use crate::pool::{Pool, DUMMY_SZIDX};
use std::sync::atomic::{AtomicPtr, AtomicU8, Ordering};

const PAGE_BITS: u32 = 12;
const LEVEL_BITS: u32 = 12;
const FANOUT: usize = 1 << LEVEL_BITS;
/// Addresses at or above this are never ours (`mmap` hands out lower ones).
const ADDRESS_LIMIT: usize = 1 << (PAGE_BITS + 3 * LEVEL_BITS);
/// Bit of a page's byte set when the arena's alignment is 16 (else 8).
const ALIGN16: u8 = 0x80;

type Leaf = [AtomicU8; FANOUT];
type Mid = [AtomicPtr<Leaf>; FANOUT];

static ROOT: [AtomicPtr<Mid>; FANOUT] = [const { AtomicPtr::new(null_mut()) }; FANOUT];

/// The three indices of `addr`'s page.
#[inline(always)]
fn split(addr: usize) -> (usize, usize, usize) {
    let page = addr >> PAGE_BITS;
    (
        page >> (2 * LEVEL_BITS),
        (page >> LEVEL_BITS) & (FANOUT - 1),
        page & (FANOUT - 1),
    )
}

/// Follows `slot`, mapping a zeroed node there first if it is empty.
/// Null when the OS refuses memory.
fn child<T>(slot: &AtomicPtr<T>) -> *mut T {
    let p = slot.load(Ordering::Acquire);
    if !p.is_null() {
        return p;
    }
    // Zeroed memory is a node of null pointers / zero bytes.
    let fresh = os::map(core::mem::size_of::<T>()).cast::<T>();
    if fresh.is_null() {
        return null_mut();
    }
    match slot.compare_exchange(null_mut(), fresh, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => fresh,
        Err(winner) => {
            // SAFETY: `fresh` is our own mapping of this size, never published.
            unsafe { os::unmap(fresh.cast(), core::mem::size_of::<T>()) };
            winner
        }
    }
}

/// Sets the byte of every page in `[base, base + size)`; false (nothing
/// marked) when a node cannot be mapped or the range is out of reach.
fn set(base: usize, size: usize, value: u8) -> bool {
    let end = base + size;
    if end > ADDRESS_LIMIT {
        return false;
    }
    let mut page = base >> PAGE_BITS;
    let last = (end - 1) >> PAGE_BITS;
    while page <= last {
        let (i, j, k) = split(page << PAGE_BITS);
        let mid = child(&ROOT[i]);
        if mid.is_null() {
            return false;
        }
        // SAFETY: nodes stay mapped for the life of the process.
        let leaf = child(unsafe { &(*mid)[j] });
        if leaf.is_null() {
            return false;
        }
        // SAFETY: as above.
        unsafe { (*leaf)[k].store(value, Ordering::Release) };
        page += 1;
    }
    true
}

/// Records that the arena mapped at `[base, base + g.arena_size)` is ours.
/// False when the map cannot grow (the caller treats it as out of memory).
pub(crate) fn mark(base: usize, g: &Geometry) -> bool {
    let mut v = g.pool_size.trailing_zeros() as u8;
    if g.alignment == 16 {
        v |= ALIGN16;
    }
    set(base, g.arena_size, v)
}

/// Forgets an arena before it is unmapped.
pub(crate) fn clear(base: usize, g: &Geometry) {
    // The nodes exist: `mark` made them.
    set(base, g.arena_size, 0);
}

/// The page byte of `addr`, zero when it is not in an arena of ours.
#[inline(always)]
fn lookup(addr: usize) -> u8 {
    if addr >= ADDRESS_LIMIT {
        return 0;
    }
    let (i, j, k) = split(addr);
    let mid = ROOT[i].load(Ordering::Acquire);
    if mid.is_null() {
        return 0;
    }
    // SAFETY: nodes stay mapped for the life of the process.
    let leaf = unsafe { (*mid)[j].load(Ordering::Acquire) };
    if leaf.is_null() {
        return 0;
    }
    // SAFETY: as above.
    unsafe { (*leaf)[k].load(Ordering::Acquire) }
}

/// Whether `ptr` lies in an arena of any allocator of this crate (CPython's
/// `address_in_range`). Anything else belongs to some other allocator.
#[inline]
pub fn owns(ptr: *const u8) -> bool {
    lookup(ptr as usize) != 0
}

/// The usable size of the block at `ptr` when it lies in a pool of any
/// allocator of this crate: its size class, read from the pool header.
/// `None` for every address outside our arenas.
///
/// Every allocator of the crate accepts `dealloc` and `realloc` of a pool
/// block with the layout `(usable size, 1)`, whatever size and alignment
/// it was requested with, since only the size class decides its path; C's
/// size-less `free` relies on that. (Their requested-bytes accounting then
/// sees the class size, so a C front end should request class sizes too.)
///
/// # Safety
/// `ptr` must be a live block of an allocator of this crate, or an address
/// that lies in no arena of ours (any pointer from another allocator).
#[inline]
pub unsafe fn usable_size(ptr: *const u8) -> Option<usize> {
    let v = lookup(ptr as usize);
    if v == 0 {
        return None;
    }
    let pool_size = 1usize << (v & !ALIGN16);
    let alignment = if v & ALIGN16 != 0 { 16 } else { 8 };
    let p = ((ptr as usize) & !(pool_size - 1)) as *const Pool;
    // SAFETY: `ptr` is a live block (caller's contract), so its pool is
    // carved, initialised for its class, and stays so while it is live.
    let idx = unsafe { (*p).szidx.load(crate::sync::Ordering::Relaxed) };
    debug_assert_ne!(idx, DUMMY_SZIDX, "{ptr:p} is in no initialised pool");
    Some((idx as usize + 1) * alignment)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_whole_arenas_and_clears_them() {
        let g = Geometry::CLASSIC;
        let base = os::map(g.arena_size) as usize;
        assert!(base != 0);
        assert!(!owns(base as *const u8));
        assert!(mark(base, &g));
        assert!(owns(base as *const u8));
        assert!(owns((base + g.arena_size - 1) as *const u8));
        clear(base, &g);
        assert!(!owns(base as *const u8));
        // SAFETY: our mapping, unused.
        unsafe { os::unmap(base as *mut u8, g.arena_size) };
    }

    #[test]
    fn foreign_and_wild_addresses_are_not_ours() {
        let b = Box::new(7u64);
        assert!(!owns(&*b as *const u64 as *const u8));
        assert!(!owns(core::ptr::null()));
        assert!(!owns(usize::MAX as *const u8));
        assert!(!owns(ADDRESS_LIMIT as *const u8));
    }
}
