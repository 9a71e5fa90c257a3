//! Tapes: a thread's plan compiled into packed actions before anything is
//! measured.
//!
//! The measured loop must carry nothing the workload does not ask for, so
//! the plan generator (RNG, size distributions, lifetime bookkeeping) never
//! runs in it. Instead each thread's plan is compiled, before the cell's
//! phases start, into a [`Tape`] of 8-byte [`Op`]s:
//!
//! - the **prefix** fills the working set and runs the warm-up
//!   (`warmup_ops`); it is run once, untimed, and ends in a steady state;
//! - the **cycle** starts in that state and ends in it again: the same
//!   slots are live at its end as at its start. The measured loop can
//!   therefore replay it end to end, wrapping around, for as many
//!   operations as the phase needs, without ever allocating into a live
//!   slot or freeing an empty one. Its length is at least a target
//!   (default [`CYCLE_TARGET`] ops, 2 MiB of tape), so a pattern repeats
//!   only every few hundred thousand operations; the allocator's own state
//!   differs at every repetition.
//!
//! The cycle is found by tracking the live set while the plan runs on past
//! the target: a Zobrist-style hash of the live slots is compared with the
//! starting one at every step, and a match is confirmed on the full set.
//! Every lifetime returns to its steady state quickly (random replacement
//! after any free/alloc pair, a FIFO window every `2 × window` ops, a
//! batch after each batch), so the cycle is barely longer than its target.
//!
//! Block sizes are not part of the state: a free takes its size from the
//! driver's slot table, which holds what the slot's last allocation asked
//! for. Op counts, requested bytes and live bytes are derived from the
//! tape, not counted in the loop.

use super::plan::{Action, Plan};
use super::workload::Checked;

/// Default length a cycle must reach before it may close.
pub const CYCLE_TARGET: usize = 1 << 18;
/// A cycle that has not closed after this many times its target is refused.
const CYCLE_GIVE_UP: usize = 64;
/// Live bytes are tabulated every this many ops of the cycle (the RSS
/// timeline's resolution).
pub const LIVE_STEP: usize = 4096;

/// What an [`Op`] does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Kind {
    /// Allocate `arg` bytes into the slot.
    Alloc = 0,
    /// Free the slot's block here.
    Free = 1,
    /// Hand the slot's block to thread `arg`, which frees it.
    Handoff = 2,
    /// Reallocate the slot's block to `arg` bytes.
    Realloc = 3,
}

/// One packed action: the kind in the top two bits of `word`, the slot in
/// the rest, and `arg` (a size, or a target thread).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct Op {
    word: u32,
    arg: u32,
}

const SLOT_BITS: u32 = 30;
const SLOT_MASK: u32 = (1 << SLOT_BITS) - 1;

impl Op {
    fn new(kind: Kind, slot: usize, arg: usize) -> Op {
        debug_assert!(slot <= SLOT_MASK as usize && arg <= u32::MAX as usize);
        Op {
            word: ((kind as u32) << SLOT_BITS) | slot as u32,
            arg: arg as u32,
        }
    }

    /// The action.
    #[inline(always)]
    pub fn kind(self) -> Kind {
        match self.word >> SLOT_BITS {
            0 => Kind::Alloc,
            1 => Kind::Free,
            2 => Kind::Handoff,
            _ => Kind::Realloc,
        }
    }

    /// The slot it acts on.
    #[inline(always)]
    pub fn slot(self) -> usize {
        (self.word & SLOT_MASK) as usize
    }

    /// The size (alloc, realloc) or target thread (handoff).
    #[inline(always)]
    pub fn arg(self) -> usize {
        self.arg as usize
    }
}

impl From<Action> for Op {
    fn from(a: Action) -> Op {
        match a {
            Action::Alloc { slot, size } => Op::new(Kind::Alloc, slot, size),
            Action::Free { slot } => Op::new(Kind::Free, slot, 0),
            Action::Handoff { slot, to } => Op::new(Kind::Handoff, slot, to),
            Action::Realloc { slot, new_size } => Op::new(Kind::Realloc, slot, new_size),
        }
    }
}

/// Operations by kind, and the bytes they requested.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub allocs: u64,
    pub frees_local: u64,
    pub frees_remote: u64,
    pub reallocs: u64,
    pub bytes_requested: u64,
}

