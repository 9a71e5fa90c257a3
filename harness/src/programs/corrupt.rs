//! `corrupt`: a test subject that damages blocks the program reads later,
//! to show that every application's result check catches a broken
//! allocator (`POOLBENCH_GLOBAL=corrupt`; accepted, never listed).
//!
//! It is the system allocator plus damage. The damage must show up as a
//! wrong result, not as a crash, so it only touches *byte buffers*: blocks
//! requested with alignment 1 (`String`, `Vec<u8>`), which never hold a
//! pointer. It flips the lowest bit of a buffer's first byte, and only when
//! that byte is ASCII, so a damaged `String` is still valid UTF-8. Every
//! [`PERIOD`]th byte-buffer event becomes a victim:
//!
//! - a fresh buffer (`alloc`) is damaged at its owning thread's *next*
//!   allocator call, by which time the program has filled it; a buffer
//!   freed or grown before that is not damaged at `dealloc` (never after
//!   it was freed);
//! - a growing buffer (`realloc`) is damaged in its new place, right after
//!   the copy: its first byte holds data the program wrote before it asked
//!   for more room and will read later.
//!
//! Damage happens only while the program's measured part runs ([`arm`] /
//! [`disarm`], which `apps` calls around it when this is the process's
//! subject), so the command line, the
//! program's input and its expected result are never damaged. The
//! bookkeeping (one victim at a time) sits behind a spin lock; speed does
//! not matter here. In binary-trees, whose nodes hold nothing but pointers,
//! the damage lands in the program's output text, which its check compares
//! line by line with the expected output (as the benchmarks game verifies
//! the program).

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use std::alloc::System;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// One byte-buffer event in this many becomes a victim (the first one too).
pub const PERIOD: u64 = 64;

/// The corrupting test subject (see the module docs).
pub struct Corrupt;

static ARMED: AtomicBool = AtomicBool::new(false);
static DAMAGED: AtomicU64 = AtomicU64::new(0);

/// Starts damaging, counting events afresh (so the first byte-buffer
/// event is a victim); a no-op for any other subject, which never looks.
pub fn arm() {
    State::lock().events = 0;
    ARMED.store(true, Ordering::SeqCst);
}

/// Stops damaging; a pending victim is dropped undamaged.
pub fn disarm() {
    ARMED.store(false, Ordering::SeqCst);
    let mut s = State::lock();
    s.victim = 0;
}

/// Bytes flipped so far in this process.
pub fn damaged() -> u64 {
    DAMAGED.load(Ordering::Relaxed)
}

thread_local! {
    /// Its address identifies the thread; no destructor, no allocation.
    static MARK: u8 = const { 0 };
}

fn thread_id() -> usize {
    MARK.with(|m| m as *const u8 as usize)
}

/// The bookkeeping behind the spin lock.
struct Book {
    /// Byte-buffer events seen while armed.
    events: u64,
    /// The pending victim's address, or 0.
    victim: usize,
    /// The thread that allocated it.
    owner: usize,
}

struct State {
    busy: AtomicBool,
    book: UnsafeCell<Book>,
}

// SAFETY: `book` is only reached through `State::lock`, which hands it to
// one thread at a time (acquire/release on `busy`).
unsafe impl Sync for State {}

static STATE: State = State {
    busy: AtomicBool::new(false),
    book: UnsafeCell::new(Book {
        events: 0,
        victim: 0,
        owner: 0,
    }),
};

/// The held spin lock.
struct Held(&'static State);

impl State {
    fn lock() -> Held {
        while STATE
            .busy
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            core::hint::spin_loop();
        }
        Held(&STATE)
    }
}

impl core::ops::Deref for Held {
    type Target = Book;
    fn deref(&self) -> &Book {
        // SAFETY: the lock is held, so no other thread touches the book.
        unsafe { &*self.0.book.get() }
    }
}

impl core::ops::DerefMut for Held {
    fn deref_mut(&mut self) -> &mut Book {
        // SAFETY: as for `deref`, and `&mut self` makes this the only borrow.
        unsafe { &mut *self.0.book.get() }
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.0.busy.store(false, Ordering::Release);
    }
}

