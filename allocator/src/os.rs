//! Memory from the operating system: arena mappings and the raw allocator.
//!
//! Arenas are mapped with `mmap` directly, never through the global
//! allocator, because these allocators may *be* the global allocator. The
//! raw allocator (CPython's `PyMem_RawMalloc`) serves requests above the
//! small-request threshold or needing more alignment than a size class
//! guarantees; it is the C library's allocator, again to avoid recursion.
//! With glibc it is reached through `__libc_malloc` and its family rather
//! than `malloc`, because in the `LD_PRELOAD` build `malloc` is us. Under
//! Miri, which models neither `mmap` partial unmapping nor all of libc,
//! both go through `std::alloc::System`.

use core::ptr::null_mut;

/// Maps `size` bytes of zeroed, read-write memory aligned to at least the
/// OS page size; null on failure.
pub(crate) fn map(size: usize) -> *mut u8 {
    #[cfg(not(miri))]
    {
        // SAFETY: an anonymous private mapping with no address hint has no
        // preconditions; failure is reported as MAP_FAILED and handled.
        let p = unsafe {
            libc::mmap(
                null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            null_mut()
        } else {
            p.cast()
        }
    }
    #[cfg(miri)]
    {
        match core::alloc::Layout::from_size_align(size, 4096) {
            // SAFETY: the layout has a non-zero size (arenas are never empty).
            Ok(l) => unsafe { std::alloc::GlobalAlloc::alloc_zeroed(&std::alloc::System, l) },
            Err(_) => null_mut(),
        }
    }
}

/// Returns a mapping made by [`map`].
///
/// # Safety
/// `ptr` and `size` must be exactly those of one earlier successful `map`
/// call, not yet unmapped, and nothing may use the memory afterwards.
pub(crate) unsafe fn unmap(ptr: *mut u8, size: usize) {
    #[cfg(not(miri))]
    {
        // SAFETY: the caller guarantees this is a whole live mapping of ours.
        let rc = unsafe { libc::munmap(ptr.cast(), size) };
        debug_assert_eq!(rc, 0, "munmap failed");
    }
    #[cfg(miri)]
    {
        // SAFETY: `map` allocated it from System with this exact layout.
        unsafe {
            std::alloc::GlobalAlloc::dealloc(
                &std::alloc::System,
                ptr,
                core::alloc::Layout::from_size_align_unchecked(size, 4096),
            )
        }
    }
}

/// The raw allocator: the C library's, reached without the global allocator.
pub(crate) mod raw {
    use core::alloc::Layout;

    use self::libc_alloc::{free, malloc, memalign};

    /// glibc's own entry points, which `LD_PRELOAD` cannot interpose.
    #[cfg(all(target_os = "linux", target_env = "gnu", not(miri)))]
    mod libc_alloc {
        use core::ffi::c_void;

        extern "C" {
            #[link_name = "__libc_malloc"]
            pub(crate) fn malloc(size: usize) -> *mut c_void;
            #[link_name = "__libc_free"]
            pub(crate) fn free(ptr: *mut c_void);
            #[link_name = "__libc_realloc"]
            pub(crate) fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void;
            #[link_name = "__libc_memalign"]
            pub(crate) fn memalign(align: usize, size: usize) -> *mut c_void;
        }
    }

    /// Other C libraries (and Miri): the public names.
    #[cfg(not(all(target_os = "linux", target_env = "gnu", not(miri))))]
    mod libc_alloc {
        pub(crate) use libc::{free, malloc, realloc};

        /// `memalign` through `posix_memalign`, which every POSIX libc has.
        ///
        /// # Safety
        /// `align` must be a power of two and a multiple of the pointer size.
        pub(crate) unsafe fn memalign(align: usize, size: usize) -> *mut libc::c_void {
            let mut out = core::ptr::null_mut();
            // SAFETY: the caller's contract is posix_memalign's.
            if unsafe { libc::posix_memalign(&mut out, align, size) } == 0 {
                out
            } else {
                core::ptr::null_mut()
            }
        }
    }

    /// The most alignment `malloc` guarantees on 64-bit targets, and only
    /// for requests of at least that many bytes.
    const MALLOC_ALIGN: usize = 16;

    /// Whether `malloc(size)` is guaranteed to be `align`-aligned. C
    /// promises only the alignment of objects that fit in `size` bytes (a
    /// `malloc(8)` may be 8-aligned: jemalloc's and Miri's are), so, like
    /// std's `System`, use it only when `align <= size` too.
    #[inline]
    fn malloc_aligns(align: usize, size: usize) -> bool {
        align <= MALLOC_ALIGN && align <= size
    }

    /// Allocates `layout` (null on failure). Zero sizes get one byte so every
    /// success is a unique pointer.
    pub(crate) fn alloc(layout: Layout) -> *mut u8 {
        let size = layout.size().max(1);
        if malloc_aligns(layout.align(), size) {
            // SAFETY: malloc has no preconditions.
            unsafe { malloc(size).cast() }
        } else {
            // posix_memalign wants a multiple of the pointer size.
            let align = layout.align().max(core::mem::size_of::<usize>());
            // SAFETY: `align` is a power of two (Layout guarantees it) and a
            // multiple of the pointer size.
            unsafe { memalign(align, size).cast() }
        }
    }

    /// Frees a block from [`alloc`] or [`realloc`].
    ///
    /// # Safety
    /// `ptr` must come from this module's `alloc`/`realloc` and be live.
    pub(crate) unsafe fn dealloc(ptr: *mut u8) {
        // SAFETY: the caller guarantees ptr came from malloc/memalign.
        unsafe { free(ptr.cast()) }
    }

    /// Resizes a block, keeping its contents; null (old block intact) on failure.
    ///
    /// # Safety
    /// `ptr` must be live from this module with layout `old`, and
    /// `new_size` must be a valid size for `old.align()`.
    pub(crate) unsafe fn realloc(ptr: *mut u8, old: Layout, new_size: usize) -> *mut u8 {
        if malloc_aligns(old.align(), new_size.max(1)) {
            // SAFETY: ptr is a live block of the C allocator (memalign
            // blocks may be realloc'ed too); realloc leaves it intact on
            // failure, and its result is aligned for `new_size` (above).
            unsafe { libc_alloc::realloc(ptr.cast(), new_size.max(1)).cast() }
        } else {
            // SAFETY: the new layout is valid per the caller's contract.
            let new = alloc(unsafe { Layout::from_size_align_unchecked(new_size, old.align()) });
            if !new.is_null() {
                // SAFETY: both blocks are live and distinct; we copy the
                // bytes valid in both.
                unsafe {
                    core::ptr::copy_nonoverlapping(ptr, new, old.size().min(new_size));
                    dealloc(ptr);
                }
            }
            new
        }
    }
}
