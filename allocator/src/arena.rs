//! Arenas: chunks mapped from the OS and carved into pools.
//!
//! As in CPython, arena objects live in a table apart from the arenas
//! themselves (here an `mmap`ed array grown by doubling, addressed by
//! index so growing it never invalidates anything). `usable_arenas` is a
//! doubly linked list of the arenas that still have a free pool, sorted by
//! number of free pools ascending: pools are taken from the head, the
//! fullest arena, so that nearly empty arenas get the chance to drain and be
//! returned to the OS. `nfp2lasta[n]` is the last arena in the list with
//! `n` free pools, which keeps the list sorted in O(1) per update. An arena
//! whose pools are all free is unmapped, except the last arena of the list
//! (CPython bpo-37257: keeping one avoids map/unmap thrashing when a
//! program allocates and frees a single object in a loop).
//!
//! Every arena's pages are recorded in the process-wide `arena_map` while
//! it is mapped, so that a bare address can be told to be ours.
//!
//! `Arenas` is not synchronised: `gil`, `locked` and `tcache` keep it under
//! their one lock, `sharded` under its arena lock (a slow path only).

use core::ptr::null_mut;

use crate::arena_map;
use crate::geometry::{Geometry, MAX_POOLS_PER_ARENA};
use crate::os;
use crate::pool::{self, Pool};
use crate::stats::Stats;
use crate::sync::Ordering;

/// "No arena" in index links.
const NONE: u32 = u32::MAX;

/// Arena objects in a table on its first mapping.
const INITIAL_TABLE: usize = 16;

/// One arena's bookkeeping (CPython `struct arena_object`).
#[derive(Clone, Copy)]
struct ArenaObject {
    /// Base of the mapping; 0 while the slot is unused.
    address: usize,
    /// Next never-carved pool.
    pool_address: usize,
    /// Free pools: on `freepools` or never carved.
    nfreepools: u32,
    /// Pools the arena can hold (one less if its base is not pool-aligned).
    ntotalpools: u32,
    /// Singly linked list of empty pools, through `nextpool`.
    freepools: *mut Pool,
    /// Links in `usable_arenas`; `nextarena` also links unused slots.
    nextarena: u32,
    prevarena: u32,
}

/// The arena table and the `usable_arenas` list.
pub(crate) struct Arenas {
    g: Geometry,
    table: *mut ArenaObject,
    cap: usize,
    /// Head of the list of unused table slots.
    unused: u32,
    /// Head of `usable_arenas`.
    usable: u32,
    nfp2lasta: [u32; MAX_POOLS_PER_ARENA + 1],
    allocated_total: u64,
    reclaimed: u64,
    current: usize,
    highwater: usize,
}

// SAFETY: `Arenas` owns its mappings; the raw pointers are not shared with
// other threads except through the lock of the allocator that owns it.
unsafe impl Send for Arenas {}

impl Arenas {
    crate::const_fn! {
        /// An empty set of arenas; nothing is mapped until the first pool is needed.
        pub(crate) fn new(g: Geometry) -> Arenas {
            Arenas {
                g,
                table: null_mut(),
                cap: 0,
                unused: NONE,
                usable: NONE,
                nfp2lasta: [NONE; MAX_POOLS_PER_ARENA + 1],
                allocated_total: 0,
                reclaimed: 0,
                current: 0,
                highwater: 0,
            }
        }
    }

    /// # Safety
    /// `i` must be a slot index below `cap`.
    #[inline]
    unsafe fn ao(&self, i: u32) -> *mut ArenaObject {
        // SAFETY: the caller keeps `i` in bounds of the mapped table.
        unsafe { self.table.add(i as usize) }
    }

    fn table_bytes(cap: usize) -> usize {
        (cap * core::mem::size_of::<ArenaObject>() + 4095) & !4095
    }

    /// Doubles the table; new slots go on the unused list. False on OOM.
    fn grow_table(&mut self) -> bool {
        let new_cap = if self.cap == 0 {
            INITIAL_TABLE
        } else {
            self.cap * 2
        };
        if new_cap > NONE as usize {
            return false;
        }
        let new = os::map(Self::table_bytes(new_cap)).cast::<ArenaObject>();
        if new.is_null() {
            return false;
        }
        // SAFETY: both tables are mapped; the old one holds `cap` initialised
        // objects and the new one has room for `new_cap`. Links are indices,
        // so copying keeps them valid.
        unsafe {
            if !self.table.is_null() {
                core::ptr::copy_nonoverlapping(self.table, new, self.cap);
                os::unmap(self.table.cast(), Self::table_bytes(self.cap));
            }
            for i in self.cap..new_cap {
                let next = if i + 1 < new_cap {
                    (i + 1) as u32
                } else {
                    self.unused
                };
                new.add(i).write(ArenaObject {
                    address: 0,
                    pool_address: 0,
                    nfreepools: 0,
                    ntotalpools: 0,
                    freepools: null_mut(),
                    nextarena: next,
                    prevarena: NONE,
                });
            }
        }
        self.unused = self.cap as u32;
        self.table = new;
        self.cap = new_cap;
        true
    }