impl Book {
    /// Counts one byte-buffer event; true when it is a victim.
    fn next_is_victim(&mut self) -> bool {
        let n = self.events;
        self.events += 1;
        n % PERIOD == 0
    }

    /// Damages the pending victim if the calling thread owns it and it is
    /// not `except` (a block being freed or moved right now).
    fn settle(&mut self, me: usize, except: usize) {
        if self.victim != 0 && self.owner == me && self.victim != except {
            // SAFETY: the victim is live: a dealloc or realloc of it clears
            // it under this lock before the block is released.
            unsafe { flip(self.victim as *mut u8) };
            self.victim = 0;
        }
    }
}

/// Flips the lowest bit of the byte at `p` if it is ASCII.
///
/// # Safety
/// `p` must point into a live block of at least one byte.
unsafe fn flip(p: *mut u8) {
    // SAFETY: the caller's contract; volatile so the write is not elided.
    unsafe {
        let b = p.read_volatile();
        if b < 0x80 {
            p.write_volatile(b ^ 1);
            DAMAGED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

#[inline]
fn armed() -> bool {
    ARMED.load(Ordering::Relaxed)
}

// SAFETY: blocks come from `System` and go back to it unchanged; the only
// addition is writing one byte inside a live block the caller owns, which
// breaks the caller's data (the point of this subject), never the
// allocator's contract.
unsafe impl GlobalAlloc for Corrupt {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        let p = unsafe { System.alloc(layout) };
        if armed() {
            let me = thread_id();
            let mut b = State::lock();
            b.settle(me, 0);
            let buffer = !p.is_null() && layout.align() == 1 && layout.size() > 0;
            // A victim while another is pending is let go.
            if buffer && b.next_is_victim() && b.victim == 0 {
                b.victim = p as usize;
                b.owner = me;
            }
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Clear (or settle) the victim under the lock even when disarmed,
        // so a victim is never written after its block was freed.
        {
            let me = thread_id();
            let mut b = State::lock();
            if b.victim == ptr as usize {
                b.victim = 0;
            } else if armed() {
                b.settle(me, ptr as usize);
            }
        }
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let mut was_victim = false;
        {
            let me = thread_id();
            let mut b = State::lock();
            if b.victim == ptr as usize {
                b.victim = 0;
                was_victim = true;
            } else if armed() {
                b.settle(me, ptr as usize);
            }
        }
        // SAFETY: forwarded contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if armed() && !p.is_null() && layout.align() == 1 && layout.size() > 0 {
            let mut b = State::lock();
            if b.next_is_victim() || was_victim {
                // SAFETY: `p` is the live, grown block; its first byte was
                // copied from the old one.
                unsafe { flip(p) };
            }
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exercises the subject directly (not as the global allocator). The
    /// arming flag is process-wide, so this is the module's only test.
    #[test]
    fn damages_byte_buffers_only_while_armed() {
        let bytes = Layout::from_size_align(8, 1).unwrap();
        let words = Layout::from_size_align(16, 8).unwrap();
        // SAFETY: every block is written within its size and freed once
        // with its layout.
        unsafe {
            let a = Corrupt.alloc(bytes);
            a.write_bytes(b'a', 8);
            let w = Corrupt.alloc(words);
            Corrupt.dealloc(w, words);
            assert_eq!(*a, b'a', "disarmed: nothing is damaged");
            Corrupt.dealloc(a, bytes);

            arm();
            let before = damaged();
            let v = Corrupt.alloc(bytes); // the first event is a victim
            v.write_bytes(b'b', 8);
            let w = Corrupt.alloc(words); // the owner's next call damages it
            w.cast::<u64>().write(u64::MAX);
            assert_eq!(*v, b'c');
            assert_eq!(*v.add(1), b'b', "one byte only");
            assert_eq!(damaged(), before + 1);
            let w2 = Corrupt.alloc(words);
            assert_eq!(w.cast::<u64>().read(), u64::MAX, "never a word block");
            disarm();
            Corrupt.dealloc(w2, words);
            Corrupt.dealloc(w, words);
            Corrupt.dealloc(v, bytes);
        }
    }
}
