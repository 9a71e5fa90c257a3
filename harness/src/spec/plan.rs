//! Plans: a thread's deterministic, endless stream of actions.
//!
//! [`Plan::new`] turns a checked workload into an iterator of [`Action`]s
//! over numbered slots, seeded from `(seed, thread)`, so a cell is
//! reproducible op for op. The plan knows which slots are live and never
//! frees an empty slot or allocates into a live one. It runs only while a
//! tape is compiled (`tape.rs`), never in the measured loop.
//!
//! With one thread there is nobody to hand a block to, so the plan turns
//! every would-be [`Action::Handoff`] into a local [`Action::Free`];
//! otherwise handoffs go round the other threads in turn.

use rand::distr::{Bernoulli, Distribution, Uniform};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::lifetime::{FreeOrder, Lifetime};
use super::size::SizeSampler;
use super::workload::Checked;

/// One step of a thread's plan. Each counts as one op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Allocate `size` bytes into `slot` (which is empty), aligned to the
    /// workload's `align`.
    Alloc {
        /// Slot to fill.
        slot: usize,
        /// Requested size.
        size: usize,
    },
    /// Free the block in `slot` on this thread; the slot becomes empty.
    Free {
        /// Slot to empty.
        slot: usize,
    },
    /// Give the block in `slot` to thread `to`, which frees it (a remote
    /// free); the slot becomes empty here.
    Handoff {
        /// Slot to empty.
        slot: usize,
        /// The thread that frees it.
        to: usize,
    },
    /// Reallocate the block in `slot` to `new_size`; the slot stays live.
    Realloc {
        /// Slot whose block is resized.
        slot: usize,
        /// The new size.
        new_size: usize,
    },
}

/// A follow-up action already decided by the previous step.
#[derive(Clone, Copy, Debug)]
enum Pending {
    None,
    Alloc { slot: usize, long: bool },
    Realloc { slot: usize, long: bool },
}

/// The lifetime, prepared: per-shape cursors over the slot table.
#[derive(Clone, Debug)]
enum Shape {
    Immediate,
    Fifo {
        window: usize,
        head: usize,
        tail: usize,
    },
    Random {
        slots: Uniform<usize>,
        count: usize,
        filled: usize,
    },
    Batch {
        count: usize,
        order: FreeOrder,
        /// Order of the current free phase (never `Mixed`).
        current: FreeOrder,
        freeing: bool,
        next: usize,
        perm: Box<[u32]>,
    },
    Ring {
        slots: usize,
        /// Slots kept per wrap.
        keep: usize,
        /// Index of the kept window at the last wrap.
        window: usize,
        /// The slots the current phase visits, in order.
        order: Vec<u32>,
        next: usize,
        freeing: bool,
        /// The first fill is done.
        filled: bool,
    },
    LongLived {
        window: usize,
        head: usize,
        tail: usize,
        short_live: usize,
        survivor: Bernoulli,
        slots: Uniform<usize>,
        count: usize,
        filled: usize,
    },
}

/// One thread's deterministic stream of [`Action`]s (see the module docs).
#[derive(Clone, Debug)]
pub struct Plan {
    rng: SmallRng,
    sizes: SizeSampler,
    /// Survivor sizes of [`Lifetime::LongLived`] when they differ.
    long_sizes: Option<SizeSampler>,
    /// `None`: never hand off (no remote frees, or a single thread).
    remote: Option<Bernoulli>,
    realloc: Option<Bernoulli>,
    /// The threads handoffs go to, in turn.
    targets: Box<[usize]>,
    /// Handoffs so far: targets go round in turn.
    handoffs: usize,
    /// A consumer (producer-consumer roles) only frees what it receives:
    /// its plan has no actions.
    consumer: bool,
    /// Allocations left that reuse `run_size`.
    run_left: u32,
    run_size: usize,
    size_run: u32,
    live: Box<[bool]>,
    live_count: usize,
    pending: Pending,
    shape: Shape,
}

