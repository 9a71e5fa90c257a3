//! Per-thread state for the allocators that keep some (`sharded`, `tcache`).
//!
//! Two problems, solved once here:
//!
//! * **Finding the calling thread's state fast, without allocating.** Each
//!   thread keeps a small table of bindings (allocator → its state for this
//!   thread) in a `const`-initialised thread-local with no destructor, which
//!   compiles to plain `#[thread_local]` storage: no lazy registration, no
//!   allocation, safe inside a `#[global_allocator]`. Two caches sit in
//!   front of the table, so that the hot path never searches it:
//!   - **the fast map** (x86-64 Linux): each allocator's [`Home`] has a
//!     small direct-mapped table from a thread's *thread pointer* (`%fs:0`,
//!     which the x86-64 TLS ABI guarantees holds the thread pointer
//!     itself) to that thread's state. Reading `%fs:0` is one instruction
//!     that the compiler knows touches nothing else, whereas a Rust
//!     thread-local in a library crate is compiled as a call to
//!     `__tls_get_addr` (later relaxed by the linker), which forces the
//!     caller to save its registers around it. A thread takes a slot when
//!     it binds, if the slot is free, and clears it when it unbinds (thread
//!     exit, eviction); a thread whose slot is taken by another live
//!     thread uses the next cache.
//!   - **[`LAST`]**: the (allocator, state) pair the thread used last, two
//!     thread-local words (the only cache where the fast map is not built).
//!
//!   The fast paths of [`Registered`] are shaped so that every miss is a
//!   tail call into an out-of-line function.
//!
//!   After `fork()`, the child's only thread is the forking one, but the
//!   fast maps still hold the slots of the parent's other threads, whose
//!   thread pointers the child's new threads may reuse:
//!   [`Registered::forget_other_threads`] (to call in the child, before it
//!   makes threads) clears them.
//! * **Knowing when a thread exits, and surviving the allocator.** A
//!   process-wide pthread key with a destructor (glibc's key destructors
//!   run after Rust's thread-local destructors, which may still free memory
//!   through us) detaches every binding of the exiting thread. Because a
//!   thread may exit after the allocator *value* was dropped, the shared
//!   state lives in a [`Home`]: mapped from the OS and reference counted by
//!   the allocator value and by every thread bound to it. The last
//!   reference drops the state and unmaps the home.

use core::cell::Cell;
use core::ptr::null_mut;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

use core::alloc::Layout;

use crate::fork::ForkPerThread;
use crate::os;
use crate::per_thread::PerThread;
use crate::stats::Stats;

/// The shared state of one allocator value, in its own mapping.
struct Home<T> {
    refs: AtomicUsize,
    value: T,
    fast: FastMap,
}

/// Slots of a [`FastMap`] (a power of two).
const FAST_SLOTS: usize = 64;

/// A thread pointer and that thread's state, in one allocator's fast map.
#[repr(C, align(16))]
struct FastSlot {
    /// The owning thread's thread pointer, or 0 for a free slot.
    tp: AtomicUsize,
    /// Its state; read only by the thread whose thread pointer is in `tp`,
    /// which wrote it, so no ordering is needed.
    local: AtomicPtr<()>,
}

/// Thread pointer → the thread's state, direct-mapped (see the module docs).
struct FastMap {
    slots: [FastSlot; FAST_SLOTS],
}

impl FastMap {
    const fn new() -> FastMap {
        FastMap {
            slots: [const {
                FastSlot {
                    tp: AtomicUsize::new(0),
                    local: AtomicPtr::new(null_mut()),
                }
            }; FAST_SLOTS],
        }
    }

    /// The slot of thread pointer `tp`: its page number, modulo the
    /// slots. Thread pointers of glibc threads lie at the top of their
    /// stacks, a stack size and a guard page apart (2 MiB + 4 KiB for Rust
    /// threads: 513 pages), so threads made one after another get
    /// consecutive slots. (Mixing in higher bits makes such neighbours
    /// collide: their page numbers and their megabyte numbers both step
    /// by one.)
    #[inline(always)]
    fn slot(&self, tp: usize) -> &FastSlot {
        let k = tp >> 12;
        // SAFETY: masked into bounds.
        unsafe { self.slots.get_unchecked(k & (FAST_SLOTS - 1)) }
    }

    /// The calling thread's state, if it holds its slot.
    #[inline(always)]
    fn get(&self) -> Option<*mut ()> {
        let tp = thread_pointer()?;
        let s = self.slot(tp);
        (s.tp.load(Ordering::Relaxed) == tp).then(|| s.local.load(Ordering::Relaxed))
    }

