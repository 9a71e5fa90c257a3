//! The GIL's lock and hand-over protocol (CPython's `take_gil` /
//! `drop_gil` in `Python/ceval_gil.c`), apart from the allocator it guards
//! so that loom can check it (see `loom_models.rs`).
//!
//! One atomic word holds the whole state: a `LOCKED` bit, the number of
//! threads waiting to take the GIL, and the number of forced droppers
//! waiting to see it change hands. Taking an uncontended GIL is one CAS and
//! dropping it one `fetch_sub`, with no syscall: as CPython does with its
//! waiter counts, the mutex and condition variables are touched only when
//! the word says somebody sleeps. Because the counts and the bit share the
//! word, every read-modify-write sees the others in one modification order,
//! so a dropper that reads "no waiter" cannot miss a waiter that is about
//! to sleep: the waiter registered in the word before checking the bit, and
//! checks it again, under the mutex, before every sleep, while a dropper
//! that read a waiter notifies under that mutex.
//!
//! * [`take`](GilLock::take): CAS `LOCKED` in if it is clear; otherwise
//!   register as a waiter and sleep on `cond` until it is clear, asking the
//!   holder to drop ([`drop_requested`](GilLock::drop_requested)) after a
//!   whole switch interval without a hand-over, as CPython does.
//! * [`release`](GilLock::release): clear `LOCKED`; wake one waiter if the
//!   word counted any.
//! * [`release_forced`](GilLock::release_forced): a holder honouring a drop
//!   request releases and, like CPython's `FORCE_SWITCHING`, sleeps until
//!   another thread has taken the GIL (the switch number moved), so a busy
//!   holder cannot take it straight back and starve the waiter. It counts
//!   itself in the word in the same `fetch_add` that releases, so the next
//!   taker's CAS sees it and wakes it.
//!
//! The holder-only counters (switch number, acquisitions) are written by
//! the thread holding the GIL only, with plain atomic load and store.
//!
//! For `fork()`: a prepare handler takes the GIL (`take`) so that no other
//! thread holds it across the fork; the parent then releases it. In the
//! child the word may still count waiters and switchers that do not exist
//! there, so the child must not `release` normally: it stores `0` in the
//! word (nobody waits in a one-thread child), clears the drop request, and
//! re-creates the mutex and condition variables (a waiter of the parent may
//! have held the mutex at the instant of the fork, between waking up and
//! sleeping again).

use core::time::Duration;

use crate::sync::{lock, AtomicBool, AtomicU64, AtomicUsize, Condvar, Mutex, Ordering};

/// The GIL is held.
const LOCKED: usize = 1;
/// One thread waiting in [`GilLock::take`].
const WAITER: usize = 1 << 1;
/// One forced dropper waiting for the hand-over.
const SWITCHER: usize = 1 << (usize::BITS / 2);
/// The waiter count's bits.
const WAITERS: usize = SWITCHER - WAITER;

/// The GIL's lock state (see the module docs).
pub(crate) struct GilLock {
    /// `LOCKED` | waiters × `WAITER` | forced droppers × `SWITCHER`.
    word: AtomicUsize,
    /// Acquisitions so far; written by the holder only. A waiter that sees
    /// it unchanged over a switch interval asks for a drop.
    switch_number: AtomicU64,
    /// Set by a waiter that waited a whole interval; cleared by the taker.
    drop_request: AtomicBool,
    /// Sleeping waiters and forced droppers park here; the data is unused.
    mutex: Mutex<()>,
    /// Waiters for the GIL.
    cond: Condvar,
    /// Forced droppers waiting for a hand-over.
    switch_cond: Condvar,
}

impl GilLock {
    crate::const_fn! {
        pub(crate) fn new() -> GilLock {
            GilLock {
                word: AtomicUsize::new(0),
                switch_number: AtomicU64::new(0),
                drop_request: AtomicBool::new(false),
                mutex: Mutex::new(()),
                cond: Condvar::new(),
                switch_cond: Condvar::new(),
            }
        }
    }

