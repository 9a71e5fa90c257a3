//! glibc's allocator, reached without going through `malloc` (which is us).
//!
//! glibc exports its implementation under `__libc_malloc` and friends,
//! which no `LD_PRELOAD` library interposes. `malloc_usable_size` has no
//! such alias; its glibc definition is found once with
//! `dlsym(RTLD_NEXT, …)`, the next definition after ours in lookup order.

use core::ffi::c_void;
use std::sync::atomic::{AtomicUsize, Ordering};

extern "C" {
    #[link_name = "__libc_malloc"]
    pub(crate) fn malloc(size: usize) -> *mut c_void;
    #[link_name = "__libc_calloc"]
    pub(crate) fn calloc(n: usize, size: usize) -> *mut c_void;
    #[link_name = "__libc_realloc"]
    pub(crate) fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void;
    #[link_name = "__libc_free"]
    pub(crate) fn free(ptr: *mut c_void);
    #[link_name = "__libc_memalign"]
    pub(crate) fn memalign(align: usize, size: usize) -> *mut c_void;
}

type UsableSize = unsafe extern "C" fn(*mut c_void) -> usize;

/// glibc's `malloc_usable_size`, or 0 until looked up.
static USABLE_SIZE: AtomicUsize = AtomicUsize::new(0);

/// glibc's `malloc_usable_size` of a block of glibc's.
///
/// # Safety
/// `ptr` must be a live block of glibc's allocator.
pub(crate) unsafe fn usable_size(ptr: *mut c_void) -> usize {
    let mut f = USABLE_SIZE.load(Ordering::Acquire);
    if f == 0 {
        // dlsym may allocate, which comes back to us: no lock is held here.
        // SAFETY: a valid NUL-terminated name and a pseudo-handle.
        f = unsafe { libc::dlsym(libc::RTLD_NEXT, c"malloc_usable_size".as_ptr()) } as usize;
        if f == 0 {
            crate::fatal(b"glibc's malloc_usable_size not found (is this glibc?)");
        }
        USABLE_SIZE.store(f, Ordering::Release);
    }
    // SAFETY: `f` is glibc's `size_t malloc_usable_size(void *)`.
    unsafe { core::mem::transmute::<usize, UsableSize>(f)(ptr) }
}
