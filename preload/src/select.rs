//! Which allocator serves the process: read from the environment once,
//! without allocating, on the first call (or at load time, whichever comes
//! first).
//!
//! * `POOLBENCH_ALLOCATOR`: `gil`, `locked`, `tcache` or `sharded`
//!   (default `sharded`).
//! * `POOLBENCH_GEOMETRY`: `classic`, `modern` or `tiny` (default
//!   `modern`: its 16-byte classes give every block of 16 bytes or more the
//!   16-byte alignment C promises; `classic` blocks are 8-byte aligned).
//! * `POOLBENCH_STATS=1`: print the accounting to stderr at exit.
//!
//! Every allocator × geometry is a `static` built in `const` context, so
//! choosing one maps nothing; only the chosen one is ever used. Calls
//! dispatch on one byte with a `match` whose arms inline each allocator's
//! fast path (see `dispatch!`).

use core::ffi::{c_char, CStr};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU8, AtomicUsize, Ordering};

use allocator::{Geometry, Gil, Locked, Sharded, Tcache};

pub(crate) static GIL_CLASSIC: Gil = Gil::new(Geometry::CLASSIC);
pub(crate) static GIL_MODERN: Gil = Gil::new(Geometry::MODERN);
pub(crate) static GIL_TINY: Gil = Gil::new(Geometry::TINY);
pub(crate) static LOCKED_CLASSIC: Locked = Locked::new(Geometry::CLASSIC);
pub(crate) static LOCKED_MODERN: Locked = Locked::new(Geometry::MODERN);
pub(crate) static LOCKED_TINY: Locked = Locked::new(Geometry::TINY);
pub(crate) static TCACHE_CLASSIC: Tcache = Tcache::new(Geometry::CLASSIC);
pub(crate) static TCACHE_MODERN: Tcache = Tcache::new(Geometry::MODERN);
pub(crate) static TCACHE_TINY: Tcache = Tcache::new(Geometry::TINY);
pub(crate) static SHARDED_CLASSIC: Sharded = Sharded::new(Geometry::CLASSIC);
pub(crate) static SHARDED_MODERN: Sharded = Sharded::new(Geometry::MODERN);
pub(crate) static SHARDED_TINY: Sharded = Sharded::new(Geometry::TINY);

/// The allocators, in the order of their index in a [`Choice`].
pub(crate) const ALLOCATORS: [&str; 4] = ["gil", "locked", "tcache", "sharded"];
/// The geometries, likewise.
pub(crate) const GEOMETRIES: [(&str, Geometry); 3] = [
    ("classic", Geometry::CLASSIC),
    ("modern", Geometry::MODERN),
    ("tiny", Geometry::TINY),
];

/// An allocator and a geometry, as `1 + 3 * allocator + geometry`; 0 is
/// "not chosen yet".
pub(crate) type Choice = u8;

static CHOICE: AtomicU8 = AtomicU8::new(0);
static STATS: AtomicBool = AtomicBool::new(false);
/// Where the report goes: a duplicate of stderr made at startup, since
/// some programs (coreutils) close stderr before exiting.
static STATS_FD: AtomicI32 = AtomicI32::new(2);
static PAGE_SIZE: AtomicUsize = AtomicUsize::new(4096);

/// The allocator serving this process, choosing it on first use.
#[inline(always)]
pub(crate) fn choice() -> Choice {
    let c = CHOICE.load(Ordering::Relaxed);
    if c != 0 {
        c
    } else {
        choose()
    }
}

/// The names of a choice's allocator and geometry.
pub(crate) fn names(c: Choice) -> (&'static str, &'static str) {
    let i = (c - 1) as usize;
    (ALLOCATORS[i / 3], GEOMETRIES[i % 3].0)
}

/// Whether `POOLBENCH_STATS=1`.
#[inline(always)]
pub(crate) fn stats_enabled() -> bool {
    STATS.load(Ordering::Relaxed)
}

/// The file descriptor the report is written to.
pub(crate) fn stats_fd() -> i32 {
    STATS_FD.load(Ordering::Relaxed)
}

/// The OS page size (for `valloc` and `pvalloc`).
pub(crate) fn page_size() -> usize {
    PAGE_SIZE.load(Ordering::Relaxed)
}

