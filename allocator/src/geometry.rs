//! Geometry: the sizes that shape a pymalloc heap, as a value.
//!
//! CPython fixes these at compile time; here they are a `Geometry` so one
//! build can compare the classic design (256 KiB arenas, 4 KiB pools, 8-byte
//! size-class steps) with the modern one (1 MiB / 16 KiB / 16 B, CPython
//! 3.10+ on 64-bit). Every allocator in this crate takes one, and all of them
//! derive their size classes from it the same way, so a comparison between
//! them measures concurrency strategy, never size classes.

use crate::pool_header::POOL_HEADER_SIZE;

/// Requests up to this many bytes are served from pools
/// (CPython's `SMALL_REQUEST_THRESHOLD`).
pub const SMALL_REQUEST_THRESHOLD: usize = 512;

/// The most size classes any geometry can have (512 / 8).
pub const MAX_CLASSES: usize = SMALL_REQUEST_THRESHOLD / 8;

/// The most pools one arena may hold; bounds the fixed `nfp2lasta` table.
pub const MAX_POOLS_PER_ARENA: usize = 256;

/// The sizes of arenas, pools and size-class steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Geometry {
    /// Bytes mapped from the OS at a time (`ARENA_SIZE`).
    pub arena_size: usize,
    /// Bytes per pool, a power of two; pools are aligned to it (`POOL_SIZE`).
    pub pool_size: usize,
    /// Step between size classes and the alignment every block gets
    /// (`ALIGNMENT`): 8 or 16.
    pub alignment: usize,
}

/// Why a [`Geometry`] cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GeometryError(pub &'static str);

impl core::fmt::Display for GeometryError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "invalid geometry: {}", self.0)
    }
}

impl std::error::Error for GeometryError {}

impl Geometry {
    /// The seed design: 256 KiB arenas, 4 KiB pools, 8-byte steps (64 classes).
    pub const CLASSIC: Geometry = Geometry {
        arena_size: 256 << 10,
        pool_size: 4 << 10,
        alignment: 8,
    };

    /// CPython 3.10+ on 64-bit: 1 MiB arenas, 16 KiB pools, 16-byte steps
    /// (32 classes).
    pub const MODERN: Geometry = Geometry {
        arena_size: 1 << 20,
        pool_size: 16 << 10,
        alignment: 16,
    };

    /// A deliberately small geometry for model checking: four 1 KiB pools
    /// per arena, so that pool-full, pool-empty and arena-release
    /// transitions happen within a handful of operations.
    pub const TINY: Geometry = Geometry {
        arena_size: 4 << 10,
        pool_size: 1 << 10,
        alignment: 16,
    };

    /// The default geometry of the allocators in this crate.
    pub const DEFAULT: Geometry = Geometry::CLASSIC;

    /// Looks a named geometry up: `classic`, `modern` or `tiny`.
    pub fn by_name(name: &str) -> Option<Geometry> {
        match name {
            "classic" => Some(Self::CLASSIC),
            "modern" => Some(Self::MODERN),
            "tiny" => Some(Self::TINY),
            _ => None,
        }
    }

    /// Checks the invariants the allocators rely on.
    pub const fn validate(&self) -> Result<(), GeometryError> {
        if !(self.alignment == 8 || self.alignment == 16) {
            return Err(GeometryError("alignment must be 8 or 16"));
        }
        if !self.pool_size.is_power_of_two() || self.pool_size < 1024 {
            return Err(GeometryError(
                "pool_size must be a power of two of at least 1 KiB",
            ));
        }
        if self.pool_size > u32::MAX as usize {
            return Err(GeometryError("pool_size must fit in 32 bits"));
        }
        if self.arena_size % self.pool_size != 0 || self.arena_size < 2 * self.pool_size {
            return Err(GeometryError(
                "arena_size must be a multiple of pool_size holding at least two pools",
            ));
        }
        if self.arena_size / self.pool_size > MAX_POOLS_PER_ARENA {
            return Err(GeometryError("at most 256 pools per arena"));
        }
        if self.pool_header_size() + SMALL_REQUEST_THRESHOLD > self.pool_size {
            return Err(GeometryError("pool_size too small for one 512-byte block"));
        }
        Ok(())
    }

    /// Number of size classes (`NB_SMALL_SIZE_CLASSES`).
    #[inline]
    pub const fn nclasses(&self) -> usize {
        SMALL_REQUEST_THRESHOLD / self.alignment
    }

    /// Block size of class `idx` (`INDEX2SIZE`).
    #[inline]
    pub const fn class_size(&self, idx: usize) -> usize {
        (idx + 1) * self.alignment
    }

    /// The class serving `size` bytes at alignment `align`, or `None` when
    /// the request belongs to the raw allocator: above the threshold, or
    /// more aligned than a block is guaranteed to be. A zero-size request
    /// gets the smallest class, as in CPython.
    #[inline]
    pub const fn class_of(&self, size: usize, align: usize) -> Option<usize> {
        if size > SMALL_REQUEST_THRESHOLD || align > self.alignment {
            return None;
        }
        let size = if size == 0 { 1 } else { size };
        Some((size - 1) >> self.alignment.trailing_zeros())
    }

    /// Bytes at the start of every pool taken by its header
    /// (`POOL_OVERHEAD`): the header rounded up to the alignment.
    #[inline]
    pub const fn pool_header_size(&self) -> usize {
        (POOL_HEADER_SIZE + self.alignment - 1) & !(self.alignment - 1)
    }

