//! TEMPORARY stand-ins for `allocator::{PoolStats, Gil, GilGuard, GilStats}`.
//!
//! The lead is writing these in the `allocator` crate; until they land the
//! driver is written against the brief's signatures through this module.
//! At merge: replace `crate::allocator_api::` with `allocator::` in
//! `subject.rs` and `driver.rs` and delete this file.
//!
//! The stand-in `Gil` is functional but simpler than the real one: it
//! serialises holders with a mutex and condition variable and never forces a
//! switch (a holder keeps it until `allow_threads` or drop), and it allocates
//! from `System`. It exists so that the driver's GIL protocol (hold for the
//! whole loop, release around every blocking call, wait hook) is exercised by
//! tests before the real allocator arrives.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use allocator::Stats;

/// Allocators that report CPython-style accounting.
pub trait PoolStats {
    fn stats(&self) -> Stats;
}

/// GIL counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GilStats {
    pub acquisitions: u64,
    pub contended: u64,
    pub switches: u64,
}

/// Stand-in GIL: see the module docs.
pub struct Gil {
    held: Mutex<bool>,
    freed: Condvar,
    hook: AtomicUsize,
    interval_ns: AtomicU64,
    acquisitions: AtomicU64,
    contended: AtomicU64,
}

impl Gil {
    pub const fn new(_geometry: allocator::Geometry) -> Self {
        Gil {
            held: Mutex::new(false),
            freed: Condvar::new(),
            hook: AtomicUsize::new(0),
            interval_ns: AtomicU64::new(5_000_000),
            acquisitions: AtomicU64::new(0),
            contended: AtomicU64::new(0),
        }
    }

    fn acquire(&self) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if *held {
            let start = Instant::now();
            while *held {
                held = self.freed.wait(held).unwrap_or_else(|e| e.into_inner());
            }
            self.contended.fetch_add(1, Ordering::Relaxed);
            let hook = self.hook.load(Ordering::Acquire);
            *held = true;
            drop(held);
            if hook != 0 {
                // SAFETY: `hook` is only ever stored from a `fn(u64)` in `set_wait_hook`.
                let f: fn(u64) = unsafe { std::mem::transmute::<usize, fn(u64)>(hook) };
                f(start.elapsed().as_nanos() as u64);
            }
        } else {
            *held = true;
        }
        self.acquisitions.fetch_add(1, Ordering::Relaxed);
    }

    fn release(&self) {
        *self.held.lock().unwrap_or_else(|e| e.into_inner()) = false;
        self.freed.notify_one();
    }

    pub fn hold(&self) -> GilGuard<'_> {
        self.acquire();
        GilGuard { gil: self }
    }

    pub fn set_switch_interval(&self, d: Duration) {
        self.interval_ns
            .store(d.as_nanos() as u64, Ordering::Relaxed);
    }

    pub fn switch_interval(&self) -> Duration {
        Duration::from_nanos(self.interval_ns.load(Ordering::Relaxed))
    }

    pub fn set_wait_hook(&self, hook: Option<fn(u64)>) {
        self.hook
            .store(hook.map_or(0, |f| f as usize), Ordering::Release);
    }

    pub fn gil_stats(&self) -> GilStats {
        GilStats {
            acquisitions: self.acquisitions.load(Ordering::Relaxed),
            contended: self.contended.load(Ordering::Relaxed),
            switches: 0,
        }
    }
}

/// A held GIL span.
pub struct GilGuard<'a> {
    gil: &'a Gil,
}

impl GilGuard<'_> {
    pub fn allow_threads<R>(&mut self, f: impl FnOnce() -> R) -> R {
        self.gil.release();
        let r = f();
        self.gil.acquire();
        r
    }
}

impl Drop for GilGuard<'_> {
    fn drop(&mut self) {
        self.gil.release();
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments, so
// `System`'s guarantees carry over unchanged.
unsafe impl GlobalAlloc for Gil {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `GlobalAlloc::dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}
