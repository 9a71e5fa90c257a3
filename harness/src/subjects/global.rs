//! The `poolbench` binary's global allocator, switchable per process.
//!
//! An application cell runs a real program whose every allocation (its own,
//! rayon's, std's) must go to the subject, as under `LD_PRELOAD`. So the
//! binary's `#[global_allocator]` is a [`Switch`]: at the first allocation
//! of the process (std's runtime setup, before `main`) it reads
//! `POOLBENCH_GLOBAL` with `libc::getenv`, which does not allocate, and
//! from then on forwards every call to that subject. Unset or empty means
//! the system allocator, so every other use of the binary is unchanged.
//!
//! Construction allocates nothing: our allocators' constructors are `const
//! fn`s that map nothing until their first allocation, and the chosen one
//! is written into static storage (one slot per type, only the chosen one
//! initialised); the references (`system`, `mimalloc`, `jemalloc`,
//! `snmalloc`) are unit structs. `POOLBENCH_GEOMETRY` (`classic`, the
//! default, `modern` or `tiny`) sets our allocators' geometry.
//!
//! The state is one byte: 0 until chosen, then the subject's code. Every
//! call loads it (a plain load on x86-64) and dispatches with a `match`
//! whose arms are direct, inlinable calls; the branch goes the same way for
//! the whole process, so it is perfectly predicted. Choosing is a
//! compare-and-swap that one thread wins; any other thread arriving
//! meanwhile spins until it is done (at process start there is only one).
//!
//! A name the binary does not know stops the process before anything runs,
//! with a message on stderr and exit status 2 (bad input). `null` is not
//! accepted: its ring overwrites blocks once a thread has allocated past it,
//! which no program survives. `corrupt` (the test subject of
//! [`corrupt`](super::corrupt)) is accepted but not listed.

use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;
use core::ffi::CStr;
use core::mem::MaybeUninit;
use std::alloc::System;
use std::sync::atomic::{AtomicU8, Ordering};

use allocator::{Geometry, Gil, Locked, PoolStats, Sharded, Tcache};

use super::corrupt::Corrupt;

/// Environment variable naming the process's subject.
pub const SUBJECT_ENV: &str = "POOLBENCH_GLOBAL";
/// Environment variable naming our allocators' geometry.
pub const GEOMETRY_ENV: &str = "POOLBENCH_GEOMETRY";

/// The subjects a process can run as its global allocator, in report order
/// (the test subject `corrupt` is accepted but not listed).
pub const NAMES: &[&str] = &[
    "gil", "locked", "tcache", "sharded", "system", "mimalloc", "jemalloc", "snmalloc",
];

const UNCHOSEN: u8 = 0;
const CHOOSING: u8 = 1;
const SYSTEM: u8 = 2;
const GIL: u8 = 3;
const LOCKED: u8 = 4;
const TCACHE: u8 = 5;
const SHARDED: u8 = 6;
const MIMALLOC: u8 = 7;
const JEMALLOC: u8 = 8;
const SNMALLOC: u8 = 9;
const CORRUPT: u8 = 10;

/// Names by code (codes from `SYSTEM` up).
const BY_CODE: [(&str, u8); 9] = [
    ("system", SYSTEM),
    ("gil", GIL),
    ("locked", LOCKED),
    ("tcache", TCACHE),
    ("sharded", SHARDED),
    ("mimalloc", MIMALLOC),
    ("jemalloc", JEMALLOC),
    ("snmalloc", SNMALLOC),
    ("corrupt", CORRUPT),
];

/// Exit status for an unknown name (the CLI's bad-input code).
const EXIT_BAD_INPUT: i32 = 2;

static STATE: AtomicU8 = AtomicU8::new(UNCHOSEN);

/// Static storage for one allocator, written once while choosing.
struct Slot<T>(UnsafeCell<MaybeUninit<T>>);

// SAFETY: a slot is written only by the thread that won the choice, before
// it publishes the state with a release store; every reader first loads
// that state with acquire ordering, and the allocators themselves are Sync.
unsafe impl<T: Sync> Sync for Slot<T> {}

impl<T> Slot<T> {
    const fn new() -> Slot<T> {
        Slot(UnsafeCell::new(MaybeUninit::uninit()))
    }

    /// # Safety
    /// Only the choosing thread, once, before the state is published.
    unsafe fn init(&'static self, value: T) {
        // SAFETY: the caller is the only thread touching the slot.
        unsafe { (*self.0.get()).write(value) };
    }

