//! The C allocation functions over one allocator of ours.
//!
//! Requests a size class serves (up to 512 bytes, alignment up to the
//! geometry's) go to the allocator as a layout of the *class size*: C's
//! `free` carries no size, so the block is later freed with the size the
//! pool header tells (`allocator::arena_map::usable_size`), and requesting
//! that size keeps the allocator's accounting exact. Everything else goes
//! straight to glibc (`__libc_malloc` and family), as CPython sends large
//! requests to `PyMem_RawMalloc`; a block glibc made stays glibc's across
//! `realloc` (CPython's rule too). `free` tells the two apart by address.
//!
//! Failures return null with `errno = ENOMEM` (`EINVAL` for bad
//! alignments), as glibc does.

use core::alloc::{GlobalAlloc, Layout};
use core::ffi::{c_int, c_void};
use core::ptr::null_mut;

use allocator::arena_map;
use allocator::Geometry;

use crate::{glibc, rawstats, select};

fn set_errno(e: c_int) {
    // SAFETY: the calling thread's errno is always writable.
    unsafe { *libc::__errno_location() = e };
}

/// A block from glibc, counted when statistics are on.
#[inline]
fn from_glibc(p: *mut c_void) -> *mut c_void {
    if !p.is_null() && select::stats_enabled() {
        rawstats::allocated(p);
    }
    p
}

/// One allocator of ours with its geometry (a constant in each arm of
/// `dispatch!`).
pub(crate) struct Front<A: 'static> {
    a: &'static A,
    g: Geometry,
}

impl<A: GlobalAlloc> Front<A> {
    #[inline(always)]
    pub(crate) fn new(a: &'static A, g: Geometry) -> Self {
        Front { a, g }
    }

    /// The class-size layout of a pool block of `size` bytes.
    #[inline(always)]
    fn class_layout(&self, size: usize, align: usize) -> Option<Layout> {
        let idx = self.g.class_of(size, align)?;
        // SAFETY: class sizes are at most 512, and 1 is a power of two.
        Some(unsafe { Layout::from_size_align_unchecked(self.g.class_size(idx), 1) })
    }

    /// A pool block of `layout` (null with ENOMEM on failure).
    #[inline(always)]
    fn pool_alloc(&self, layout: Layout) -> *mut c_void {
        // SAFETY: class layouts have a non-zero size.
        let p = unsafe { self.a.alloc(layout) };
        if p.is_null() {
            set_errno(libc::ENOMEM);
        }
        p.cast()
    }

    #[inline(always)]
    pub(crate) fn malloc(&self, size: usize) -> *mut c_void {
        match self.class_layout(size, 1) {
            Some(l) => self.pool_alloc(l),
            // SAFETY: glibc's malloc has no preconditions.
            None => from_glibc(unsafe { glibc::malloc(size) }),
        }
    }

    #[inline(always)]
    pub(crate) fn calloc(&self, n: usize, size: usize) -> *mut c_void {
        let Some(total) = n.checked_mul(size) else {
            set_errno(libc::ENOMEM);
            return null_mut();
        };
        match self.class_layout(total, 1) {
            Some(l) => {
                let p = self.pool_alloc(l);
                if !p.is_null() {
                    // SAFETY: a fresh block of `l.size()` bytes; pool blocks
                    // are reused, so they must be cleared.
                    unsafe { p.cast::<u8>().write_bytes(0, l.size()) };
                }
                p
            }
            // SAFETY: glibc's calloc has no preconditions; it checks too.
            None => from_glibc(unsafe { glibc::calloc(n, size) }),
        }
    }

    /// # Safety
    /// `p` must be null or a live block of this library.
    #[inline(always)]
    pub(crate) unsafe fn free(&self, p: *mut c_void) {
        if p.is_null() {
            return;
        }
        // SAFETY: `p` is live (caller's contract).
        match unsafe { arena_map::usable_size(p.cast()) } {
            // SAFETY: a pool block of ours, freed with its class layout.
            Some(size) => unsafe {
                self.a
                    .dealloc(p.cast(), Layout::from_size_align_unchecked(size, 1))
            },
            None => {
                if select::stats_enabled() {
                    // SAFETY: a live glibc block.
                    unsafe { rawstats::freed(p) };
                }
                // SAFETY: a live glibc block.
                unsafe { glibc::free(p) }
            }
        }
    }

