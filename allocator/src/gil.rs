//! `gil`: the pymalloc core behind a global interpreter lock.
//!
//! A thread takes the GIL for a *span* of work ([`GilCore::hold`]) and
//! allocates inside it without any further locking, exactly as CPython code
//! running under the GIL calls `pymalloc_alloc` directly. A thread that
//! calls the allocator without holding the GIL takes it for that one call.
//!
//! Hand-over follows CPython's `Python/ceval_gil.c`: a thread that wants the
//! GIL waits up to the switch interval (default 5 ms,
//! `sys.setswitchinterval`); if no switch happened meanwhile it sets a *drop
//! request*. The holder checks that request, one relaxed load, at each of
//! its allocator calls (CPython checks its eval breaker between bytecodes),
//! releases the GIL and, like CPython's `FORCE_SWITCHING`, waits until
//! another thread has actually taken it before competing again, so a busy
//! holder cannot starve waiters.
//!
//! The lock is `gil_lock.rs`: one atomic word, taken with one CAS and
//! dropped with one atomic subtraction when nobody waits, so a call made
//! without a span costs about what `locked`'s mutex costs; a `std` mutex
//! and condition variables (futex-based on Linux, so nothing allocates,
//! which keeps `Gil` usable as a `#[global_allocator]`) are touched only
//! when a thread has to sleep, as CPython signals only when there are
//! waiters.
//!
//! The GIL and the core live in a [`GilCore`] at a stable address (see
//! `stable`), which the fork handlers can reach; the [`Gil`] value holds a
//! pointer to it and dereferences to it.

use core::alloc::{GlobalAlloc, Layout};
use core::marker::PhantomData;
use core::ptr::null_mut;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::fork::{ForkHooks, HeldAcrossFork};
use crate::geometry::Geometry;
use crate::gil_lock::GilLock;
use crate::pymalloc::Pymalloc;
use crate::stable::StableHome;
use crate::stats::Stats;
use crate::sync::UnsafeCell;
use crate::PoolStats;

/// CPython's default switch interval.
pub const DEFAULT_SWITCH_INTERVAL: Duration = Duration::from_millis(5);

thread_local! {
    /// Its address identifies the thread; no destructor, no allocation.
    static THREAD_MARK: u8 = const { 0 };
}

/// A non-zero identifier of the calling thread, cheap to get.
#[inline(always)]
fn thread_id() -> usize {
    THREAD_MARK.with(|m| m as *const u8 as usize)
}

/// Counters of the GIL's behaviour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GilStats {
    /// Times the GIL was taken.
    pub acquisitions: u64,
    /// Of those, times the taker had to wait.
    pub contended: u64,
    /// Hand-overs forced by a drop request.
    pub switches: u64,
}

/// The pymalloc core behind a GIL, at a stable address; reached through
/// [`Gil`], which dereferences to it.
pub struct GilCore {
    core: UnsafeCell<Pymalloc>,
    lock: GilLock,
    /// The holder's [`thread_id`], or 0.
    holder: AtomicUsize,
    interval_ns: AtomicU64,
    /// `fn(u64)` called after each contended acquisition, or 0.
    wait_hook: AtomicUsize,
    /// Written by the holder only (plain load and store).
    contended: AtomicU64,
    /// Written by the holder only (plain load and store).
    switches: AtomicU64,
    /// The lock's mutex, held by the forking thread across `fork()`.
    fork_mutex: HeldAcrossFork<crate::sync::MutexGuard<'static, ()>>,
    /// Whether the fork handlers took the GIL (rather than found it held
    /// by the forking thread).
    fork_took: AtomicBool,
}

// SAFETY: the core is only touched by the thread that holds the GIL
// (`GilLock` hands it to one thread at a time, its Acquire/Release pairs
// ordering the accesses); everything else is atomics.
unsafe impl Sync for GilCore {}
// SAFETY: the core owns its mappings; moving the allocator moves them.
unsafe impl Send for GilCore {}

/// Proof that the current thread holds the GIL; releases it when dropped
/// (unless it was a nested hold). Not `Send`: the GIL belongs to a thread.
pub struct GilGuard<'a> {
    gil: &'a GilCore,
    /// False for a nested `hold` by a thread that already held the GIL.
    owns: bool,
    _not_send: PhantomData<*const ()>,
}

/// Adds one to a counter only the GIL holder writes.
#[inline(always)]
fn count(c: &AtomicU64) {
    c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
}