impl Counts {
    /// Every operation (a handoff counts once, as its remote free).
    pub fn ops(&self) -> u64 {
        self.allocs + self.frees_local + self.frees_remote + self.reallocs
    }

    fn count(&mut self, op: Op) {
        match op.kind() {
            Kind::Alloc => {
                self.allocs += 1;
                self.bytes_requested += op.arg() as u64;
            }
            Kind::Free => self.frees_local += 1,
            Kind::Handoff => self.frees_remote += 1,
            Kind::Realloc => {
                self.reallocs += 1;
                self.bytes_requested += op.arg() as u64;
            }
        }
    }

    /// `self + k × other`.
    pub fn add_times(&mut self, other: &Counts, k: u64) {
        self.allocs += other.allocs * k;
        self.frees_local += other.frees_local * k;
        self.frees_remote += other.frees_remote * k;
        self.reallocs += other.reallocs * k;
        self.bytes_requested += other.bytes_requested * k;
    }
}

/// Why a plan could not be compiled.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TapeError {
    #[error(
        "the plan of thread {thread} did not return to its steady state within {ops} operations \
         (its cycle cannot close); use a lifetime whose working set fills"
    )]
    NoCycle { thread: usize, ops: usize },
    #[error("slot {slot} of thread {thread} is beyond the tape's {max} slots")]
    TooManySlots {
        thread: usize,
        slot: usize,
        max: usize,
    },
}

/// One thread's compiled plan (see the module docs).
#[derive(Clone, Debug)]
pub struct Tape {
    /// Fill and warm-up, run once; ends where the cycle starts.
    pub prefix: Vec<Op>,
    /// Replayed, wrapping, for as long as a phase needs.
    pub cycle: Vec<Op>,
    /// Size of the slot table the ops index.
    pub slots: usize,
    /// Counts of one whole cycle.
    pub cycle_counts: Counts,
    /// Counts of the prefix.
    pub prefix_counts: Counts,
    /// Live bytes (requested) in the steady state, at every
    /// [`LIVE_STEP`]-th position of the cycle, from its second pass on.
    pub live_at: Vec<u64>,
    /// The live slots where the cycle starts (and ends).
    pub start_live: Vec<bool>,
    /// The largest size any op asks for.
    pub max_size: usize,
}

/// The live set, with a hash that follows it in O(1) per change.
struct LiveSet {
    live: Vec<bool>,
    hash: u64,
}

impl LiveSet {
    fn new(slots: usize) -> LiveSet {
        LiveSet {
            live: vec![false; slots],
            hash: 0,
        }
    }

    /// A fixed pseudo-random key per slot (SplitMix64 of the index).
    fn key(slot: usize) -> u64 {
        let mut z = (slot as u64).wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn flip(&mut self, slot: usize) {
        self.live[slot] = !self.live[slot];
        self.hash ^= LiveSet::key(slot);
    }

    fn apply(&mut self, op: Op) {
        match op.kind() {
            Kind::Alloc | Kind::Free | Kind::Handoff => self.flip(op.slot()),
            Kind::Realloc => {}
        }
    }
}

impl Tape {
    /// Compiles thread `thread`'s plan. The cycle is at least
    /// [`CYCLE_TARGET`] long, or `ops_per_thread` when that is less (a
    /// short cell needs no long tape).
    pub fn compile(w: &Checked, thread: usize) -> Result<Tape, TapeError> {
        let target = w
            .ops_per_thread
            .map_or(CYCLE_TARGET, |ops| CYCLE_TARGET.min(ops as usize));
        Tape::compile_with(w, thread, target)
    }

