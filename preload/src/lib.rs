//! Every poolbench allocator as the process's `malloc`, for `LD_PRELOAD`.
//!
//! ```text
//! cargo build --release -p preload
//! LD_PRELOAD=target/release/libpoolbench_preload.so POOLBENCH_ALLOCATOR=gil some-program
//! ```
//!
//! Exports the C allocation functions glibc lets a library replace:
//! `malloc`, `free`, `calloc`, `realloc`, `reallocarray`,
//! `posix_memalign`, `aligned_alloc`, `memalign`, `valloc`, `pvalloc` and
//! `malloc_usable_size`, served by the allocator `POOLBENCH_ALLOCATOR`
//! names in the geometry `POOLBENCH_GEOMETRY` names (see `select`), with
//! glibc serving what pools do not (see `front`). `POOLBENCH_STATS=1`
//! prints the allocator's accounting to stderr at exit (see `report`).
//!
//! Nothing here allocates through Rust's global allocator on the way to a
//! block, nothing unwinds across the C ABI (an `extern "C"` function that
//! panics aborts), and broken invariants abort with a message. The default
//! geometry is `modern` (CPython 3.8+: 16-byte classes), because C promises
//! 16-byte alignment for requests of 16 bytes or more; blocks of the
//! `classic` geometry are 8-byte aligned, as pymalloc's were on 64-bit
//! before CPython 3.8 (`POOLBENCH_GEOMETRY=classic` asks for them).

use core::ffi::{c_int, c_void};

#[macro_use]
mod select;
mod front;
mod glibc;
mod rawstats;
mod report;

/// Writes `msg` and `detail` to stderr and aborts, without allocating.
#[cold]
pub(crate) fn fatal_with(msg: &[u8], detail: &[u8]) -> ! {
    let prefix = b"poolbench preload: ";
    // SAFETY: writing valid buffers to fd 2 and aborting have no
    // preconditions; none of it allocates.
    unsafe {
        libc::write(2, prefix.as_ptr().cast(), prefix.len());
        libc::write(2, msg.as_ptr().cast(), msg.len());
        libc::write(2, detail.as_ptr().cast(), detail.len());
        libc::write(2, b"\n".as_ptr().cast(), 1);
        libc::abort()
    }
}

/// Writes `msg` to stderr and aborts, without allocating.
#[cold]
pub(crate) fn fatal(msg: &[u8]) -> ! {
    fatal_with(msg, b"")
}

/// # Safety
/// C's `malloc`.
#[no_mangle]
pub unsafe extern "C" fn malloc(size: usize) -> *mut c_void {
    dispatch!(f => f.malloc(size))
}

/// # Safety
/// C's `free`: `p` is null or a live block of this allocator.
#[no_mangle]
pub unsafe extern "C" fn free(p: *mut c_void) {
    // SAFETY: forwarded contract.
    dispatch!(f => unsafe { f.free(p) })
}

/// # Safety
/// C's `calloc`.
#[no_mangle]
pub unsafe extern "C" fn calloc(n: usize, size: usize) -> *mut c_void {
    dispatch!(f => f.calloc(n, size))
}

/// # Safety
/// C's `realloc`: `p` is null or a live block of this allocator.
#[no_mangle]
pub unsafe extern "C" fn realloc(p: *mut c_void, size: usize) -> *mut c_void {
    // SAFETY: forwarded contract.
    dispatch!(f => unsafe { f.realloc(p, size) })
}

/// # Safety
/// glibc's `reallocarray`: `p` is null or a live block of this allocator.
#[no_mangle]
pub unsafe extern "C" fn reallocarray(p: *mut c_void, n: usize, size: usize) -> *mut c_void {
    // SAFETY: forwarded contract.
    dispatch!(f => unsafe { f.reallocarray(p, n, size) })
}

/// # Safety
/// POSIX `posix_memalign`: `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn posix_memalign(out: *mut *mut c_void, align: usize, size: usize) -> c_int {
    // SAFETY: forwarded contract.
    dispatch!(f => unsafe { f.posix_memalign(out, align, size) })
}

/// # Safety
/// C's `aligned_alloc`.
#[no_mangle]
pub unsafe extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut c_void {
    dispatch!(f => f.aligned_alloc(align, size))
}

/// # Safety
/// glibc's `memalign`.
#[no_mangle]
pub unsafe extern "C" fn memalign(align: usize, size: usize) -> *mut c_void {
    dispatch!(f => f.memalign(align, size))
}

/// # Safety
/// glibc's `valloc`.
#[no_mangle]
pub unsafe extern "C" fn valloc(size: usize) -> *mut c_void {
    dispatch!(f => f.valloc(size))
}

/// # Safety
/// glibc's `pvalloc`.
#[no_mangle]
pub unsafe extern "C" fn pvalloc(size: usize) -> *mut c_void {
    dispatch!(f => f.pvalloc(size))
}

/// # Safety
/// glibc's `malloc_usable_size`: `p` is null or a live block of this
/// allocator.
#[no_mangle]
pub unsafe extern "C" fn malloc_usable_size(p: *mut c_void) -> usize {
    // SAFETY: forwarded contract.
    dispatch!(f => unsafe { f.usable_size(p) })
}

/// At load time: choose the allocator and make it ready (mapping its
/// state and installing its fork handlers) before the program runs.
extern "C" fn at_load() {
    // SAFETY: a fresh block, freed once.
    unsafe { free(malloc(1)) };
}

/// At exit: the accounting, if asked for.
extern "C" fn at_exit() {
    if select::stats_enabled() {
        report::print();
    }
}

#[used]
#[link_section = ".init_array"]
static AT_LOAD: extern "C" fn() = at_load;

#[used]
#[link_section = ".fini_array"]
static AT_EXIT: extern "C" fn() = at_exit;