    /// Gives the calling thread its slot for `local`, if the slot is free.
    fn install(&self, local: *mut ()) {
        let Some(tp) = thread_pointer() else { return };
        let s = self.slot(tp);
        if s.tp.load(Ordering::Relaxed) == tp {
            s.local.store(local, Ordering::Relaxed);
        } else if s
            .tp
            .compare_exchange(0, tp, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            // Only this thread reads `local` while `tp` is its own, and it
            // reads it after this store in program order.
            s.local.store(local, Ordering::Relaxed);
        }
    }

    /// Frees the calling thread's slot, if it holds it.
    fn remove(&self) {
        let Some(tp) = thread_pointer() else { return };
        let s = self.slot(tp);
        if s.tp.load(Ordering::Relaxed) == tp {
            s.local.store(null_mut(), Ordering::Relaxed);
            s.tp.store(0, Ordering::Relaxed);
        }
    }

    /// Frees every slot but the calling thread's (see the module docs on
    /// `fork()`).
    fn retain_only_current(&self) {
        let me = thread_pointer().unwrap_or(0);
        for s in &self.slots {
            if s.tp.load(Ordering::Relaxed) != me {
                s.local.store(null_mut(), Ordering::Relaxed);
                s.tp.store(0, Ordering::Relaxed);
            }
        }
    }
}

/// Whether this target has a fast map (see the module docs).
const HAS_FAST_MAP: bool = cfg!(all(target_arch = "x86_64", target_os = "linux", not(miri)));

/// The calling thread's thread pointer: on x86-64 Linux the word at `%fs:0`.
#[cfg(all(target_arch = "x86_64", target_os = "linux", not(miri)))]
#[inline(always)]
fn thread_pointer() -> Option<usize> {
    let tp: usize;
    // SAFETY: in every thread of an x86-64 Linux process, `%fs` points at
    // the thread control block, whose first word the TLS ABI defines as the
    // thread pointer itself; reading it has no side effects.
    unsafe {
        core::arch::asm!(
            "mov {}, qword ptr fs:[0]",
            out(reg) tp,
            options(nostack, preserves_flags, readonly, pure)
        )
    };
    Some(tp)
}

/// Elsewhere (and under Miri) there is no fast map: [`LAST`] serves.
#[cfg(not(all(target_arch = "x86_64", target_os = "linux", not(miri))))]
#[inline(always)]
fn thread_pointer() -> Option<usize> {
    None
}

impl<T> Home<T> {
    fn bytes() -> usize {
        core::mem::size_of::<Home<T>>().next_multiple_of(4096)
    }

    /// # Safety
    /// `home` must be live and the caller must own one of its references.
    unsafe fn release(home: *mut Home<T>) {
        // SAFETY: the caller holds a reference, so `home` is live; the
        // AcqRel decrement orders every use of the value before its drop.
        unsafe {
            if (*home).refs.fetch_sub(1, Ordering::AcqRel) == 1 {
                crate::fork::unregister(home as *const ());
                core::ptr::drop_in_place(home);
                os::unmap(home.cast(), Self::bytes());
            }
        }
    }
}

/// An allocator's handle on its [`Home`], created on first use.
pub(crate) struct Registered<T: PerThread + ForkPerThread> {
    home: AtomicPtr<Home<T>>,
    config: T::Config,
}

impl<T: PerThread + ForkPerThread> Registered<T> {
    pub(crate) const fn new(config: T::Config) -> Self {
        Registered {
            home: AtomicPtr::new(null_mut()),
            config,
        }
    }

    pub(crate) fn config(&self) -> &T::Config {
        &self.config
    }

    /// The shared state, mapping it on first use; `None` when out of memory.
    #[inline]
    pub(crate) fn shared(&self) -> Option<&T> {
        let mut h = self.home.load(Ordering::Acquire);
        if h.is_null() {
            h = self.create();
        }
        // SAFETY: a non-null home stays live while `self` holds its reference.
        (!h.is_null()).then(|| unsafe { &(*h).value })
    }

    /// Shared state only if it exists already.
    pub(crate) fn existing(&self) -> Option<&T> {
        let h = self.home.load(Ordering::Acquire);
        // SAFETY: as in `shared`.
        (!h.is_null()).then(|| unsafe { &(*h).value })
    }

