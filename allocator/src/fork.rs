//! Fork safety: every lock of every live allocator is held across `fork()`.
//!
//! A child process starts with one thread, the one that called `fork()`,
//! and a copy of the parent's memory taken while the other threads kept
//! running. A lock one of them held stays held forever in the child, and
//! the data it protected may be half updated. So, as glibc, jemalloc and
//! mimalloc do, one `pthread_atfork` handler set (installed once per
//! process) takes every lock of every registered allocator before the fork
//! and releases them after it, in the parent and in the child; then each
//! allocator puts its per-thread state in order in the child.
//!
//! Allocators are values, and tests build many, so instances register
//! themselves here when their shared state is created at a stable address
//! (a mapping of its own: [`StableHome`](crate::stable::StableHome) for
//! `gil` and `locked`, the per-thread allocators' home in `thread`), and
//! leave when it is dropped.
//!
//! # Lock order
//! A GIL may be held for a whole span of work, during which its holder can
//! do anything, including register a new allocator (which takes the
//! registry lock). The prepare handler therefore never *waits* for a GIL
//! while holding the registry lock: in phase 1 it only tries to take each
//! GIL (asking its holder to drop it, as a waiting thread would); if one is
//! busy it lets go of everything, backs off and starts again. In phase 2
//! it takes every other lock, waiting as needed: those are held only within
//! one allocator call, whose holder never waits for the registry, a GIL, or
//! another allocator.

use core::cell::UnsafeCell;

/// What one allocator instance does around `fork()`. The registry calls
/// these from the forking thread only, serialised by the registry lock.
pub(crate) trait ForkHooks: Sync {
    /// Phase 1: takes the lock another thread may hold for a long span (a
    /// GIL) without waiting. False when another thread holds it.
    fn try_lock_long(&self) -> bool {
        true
    }

    /// Gives back what a successful `try_lock_long` took (prepare backs off).
    fn unlock_long(&self) {}

    /// Phase 2: takes every other lock of the instance, waiting as needed.
    fn lock_all(&self);

    /// In the parent: releases everything the two phases took.
    ///
    /// # Safety
    /// Only after `lock_all` succeeded in this thread.
    unsafe fn parent(&self);

    /// In the child: releases or resets every lock, and gives up the state
    /// of threads that do not exist in the child (never waits for them).
    ///
    /// # Safety
    /// Only in the child, after `lock_all` succeeded in the parent.
    unsafe fn child(&self);
}

/// The fork hooks of a per-thread allocator's shared state, which its home
/// (in `thread`) calls with the forking thread's own part.
pub(crate) trait ForkPerThread {
    /// As [`ForkHooks::lock_all`].
    fn lock_all(&self) {}

    /// As [`ForkHooks::parent`].
    ///
    /// # Safety
    /// As [`ForkHooks::parent`].
    unsafe fn parent(&self) {}

    /// As [`ForkHooks::child`]; `mine` is the forking thread's part (its
    /// `PerThread::Local`), null when it had none.
    ///
    /// # Safety
    /// As [`ForkHooks::child`].
    unsafe fn child(&self, mine: *mut ());
}

/// A lock guard kept from the prepare handler to the parent or child
/// handler, by the forking thread.
pub(crate) struct HeldAcrossFork<G>(UnsafeCell<Option<G>>);

// SAFETY: only fork handlers touch the cell, in the forking thread, and the
// registry lock (held from prepare until parent or child) serialises them.
unsafe impl<G> Sync for HeldAcrossFork<G> {}

impl<G> HeldAcrossFork<G> {
    pub(crate) const fn new() -> Self {
        HeldAcrossFork(UnsafeCell::new(None))
    }

    /// Keeps `guard` until [`release`](Self::release).
    ///
    /// # Safety
    /// Only from a fork handler; the guarded lock must outlive the hold
    /// (a registered instance does: it leaves the registry first).
    pub(crate) unsafe fn hold(&self, guard: G) {
        // SAFETY: handlers are serialised (see the Sync impl).
        unsafe { *self.0.get() = Some(guard) }
    }

