//! The one place that chooses between std's and loom's synchronisation types.
//!
//! Under `cfg(loom)` every atomic, lock and condition variable the
//! allocators use is loom's, so the model checker sees every interleaving
//! of the atomic protocols (remote free, abandonment, arena release, cache
//! flush, GIL hand-over). Nothing else in the crate names `std::sync`
//! directly.
//!
//! [`UnsafeCell`] wraps the *plain* fields that a protocol hands from one
//! thread to another: pool headers (handed between heaps through the arena
//! lock and through heap adoption), a heap's rings and caches (handed over
//! at thread exit), a thread cache's bins, the GIL's core. Without loom it
//! is `core::cell::UnsafeCell` and its accessors compile to plain loads and
//! stores; under loom every access is checked against the happens-before
//! order, so a protocol that hands such a field over without the right
//! `Acquire`/`Release` pairing fails the model with a causality violation
//! instead of passing silently. (The pattern is sharded-slab's
//! `src/sync.rs`.) Accesses are instantaneous: [`get`](UnsafeCell::get) and
//! [`set`](UnsafeCell::set) copy a value in or out, and
//! [`with_mut`](UnsafeCell::with_mut) closures never call back into code
//! that touches the same cell (loom rejects nested access).

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{
    fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};
#[cfg(not(loom))]
pub(crate) use std::sync::{Condvar, Mutex, MutexGuard};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{
    fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};
#[cfg(loom)]
pub(crate) use loom::sync::{Condvar, Mutex, MutexGuard};

/// Locks `m`, ignoring poisoning: allocator code never panics while holding
/// a lock, so a poisoned lock can only come from a panic elsewhere that
/// already left the data consistent.
#[inline]
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// A plain field handed between threads by a protocol (see the module
/// docs). Every accessor is `unsafe`: the caller must own the field at that
/// moment (be the pool's or heap's owner, hold the lock), which is what the
/// loom models check.
#[repr(transparent)]
pub(crate) struct UnsafeCell<T> {
    #[cfg(not(loom))]
    inner: core::cell::UnsafeCell<T>,
    #[cfg(loom)]
    inner: loom::cell::UnsafeCell<T>,
}

impl<T> UnsafeCell<T> {
    /// A cell holding `v`.
    #[cfg(not(loom))]
    #[inline(always)]
    pub(crate) const fn new(v: T) -> UnsafeCell<T> {
        UnsafeCell {
            inner: core::cell::UnsafeCell::new(v),
        }
    }

    /// A cell holding `v` (not `const` under loom, whose cells register
    /// with the running model).
    #[cfg(loom)]
    #[track_caller]
    pub(crate) fn new(v: T) -> UnsafeCell<T> {
        UnsafeCell {
            inner: loom::cell::UnsafeCell::new(v),
        }
    }

    /// Runs `f` with a pointer for reading.
    ///
    /// # Safety
    /// Nobody writes the cell concurrently.
    #[inline(always)]
    #[cfg_attr(loom, track_caller)]
    pub(crate) unsafe fn with<R>(&self, f: impl FnOnce(*const T) -> R) -> R {
        #[cfg(not(loom))]
        {
            f(self.inner.get())
        }
        #[cfg(loom)]
        {
            self.inner.with(f)
        }
    }

    /// Runs `f` with a pointer for writing; `f` must not touch this cell
    /// through any other path.
    ///
    /// # Safety
    /// Nobody reads or writes the cell concurrently.
    #[inline(always)]
    #[cfg_attr(loom, track_caller)]
    pub(crate) unsafe fn with_mut<R>(&self, f: impl FnOnce(*mut T) -> R) -> R {
        #[cfg(not(loom))]
        {
            f(self.inner.get())
        }
        #[cfg(loom)]
        {
            self.inner.with_mut(f)
        }
    }
}

impl<T: Copy> UnsafeCell<T> {
    /// Reads the value.
    ///
    /// # Safety
    /// Nobody writes the cell concurrently.
    #[inline(always)]
    #[cfg_attr(loom, track_caller)]
    pub(crate) unsafe fn get(&self) -> T {
        // SAFETY: the caller rules out a concurrent write.
        unsafe { self.with(|p| *p) }
    }

    /// Writes the value.
    ///
    /// # Safety
    /// Nobody reads or writes the cell concurrently.
    #[inline(always)]
    #[cfg_attr(loom, track_caller)]
    pub(crate) unsafe fn set(&self, v: T) {
        // SAFETY: the caller rules out concurrent access.
        unsafe { self.with_mut(|p| *p = v) }
    }
}
