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
//! The lock itself is a `std` mutex and condition variables (futex-based on
//! Linux, so it never allocates), which keeps `Gil` usable as a
//! `#[global_allocator]`. The GIL and the core live in a [`GilCore`] at a
//! stable address (see `stable`), which the fork handlers can reach; the
//! [`Gil`] value holds a pointer to it and dereferences to it.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::marker::PhantomData;
use core::ptr::null_mut;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::fork::{ForkHooks, HeldAcrossFork};
use crate::geometry::Geometry;
use crate::pymalloc::Pymalloc;
use crate::stable::StableHome;
use crate::stats::Stats;
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

/// State guarded by the GIL's mutex.
struct LockState {
    locked: bool,
    /// Incremented on every acquisition, so a waiter can tell whether the
    /// GIL changed hands while it slept.
    switch_number: u64,
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
    state: Mutex<LockState>,
    /// Waiters for the GIL.
    cond: Condvar,
    /// A forced dropper waits here until someone else took the GIL.
    switch_cond: Condvar,
    /// The holder's [`thread_id`], or 0.
    holder: AtomicUsize,
    drop_request: AtomicBool,
    interval_ns: AtomicU64,
    /// `fn(u64)` called after each contended acquisition, or 0.
    wait_hook: AtomicUsize,
    acquisitions: AtomicU64,
    contended: AtomicU64,
    switches: AtomicU64,
    /// The state mutex, held by the forking thread across `fork()`.
    fork_state: HeldAcrossFork<std::sync::MutexGuard<'static, LockState>>,
    /// Whether the fork handlers took the GIL (rather than found it held
    /// by the forking thread).
    fork_took: AtomicBool,
}

// SAFETY: the core is only touched by the thread that holds the GIL (the
// mutex-protected `locked` flag hands it out to one thread at a time, with
// the mutex's acquire/release ordering the accesses); everything else is
// atomics and std sync types.
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

impl GilCore {
    /// The GIL and a core with geometry `g`, with the default switch interval.
    pub const fn new(g: Geometry) -> GilCore {
        GilCore {
            core: UnsafeCell::new(Pymalloc::new(g)),
            state: Mutex::new(LockState {
                locked: false,
                switch_number: 0,
            }),
            cond: Condvar::new(),
            switch_cond: Condvar::new(),
            holder: AtomicUsize::new(0),
            drop_request: AtomicBool::new(false),
            interval_ns: AtomicU64::new(DEFAULT_SWITCH_INTERVAL.as_nanos() as u64),
            wait_hook: AtomicUsize::new(0),
            acquisitions: AtomicU64::new(0),
            contended: AtomicU64::new(0),
            switches: AtomicU64::new(0),
            fork_state: HeldAcrossFork::new(),
            fork_took: AtomicBool::new(false),
        }
    }