impl GilCore {
    /// The GIL and a core with geometry `g`, with the default switch interval.
    pub const fn new(g: Geometry) -> GilCore {
        GilCore {
            core: UnsafeCell::new(Pymalloc::new(g)),
            lock: GilLock::new(),
            holder: AtomicUsize::new(0),
            interval_ns: AtomicU64::new(DEFAULT_SWITCH_INTERVAL.as_nanos() as u64),
            wait_hook: AtomicUsize::new(0),
            contended: AtomicU64::new(0),
            switches: AtomicU64::new(0),
            fork_mutex: HeldAcrossFork::new(),
            fork_took: AtomicBool::new(false),
        }
    }

    /// The geometry this allocator runs.
    pub fn geometry(&self) -> Geometry {
        let _g = self.hold();
        // SAFETY: we hold the GIL.
        unsafe { self.core.with(|c| *(*c).geometry()) }
    }

    /// Sets the switch interval (CPython's `sys.setswitchinterval`).
    pub fn set_switch_interval(&self, d: Duration) {
        let ns = d.as_nanos().clamp(1_000, u64::MAX as u128) as u64;
        self.interval_ns.store(ns, Ordering::Relaxed);
    }

    /// The switch interval.
    pub fn switch_interval(&self) -> Duration {
        Duration::from_nanos(self.interval_ns.load(Ordering::Relaxed))
    }

    /// Installs a function called, in the acquiring thread, with the
    /// nanoseconds waited after each acquisition that had to wait.
    pub fn set_wait_hook(&self, hook: Option<fn(u64)>) {
        self.wait_hook
            .store(hook.map_or(0, |f| f as usize), Ordering::Relaxed);
    }

    /// The GIL's counters.
    pub fn gil_stats(&self) -> GilStats {
        GilStats {
            acquisitions: self.lock.acquisitions(),
            contended: self.contended.load(Ordering::Relaxed),
            switches: self.switches.load(Ordering::Relaxed),
        }
    }

    /// Whether the calling thread holds the GIL.
    #[inline(always)]
    pub fn held_by_current_thread(&self) -> bool {
        self.holder.load(Ordering::Relaxed) == thread_id()
    }

    /// Takes the GIL for a span of work; allocations by this thread take no
    /// further lock until the guard is dropped. A nested call returns a
    /// guard that releases nothing.
    pub fn hold(&self) -> GilGuard<'_> {
        let owns = !self.held_by_current_thread();
        if owns {
            self.take();
        }
        GilGuard {
            gil: self,
            owns,
            _not_send: PhantomData,
        }
    }

    /// CPython `take_gil`: one CAS when nobody holds the GIL.
    #[inline(always)]
    fn take(&self) {
        if !self.lock.try_take() {
            self.take_contended();
        }
        self.holder.store(thread_id(), Ordering::Relaxed);
    }

    /// Waits for the GIL, then counts the wait and reports it to the hook.
    #[cold]
    #[inline(never)]
    fn take_contended(&self) {
        let start = Instant::now();
        self.lock.take(self.switch_interval());
        let waited = start.elapsed();
        count(&self.contended);
        let hook = self.wait_hook.load(Ordering::Relaxed);
        if hook != 0 {
            // SAFETY: non-zero values are only ever stored from a `fn(u64)`.
            let f: fn(u64) = unsafe { core::mem::transmute::<usize, fn(u64)>(hook) };
            f(waited.as_nanos() as u64);
        }
    }

    /// CPython `drop_gil`: one atomic operation, plus a wake-up only when a
    /// thread waits.
    #[inline(always)]
    fn release(&self) {
        self.holder.store(0, Ordering::Relaxed);
        self.lock.release();
    }

    /// Gives the GIL to the waiter that asked for it, then takes it back.
    #[cold]
    #[inline(never)]
    fn yield_to_waiter(&self) {
        count(&self.switches);
        self.holder.store(0, Ordering::Relaxed);
        self.lock.release_forced();
        self.take();
    }

    /// Runs `op` on the core with the GIL held: directly when this thread
    /// holds it (honouring a pending drop request first), else taking it
    /// for the one call.
    #[inline(always)]
    fn with_core<R>(&self, op: impl FnOnce(&mut Pymalloc) -> R) -> R {
        if self.held_by_current_thread() {
            if self.lock.drop_requested() {
                self.yield_to_waiter();
            }
            // SAFETY: this thread holds the GIL, which gives it the core.
            unsafe { self.core.with_mut(|c| op(&mut *c)) }
        } else {
            self.take();
            // SAFETY: as above; we just took the GIL.
            let r = unsafe { self.core.with_mut(|c| op(&mut *c)) };
            self.release();
            r
        }
    }
}

