//! `POOLBENCH_STATS=1`: the allocator's accounting on stderr at exit, in
//! the terms of CPython's `sys._debugmallocstats()`, written through a
//! buffer on the stack (nothing allocates).

use core::fmt::Write;
use std::sync::atomic::Ordering;

use allocator::{PoolStats, Stats};

use crate::{rawstats, select};

/// A `fmt::Write` into a stack buffer, flushed to `fd` when full.
struct Stderr {
    fd: i32,
    buf: [u8; 2048],
    len: usize,
}

impl Stderr {
    fn flush(&mut self) {
        let mut done = 0;
        while done < self.len {
            // SAFETY: writing initialised bytes of our buffer to a descriptor.
            let n =
                unsafe { libc::write(self.fd, self.buf[done..].as_ptr().cast(), self.len - done) };
            if n <= 0 {
                break;
            }
            done += n as usize;
        }
        self.len = 0;
    }
}

impl Write for Stderr {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        for chunk in s.as_bytes().chunks(self.buf.len()) {
            if self.len + chunk.len() > self.buf.len() {
                self.flush();
            }
            self.buf[self.len..self.len + chunk.len()].copy_from_slice(chunk);
            self.len += chunk.len();
        }
        Ok(())
    }
}

/// The chosen allocator's statistics, and its GIL's counters for `gil`.
fn snapshot(c: select::Choice) -> (Stats, Option<allocator::GilStats>) {
    use select::*;
    let gil = |a: &allocator::Gil| (a.stats(), Some(a.gil_stats()));
    match c {
        1 => gil(&GIL_CLASSIC),
        2 => gil(&GIL_MODERN),
        3 => gil(&GIL_TINY),
        4 => (LOCKED_CLASSIC.stats(), None),
        5 => (LOCKED_MODERN.stats(), None),
        6 => (LOCKED_TINY.stats(), None),
        7 => (TCACHE_CLASSIC.stats(), None),
        8 => (TCACHE_MODERN.stats(), None),
        9 => (TCACHE_TINY.stats(), None),
        10 => (SHARDED_CLASSIC.stats(), None),
        11 => (SHARDED_MODERN.stats(), None),
        _ => (SHARDED_TINY.stats(), None),
    }
}

/// Prints the report.
pub(crate) fn print() {
    let c = select::choice();
    let (allocator, geometry) = select::names(c);
    let (s, gil) = snapshot(c);
    let mut w = Stderr {
        fd: select::stats_fd(),
        buf: [0; 2048],
        len: 0,
    };
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    let e = &s.extra;
    // Writing to a buffer cannot fail.
    let _ = writeln!(
        w,
        "poolbench preload (pid {pid}): allocator {allocator}, geometry {geometry}\n{s}"
    );
    let _ = writeln!(
        w,
        "{:<34} = {:>15}\n{:<34} = {:>15}",
        "# glibc blocks live (through us)",
        rawstats::LIVE_BLOCKS.load(Ordering::Relaxed),
        "bytes in glibc blocks (usable)",
        rawstats::LIVE_BYTES.load(Ordering::Relaxed),
    );
    match allocator {
        "tcache" => {
            let _ = writeln!(
                w,
                "{:<34} = {:>15}",
                "# blocks in thread caches", e.cached_blocks
            );
        }
        "sharded" => {
            let _ = writeln!(
                w,
                "# heaps live / abandoned           = {:>7} / {:>5}\n\
                 # pools adopted                    = {:>15}\n\
                 # remote frees pushed / collected  = {:>7} / {:>5}",
                e.live_heaps,
                e.abandoned_heaps,
                e.pools_adopted,
                e.remote_frees_pushed,
                e.remote_frees_collected
            );
        }
        _ => {}
    }
    if let Some(g) = gil {
        let _ = writeln!(
            w,
            "# GIL acquisitions / contended     = {:>7} / {:>5}\n# GIL forced switches              = {:>15}",
            g.acquisitions, g.contended, g.switches
        );
    }
    w.flush();
}