    /// Drops the guard kept by [`hold`](Self::hold), unlocking its lock.
    ///
    /// # Safety
    /// Only from a fork handler.
    pub(crate) unsafe fn release(&self) {
        // SAFETY: handlers are serialised (see the Sync impl).
        drop(unsafe { (*self.0.get()).take() })
    }
}

#[cfg(not(loom))]
pub(crate) use self::registry::{install, register, unregister};

#[cfg(loom)]
pub(crate) use self::loom_stub::{install, register, unregister};

/// Loom models no processes: registration does nothing.
#[cfg(loom)]
mod loom_stub {
    use super::ForkHooks;

    pub(crate) fn install() {}

    /// # Safety
    /// None under loom.
    pub(crate) unsafe fn register(_: &dyn ForkHooks) -> bool {
        true
    }

    pub(crate) fn unregister(_: *const ()) {}
}

#[cfg(not(loom))]
mod registry {
    use core::ptr::null_mut;
    use std::sync::atomic::{AtomicU8, Ordering};
    use std::sync::{Mutex, MutexGuard};

    use super::{ForkHooks, HeldAcrossFork};
    use crate::os;

    type Entry = Option<&'static dyn ForkHooks>;

    /// The registered instances: a mapped array grown by doubling, with
    /// `None` in freed slots.
    struct Registry {
        entries: *mut Entry,
        len: usize,
        cap: usize,
    }

    // SAFETY: the array is owned by the registry and reached under its lock.
    unsafe impl Send for Registry {}

    impl Registry {
        fn entries(&self) -> &[Entry] {
            if self.entries.is_null() {
                return &[];
            }
            // SAFETY: `len` entries are initialised in the mapped array.
            unsafe { core::slice::from_raw_parts(self.entries, self.len) }
        }

        fn bytes(cap: usize) -> usize {
            (cap * core::mem::size_of::<Entry>()).next_multiple_of(4096)
        }

        /// A free slot, growing the array if none is; null when out of memory.
        fn free_slot(&mut self) -> *mut Entry {
            if let Some(i) = self.entries().iter().position(Option::is_none) {
                // SAFETY: `i < len`.
                return unsafe { self.entries.add(i) };
            }
            if self.len == self.cap {
                let cap = (self.cap * 2).max(Self::bytes(1) / core::mem::size_of::<Entry>());
                let new = os::map(Self::bytes(cap)).cast::<Entry>();
                if new.is_null() {
                    return null_mut();
                }
                if !self.entries.is_null() {
                    // SAFETY: both arrays are mapped; `len` entries are
                    // initialised in the old one, which nobody else reads
                    // (we hold the lock).
                    unsafe {
                        core::ptr::copy_nonoverlapping(self.entries, new, self.len);
                        os::unmap(self.entries.cast(), Self::bytes(self.cap));
                    }
                }
                self.entries = new;
                self.cap = cap;
            }
            self.len += 1;
            // SAFETY: `len - 1 < cap`; zeroed memory is a valid `None`, but
            // write it anyway rather than rely on the layout of `Option`.
            unsafe {
                let slot = self.entries.add(self.len - 1);
                slot.write(None);
                slot
            }
        }
    }