    #[cold]
    fn create(&self) -> *mut Home<T> {
        let mem = os::map(Home::<T>::bytes()).cast::<Home<T>>();
        if mem.is_null() {
            return null_mut();
        }
        // SAFETY: fresh, writable, suitably aligned (page-aligned) memory,
        // which stays there until the last reference is released (which
        // unregisters it from the fork handlers first).
        unsafe {
            mem.write(Home {
                refs: AtomicUsize::new(1),
                value: T::build(self.config),
                fast: FastMap::new(),
            });
            if !crate::fork::register(&*mem) {
                Home::release(mem);
                return null_mut();
            }
        };
        match self
            .home
            .compare_exchange(null_mut(), mem, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => {
                // Outside every lock: this may allocate, even through us.
                crate::fork::install();
                mem
            }
            Err(winner) => {
                // SAFETY: we own `mem` alone: nobody saw it.
                unsafe { Home::release(mem) };
                winner
            }
        }
    }

    /// The shared state and the calling thread's part of it, if the fast
    /// map holds them: no search, no call (see the module docs).
    #[inline(always)]
    pub(crate) fn cached(&self) -> Option<(&T, *mut T::Local)> {
        let h = self.home.load(Ordering::Acquire);
        if h.is_null() {
            return None;
        }
        if !HAS_FAST_MAP {
            return self.cached_last();
        }
        // SAFETY: a non-null home stays live while `self` holds its
        // reference; a slot holding our thread pointer belongs to a live
        // binding of ours.
        unsafe {
            match (*h).fast.get() {
                Some(local) => Some((&(*h).value, local.cast())),
                None => None,
            }
        }
    }

    /// As [`cached`](Self::cached), from the one-entry thread-local cache.
    #[inline(always)]
    fn cached_last(&self) -> Option<(&T, *mut T::Local)> {
        let h = self.home.load(Ordering::Acquire);
        let (home, local) = LAST.with(Cell::get);
        if home == h.cast() {
            // SAFETY: the binding behind the cache holds a reference, so
            // the home is live. (The cache never holds a null home, so a
            // home not yet created misses.)
            return Some((unsafe { &(*h).value }, local.cast()));
        }
        None
    }

    /// Clears the fast-map slots of every thread but the caller: in a
    /// `fork()` child, before it starts threads (see the module docs).
    pub(crate) fn forget_other_threads(&self) {
        if let Some(h) = self.existing_home() {
            // SAFETY: a non-null home stays live while `self` holds it.
            unsafe { (*h).fast.retain_only_current() };
        }
    }

    fn existing_home(&self) -> Option<*mut Home<T>> {
        let h = self.home.load(Ordering::Acquire);
        (!h.is_null()).then_some(h)
    }

    /// The shared state and the calling thread's part of it, attaching the
    /// thread on first use; `None` when out of memory.
    #[inline(always)]
    pub(crate) fn local(&self) -> Option<(&T, *mut T::Local)> {
        if let Some(hit) = self.cached() {
            return Some(hit);
        }
        if HAS_FAST_MAP {
            if let Some(hit) = self.cached_last() {
                return Some(hit);
            }
        }
        self.local_slow()
    }

    /// Finds or makes the binding and moves it to the front of the
    /// thread's table (most recently used first), so the fast path in
    /// [`local`](Self::local) serves the allocator in use even when a thread
    /// has used several. When all slots are taken, the least recently used
    /// binding is detached, as if its thread had exited from that
    /// allocator; a later call simply attaches again.
    #[cold]
    fn local_slow(&self) -> Option<(&T, *mut T::Local)> {
        let shared = self.shared()?;
        let h = self.home.load(Ordering::Acquire);
        BINDINGS.with(|b| {
            let bind = match b.iter().position(|s| s.get().home == h.cast()) {
                Some(k) => b[k].replace(EMPTY),
                None => {
                    arm_exit_hook();
                    let local = shared.attach();
                    if local.is_null() {
                        return None;
                    }
                    // SAFETY: `h` is live (we hold a reference through
                    // `self`); the binding takes a reference of its own.
                    unsafe { (*h).refs.fetch_add(1, Ordering::Relaxed) };
                    Binding {
                        home: h.cast(),
                        local: local.cast(),
                        detach: detach_erased::<T>,
                    }
                }
            };
            // Shift the slots before the vacated one (or all) one place back.
            let end = b
                .iter()
                .position(|s| s.get().home.is_null())
                .unwrap_or(b.len() - 1);
            let evicted = b[end].replace(EMPTY);
            for i in (1..=end).rev() {
                b[i].set(b[i - 1].get());
            }
            b[0].set(bind);
            LAST.with(|l| l.set((bind.home, bind.local)));
            // SAFETY: `h` is live (we hold a reference through `self`).
            unsafe { (*h).fast.install(bind.local) };
            if !evicted.home.is_null() {
                // SAFETY: a bound slot holds a live home reference and the
                // thread's part, which nothing uses outside a single call.
                unsafe { (evicted.detach)(evicted.home, evicted.local) };
            }
            Some((shared, bind.local.cast()))
        })
    }
}

