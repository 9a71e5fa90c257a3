//! The `null` subject: a bump pointer that never tracks frees.
//!
//! It does the least an allocator can do, so a cell run on it measures the
//! harness's own cost per operation (slot bookkeeping, the indirect call,
//! touching, timing). Memory comes from one large anonymous mapping reserved
//! with `MAP_NORESERVE` on first use. Each thread takes a *ring* from
//! it with a single `fetch_add` (512 KiB: small enough to stay in L2, as
//! the blocks a real allocator reuses do), faults it in with one `MADV_POPULATE_WRITE`,
//! and bumps through it without atomics, wrapping to its start when it
//! reaches the end. `dealloc` does nothing; `realloc` is `GlobalAlloc`'s
//! default (allocate, copy, free). Requests larger than a ring take a
//! dedicated run of the region. When the region is exhausted (or cannot be
//! mapped) `alloc` returns null; nothing here panics.
//!
//! Why a ring: a bump pointer that never reuses memory pays what no real
//! allocator pays in steady state, a page fault and the kernel zeroing a
//! page for every 4 KiB handed out, and cold cache lines on every touch;
//! measured here it made `null` slower than glibc malloc, so it bounded the
//! harness's cost from above instead of measuring it. A ring keeps the
//! memory warm. The price: a block is overwritten once its thread has
//! allocated 512 KiB after it, so `null` cells are never verified (the driver
//! switches verification off for them) and their memory figures describe
//! the ring, not a workload's live set. Threads created later (mstress
//! rounds) take fresh rings, so threads never share one.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// Size of each thread's ring.
const RING: usize = 512 << 10;
/// Region sizes tried, largest first (overcommit policies differ).
const REGION_SIZES: [usize; 4] = [64 << 30, 16 << 30, 4 << 30, 1 << 30];

/// A never-reusing bump allocator over one reserved region.
pub struct NullAlloc {
    base: AtomicPtr<u8>,
    capacity: AtomicUsize,
    /// Bytes of the region handed to threads so far (may run past capacity).
    next: AtomicUsize,
}

/// The process's `null` subject.
pub static NULL: NullAlloc = NullAlloc::new();

/// One thread's ring, as addresses.
#[derive(Clone, Copy)]
struct Ring {
    /// Base of the region the ring came from (0: no ring yet).
    owner: usize,
    start: usize,
    cursor: usize,
    end: usize,
}

thread_local! {
    static RING_STATE: Cell<Ring> = const { Cell::new(Ring { owner: 0, start: 0, cursor: 0, end: 0 }) };
}

impl Default for NullAlloc {
    fn default() -> Self {
        Self::new()
    }
}

impl NullAlloc {
    pub const fn new() -> NullAlloc {
        NullAlloc {
            base: AtomicPtr::new(ptr::null_mut()),
            capacity: AtomicUsize::new(0),
            next: AtomicUsize::new(0),
        }
    }