    /// Blocks of class `idx` in one pool (`NUMBLOCKS`).
    #[inline]
    pub const fn blocks_per_pool(&self, idx: usize) -> usize {
        (self.pool_size - self.pool_header_size()) / self.class_size(idx)
    }

    /// Bytes at the end of a pool of class `idx` too small for a block.
    #[inline]
    pub const fn pool_tail(&self, idx: usize) -> usize {
        (self.pool_size - self.pool_header_size()) % self.class_size(idx)
    }

    /// Pools in an arena whose base happens to be pool-aligned.
    #[inline]
    pub const fn pools_per_arena(&self) -> usize {
        self.arena_size / self.pool_size
    }
}

/// A geometry's size classes as a table, for the fast paths: the class of
/// a request is one byte load indexed by its size in 8-byte granules, and
/// no variable shift (which would tie up `cl` on x86-64).
#[derive(Clone, Copy, Debug)]
pub(crate) struct SizeClasses {
    /// The geometry's alignment: requests needing more go raw.
    alignment: usize,
    /// Class of a request of `8 * g - 7 ..= 8 * g` bytes at `[g]`.
    by_granule: [u8; SMALL_REQUEST_THRESHOLD / 8 + 1],
}

impl SizeClasses {
    /// The table of `g`.
    pub(crate) const fn new(g: &Geometry) -> SizeClasses {
        let mut by_granule = [0u8; SMALL_REQUEST_THRESHOLD / 8 + 1];
        let mut k = 1;
        while k < by_granule.len() {
            by_granule[k] = ((8 * k - 1) / g.alignment) as u8;
            k += 1;
        }
        SizeClasses {
            alignment: g.alignment,
            by_granule,
        }
    }

    /// Same as [`Geometry::class_of`].
    #[inline(always)]
    pub(crate) fn class_of(&self, size: usize, align: usize) -> Option<usize> {
        if size > SMALL_REQUEST_THRESHOLD || align > self.alignment {
            return None;
        }
        // SAFETY: `size <= 512`, so the index is at most 64, in bounds.
        Some(unsafe { *self.by_granule.get_unchecked((size + 7) >> 3) } as usize)
    }
}

impl Default for Geometry {
    fn default() -> Self {
        Self::DEFAULT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_geometries_are_valid() {
        for g in [Geometry::CLASSIC, Geometry::MODERN, Geometry::TINY] {
            g.validate().unwrap();
        }
        assert_eq!(Geometry::CLASSIC.nclasses(), 64);
        assert_eq!(Geometry::MODERN.nclasses(), 32);
    }

    #[test]
    fn size_classes_match_pymalloc() {
        for g in [Geometry::CLASSIC, Geometry::MODERN] {
            let c42 = g.class_of(42, 1).unwrap();
            assert_eq!(g.class_size(c42), 48, "42 -> 48 in {g:?}");
            assert_eq!(g.class_size(g.class_of(512, 8).unwrap()), 512);
            assert_eq!(g.class_of(513, 8), None, "513 goes to the raw allocator");
            assert_eq!(
                g.class_of(0, 1),
                Some(0),
                "zero-size gets the smallest class"
            );
            assert_eq!(g.class_size(g.class_of(1, 1).unwrap()), g.alignment);
            assert_eq!(g.class_of(64, 4096), None, "page alignment goes raw");
            assert_eq!(g.class_of(64, 32), None, "32-byte alignment goes raw");
        }
        assert_eq!(Geometry::CLASSIC.class_of(8, 8), Some(0));
        assert_eq!(Geometry::CLASSIC.class_of(9, 8), Some(1));
        assert_eq!(
            Geometry::CLASSIC.class_of(16, 16),
            None,
            "classic guarantees 8"
        );
        assert_eq!(Geometry::MODERN.class_of(16, 16), Some(0));
        assert_eq!(Geometry::MODERN.class_of(17, 16), Some(1));
    }

    #[test]
    fn the_class_table_agrees_with_class_of() {
        for g in [Geometry::CLASSIC, Geometry::MODERN, Geometry::TINY] {
            let t = SizeClasses::new(&g);
            for size in 0..=600 {
                for align in [1, 2, 4, 8, 16, 32, 4096] {
                    assert_eq!(
                        t.class_of(size, align),
                        g.class_of(size, align),
                        "{g:?} {size} {align}"
                    );
                }
            }
        }
    }

    #[test]
    fn every_class_fits_and_is_aligned() {
        for g in [Geometry::CLASSIC, Geometry::MODERN, Geometry::TINY] {
            assert_eq!(g.pool_header_size() % g.alignment, 0);
            for idx in 0..g.nclasses() {
                assert!(g.blocks_per_pool(idx) >= 1);
                assert_eq!(
                    g.pool_header_size()
                        + g.blocks_per_pool(idx) * g.class_size(idx)
                        + g.pool_tail(idx),
                    g.pool_size
                );
            }
        }
    }

    #[test]
    fn bad_geometries_are_rejected() {
        let bad = [
            Geometry {
                alignment: 4,
                ..Geometry::CLASSIC
            },
            Geometry {
                pool_size: 3000,
                ..Geometry::CLASSIC
            },
            Geometry {
                arena_size: 5000,
                ..Geometry::CLASSIC
            },
            Geometry {
                arena_size: 4 << 20,
                pool_size: 4 << 10,
                alignment: 8,
            },
        ];
        for g in bad {
            assert!(g.validate().is_err(), "{g:?}");
        }
    }
}
