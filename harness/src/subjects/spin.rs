//! `spin`: the calibration subject — `null` plus a known cost per call.
//!
//! Every `alloc`, `dealloc` and `realloc` first spins for a fixed time
//! (`POOLBENCH_SPIN_NS`, default 20 ns), then does what `null` does. A cell
//! on `spin` must therefore measure as the floor plus that time per
//! operation (every operation makes exactly one allocator call); `poolbench
//! selfcheck` reports how far it is off, which bounds how far any figure
//! is off. The spin is a counted loop calibrated against the monotonic
//! clock (a clock read per call would cost more than the spin and vary
//! with it). The parent of a run calibrates once and hands the count to
//! every cell's child ([`SPIN_ITERATIONS_ENV`]): calibrated in each child,
//! the count came out anywhere from 36 to 74 loops for the same 20 ns on
//! this project's machine, and each cell's spin with it.

use std::alloc::{GlobalAlloc, Layout};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::OnceLock;
use std::time::Instant;

use super::null::NULL;
use super::{Info, Subject};

/// Environment variable with the spin's length in nanoseconds.
pub const SPIN_ENV: &str = "POOLBENCH_SPIN_NS";
/// The spin's length when the environment does not say.
pub const DEFAULT_SPIN_NS: f64 = 20.0;
/// Environment variable with the loop count of the spin, set by the
/// parent of a run for every cell's child.
pub const SPIN_ITERATIONS_ENV: &str = "POOLBENCH_SPIN_ITERATIONS";

/// The spin's length from [`SPIN_ENV`], else [`DEFAULT_SPIN_NS`].
pub fn ns_from_env() -> f64 {
    std::env::var(SPIN_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|v| v.is_finite() && *v >= 0.0)
        .unwrap_or(DEFAULT_SPIN_NS)
}

/// The loop count of a spin of `ns`, from this process's calibration
/// (made once).
pub fn iterations_for(ns: f64) -> u64 {
    static NS_PER_ITERATION: OnceLock<f64> = OnceLock::new();
    (ns.max(0.0) / *NS_PER_ITERATION.get_or_init(ns_per_iteration)).round() as u64
}

/// The variable a cell's child needs to spin as this process calibrated.
pub fn child_env() -> (String, String) {
    (
        SPIN_ITERATIONS_ENV.to_string(),
        iterations_for(ns_from_env()).to_string(),
    )
}

/// Spins `iters` loop iterations: a chain of dependent additions in a
/// register, one per iteration, which the optimiser cannot fold (the empty
/// `asm` hides the value). No memory is touched, so an iteration costs the
/// same in calibration and in a cell; a `black_box` loop, which stores and
/// reloads its counter, ran 1.7× faster in some calibrations than in the
/// cells on this project's machine.
#[inline(never)]
fn spin(iters: u64) {
    let mut x = 0u64;
    for _ in 0..iters {
        x = x.wrapping_add(1);
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        // SAFETY: the template is empty: it executes nothing and leaves `x`
        // as it was; the compiler only loses track of its value.
        unsafe {
            core::arch::asm!("/* {0} */", inout(reg) x, options(nomem, nostack, preserves_flags))
        };
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        {
            x = black_box(x);
        }
    }
    black_box(x);
}

/// Nanoseconds per [`spin`] iteration, at the clock speed the cells run
/// at: the loop first spins for [`WARM_UP`] (a core that was idle starts
/// at a boost clock it does not keep under load: calibrated cold, the
/// count came out 1.7× too high on this project's machine), then the
/// median of a few timed runs.
fn ns_per_iteration() -> f64 {
    const N: u64 = 2_000_000;
    let start = Instant::now();
    while start.elapsed() < WARM_UP {
        spin(N);
    }
    let mut runs: Vec<f64> = (0..7)
        .map(|_| {
            let t = Instant::now();
            spin(N);
            t.elapsed().as_nanos() as f64 / N as f64
        })
        .collect();
    runs.sort_by(f64::total_cmp);
    runs[runs.len() / 2].max(1e-3)
}

/// How long the calibration spins before it times the loop.
const WARM_UP: std::time::Duration = std::time::Duration::from_millis(200);

/// The calibration allocator.
pub struct SpinAlloc {
    iters: u64,
}

impl SpinAlloc {
    /// A spin of about `ns` nanoseconds per call.
    pub fn new(ns: f64) -> SpinAlloc {
        SpinAlloc {
            iters: iterations_for(ns),
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
    /// The spin length from [`SPIN_ENV`], else [`DEFAULT_SPIN_NS`]; its
    /// loop count from [`SPIN_ITERATIONS_ENV`] (the parent's calibration),
    /// else calibrated here.
    pub fn from_env(info: &'static Info) -> Spin {
        let ns = ns_from_env();
        let alloc = match std::env::var(SPIN_ITERATIONS_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
        {
            Some(iters) => SpinAlloc { iters },
            None => SpinAlloc::new(ns),
        };
        Spin { info, ns, alloc }
    }
}

impl Subject for Spin {
    fn info(&self) -> &'static Info {
        self.info
    }
    fn allocator(&self) -> &(dyn GlobalAlloc + Sync) {
        &self.alloc
    }
    /// The asked length and the loop count this process calibrated for
    /// it (cells of one run can then be checked against each other).
    fn params(&self) -> BTreeMap<String, f64> {
        BTreeMap::from([
            ("spin_ns".to_string(), self.ns),
            ("spin_iterations".to_string(), self.alloc.iters as f64),
        ])
    }
}
