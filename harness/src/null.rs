//! The `null` subject: a bump pointer that never reuses memory.
//!
//! It does the least an allocator can do, so a cell run on it measures the
//! harness's own cost per operation (slot bookkeeping, the indirect call,
//! touching, timing). Memory comes from one large anonymous mapping reserved
//! with `MAP_NORESERVE` on first use; each thread takes 1 MiB chunks from it
//! with a single `fetch_add` and bumps through its chunk without atomics.
//! Requests larger than a chunk take a dedicated run of the region. `dealloc`
//! does nothing; `realloc` is `GlobalAlloc`'s default (allocate, copy, free).
//! When the region is exhausted (or cannot be mapped) `alloc` returns null;
//! nothing here panics.
//!
//! Never reusing has a price no real allocator pays in steady state: every
//! block is fresh memory, which the kernel must fault in and zero, and
//! which is cold in the cache when the workload touches it. Each new chunk
//! is therefore populated with one `MADV_POPULATE_WRITE` call instead of a
//! page fault per 4 KiB page (measured here: 2.5x faster on larson-like
//! workloads). What remains, zeroing and cold lines, makes a null cell an
//! upper bound on the harness's cost for workloads that touch their blocks;
//! a cell with `touch_bytes = 0` isolates the bookkeeping itself.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

/// Size of the chunk a thread takes at a time.
const CHUNK: usize = 1 << 20;
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

thread_local! {
    /// This thread's chunk as addresses: (region base it came from, bump
    /// cursor, end).
    static CHUNK_STATE: Cell<(usize, usize, usize)> = const { Cell::new((0, 0, 0)) };
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

// SAFETY: `alloc` returns either null or a pointer into the region that is
// aligned to `layout.align()` and followed by at least `layout.size()` bytes
// nobody else was given (chunks are disjoint via `fetch_add`, and a thread's
// cursor only moves forward). `dealloc` does nothing, which is always sound.
unsafe impl GlobalAlloc for NullAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let base = self.region();
        if base.is_null() {
            return ptr::null_mut();
        }
        let (size, align) = (layout.size(), layout.align());
        CHUNK_STATE.with(|c| {
            let (owner, cur, end) = c.get();
            if owner == base as usize {
                if let Some(start) = align_up(cur, align) {
                    if start.checked_add(size).is_some_and(|e| e <= end) {
                        c.set((owner, start + size, end));
                        // SAFETY: `start..start + size` lies in this thread's
                        // chunk, inside the region mapped at `base`.
                        return unsafe { base.add(start - base as usize) };
                    }
                }
            }
            // A new chunk, big enough for this request at any alignment.
            let Some(need) = size.checked_add(align) else {
                return ptr::null_mut();
            };
            let len = need.max(CHUNK);
            let Some(off) = self.take(len) else {
                return ptr::null_mut();
            };
            let chunk = base as usize + off;
            // Fault the chunk in with one call rather than one page fault
            // per 4 KiB page on first touch; at most one chunk's worth, so
            // a huge request commits no more than it touches. Advice only:
            // kernels before 5.14 refuse it and pages fault in as touched.
            // SAFETY: `chunk..chunk + len.min(CHUNK)` lies inside the region.
            unsafe {
                libc::madvise(
                    chunk as *mut libc::c_void,
                    len.min(CHUNK),
                    libc::MADV_POPULATE_WRITE,
                )
            };
            // `len >= size + align`, so the aligned start leaves room for `size`.
            let start = (chunk + align - 1) & !(align - 1);
            c.set((base as usize, start + size, chunk + len));
            // SAFETY: `start + size <= chunk + len <= base + capacity`: inside the region.
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
    fn every_alignment_is_honoured_and_blocks_are_disjoint() {
        let a = NullAlloc::new();
        let mut blocks = Vec::new();
        for align in [1usize, 2, 8, 16, 64, 4096, 1 << 16, 1 << 21] {
            for size in [1usize, 7, 24, 4096, 3 << 20] {
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
        blocks.sort_unstable();
        assert!(blocks.windows(2).all(|w| w[0].0 + w[0].1 <= w[1].0));
        assert!(a.bumped() > 0 && a.bumped() <= a.capacity());
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
