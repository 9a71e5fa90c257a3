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
//! | [`Locked`] | the same lock taken around every call |
//! | [`Tcache`] | per-thread caches of blocks in front of [`Locked`], refilled and flushed in batches |
//! | [`Sharded`] | lock-free per-thread heaps with remote-free stacks: the mimalloc design free-threaded CPython adopted |
//!
//! All of them implement [`GlobalAlloc`](std::alloc::GlobalAlloc), are
//! constructible as values (tests and loom models build their own), and
//! report [`Stats`] in the terms of CPython's `sys._debugmallocstats()`.
//!
//! Module map, one concept per file: [`geometry`] (sizes and size
//! classes), `os` (mapping arenas, the raw allocator), `pool` (a pool
//! header and its block lists), `arena` (the arena table and the sorted
//! `usable_arenas` list), `heap` (per-class `usedpools` and the alloc/free
//! paths), [`stats`] (accounting), `sync` (the loom shim), then one file
//! per allocator.

pub mod geometry;
mod pool;
pub mod stats;

pub use geometry::Geometry;
pub use stats::Stats;