    /// # Safety
    /// The state says this slot's allocator was chosen (so it is written).
    #[inline(always)]
    unsafe fn get(&'static self) -> &'static T {
        // SAFETY: initialised and never written again (caller's contract).
        unsafe { (*self.0.get()).assume_init_ref() }
    }
}

static GIL_SLOT: Slot<Gil> = Slot::new();
static LOCKED_SLOT: Slot<Locked> = Slot::new();
static TCACHE_SLOT: Slot<Tcache> = Slot::new();
static SHARDED_SLOT: Slot<Sharded> = Slot::new();

/// The switchable global allocator (see the module docs). Install it with
/// `#[global_allocator] static GLOBAL: Switch = Switch;`.
pub struct Switch;

/// The chosen subject's code, choosing it on the first call.
#[inline(always)]
fn code() -> u8 {
    let c = STATE.load(Ordering::Acquire);
    if c > CHOOSING {
        c
    } else {
        choose()
    }
}

/// Runs `$body` with `$a` bound to the chosen allocator, each arm a direct
/// call on a concrete type.
macro_rules! with_subject {
    (|$a:ident| $body:expr) => {
        match code() {
            GIL => {
                // SAFETY: `code()` returned this slot's code, so it was
                // written and published.
                let $a = unsafe { GIL_SLOT.get() };
                $body
            }
            LOCKED => {
                // SAFETY: `code()` returned this slot's code, so it was
                // written and published.
                let $a = unsafe { LOCKED_SLOT.get() };
                $body
            }
            TCACHE => {
                // SAFETY: `code()` returned this slot's code, so it was
                // written and published.
                let $a = unsafe { TCACHE_SLOT.get() };
                $body
            }
            SHARDED => {
                // SAFETY: `code()` returned this slot's code, so it was
                // written and published.
                let $a = unsafe { SHARDED_SLOT.get() };
                $body
            }
            MIMALLOC => {
                let $a = &mimalloc::MiMalloc;
                $body
            }
            JEMALLOC => {
                let $a = &tikv_jemallocator::Jemalloc;
                $body
            }
            SNMALLOC => {
                let $a = &snmalloc_rs::SnMalloc;
                $body
            }
            CORRUPT => {
                let $a = &Corrupt;
                $body
            }
            _ => {
                let $a = &System;
                $body
            }
        }
    };
}

// SAFETY: every call is forwarded unchanged to one allocator, the same one
// for the whole life of the process (chosen before the first allocation and
// never changed), so each block is freed or resized by the allocator that
// made it, and that allocator upholds the `GlobalAlloc` contract.
unsafe impl GlobalAlloc for Switch {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        with_subject!(|a| unsafe { a.alloc(layout) })
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded contract.
        with_subject!(|a| unsafe { a.alloc_zeroed(layout) })
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded contract; the block came from the same subject.
        with_subject!(|a| unsafe { a.dealloc(ptr, layout) })
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded contract; the block came from the same subject.
        with_subject!(|a| unsafe { a.realloc(ptr, layout, new_size) })
    }
}

/// Chooses the subject (or waits for the thread choosing it); never
/// allocates.
#[cold]
#[inline(never)]
fn choose() -> u8 {
    if STATE
        .compare_exchange(UNCHOSEN, CHOOSING, Ordering::Acquire, Ordering::Acquire)
        .is_err()
    {
        loop {
            let c = STATE.load(Ordering::Acquire);
            if c > CHOOSING {
                return c;
            }
            core::hint::spin_loop();
        }
    }
    let name = env(c"POOLBENCH_GLOBAL").unwrap_or(b"");
    let code = match name {
        b"" => SYSTEM,
        _ => match BY_CODE.iter().find(|(n, _)| n.as_bytes() == name) {
            Some(&(_, c)) => c,
            None => fatal(&[
                "POOLBENCH_GLOBAL=`",
                core::str::from_utf8(name).unwrap_or("(not UTF-8)"),
                "` is not a subject this binary can run as its global allocator; accepted: \
                 gil, locked, tcache, sharded, system, mimalloc, jemalloc, snmalloc",
            ]),
        },
    };
    if matches!(code, GIL | LOCKED | TCACHE | SHARDED) {
        let g = geometry();
        // SAFETY: this thread won the choice; nothing reads the slots until
        // the state is published below.
        unsafe {
            match code {
                GIL => GIL_SLOT.init(Gil::new(g)),
                LOCKED => LOCKED_SLOT.init(Locked::new(g)),
                TCACHE => TCACHE_SLOT.init(Tcache::new(g)),
                _ => SHARDED_SLOT.init(Sharded::new(g)),
            }
        }
    }
    STATE.store(code, Ordering::Release);
    code
}

