//! `corrupt`: a test subject that damages blocks the program reads later,
//! to show that every application's result check catches a broken
//! allocator (`POOLBENCH_GLOBAL=corrupt`; accepted, never listed).
//!
//! It is the system allocator plus damage. The damage must show up as a
//! wrong result, not as a crash, so it only touches *byte buffers*: blocks
//! requested with alignment 1 (`String`, `Vec<u8>`), which never hold a
//! pointer. It flips the lowest bit of a buffer's first byte, and only when
//! that byte is ASCII, so a damaged `String` is still valid UTF-8. On each
//! thread, the first byte-buffer event after arming and every [`PERIOD`]th
//! one after it pick a victim:
//!
//! - a fresh buffer (`alloc`) is damaged at its thread's *next* allocator
//!   call, by which time the program has filled it; a buffer freed or
//!   grown before that is spared at `dealloc` (never written after it was
//!   freed);
//! - a growing buffer (`realloc`) is damaged in its new place, right after
//!   the copy: its first byte holds data the program wrote before it asked
//!   for more room and will read later.
//!
//! Counting per thread keeps the damage where the program is: a helper
//! thread (the cell's RSS sampler) cannot take a program thread's turn.
//! Damage happens only while the program's measured part runs ([`arm`] /
//! [`disarm`], which `apps` calls around it when this is the process's
//! subject), so the command line, the program's input and its expected
//! result are never damaged. Pending victims sit in a small table behind a
//! spin lock; speed does not matter here. In binary-trees, whose nodes hold
//! nothing but pointers, the damage lands in the program's output text,
//! which its check compares line by line with the expected output (as the
//! benchmarks game verifies the program).

use core::alloc::{GlobalAlloc, Layout};
use core::cell::{Cell, UnsafeCell};
use std::alloc::System;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// On each thread, one byte-buffer event in this many (from the first)
/// picks a victim.
pub const PERIOD: u64 = 64;

/// Pending victims at most (one per thread); a thread finding the table
/// full lets its victim go.
const TABLE: usize = 64;

/// The corrupting test subject (see the module docs).
pub struct Corrupt;

static ARMED: AtomicBool = AtomicBool::new(false);
/// Incremented by every [`arm`]; a thread whose count is from an older
/// epoch starts counting afresh.
static EPOCH: AtomicU64 = AtomicU64::new(0);
static DAMAGED: AtomicU64 = AtomicU64::new(0);

/// Starts damaging; every thread counts its events afresh. A no-op for
/// any other subject, which never looks.
pub fn arm() {
    EPOCH.fetch_add(1, Ordering::SeqCst);
    ARMED.store(true, Ordering::SeqCst);
}

/// Stops damaging; pending victims are let go undamaged.
pub fn disarm() {
    ARMED.store(false, Ordering::SeqCst);
    let mut b = State::lock();
    b.victims = [Victim::NONE; TABLE];
}

/// Bytes flipped so far in this process.
pub fn damaged() -> u64 {
    DAMAGED.load(Ordering::Relaxed)
}

thread_local! {
    /// Its address identifies the thread. `const`, no destructor: no
    /// allocation, usable inside a global allocator.
    static MARK: u8 = const { 0 };
    /// This thread's byte-buffer events: (epoch, count).
    static EVENTS: Cell<(u64, u64)> = const { Cell::new((0, 0)) };
}

fn thread_id() -> usize {
    MARK.with(|m| m as *const u8 as usize)
}

/// Counts one byte-buffer event of the calling thread; true when it picks
/// a victim.
fn next_is_victim() -> bool {
    let epoch = EPOCH.load(Ordering::Relaxed);
    EVENTS.with(|e| {
        let (seen, n) = e.get();
        let n = if seen == epoch { n } else { 0 };
        e.set((epoch, n + 1));
        n % PERIOD == 0
    })
}

fn is_buffer(layout: Layout) -> bool {
    layout.align() == 1 && layout.size() > 0
}

#[derive(Clone, Copy)]
struct Victim {
    /// The thread that allocated it.
    owner: usize,
    /// Its address; 0 for a free entry.
    ptr: usize,
}

