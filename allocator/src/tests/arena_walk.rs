//! Test-only views of an [`Arenas`]: its `usable_arenas` list, each arena's
//! pools, and the invariant checker the transition and shadow tests call
//! after every operation.
//!
//! This is a child module of `arena` (declared there under `cfg(test)`) so
//! that it can read the private list links and `nfp2lasta` without the
//! arena code exporting anything for tests.

use super::{Arenas, NONE};
use crate::geometry::MAX_POOLS_PER_ARENA;
use crate::pool::Pool;
use crate::sync::Ordering;

/// One live arena as the tests see it.
#[derive(Clone, Debug)]
pub(crate) struct ArenaView {
    pub(crate) index: u32,
    pub(crate) address: usize,
    pub(crate) nfreepools: usize,
    pub(crate) ntotalpools: usize,
    /// Pools carved so far, in address order.
    pub(crate) carved: Vec<*mut Pool>,
    /// The `freepools` list, head first.
    pub(crate) freepools: Vec<*mut Pool>,
}

impl Arenas {
    /// Every live arena, in table order.
    pub(crate) fn views(&self) -> Vec<ArenaView> {
        let g = self.g;
        let mut out = Vec::new();
        for i in 0..self.cap as u32 {
            // SAFETY: `i` is below `cap`; a slot with a non-zero address is a
            // live arena whose carved pools and `freepools` links are valid.
            unsafe {
                let ao = &*self.ao(i);
                if ao.address == 0 {
                    continue;
                }
                let first = ao.address.next_multiple_of(g.pool_size);
                let carved = (first..ao.pool_address)
                    .step_by(g.pool_size)
                    .map(|a| a as *mut Pool)
                    .collect();
                let mut freepools = Vec::new();
                let mut p = ao.freepools;
                while !p.is_null() && freepools.len() <= ao.ntotalpools as usize {
                    freepools.push(p);
                    p = (*p).nextpool.get();
                }
                out.push(ArenaView {
                    index: i,
                    address: ao.address,
                    nfreepools: ao.nfreepools as usize,
                    ntotalpools: ao.ntotalpools as usize,
                    carved,
                    freepools,
                });
            }
        }
        out
    }

    /// The `usable_arenas` list as arena indices, head first; stops (and
    /// the checker reports it) if the list loops.
    pub(crate) fn usable_order(&self) -> Vec<u32> {
        let mut out = Vec::new();
        let mut i = self.usable;
        while i != NONE && out.len() <= self.cap {
            out.push(i);
            // SAFETY: list members are slots below `cap` (checked by `check`).
            i = unsafe { (*self.ao(i)).nextarena };
        }
        out
    }

    /// Free pools of arena `i` (for tests that watch one arena).
    pub(crate) fn nfreepools_of(&self, i: u32) -> usize {
        // SAFETY: tests pass the index of a live arena taken from a pool header.
        unsafe { (*self.ao(i)).nfreepools as usize }
    }