    /// Maps a new arena into an unused slot (CPython `new_arena`).
    fn new_arena(&mut self) -> u32 {
        if self.unused == NONE && !self.grow_table() {
            return NONE;
        }
        let base = os::map(self.g.arena_size);
        if base.is_null() {
            return NONE;
        }
        // Before any block of it exists: C's `free` finds blocks by address.
        if !arena_map::mark(base as usize, &self.g) {
            // SAFETY: our own fresh mapping, never handed out.
            unsafe { os::unmap(base, self.g.arena_size) };
            return NONE;
        }
        let i = self.unused;
        // SAFETY: `i` is an unused slot of the table.
        unsafe {
            let ao = &mut *self.ao(i);
            self.unused = ao.nextarena;
            let base = base as usize;
            let mut nfree = self.g.pools_per_arena() as u32;
            let mut first = base;
            let excess = base & (self.g.pool_size - 1);
            if excess != 0 {
                nfree -= 1;
                first += self.g.pool_size - excess;
            }
            *ao = ArenaObject {
                address: base,
                pool_address: first,
                nfreepools: nfree,
                ntotalpools: nfree,
                freepools: null_mut(),
                nextarena: NONE,
                prevarena: NONE,
            };
        }
        self.allocated_total += 1;
        self.current += 1;
        self.highwater = self.highwater.max(self.current);
        i
    }

    /// Takes an empty pool from the fullest usable arena, mapping a new
    /// arena if none has one (CPython `allocate_from_new_pool`, arena part).
    /// The pool's header is valid; it may still carry the free list of the
    /// class it last served. Null when the OS refuses memory.
    pub(crate) fn get_pool(&mut self) -> *mut Pool {
        if self.usable == NONE {
            let i = self.new_arena();
            if i == NONE {
                return null_mut();
            }
            self.usable = i;
            // SAFETY: `i` was just initialised.
            let nf = unsafe { (*self.ao(i)).nfreepools };
            self.nfp2lasta[nf as usize] = i;
        }
        let head = self.usable;
        // SAFETY: `head` is a live arena on the usable list, so it has a free pool.
        unsafe {
            let ao = self.ao(head);
            let nf = (*ao).nfreepools as usize;
            // The head is the last of its count unless others share it; it
            // becomes the sole arena with one pool fewer, still at the head.
            if self.nfp2lasta[nf] == head {
                self.nfp2lasta[nf] = NONE;
            }
            if nf > 1 {
                self.nfp2lasta[nf - 1] = head;
            }
            let pool = if !(*ao).freepools.is_null() {
                let p = (*ao).freepools;
                (*ao).freepools = (*p).nextpool.get();
                p
            } else {
                let p = (*ao).pool_address as *mut Pool;
                (*ao).pool_address += self.g.pool_size;
                pool::carve_header(p, head);
                p
            };
            (*ao).nfreepools -= 1;
            if (*ao).nfreepools == 0 {
                self.usable = (*ao).nextarena;
                if self.usable != NONE {
                    (*self.ao(self.usable)).prevarena = NONE;
                }
                (*ao).nextarena = NONE;
            }
            pool
        }
    }

    /// Returns an empty pool to its arena, keeping `usable_arenas` sorted
    /// and unmapping the arena if all its pools are free and it is not the
    /// last usable one (CPython `insert_to_freepool`, arena part).
    ///
    /// # Safety
    /// `p` must be a pool from [`get_pool`](Self::get_pool) of this
    /// `Arenas`, with no block in use, linked in no ring, and unused by
    /// anyone afterwards.
    pub(crate) unsafe fn put_pool(&mut self, p: *mut Pool) {
        // SAFETY: the caller hands back one of our pools; its arena index is
        // a live slot, and list links are live slots or NONE.
        unsafe {
            debug_assert_eq!(
                pool::ref_count(p),
                0,
                "put_pool of a pool with blocks in use"
            );
            debug_assert!(!(*p).in_ring.get(), "put_pool of a pool still in a ring");
            let i = (*p).arenaindex;
            let ao = self.ao(i);
            (*p).nextpool.set((*ao).freepools);
            (*ao).freepools = p;
            let mut nf = (*ao).nfreepools as usize;
            // If `ao` was the rightmost arena with `nf` free pools, the one
            // before it (if it has as many) now is.
            let lastnf = self.nfp2lasta[nf];
            if lastnf == i {
                let prev = (*ao).prevarena;
                self.nfp2lasta[nf] = if prev != NONE && (*self.ao(prev)).nfreepools as usize == nf {
                    prev
                } else {
                    NONE
                };
            }
            nf += 1;
            (*ao).nfreepools = nf as u32;

            // Case 1: wholly free and not the last usable arena: unmap it.
            if nf == (*ao).ntotalpools as usize && (*ao).nextarena != NONE {
                self.unlink_usable(i);
                arena_map::clear((*ao).address, &self.g);
                os::unmap((*ao).address as *mut u8, self.g.arena_size);
                (*ao).address = 0;
                (*ao).freepools = null_mut();
                (*ao).nextarena = self.unused;
                self.unused = i;
                self.current -= 1;
                self.reclaimed += 1;
                return;
            }
            // Case 2: it was full, so not on the list: it goes to the head,
            // having the fewest free pools possible.
            if nf == 1 {
                (*ao).nextarena = self.usable;
                (*ao).prevarena = NONE;
                if self.usable != NONE {
                    (*self.ao(self.usable)).prevarena = i;
                }
                self.usable = i;
                if self.nfp2lasta[1] == NONE {
                    self.nfp2lasta[1] = i;
                }
                return;
            }
            if self.nfp2lasta[nf] == NONE {
                self.nfp2lasta[nf] = i;
            }
            // Case 3: it was the rightmost of its old count: still in order.
            if lastnf == i {
                return;
            }
            // Case 4: slide it right, to just after the last arena that
            // had its old count.
            self.unlink_usable(i);
            let after = self.ao(lastnf);
            let ao = self.ao(i);
            (*ao).prevarena = lastnf;
            (*ao).nextarena = (*after).nextarena;
            if (*ao).nextarena != NONE {
                (*self.ao((*ao).nextarena)).prevarena = i;
            }
            (*after).nextarena = i;
        }
    }