impl Victim {
    const NONE: Victim = Victim { owner: 0, ptr: 0 };
}

/// The pending victims, behind the spin lock.
struct Book {
    victims: [Victim; TABLE],
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
        victims: [Victim::NONE; TABLE],
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
    /// Lets go of the victim at `ptr` (its block is being freed or moved);
    /// true if there was one.
    fn spare(&mut self, ptr: usize) -> bool {
        match self.victims.iter_mut().find(|v| v.ptr == ptr) {
            Some(v) => {
                *v = Victim::NONE;
                true
            }
            None => false,
        }
    }

    /// Damages the calling thread's pending victim, if any.
    fn settle(&mut self, me: usize) {
        if let Some(v) = self
            .victims
            .iter_mut()
            .find(|v| v.ptr != 0 && v.owner == me)
        {
            // SAFETY: the victim is live: freeing or moving its block lets
            // it go (`spare`) under this lock before the block is released.
            unsafe { flip(v.ptr as *mut u8) };
            *v = Victim::NONE;
        }
    }

    /// Makes `ptr` the calling thread's pending victim if there is room.
    fn pick(&mut self, me: usize, ptr: usize) {
        if let Some(v) = self.victims.iter_mut().find(|v| v.ptr == 0) {
            *v = Victim { owner: me, ptr };
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
            b.settle(me);
            if !p.is_null() && is_buffer(layout) && next_is_victim() {
                b.pick(me, p as usize);
            }
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // Spare (or settle) under the lock even when disarmed, so a victim
        // is never written after its block was freed.
        {
            let mut b = State::lock();
            if !b.spare(ptr as usize) && armed() {
                b.settle(thread_id());
            }
        }
        // SAFETY: forwarded contract.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let was_victim = {
            let mut b = State::lock();
            let spared = b.spare(ptr as usize);
            if !spared && armed() {
                b.settle(thread_id());
            }
            spared
        };
        // SAFETY: forwarded contract.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if armed() && !p.is_null() && is_buffer(layout) && (next_is_victim() || was_victim) {
            // SAFETY: `p` is the live, grown block, owned by the calling
            // thread until it returns; its first byte was copied from the
            // old one.
            unsafe { flip(p) };
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exercises the subject directly (not as the global allocator). The
    /// arming flag is process-wide, so this is the module's only test (no
    /// other unit test arms it: `apps` does only when the process's
    /// subject is `corrupt`).
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
            let v = Corrupt.alloc(bytes); // the thread's first event: a victim
            v.write_bytes(b'b', 8);
            // Another thread's calls neither damage it nor take its turn.
            std::thread::spawn(move || {
                let x = Corrupt.alloc(bytes);
                x.write_bytes(b'x', 8);
                Corrupt.dealloc(x, bytes);
            })
            .join()
            .unwrap();
            assert_eq!(*v, b'b');
            let w = Corrupt.alloc(words); // this thread's next call damages it
            w.cast::<u64>().write(u64::MAX);
            assert_eq!(*v, b'c');
            assert_eq!(*v.add(1), b'b', "one byte only");
            assert_eq!(damaged(), before + 1);
            let w2 = Corrupt.alloc(words);
            assert_eq!(w.cast::<u64>().read(), u64::MAX, "never a word block");

            // A victim freed before its thread's next call is spared.
            arm();
            let f = Corrupt.alloc(bytes);
            f.write_bytes(b'f', 8);
            Corrupt.dealloc(f, bytes);
            let after = damaged();
            let g = Corrupt.alloc(words);
            assert_eq!(damaged(), after);
            // A growing victim is damaged in its new place.
            arm();
            let r = Corrupt.alloc(bytes);
            r.write_bytes(b'r', 8);
            let r = Corrupt.realloc(r, bytes, 64);
            assert_eq!((*r, *r.add(7)), (b's', b'r'));
            disarm();
            Corrupt.dealloc(r, Layout::from_size_align(64, 1).unwrap());
            Corrupt.dealloc(g, words);
            Corrupt.dealloc(w2, words);
            Corrupt.dealloc(w, words);
            Corrupt.dealloc(v, bytes);
        }
    }
}