    /// Compiles thread `thread`'s plan; the cycle is at least
    /// `cycle_target` ops long (and at least 2).
    pub fn compile_with(
        w: &Checked,
        thread: usize,
        cycle_target: usize,
    ) -> Result<Tape, TapeError> {
        let mut plan = Plan::new(w, thread);
        let slots = plan.slots();
        if plan.is_consumer() {
            return Ok(Tape {
                prefix: Vec::new(),
                cycle: Vec::new(),
                slots,
                cycle_counts: Counts::default(),
                prefix_counts: Counts::default(),
                live_at: Vec::new(),
                start_live: vec![false; slots],
                max_size: 0,
            });
        }
        let mut set = LiveSet::new(slots);
        let take = |plan: &mut Plan, set: &mut LiveSet| -> Result<Op, TapeError> {
            // A plan never ends; `next` always yields.
            let action = plan.next().unwrap_or(Action::Free { slot: 0 });
            let op = Op::from(action);
            if op.slot() >= slots {
                return Err(TapeError::TooManySlots {
                    thread,
                    slot: op.slot(),
                    max: slots,
                });
            }
            set.apply(op);
            Ok(op)
        };

        let mut prefix = Vec::new();
        while (prefix.len() as u64) < w.warmup_ops || !plan.steady() {
            prefix.push(take(&mut plan, &mut set)?);
        }
        let start_live = set.live.clone();
        let start_hash = set.hash;

        let target = cycle_target.max(2);
        let give_up = target.saturating_mul(CYCLE_GIVE_UP);
        let mut cycle = Vec::with_capacity(target + target / 8);
        loop {
            cycle.push(take(&mut plan, &mut set)?);
            if cycle.len() >= target && set.hash == start_hash && set.live == start_live {
                break;
            }
            if cycle.len() >= give_up {
                return Err(TapeError::NoCycle {
                    thread,
                    ops: cycle.len(),
                });
            }
        }
        cycle.shrink_to_fit();

        let mut prefix_counts = Counts::default();
        prefix.iter().for_each(|&op| prefix_counts.count(op));
        let mut cycle_counts = Counts::default();
        cycle.iter().for_each(|&op| cycle_counts.count(op));
        let live_at = steady_live_bytes(&prefix, &cycle, slots);
        let max_size = prefix
            .iter()
            .chain(&cycle)
            .filter(|op| matches!(op.kind(), Kind::Alloc | Kind::Realloc))
            .map(|op| op.arg())
            .max()
            .unwrap_or(0);
        Ok(Tape {
            prefix,
            cycle,
            slots,
            cycle_counts,
            prefix_counts,
            live_at,
            start_live,
            max_size,
        })
    }

    /// Counts of the `n` cycle ops that start at position `from` (wrapping).
    pub fn counts_from(&self, from: usize, n: u64) -> Counts {
        let len = self.cycle.len() as u64;
        let mut c = Counts::default();
        if len == 0 {
            return c;
        }
        c.add_times(&self.cycle_counts, n / len);
        let mut left = n % len;
        let mut pos = from % self.cycle.len();
        while left > 0 {
            c.count(self.cycle[pos]);
            pos = (pos + 1) % self.cycle.len();
            left -= 1;
        }
        c
    }

    /// The live slots at cycle position `pos` (any pass).
    pub fn live_at_cycle(&self, pos: usize) -> Vec<bool> {
        let mut set = LiveSet {
            live: self.start_live.clone(),
            hash: 0,
        };
        for &op in &self.cycle[..pos.min(self.cycle.len())] {
            set.apply(op);
        }
        set.live
    }