/// SplitMix64 finaliser: spreads (seed, thread) into unrelated RNG seeds.
fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn chance(p: f64) -> Option<Bernoulli> {
    if p.is_finite() && p > 0.0 {
        Bernoulli::new(p.min(1.0)).ok()
    } else {
        None
    }
}

fn slot_range(n: usize) -> Uniform<usize> {
    Uniform::new(0, n.max(1)).unwrap_or_else(|_| super::size::uniform(0, 0))
}

impl Plan {
    /// The plan of thread `thread` (0-based) of workload `w`.
    pub fn new(w: &Checked, thread: usize) -> Plan {
        let rng = SmallRng::seed_from_u64(mix64(w.seed) ^ mix64(!(thread as u64)));
        let (shape, long_sizes) = match &w.lifetime {
            Lifetime::Immediate => (Shape::Immediate, None),
            Lifetime::Fifo { window } => (
                Shape::Fifo {
                    window: (*window),
                    head: 0,
                    tail: 0,
                },
                None,
            ),
            Lifetime::Random { slots } => (
                Shape::Random {
                    slots: slot_range(*slots),
                    count: (*slots),
                    filled: 0,
                },
                None,
            ),
            Lifetime::Batch { count, order } => {
                let count = *count;
                (
                    Shape::Batch {
                        count,
                        order: *order,
                        current: FreeOrder::Lifo,
                        freeing: false,
                        next: 0,
                        perm: (0..count as u32).collect(),
                    },
                    None,
                )
            }
            Lifetime::Ring { slots, keep } => (
                Shape::Ring {
                    slots: *slots,
                    keep: ((*slots as f64 * keep).round() as usize).min(slots - 1),
                    window: 0,
                    order: (0..*slots as u32).collect(),
                    next: 0,
                    freeing: false,
                    filled: false,
                },
                None,
            ),
            Lifetime::LongLived {
                fraction,
                slots,
                window,
                size,
            } => (
                Shape::LongLived {
                    window: (*window),
                    head: 0,
                    tail: 0,
                    short_live: 0,
                    survivor: Bernoulli::new(if fraction.is_finite() {
                        fraction.clamp(0.0, 1.0)
                    } else {
                        0.0
                    })
                    .unwrap_or_else(|_| Bernoulli::new(0.0).expect("0 is a probability")),
                    slots: slot_range(*slots),
                    count: (*slots),
                    filled: 0,
                },
                size.as_ref().map(SizeSampler::new),
            ),
        };
        Plan {
            rng,
            sizes: SizeSampler::new(&w.size),
            long_sizes,
            remote: if w.roles.targets(thread, w.threads).is_empty() {
                None
            } else {
                chance(w.remote_free_fraction)
            },
            realloc: chance(w.realloc_fraction),
            targets: w.roles.targets(thread, w.threads).into_boxed_slice(),
            handoffs: 0,
            consumer: w.roles.consumer(thread, w.threads),
            run_left: 0,
            run_size: 0,
            size_run: w.size_run,
            live: vec![false; w.slots()].into_boxed_slice(),
            live_count: 0,
            pending: Pending::None,
            shape,
        }
    }

    /// Size of the slot table this plan indexes (slots are `0..slots()`).
    pub fn slots(&self) -> usize {
        self.live.len()
    }

    /// Whether `slot` holds a block (out-of-range slots hold none).
    pub fn is_live(&self, slot: usize) -> bool {
        self.live.get(slot).copied().unwrap_or(false)
    }

    /// True once the lifetime's working set is filled (random slots,
    /// FIFO window, survivors) and no follow-up action is pending: from
    /// then on the live set only changes by replacement, so a tape's cycle
    /// can start here.
    pub fn steady(&self) -> bool {
        if !matches!(self.pending, Pending::None) {
            return false;
        }
        match &self.shape {
            Shape::Immediate | Shape::Batch { .. } => true,
            // At the end of a fill every slot is live.
            Shape::Ring {
                filled,
                freeing,
                next,
                order,
                ..
            } => *filled && !*freeing && *next == order.len(),
            Shape::Fifo { window, .. } => self.live_count == *window,
            Shape::Random { count, filled, .. } => filled == count,
            Shape::LongLived {
                window,
                short_live,
                count,
                filled,
                ..
            } => filled == count && short_live == window,
        }
    }

