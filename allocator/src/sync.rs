//! The one place that chooses between std's and loom's synchronisation types.
//!
//! Under `cfg(loom)` every atomic and lock the allocators use is loom's, so
//! the model checker sees every interleaving of the atomic protocols
//! (remote free, abandonment, arena release, cache flush). Nothing else in
//! the crate names `std::sync` directly.

#[cfg(not(loom))]
pub(crate) use std::sync::atomic::{fence, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering};
#[cfg(not(loom))]
pub(crate) use std::sync::{Mutex, MutexGuard};

#[cfg(loom)]
pub(crate) use loom::sync::atomic::{
    fence, AtomicPtr, AtomicU32, AtomicU64, AtomicUsize, Ordering,
};
#[cfg(loom)]
pub(crate) use loom::sync::{Mutex, MutexGuard};

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
