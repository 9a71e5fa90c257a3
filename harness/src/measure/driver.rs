//! The driver: runs one (subject, workload) cell and measures it.
//!
//! ## Threads and phases
//! `threads` workers each own a [`Plan`] (the workload's deterministic
//! action sequence), a slot table (`slots[i]` = the live block in slot `i`)
//! and the receiving end of an unbounded crossbeam channel. A `Handoff`
//! sends the block (pointer, layout, tag) round-robin to the other workers,
//! which free it there: a remote free. Receivers drain their channel after
//! every action. Phases, all workers released together by a barrier that
//! the driver's own thread also joins:
//!
//! 1. warm-up: the first `warmup_ops` actions of every plan, unmeasured;
//! 2. measured: the rest of the plan (its exact `size_hint` after warm-up,
//!    else `ops_per_thread` actions, or until `duration_ms` has passed),
//!    split evenly over `rounds`; with `rounds > 1` the workers are joined
//!    after each round and new threads continue the same plans over the
//!    same slot tables, so blocks outlive the thread that allocated them
//!    (mstress); the measured time then includes the thread churn;
//! 3. after every phase a *quiesce* step: each worker counts itself done,
//!    then keeps freeing what arrives on its channel until every worker is
//!    done and its channel is empty, so no handed-off block is left in
//!    flight and remote frees belong to the phase whose actions caused them;
//! 4. snapshot: the driver's thread reads memory while the workers wait at
//!    a barrier (the "at peak" figures, see below);
//! 5. drain: every worker frees the blocks left in its slots (not counted
//!    as operations, not timed).
//!
//! The measured phase runs from the start barrier to the last worker's end
//! of quiesce, so throughput includes every remote free the phase caused.
//! One action is one operation (a handoff counts once, as the remote free).
//!
//! ## Calls the optimiser cannot remove
//! The subject's `&dyn GlobalAlloc` goes through `black_box` once per worker
//! (no devirtualisation, no inlining, no malloc/free pairing), every pointer
//! and layout passes through `black_box`, and every touch of a block is a
//! volatile write ([`verify::fill`]). A counting subject in the tests checks
//! the calls match the plans.
//!
//! ## Latency and its cost
//! With `latency_sample_one_in = N > 0` a cell runs twice with identical
//! plans: pass 1 times nothing (throughput, memory and GIL figures come from
//! it), pass 2 records latency. Pass 2 alternates epochs of
//! [`EPOCH_ACTIONS`] actions with recording on (one operation in `N` timed)
//! and off, and reads the clock at each epoch boundary. The recording
//! overhead is the median ticks per operation of the "on" epochs over the
//! median of the "off" epochs, minus one. Interleaving puts both sides under
//! the same allocator state and the same machine load, and the medians drop
//! epochs hit by preemption; comparing whole passes instead was dominated
//! by noise on a shared machine. Latency histograms therefore hold the
//! samples of the "on" epochs, about half the operations.
//!
//! **Rule:** if the overhead exceeds 5% ([`OVERHEAD_LIMIT`]), pass 2 is run
//! once more with `N' = min(1024, ceil(N * overhead / 0.025))` (the overhead
//! falls roughly as 1/N; aiming at 2.5% leaves room for noise), and the cell
//! reports `N'` and the overhead measured at `N'` (and, in
//! `requested_one_in` / `overhead_at_requested`, what it measured at `N`).
//! There is no third try;
//! the reported overhead is what was measured, noise included (it can be
//! slightly negative). `N = 0` turns timing off: one pass.
//!
//! ## GIL subject
//! Each worker takes `gil.hold()` for its whole life and wraps every
//! blocking call (barriers, the blocking channel wait in quiesce) in
//! `allow_threads`. The GIL's wait hook records into a thread-local
//! histogram that is live only during the measured phase of pass 1; the
//! counters reported are the difference of `gil_stats()` across it.
//!
//! ## Memory
//! RSS is sampled through pass 1. The "at peak" snapshot is taken at the end
//! of the measured phase (before drain): all actions done, all handoffs
//! freed, slot blocks live. For steady-state workloads that is the plateau;
//! for free-at-once workloads nothing is live and fragmentation is `None`.
//! Fragmentation = held / requested live at that moment, where held is our
//! subjects' `Stats::held()`, jemalloc's `resident`, the null subject's
//! bumped bytes, or RSS above the cell's baseline for the others.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use hdrhistogram::Histogram;

use crate::measure::clock::Clock;
use crate::measure::latency::{self, OpKind, Recorder};
use crate::measure::memory::{self, LiveCounters, Sampler};
use crate::measure::verify::{self, Fill};
use crate::results::{
    Accounting, CellMetrics, GilCounters, Memory, OpCounts, Sampling, Verification,
};
use crate::spec::workload::{Action, Plan, Workload};
use crate::subjects::{self, Subject};
use allocator::{GilGuard, GilStats};

/// Recording overhead above which the driver raises `one_in`.
pub const OVERHEAD_LIMIT: f64 = 0.05;
/// The overhead the raised `one_in` aims at.
const OVERHEAD_TARGET: f64 = 0.025;
/// The largest `one_in` the automatic rule picks.
const MAX_ONE_IN: u32 = 1024;
/// Actions per recording epoch of the timed pass.
const EPOCH_ACTIONS: u32 = 512;
/// How long a quiescing worker blocks on its channel before looking again.
const QUIESCE_POLL: Duration = Duration::from_micros(200);

/// Why a cell could not produce metrics.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CellError {
    /// A block's tag or alignment was wrong.
    #[error("verification failed: {0}")]
    Verification(String),
    /// The workload or its plan cannot be run as given.
    #[error("invalid cell: {0}")]
    Invalid(String),
    /// The subject returned null.
    #[error("allocation failed: {0}")]
    AllocFailed(String),
}

/// A live block.
struct Block {
    ptr: NonNull<u8>,
    layout: Layout,
    fill: Fill,
}

// SAFETY: a `Block` is the only handle to its allocation, so moving it to
// another thread moves ownership; every subject is `Sync`, so the block may
// be freed from any thread.
unsafe impl Send for Block {}

/// The run parameters every worker reads.
struct Shared {
    subject: Subject,
    clock: Clock,
    threads: usize,
    touch: usize,
    passes: u32,
    verify: bool,
    /// Timed one op in this many during the measured phase (0 = none).
    one_in: u32,
    record_gil: bool,
    barrier: Barrier,
    abort: AtomicBool,
    error: Mutex<Option<CellError>>,
    /// Quiesce counters: warm-up, then one per round.
    done: Vec<AtomicUsize>,
    live: Arc<LiveCounters>,
}

