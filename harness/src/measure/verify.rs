//! Block verification: every block carries a tag, checked before it dies.
//!
//! A block's tag is a 64-bit value derived from (thread, sequence number)
//! by a SplitMix64 finaliser, so tags of neighbouring blocks differ in every
//! byte and a stale or overlapping block cannot pass for the right one. The
//! tag's eight bytes repeat through the block: byte `i` holds tag byte
//! `i % 8`. Which bytes are written:
//!
//! - the *head*, `[0, min(touch_bytes, size))`: the workload's touch, which
//!   writes the tag pattern whether or not verification is on;
//! - with verification on, also the first and last 8 bytes (or the whole
//!   block when it is smaller), so that overruns by the allocator at either
//!   end are caught even when the workload touches nothing.
//!
//! Every write and read is volatile: the optimiser may not drop the touch of
//! a block that is then freed, which is exactly what it would like to do.
//! Before a block is freed (locally, remotely, or at drain) its pattern is
//! checked; after `realloc` the first `min(old, new)` bytes must still hold
//! the old pattern. Alignment is checked on every allocation and realloc.

use std::ptr;

/// What a block was filled with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fill {
    pub tag: u64,
    /// Length of the patterned head.
    pub head: usize,
    /// Whether the last 8 bytes also carry the pattern.
    pub tail: bool,
}

/// A pattern mismatch inside a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// Offset of the 8-byte window holding the first wrong byte.
    pub offset: usize,
    /// The tag expected there.
    pub expected: u64,
    /// What the window held (bytes outside the checked range shown as expected).
    pub found: u64,
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

/// Writes the tag pattern over `[from, to)` of the block at `p`.
///
/// # Safety
/// `p` must be valid for writes of `to` bytes.
#[inline]
unsafe fn write_pattern(p: *mut u8, from: usize, to: usize, tag: u64) {
    let bytes = tag.to_le_bytes();
    let mut i = from;
    while i < to && i % 8 != 0 {
        // SAFETY: `i < to`, inside the block (caller's contract).
        unsafe { ptr::write_volatile(p.add(i), bytes[i % 8]) };
        i += 1;
    }
    while i + 8 <= to {
        // SAFETY: `[i, i + 8)` is inside the block; `[u8; 8]` has alignment 1.
        unsafe { ptr::write_volatile(p.add(i) as *mut [u8; 8], bytes) };
        i += 8;
    }
    while i < to {
        // SAFETY: `i < to`, inside the block.
        unsafe { ptr::write_volatile(p.add(i), bytes[i % 8]) };
        i += 1;
    }
}

/// Checks the tag pattern over `[from, to)`.
///
/// # Safety
/// `p` must be valid for reads of `to` bytes.
unsafe fn check_pattern(p: *const u8, from: usize, to: usize, tag: u64) -> Result<(), Mismatch> {
    let bytes = tag.to_le_bytes();
    for i in from..to {
        // SAFETY: `i < to`, inside the block.
        let b = unsafe { ptr::read_volatile(p.add(i)) };
        if b != bytes[i % 8] {
            let window = i - i % 8;
            let mut found = bytes;
            for (j, f) in found.iter_mut().enumerate() {
                let pos = window + j;
                if (from..to).contains(&pos) {
                    // SAFETY: `pos` is inside the checked range, inside the block.
                    *f = unsafe { ptr::read_volatile(p.add(pos)) };
                }
            }
            return Err(Mismatch {
                offset: window,
                expected: tag,
                found: u64::from_le_bytes(found),
            });
        }
    }
    Ok(())
}

/// Touches a fresh block of `size` bytes: `passes` passes of the tag pattern
/// over the first `touch` bytes, plus (when `verify`) its first and last 8.
///
/// # Safety
/// `p` must be valid for writes of `size` bytes.
#[inline]
pub unsafe fn fill(
    p: *mut u8,
    size: usize,
    touch: usize,
    passes: u32,
    verify: bool,
    tag: u64,
) -> Fill {
    let mut head = touch.min(size);
    for _ in 0..passes {
        // SAFETY: `head <= size`.
        unsafe { write_pattern(p, 0, head, tag) };
    }
    let mut tail = false;
    if verify {
        if head < size.min(8) {
            // SAFETY: `size.min(8) <= size`.
            unsafe { write_pattern(p, head, size.min(8), tag) };
            head = size.min(8);
        }
        if size > head {
            // SAFETY: `size - 8 >= 0` since `size > head >= 8` here.
            unsafe { write_pattern(p, head.max(size - 8), size, tag) };
            tail = true;
        }
    }
    Fill { tag, head, tail }
}

/// Checks a block's pattern over its first `upto` bytes (the whole block
/// before a free; `min(old, new)` after a realloc).
///
/// # Safety
/// `p` must be valid for reads of `min(size, upto)` bytes, where `size` is
/// the size the block was filled at.
pub unsafe fn check(p: *const u8, size: usize, fill: Fill, upto: usize) -> Result<(), Mismatch> {
    let end = size.min(upto);
    // SAFETY: `fill.head <= size`, clipped to `end`.
    unsafe { check_pattern(p, 0, fill.head.min(end), fill.tag) }?;
    if fill.tail {
        let from = fill.head.max(size - 8);
        if from < end {
            // SAFETY: `[from, end)` is inside the readable range.
            unsafe { check_pattern(p, from, end, fill.tag) }?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_differ_per_thread_and_sequence() {
        assert_ne!(tag(0, 1), tag(1, 1));
        assert_ne!(tag(0, 1), tag(0, 2));
        assert_eq!(tag(3, 9), tag(3, 9));
    }

    #[test]
    fn fill_then_check_passes_and_a_flipped_byte_is_found() {
        for size in [1usize, 5, 8, 13, 64, 100] {
            for touch in [0usize, 3, 16, 1000] {
                let mut buf = vec![0u8; size];
                let t = tag(1, size as u64);
                // SAFETY: `buf` holds `size` bytes.
                let f = unsafe { fill(buf.as_mut_ptr(), size, touch, 2, true, t) };
                // SAFETY: as above.
                assert_eq!(unsafe { check(buf.as_ptr(), size, f, usize::MAX) }, Ok(()));
                // The first and last bytes are always covered.
                for victim in [0, size - 1] {
                    buf[victim] ^= 0x40;
                    // SAFETY: as above.
                    let err = unsafe { check(buf.as_ptr(), size, f, usize::MAX) }
                        .expect_err("corruption must be caught");
                    assert_eq!(err.offset, victim - victim % 8);
                    assert_eq!(err.expected, t);
                    assert_ne!(err.found, t);
                    buf[victim] ^= 0x40;
                }
            }
        }
    }

    #[test]
    fn prefix_check_ignores_bytes_past_the_new_size() {
        let mut buf = vec![0u8; 64];
        // SAFETY: `buf` holds 64 bytes.
        let f = unsafe { fill(buf.as_mut_ptr(), 64, 0, 1, true, tag(2, 2)) };
        buf[40] = !buf[40];
        buf[63] = !buf[63];
        // SAFETY: as above.
        assert!(unsafe { check(buf.as_ptr(), 64, f, 32) }.is_ok());
        // SAFETY: as above.
        assert!(unsafe { check(buf.as_ptr(), 64, f, 64) }.is_err());
    }

    #[test]
    fn alignment() {
        assert!(aligned(64 as *const u8, 16));
        assert!(!aligned(72 as *const u8, 16));
    }
}