    /// # Safety
    /// `i` must be on the usable list.
    unsafe fn unlink_usable(&mut self, i: u32) {
        // SAFETY: `i` and its neighbours are live slots (caller's contract).
        unsafe {
            let (prev, next) = ((*self.ao(i)).prevarena, (*self.ao(i)).nextarena);
            if prev == NONE {
                self.usable = next;
            } else {
                (*self.ao(prev)).nextarena = next;
            }
            if next != NONE {
                (*self.ao(next)).prevarena = prev;
            }
        }
    }

    /// Fills the arena, pool and byte figures of `s` by walking every
    /// carved pool, as `_debugmallocstats` does. Pools owned by other
    /// threads are read through their atomic fields only.
    pub(crate) fn account(&self, s: &mut Stats) {
        let g = self.g;
        let hdr = g.pool_header_size();
        s.arenas_allocated_total = self.allocated_total;
        s.arenas_reclaimed = self.reclaimed;
        s.arenas_highwater = self.highwater;
        s.arenas_current = self.current;
        s.bytes.mapped = self.current * g.arena_size;
        for i in 0..self.cap as u32 {
            // SAFETY: `i` is below `cap`; slots with a non-zero address are
            // live arenas whose carved pools have valid headers.
            unsafe {
                let ao = &*self.ao(i);
                if ao.address == 0 {
                    continue;
                }
                s.bytes.arena_alignment += g.arena_size - ao.ntotalpools as usize * g.pool_size;
                let first = ao.address.next_multiple_of(g.pool_size);
                let carved = (ao.pool_address - first) / g.pool_size;
                let mut empty = ao.ntotalpools as usize - carved;
                for k in 0..carved {
                    let p = (first + k * g.pool_size) as *mut Pool;
                    let rc = (*p).ref_count.load(Ordering::Relaxed) as usize;
                    let idx = (*p).szidx.load(Ordering::Relaxed) as usize;
                    if rc == 0 || idx >= g.nclasses() {
                        empty += 1;
                        continue;
                    }
                    let nblocks = g.blocks_per_pool(idx);
                    let rc = rc.min(nblocks);
                    let c = &mut s.classes[idx];
                    c.pools += 1;
                    c.blocks_in_use += rc;
                    c.available_blocks += nblocks - rc;
                    if rc == nblocks {
                        c.full_pools += 1;
                        s.pools_full += 1;
                    } else {
                        s.pools_used += 1;
                    }
                    s.bytes.allocated_blocks += rc * c.size;
                    s.bytes.available_blocks += (nblocks - rc) * c.size;
                    s.bytes.pool_headers += hdr;
                    s.bytes.quantization += g.pool_tail(idx);
                }
                s.pools_empty += empty;
                s.bytes.empty_pools += empty * g.pool_size;
            }
        }
    }
}

impl Drop for Arenas {
    fn drop(&mut self) {
        // SAFETY: every slot with an address is one live mapping of ours and
        // the table is one mapping of `cap` objects; no pool or block can be
        // used after the allocator owning these arenas is dropped.
        unsafe {
            for i in 0..self.cap as u32 {
                let a = (*self.ao(i)).address;
                if a != 0 {
                    arena_map::clear(a, &self.g);
                    os::unmap(a as *mut u8, self.g.arena_size);
                }
            }
            if !self.table.is_null() {
                os::unmap(self.table.cast(), Self::table_bytes(self.cap));
            }
        }
    }
}

#[cfg(test)]
#[path = "tests/arena_walk.rs"]
pub(crate) mod walk;
