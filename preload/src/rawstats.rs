//! Counts of the blocks this library passed to glibc, kept only when
//! `POOLBENCH_STATS=1` (two shared counters would otherwise cost every
//! large request a contended cache line).

use core::ffi::c_void;
use std::sync::atomic::{AtomicIsize, Ordering};

use crate::glibc;

/// Blocks from glibc live: allocated through us minus freed through us
/// (glibc's own internal blocks freed by the program count as frees).
pub(crate) static LIVE_BLOCKS: AtomicIsize = AtomicIsize::new(0);
/// Their usable bytes, as glibc's `malloc_usable_size` tells.
pub(crate) static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

/// Counts a block glibc just made.
pub(crate) fn allocated(p: *mut c_void) {
    // SAFETY: `p` is a live glibc block.
    let n = unsafe { glibc::usable_size(p) } as isize;
    LIVE_BLOCKS.fetch_add(1, Ordering::Relaxed);
    LIVE_BYTES.fetch_add(n, Ordering::Relaxed);
}

/// Counts a glibc block about to be freed (or reallocated).
///
/// # Safety
/// `p` must be a live glibc block.
pub(crate) unsafe fn freed(p: *mut c_void) {
    // SAFETY: caller's contract.
    let n = unsafe { glibc::usable_size(p) } as isize;
    LIVE_BLOCKS.fetch_sub(1, Ordering::Relaxed);
    LIVE_BYTES.fetch_sub(n, Ordering::Relaxed);
}
