//! mimalloc as the process's `malloc`, for `LD_PRELOAD`: a reference
//! subject for program workloads, built from the `libmimalloc-sys` crate
//! (the same mimalloc the harness links), with no system package.
//!
//! ```text
//! cargo build --release -p ref-mimalloc
//! LD_PRELOAD=target/release/libpoolbench_mimalloc.so some-program
//! ```
//!
//! Every function forwards to mimalloc's own C entry point of the same
//! name (`mi_malloc`, `mi_posix_memalign`, …), which keeps the C and POSIX
//! rules (errno, EINVAL, overflow checks) itself, except where it returns
//! null without setting `errno`: `malloc` and `pvalloc` of more than it
//! can ever serve, `aligned_alloc` with an alignment that is not a power of two, and
//! `calloc` whose size overflows; `reallocarray` sets `EOVERFLOW` where
//! glibc sets `ENOMEM`, and `memalign` refuses an alignment that is not a
//! power of two (glibc rounds it up). Those follow glibc here, off the
//! fast path.

use core::ffi::{c_int, c_void};

// Links the static library whose symbols the declarations below name.
use libmimalloc_sys as _;

extern "C" {
    fn mi_malloc(size: usize) -> *mut c_void;
    fn mi_free(p: *mut c_void);
    fn mi_calloc(n: usize, size: usize) -> *mut c_void;
    fn mi_realloc(p: *mut c_void, size: usize) -> *mut c_void;
    fn mi_reallocarray(p: *mut c_void, n: usize, size: usize) -> *mut c_void;
    fn mi_posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int;
    fn mi_aligned_alloc(align: usize, size: usize) -> *mut c_void;
    fn mi_memalign(align: usize, size: usize) -> *mut c_void;
    fn mi_valloc(size: usize) -> *mut c_void;
    fn mi_pvalloc(size: usize) -> *mut c_void;
    fn mi_malloc_usable_size(p: *mut c_void) -> usize;
}

/// Exports C functions that forward to mimalloc's.
macro_rules! forward {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $ret:ty => $target:ident;)*) => {$(
        /// # Safety
        /// The contract of the C function of this name.
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            // SAFETY: mimalloc's function has the same contract.
            unsafe { $target($($arg),*) }
        }
    )*};
}

forward! {
    free(p: *mut c_void) -> () => mi_free;
    realloc(p: *mut c_void, size: usize) -> *mut c_void => mi_realloc;
    posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int => mi_posix_memalign;
    valloc(size: usize) -> *mut c_void => mi_valloc;
    malloc_usable_size(p: *mut c_void) -> usize => mi_malloc_usable_size;
}

/// # Safety
/// C's `aligned_alloc`.
#[no_mangle]
pub unsafe extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    if !align.is_power_of_two() {
        // SAFETY: the calling thread's errno is always writable.
        unsafe { *errno() = EINVAL };
        return core::ptr::null_mut();
    }
    // SAFETY: forwarded contract.
    unsafe { mi_aligned_alloc(align, size) }
}

/// # Safety
/// C's `malloc`.
#[no_mangle]
pub unsafe extern "C" fn malloc(size: usize) -> *mut c_void {
    // SAFETY: forwarded contract.
    let p = unsafe { mi_malloc(size) };
    if p.is_null() {
        // SAFETY: the calling thread's errno is always writable.
        unsafe { *errno() = ENOMEM };
    }
    p
}

/// # Safety
/// glibc's `pvalloc`.
#[no_mangle]
pub unsafe extern "C" fn pvalloc(size: usize) -> *mut c_void {
    // SAFETY: forwarded contract.
    let p = unsafe { mi_pvalloc(size) };
    if p.is_null() {
        // SAFETY: the calling thread's errno is always writable.
        unsafe { *errno() = ENOMEM };
    }
    p
}

/// # Safety
/// C's `calloc`.
#[no_mangle]
pub unsafe extern "C" fn calloc(n: usize, size: usize) -> *mut c_void {
    if n.checked_mul(size).is_none() {
        // SAFETY: the calling thread's errno is always writable.
        unsafe { *errno() = ENOMEM };
        return core::ptr::null_mut();
    }
    // SAFETY: forwarded contract.
    unsafe { mi_calloc(n, size) }
}

/// # Safety
/// glibc's `reallocarray`: `p` is null or a live block of this allocator.
#[no_mangle]
pub unsafe extern "C" fn reallocarray(p: *mut c_void, n: usize, size: usize) -> *mut c_void {
    if n.checked_mul(size).is_none() {
        // SAFETY: the calling thread's errno is always writable.
        unsafe { *errno() = ENOMEM };
        return core::ptr::null_mut();
    }
    // SAFETY: forwarded contract.
    unsafe { mi_reallocarray(p, n, size) }
}

const ENOMEM: c_int = 12;
const EINVAL: c_int = 22;

extern "C" {
    #[link_name = "__errno_location"]
    fn errno() -> *mut c_int;
}

/// # Safety
/// glibc's `memalign`: an alignment that is not a power of two is rounded
/// up to one.
#[no_mangle]
pub unsafe extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
    match align.max(1).checked_next_power_of_two() {
        // SAFETY: a power-of-two alignment.
        Some(a) => unsafe { mi_memalign(a, size) },
        None => {
            // SAFETY: the calling thread's errno is always writable.
            unsafe { *errno() = EINVAL };
            core::ptr::null_mut()
        }
    }
}