impl Shared {
    /// Records the first error and stops every worker at its next check.
    fn fail(&self, e: CellError) {
        let mut slot = self.error.lock().unwrap_or_else(|p| p.into_inner());
        slot.get_or_insert(e);
        self.abort.store(true, Ordering::Relaxed);
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct Counts {
    allocs: u64,
    frees_local: u64,
    frees_remote: u64,
    reallocs: u64,
    bytes: u64,
}

impl Counts {
    fn ops(&self) -> u64 {
        self.allocs + self.frees_local + self.frees_remote + self.reallocs
    }

    fn add(&mut self, o: &Counts) {
        self.allocs += o.allocs;
        self.frees_local += o.frees_local;
        self.frees_remote += o.frees_remote;
        self.reallocs += o.reallocs;
        self.bytes += o.bytes;
    }
}

/// One worker's state; it outlives the OS thread running it (rounds).
struct Worker {
    id: usize,
    plan: Plan,
    /// Measured actions still to run (`None`: until the deadline).
    measured_left: Option<u64>,
    slots: Vec<Option<Block>>,
    rx: Receiver<Block>,
    txs: Vec<Sender<Block>>,
    handoffs: usize,
    seq: u64,
    live: u64,
    measuring: bool,
    countdown: u32,
    recorder: Recorder,
    warm: Counts,
    measured: Counts,
    checked: u64,
    drained: u64,
    start: Option<Instant>,
    end: Option<Instant>,
    /// Timed pass: per-epoch cost with and without recording.
    epochs: Epochs,
}

/// Alternating epochs of the timed pass (see the module docs): ticks per
/// operation of every completed epoch, with recording on and off.
#[derive(Default)]
struct Epochs {
    on: Vec<f64>,
    off: Vec<f64>,
    recording: bool,
    left: u32,
    t0: u64,
    ops0: u64,
}

thread_local! {
    /// This worker's GIL-wait histogram (ns), present while it is recording.
    static GIL_WAIT: RefCell<Option<Histogram<u64>>> = const { RefCell::new(None) };
}

/// The GIL's wait hook: runs in the thread that waited.
fn record_gil_wait(ns: u64) {
    let _ = GIL_WAIT.try_with(|h| {
        if let Ok(mut h) = h.try_borrow_mut() {
            if let Some(h) = h.as_mut() {
                h.saturating_record(ns);
            }
        }
    });
}

/// Runs `f` with the GIL released, if this worker holds it.
fn unlocked<R>(guard: &mut Option<GilGuard<'static>>, f: impl FnOnce() -> R) -> R {
    match guard {
        Some(g) => g.allow_threads(f),
        None => f(),
    }
}

fn verification(
    subject: &str,
    p: *const u8,
    size: usize,
    m: verify::Mismatch,
    when: &str,
) -> CellError {
    CellError::Verification(format!(
        "subject `{subject}`: block at {p:#x?} (size {size}) {when}: expected tag {:#018x}, found {:#018x} at offset {}",
        m.expected, m.found, m.offset
    ))
}

impl Worker {
    /// True when this operation is to be timed.
    #[inline(always)]
    fn sample(&mut self, one_in: u32) -> bool {
        if !self.measuring || one_in == 0 || !self.epochs.recording {
            return false;
        }
        self.countdown -= 1;
        if self.countdown == 0 {
            self.countdown = one_in;
            true
        } else {
            false
        }
    }

    /// Opens the first epoch of a measured phase (timed pass only).
    fn start_epoch(&mut self, sh: &Shared) {
        let e = &mut self.epochs;
        e.recording = true;
        e.left = EPOCH_ACTIONS;
        e.t0 = sh.clock.now();
        e.ops0 = self.measured.ops();
    }

    /// Counts one action against the epoch; at its end records the epoch's
    /// ticks per operation and switches recording on or off.
    #[inline]
    fn tick_epoch(&mut self, sh: &Shared) {
        if sh.one_in == 0 {
            return;
        }
        self.epochs.left -= 1;
        if self.epochs.left == 0 {
            let now = sh.clock.now();
            let ops = self.measured.ops();
            let e = &mut self.epochs;
            if ops > e.ops0 {
                let per_op = now.wrapping_sub(e.t0) as f64 / (ops - e.ops0) as f64;
                if e.recording {
                    e.on.push(per_op);
                } else {
                    e.off.push(per_op);
                }
            }
            e.recording = !e.recording;
            e.left = EPOCH_ACTIONS;
            e.t0 = sh.clock.now();
            e.ops0 = ops;
        }
    }

    fn counts(&mut self) -> &mut Counts {
        if self.measuring {
            &mut self.measured
        } else {
            &mut self.warm
        }
    }

    fn publish_live(&self, sh: &Shared) {
        sh.live.publish(self.id, self.live);
    }

    /// Allocates through the subject, timed when sampled; checks the result.
    #[inline]
    fn allocate(
        &mut self,
        sh: &Shared,
        alloc: &dyn GlobalAlloc,
        layout: Layout,
    ) -> Result<NonNull<u8>, CellError> {
        let timed = self.sample(sh.one_in);
        let t0 = if timed { sh.clock.now() } else { 0 };
        // SAFETY: `layout` has non-zero size (checked by the caller).
        let p = black_box(unsafe { alloc.alloc(black_box(layout)) });
        if timed {
            self.recorder
                .record(OpKind::Alloc, sh.clock.now().wrapping_sub(t0));
        }
        let Some(p) = NonNull::new(p) else {
            return Err(CellError::AllocFailed(format!(
                "subject `{}` returned null for alloc(size {}, align {}) on thread {}",
                sh.subject.name,
                layout.size(),
                layout.align(),
                self.id
            )));
        };
        if !verify::aligned(p.as_ptr(), layout.align()) {
            // Misaligned: never touched, never freed (the subject broke its contract).
            return Err(CellError::Verification(format!(
                "subject `{}`: alloc(size {}, align {}) returned {:#x?}, not aligned to {}",
                sh.subject.name,
                layout.size(),
                layout.align(),
                p.as_ptr(),
                layout.align()
            )));
        }
        Ok(p)
    }

    /// Checks a block's tag, then frees it through the subject.
    fn free(
        &mut self,
        sh: &Shared,
        alloc: &dyn GlobalAlloc,
        b: Block,
        kind: OpKind,
    ) -> Result<(), CellError> {
        if sh.verify {
            // SAFETY: the block is live and `layout.size()` bytes long.
            let r = unsafe { verify::check(b.ptr.as_ptr(), b.layout.size(), b.fill, usize::MAX) };
            // A corrupted block is leaked, not freed: the allocator's own
            // metadata next to it may be damaged too.
            r.map_err(|m| {
                verification(
                    sh.subject.name,
                    b.ptr.as_ptr(),
                    b.layout.size(),
                    m,
                    "before free",
                )
            })?;
            self.checked += 1;
        }
        let timed = self.sample(sh.one_in);
        let t0 = if timed { sh.clock.now() } else { 0 };
        // SAFETY: the block was allocated by this subject with `b.layout`
        // and is freed exactly once (it was moved out of its slot/message).
        unsafe { alloc.dealloc(black_box(b.ptr.as_ptr()), black_box(b.layout)) };
        if timed {
            self.recorder.record(kind, sh.clock.now().wrapping_sub(t0));
        }
        Ok(())
    }

    /// Frees every block waiting on this worker's channel (remote frees).
    fn drain_channel(&mut self, sh: &Shared, alloc: &dyn GlobalAlloc) -> Result<(), CellError> {
        while let Ok(b) = self.rx.try_recv() {
            self.free(sh, alloc, b, OpKind::FreeRemote)?;
            self.counts().frees_remote += 1;
        }
        Ok(())
    }

    fn take(&mut self, slot: usize, what: &str) -> Result<Block, CellError> {
        self.slots
            .get_mut(slot)
            .and_then(Option::take)
            .ok_or_else(|| {
                CellError::Invalid(format!(
                    "workload plan of thread {}: {what} on slot {slot}, which holds no block",
                    self.id
                ))
            })
    }

    fn act(
        &mut self,
        sh: &Shared,
        alloc: &dyn GlobalAlloc,
        action: Action,
    ) -> Result<(), CellError> {
        match action {
            Action::Alloc { slot, size, align } => {
                let layout = layout_of(size, align, self.id)?;
                if slot >= self.slots.len() {
                    self.slots.resize_with(slot + 1, || None);
                }
                if self.slots[slot].is_some() {
                    return Err(CellError::Invalid(format!(
                        "workload plan of thread {}: alloc into slot {slot}, which already holds a block",
                        self.id
                    )));
                }
                let p = self.allocate(sh, alloc, layout)?;
                let tag = verify::tag(self.id, self.seq);
                self.seq += 1;
                // SAFETY: `p` is a fresh block of `size` bytes.
                let fill =
                    unsafe { verify::fill(p.as_ptr(), size, sh.touch, sh.passes, sh.verify, tag) };
                self.slots[slot] = Some(Block {
                    ptr: p,
                    layout,
                    fill,
                });
                self.live += size as u64;
                self.publish_live(sh);
                let c = self.counts();
                c.allocs += 1;
                c.bytes += size as u64;
            }
            Action::Free { slot } => {
                let b = self.take(slot, "free")?;
                let size = b.layout.size() as u64;
                self.free(sh, alloc, b, OpKind::FreeLocal)?;
                self.live -= size;
                self.publish_live(sh);
                self.counts().frees_local += 1;
            }
            Action::Handoff { slot } => {
                let b = self.take(slot, "handoff")?;
                self.live -= b.layout.size() as u64;
                self.publish_live(sh);
                if sh.threads == 1 {
                    // Nobody to hand it to: the free is local.
                    self.free(sh, alloc, b, OpKind::FreeLocal)?;
                    self.counts().frees_local += 1;
                } else {
                    let others = sh.threads - 1;
                    let target = (self.id + 1 + self.handoffs % others) % sh.threads;
                    self.handoffs += 1;
                    // Receivers live until the cell ends, so this cannot
                    // fail; if it ever did, the block comes back and is
                    // freed here rather than leaked.
                    if let Err(back) = self.txs[target].send(b) {
                        self.free(sh, alloc, back.into_inner(), OpKind::FreeLocal)?;
                        self.counts().frees_local += 1;
                    }
                }
            }
            Action::Realloc { slot, new_size } => {
                let b = self.take(slot, "realloc")?;
                let (old, align) = (b.layout.size(), b.layout.align());
                if let Err(e) = layout_of(new_size, align, self.id) {
                    self.slots[slot] = Some(b);
                    return Err(e);
                }
                let p = b.ptr.as_ptr();
                if sh.verify {
                    // SAFETY: the block is live and `old` bytes long.
                    let r = unsafe { verify::check(p, old, b.fill, usize::MAX) };
                    r.map_err(|m| verification(sh.subject.name, p, old, m, "before realloc"))?;
                    self.checked += 1;
                }
                let timed = self.sample(sh.one_in);
                let t0 = if timed { sh.clock.now() } else { 0 };
                // SAFETY: `p` was allocated by this subject with `b.layout`;
                // `new_size` is non-zero and valid with `align` (checked above).
                let q = black_box(unsafe {
                    alloc.realloc(black_box(p), b.layout, black_box(new_size))
                });
                if timed {
                    self.recorder
                        .record(OpKind::Realloc, sh.clock.now().wrapping_sub(t0));
                }
                let Some(q) = NonNull::new(q) else {
                    // A failed realloc leaves the old block valid: keep it for drain.
                    self.slots[slot] = Some(b);
                    return Err(CellError::AllocFailed(format!(
                        "subject `{}` returned null for realloc({old} -> {new_size} bytes, align {align}) on thread {}",
                        sh.subject.name, self.id
                    )));
                };
                if !verify::aligned(q.as_ptr(), align) {
                    return Err(CellError::Verification(format!(
                        "subject `{}`: realloc to {new_size} bytes returned {:#x?}, not aligned to {align}",
                        sh.subject.name,
                        q.as_ptr()
                    )));
                }
                if sh.verify {
                    // SAFETY: `q` holds `new_size` bytes; the first
                    // `min(old, new_size)` must be the old block's.
                    let r = unsafe { verify::check(q.as_ptr(), old, b.fill, new_size) };
                    r.map_err(|m| {
                        verification(
                            sh.subject.name,
                            q.as_ptr(),
                            new_size,
                            m,
                            "after realloc (prefix not kept)",
                        )
                    })?;
                }
                let tag = verify::tag(self.id, self.seq);
                self.seq += 1;
                // SAFETY: `q` is a live block of `new_size` bytes.
                let fill = unsafe {
                    verify::fill(q.as_ptr(), new_size, sh.touch, sh.passes, sh.verify, tag)
                };
                let layout = Layout::from_size_align(new_size, align)
                    .map_err(|e| CellError::Invalid(e.to_string()))?;
                self.slots[slot] = Some(Block {
                    ptr: q,
                    layout,
                    fill,
                });
                self.live = self.live - old as u64 + new_size as u64;
                self.publish_live(sh);
                let c = self.counts();
                c.reallocs += 1;
                c.bytes += new_size as u64;
            }
        }
        Ok(())
    }

    /// Runs up to `budget` actions (all if `None`), stopping early at
    /// `deadline`, at the end of the plan, or when another worker failed;
    /// returns how many it ran.
    fn run_actions(
        &mut self,
        sh: &Shared,
        alloc: &dyn GlobalAlloc,
        budget: Option<u64>,
        deadline: Option<Instant>,
    ) -> u64 {
        let mut n: u64 = 0;
        loop {
            if budget.is_some_and(|b| n >= b) {
                break;
            }
            if n % 64 == 0
                && (sh.abort.load(Ordering::Relaxed)
                    || deadline.is_some_and(|d| Instant::now() >= d))
            {
                break;
            }
            let Some(action) = self.plan.next() else {
                break;
            };
            n += 1;
            let r = self.act(sh, alloc, action).and_then(|()| {
                if sh.threads > 1 {
                    self.drain_channel(sh, alloc)
                } else {
                    Ok(())
                }
            });
            if let Err(e) = r {
                sh.fail(e);
                break;
            }
            if self.measuring {
                self.tick_epoch(sh);
            }
        }
        n
    }

    /// Counts this worker done with phase `phase` and frees incoming blocks
    /// until every worker is done and nothing is left in flight.
    fn quiesce(
        &mut self,
        sh: &Shared,
        alloc: &dyn GlobalAlloc,
        guard: &mut Option<GilGuard<'static>>,
        phase: usize,
    ) {
        let done = &sh.done[phase];
        done.fetch_add(1, Ordering::AcqRel);
        loop {
            if let Err(e) = self.drain_channel(sh, alloc) {
                sh.fail(e);
            }
            // Every sender counted itself done after its last send, so once
            // all are done a final drain empties the channel for good.
            if done.load(Ordering::Acquire) == sh.threads {
                if let Err(e) = self.drain_channel(sh, alloc) {
                    sh.fail(e);
                }
                return;
            }
            // Wait without the GIL until a block arrives or everyone is
            // done; the GIL is taken back once per block received, not once
            // per poll, so the GIL's counters stay the workload's.
            let (rx, threads) = (&self.rx, sh.threads);
            let got = unlocked(guard, || loop {
                match rx.recv_timeout(QUIESCE_POLL) {
                    Ok(b) => break Some(b),
                    Err(RecvTimeoutError::Timeout) if done.load(Ordering::Acquire) < threads => {}
                    Err(_) => break None,
                }
            });
            if let Some(b) = got {
                match self.free(sh, alloc, b, OpKind::FreeRemote) {
                    Ok(()) => self.counts().frees_remote += 1,
                    Err(e) => sh.fail(e),
                }
            }
        }
    }

    /// Frees every block left in the slots (checked, untimed, uncounted).
    fn drain_slots(&mut self, sh: &Shared, alloc: &dyn GlobalAlloc) {
        let measuring = std::mem::replace(&mut self.measuring, false);
        for slot in 0..self.slots.len() {
            if let Some(b) = self.slots[slot].take() {
                let size = b.layout.size() as u64;
                match self.free(sh, alloc, b, OpKind::FreeLocal) {
                    Ok(()) => {
                        self.live -= size;
                        self.drained += 1;
                    }
                    Err(e) => sh.fail(e),
                }
            }
        }
        self.measuring = measuring;
        self.publish_live(sh);
    }
}

/// A workload integer field as the type the driver needs, saturating; the
/// field types are the workload module's choice, not the driver's.
fn num<T: TryFrom<u64> + Bounded, F: TryInto<u64>>(v: F) -> T {
    v.try_into()
        .ok()
        .and_then(|v| T::try_from(v).ok())
        .unwrap_or(T::MAX)
}

/// Integer types with a largest value.
trait Bounded {
    const MAX: Self;
}
impl Bounded for u32 {
    const MAX: Self = u32::MAX;
}
impl Bounded for u64 {
    const MAX: Self = u64::MAX;
}
impl Bounded for usize {
    const MAX: Self = usize::MAX;
}

fn layout_of(size: usize, align: usize, thread: usize) -> Result<Layout, CellError> {
    if size == 0 {
        return Err(CellError::Invalid(format!(
            "workload plan of thread {thread}: a request of size 0 (GlobalAlloc requires size >= 1)"
        )));
    }
    Layout::from_size_align(size, align).map_err(|_| {
        CellError::Invalid(format!(
            "workload plan of thread {thread}: size {size} with align {align} is not a valid layout \
             (align must be a power of two and the rounded size at most isize::MAX)"
        ))
    })
}

/// What one round asks of a worker.
#[derive(Clone, Copy)]
struct Round {
    index: usize,
    /// Rounds left, this one included.
    left: u64,
    warmup: u64,
    duration: Option<Duration>,
}

/// A worker thread's life for one round.
fn worker_round(mut w: Worker, sh: Arc<Shared>, round: Round) -> Worker {
    let alloc: &dyn GlobalAlloc = black_box(sh.subject.alloc);
    let mut guard = sh.subject.gil.map(|g| g.hold());
    if round.index == 0 {
        w.measuring = false;
        w.run_actions(&sh, alloc, Some(round.warmup), None);
        w.quiesce(&sh, alloc, &mut guard, 0);
        // Warm-up over everywhere; the driver reads the GIL counters here.
        unlocked(&mut guard, || sh.barrier.wait());
    }
    unlocked(&mut guard, || sh.barrier.wait());
    w.measuring = true;
    let now = Instant::now();
    w.start.get_or_insert(now);
    if sh.record_gil {
        let _ = GIL_WAIT.try_with(|h| *h.borrow_mut() = Some(latency::new_histogram()));
    }
    w.start_epoch(&sh);
    // An even share of what is left of the measured actions.
    let budget = w.measured_left.map(|m| m.div_ceil(round.left));
    let ran = w.run_actions(&sh, alloc, budget, round.duration.map(|d| now + d));
    if let Some(m) = &mut w.measured_left {
        *m = m.saturating_sub(ran);
    }
    w.quiesce(&sh, alloc, &mut guard, round.index + 1);
    w.end = Some(Instant::now());
    if let Ok(Some(h)) = GIL_WAIT.try_with(|h| h.borrow_mut().take()) {
        w.recorder.add_gil_wait(&h);
    }
    if round.left == 1 {
        // The driver takes the "at peak" snapshot between these two.
        unlocked(&mut guard, || sh.barrier.wait());
        unlocked(&mut guard, || sh.barrier.wait());
        w.drain_slots(&sh, alloc);
    }
    drop(guard);
    w
}

/// Memory figures taken at the end of the measured phase.
#[derive(Default)]
struct Snapshot {
    requested_live: u64,
    rss: u64,
    held: Option<u64>,
    accounting: Option<Accounting>,
    reference: BTreeMap<String, u64>,
    gil_end: Option<GilStats>,
}

/// What one pass measured.
struct Pass {
    measured: Counts,
    warm: Counts,
    duration: Duration,
    recorder: Recorder,
    checked: u64,
    /// Ticks per operation of the timed pass's epochs, all workers.
    epochs_on: Vec<f64>,
    epochs_off: Vec<f64>,
    snapshot: Snapshot,
    gil_start: Option<GilStats>,
}

impl Pass {
    fn rate(&self) -> f64 {
        let s = self.duration.as_secs_f64();
        if s > 0.0 {
            self.measured.ops() as f64 / s
        } else {
            0.0
        }
    }

    /// Recording overhead from the epochs: median cost per operation with
    /// recording on over the median with it off, minus one.
    fn overhead(&self) -> Option<f64> {
        let on = median(&self.epochs_on)?;
        let off = median(&self.epochs_off)?;
        (off > 0.0).then(|| on / off - 1.0)
    }
}

fn median(v: &[f64]) -> Option<f64> {
    let mut v = v.to_vec();
    v.sort_unstable_by(f64::total_cmp);
    v.get(v.len() / 2).copied()
}

/// Runs every round of one pass; returns it and the number of blocks freed
/// at drain.
fn run_pass(
    subject: &Subject,
    w: &Workload,
    clock: Clock,
    one_in: u32,
    record_gil: bool,
    live: Arc<LiveCounters>,
) -> Result<(Pass, u64), CellError> {
    let threads = w.threads;
    if threads == 0 {
        return Err(CellError::Invalid(
            "workload field `threads` must be at least 1".into(),
        ));
    }
    let rounds = num::<usize, _>(w.rounds).max(1);
    let plans: Vec<Plan> = (0..threads).map(|t| w.plan(t)).collect();
    let duration = w.duration_ms.map(|ms| Duration::from_millis(num(ms)));
    let warmup: u64 = num(w.warmup_ops);
    // Measured actions per thread: the plan's exact length after warm-up
    // when it tells (`size_hint`), else `ops_per_thread` unless the phase
    // is timed. Either way the plan ending first ends the phase.
    let measured_total = |p: &Plan| match p.size_hint() {
        (lo, Some(hi)) if lo == hi => Some((hi as u64).saturating_sub(warmup)),
        _ if duration.is_some() => None,
        _ => Some(w.ops_per_thread.unwrap_or_default()),
    };
    let sh = Arc::new(Shared {
        subject: *subject,
        clock,
        threads,
        touch: num(w.touch_bytes),
        passes: num(w.touch_passes),
        verify: verifies(subject, w),
        one_in,
        record_gil: record_gil && subject.gil.is_some(),
        barrier: Barrier::new(threads + 1),
        abort: AtomicBool::new(false),
        error: Mutex::new(None),
        done: (0..=rounds).map(|_| AtomicUsize::new(0)).collect(),
        live: live.clone(),
    });
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..threads).map(|_| crossbeam_channel::unbounded()).unzip();
    let mut workers: Vec<Worker> = plans
        .into_iter()
        .zip(rxs)
        .enumerate()
        .map(|(id, (plan, rx))| Worker {
            id,
            measured_left: measured_total(&plan),
            plan,
            slots: Vec::new(),
            rx,
            txs: txs.clone(),
            handoffs: 0,
            seq: 0,
            live: 0,
            measuring: false,
            countdown: one_in.max(1),
            recorder: Recorder::new(),
            warm: Counts::default(),
            measured: Counts::default(),
            checked: 0,
            drained: 0,
            start: None,
            end: None,
            epochs: Epochs::default(),
        })
        .collect();
    drop(txs);

    let mut gil_start = None;
    let mut snapshot = Snapshot::default();
    for r in 0..rounds {
        let last = r + 1 == rounds;
        let round = Round {
            index: r,
            left: (rounds - r) as u64,
            warmup,
            duration: duration.map(|d| d / rounds as u32),
        };
        let mut handles = Vec::with_capacity(threads);
        for wk in workers.drain(..) {
            let sh = sh.clone();
            let id = wk.id;
            let h = std::thread::Builder::new()
                .name(format!("worker-{id}"))
                .spawn(move || worker_round(wk, sh, round))
                .map_err(|e| CellError::Invalid(format!("cannot start worker thread {id}: {e}")))?;
            handles.push(h);
        }
        if r == 0 {
            sh.barrier.wait();
            gil_start = subject.gil.map(|g| g.gil_stats());
        }
        sh.barrier.wait();
        if last {
            sh.barrier.wait();
            snapshot = take_snapshot(subject, &live);
            sh.barrier.wait();
        }
        for h in handles {
            let wk = h
                .join()
                .map_err(|_| CellError::Invalid("a worker thread panicked".into()))?;
            workers.push(wk);
        }
        workers.sort_by_key(|w| w.id);
    }
    if let Some(e) = sh.error.lock().unwrap_or_else(|p| p.into_inner()).take() {
        return Err(e);
    }
    let mut pass = Pass {
        measured: Counts::default(),
        warm: Counts::default(),
        duration: Duration::ZERO,
        recorder: Recorder::new(),
        checked: 0,
        epochs_on: Vec::new(),
        epochs_off: Vec::new(),
        snapshot,
        gil_start,
    };
    let start = workers.iter().filter_map(|w| w.start).min();
    let end = workers.iter().filter_map(|w| w.end).max();
    if let (Some(s), Some(e)) = (start, end) {
        pass.duration = e.saturating_duration_since(s);
    }
    let mut drained = 0;
    for w in &workers {
        pass.measured.add(&w.measured);
        pass.warm.add(&w.warm);
        pass.recorder.merge(&w.recorder);
        pass.checked += w.checked;
        pass.epochs_on.extend_from_slice(&w.epochs.on);
        pass.epochs_off.extend_from_slice(&w.epochs.off);
        drained += w.drained;
    }
    Ok((pass, drained))
}

fn take_snapshot(subject: &Subject, live: &LiveCounters) -> Snapshot {
    // GIL counters first: reading `stats()` takes the GIL once more.
    let gil_end = subject.gil.map(|g| g.gil_stats());
    Snapshot {
        requested_live: live.total(),
        rss: memory::rss_bytes(),
        held: subjects::held_bytes(subject),
        accounting: subject.stats.map(|s| Accounting::from(&s.stats())),
        reference: subjects::reference_stats(subject.name),
        gil_end,
    }
}

/// Runs one cell: `workload.threads` workers driving `subject`.
/// Whether blocks are tagged and checked: as the workload says, except for
/// the `null` subject, whose ring reuses memory without tracking frees
/// (see `null.rs`) and so has no contents to verify.
fn verifies(subject: &Subject, w: &Workload) -> bool {
    w.verify && subject.family != subjects::Family::Null
}

pub fn run_cell(subject: &Subject, workload: &Workload) -> Result<CellMetrics, CellError> {
    run_cell_with_clock(subject, workload, Clock::calibrate())
}

/// [`run_cell`] with a given clock (calibrate once per process and reuse).
pub fn run_cell_with_clock(
    subject: &Subject,
    workload: &Workload,
    clock: Clock,
) -> Result<CellMetrics, CellError> {
    run_cell_inner(subject, workload, clock).map(|(m, _)| m)
}

fn run_cell_inner(
    subject: &Subject,
    w: &Workload,
    clock: Clock,
) -> Result<(CellMetrics, u64), CellError> {
    w.validate()
        .map_err(|e| CellError::Invalid(e.to_string()))?;
    if let Some(g) = subject.gil {
        g.set_switch_interval(Duration::from_micros(num(w.switch_interval_us)));
        g.set_wait_hook(Some(record_gil_wait));
    }
    let result = measure(subject, w, clock);
    if let Some(g) = subject.gil {
        g.set_wait_hook(None);
    }
    result
}

fn measure(subject: &Subject, w: &Workload, clock: Clock) -> Result<(CellMetrics, u64), CellError> {
    let requested_one_in: u32 = num(w.latency_sample_one_in);
    let origin = Instant::now();
    let rss_baseline = memory::rss_bytes();
    let null_before = (subject.name == "null").then(|| crate::subjects::null::NULL.bumped() as u64);

    // Pass 1: throughput, memory and the GIL, nothing timed.
    let live = Arc::new(LiveCounters::new(w.threads));
    let sampler = Sampler::start(origin, live.clone());
    let pass1 = run_pass(subject, w, clock, 0, true, live);
    let sampled = sampler.finish();
    let (pass1, drained) = pass1?;
    let peak_rss = memory::peak_rss_bytes();
    let rss_after_drain = memory::rss_bytes();
    let accounting_at_end = subject.stats.map(|s| Accounting::from(&s.stats()));
    let mut reference = pass1.snapshot.reference.clone();
    for (k, v) in subjects::reference_stats(subject.name) {
        reference.insert(format!("{k}.after_drain"), v);
    }

    // Pass 2 (and at most one retry): latency.
    let mut sampling = Sampling {
        one_in: 0,
        overhead: None,
        requested_one_in,
        overhead_at_requested: None,
    };
    let mut timed = None;
    if requested_one_in > 0 {
        let fresh = || Arc::new(LiveCounters::new(w.threads));
        let mut one_in = requested_one_in;
        let (mut p2, _) = run_pass(subject, w, clock, one_in, false, fresh())?;
        let first = p2.overhead();
        let mut overhead = first;
        if let Some(o) = first.filter(|&o| o > OVERHEAD_LIMIT && one_in < MAX_ONE_IN) {
            one_in =
                ((one_in as f64 * o / OVERHEAD_TARGET).ceil() as u32).clamp(one_in + 1, MAX_ONE_IN);
            p2 = run_pass(subject, w, clock, one_in, false, fresh())?.0;
            overhead = p2.overhead();
        }
        sampling = Sampling {
            one_in,
            overhead,
            requested_one_in,
            overhead_at_requested: first,
        };
        timed = Some(p2);
    }

    let mut lat = BTreeMap::new();
    if let Some(p2) = &timed {
        for kind in [
            OpKind::Alloc,
            OpKind::FreeLocal,
            OpKind::FreeRemote,
            OpKind::Realloc,
        ] {
            let h = p2.recorder.histogram(kind);
            if !h.is_empty() {
                lat.insert(
                    kind.name().to_string(),
                    latency::summarise(h, clock.ns_per_tick()),
                );
            }
        }
    }
    let gw = pass1.recorder.histogram(OpKind::GilWait);
    if !gw.is_empty() {
        lat.insert(
            OpKind::GilWait.name().to_string(),
            latency::summarise(gw, 1.0),
        );
    }

    let snap = &pass1.snapshot;
    let held = match (snap.held, null_before) {
        (Some(h), Some(before)) => Some(h.saturating_sub(before)),
        (Some(h), None) => Some(h),
        (None, _) => Some(snap.rss.saturating_sub(rss_baseline)),
    };
    let fragmentation = match held {
        Some(h) if snap.requested_live > 0 => Some(h as f64 / snap.requested_live as f64),
        _ => None,
    };
    let gil = match (subject.gil, pass1.gil_start, snap.gil_end) {
        (Some(_), Some(a), Some(b)) => Some(GilCounters {
            acquisitions: b.acquisitions.saturating_sub(a.acquisitions),
            contended: b.contended.saturating_sub(a.contended),
            switches: b.switches.saturating_sub(a.switches),
            switch_interval_us: num(w.switch_interval_us),
        }),
        _ => None,
    };
    let m = &pass1.measured;
    let rate = pass1.rate();
    let metrics = CellMetrics {
        ops: m.ops(),
        duration_s: pass1.duration.as_secs_f64(),
        ops_per_sec: rate,
        ops_per_sec_repeats: vec![rate],
        warmup_ops: pass1.warm.ops(),
        counts: OpCounts {
            allocs: m.allocs,
            frees_local: m.frees_local,
            frees_remote: m.frees_remote,
            reallocs: m.reallocs,
            bytes_requested: m.bytes,
        },
        latency: lat,
        sampling,
        memory: Memory {
            rss_timeline: sampled.timeline,
            rss_baseline_bytes: rss_baseline,
            peak_rss_bytes: peak_rss,
            rss_after_drain_bytes: rss_after_drain,
            requested_peak_bytes: sampled.requested_peak.max(snap.requested_live),
            fragmentation,
            accounting_at_peak: snap.accounting.clone(),
            accounting_at_end,
            reference_stats: reference,
        },
        verification: Verification {
            enabled: verifies(subject, w),
            blocks_checked: pass1.checked + timed.as_ref().map_or(0, |p| p.checked),
        },
        gil,
    };
    Ok((metrics, drained))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subjects::Family;
    use allocator::Gil;
    use std::alloc::System;
    use std::sync::atomic::{AtomicPtr, AtomicU64};

    /// Forwards to `System` and counts calls.
    #[derive(Default)]
    struct Counting {
        allocs: AtomicU64,
        deallocs: AtomicU64,
        reallocs: AtomicU64,
    }

    // SAFETY: forwards to `System` unchanged.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            self.allocs.fetch_add(1, Ordering::Relaxed);
            // SAFETY: caller's contract.
            unsafe { System.alloc(l) }
        }
        unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
            self.deallocs.fetch_add(1, Ordering::Relaxed);
            // SAFETY: caller's contract.
            unsafe { System.dealloc(p, l) }
        }
        unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
            self.reallocs.fetch_add(1, Ordering::Relaxed);
            // SAFETY: caller's contract.
            unsafe { System.realloc(p, l, n) }
        }
    }

    fn test_subject(name: &'static str, alloc: &'static (dyn GlobalAlloc + Sync)) -> Subject {
        Subject {
            name,
            about: "test subject",
            family: Family::Reference,
            alloc,
            stats: None,
            gil: None,
        }
    }

    fn workload(threads: usize, ops: u64) -> Workload {
        Workload {
            threads,
            ops_per_thread: Some(ops),
            warmup_ops: 500,
            remote_free_fraction: 0.3,
            realloc_fraction: 0.1,
            verify: true,
            latency_sample_one_in: 0,
            ..Workload::default()
        }
    }

    /// What the plans ask for: (allocs, local frees, handoffs, reallocs,
    /// blocks live at the end), replayed from the same deterministic plans.
    fn replay(w: &Workload) -> [u64; 5] {
        let mut out = [0u64; 5];
        for t in 0..w.threads {
            let mut live = std::collections::HashSet::new();
            for a in w.plan(t) {
                match a {
                    Action::Alloc { slot, .. } => {
                        out[0] += 1;
                        live.insert(slot);
                    }
                    Action::Free { slot } => {
                        out[1] += 1;
                        live.remove(&slot);
                    }
                    Action::Handoff { slot } => {
                        out[2] += 1;
                        live.remove(&slot);
                    }
                    Action::Realloc { .. } => out[3] += 1,
                }
            }
            out[4] += live.len() as u64;
        }
        out
    }

    fn check_counts(w: &Workload) {
        let counter: &'static Counting = Box::leak(Box::default());
        let s = test_subject("counting", counter);
        let (m, drained) = run_cell_inner(&s, w, Clock::calibrate()).expect("cell runs");
        let [allocs, frees, handoffs, reallocs, live_end] = replay(w);
        assert_eq!(counter.allocs.load(Ordering::Relaxed), allocs);
        assert_eq!(counter.reallocs.load(Ordering::Relaxed), reallocs);
        assert_eq!(
            counter.deallocs.load(Ordering::Relaxed),
            frees + handoffs + live_end
        );
        assert_eq!(drained, live_end);
        // One action, one operation, split between warm-up and measured.
        assert_eq!(m.ops + m.warmup_ops, allocs + frees + handoffs + reallocs);
        let c = &m.counts;
        assert_eq!(
            m.ops,
            c.allocs + c.frees_local + c.frees_remote + c.reallocs
        );
        assert_eq!(m.warmup_ops, w.warmup_ops * w.threads as u64);
        if w.threads > 1 {
            assert!(c.frees_remote > 0);
        }
        // Every block was checked before each free and each realloc.
        assert_eq!(
            m.verification.blocks_checked,
            frees + handoffs + live_end + reallocs
        );
        assert!(m.latency.is_empty() && m.sampling.one_in == 0);
        assert!(m.ops_per_sec > 0.0 && m.duration_s > 0.0);
        assert!(!m.memory.rss_timeline.is_empty());
        assert!(m.memory.requested_peak_bytes > 0);
    }

    #[test]
    fn driver_calls_match_the_plans() {
        check_counts(&workload(1, 20_000));
        check_counts(&workload(2, 20_000));
        check_counts(&workload(3, 5_000));
    }

    #[test]
    fn driver_rounds_keep_blocks_across_threads() {
        let w = Workload {
            rounds: 4,
            ..workload(2, 10_000)
        };
        check_counts(&w);
    }

    #[test]
    fn driver_times_every_kind_and_reports_the_overhead() {
        let counter: &'static Counting = Box::leak(Box::default());
        let s = test_subject("counting", counter);
        let w = Workload {
            latency_sample_one_in: 1,
            ..workload(2, 20_000)
        };
        let m = run_cell(&s, &w).expect("cell runs");
        let [allocs, ..] = replay(&w);
        // Pass 1, pass 2, and possibly one retry at a raised `one_in`.
        let passes = counter.allocs.load(Ordering::Relaxed) / allocs;
        assert!(passes == 2 || passes == 3, "{passes} passes");
        assert_eq!(counter.allocs.load(Ordering::Relaxed) % allocs, 0);
        assert!(m.sampling.overhead.is_some_and(f64::is_finite));
        assert_eq!(m.sampling.one_in > 1, passes == 3);
        for kind in ["alloc", "free_local", "free_remote", "realloc"] {
            let l = &m.latency[kind];
            assert!(l.count > 0 && l.hdr_v2.is_some(), "{kind}");
            assert!(l.min_ns <= l.max_ns && l.percentiles.len() == 8, "{kind}");
        }
        // Only the "on" epochs of the timed pass record.
        assert!(m.latency["alloc"].count <= m.counts.allocs);
    }

    /// Hands out the block it returned last a second time (a double
    /// handout, the classic free-list corruption), once, to a request that
    /// fits inside it (so the test itself never writes out of bounds).
    struct DoubleHandout {
        calls: AtomicU64,
        last: AtomicPtr<u8>,
        last_size: AtomicUsize,
        dup: AtomicPtr<u8>,
        dup_freed_once: AtomicBool,
    }

    // SAFETY: forwards to `System`, except that one block is returned twice;
    // its memory is freed at most once (the first dealloc of it is skipped),
    // so no call frees or touches memory `System` does not hold for us.
    unsafe impl GlobalAlloc for DoubleHandout {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            let n = self.calls.fetch_add(1, Ordering::Relaxed);
            let last = self.last.load(Ordering::Relaxed);
            if n >= 100
                && !last.is_null()
                && l.size() <= self.last_size.load(Ordering::Relaxed)
                && verify::aligned(last, l.align())
                && self.dup.load(Ordering::Relaxed).is_null()
            {
                self.dup.store(last, Ordering::Relaxed);
                return last;
            }
            // SAFETY: caller's contract.
            let p = unsafe { System.alloc(l) };
            self.last_size.store(l.size(), Ordering::Relaxed);
            self.last.store(p, Ordering::Relaxed);
            p
        }
        unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
            let _ = self.last.compare_exchange(
                p,
                std::ptr::null_mut(),
                Ordering::Relaxed,
                Ordering::Relaxed,
            );
            if p == self.dup.load(Ordering::Relaxed)
                && !self.dup_freed_once.swap(true, Ordering::Relaxed)
            {
                return;
            }
            // SAFETY: caller's contract; the duplicate is freed only once.
            unsafe { System.dealloc(p, l) }
        }
    }

    #[test]
    fn verification_catches_a_block_handed_out_twice() {
        let bad: &'static DoubleHandout = Box::leak(Box::new(DoubleHandout {
            calls: AtomicU64::new(0),
            last: AtomicPtr::new(std::ptr::null_mut()),
            last_size: AtomicUsize::new(0),
            dup: AtomicPtr::new(std::ptr::null_mut()),
            dup_freed_once: AtomicBool::new(false),
        }));
        let w = Workload {
            realloc_fraction: 0.0,
            remote_free_fraction: 0.0,
            ..workload(1, 2_000)
        };
        let s = test_subject("double-handout", bad);
        let err = run_cell(&s, &w).expect_err("corruption must fail the cell");
        let CellError::Verification(msg) = &err else {
            panic!("wrong error: {err}");
        };
        let dup = bad.dup.load(Ordering::Relaxed);
        assert!(!dup.is_null());
        assert!(msg.contains("subject `double-handout`"), "{msg}");
        assert!(msg.contains(&format!("{dup:#x?}")), "{msg}");
        assert!(
            msg.contains("expected tag 0x") && msg.contains("found 0x"),
            "{msg}"
        );
    }

    /// A realloc that loses the first byte of the old contents.
    struct LossyRealloc;

    // SAFETY: forwards to `System`; `realloc` returns a fresh block of the
    // new size (only its contents are wrong, which is the point).
    unsafe impl GlobalAlloc for LossyRealloc {
        unsafe fn alloc(&self, l: Layout) -> *mut u8 {
            // SAFETY: caller's contract.
            unsafe { System.alloc(l) }
        }
        unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
            // SAFETY: caller's contract.
            unsafe { System.dealloc(p, l) }
        }
        unsafe fn realloc(&self, p: *mut u8, l: Layout, n: usize) -> *mut u8 {
            // SAFETY: caller's contract.
            let q = unsafe { System.realloc(p, l, n) };
            if !q.is_null() {
                // SAFETY: `q` holds `n >= 1` bytes.
                unsafe { *q ^= 0xFF };
            }
            q
        }
    }

    #[test]
    fn verification_catches_a_realloc_that_loses_the_prefix() {
        let w = Workload {
            realloc_fraction: 0.5,
            ..workload(1, 2_000)
        };
        let err = run_cell(&test_subject("lossy", &LossyRealloc), &w).expect_err("must fail");
        let msg = err.to_string();
        assert!(
            matches!(err, CellError::Verification(_))
                && msg.contains("after realloc")
                && msg.contains("offset 0"),
            "{msg}"
        );
    }

    #[test]
    fn null_subject_serves_every_alignment_through_the_driver() {
        let null = crate::subjects::lookup("null", allocator::Geometry::CLASSIC).expect("null");
        for align in [8, 64, 4096] {
            let w = Workload {
                align,
                ..workload(2, 5_000)
            };
            // Verification checks the alignment of every block.
            let m = run_cell(&null, &w).expect("null subject runs");
            assert!(m.memory.fragmentation.is_some_and(|f| f >= 1.0));
            assert_eq!(
                m.memory.reference_stats.get("capacity").map(|&c| c > 0),
                Some(true)
            );
        }
    }

    #[test]
    fn gil_subject_holds_and_releases_around_blocking_calls() {
        let gil: &'static Gil = Box::leak(Box::new(Gil::new(allocator::Geometry::CLASSIC)));
        let s = Subject {
            gil: Some(gil),
            ..test_subject("gil-standin", gil)
        };
        let w = Workload {
            switch_interval_us: 1_000,
            ..workload(2, 5_000)
        };
        let m = run_cell(&s, &w).expect("gil cell runs");
        let g = m.gil.expect("gil counters");
        assert!(g.acquisitions >= 2, "{g:?}");
        assert_eq!(g.switch_interval_us, 1_000);
        assert_eq!(gil.switch_interval(), Duration::from_micros(1_000));
        assert!(m.counts.frees_remote > 0);
    }

    #[test]
    fn bad_layouts_are_reported_not_run() {
        let w = Workload {
            align: 3,
            ..workload(2, 100)
        };
        let err = run_cell(&test_subject("system", &System), &w).expect_err("align 3");
        assert!(
            matches!(&err, CellError::Invalid(m) if m.contains("align") && m.contains('3')),
            "{err}"
        );
    }

    /// Refuses every request.
    struct Exhausted;

    // SAFETY: `alloc` returns null (allowed); nothing is ever handed out.
    unsafe impl GlobalAlloc for Exhausted {
        unsafe fn alloc(&self, _: Layout) -> *mut u8 {
            std::ptr::null_mut()
        }
        unsafe fn dealloc(&self, _: *mut u8, _: Layout) {}
    }

    #[test]
    fn a_null_from_the_subject_fails_the_cell_cleanly() {
        let err = run_cell(&test_subject("exhausted", &Exhausted), &workload(2, 1_000))
            .expect_err("null must fail the cell");
        let msg = err.to_string();
        assert!(
            matches!(err, CellError::AllocFailed(_)) && msg.contains("`exhausted` returned null"),
            "{msg}"
        );
    }

    #[test]
    fn duration_mode_runs_until_the_deadline_then_drains() {
        let counter: &'static Counting = Box::leak(Box::default());
        let w = Workload {
            duration_ms: Some(30),
            ops_per_thread: None,
            rounds: 2,
            ..workload(2, 0)
        };
        let m = run_cell(&test_subject("counting", counter), &w).expect("cell runs");
        assert!(m.ops > 0);
        // Everything allocated was freed: nothing leaks past the cell.
        assert_eq!(
            counter.allocs.load(Ordering::Relaxed),
            counter.deallocs.load(Ordering::Relaxed)
        );
    }
}