    /// The region, mapped on first use; null if no size could be mapped.
    fn region(&self) -> *mut u8 {
        let base = self.base.load(Ordering::Acquire);
        if !base.is_null() {
            return base;
        }
        for size in REGION_SIZES {
            // SAFETY: an anonymous private mapping at no fixed address has no
            // preconditions; failure is reported as MAP_FAILED and checked.
            let p = unsafe {
                libc::mmap(
                    ptr::null_mut(),
                    size,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                continue;
            }
            let p = p as *mut u8;
            // Publish capacity before base: readers load base (Acquire) first.
            self.capacity.store(size, Ordering::Relaxed);
            match self.base.compare_exchange(
                ptr::null_mut(),
                p,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return p,
                Err(winner) => {
                    // Another thread mapped first; give ours back. Both
                    // mappings had the same size, so `capacity` is right.
                    // SAFETY: `p` is the mapping of `size` bytes made above,
                    // never published, so nothing else refers to it.
                    unsafe { libc::munmap(p as *mut libc::c_void, size) };
                    return winner;
                }
            }
        }
        ptr::null_mut()
    }

    /// Takes `len` bytes of the region; returns its offset, or `None` when
    /// the region is exhausted.
    fn take(&self, len: usize) -> Option<usize> {
        let cap = self.capacity.load(Ordering::Relaxed);
        if len > cap {
            return None;
        }
        let off = self.next.fetch_add(len, Ordering::Relaxed);
        (off.checked_add(len)? <= cap).then_some(off)
    }

    /// Bytes of the region handed out to threads so far.
    pub fn bumped(&self) -> usize {
        self.next
            .load(Ordering::Relaxed)
            .min(self.capacity.load(Ordering::Relaxed))
    }

    /// Bytes reserved for the region (0 until first use).
    pub fn capacity(&self) -> usize {
        self.capacity.load(Ordering::Relaxed)
    }
}

/// `addr` rounded up to `align` (a power of two), or `None` on overflow.
fn align_up(addr: usize, align: usize) -> Option<usize> {
    Some(addr.checked_add(align - 1)? & !(align - 1))
}

/// The aligned start of a `size`-byte block at or after `cur` if it ends
/// by `end`.
fn fit(cur: usize, end: usize, size: usize, align: usize) -> Option<usize> {
    let start = align_up(cur, align)?;
    (start.checked_add(size)? <= end).then_some(start)
}

// SAFETY: `alloc` returns either null or a pointer into the region, aligned
// to `layout.align()` and followed by at least `layout.size()` bytes of the
// calling thread's own ring (rings are disjoint via `fetch_add`) or of a
// dedicated run. The memory may later be handed out again by the same
// thread (the ring wraps), which `GlobalAlloc` does not forbid for a block
// whose contents nobody relies on: the harness never reads a `null` block
// back. `dealloc` does nothing, which is always sound.
unsafe impl GlobalAlloc for NullAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let base = self.region();
        if base.is_null() {
            return ptr::null_mut();
        }
        let (size, align) = (layout.size(), layout.align());
        RING_STATE.with(|c| {
            let mut r = c.get();
            if r.owner == base as usize {
                let start =
                    fit(r.cursor, r.end, size, align).or_else(|| fit(r.start, r.end, size, align));
                if let Some(start) = start {
                    r.cursor = start + size;
                    c.set(r);
                    // SAFETY: `start..start + size` lies in this thread's
                    // ring, inside the region mapped at `base`.
                    return unsafe { base.add(start - base as usize) };
                }
            }
            let Some(need) = size.checked_add(align) else {
                return ptr::null_mut();
            };
            if r.owner == base as usize || need > RING {
                // Larger than a ring: a dedicated run, never reused.
                let Some(off) = self.take(need) else {
                    return ptr::null_mut();
                };
                let start = (base as usize + off + align - 1) & !(align - 1);
                // SAFETY: `start + size <= base + off + need`: inside the region.
                return unsafe { base.add(start - base as usize) };
            }
            // This thread's first request: take and fault in its ring.
            let Some(off) = self.take(RING) else {
                return ptr::null_mut();
            };
            let ring = base as usize + off;
            // Advice only: kernels before 5.14 refuse it and pages fault in
            // as they are first touched.
            // SAFETY: `ring..ring + RING` lies inside the region.
            unsafe { libc::madvise(ring as *mut libc::c_void, RING, libc::MADV_POPULATE_WRITE) };
            // `need <= RING`, so the aligned start leaves room for `size`.
            let start = (ring + align - 1) & !(align - 1);
            c.set(Ring {
                owner: base as usize,
                start: ring,
                cursor: start + size,
                end: ring + RING,
            });
            // SAFETY: `start + size <= ring + RING`: inside the region.
            unsafe { base.add(start - base as usize) }
        })
    }

    #[inline]
    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_alignment_is_honoured_and_blocks_are_disjoint_within_a_ring() {
        let a = NullAlloc::new();
        let mut blocks = Vec::new();
        for align in [1usize, 2, 8, 16, 64, 4096] {
            for size in [1usize, 7, 24, 4096, RING / 64] {
                let layout = Layout::from_size_align(size, align).expect("valid layout");
                // SAFETY: the layout has non-zero size.
                let p = unsafe { a.alloc(layout) };
                assert!(!p.is_null(), "size {size} align {align}");
                assert_eq!(p as usize % align, 0, "size {size} align {align}");
                // SAFETY: `p` is valid for `size` bytes.
                unsafe {
                    p.write(0xA5);
                    p.add(size - 1).write(0x5A);
                }
                blocks.push((p as usize, size));
            }
        }
        // Well under one ring's worth: no block overlaps another.
        blocks.sort_unstable();
        assert!(blocks.windows(2).all(|w| w[0].0 + w[0].1 <= w[1].0));
        assert!(a.bumped() > 0 && a.bumped() <= a.capacity());
    }

    #[test]
    fn the_ring_wraps_and_oversize_requests_get_their_own_run() {
        let a = NullAlloc::new();
        let l = Layout::from_size_align(RING / 8, 8).expect("valid layout");
        // SAFETY: non-zero sizes; nothing is read back.
        unsafe {
            let first = a.alloc(l) as usize;
            let mut wrapped = false;
            for _ in 0..8 {
                let p = a.alloc(l) as usize;
                assert_ne!(p, 0);
                wrapped |= p == first;
            }
            assert!(wrapped, "the ring is reused from its start");
            assert_eq!(a.bumped(), RING, "no new ring taken by a wrapping thread");
            let huge = Layout::from_size_align(RING + 1, 64).expect("valid layout");
            let h = a.alloc(huge);
            assert!(!h.is_null() && h as usize % 64 == 0);
            assert!(a.bumped() > RING);
        }
    }

    #[test]
    fn exhaustion_returns_null() {
        let a = NullAlloc::new();
        // SAFETY: non-zero size.
        let p = unsafe { a.alloc(Layout::new::<u64>()) };
        assert!(!p.is_null());
        let too_big = Layout::from_size_align(a.capacity(), 8).expect("valid layout");
        // SAFETY: non-zero size.
        assert!(unsafe { a.alloc(too_big) }.is_null());
        let near_max = Layout::from_size_align(isize::MAX as usize - 4096, 4096).expect("valid");
        // SAFETY: non-zero size.
        assert!(unsafe { a.alloc(near_max) }.is_null());
        // Eat the rest of the region in large runs until it refuses.
        let big = Layout::from_size_align(a.capacity() / 4, 8).expect("valid layout");
        let mut refused = false;
        for _ in 0..8 {
            // SAFETY: non-zero size.
            if unsafe { a.alloc(big) }.is_null() {
                refused = true;
                break;
            }
        }
        assert!(refused);
    }
}
