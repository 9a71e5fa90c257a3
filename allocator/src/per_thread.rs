//! The interface between an allocator with a part per thread (`tcache`,
//! `sharded`) and the registry that finds the calling thread's part
//! (`thread`). The allocator implements it once, with its real code; the
//! registry turns it into a `GlobalAlloc` (`thread::delegate_to_registered`)
//! and loom models call it directly, with threads of their own.

use core::alloc::Layout;
use core::ptr::null_mut;

use crate::stats::Stats;

/// State with a per-thread part.
pub(crate) trait PerThread: Sized + Sync + 'static {
    /// What builds the shared state (kept in the allocator value so that
    /// its constructor can be `const`).
    type Config: Copy;
    /// One thread's part.
    type Local;
    fn build(config: Self::Config) -> Self;
    /// Creates or adopts the calling thread's part; null when out of memory.
    fn attach(&self) -> *mut Self::Local;
    /// Gives back a thread's part when its thread exits.
    ///
    /// # Safety
    /// `local` must come from `attach` of `self` and not be used afterwards.
    unsafe fn detach(&self, local: *mut Self::Local);

    /// `GlobalAlloc::alloc` on the calling thread's part, the whole path
    /// (out of line: the fast paths tail-call it).
    ///
    /// # Safety
    /// `local` must be the calling thread's part of `self`.
    unsafe fn alloc(&self, local: *mut Self::Local, layout: Layout) -> *mut u8;

    /// `GlobalAlloc::dealloc` on the calling thread's part.
    ///
    /// # Safety
    /// As for `alloc`, and `GlobalAlloc::dealloc`'s contract.
    unsafe fn dealloc(&self, local: *mut Self::Local, ptr: *mut u8, layout: Layout);

    /// The common case of [`alloc`](Self::alloc) only, inlined into every
    /// caller: a block, or null when the full path must run (which then
    /// starts over; this must not have changed anything).
    ///
    /// # Safety
    /// As for `alloc`.
    #[inline(always)]
    unsafe fn alloc_fast(&self, _local: *mut Self::Local, _layout: Layout) -> *mut u8 {
        null_mut()
    }

    /// The common case of [`dealloc`](Self::dealloc) only, inlined into
    /// every caller: true if the block was freed, false (and nothing
    /// changed) when the full path must run.
    ///
    /// # Safety
    /// As for `dealloc`.
    #[inline(always)]
    unsafe fn dealloc_fast(
        &self,
        _local: *mut Self::Local,
        _ptr: *mut u8,
        _layout: Layout,
    ) -> bool {
        false
    }

    /// `GlobalAlloc::realloc` on the calling thread's part.
    ///
    /// # Safety
    /// As for `alloc`, and `GlobalAlloc::realloc`'s contract.
    unsafe fn realloc(
        &self,
        local: *mut Self::Local,
        ptr: *mut u8,
        layout: Layout,
        new_size: usize,
    ) -> *mut u8;

    fn stats(&self) -> Stats;

    /// The statistics of an allocator that never allocated.
    fn empty_stats(config: &Self::Config) -> Stats;
}
