//! Helpers shared by the integration tests: block tags and request shapes.
//!
//! A block is filled with the pattern of a 64-bit tag (the tag's eight
//! bytes, then its low byte repeated). The pattern at an offset does not
//! depend on the block's length, so the prefix a `realloc` keeps can be
//! checked against the old tag.

#![allow(dead_code)] // each test binary uses part of this module

pub mod collections;
pub mod fork;
pub mod stress;

use std::alloc::Layout;

use allocator::Geometry;
use rand::rngs::SmallRng;
use rand::Rng;

/// A tag naming the thread and the sequence number of an allocation.
pub fn tag(thread: usize, seq: u64) -> u64 {
    ((thread as u64 + 1) << 48) ^ seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 16
}

/// Fills `len` bytes at `p` with the pattern of `tag`.
///
/// # Safety
/// `p` must be writable for `len` bytes.
pub unsafe fn fill(p: *mut u8, len: usize, tag: u64) {
    let head = tag.to_le_bytes();
    let k = len.min(8);
    // SAFETY: both writes stay within the `len` bytes the caller gave us.
    unsafe {
        core::ptr::copy_nonoverlapping(head.as_ptr(), p, k);
        p.add(k).write_bytes(tag as u8, len - k);
    }
}

/// Whether the first `len` bytes at `p` still hold the pattern of `tag`.
///
/// # Safety
/// `p` must be readable for `len` bytes.
pub unsafe fn holds(p: *const u8, len: usize, tag: u64) -> bool {
    // SAFETY: the caller guarantees `len` readable bytes.
    let s = unsafe { core::slice::from_raw_parts(p, len) };
    let k = len.min(8);
    s[..k] == tag.to_le_bytes()[..k] && s[k..].iter().all(|&b| b == tag as u8)
}

/// A request mixing the pool path (mostly), the raw path, and alignments
/// beyond what a class guarantees.
pub fn random_layout(rng: &mut SmallRng, g: &Geometry) -> Layout {
    let (size, align) = match rng.random_range(0..100) {
        0..=69 => (rng.random_range(0..=512), 1 << rng.random_range(0..=3)),
        70..=79 => {
            let idx = rng.random_range(0..g.nclasses());
            (g.class_size(idx), 8)
        }
        80..=87 => (rng.random_range(513..=4000), 8),
        88..=94 => (rng.random_range(0..=512), 16),
        95..=98 => (rng.random_range(0..=256), 32),
        _ => (rng.random_range(0..=64), 4096),
    };
    Layout::from_size_align(size, align).unwrap()
}