/// Implements `GlobalAlloc` and `PoolStats` for `$ty`, a struct whose
/// `inner` field is a [`Registered`], by delegating to it.
macro_rules! delegate_to_registered {
    ($ty:ident) => {
        // SAFETY: every call goes to the calling thread's part of the shared
        // state (`Registered::local`), whose allocator upholds the
        // `GlobalAlloc` contract; see the allocator's module docs.
        unsafe impl core::alloc::GlobalAlloc for $ty {
            #[inline]
            unsafe fn alloc(&self, layout: core::alloc::Layout) -> *mut u8 {
                // SAFETY: forwarded contract.
                unsafe { self.inner.alloc(layout) }
            }

            #[inline]
            unsafe fn dealloc(&self, ptr: *mut u8, layout: core::alloc::Layout) {
                // SAFETY: forwarded contract.
                unsafe { self.inner.dealloc(ptr, layout) }
            }

            #[inline]
            unsafe fn realloc(
                &self,
                ptr: *mut u8,
                layout: core::alloc::Layout,
                new_size: usize,
            ) -> *mut u8 {
                // SAFETY: forwarded contract.
                unsafe { self.inner.realloc(ptr, layout, new_size) }
            }
        }

        impl $crate::PoolStats for $ty {
            fn stats(&self) -> $crate::Stats {
                self.inner.stats()
            }
        }
    };
}
pub(crate) use delegate_to_registered;

/// The `GlobalAlloc` and `PoolStats` methods of the allocators built on
/// `Registered` (they delegate here). Each is a cache hit inlined into the
/// caller, or a tail call into its `_slow` twin.
impl<T: PerThread + ForkPerThread> Registered<T> {
    /// # Safety
    /// `GlobalAlloc::alloc`'s contract.
    #[inline(always)]
    pub(crate) unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if let Some((shared, local)) = self.cached() {
            // SAFETY: `local` is the calling thread's part of `shared`.
            let b = unsafe { shared.alloc_fast(local, layout) };
            if !b.is_null() {
                return b;
            }
            // SAFETY: as above.
            return unsafe { shared.alloc(local, layout) };
        }
        self.alloc_slow(layout)
    }

    #[inline(never)]
    fn alloc_slow(&self, layout: Layout) -> *mut u8 {
        match self.local() {
            // SAFETY: as in `alloc`.
            Some((shared, local)) => unsafe { shared.alloc(local, layout) },
            None => null_mut(),
        }
    }

    /// # Safety
    /// `GlobalAlloc::dealloc`'s contract.
    #[inline(always)]
    pub(crate) unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        if let Some((shared, local)) = self.cached() {
            // SAFETY: as in `alloc`; the caller passes a live block of ours.
            unsafe {
                if shared.dealloc_fast(local, ptr, layout) {
                    return;
                }
                return shared.dealloc(local, ptr, layout);
            }
        }
        // SAFETY: forwarded contract.
        unsafe { self.dealloc_slow(ptr, layout) }
    }

    /// # Safety
    /// `GlobalAlloc::dealloc`'s contract.
    #[inline(never)]
    unsafe fn dealloc_slow(&self, ptr: *mut u8, layout: Layout) {
        match self.local() {
            // SAFETY: as in `alloc`; the caller passes a live block of ours.
            Some((shared, local)) => unsafe { shared.dealloc(local, ptr, layout) },
            None => crate::fatal("no per-thread state for a free (out of memory)"),
        }
    }

    /// # Safety
    /// `GlobalAlloc::realloc`'s contract.
    #[inline(always)]
    pub(crate) unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        match self.local() {
            // SAFETY: as in `alloc`; forwarded contract.
            Some((shared, local)) => unsafe { shared.realloc(local, ptr, layout, new_size) },
            None => null_mut(),
        }
    }

    pub(crate) fn stats(&self) -> Stats {
        match self.existing() {
            Some(shared) => shared.stats(),
            None => T::empty_stats(&self.config),
        }
    }
}

impl<T: PerThread + ForkPerThread> Drop for Registered<T> {
    fn drop(&mut self) {
        let h = *self.home.get_mut();
        if !h.is_null() {
            // SAFETY: this handle owns one reference.
            unsafe { Home::release(h) };
        }
    }
}

