//! jemalloc as the process's `malloc`, for `LD_PRELOAD`: a reference
//! subject for program workloads, built from the `tikv-jemalloc-sys` crate
//! (the same jemalloc the harness links), with no system package.
//!
//! ```text
//! cargo build --release -p ref-jemalloc
//! LD_PRELOAD=target/release/libpoolbench_jemalloc.so some-program
//! ```
//!
//! The crate builds jemalloc with the `_rjem_` prefix; every function
//! forwards to jemalloc's prefixed entry point of the same name, which
//! keeps the C and POSIX rules itself. jemalloc has no `reallocarray` or
//! `pvalloc`, its `memalign` refuses an alignment that is not a power of
//! two, and a zero-size request with a large alignment comes back
//! misaligned: the aligned functions and those two are written here, with
//! glibc's rules.

use core::ffi::{c_int, c_void};

// Links the static library whose symbols the declarations below name.
use tikv_jemalloc_sys as _;

extern "C" {
    fn _rjem_malloc(size: usize) -> *mut c_void;
    fn _rjem_free(p: *mut c_void);
    fn _rjem_calloc(n: usize, size: usize) -> *mut c_void;
    fn _rjem_realloc(p: *mut c_void, size: usize) -> *mut c_void;
    fn _rjem_posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int;
    fn _rjem_aligned_alloc(align: usize, size: usize) -> *mut c_void;
    fn _rjem_memalign(align: usize, size: usize) -> *mut c_void;
    fn _rjem_malloc_usable_size(p: *mut c_void) -> usize;
}

/// Exports C functions that forward to jemalloc's.
macro_rules! forward {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $ret:ty => $target:ident;)*) => {$(
        /// # Safety
        /// The contract of the C function of this name.
        #[no_mangle]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            // SAFETY: jemalloc's function has the same contract.
            unsafe { $target($($arg),*) }
        }
    )*};
}

forward! {
    malloc(size: usize) -> *mut c_void => _rjem_malloc;
    free(p: *mut c_void) -> () => _rjem_free;
    calloc(n: usize, size: usize) -> *mut c_void => _rjem_calloc;
    realloc(p: *mut c_void, size: usize) -> *mut c_void => _rjem_realloc;
    malloc_usable_size(p: *mut c_void) -> usize => _rjem_malloc_usable_size;
}

const ENOMEM: c_int = 12;
const EINVAL: c_int = 22;

fn set_errno(e: c_int) {
    // SAFETY: the calling thread's errno is always writable.
    unsafe { *errno() = e };
}

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
        Some(a) => unsafe { _rjem_memalign(a, size.max(1)) },
        None => {
            set_errno(EINVAL);
            core::ptr::null_mut()
        }
    }
}

/// # Safety
/// glibc's `reallocarray`: `p` is null or a live block of this allocator.
#[no_mangle]
pub unsafe extern "C" fn reallocarray(p: *mut c_void, n: usize, size: usize) -> *mut c_void {
    match n.checked_mul(size) {
        // SAFETY: forwarded contract.
        Some(total) => unsafe { _rjem_realloc(p, total) },
        None => {
            set_errno(ENOMEM);
            core::ptr::null_mut()
        }
    }
}

const PAGE: usize = 4096;

/// # Safety
/// glibc's `valloc`.
#[no_mangle]
pub unsafe extern "C" fn valloc(size: usize) -> *mut c_void {
    // SAFETY: a power-of-two alignment.
    unsafe { _rjem_memalign(PAGE, size.max(1)) }
}

/// # Safety
/// glibc's `pvalloc`: the size rounds up to whole pages, at least one.
#[no_mangle]
pub unsafe extern "C" fn pvalloc(size: usize) -> *mut c_void {
    match size.max(1).checked_next_multiple_of(PAGE) {
        // SAFETY: a power-of-two alignment.
        Some(s) => unsafe { _rjem_memalign(PAGE, s) },
        None => {
            set_errno(ENOMEM);
            core::ptr::null_mut()
        }
    }
}

/// # Safety
/// POSIX `posix_memalign`: `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int {
    // Size 0 with a large alignment comes back misaligned: ask for a byte.
    // SAFETY: forwarded contract.
    unsafe { _rjem_posix_memalign(out, align, size.max(1)) }
}

/// # Safety
/// C's `aligned_alloc`.
#[no_mangle]
pub unsafe extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    // SAFETY: forwarded contract (size 0: as in `posix_memalign`).
    unsafe { _rjem_aligned_alloc(align, size.max(1)) }
}
