//! Fork safety of the `sharded` core (see `crate::fork`).

use super::*;

/// Heap state after `fork()` for the heaps of every thread but the forking
/// one: nobody owns, adopts or collects it again.
#[cfg(not(loom))]
const ORPHANED: u32 = 3;

/// Fork (see `fork`). Only arena operations take a lock, so that lock is
/// all the handlers hold. In the child, every heap but the forking
/// thread's is *orphaned*: its owner does not exist there, and its pools
/// and lists, written without a lock, may have been caught mid-update by
/// the fork (an abandoned heap's too: its owner's last writes are not
/// ordered before the fork by any lock). The state `ORPHANED` is one no
/// transition starts from, so the child never allocates from, adopts,
/// collects or waits for such a heap; blocks of its pools freed in the
/// child stay on their remote or delayed stacks. What those threads held
/// is lost to the child, as with glibc's or jemalloc's thread caches.
#[cfg(not(loom))]
impl crate::fork::ForkPerThread for ShardedCore {
    fn lock_all(&self) {
        // SAFETY: a fork handler; the core outlives the hold.
        unsafe {
            self.fork_arenas.hold(core::mem::transmute::<
                crate::sync::MutexGuard<'_, Arenas>,
                crate::sync::MutexGuard<'static, Arenas>,
            >(lock(&self.arenas)))
        }
    }

    unsafe fn parent(&self) {
        // SAFETY: a fork handler.
        unsafe { self.fork_arenas.release() }
    }

    unsafe fn child(&self, mine: *mut ()) {
        // SAFETY: a fork handler; the child has one thread, this one, so
        // nothing races with the walk. Heaps stay mapped while the core
        // lives.
        unsafe {
            self.fork_arenas.release();
            let mine = mine.cast::<ThreadHeap>();
            let (mut live, mut others) = (0, 0);
            let mut h = self.heaps.load(Ordering::Acquire);
            while !h.is_null() {
                if h == mine {
                    live += 1;
                } else {
                    (*h).state.0.store(ORPHANED, Ordering::Relaxed);
                    others += 1;
                }
                h = (*h).next_all;
            }
            self.live_heaps.store(live, Ordering::Relaxed);
            self.abandoned_heaps.store(others, Ordering::Relaxed);
        }
    }
}