    /// Checks every invariant of the arena table and `usable_arenas`:
    ///
    /// - the list is doubly linked consistently, holds live arenas only, with
    ///   `0 < nfreepools <= ntotalpools`, sorted by `nfreepools` ascending;
    /// - `nfp2lasta[n]` is the last arena of the list with `n` free pools,
    ///   or none when no arena has `n`;
    /// - every live arena off the list has no free pool;
    /// - `nfreepools` = pools on `freepools` + pools never carved, and every
    ///   pool on `freepools` is an empty carved pool of that arena;
    /// - a wholly free arena is only kept as the list's last (bpo-37257);
    /// - `arenas_current` counts the live arenas; the unused-slot list holds
    ///   exactly the dead slots.
    pub(crate) fn check(&self) -> Result<(), String> {
        let g = self.g;
        let order = self.usable_order();
        if order.len() > self.cap {
            return Err("usable_arenas loops".into());
        }
        let mut prev = NONE;
        let mut last_with = [NONE; MAX_POOLS_PER_ARENA + 1];
        let mut last_nf = 0usize;
        for (pos, &i) in order.iter().enumerate() {
            if i as usize >= self.cap {
                return Err(format!("usable_arenas holds slot {i} beyond the table"));
            }
            // SAFETY: `i` is below `cap`.
            let ao = unsafe { &*self.ao(i) };
            if ao.address == 0 {
                return Err(format!("usable_arenas holds dead slot {i}"));
            }
            if ao.prevarena != prev {
                return Err(format!(
                    "arena {i}: prevarena {} but the list has {prev} before it",
                    ao.prevarena
                ));
            }
            let nf = ao.nfreepools as usize;
            if nf == 0 || nf > ao.ntotalpools as usize {
                return Err(format!(
                    "arena {i} on usable_arenas with {nf} free of {} pools",
                    ao.ntotalpools
                ));
            }
            if nf < last_nf {
                return Err(format!(
                    "usable_arenas not sorted ascending: {last_nf} then {nf} (position {pos})"
                ));
            }
            if nf == ao.ntotalpools as usize && pos + 1 != order.len() {
                return Err(format!(
                    "arena {i} is wholly free but not the last usable one, so it should have been released"
                ));
            }
            last_nf = nf;
            last_with[nf] = i;
            prev = i;
        }
        if self.nfp2lasta != last_with {
            let bad: Vec<_> = (0..=MAX_POOLS_PER_ARENA)
                .filter(|&n| self.nfp2lasta[n] != last_with[n])
                .map(|n| (n, self.nfp2lasta[n], last_with[n]))
                .collect();
            return Err(format!(
                "nfp2lasta wrong at (count, has, should) {bad:?}; list {order:?}"
            ));
        }
        let mut live = 0;
        for v in self.views() {
            live += 1;
            if !order.contains(&v.index) && v.nfreepools != 0 {
                return Err(format!(
                    "arena {} has {} free pools but is not on usable_arenas",
                    v.index, v.nfreepools
                ));
            }
            let never_carved = v.ntotalpools - v.carved.len();
            if v.freepools.len() + never_carved != v.nfreepools {
                return Err(format!(
                    "arena {}: nfreepools {} but {} on freepools + {} never carved",
                    v.index,
                    v.nfreepools,
                    v.freepools.len(),
                    never_carved
                ));
            }
            for &p in &v.freepools {
                if !v.carved.contains(&p) {
                    return Err(format!(
                        "arena {}: free pool {p:?} not carved from it",
                        v.index
                    ));
                }
                // SAFETY: carved pools of a live arena have valid headers.
                let (rc, ai, ring) = unsafe {
                    (
                        (*p).ref_count.load(Ordering::Relaxed),
                        (*p).arenaindex,
                        (*p).in_ring.get(),
                    )
                };
                if rc != 0 || ai != v.index || ring {
                    return Err(format!(
                        "arena {}: pool {p:?} on freepools with ref_count {rc}, arenaindex {ai}, in_ring {ring}",
                        v.index
                    ));
                }
            }
            let excess = v.address & (g.pool_size - 1);
            let expect_total = g.pools_per_arena() - usize::from(excess != 0);
            if v.ntotalpools != expect_total {
                return Err(format!(
                    "arena {}: ntotalpools {} but its alignment allows {expect_total}",
                    v.index, v.ntotalpools
                ));
            }
        }
        if live != self.current {
            return Err(format!(
                "arenas_current {} but {live} arenas live",
                self.current
            ));
        }
        let mut unused = 0;
        let mut i = self.unused;
        while i != NONE {
            if i as usize >= self.cap || unused > self.cap {
                return Err("unused-slot list is broken".into());
            }
            // SAFETY: `i` is below `cap`.
            let ao = unsafe { &*self.ao(i) };
            if ao.address != 0 {
                return Err(format!("live arena {i} on the unused-slot list"));
            }
            unused += 1;
            i = ao.nextarena;
        }
        if unused + live != self.cap {
            return Err(format!(
                "{unused} unused + {live} live slots but the table has {}",
                self.cap
            ));
        }
        Ok(())
    }
}
