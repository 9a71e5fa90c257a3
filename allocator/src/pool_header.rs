//! The pool header (CPython's `struct pool_header`), at the start of every
//! pool; the pool's operations are `pool.rs`. It is a file of its own so
//! that the geometry can size it without depending on those operations.
//!
//! The header is shared by all four allocators so that they have the same
//! geometry. Two fields serve only `sharded`: `owner`, the heap that owns
//! the pool, which a freeing thread compares with its own heap, and
//! `current`.
//! `ref_count` and `szidx` are atomics only so that a statistics walk may
//! read pools it does not own; their writer is always the pool's owner, so
//! plain `load`/`store` (never read-modify-write) suffice and cost nothing
//! over plain fields on x86-64. The other fields are the owner's alone and
//! change owner only through a protocol (the arena lock, a heap's
//! abandonment and adoption), so they are [`UnsafeCell`]s of the `sync`
//! shim, which loom checks.

use crate::sync::{AtomicPtr, AtomicU32, UnsafeCell};

/// `szidx` of a pool carved but never initialised for a class.
pub(crate) const DUMMY_SZIDX: u32 = u32::MAX;

/// A pool header. Fields are reached through raw pointers to the pool
/// (`(*p).field`), never through a `&mut Pool`, since other threads may
/// read the atomic fields while the owner writes the others.
#[repr(C)]
pub(crate) struct Pool {
    /// Blocks in use (CPython `ref.count`); written by the owner only.
    pub(crate) ref_count: AtomicU32,
    /// Size-class index, or [`DUMMY_SZIDX`]; written by the owner only.
    pub(crate) szidx: AtomicU32,
    /// Head of the free-block list.
    pub(crate) freeblock: UnsafeCell<*mut u8>,
    /// Ring links in `usedpools`; `nextpool` also links `freepools` and
    /// `sharded`'s per-heap cache of empty pools.
    pub(crate) nextpool: UnsafeCell<*mut Pool>,
    pub(crate) prevpool: UnsafeCell<*mut Pool>,
    /// `sharded`: the owning heap; read by any thread freeing a block of
    /// the pool, written only while the pool is empty.
    pub(crate) owner: AtomicPtr<()>,
    /// Index of the arena this pool belongs to; set when the pool is
    /// carved, never changed.
    pub(crate) arenaindex: u32,
    /// Offset of the next never-used block.
    pub(crate) nextoffset: UnsafeCell<u32>,
    /// Largest offset at which a whole block still fits.
    pub(crate) maxnextoffset: UnsafeCell<u32>,
    /// Whether the pool is linked in its heap's `usedpools` ring.
    pub(crate) in_ring: UnsafeCell<bool>,
    /// `sharded`: whether the pool is its heap's *current* pool of its
    /// class, whose blocks the heap hands out from its own free list (out
    /// of any ring, like a full pool, but never treated as full or empty).
    pub(crate) current: UnsafeCell<bool>,
}

/// Size of a pool header before rounding to the geometry's alignment.
pub(crate) const POOL_HEADER_SIZE: usize = core::mem::size_of::<Pool>();