/// Our allocators' geometry from `POOLBENCH_GEOMETRY` (default classic).
fn geometry() -> Geometry {
    let Some(raw) = env(c"POOLBENCH_GEOMETRY").filter(|v| !v.is_empty()) else {
        return Geometry::CLASSIC;
    };
    match core::str::from_utf8(raw).ok().and_then(Geometry::by_name) {
        Some(g) => g,
        None => fatal(&[
            "POOLBENCH_GEOMETRY=`",
            core::str::from_utf8(raw).unwrap_or("(not UTF-8)"),
            "` is not a geometry; accepted: classic, modern, tiny",
        ]),
    }
}

/// An environment variable's bytes, read without allocating.
fn env(name: &CStr) -> Option<&'static [u8]> {
    // SAFETY: `name` is NUL-terminated. The result is read at once, while
    // the process is starting and nothing is changing the environment.
    let p = unsafe { libc::getenv(name.as_ptr()) };
    if p.is_null() {
        None
    } else {
        // SAFETY: getenv returns a NUL-terminated string that lives as long
        // as the environment entry, which nothing in this process removes.
        Some(unsafe { CStr::from_ptr(p) }.to_bytes())
    }
}

/// Prints `poolbench: <parts>` on stderr without allocating and exits
/// with the bad-input status.
#[cold]
fn fatal(parts: &[&str]) -> ! {
    let write = |s: &[u8]| {
        // SAFETY: writing a valid buffer to fd 2 has no preconditions.
        unsafe { libc::write(2, s.as_ptr().cast(), s.len()) };
    };
    write(b"poolbench: ");
    for p in parts {
        write(p.as_bytes());
    }
    write(b"\n");
    // SAFETY: `_exit` ends the process without running anything that could
    // allocate (no atexit handlers, no Rust runtime teardown).
    unsafe { libc::_exit(EXIT_BAD_INPUT) }
}

/// The process's global allocator, as the cell reports it.
#[derive(Clone, Copy)]
pub struct Active {
    /// The subject's name (`system` when `POOLBENCH_GLOBAL` is unset).
    pub name: &'static str,
    /// Our allocators' geometry; `None` for the references.
    pub geometry: Option<Geometry>,
    /// Our allocators' accounting.
    pub stats: Option<&'static (dyn PoolStats + Sync)>,
    /// The `gil` subject, for its counters.
    pub gil: Option<&'static Gil>,
}

impl std::fmt::Debug for Active {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Active")
            .field("name", &self.name)
            .field("geometry", &self.geometry)
            .finish_non_exhaustive()
    }
}

/// The subject serving this process's allocations.
///
/// Only meaningful in a binary whose `#[global_allocator]` is [`Switch`]:
/// elsewhere (the library's unit tests) it names what `POOLBENCH_GLOBAL`
/// would choose, and the statistics are those of an allocator nobody uses.
pub fn active() -> Active {
    let c = code();
    let name = BY_CODE
        .iter()
        .find(|(_, k)| *k == c)
        .map_or("system", |(n, _)| n);
    let mut a = Active {
        name,
        geometry: None,
        stats: None,
        gil: None,
    };
    match c {
        GIL => {
            // SAFETY: `c` is this slot's published code.
            let g = unsafe { GIL_SLOT.get() };
            a.gil = Some(g);
            a.stats = Some(g);
            a.geometry = Some(g.geometry());
        }
        LOCKED => {
            // SAFETY: `c` is this slot's published code.
            let l = unsafe { LOCKED_SLOT.get() };
            a.stats = Some(l);
            a.geometry = Some(l.geometry());
        }
        TCACHE => {
            // SAFETY: `c` is this slot's published code.
            let t = unsafe { TCACHE_SLOT.get() };
            a.stats = Some(t);
            a.geometry = Some(t.geometry());
        }
        SHARDED => {
            // SAFETY: `c` is this slot's published code.
            let s = unsafe { SHARDED_SLOT.get() };
            a.stats = Some(s);
            a.geometry = Some(s.geometry());
        }
        _ => {}
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_name_has_a_code() {
        for n in NAMES {
            assert!(BY_CODE.iter().any(|(m, _)| m == n), "{n}");
        }
        assert_eq!(BY_CODE.len(), NAMES.len() + 1, "only `corrupt` is unlisted");
        assert_eq!(SUBJECT_ENV, "POOLBENCH_GLOBAL");
        assert_eq!(GEOMETRY_ENV, "POOLBENCH_GEOMETRY");
    }
}