    /// Blocks live now.
    pub fn live_count(&self) -> usize {
        self.live_count
    }

    /// The live slots, in slot order: what the driver frees when it drains.
    pub fn live_slots(&self) -> impl Iterator<Item = usize> + '_ {
        self.live
            .iter()
            .enumerate()
            .filter_map(|(i, &l)| l.then_some(i))
    }

    #[inline]
    fn sample_size(&mut self, long: bool) -> usize {
        match (&self.long_sizes, long) {
            (Some(s), true) => s.sample(&mut self.rng),
            _ if self.run_left > 0 => {
                self.run_left -= 1;
                self.run_size
            }
            _ => {
                self.run_size = self.sizes.sample(&mut self.rng);
                self.run_left = self.size_run - 1;
                self.run_size
            }
        }
    }

    /// A consumer's plan has no actions (it frees what it receives).
    pub fn is_consumer(&self) -> bool {
        self.consumer
    }

    #[inline]
    fn alloc(&mut self, slot: usize, long: bool) -> Action {
        debug_assert!(!self.live[slot], "allocating into live slot {slot}");
        self.live[slot] = true;
        self.live_count += 1;
        let size = self.sample_size(long);
        if let Some(r) = self.realloc {
            if r.sample(&mut self.rng) {
                self.pending = Pending::Realloc { slot, long };
            }
        }
        Action::Alloc { slot, size }
    }

    #[inline]
    fn release(&mut self, slot: usize) -> Action {
        debug_assert!(self.live[slot], "freeing empty slot {slot}");
        self.live[slot] = false;
        self.live_count -= 1;
        match self.remote {
            Some(r) if r.sample(&mut self.rng) => {
                let to = self.targets[self.handoffs % self.targets.len()];
                self.handoffs += 1;
                Action::Handoff { slot, to }
            }
            _ => Action::Free { slot },
        }
    }

    /// Decides the next action from the lifetime shape.
    #[inline]
    fn step(&mut self) -> Action {
        match &mut self.shape {
            Shape::Immediate => {
                if self.live[0] {
                    self.release(0)
                } else {
                    self.alloc(0, false)
                }
            }
            Shape::Fifo { window, head, tail } => {
                if self.live_count == *window {
                    let slot = *tail;
                    *tail = (*tail + 1) % *window;
                    self.release(slot)
                } else {
                    let slot = *head;
                    *head = (*head + 1) % *window;
                    self.alloc(slot, false)
                }
            }
            Shape::Random {
                slots,
                count,
                filled,
            } => {
                if *filled < *count {
                    let slot = *filled;
                    *filled += 1;
                    self.alloc(slot, false)
                } else {
                    // Larson's step: free a random slot's block, refill it.
                    let slot = slots.sample(&mut self.rng);
                    self.pending = Pending::Alloc { slot, long: false };
                    self.release(slot)
                }
            }
            Shape::Batch {
                count,
                order,
                current,
                freeing,
                next,
                perm,
            } => {
                if !*freeing {
                    let slot = *next;
                    *next += 1;
                    if *next == *count {
                        *freeing = true;
                        *next = 0;
                        *current = match *order {
                            FreeOrder::Mixed => match self.rng.random_range(0..3u8) {
                                0 => FreeOrder::Lifo,
                                1 => FreeOrder::Fifo,
                                _ => FreeOrder::Random,
                            },
                            o => o,
                        };
                        if *current == FreeOrder::Random {
                            // Fisher–Yates in place: O(1) amortised per op.
                            for i in (1..perm.len()).rev() {
                                let j = self.rng.random_range(0..=i);
                                perm.swap(i, j);
                            }
                        }
                    }
                    self.alloc(slot, false)
                } else {
                    let k = *next;
                    *next += 1;
                    let slot = match *current {
                        FreeOrder::Lifo => *count - 1 - k,
                        FreeOrder::Fifo => k,
                        FreeOrder::Random | FreeOrder::Mixed => perm[k] as usize,
                    };
                    if *next == *count {
                        *freeing = false;
                        *next = 0;
                    }
                    self.release(slot)
                }
            }
            Shape::Ring {
                slots,
                keep,
                window,
                order,
                next,
                freeing,
                filled,
            } => {
                if *next == order.len() {
                    // End of a phase: a fill ends in a wrap (free all but
                    // the next kept window), a free phase in a refill of
                    // the slots it freed.
                    *next = 0;
                    *freeing = !*freeing;
                    if *freeing {
                        let windows = (*slots / (*keep).max(1)).max(1);
                        *window = (*window + 1) % windows;
                        let lo = *window * *keep;
                        let hi = (lo + *keep).min(*slots);
                        // Below the window in allocation order, above it
                        // in reverse.
                        order.clear();
                        order.extend(0..lo as u32);
                        order.extend((hi as u32..*slots as u32).rev());
                    } else {
                        order.sort_unstable();
                    }
                }
                let slot = order[*next] as usize;
                *next += 1;
                if *freeing {
                    self.release(slot)
                } else {
                    // Every slot is live once a fill ends.
                    *filled |= *next == order.len();
                    self.alloc(slot, false)
                }
            }
            Shape::LongLived {
                window,
                head,
                tail,
                short_live,
                survivor,
                slots,
                count,
                filled,
            } => {
                if *short_live == *window {
                    let slot = *tail;
                    *tail = (*tail + 1) % *window;
                    *short_live -= 1;
                    return self.release(slot);
                }
                if survivor.sample(&mut self.rng) {
                    let base = *window;
                    if *filled < *count {
                        let slot = base + *filled;
                        *filled += 1;
                        self.alloc(slot, true)
                    } else {
                        // A new survivor replaces a random old one.
                        let slot = base + slots.sample(&mut self.rng);
                        self.pending = Pending::Alloc { slot, long: true };
                        self.release(slot)
                    }
                } else {
                    let slot = *head;
                    *head = (*head + 1) % *window;
                    *short_live += 1;
                    self.alloc(slot, false)
                }
            }
        }
    }
}