/// The value of environment variable `name`, without allocating.
fn env(name: &CStr) -> Option<&'static [u8]> {
    // SAFETY: a valid NUL-terminated name; getenv does not allocate, and
    // the environment is not modified while the process starts.
    let v = unsafe { libc::getenv(name.as_ptr()) };
    // SAFETY: a non-null result is a NUL-terminated string in the
    // environment, which lives as long as the process (unless the program
    // changes that variable, after which we never read it again).
    (!v.is_null()).then(|| unsafe { CStr::from_ptr(v as *const c_char) }.to_bytes())
}

/// Reads the environment and publishes the choice. Racing first calls
/// compute the same answer.
#[cold]
#[inline(never)]
fn choose() -> Choice {
    let allocator = match env(c"POOLBENCH_ALLOCATOR") {
        None | Some(b"") => 3,
        Some(v) => match ALLOCATORS.iter().position(|&a| a.as_bytes() == v) {
            Some(i) => i,
            None => crate::fatal_with(
                b"unknown POOLBENCH_ALLOCATOR (expected gil, locked, tcache or sharded): ",
                v,
            ),
        },
    };
    let geometry = match env(c"POOLBENCH_GEOMETRY") {
        // `modern`: see the module docs.
        None | Some(b"") => 1,
        Some(v) => match GEOMETRIES.iter().position(|&(g, _)| g.as_bytes() == v) {
            Some(i) => i,
            None => crate::fatal_with(
                b"unknown POOLBENCH_GEOMETRY (expected classic, modern or tiny): ",
                v,
            ),
        },
    };
    let stats = env(c"POOLBENCH_STATS") == Some(b"1");
    if stats {
        // A high descriptor, out of the way of programs that expect the
        // low ones; closed on exec. On failure the report goes to fd 2.
        // SAFETY: fcntl on a descriptor number has no memory preconditions.
        let fd = unsafe { libc::fcntl(2, libc::F_DUPFD_CLOEXEC, 512) };
        if fd >= 0 {
            STATS_FD.store(fd, Ordering::Relaxed);
        }
    }
    STATS.store(stats, Ordering::Relaxed);
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if page > 0 {
        PAGE_SIZE.store(page as usize, Ordering::Relaxed);
    }
    let c = (1 + 3 * allocator + geometry) as Choice;
    CHOICE.store(c, Ordering::Relaxed);
    c
}

/// Runs `$body` with `$front` bound to the `Front`
/// of the chosen allocator; each arm is monomorphised, so the allocator's
/// fast path inlines into the C entry point.
macro_rules! dispatch {
    ($front:ident => $body:expr) => {{
        use allocator::Geometry;
        use $crate::front::Front;
        use $crate::select::*;
        match choice() {
            1 => {
                let $front = Front::new(&GIL_CLASSIC, Geometry::CLASSIC);
                $body
            }
            2 => {
                let $front = Front::new(&GIL_MODERN, Geometry::MODERN);
                $body
            }
            3 => {
                let $front = Front::new(&GIL_TINY, Geometry::TINY);
                $body
            }
            4 => {
                let $front = Front::new(&LOCKED_CLASSIC, Geometry::CLASSIC);
                $body
            }
            5 => {
                let $front = Front::new(&LOCKED_MODERN, Geometry::MODERN);
                $body
            }
            6 => {
                let $front = Front::new(&LOCKED_TINY, Geometry::TINY);
                $body
            }
            7 => {
                let $front = Front::new(&TCACHE_CLASSIC, Geometry::CLASSIC);
                $body
            }
            8 => {
                let $front = Front::new(&TCACHE_MODERN, Geometry::MODERN);
                $body
            }
            9 => {
                let $front = Front::new(&TCACHE_TINY, Geometry::TINY);
                $body
            }
            10 => {
                let $front = Front::new(&SHARDED_CLASSIC, Geometry::CLASSIC);
                $body
            }
            11 => {
                let $front = Front::new(&SHARDED_MODERN, Geometry::MODERN);
                $body
            }
            _ => {
                let $front = Front::new(&SHARDED_TINY, Geometry::TINY);
                $body
            }
        }
    }};
}
