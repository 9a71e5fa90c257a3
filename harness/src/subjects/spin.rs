//! `spin`: the calibration subject — `null` plus a known cost per call.
//!
//! Every `alloc`, `dealloc` and `realloc` first spins for a fixed time
//! (`POOLBENCH_SPIN_NS`, default 20 ns), then does what `null` does. A cell
//! on `spin` must therefore measure as the floor plus that time per
//! operation (every operation makes exactly one allocator call); `poolbench
//! selfcheck` reports how far it is off, which bounds how far any figure
//! is off. The spin is a counted loop calibrated against the monotonic
//! clock when the subject is built (a clock read per call would cost more
//! than the spin and vary with it).

use std::alloc::{GlobalAlloc, Layout};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

use super::null::NULL;
use super::{Info, Subject};

/// Environment variable with the spin's length in nanoseconds.
pub const SPIN_ENV: &str = "POOLBENCH_SPIN_NS";
/// The spin's length when the environment does not say.
pub const DEFAULT_SPIN_NS: f64 = 20.0;

/// Spins `iters` loop iterations.
#[inline(never)]
fn spin(iters: u64) {
    let mut i = 0;
    while i < iters {
        black_box(i);
        i += 1;
    }
}

/// Nanoseconds per [`spin`] iteration: the fastest of a few timed runs
/// (preemption only ever makes a run slower).
fn ns_per_iteration() -> f64 {
    const N: u64 = 2_000_000;
    (0..5)
        .map(|_| {
            let t = Instant::now();
            spin(N);
            t.elapsed().as_nanos() as f64 / N as f64
        })
        .fold(f64::INFINITY, f64::min)
        .max(1e-3)
}

/// The calibration allocator.
pub struct SpinAlloc {
    iters: u64,
}

impl SpinAlloc {
    /// A spin of about `ns` nanoseconds per call.
    pub fn new(ns: f64) -> SpinAlloc {
        SpinAlloc {
            iters: (ns.max(0.0) / ns_per_iteration()).round() as u64,
        }
    }
}

// SAFETY: every call spins, then delegates to `NULL` with the caller's
// arguments unchanged, so `NULL`'s guarantees are this allocator's.
unsafe impl GlobalAlloc for SpinAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        spin(self.iters);
        // SAFETY: the caller's contract, passed on.
        unsafe { NULL.alloc(layout) }
    }
    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        spin(self.iters);
        // SAFETY: the caller's contract, passed on.
        unsafe { NULL.dealloc(ptr, layout) }
    }
    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        spin(self.iters);
        // SAFETY: the caller's contract, passed on (one spin per call).
        unsafe { NULL.realloc(ptr, layout, new_size) }
    }
}

/// The `spin` subject.
pub struct Spin {
    info: &'static Info,
    ns: f64,
    alloc: SpinAlloc,
}

impl Spin {
    /// The spin length from [`SPIN_ENV`], else [`DEFAULT_SPIN_NS`].
    pub fn from_env(info: &'static Info) -> Spin {
        let ns = std::env::var(SPIN_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|v| v.is_finite() && *v >= 0.0)
            .unwrap_or(DEFAULT_SPIN_NS);
        Spin {
            info,
            ns,
            alloc: SpinAlloc::new(ns),
        }
    }
}

impl Subject for Spin {
    fn info(&self) -> &'static Info {
        self.info
    }
    fn allocator(&self) -> &(dyn GlobalAlloc + Sync) {
        &self.alloc
    }
    fn params(&self) -> BTreeMap<String, f64> {
        BTreeMap::from([("spin_ns".to_string(), self.ns)])
    }
}
