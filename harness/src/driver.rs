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
//! 2. measured: the rest of the plan (or `duration_ms`), split evenly over
//!    `rounds`; with `rounds > 1` the workers are joined after each round
//!    and new threads continue the same plans over the same slot tables, so
//!    blocks outlive the thread that allocated them (mstress);
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
//! plans: pass 1 without timing (throughput, memory, GIL figures), pass 2
//! timing one operation in `N` (latency). The recording overhead is
//! `1 - rate(pass 2) / rate(pass 1)`. **Rule:** if it exceeds 5%, pass 2 is
//! run once more with `N' = min(1024, ceil(N * overhead / 0.025))` (the
//! overhead falls roughly as 1/N; aiming at 2.5% leaves room for noise), and
//! the cell reports `N'` and the overhead measured at `N'`. There is no
//! third try; the reported overhead is what was measured, including noise
//! (it can be slightly negative). `N = 0` turns timing off: one pass.
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

use crossbeam_channel::{Receiver, Sender};
use hdrhistogram::Histogram;

use crate::allocator_api::{GilGuard, GilStats};
use crate::clock::Clock;
use crate::latency::{self, OpKind, Recorder};
use crate::memory::{self, LiveCounters, Sampler};
use crate::results::{
    Accounting, CellMetrics, GilCounters, Memory, OpCounts, Sampling, Verification,
};
use crate::subject::{self, Subject};
use crate::verify::{self, Fill};
use crate::workload::{Action, Plan, Workload};

/// Recording overhead above which the driver raises `one_in`.
pub const OVERHEAD_LIMIT: f64 = 0.05;
/// The overhead the raised `one_in` aims at.
const OVERHEAD_TARGET: f64 = 0.025;
/// The largest `one_in` the automatic rule picks.
const MAX_ONE_IN: u32 = 1024;
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
        if !self.measuring || one_in == 0 {
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
        let timed = kind != OpKind::GilWait && self.sample(sh.one_in);
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
    /// `deadline`, at the end of the plan, or when another worker failed.
    fn run_actions(
        &mut self,
        sh: &Shared,
        alloc: &dyn GlobalAlloc,
        budget: Option<u64>,
        deadline: Option<Instant>,
    ) {
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
        }
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
            let rx = &self.rx;
            if let Ok(b) = unlocked(guard, || rx.recv_timeout(QUIESCE_POLL)) {
                let r = self.free(sh, alloc, b, OpKind::FreeRemote);
                match r {
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
    last: bool,
    warmup: u64,
    budget: Option<u64>,
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
    w.run_actions(&sh, alloc, round.budget, round.duration.map(|d| now + d));
    w.quiesce(&sh, alloc, &mut guard, round.index + 1);
    w.end = Some(Instant::now());
    if let Ok(Some(h)) = GIL_WAIT.try_with(|h| h.borrow_mut().take()) {
        w.recorder.add_gil_wait(&h);
    }
    if round.last {
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
}

/// The throughput cost of recording: `1 - timed / untimed`.
fn overhead(untimed: f64, timed: f64) -> Option<f64> {
    (untimed > 0.0).then(|| 1.0 - timed / untimed)
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
    let total = plans[0].size_hint().1.map(|n| n as u64);
    let duration = w.duration_ms.map(|ms| Duration::from_millis(num(ms)));
    if total.is_none() && duration.is_none() {
        return Err(CellError::Invalid(
            "the workload's plan never ends and `duration_ms` is not set".into(),
        ));
    }
    let warmup = num::<u64, _>(w.warmup_ops).min(total.unwrap_or(u64::MAX));
    let measured_total = total.map(|t| t - warmup);
    let sh = Arc::new(Shared {
        subject: *subject,
        clock,
        threads,
        touch: num(w.touch_bytes),
        passes: num(w.touch_passes),
        verify: w.verify,
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
        })
        .collect();
    drop(txs);

    let mut gil_start = None;
    let mut snapshot = Snapshot::default();
    let mut done_budget = 0u64;
    for r in 0..rounds {
        let last = r + 1 == rounds;
        let budget = measured_total.map(|m| {
            let per = m.div_ceil(rounds as u64);
            let b = if last {
                m - done_budget
            } else {
                per.min(m - done_budget)
            };
            done_budget += b;
            b
        });
        let round = Round {
            index: r,
            last,
            warmup,
            budget,
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
        drained += w.drained;
    }
    Ok((pass, drained))
}

fn take_snapshot(subject: &Subject, live: &LiveCounters) -> Snapshot {
    Snapshot {
        requested_live: live.total(),
        rss: memory::rss_bytes(),
        held: subject::held_bytes(subject),
        accounting: subject.stats.map(|s| Accounting::from(&s.stats())),
        reference: subject::reference_stats(subject.name),
        gil_end: subject.gil.map(|g| g.gil_stats()),
    }
}

/// Runs one cell: `workload.threads` workers driving `subject`.
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
    let null_before = (subject.name == "null").then(|| crate::null::NULL.bumped() as u64);

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
    for (k, v) in subject::reference_stats(subject.name) {
        reference.insert(format!("{k}.after_drain"), v);
    }

    // Pass 2 (and at most one retry): latency.
    let mut sampling = Sampling {
        one_in: 0,
        overhead: None,
    };
    let mut timed = None;
    if requested_one_in > 0 {
        let mut one_in = requested_one_in;
        let fresh = || Arc::new(LiveCounters::new(w.threads));
        let (mut p2, _) = run_pass(subject, w, clock, one_in, false, fresh())?;
        let mut overhead = overhead(pass1.rate(), p2.rate());
        if overhead.is_some_and(|o| o > OVERHEAD_LIMIT) && one_in < MAX_ONE_IN {
            let o = overhead.unwrap_or(OVERHEAD_LIMIT);
            one_in =
                ((one_in as f64 * o / OVERHEAD_TARGET).ceil() as u32).clamp(one_in + 1, MAX_ONE_IN);
            p2 = run_pass(subject, w, clock, one_in, false, fresh())?.0;
            overhead = self::overhead(pass1.rate(), p2.rate());
        }
        sampling = Sampling { one_in, overhead };
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
            acquisitions: b.acquisitions - a.acquisitions,
            contended: b.contended - a.contended,
            switches: b.switches - a.switches,
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
            enabled: w.verify,
            blocks_checked: pass1.checked + timed.as_ref().map_or(0, |p| p.checked),
        },
        gil,
    };
    Ok((metrics, drained))
}