impl Iterator for Plan {
    type Item = Action;

    /// The next action; a plan never ends (the tape decides how many).
    #[inline]
    fn next(&mut self) -> Option<Action> {
        let action = match std::mem::replace(&mut self.pending, Pending::None) {
            Pending::None => self.step(),
            Pending::Alloc { slot, long } => self.alloc(slot, long),
            Pending::Realloc { slot, long } => Action::Realloc {
                slot,
                new_size: self.sample_size(long),
            },
        };
        Some(action)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (usize::MAX, None)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::spec::size::SizeDist;
    use crate::spec::workload::Workload;

    /// Every lifetime shape, with reallocs and remote frees, on two
    /// threads, and every preset.
    pub(crate) fn shapes() -> Vec<Checked> {
        let lifetimes = [
            "immediate",
            "fifo:7",
            "random:50",
            "batch:9:mixed",
            "batch:9:random",
            "ring:40:0.2",
            "long-lived:0.05:100:8",
        ];
        let mut out: Vec<Checked> = lifetimes
            .iter()
            .map(|l| {
                let mut w = Workload::default();
                for (f, v) in [
                    ("threads", "2"),
                    ("ops_per_thread", "20000"),
                    ("warmup_ops", "123"),
                    ("lifetime", l),
                    ("remote_free_fraction", "0.3"),
                    ("realloc_fraction", "0.2"),
                    ("name", &l.replace(':', "-")),
                ] {
                    w.set(f, v).unwrap();
                }
                w.check().unwrap()
            })
            .collect();
        out.extend(crate::spec::preset::all().into_iter().map(|p| {
            let mut w = p.workload.quick();
            w.threads = 2;
            w.check().unwrap()
        }));
        out
    }

    fn size_bounds(d: &SizeDist) -> (usize, usize) {
        match d {
            SizeDist::Fixed { size } => (*size, *size),
            SizeDist::Uniform { min, max }
            | SizeDist::LogUniform { min, max }
            | SizeDist::InverseSquare { min, max } => (*min, *max),
            SizeDist::Weighted { table } => (
                table.iter().map(|r| r.size).min().unwrap(),
                table.iter().map(|r| r.size).max().unwrap(),
            ),
            SizeDist::Python { large_max, .. } => (16, *large_max),
        }
    }

    /// Replays `n` actions of a plan against our own model of the slot
    /// table, checking every one; returns counts (allocs, frees, handoffs,
    /// reallocs).
    fn replay(w: &Checked, thread: usize, n: usize) -> [u64; 4] {
        let mut plan = Plan::new(w, thread);
        let mut live = vec![false; plan.slots()];
        let mut counts = [0u64; 4];
        let (mut lo, mut hi) = size_bounds(&w.size);
        if let Lifetime::LongLived { size: Some(s), .. } = &w.lifetime {
            let (l2, h2) = size_bounds(s);
            (lo, hi) = (lo.min(l2), hi.max(h2));
        }
        for a in plan.by_ref().take(n) {
            match a {
                Action::Alloc { slot, size } => {
                    assert!(!live[slot], "{}: alloc into live slot {slot}", w.name);
                    assert!((lo..=hi).contains(&size), "{}: size {size}", w.name);
                    live[slot] = true;
                    counts[0] += 1;
                }
                Action::Free { slot } => {
                    assert!(live[slot], "{}: free of empty slot {slot}", w.name);
                    live[slot] = false;
                    counts[1] += 1;
                }
                Action::Handoff { slot, to } => {
                    assert!(live[slot], "{}: handoff of empty slot {slot}", w.name);
                    assert!(to != thread && to < w.threads, "{}: to {to}", w.name);
                    live[slot] = false;
                    counts[2] += 1;
                }
                Action::Realloc { slot, new_size } => {
                    assert!(live[slot], "{}: realloc of empty slot {slot}", w.name);
                    assert!((lo..=hi).contains(&new_size));
                    counts[3] += 1;
                }
            }
        }
        assert_eq!(plan.live_count(), live.iter().filter(|&&l| l).count());
        let model: Vec<usize> = (0..live.len()).filter(|&i| live[i]).collect();
        assert_eq!(plan.live_slots().collect::<Vec<_>>(), model);
        counts
    }

    #[test]
    fn plans_keep_the_slot_invariants() {
        for w in shapes() {
            for thread in 0..2 {
                let counts = replay(&w, thread, 30_000);
                assert_eq!(counts.iter().sum::<u64>(), 30_000, "{}", w.name);
            }
        }
    }

    #[test]
    fn remote_and_realloc_fractions_are_honoured() {
        let mut w = Workload::default();
        for (f, v) in [
            ("threads", "3"),
            ("lifetime", "immediate"),
            ("remote_free_fraction", "0.3"),
            ("realloc_fraction", "0.2"),
        ] {
            w.set(f, v).unwrap();
        }
        let w = w.check().unwrap();
        let [allocs, frees, handoffs, reallocs] = replay(&w, 0, 200_000);
        let remote = handoffs as f64 / (frees + handoffs) as f64;
        assert!((0.28..0.32).contains(&remote), "remote share {remote}");
        let realloc = reallocs as f64 / allocs as f64;
        assert!((0.18..0.22).contains(&realloc), "realloc share {realloc}");
        // Handoffs go round the other threads in turn.
        let targets: Vec<usize> = Plan::new(&w, 0)
            .filter_map(|a| match a {
                Action::Handoff { to, .. } => Some(to),
                _ => None,
            })
            .take(4)
            .collect();
        assert_eq!(targets, [1, 2, 1, 2]);
    }

    #[test]
    fn one_thread_frees_locally() {
        let mut w = Workload::default();
        w.set("remote_free_fraction", "1").unwrap();
        let [allocs, frees, handoffs, _] = replay(&w.check().unwrap(), 0, 10_000);
        assert_eq!(handoffs, 0);
        assert!(frees > 0 && allocs >= frees);
    }

    #[test]
    fn plans_are_deterministic_by_seed_and_thread() {
        for p in crate::spec::preset::all() {
            let mut w = p.workload.quick();
            w.threads = 2;
            let run = |w: &Workload, t: usize| {
                Plan::new(&w.clone().check().unwrap(), t)
                    .take(5_000)
                    .collect::<Vec<_>>()
            };
            let a = run(&w, 0);
            assert_eq!(a, run(&w, 0), "{}: same seed, same plan", p.name);
            let mut other = w.clone();
            other.seed += 1;
            let differs_by_seed = a != run(&other, 0);
            let differs_by_thread = a != run(&w, 1);
            // Only sizes, some lifetimes and fractions strictly between 0
            // and 1 draw random numbers.
            let fraction = |f: f64| f > 0.0 && f < 1.0;
            let random = fraction(w.remote_free_fraction)
                || fraction(w.realloc_fraction)
                || !matches!(w.size, SizeDist::Fixed { .. })
                || matches!(
                    w.lifetime,
                    Lifetime::Random { .. }
                        | Lifetime::LongLived { .. }
                        | Lifetime::Batch {
                            order: FreeOrder::Random | FreeOrder::Mixed,
                            ..
                        }
                );
            assert_eq!(differs_by_seed, random, "{}", p.name);
            if w.roles == crate::spec::workload::Roles::Symmetric {
                assert_eq!(differs_by_thread, random, "{}", p.name);
            }
        }
    }

    #[test]
    fn plans_can_move_to_another_thread() {
        fn assert_send<T: Send + 'static>(_: &T) {}
        assert_send(&Plan::new(&Workload::default().check().unwrap(), 0));
    }

    #[test]
    fn steady_only_once_the_working_set_is_full_and_nothing_is_pending() {
        let mut w = Workload::default();
        w.set("lifetime", "random:10").unwrap();
        let w = w.check().unwrap();
        let mut plan = Plan::new(&w, 0);
        for i in 0..10 {
            assert!(!plan.steady(), "filling, step {i}");
            plan.next();
        }
        assert!(plan.steady());
        plan.next(); // a free: its replacement is pending
        assert!(!plan.steady());
        plan.next();
        assert!(plan.steady());
    }

    #[test]
    fn producers_hand_only_to_consumers_which_have_no_actions() {
        let mut w = Workload::default();
        for (f, v) in [
            ("threads", "4"),
            ("roles", "producer-consumer"),
            ("remote_free_fraction", "1"),
        ] {
            w.set(f, v).unwrap();
        }
        let w = w.check().unwrap();
        let targets: Vec<usize> = Plan::new(&w, 2)
            .filter_map(|a| match a {
                Action::Handoff { to, .. } => Some(to),
                _ => None,
            })
            .take(4)
            .collect();
        assert_eq!(targets, [1, 3, 1, 3]);
        assert!(Plan::new(&w, 1).is_consumer() && !Plan::new(&w, 0).is_consumer());
        assert!(crate::spec::tape::Tape::compile(&w, 3)
            .unwrap()
            .cycle
            .is_empty());
    }

    #[test]
    fn sizes_come_in_runs() {
        let mut w = Workload::default();
        for (f, v) in [
            ("size", "1..1000"),
            ("size_run", "5"),
            ("lifetime", "immediate"),
        ] {
            w.set(f, v).unwrap();
        }
        let sizes: Vec<usize> = Plan::new(&w.check().unwrap(), 0)
            .filter_map(|a| match a {
                Action::Alloc { size, .. } => Some(size),
                _ => None,
            })
            .take(50)
            .collect();
        for run in sizes.chunks(5) {
            assert!(run.iter().all(|&s| s == run[0]), "{sizes:?}");
        }
        assert!(sizes.chunks(5).any(|r| r[0] != sizes[0]));
    }

    #[test]
    fn a_ring_keeps_a_moving_window_and_frees_around_it() {
        let mut w = Workload::default();
        w.set("lifetime", "ring:10:0.2").unwrap();
        let actions: Vec<Action> = Plan::new(&w.check().unwrap(), 0)
            .take(10 + 8 + 8 + 8)
            .collect();
        // The first fill visits every slot in order.
        for (i, a) in actions[..10].iter().enumerate() {
            assert!(matches!(a, Action::Alloc { slot, .. } if *slot == i));
        }
        // First wrap keeps slots 2..4: frees 0, 1 in order, then 9..4 in reverse.
        let frees: Vec<usize> = actions[10..18]
            .iter()
            .map(|a| match a {
                Action::Free { slot } => *slot,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(frees, [0, 1, 9, 8, 7, 6, 5, 4]);
        // Then the freed slots are filled again, in order.
        let fills: Vec<usize> = actions[18..26]
            .iter()
            .map(|a| match a {
                Action::Alloc { slot, .. } => *slot,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(fills, [0, 1, 4, 5, 6, 7, 8, 9]);
        // The next wrap keeps 4..6, so the blocks kept before are freed.
        let frees: Vec<usize> = actions[26..34]
            .iter()
            .map(|a| match a {
                Action::Free { slot } => *slot,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(frees, [0, 1, 2, 3, 9, 8, 7, 6]);
    }

    #[test]
    fn fifo_and_batch_free_in_their_order() {
        let frees = |lifetime: &str, n: usize| -> Vec<usize> {
            let mut w = Workload::default();
            w.set("lifetime", lifetime).unwrap();
            Plan::new(&w.check().unwrap(), 0)
                .filter_map(|a| match a {
                    Action::Free { slot } => Some(slot),
                    _ => None,
                })
                .take(n)
                .collect()
        };
        assert_eq!(frees("fifo:3", 6), [0, 1, 2, 0, 1, 2]);
        assert_eq!(frees("batch:3:lifo", 6), [2, 1, 0, 2, 1, 0]);
        assert_eq!(frees("batch:3:fifo", 6), [0, 1, 2, 0, 1, 2]);
        for batch in frees("batch:4:random", 400).chunks(4) {
            let mut sorted = batch.to_vec();
            sorted.sort_unstable();
            assert_eq!(sorted, [0, 1, 2, 3]);
        }
    }

    fn sizes(size: &str, n: usize) -> Vec<usize> {
        let mut w = Workload::default();
        w.set("size", size).unwrap();
        w.set("lifetime", "immediate").unwrap();
        Plan::new(&w.check().unwrap(), 0)
            .filter_map(|a| match a {
                Action::Alloc { size, .. } => Some(size),
                _ => None,
            })
            .take(n)
            .collect()
    }

    fn share(v: &[usize], f: impl Fn(usize) -> bool) -> f64 {
        v.iter().filter(|&&s| f(s)).count() as f64 / v.len() as f64
    }

    #[test]
    fn size_distributions_have_their_shape() {
        let u = sizes("10..20", 50_000);
        assert!(u.iter().all(|s| (10..=20).contains(s)));
        assert!(u.contains(&10) && u.contains(&20));

        // Log-uniform: each octave about equally likely.
        let l = sizes("log-uniform:16..4095", 80_000);
        assert!(l.iter().all(|s| (16..=4095).contains(s)));
        let low = share(&l, |s| s < 64);
        let high = share(&l, |s| s >= 1024);
        assert!((0.2..0.3).contains(&low) && (0.2..0.3).contains(&high));

        // Inverse square on 4..=32768: P(size < 8) is about one half.
        let i = sizes("inverse-square:4..32768", 80_000);
        assert!(i.iter().all(|s| (4..=32768).contains(s)));
        assert!((0.45..0.55).contains(&share(&i, |s| s < 8)));
        assert!(i.iter().any(|&s| s > 1024));

        let w = sizes("weighted:16=3,4096=1", 80_000);
        assert!(w.iter().all(|&s| s == 16 || s == 4096));
        assert!((0.72..0.78).contains(&share(&w, |s| s == 16)));

        let p = sizes("python:0.02:65536", 100_000);
        assert!((0.97..0.99).contains(&share(&p, |s| (16..=512).contains(&s))));
        assert!(share(&p, |s| s <= 64) > 0.5);
        assert!(p.iter().all(|&s| (16..=65536).contains(&s)));
    }
}
