//! snmalloc as the process's `malloc`, for `LD_PRELOAD`: a reference
//! subject for program workloads, built from the `snmalloc-sys` crate (the
//! same snmalloc the harness links, compiled with the `cc` crate, no
//! cmake) with its `libc-api` feature, which adds snmalloc's C API under
//! the `sn_` prefix.
//!
//! ```text
//! cargo build --release -p ref-snmalloc
//! LD_PRELOAD=target/release/libpoolbench_snmalloc.so some-program
//! ```
//!
//! Every function forwards to snmalloc's entry point of the same name,
//! which keeps the C and POSIX rules itself, except that `pvalloc` of a
//! size that overflows when rounded to pages does not fail with `ENOMEM`,
//! `memalign` refuses an alignment that is not a power of two (glibc
//! rounds it up), and a zero-size request with a large alignment comes
//! back misaligned: the aligned functions follow glibc here.

use core::ffi::{c_int, c_void};

// Links the static library whose symbols the declarations below name.
use snmalloc_sys as _;

extern "C" {
    fn sn_malloc(size: usize) -> *mut c_void;
    fn sn_free(p: *mut c_void);
    fn sn_calloc(n: usize, size: usize) -> *mut c_void;
    fn sn_realloc(p: *mut c_void, size: usize) -> *mut c_void;
    fn sn_reallocarray(p: *mut c_void, n: usize, size: usize) -> *mut c_void;
    fn sn_posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int;
    fn sn_aligned_alloc(align: usize, size: usize) -> *mut c_void;
    fn sn_memalign(align: usize, size: usize) -> *mut c_void;
    fn sn_valloc(size: usize) -> *mut c_void;
    fn sn_pvalloc(size: usize) -> *mut c_void;
    fn sn_malloc_usable_size(p: *mut c_void) -> usize;
}

/// Exports C functions that forward to snmalloc's.
macro_rules! forward {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $ret:ty => $target:ident;)*) => {$(
        /// # Safety
        /// The contract of the C function of this name.
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            // SAFETY: snmalloc's function has the same contract.
            unsafe { $target($($arg),*) }
        }
    )*};
}

forward! {
    malloc(size: usize) -> *mut c_void => sn_malloc;
    free(p: *mut c_void) -> () => sn_free;
    calloc(n: usize, size: usize) -> *mut c_void => sn_calloc;
    realloc(p: *mut c_void, size: usize) -> *mut c_void => sn_realloc;
    reallocarray(p: *mut c_void, n: usize, size: usize) -> *mut c_void => sn_reallocarray;
    malloc_usable_size(p: *mut c_void) -> usize => sn_malloc_usable_size;
}

/// # Safety
/// glibc's `pvalloc`.
#[no_mangle]
pub unsafe extern "C" fn pvalloc(size: usize) -> *mut c_void {
    if size.checked_next_multiple_of(4096).is_none() {
        // SAFETY: the calling thread's errno is always writable.
        unsafe { *errno() = ENOMEM };
        return core::ptr::null_mut();
    }
    // SAFETY: forwarded contract (size 0: as in `posix_memalign`).
    unsafe { sn_pvalloc(size.max(1)) }
}

/// # Safety
/// glibc's `memalign`: an alignment that is not a power of two is rounded
/// up to one.
#[no_mangle]
pub unsafe extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
    match align.max(1).checked_next_power_of_two() {
        // SAFETY: a power-of-two alignment.
        Some(a) => unsafe { sn_memalign(a, size.max(1)) },
        None => {
            // SAFETY: the calling thread's errno is always writable.
            unsafe { *errno() = EINVAL };
            core::ptr::null_mut()
        }
    }
}

const ENOMEM: c_int = 12;
const EINVAL: c_int = 22;

extern "C" {
    #[link_name = "__errno_location"]
    fn errno() -> *mut c_int;
}

/// # Safety
/// POSIX `posix_memalign`: `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int {
    // Size 0 with a large alignment comes back misaligned: ask for a byte.
    // SAFETY: forwarded contract.
    unsafe { sn_posix_memalign(out, align, size.max(1)) }
}

/// # Safety
/// C's `aligned_alloc`.
#[no_mangle]
pub unsafe extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    // SAFETY: forwarded contract (size 0: as in `posix_memalign`).
    unsafe { sn_aligned_alloc(align, size.max(1)) }
}

/// # Safety
/// glibc's `valloc`.
#[no_mangle]
pub unsafe extern "C" fn valloc(size: usize) -> *mut c_void {
    // SAFETY: forwarded contract (size 0: as in `posix_memalign`).
    unsafe { sn_valloc(size.max(1)) }
}