    /// The geometry this allocator runs.
    pub fn geometry(&self) -> Geometry {
        let _g = self.hold();
        // SAFETY: we hold the GIL.
        unsafe { *(*self.core.get()).geometry() }
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
            acquisitions: self.acquisitions.load(Ordering::Relaxed),
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

    fn state(&self) -> std::sync::MutexGuard<'_, LockState> {
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// CPython `take_gil`.
    fn take(&self) {
        let mut st = self.state();
        let mut waited = None;
        if st.locked {
            let start = Instant::now();
            while st.locked {
                let seen = st.switch_number;
                let interval = self.switch_interval();
                let (g, res) = match self.cond.wait_timeout(st, interval) {
                    Ok(r) => r,
                    Err(p) => p.into_inner(),
                };
                st = g;
                // Waited a whole interval and the holder kept it: ask it to drop.
                if res.timed_out() && st.locked && st.switch_number == seen {
                    self.drop_request.store(true, Ordering::Relaxed);
                }
            }
            waited = Some(start.elapsed());
        }
        st.locked = true;
        st.switch_number = st.switch_number.wrapping_add(1);
        self.holder.store(thread_id(), Ordering::Relaxed);
        self.drop_request.store(false, Ordering::Relaxed);
        self.acquisitions.fetch_add(1, Ordering::Relaxed);
        // A forced dropper is waiting to see the GIL change hands.
        self.switch_cond.notify_all();
        drop(st);
        if let Some(w) = waited {
            self.contended.fetch_add(1, Ordering::Relaxed);
            let hook = self.wait_hook.load(Ordering::Relaxed);
            if hook != 0 {
                // SAFETY: non-zero values are only ever stored from a `fn(u64)`.
                let f: fn(u64) = unsafe { core::mem::transmute::<usize, fn(u64)>(hook) };
                f(w.as_nanos() as u64);
            }
        }
    }

    /// CPython `drop_gil`; `forced` waits until another thread took it.
    fn release(&self, forced: bool) {
        let mut st = self.state();
        st.locked = false;
        self.holder.store(0, Ordering::Relaxed);
        let seen = st.switch_number;
        self.cond.notify_one();
        if forced {
            self.switches.fetch_add(1, Ordering::Relaxed);
            while st.switch_number == seen {
                st = match self.switch_cond.wait(st) {
                    Ok(g) => g,
                    Err(p) => p.into_inner(),
                };
            }
        }
    }

    /// Gives the GIL to the waiter that asked for it, then takes it back.
    #[cold]
    fn yield_to_waiter(&self) {
        self.release(true);
        self.take();
    }

    /// Runs `op` on the core with the GIL held: directly when this thread
    /// holds it (honouring a pending drop request first), else taking it
    /// for the one call.
    #[inline(always)]
    fn with_core<R>(&self, op: impl FnOnce(&mut Pymalloc) -> R) -> R {
        if self.held_by_current_thread() {
            if self.drop_request.load(Ordering::Relaxed) {
                self.yield_to_waiter();
            }
            // SAFETY: this thread holds the GIL, which gives it the core.
            op(unsafe { &mut *self.core.get() })
        } else {
            self.take();
            // SAFETY: as above; we just took the GIL.
            let r = op(unsafe { &mut *self.core.get() });
            self.release(false);
            r
        }
    }
}

impl GilGuard<'_> {
    /// Releases the GIL around `f` (a blocking call: channel receive,
    /// barrier, sleep), then takes it back: CPython's
    /// `Py_BEGIN_ALLOW_THREADS` / `Py_END_ALLOW_THREADS`.
    pub fn allow_threads<R>(&mut self, f: impl FnOnce() -> R) -> R {
        self.gil.release(false);
        let r = f();
        self.gil.take();
        r
    }
}

impl Drop for GilGuard<'_> {
    fn drop(&mut self) {
        if self.owns {
            self.gil.release(false);
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

/// Fork (see `fork`): the forking thread holds the GIL across `fork()`,
/// as in CPython, where `os.fork()` runs with the GIL held; in the child it
/// keeps holding it if it held it before, and no other thread is waited for.
impl GilCore {
    /// Takes the GIL if it is free, without waiting; else asks its holder
    /// to drop it (as a waiter does after an interval) and returns false.
    fn try_take(&self) -> bool {
        let mut st = self.state();
        if st.locked {
            self.drop_request.store(true, Ordering::Relaxed);
            return false;
        }
        st.locked = true;
        st.switch_number = st.switch_number.wrapping_add(1);
        self.holder.store(thread_id(), Ordering::Relaxed);
        self.drop_request.store(false, Ordering::Relaxed);
        self.acquisitions.fetch_add(1, Ordering::Relaxed);
        self.switch_cond.notify_all();
        true
    }
}

impl ForkHooks for GilCore {
    fn try_lock_long(&self) -> bool {
        if self.held_by_current_thread() {
            self.fork_took.store(false, Ordering::Relaxed);
            return true;
        }
        let took = self.try_take();
        self.fork_took.store(took, Ordering::Relaxed);
        took
    }

    fn unlock_long(&self) {
        if self.fork_took.swap(false, Ordering::Relaxed) {
            self.release(false);
        }
    }

    fn lock_all(&self) {
        // Waiters sleeping in `take` hold the state mutex only briefly.
        // SAFETY: a fork handler; the home outlives the hold.
        unsafe {
            self.fork_state.hold(core::mem::transmute::<
                std::sync::MutexGuard<'_, LockState>,
                std::sync::MutexGuard<'static, LockState>,
            >(self.state()))
        }
    }

    unsafe fn parent(&self) {
        // SAFETY: a fork handler.
        unsafe { self.fork_state.release() };
        self.unlock_long();
    }

    unsafe fn child(&self) {
        // SAFETY: a fork handler. The state mutex's futex word does not
        // record an owner, so the forking thread can release it here.
        unsafe { self.fork_state.release() };
        // Waking waiters that do not exist is harmless.
        self.unlock_long();
        self.drop_request.store(false, Ordering::Relaxed);
    }
}