    /// Requested live bytes at cycle position `pos` in the steady state
    /// (to the resolution of [`LIVE_STEP`]).
    pub fn live_bytes_at(&self, pos: usize) -> u64 {
        self.live_at
            .get((pos % self.cycle.len().max(1)) / LIVE_STEP)
            .copied()
            .unwrap_or(0)
    }
}

/// Replays the prefix and one cycle over slot sizes, then tabulates live
/// bytes along a second cycle (the steady state every later pass repeats).
fn steady_live_bytes(prefix: &[Op], cycle: &[Op], slots: usize) -> Vec<u64> {
    let mut sizes = vec![0u64; slots];
    let mut live = 0u64;
    let step = |op: Op, sizes: &mut [u64], live: &mut u64| match op.kind() {
        Kind::Alloc | Kind::Realloc => {
            *live = *live - sizes[op.slot()] + op.arg() as u64;
            sizes[op.slot()] = op.arg() as u64;
        }
        Kind::Free | Kind::Handoff => {
            *live -= sizes[op.slot()];
            sizes[op.slot()] = 0;
        }
    };
    for &op in prefix.iter().chain(cycle) {
        step(op, &mut sizes, &mut live);
    }
    let mut out = Vec::with_capacity(cycle.len() / LIVE_STEP + 1);
    for (i, &op) in cycle.iter().enumerate() {
        if i % LIVE_STEP == 0 {
            out.push(live);
        }
        step(op, &mut sizes, &mut live);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::workload::Workload;

    /// Replays the prefix once and the cycle `passes` times over a model
    /// of the slot table, checking every op.
    fn check_replay(t: &Tape, passes: usize, name: &str) {
        let mut live = vec![false; t.slots];
        let mut ops = t.prefix.iter().collect::<Vec<_>>();
        for _ in 0..passes {
            ops.extend(t.cycle.iter());
        }
        for (i, op) in ops.into_iter().enumerate() {
            let s = op.slot();
            match op.kind() {
                Kind::Alloc => {
                    assert!(!live[s], "{name}: op {i} allocates into live slot {s}");
                    live[s] = true;
                }
                Kind::Free | Kind::Handoff => {
                    assert!(live[s], "{name}: op {i} frees empty slot {s}");
                    live[s] = false;
                }
                Kind::Realloc => assert!(live[s], "{name}: op {i} reallocs empty slot {s}"),
            }
        }
        assert_eq!(live, t.start_live, "{name}: the cycle returns to its start");
    }

    #[test]
    fn every_shape_compiles_to_a_cycle_that_replays() {
        for w in crate::spec::plan::tests::shapes() {
            for thread in 0..w.threads {
                if w.roles.consumer(thread, w.threads) {
                    continue;
                }
                let t = Tape::compile_with(&w, thread, 5_000).unwrap();
                assert!(t.cycle.len() >= 5_000, "{}", w.name);
                assert!(t.prefix.len() as u64 >= w.warmup_ops, "{}", w.name);
                check_replay(&t, 3, &w.name);
                let mut c = Counts::default();
                t.cycle.iter().for_each(|&op| c.count(op));
                assert_eq!(c, t.cycle_counts);
                assert_eq!(c.ops(), t.cycle.len() as u64);
            }
        }
    }

    #[test]
    fn ops_pack_kind_slot_and_argument() {
        for (a, kind, slot, arg) in [
            (
                Action::Alloc {
                    slot: 7,
                    size: 1 << 28,
                },
                Kind::Alloc,
                7,
                1 << 28,
            ),
            (
                Action::Free {
                    slot: (1 << 25) - 1,
                },
                Kind::Free,
                (1 << 25) - 1,
                0,
            ),
            (
                Action::Handoff { slot: 3, to: 1023 },
                Kind::Handoff,
                3,
                1023,
            ),
            (
                Action::Realloc {
                    slot: 0,
                    new_size: 5,
                },
                Kind::Realloc,
                0,
                5,
            ),
        ] {
            let op = Op::from(a);
            assert_eq!((op.kind(), op.slot(), op.arg()), (kind, slot, arg));
        }
        assert_eq!(std::mem::size_of::<Op>(), 8);
    }

    #[test]
    fn counts_and_live_bytes_are_derived_from_the_tape() {
        let mut w = Workload::default();
        w.set("lifetime", "random:100").unwrap();
        w.set("size", "64").unwrap();
        let t = Tape::compile_with(&w.check().unwrap(), 0, 10_000).unwrap();
        // Random replacement at a fixed size: 100 blocks of 64 bytes live
        // at every step boundary after a free/alloc pair.
        assert_eq!(t.live_bytes_at(0), 6400);
        let n = t.cycle.len() as u64;
        let c = t.counts_from(5, 2 * n + 3);
        assert_eq!(c.ops(), 2 * n + 3);
        assert_eq!(c.allocs + c.frees_local, 2 * n + 3);
        assert_eq!(t.live_at_cycle(0), t.start_live);
        assert_eq!(t.max_size, 64);
    }

    #[test]
    fn a_short_cell_gets_a_short_tape() {
        let mut w = Workload::default();
        w.set("ops_per_thread", "2000").unwrap();
        let t = Tape::compile(&w.check().unwrap(), 0).unwrap();
        assert!(t.cycle.len() < 3000, "{}", t.cycle.len());
    }
}