    /// # Safety
    /// `p` must be null or a live block of this library.
    #[inline(always)]
    pub(crate) unsafe fn realloc(&self, p: *mut c_void, size: usize) -> *mut c_void {
        if p.is_null() {
            return self.malloc(size);
        }
        if size == 0 {
            // glibc frees and returns null.
            // SAFETY: caller's contract.
            unsafe { self.free(p) };
            return null_mut();
        }
        // SAFETY: `p` is live (caller's contract).
        let Some(old) = (unsafe { arena_map::usable_size(p.cast()) }) else {
            // glibc's block stays glibc's.
            let before = if select::stats_enabled() {
                // SAFETY: a live glibc block.
                unsafe { rawstats::freed(p) };
                true
            } else {
                false
            };
            // SAFETY: a live glibc block; on failure it stays live.
            let q = unsafe { glibc::realloc(p, size) };
            if before {
                // Counted again: the new block, or the old one left intact.
                rawstats::allocated(if q.is_null() { p } else { q });
            }
            return q;
        };
        // SAFETY: `old` is the class size `p` was allocated with.
        let old_layout = unsafe { Layout::from_size_align_unchecked(old, 1) };
        match self.class_layout(size, 1) {
            Some(l) => {
                // SAFETY: a live pool block with its class layout; the
                // allocator keeps it in place if the class still fits
                // (CPython's rule) or moves it, keeping the contents.
                let q = unsafe { self.a.realloc(p.cast(), old_layout, l.size()) };
                if q.is_null() {
                    set_errno(libc::ENOMEM);
                }
                q.cast()
            }
            None => {
                let q = self.malloc(size);
                if !q.is_null() {
                    // SAFETY: distinct live blocks; `old < size` bytes are
                    // valid in both. The old block is freed once.
                    unsafe {
                        core::ptr::copy_nonoverlapping(p.cast::<u8>(), q.cast::<u8>(), old);
                        self.a.dealloc(p.cast(), old_layout);
                    }
                }
                q
            }
        }
    }

    /// # Safety
    /// As for [`realloc`](Self::realloc).
    #[inline(always)]
    pub(crate) unsafe fn reallocarray(&self, p: *mut c_void, n: usize, size: usize) -> *mut c_void {
        match n.checked_mul(size) {
            // SAFETY: forwarded contract.
            Some(total) => unsafe { self.realloc(p, total) },
            None => {
                set_errno(libc::ENOMEM);
                null_mut()
            }
        }
    }

    /// A block of `size` bytes aligned to `align`, a power of two.
    #[inline(always)]
    pub(crate) fn aligned(&self, align: usize, size: usize) -> *mut c_void {
        debug_assert!(align.is_power_of_two());
        match self.class_layout(size, align) {
            // Blocks are aligned to the geometry's alignment, at least `align`.
            Some(l) => self.pool_alloc(l),
            // SAFETY: `align` is a power of two.
            None => from_glibc(unsafe { glibc::memalign(align, size) }),
        }
    }

    /// # Safety
    /// `out` must be writable.
    #[inline(always)]
    pub(crate) unsafe fn posix_memalign(
        &self,
        out: *mut *mut c_void,
        align: usize,
        size: usize,
    ) -> c_int {
        if !align.is_power_of_two() || align % core::mem::size_of::<*mut c_void>() != 0 {
            return libc::EINVAL;
        }
        let p = self.aligned(align, size);
        if p.is_null() {
            return libc::ENOMEM;
        }
        // SAFETY: caller's contract.
        unsafe { out.write(p) };
        0
    }

    #[inline(always)]
    pub(crate) fn aligned_alloc(&self, align: usize, size: usize) -> *mut c_void {
        if !align.is_power_of_two() {
            set_errno(libc::EINVAL);
            return null_mut();
        }
        self.aligned(align, size)
    }

    /// glibc's rules: an alignment that is not a power of two is rounded
    /// up to one.
    #[inline(always)]
    pub(crate) fn memalign(&self, align: usize, size: usize) -> *mut c_void {
        match align.max(1).checked_next_power_of_two() {
            Some(a) => self.aligned(a, size),
            None => {
                set_errno(libc::EINVAL);
                null_mut()
            }
        }
    }

    #[inline(always)]
    pub(crate) fn valloc(&self, size: usize) -> *mut c_void {
        self.aligned(select::page_size(), size)
    }

    /// glibc's rules: the size rounds up to whole pages, at least one.
    #[inline(always)]
    pub(crate) fn pvalloc(&self, size: usize) -> *mut c_void {
        let page = select::page_size();
        match size.max(1).checked_next_multiple_of(page) {
            Some(s) => self.aligned(page, s),
            None => {
                set_errno(libc::ENOMEM);
                null_mut()
            }
        }
    }

    /// # Safety
    /// `p` must be null or a live block of this library.
    #[inline(always)]
    pub(crate) unsafe fn usable_size(&self, p: *mut c_void) -> usize {
        if p.is_null() {
            return 0;
        }
        // SAFETY: `p` is live (caller's contract).
        match unsafe { arena_map::usable_size(p.cast()) } {
            Some(size) => size,
            // SAFETY: a live glibc block.
            None => unsafe { glibc::usable_size(p) },
        }
    }
}
