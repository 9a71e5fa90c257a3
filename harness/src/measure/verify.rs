//! Block verification: every block carries a tag, checked before it dies.
//!
//! Verification is its own pass over the same tape as the measured one
//! (`worker.rs`'s verify loop), never part of the throughput pass, so it
//! does not change the memory traffic being measured. In that pass a fresh
//! block gets a tag, a 64-bit value derived from (thread, sequence number)
//! by a SplitMix64 finaliser, so tags of neighbouring blocks differ in every
//! byte. The tag is written as 8-byte words over the block's first
//! [`SPAN`] bytes and its last word; the tag itself is kept outside the
//! block (in the worker's slot table), so a block handed out twice, or
//! overwritten by the allocator's own metadata, is caught: whoever wrote
//! last, the other owner's check fails. A block is checked before it is
//! freed, handed to another thread, reallocated or drained; after a
//! `realloc` its first `min(old, new)` bytes must still hold the old
//! pattern.

use std::ptr;

/// Bytes at the head of a block that carry the pattern (plus its last 8).
pub const SPAN: usize = 4096;

/// A pattern mismatch inside a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// Offset of the first byte that differs.
    pub offset: usize,
    /// The byte expected there.
    pub expected: u8,
    /// The byte found.
    pub found: u8,
}

/// The tag of the `seq`-th block of `thread`.
#[inline]
pub fn tag(thread: usize, seq: u64) -> u64 {
    let mut z = ((thread as u64) << 48 ^ seq).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Whether `ptr` is aligned to `align` (a power of two).
#[inline]
pub fn aligned(ptr: *const u8, align: usize) -> bool {
    (ptr as usize) & (align - 1) == 0
}

/// The byte ranges of a `size`-byte block that carry the pattern: the head
/// and, for blocks longer than the head, the last 8 bytes.
fn ranges(size: usize) -> [(usize, usize); 2] {
    let head = size.min(SPAN);
    let tail = if size > head {
        (size.saturating_sub(8).max(head), size)
    } else {
        (size, size)
    };
    [(0, head), tail]
}

/// The pattern byte at offset `i`: the tag's bytes repeat through the block.
#[inline]
fn byte_at(tag: u64, i: usize) -> u8 {
    tag.to_le_bytes()[i % 8]
}

/// Writes the tag pattern into a fresh block of `size` bytes.
///
/// # Safety
/// `p` must be valid for writes of `size` bytes.
pub unsafe fn fill(p: *mut u8, size: usize, tag: u64) {
    for (from, to) in ranges(size) {
        let mut i = from;
        while i < to && i % 8 != 0 {
            // SAFETY: `i < to <= size`.
            unsafe { p.add(i).write(byte_at(tag, i)) };
            i += 1;
        }
        while i + 8 <= to {
            // SAFETY: `[i, i + 8)` is inside the block; unaligned write.
            unsafe { ptr::write_unaligned(p.add(i) as *mut u64, tag) };
            i += 8;
        }
        while i < to {
            // SAFETY: `i < to <= size`.
            unsafe { p.add(i).write(byte_at(tag, i)) };
            i += 1;
        }
    }
}

/// Checks the pattern a block of `size` bytes was filled with, over its
/// first `upto` bytes (the whole block before a free; `min(old, new)`
/// after a realloc).
///
/// # Safety
/// `p` must be valid for reads of `min(size, upto)` bytes.
pub unsafe fn check(p: *const u8, size: usize, tag: u64, upto: usize) -> Result<(), Mismatch> {
    let end = size.min(upto);
    for (from, to) in ranges(size) {
        let to = to.min(end);
        let mut i = from;
        while i < to {
            if i % 8 == 0 && i + 8 <= to {
                // SAFETY: `[i, i + 8)` is inside the readable range.
                let word = unsafe { ptr::read_unaligned(p.add(i) as *const u64) };
                if word == tag {
                    i += 8;
                    continue;
                }
            }
            // SAFETY: `i < to <= end`.
            let b = unsafe { p.add(i).read() };
            if b != byte_at(tag, i) {
                return Err(Mismatch {
                    offset: i,
                    expected: byte_at(tag, i),
                    found: b,
                });
            }
            i += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_differ_per_thread_and_sequence() {
        assert_ne!(tag(0, 0), tag(0, 1));
        assert_ne!(tag(0, 0), tag(1, 0));
    }

    #[test]
    fn fill_then_check_passes_and_a_changed_byte_is_found() {
        for size in [1usize, 7, 8, 13, 64, SPAN, SPAN + 3, 3 * SPAN] {
            let mut buf = vec![0u8; size];
            let t = tag(3, 9);
            // SAFETY: `buf` holds `size` bytes.
            unsafe { fill(buf.as_mut_ptr(), size, t) };
            // SAFETY: as above.
            unsafe { check(buf.as_ptr(), size, t, usize::MAX) }.unwrap();
            let at = size - 1;
            buf[at] ^= 0xFF;
            // SAFETY: as above.
            let m = unsafe { check(buf.as_ptr(), size, t, usize::MAX) }.unwrap_err();
            assert_eq!(m.offset, at, "size {size}");
            // SAFETY: as above.
            let other = unsafe { check(buf.as_ptr(), size, tag(3, 10), usize::MAX) };
            assert!(other.is_err(), "another tag never passes");
        }
    }

    #[test]
    fn prefix_check_ignores_bytes_past_the_new_size() {
        let mut buf = vec![0u8; 100];
        let t = tag(1, 1);
        // SAFETY: `buf` holds 100 bytes.
        unsafe { fill(buf.as_mut_ptr(), 100, t) };
        buf[60] ^= 1;
        // SAFETY: as above.
        assert!(unsafe { check(buf.as_ptr(), 100, t, 50) }.is_ok());
        // SAFETY: as above.
        assert!(unsafe { check(buf.as_ptr(), 100, t, 61) }.is_err());
    }

    #[test]
    fn alignment() {
        assert!(aligned(64 as *const u8, 64));
        assert!(!aligned(72 as *const u8, 16));
    }
}
