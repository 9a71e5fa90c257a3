//! Accounting: the breakdown of CPython's `sys._debugmallocstats()`.
//!
//! A [`Stats`] is a plain value with no heap storage of its own, so taking
//! one never calls the global allocator (which may be the allocator being
//! measured, with its lock held). The byte categories from
//! `allocated_blocks` to `arena_alignment` partition `mapped` exactly, the
//! same identity CPython asserts; [`Bytes::check`] tests it.

use crate::geometry::{Geometry, MAX_CLASSES};

/// Per-size-class figures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClassStats {
    /// Block size in bytes.
    pub size: usize,
    /// Pools of this class holding at least one block (used + full).
    pub pools: usize,
    /// Of those, pools with no free block.
    pub full_pools: usize,
    /// Blocks handed out and not yet freed back to their pool.
    pub blocks_in_use: usize,
    /// Blocks free inside those pools, on a free list or never used.
    pub available_blocks: usize,
}

/// Bytes held from the OS, partitioned as `_debugmallocstats` does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bytes {
    /// Blocks in use × block size ("bytes in allocated blocks").
    pub allocated_blocks: usize,
    /// Free blocks inside used pools × block size.
    pub available_blocks: usize,
    /// Empty pools, including pools never carved from their arena.
    pub empty_pools: usize,
    /// Pool headers of used and full pools.
    pub pool_headers: usize,
    /// Pool tails too small for one more block.
    pub quantization: usize,
    /// Pools lost because an arena's base was not pool-aligned.
    pub arena_alignment: usize,
    /// Arenas × arena size: what the above add up to.
    pub mapped: usize,
}

impl Bytes {
    /// Sum of the categories that partition `mapped`.
    pub fn categorised(&self) -> usize {
        self.allocated_blocks
            + self.available_blocks
            + self.empty_pools
            + self.pool_headers
            + self.quantization
            + self.arena_alignment
    }

    /// Whether the categories add up exactly to `mapped`.
    pub fn check(&self) -> Result<(), String> {
        if self.categorised() == self.mapped {
            Ok(())
        } else {
            Err(format!(
                "accounting identity broken: categories sum to {} but {} bytes are mapped ({self:?})",
                self.categorised(),
                self.mapped
            ))
        }
    }
}

/// Counters of the allocator-specific machinery; zero where it does not apply.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Extra {
    /// `tcache`: blocks parked in thread caches (counted as allocated by the core).
    pub cached_blocks: usize,
    /// `sharded`: heaps owned by live threads.
    pub live_heaps: usize,
    /// `sharded`: heaps whose thread exited.
    pub abandoned_heaps: usize,
    /// `sharded`: pools taken over from an abandoned heap.
    pub pools_adopted: u64,
    /// `sharded`: frees pushed onto another thread's pool.
    pub remote_frees_pushed: u64,
    /// `sharded`: remotely freed blocks taken back by their owner.
    pub remote_frees_collected: u64,
}

/// A snapshot of one allocator's memory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stats {
    /// The geometry the allocator runs.
    pub geometry: Geometry,
    /// Entries `0..nclasses` of `classes` are meaningful.
    pub nclasses: usize,
    /// Per-class figures, indexed by size class.
    pub classes: [ClassStats; MAX_CLASSES],
    /// Arenas ever mapped.
    pub arenas_allocated_total: u64,
    /// Arenas returned to the OS.
    pub arenas_reclaimed: u64,
    /// Most arenas mapped at once.
    pub arenas_highwater: usize,
    /// Arenas mapped now.
    pub arenas_current: usize,
    /// Pools with some blocks free and some in use.
    pub pools_used: usize,
    /// Pools with no free block.
    pub pools_full: usize,
    /// Pools with no block in use, including never-carved ones.
    pub pools_empty: usize,
    /// The partition of `mapped`.
    pub bytes: Bytes,
    /// Bytes callers asked for and have not freed (from `Layout::size`),
    /// small and raw requests together.
    pub requested_live: usize,
    /// Requests passed to the raw (system) allocator and not yet freed.
    pub raw_live_allocs: usize,
    /// Bytes of those requests.
    pub raw_live_bytes: usize,
    /// Allocator-specific counters.
    pub extra: Extra,
}

impl Stats {
    /// An empty snapshot for `geometry`, with class sizes filled in.
    pub fn empty(geometry: Geometry) -> Stats {
        let mut classes = [ClassStats::default(); MAX_CLASSES];
        for (idx, c) in classes.iter_mut().enumerate().take(geometry.nclasses()) {
            c.size = geometry.class_size(idx);
        }
        Stats {
            geometry,
            nclasses: geometry.nclasses(),
            classes,
            arenas_allocated_total: 0,
            arenas_reclaimed: 0,
            arenas_highwater: 0,
            arenas_current: 0,
            pools_used: 0,
            pools_full: 0,
            pools_empty: 0,
            bytes: Bytes::default(),
            requested_live: 0,
            raw_live_allocs: 0,
            raw_live_bytes: 0,
            extra: Extra::default(),
        }
    }

    /// The meaningful per-class entries.
    pub fn classes(&self) -> &[ClassStats] {
        &self.classes[..self.nclasses]
    }

    /// Blocks in use over all classes.
    pub fn blocks_in_use(&self) -> usize {
        self.classes().iter().map(|c| c.blocks_in_use).sum()
    }

    /// Bytes held from the OS: arenas mapped plus raw requests live.
    pub fn held(&self) -> usize {
        self.bytes.mapped + self.raw_live_bytes
    }

    /// Memory held per byte requested live (1.0 is perfect); `None` when
    /// nothing is live.
    pub fn fragmentation(&self) -> Option<f64> {
        (self.requested_live > 0).then(|| self.held() as f64 / self.requested_live as f64)
    }
}

impl core::fmt::Display for Stats {
    /// Renders a table in the manner of `sys._debugmallocstats()`.
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        writeln!(f, "class   size   num pools   blocks in use  avail blocks")?;
        writeln!(f, "-----   ----   ---------   -------------  ------------")?;
        for (idx, c) in self.classes().iter().enumerate() {
            if c.pools == 0 {
                continue;
            }
            writeln!(
                f,
                "{idx:5} {:6} {:11} {:15} {:13}",
                c.size, c.pools, c.blocks_in_use, c.available_blocks
            )?;
        }
        let b = &self.bytes;
        let rows: [(&str, usize); 12] = [
            (
                "# arenas allocated total",
                self.arenas_allocated_total as usize,
            ),
            ("# arenas reclaimed", self.arenas_reclaimed as usize),
            ("# arenas highwater mark", self.arenas_highwater),
            ("# arenas allocated current", self.arenas_current),
            ("bytes in allocated blocks", b.allocated_blocks),
            ("bytes in available blocks", b.available_blocks),
            ("bytes in empty pools", b.empty_pools),
            ("bytes lost to pool headers", b.pool_headers),
            ("bytes lost to quantization", b.quantization),
            ("bytes lost to arena alignment", b.arena_alignment),
            ("bytes mapped (arenas)", b.mapped),
            ("bytes requested live", self.requested_live),
        ];
        for (name, v) in rows {
            writeln!(f, "{name:<34} = {v:>15}")?;
        }
        write!(
            f,
            "{:<34} = {:>15}",
            "bytes in raw allocations", self.raw_live_bytes
        )
    }
}