/// # Safety
/// `home` and `local` must be a live binding's.
unsafe fn detach_erased<T: PerThread + ForkPerThread>(home: *mut (), local: *mut ()) {
    let home = home.cast::<Home<T>>();
    // SAFETY: the binding holds a reference, so the home is live.
    unsafe {
        (*home).fast.remove();
        (*home).value.detach(local.cast());
        Home::release(home);
    }
}

#[derive(Clone, Copy)]
struct Binding {
    home: *mut (),
    local: *mut (),
    detach: unsafe fn(*mut (), *mut ()),
}

/// Placeholder detach of an empty slot.
unsafe fn no_detach(_: *mut (), _: *mut ()) {}

const EMPTY: Binding = Binding {
    home: null_mut(),
    local: null_mut(),
    detach: no_detach,
};

/// The home of an empty [`LAST`]: never a real home (homes are
/// page-aligned mappings) and never null, so no allocator matches it.
const NO_HOME: *mut () = core::ptr::dangling_mut();

thread_local! {
    static BINDINGS: [Cell<Binding>; 8] = const { [const { Cell::new(EMPTY) }; 8] };
    /// The one-entry cache in front of [`BINDINGS`]: the home and the
    /// thread's part of the binding used last, or nulls. Kept apart from
    /// the table, and free of function pointers, so that reading it is two
    /// plain thread-local loads (a `fn` field would make the compiler check
    /// the thread-local's state on every access).
    static LAST: Cell<(*mut (), *mut ())> = const { Cell::new((NO_HOME, null_mut())) };
}

/// The process-wide pthread key whose destructor detaches a thread's
/// bindings; 0 until created, else key + 1.
static EXIT_KEY: AtomicUsize = AtomicUsize::new(0);

/// Makes sure this thread's exit runs [`on_thread_exit`].
fn arm_exit_hook() {
    let mut k = EXIT_KEY.load(Ordering::Acquire);
    if k == 0 {
        let mut key: libc::pthread_key_t = 0;
        // SAFETY: `key` is a valid out-pointer and the destructor is an
        // `extern "C" fn(*mut c_void)`.
        if unsafe { libc::pthread_key_create(&mut key, Some(on_thread_exit)) } != 0 {
            crate::fatal("pthread_key_create failed");
        }
        k = match EXIT_KEY.compare_exchange(
            0,
            key as usize + 1,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => key as usize + 1,
            Err(winner) => {
                // SAFETY: the key is ours and unused.
                unsafe { libc::pthread_key_delete(key) };
                winner
            }
        };
    }
    // SAFETY: the key exists; any non-null value makes glibc call the
    // destructor at thread exit (and again if a destructor re-arms it).
    unsafe {
        libc::pthread_setspecific(
            (k - 1) as libc::pthread_key_t,
            core::ptr::dangling::<libc::c_void>(),
        )
    };
}

extern "C" fn on_thread_exit(_: *mut libc::c_void) {
    // A later call (from a later destructor) finds no binding and attaches
    // again, re-arming this hook.
    LAST.with(|l| l.set((NO_HOME, null_mut())));
    BINDINGS.with(|b| {
        for s in b {
            let bind = s.replace(EMPTY);
            if !bind.home.is_null() {
                // SAFETY: a bound slot holds a live home reference and the
                // thread's part, which nothing uses after this point.
                unsafe { (bind.detach)(bind.home, bind.local) };
            }
        }
    });
}

/// Fork (see `fork`): the shared state's own hooks, given the forking
/// thread's part of it, found in its bindings (which the child keeps); and
/// the fast map forgets the parent's other threads.
impl<T: PerThread + ForkPerThread> crate::fork::ForkHooks for Home<T> {
    fn lock_all(&self) {
        crate::fork::ForkPerThread::lock_all(&self.value)
    }

    unsafe fn parent(&self) {
        // SAFETY: forwarded contract.
        unsafe { crate::fork::ForkPerThread::parent(&self.value) }
    }

    unsafe fn child(&self) {
        // The parent's other threads are gone; new threads may reuse their
        // thread pointers (see the module docs).
        self.fast.retain_only_current();
        let me = self as *const Self as *mut ();
        let mine = BINDINGS.with(|b| {
            b.iter()
                .map(Cell::get)
                .find(|s| s.home == me)
                .map_or(null_mut(), |s| s.local)
        });
        // SAFETY: forwarded contract; `mine` is this thread's part or null.
        unsafe { crate::fork::ForkPerThread::child(&self.value, mine) }
    }
}