    static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
        entries: null_mut(),
        len: 0,
        cap: 0,
    });

    /// The registry lock, held from prepare until parent or child.
    static HELD: HeldAcrossFork<MutexGuard<'static, Registry>> = HeldAcrossFork::new();

    fn registry() -> MutexGuard<'static, Registry> {
        crate::sync::lock(&REGISTRY)
    }

    /// Adds an instance. False when out of memory.
    ///
    /// # Safety
    /// `obj` must stay at its address, alive, until [`unregister`] is
    /// called with it (before it is dropped).
    pub(crate) unsafe fn register(obj: &dyn ForkHooks) -> bool {
        // SAFETY: the caller keeps `obj` alive until it unregisters, which
        // takes the lock every use of the entry holds.
        let obj: &'static dyn ForkHooks = unsafe { core::mem::transmute(obj) };
        let mut r = registry();
        let slot = r.free_slot();
        if slot.is_null() {
            return false;
        }
        // SAFETY: a slot of the array, under the lock.
        unsafe { *slot = Some(obj) };
        true
    }

    /// Removes the instance at `obj` (its data pointer), if registered.
    /// Waits while a fork is in progress.
    pub(crate) fn unregister(obj: *const ()) {
        let r = registry();
        if let Some(i) = r
            .entries()
            .iter()
            .position(|e| e.is_some_and(|e| core::ptr::addr_eq(e, obj)))
        {
            // SAFETY: `i < len`, under the lock.
            unsafe { *r.entries.add(i) = None };
        }
    }

    const NOT_INSTALLED: u8 = 0;
    const INSTALLING: u8 = 1;
    const INSTALLED: u8 = 2;
    static INSTALL: AtomicU8 = AtomicU8::new(NOT_INSTALLED);

    /// Installs the handlers, once per process. Called after an instance
    /// is registered and published, outside every lock: `pthread_atfork`
    /// may allocate, and so come back into that instance.
    pub(crate) fn install() {
        if INSTALL.load(Ordering::Acquire) == INSTALLED
            || INSTALL
                .compare_exchange(
                    NOT_INSTALLED,
                    INSTALLING,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_err()
        {
            return;
        }
        // Miri has no processes to fork and no `pthread_atfork`.
        #[cfg(miri)]
        let _unused_there: [unsafe extern "C" fn(); 3] = [prepare, parent, child];
        #[cfg(not(miri))]
        {
            // SAFETY: the handlers are `extern "C" fn()` that never unwind.
            let rc = unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
            if rc != 0 {
                crate::fatal("pthread_atfork failed");
            }
        }
        INSTALL.store(INSTALLED, Ordering::Release);
    }

    /// Before `fork()`: takes every registered allocator's locks (see the
    /// module docs for the two phases).
    unsafe extern "C" fn prepare() {
        let mut round = 0u32;
        loop {
            let r = registry();
            let entries = r.entries();
            let busy = entries
                .iter()
                .position(|e| e.is_some_and(|e| !e.try_lock_long()));
            match busy {
                None => {
                    entries.iter().flatten().for_each(|e| e.lock_all());
                    // SAFETY: we are the fork handlers' thread.
                    unsafe { HELD.hold(r) };
                    return;
                }
                Some(n) => {
                    entries[..n].iter().flatten().for_each(|e| e.unlock_long());
                    drop(r);
                    // The GIL's holder drops it at its next allocator call
                    // (we asked); it may first need the registry lock.
                    if round < 16 {
                        std::thread::yield_now();
                    } else {
                        std::thread::sleep(std::time::Duration::from_micros(100));
                    }
                    round = round.saturating_add(1);
                }
            }
        }
    }

    /// Takes back the registry guard `prepare` kept.
    fn take_held() -> Option<MutexGuard<'static, Registry>> {
        // SAFETY: called only from the parent and child handlers, which run
        // in the thread that ran `prepare`.
        unsafe { (*HELD.0.get()).take() }
    }

    /// After `fork()`, in the parent.
    unsafe extern "C" fn parent() {
        if let Some(r) = take_held() {
            for e in r.entries().iter().flatten() {
                // SAFETY: `prepare` took this instance's locks.
                unsafe { e.parent() };
            }
        }
    }

    /// After `fork()`, in the child (whose only thread is this one).
    unsafe extern "C" fn child() {
        if let Some(r) = take_held() {
            for e in r.entries().iter().flatten() {
                // SAFETY: `prepare` took this instance's locks.
                unsafe { e.child() };
            }
        }
    }
}