    /// Takes the GIL if it is free, without waiting.
    #[inline(always)]
    pub(crate) fn try_take(&self) -> bool {
        let w = self.word.load(Ordering::Relaxed);
        w & LOCKED == 0
            && self
                .word
                .compare_exchange(w, w | LOCKED, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            && {
                self.taken(w);
                true
            }
    }

    /// Takes the GIL, waiting for the holder if there is one; after each
    /// `interval` without a hand-over, asks the holder to drop it.
    #[inline]
    pub(crate) fn take(&self, interval: Duration) {
        if !self.try_take() {
            self.take_slow(interval);
        }
    }

    #[inline(never)]
    fn take_slow(&self, interval: Duration) {
        let mut g = lock(&self.mutex);
        let mut w = self.word.fetch_add(WAITER, Ordering::Relaxed) + WAITER;
        loop {
            if w & LOCKED == 0 {
                // Take it and stop counting as a waiter, in one step.
                match self.word.compare_exchange_weak(
                    w,
                    (w | LOCKED) - WAITER,
                    Ordering::Acquire,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => break,
                    Err(now) => {
                        w = now;
                        continue;
                    }
                }
            }
            let seen = self.switch_number.load(Ordering::Relaxed);
            // In the model the interval is always over: ask before sleeping
            // (loom's timed waits never time out).
            if cfg!(loom) {
                self.drop_request.store(true, Ordering::Relaxed);
            }
            let (g2, timed_out) = match self.cond.wait_timeout(g, interval) {
                Ok((g, r)) => (g, r.timed_out()),
                Err(p) => {
                    let (g, r) = p.into_inner();
                    (g, r.timed_out())
                }
            };
            g = g2;
            w = self.word.load(Ordering::Relaxed);
            // A whole interval and the holder kept it: ask it to drop.
            if timed_out && w & LOCKED != 0 && self.switch_number.load(Ordering::Relaxed) == seen {
                self.drop_request.store(true, Ordering::Relaxed);
            }
        }
        drop(g);
        self.taken(w);
    }

    /// Bookkeeping of a new holder whose taking CAS read `w`.
    #[inline(always)]
    fn taken(&self, w: usize) {
        // Holder-only writes: plain load and store.
        let n = self.switch_number.load(Ordering::Relaxed);
        self.switch_number
            .store(n.wrapping_add(1), Ordering::Relaxed);
        if self.drop_request.load(Ordering::Relaxed) {
            self.drop_request.store(false, Ordering::Relaxed);
        }
        if w >= SWITCHER {
            self.wake_switchers();
        }
    }

    /// A forced dropper waits for the hand-over this taker just made.
    #[cold]
    fn wake_switchers(&self) {
        let _g = lock(&self.mutex);
        self.switch_cond.notify_all();
    }

    /// Whether a waiter asked the holder to drop the GIL (one load; the
    /// holder checks it at each allocator call).
    #[inline(always)]
    pub(crate) fn drop_requested(&self) -> bool {
        self.drop_request.load(Ordering::Relaxed)
    }

    /// Acquisitions so far (the switch number).
    pub(crate) fn acquisitions(&self) -> u64 {
        self.switch_number.load(Ordering::Relaxed)
    }

    /// Drops the GIL; wakes a waiter if there is one.
    ///
    /// The caller must hold the GIL.
    #[inline]
    pub(crate) fn release(&self) {
        let w = self.word.fetch_sub(LOCKED, Ordering::Release);
        debug_assert!(w & LOCKED != 0, "release of a GIL that is not held");
        if w & WAITERS != 0 {
            self.wake_waiter();
        }
    }

    #[cold]
    fn wake_waiter(&self) {
        let _g = lock(&self.mutex);
        self.cond.notify_one();
    }

    /// Drops the GIL for a waiter that asked for it and sleeps until some
    /// other thread has taken it (CPython's `FORCE_SWITCHING`). The caller
    /// takes it again afterwards.
    ///
    /// The caller must hold the GIL.
    #[cold]
    pub(crate) fn release_forced(&self) {
        let seen = self.switch_number.load(Ordering::Relaxed);
        let mut g = lock(&self.mutex);
        // Release and count ourselves as a switcher in one step, so the
        // next taker's CAS reads us.
        let w = self.word.fetch_add(SWITCHER - LOCKED, Ordering::Release);
        debug_assert!(w & LOCKED != 0, "release of a GIL that is not held");
        if w & WAITERS != 0 {
            self.cond.notify_one();
        }
        while self.switch_number.load(Ordering::Relaxed) == seen {
            g = match self.switch_cond.wait(g) {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
        }
        self.word.fetch_sub(SWITCHER, Ordering::Relaxed);
        drop(g);
    }
}

/// Fork (see `fork` and `gil`'s hooks).
#[cfg(not(loom))]
impl GilLock {
    /// Asks the holder to drop the GIL, as a waiter does after an interval.
    pub(crate) fn request_drop(&self) {
        self.drop_request.store(true, Ordering::Relaxed);
    }

    /// The lock's mutex, for the fork handlers to hold across `fork()`.
    ///
    /// # Safety
    /// The guard must be dropped while the lock lives (a fork handler's
    /// does: the lock's home leaves the fork registry, which the handlers
    /// hold, before it is unmapped).
    pub(crate) unsafe fn fork_lock(&self) -> crate::sync::MutexGuard<'static, ()> {
        // SAFETY: the caller's contract.
        unsafe {
            core::mem::transmute::<
                crate::sync::MutexGuard<'_, ()>,
                crate::sync::MutexGuard<'static, ()>,
            >(lock(&self.mutex))
        }
    }

    /// In a `fork()` child whose only thread holds the GIL: forgets the
    /// waiters and forced droppers counted in the word (they were the
    /// parent's other threads) and any drop request they made.
    pub(crate) fn forget_waiters(&self) {
        self.word.store(LOCKED, Ordering::Relaxed);
        self.drop_request.store(false, Ordering::Relaxed);
    }
}