impl GilGuard<'_> {
    /// Releases the GIL around `f` (a blocking call: channel receive,
    /// barrier, sleep), then takes it back: CPython's
    /// `Py_BEGIN_ALLOW_THREADS` / `Py_END_ALLOW_THREADS`.
    pub fn allow_threads<R>(&mut self, f: impl FnOnce() -> R) -> R {
        self.gil.release();
        let r = f();
        self.gil.take();
        r
    }
}

impl Drop for GilGuard<'_> {
    fn drop(&mut self) {
        if self.owns {
            self.gil.release();
        }
    }
}

// SAFETY: every call runs on the core with the GIL held (see `with_core`),
// and the core upholds the GlobalAlloc contract as in `Locked`.
unsafe impl GlobalAlloc for GilCore {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.with_core(|c| c.alloc(layout))
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller passes a live block of ours with its layout.
        self.with_core(|c| unsafe { c.dealloc(ptr, layout) })
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded GlobalAlloc contract.
        self.with_core(|c| unsafe { c.realloc(ptr, layout, new_size) })
    }
}

impl PoolStats for GilCore {
    fn stats(&self) -> Stats {
        // SAFETY: `with_core` runs the closure with the GIL held.
        self.with_core(|c| c.stats())
    }
}

/// The pymalloc core behind a GIL (see the module docs). Dereferences to
/// its [`GilCore`], created on first use.
pub struct Gil {
    g: Geometry,
    home: StableHome<GilCore>,
}

impl Gil {
    /// A `gil` allocator with geometry `g` and the default switch interval.
    /// Nothing is mapped until it is first used.
    pub const fn new(g: Geometry) -> Gil {
        Gil {
            g,
            home: StableHome::new(),
        }
    }

    /// The geometry this allocator runs.
    pub fn geometry(&self) -> Geometry {
        self.g
    }

    #[inline(always)]
    fn shared(&self) -> Option<&GilCore> {
        self.home.get(|| GilCore::new(self.g))
    }

    /// The core of an allocator that handed out a block.
    #[inline(always)]
    fn owner(&self) -> &GilCore {
        match self.home.existing() {
            Some(c) => c,
            None => crate::fatal("block freed to a `gil` allocator that never allocated"),
        }
    }
}

impl core::ops::Deref for Gil {
    type Target = GilCore;

    /// The GIL and core; aborts if their first mapping (a page) fails.
    #[inline(always)]
    fn deref(&self) -> &GilCore {
        match self.shared() {
            Some(c) => c,
            None => crate::fatal("out of memory for the GIL"),
        }
    }
}

// SAFETY: forwarded to the core (see its impl).
unsafe impl GlobalAlloc for Gil {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.shared() {
            // SAFETY: forwarded contract.
            Some(c) => unsafe { c.alloc(layout) },
            None => null_mut(),
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract.
        unsafe { self.owner().dealloc(ptr, layout) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded contract.
        unsafe { self.owner().realloc(ptr, layout, new_size) }
    }
}

impl PoolStats for Gil {
    fn stats(&self) -> Stats {
        match self.home.existing() {
            Some(c) => c.stats(),
            None => Stats::empty(self.g),
        }
    }
}

/// Fork (see `fork`): the forking thread holds the GIL across `fork()`, as
/// in CPython, where `os.fork()` runs with the GIL held; in the child it
/// keeps holding it if it held it before, and no other thread is waited
/// for.
impl ForkHooks for GilCore {
    fn try_lock_long(&self) -> bool {
        if self.held_by_current_thread() {
            self.fork_took.store(false, Ordering::Relaxed);
            return true;
        }
        let took = self.lock.try_take();
        if took {
            self.holder.store(thread_id(), Ordering::Relaxed);
        } else {
            // As a waiter does after a whole interval.
            self.lock.request_drop();
        }
        self.fork_took.store(took, Ordering::Relaxed);
        took
    }

    fn unlock_long(&self) {
        if self.fork_took.swap(false, Ordering::Relaxed) {
            self.release();
        }
    }

    fn lock_all(&self) {
        // Sleeping waiters hold the lock's mutex only around their checks.
        // SAFETY: a fork handler; the home outlives the hold.
        unsafe { self.fork_mutex.hold(self.lock.fork_lock()) }
    }

    unsafe fn parent(&self) {
        // SAFETY: a fork handler.
        unsafe { self.fork_mutex.release() };
        self.unlock_long();
    }

    unsafe fn child(&self) {
        // SAFETY: a fork handler. The mutex's futex word records no owner,
        // so the forking thread can release it here.
        unsafe { self.fork_mutex.release() };
        // This thread holds the GIL; the waiters counted in the lock's word
        // do not exist here.
        self.lock.forget_waiters();
        self.unlock_long();
    }
}
