//! A home for an allocator's shared state at an address that never moves.
//!
//! `Locked` and `Gil` are values that can be constructed in `const`
//! context and moved around, but the fork handlers (`fork`) must reach
//! their locks from anywhere, at any time. So their state lives in a
//! mapping of its own, made on first use, registered for fork while it
//! exists, and unmapped when the allocator value is dropped. The value
//! itself holds only the pointer: moving it moves nothing that matters.
//! (The per-thread allocators' state lives in `thread`'s reference-counted
//! home for the same reason, and more.)

use core::ptr::null_mut;
// Not the loom shim's: publishing a home once is no protocol worth model
// checking, and every loom atomic access is one more scheduling point.
use std::sync::atomic::{AtomicPtr, Ordering};

use crate::fork::{self, ForkHooks};
use crate::os;

/// The pointer to a `T` in its own mapping, created on first use.
pub(crate) struct StableHome<T: ForkHooks + 'static> {
    ptr: AtomicPtr<T>,
}

impl<T: ForkHooks + 'static> StableHome<T> {
    /// An empty home; nothing is mapped until [`get`](Self::get).
    pub(crate) const fn new() -> StableHome<T> {
        StableHome {
            ptr: AtomicPtr::new(null_mut()),
        }
    }

    fn bytes() -> usize {
        core::mem::size_of::<T>().next_multiple_of(4096)
    }

    /// The state, built by `build` on first use; `None` when out of memory.
    #[inline(always)]
    pub(crate) fn get(&self, build: impl FnOnce() -> T) -> Option<&T> {
        let p = self.ptr.load(Ordering::Acquire);
        if !p.is_null() {
            // SAFETY: a published home stays mapped until `self` is dropped.
            return Some(unsafe { &*p });
        }
        self.create(build)
    }

    /// The state if it was created already.
    #[inline(always)]
    pub(crate) fn existing(&self) -> Option<&T> {
        let p = self.ptr.load(Ordering::Acquire);
        // SAFETY: as in `get`.
        (!p.is_null()).then(|| unsafe { &*p })
    }

    #[cold]
    #[inline(never)]
    fn create(&self, build: impl FnOnce() -> T) -> Option<&T> {
        debug_assert!(core::mem::align_of::<T>() <= 4096);
        let mem = os::map(Self::bytes()).cast::<T>();
        if mem.is_null() {
            return None;
        }
        // SAFETY: fresh, writable, page-aligned memory large enough for a T;
        // it stays at this address until `discard` or our drop, both of
        // which unregister it first.
        unsafe {
            mem.write(build());
            if !fork::register(&*mem) {
                Self::discard(mem);
                return None;
            }
        }
        match self
            .ptr
            .compare_exchange(null_mut(), mem, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => {
                // Outside every lock: this may allocate, even through us.
                fork::install();
                // SAFETY: just published; lives as long as `self`.
                Some(unsafe { &*mem })
            }
            Err(winner) => {
                // SAFETY: nobody saw `mem`; `winner` is published.
                unsafe {
                    Self::discard(mem);
                    Some(&*winner)
                }
            }
        }
    }

    /// Unregisters, drops and unmaps a home.
    ///
    /// # Safety
    /// `mem` must be a home made by `create`, unused afterwards.
    unsafe fn discard(mem: *mut T) {
        fork::unregister(mem as *const ());
        // SAFETY: caller's contract.
        unsafe {
            core::ptr::drop_in_place(mem);
            os::unmap(mem.cast(), Self::bytes());
        }
    }
}

impl<T: ForkHooks + 'static> Drop for StableHome<T> {
    fn drop(&mut self) {
        let p = self.ptr.load(Ordering::Acquire);
        if !p.is_null() {
            // SAFETY: the allocator value is being dropped, so nothing can
            // use its state any more (blocks still live are leaked, as
            // with any allocator dropped before its blocks).
            unsafe { Self::discard(p) };
        }
    }
}
