//! pymalloc-style pool allocators under one geometry.
//!
//! CPython's small-object allocator (`Objects/obmalloc.c`) carves arenas
//! mapped from the OS into pools of one page, and pools into fixed-size
//! blocks of one size class. This crate writes that core once and wraps it
//! in four concurrency strategies, so that a benchmark comparing them
//! measures the strategy and nothing else:
//!
//! | type | strategy |
//! | --- | --- |
//! | [`Gil`] | one global lock held for a span of work and handed over every switch interval: CPython with the GIL |
//! | [`Locked`] | the same core with a lock taken around every call |
//! | [`Tcache`] | per-thread caches of blocks in front of [`Locked`], refilled and flushed in batches |
//! | [`Sharded`] | lock-free per-thread heaps with batched remote frees: the mimalloc design free-threaded CPython adopted, with snmalloc's message passing |
//!
//! All of them implement [`GlobalAlloc`](std::alloc::GlobalAlloc), are
//! constructible as values (tests and loom models build their own), and
//! report [`Stats`] in the terms of CPython's `sys._debugmallocstats()`.
//!
//! Module map, one concept per file: [`geometry`] (sizes and size classes),
//! `os` (mapping arenas, the raw allocator), `pool` (a pool header and its
//! block lists), `arena` (the arena table and the sorted `usable_arenas`
//! list), [`arena_map`] (which addresses are ours: C's size-less `free`),
//! `heap` (per-class `usedpools` rings and the alloc/free paths),
//! `pymalloc` (heap + arenas: the state one lock protects), [`stats`]
//! (accounting), `sync` (the loom shim), `thread` (finding a thread's
//! state), `gil_lock` (the GIL's hand-over protocol), `fork` (every lock
//! held across `fork()`), `stable` (where `gil`'s and `locked`'s shared
//! state lives), then one file per allocator.
//!
//! Every allocator survives `fork()` from a multi-threaded process: the
//! child never waits for a lock or a GIL held by a thread it does not
//! have.
//!
//! Allocator code never unwinds: it returns null, or aborts with a message
//! when its own invariants are broken.

// Under loom only the models' part of the crate is exercised (fork
// handling, trimming and the global wrappers are not modelled).
#![cfg_attr(loom, allow(dead_code))]

mod arena;
pub mod arena_map;
mod fork;
pub mod geometry;
#[cfg(not(loom))]
pub mod gil;
mod gil_lock;
mod heap;
pub mod locked;
#[cfg(all(test, loom))]
mod loom_models;
mod os;
mod per_thread;
mod pool;
mod pool_header;
mod pymalloc;
pub mod sharded;
mod stable;
pub mod stats;
mod sync;
pub mod tcache;
#[cfg(not(loom))]
mod thread;

pub use geometry::Geometry;
#[cfg(not(loom))]
pub use gil::{Gil, GilCore, GilGuard, GilStats};
pub use locked::Locked;
#[cfg(not(loom))]
pub use sharded::Sharded;
pub use stats::Stats;
#[cfg(not(loom))]
pub use tcache::Tcache;

/// Allocators that can account for their memory.
pub trait PoolStats {
    /// A snapshot of the allocator's memory. Never calls the global
    /// allocator, so it is safe to take from inside a `#[global_allocator]`.
    fn stats(&self) -> Stats;
}

/// Defines a `const fn`, except under loom, whose atomics and locks cannot
/// be built in const context.
#[macro_export]
#[doc(hidden)]
macro_rules! const_fn {
    ($(#[$m:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) -> $ret:ty $body:block) => {
        #[cfg(not(loom))]
        $(#[$m])* $vis const fn $name($($arg: $ty),*) -> $ret $body
        #[cfg(loom)]
        $(#[$m])* $vis fn $name($($arg: $ty),*) -> $ret $body
    };
}

/// Stops the process with a message, for broken invariants inside allocator
/// code, where unwinding is not allowed and allocating a message is unsafe.
#[cold]
pub(crate) fn fatal(msg: &str) -> ! {
    // SAFETY: writing a valid buffer to fd 2 and aborting have no
    // preconditions; neither allocates.
    unsafe {
        libc::write(2, b"poolbench allocator: ".as_ptr().cast(), 21);
        libc::write(2, msg.as_ptr().cast(), msg.len());
        libc::write(2, b"\n".as_ptr().cast(), 1);
        libc::abort()
    }
}

#[cfg(test)]
mod tests;
