//! The measured loop: one worker replaying its tape against the subject.
//!
//! Per operation the loop reads the next 8-byte [`Op`] of the tape, calls
//! the subject through `&dyn GlobalAlloc`, keeps the pointer (and the size
//! the next free needs) in a raw slot table, writes exactly the workload's
//! `touch_bytes` into a fresh block with plain stores, and moves on. That is
//! all: no RNG, no counters, no shared writes, no allocation through the
//! process's allocator. Op counts and live bytes come from the tape. Every
//! [`POLL_EVERY`] operations it publishes its position (one relaxed store
//! to its own cache line, for the memory timeline), checks whether another
//! worker failed, and — only in workloads with remote frees — frees what
//! its inbox holds.
//!
//! The variants are separate monomorphised loops, chosen once per phase,
//! not branches per operation: `REMOTE` (the workload hands blocks to other
//! threads), `TIMED` (the latency pass: one operation in N, at geometric
//! intervals, between two clock readings, recorded into per-thread
//! histograms) and `VERIFY` (the verification pass: tags written and
//! checked instead of the touch).
//!
//! **The optimiser.** The subject reference passes through `black_box`
//! once per phase, so calls are indirect and opaque: the compiler cannot
//! pair an allocation with its free, and a block's pointer escapes into an
//! opaque call, so the touch's stores cannot be dropped; small touches
//! are inline stores (never a `memset` call), and repeated passes are
//! separated by a `black_box` of the pointer so they are not merged. The counting subject in the tests checks that the calls
//! match the tape exactly.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use super::clock::Clock;
use super::latency::{Gaps, OpKind, Recorder};
use super::transport::{Item, Outbox, Transport, POLL_EVERY};
use super::verify;
use super::CellError;
use crate::spec::tape::{Kind, Op, Tape};
use crate::subjects::Span;

/// What a touch writes.
const PATTERN: u64 = 0xA5A5_A5A5_A5A5_A5A5;
/// The position a worker publishes while it is not in its cycle.
pub const OFF_CYCLE: u64 = u64::MAX;

/// One slot of the slot table: the block and the size it was asked with.
#[derive(Clone, Copy)]
struct Slot {
    ptr: *mut u8,
    size: usize,
}

const EMPTY: Slot = Slot {
    ptr: std::ptr::null_mut(),
    size: 0,
};

/// A value on its own cache line (for per-worker published values).
#[repr(align(128))]
#[derive(Default)]
pub struct Padded(pub AtomicU64);

/// What every worker of a phase shares (read-only but for the flags).
pub struct Ctx<'a> {
    pub alloc: &'a (dyn GlobalAlloc + Sync),
    pub align: usize,
    /// Bytes written into each fresh block (`usize::MAX`: all).
    pub touch: usize,
    pub passes: u32,
    /// The touched bytes are half at the start, half at the end.
    pub touch_ends: bool,
    /// Read the touched bytes back before a block is freed.
    pub read_before_free: bool,
    pub clock: Clock,
    pub transport: Option<&'a Transport>,
    /// Set when a worker failed: everyone stops at their next check.
    pub abort: &'a AtomicBool,
    /// Each worker's position in its cycle, for the memory timeline.
    pub position: &'a [Padded],
    pub subject: &'a str,
}

/// Which loop a phase runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Throughput: nothing but the operations and the touch.
    Plain,
    /// Latency: some operations timed.
    Timed,
    /// Verification: tags written and checked.
    Verify,
}

/// One worker's state; it outlives the OS threads that run it (rounds).
pub struct Worker<'t> {
    pub id: usize,
    tape: &'t Tape,
    /// Next position in the cycle.
    pos: usize,
    /// The prefix has run.
    in_cycle: bool,
    slots: Box<[Slot]>,
    /// Tags of live blocks, in the verify pass only.
    tags: Box<[u64]>,
    /// The live blocks carry tags (the verify pass ran or is running).
    tagged: bool,
    seq: u64,
    pub recorder: Recorder,
    gaps: Gaps,
    countdown: u32,
    outbox: Option<Outbox>,
    /// Blocks whose tag was checked.
    pub checked: u64,
    /// Phases this worker has ended (see [`Worker::end_phase`]).
    quiesced: u64,
    /// Where in the cycle the measured phase started.
    pub measured_from: usize,
    /// What reads before frees saw (kept so the reads are not dropped).
    pub sink: u64,
    /// CPU time this worker's threads spent in the measured phase, ns.
    pub measured_cpu_ns: u64,
    /// When this worker began and ended the measured phase (its own
    /// clock readings: a driver preempted at a barrier must not shift
    /// them), and the latency pass.
    pub measured_span: (Option<Instant>, Option<Instant>),
    pub latency_span: (Option<Instant>, Option<Instant>),
}

// SAFETY: the raw pointers in the slot table are blocks owned by this
// worker; moving the worker to another thread moves their ownership, and
// every subject may free a block on any thread.
unsafe impl Send for Worker<'_> {}

impl<'t> Worker<'t> {
    /// A worker for `tape`, with its slot table allocated and written (so
    /// its pages are resident before the baseline is read).
    pub fn new(
        id: usize,
        tape: &'t Tape,
        transport: Option<&Transport>,
        one_in: u32,
        seed: u64,
        verify: bool,
    ) -> Worker<'t> {
        let mut slots = Vec::with_capacity(tape.slots);
        slots.resize(tape.slots, EMPTY);
        let tags = if verify {
            vec![u64::MAX; tape.slots].into_boxed_slice()
        } else {
            Box::default()
        };
        let mut gaps = Gaps::new(one_in.max(1), seed ^ id as u64);
        let countdown = gaps.next_gap();
        Worker {
            id,
            tape,
            pos: 0,
            in_cycle: false,
            slots: slots.into_boxed_slice(),
            tags,
            tagged: false,
            seq: 0,
            recorder: Recorder::new(),
            gaps,
            countdown,
            outbox: transport.map(|t| t.outbox(id)),
            checked: 0,
            quiesced: 0,
            measured_from: 0,
            measured_cpu_ns: 0,
            measured_span: (None, None),
            latency_span: (None, None),
            sink: 0,
        }
    }

    /// Runs the prefix (fill and warm-up), once.
    pub fn run_prefix(&mut self, cx: &Ctx, span: &mut Span<'_>) -> Result<(), CellError> {
        if self.in_cycle {
            return Ok(());
        }
        let tape: &'t Tape = self.tape;
        let ops = &tape.prefix;
        let n = ops.len() as u64;
        self.dispatch(cx, span, ops, 0, n, Mode::Plain)?;
        self.in_cycle = true;
        Ok(())
    }

    /// Runs `n` operations of the cycle from where the last phase stopped,
    /// wrapping around, in `mode`.
    pub fn run_cycle(
        &mut self,
        cx: &Ctx,
        span: &mut Span<'_>,
        n: u64,
        mode: Mode,
    ) -> Result<(), CellError> {
        if mode == Mode::Verify && !self.tagged {
            self.tag_live_blocks();
        }
        let tape: &'t Tape = self.tape;
        self.pos = self.dispatch(cx, span, &tape.cycle, self.pos, n, mode)?;
        Ok(())
    }

    /// Picks the monomorphised loop for `mode` and the workload.
    fn dispatch(
        &mut self,
        cx: &Ctx,
        span: &mut Span<'_>,
        ops: &[Op],
        pos: usize,
        n: u64,
        mode: Mode,
    ) -> Result<usize, CellError> {
        if ops.is_empty() || n == 0 {
            return Ok(pos);
        }
        match (mode, cx.transport.is_some()) {
            (Mode::Plain, false) => self.run::<false, false, false>(cx, span, ops, pos, n),
            (Mode::Plain, true) => self.run::<true, false, false>(cx, span, ops, pos, n),
            (Mode::Timed, false) => self.run::<false, true, false>(cx, span, ops, pos, n),
            (Mode::Timed, true) => self.run::<true, true, false>(cx, span, ops, pos, n),
            (Mode::Verify, false) => self.run::<false, false, true>(cx, span, ops, pos, n),
            (Mode::Verify, true) => self.run::<true, false, true>(cx, span, ops, pos, n),
        }
    }

    /// The loop (see the module docs); returns the position it stopped at.
    #[inline(never)]
    fn run<const REMOTE: bool, const TIMED: bool, const VERIFY: bool>(
        &mut self,
        cx: &Ctx,
        span: &mut Span<'_>,
        ops: &[Op],
        mut pos: usize,
        mut n: u64,
    ) -> Result<usize, CellError> {
        let len = ops.len();
        while n > 0 {
            let chunk = (len - pos).min(POLL_EVERY).min(n as usize);
            for &op in &ops[pos..pos + chunk] {
                if TIMED {
                    self.countdown -= 1;
                    if self.countdown == 0 {
                        self.countdown = self.gaps.next_gap();
                        let t0 = cx.clock.now();
                        self.step::<REMOTE, VERIFY>(cx, span, op)?;
                        let t1 = cx.clock.now();
                        let kind = match op.kind() {
                            Kind::Alloc => Some(OpKind::Alloc),
                            Kind::Free => Some(OpKind::FreeLocal),
                            Kind::Realloc => Some(OpKind::Realloc),
                            // The sender's side of a remote free is a store
                            // into a batch; the free is timed where it runs.
                            Kind::Handoff => None,
                        };
                        if let Some(kind) = kind {
                            self.recorder.record(kind, t1.wrapping_sub(t0));
                        }
                        continue;
                    }
                }
                self.step::<REMOTE, VERIFY>(cx, span, op)?;
            }
            pos += chunk;
            if pos == len {
                pos = 0;
            }
            n -= chunk as u64;
            if REMOTE {
                self.receive::<TIMED>(cx);
            }
            cx.position[self.id].0.store(
                if self.in_cycle { pos as u64 } else { OFF_CYCLE },
                Ordering::Relaxed,
            );
            if cx.abort.load(Ordering::Relaxed) {
                return Err(CellError::Aborted);
            }
        }
        Ok(pos)
    }

    /// One operation.
    #[inline(always)]
    fn step<const REMOTE: bool, const VERIFY: bool>(
        &mut self,
        cx: &Ctx,
        span: &mut Span<'_>,
        op: Op,
    ) -> Result<(), CellError> {
        let slot = op.slot();
        debug_assert!(slot < self.slots.len());
        match op.kind() {
            Kind::Alloc => {
                let size = op.arg();
                // SAFETY: tape sizes are 1..=2^28 and `align` a power of two
                // up to 4096 (checked workload), so the layout is valid.
                let layout = unsafe { Layout::from_size_align_unchecked(size, cx.align) };
                // SAFETY: `layout` has a non-zero size.
                let p = unsafe { cx.alloc.alloc(layout) };
                if p.is_null() {
                    return Err(self.refused(cx, "alloc", size));
                }
                if VERIFY {
                    self.fill_tag(cx, slot, p, size)?;
                } else {
                    // SAFETY: `p` is a fresh block of `size` bytes.
                    unsafe { touch(p, size, cx) };
                }
                // SAFETY: tape slots are below `tape.slots`, the table's size.
                unsafe { *self.slots.get_unchecked_mut(slot) = Slot { ptr: p, size } };
            }
            Kind::Free => {
                // SAFETY: as above.
                let s = unsafe { *self.slots.get_unchecked(slot) };
                if VERIFY {
                    self.check_tag(cx, slot, s, usize::MAX, "before free")?;
                } else if cx.read_before_free {
                    // SAFETY: `s` is a live block of `s.size` bytes.
                    self.sink = self
                        .sink
                        .wrapping_add(unsafe { read_back(s.ptr, s.size, cx) });
                }
                // SAFETY: the tape frees only live slots; `s` is the block
                // allocated there with this size and alignment, freed once.
                unsafe {
                    cx.alloc
                        .dealloc(s.ptr, Layout::from_size_align_unchecked(s.size, cx.align))
                };
            }
            Kind::Handoff => {
                // SAFETY: as above.
                let s = unsafe { *self.slots.get_unchecked(slot) };
                if VERIFY {
                    self.check_tag(cx, slot, s, usize::MAX, "before handoff")?;
                } else if cx.read_before_free {
                    // SAFETY: `s` is a live block of `s.size` bytes.
                    self.sink = self
                        .sink
                        .wrapping_add(unsafe { read_back(s.ptr, s.size, cx) });
                }
                if let (true, Some(t), Some(out)) = (REMOTE, cx.transport, self.outbox.as_mut()) {
                    let item = Item {
                        ptr: s.ptr,
                        size: s.size,
                    };
                    t.send(out, op.arg(), item, cx.alloc, cx.align, span);
                } else {
                    // SAFETY: as for a free (no transport: freed here).
                    unsafe {
                        cx.alloc
                            .dealloc(s.ptr, Layout::from_size_align_unchecked(s.size, cx.align))
                    };
                }
            }
            Kind::Realloc => {
                // SAFETY: as above.
                let s = unsafe { *self.slots.get_unchecked(slot) };
                let new = op.arg();
                if VERIFY {
                    self.check_tag(cx, slot, s, usize::MAX, "before realloc")?;
                }
                // SAFETY: `s` is live, allocated with this layout; `new` is
                // 1..=2^28, valid with `align`.
                let q = unsafe {
                    cx.alloc.realloc(
                        s.ptr,
                        Layout::from_size_align_unchecked(s.size, cx.align),
                        new,
                    )
                };
                if q.is_null() {
                    // The old block stays valid in its slot (drained later).
                    return Err(self.refused(cx, "realloc", new));
                }
                if VERIFY {
                    let moved = Slot {
                        ptr: q,
                        size: s.size,
                    };
                    self.check_tag(cx, slot, moved, new, "after realloc (prefix not kept)")?;
                    self.fill_tag(cx, slot, q, new)?;
                } else {
                    // SAFETY: `q` is a live block of `new` bytes.
                    unsafe { touch(q, new, cx) };
                }
                // SAFETY: as above.
                unsafe { *self.slots.get_unchecked_mut(slot) = Slot { ptr: q, size: new } };
            }
        }
        Ok(())
    }

    /// Frees what waits in this worker's inbox, timing some frees in the
    /// latency pass.
    #[inline]
    fn receive<const TIMED: bool>(&mut self, cx: &Ctx) {
        let Some(t) = cx.transport else { return };
        let (alloc, align, clock) = (cx.alloc, cx.align, cx.clock);
        let (recorder, gaps, countdown) = (&mut self.recorder, &mut self.gaps, &mut self.countdown);
        t.receive_with(self.id, &mut |item: Item| {
            // SAFETY: a block handed over exactly once, allocated by this
            // subject with `item.size` and `align`; freed here.
            let free = || unsafe {
                alloc.dealloc(
                    item.ptr,
                    Layout::from_size_align_unchecked(item.size, align),
                )
            };
            if TIMED {
                *countdown -= 1;
                if *countdown == 0 {
                    *countdown = gaps.next_gap();
                    let t0 = clock.now();
                    free();
                    let t1 = clock.now();
                    recorder.record(OpKind::FreeRemote, t1.wrapping_sub(t0));
                    return;
                }
            }
            free();
        });
    }

    /// The tape this worker replays.
    pub fn tape(&self) -> &'t Tape {
        self.tape
    }

    /// The next position in the cycle.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Ends a phase: with remote frees, sends partial batches and frees
    /// incoming blocks until every one of `threads` workers has ended the
    /// same phase (the shared `done` counter only grows, so phase `k` ends
    /// at `k × threads`). Without remote frees there is nothing in flight.
    pub fn end_phase(&mut self, cx: &Ctx, span: &mut Span<'_>, done: &AtomicU64, threads: usize) {
        self.quiesced += 1;
        self.quiesce(cx, span, done, self.quiesced * threads as u64);
    }

    fn quiesce(&mut self, cx: &Ctx, span: &mut Span<'_>, done: &AtomicU64, target: u64) {
        let (Some(t), Some(out)) = (cx.transport, self.outbox.as_mut()) else {
            return;
        };
        let (alloc, align) = (cx.alloc, cx.align);
        t.quiesce(self.id, out, done, target, span, &mut |item: Item| {
            // SAFETY: as in `receive`.
            unsafe {
                alloc.dealloc(
                    item.ptr,
                    Layout::from_size_align_unchecked(item.size, align),
                )
            }
        });
    }

    /// The live slots at the current position, with their sizes.
    fn live(&self) -> impl Iterator<Item = (usize, Slot)> + '_ {
        let live = if self.in_cycle {
            self.tape.live_at_cycle(self.pos)
        } else {
            vec![false; self.slots.len()]
        };
        live.into_iter()
            .enumerate()
            .filter(|(_, l)| *l)
            .map(|(i, _)| (i, self.slots[i]))
    }

    /// Requested bytes live in this worker's slots now.
    pub fn live_bytes(&self) -> u64 {
        self.live().map(|(_, s)| s.size as u64).sum()
    }

    /// Tags every live block (before the verify pass, whose checks expect
    /// tags on blocks allocated by earlier passes too).
    fn tag_live_blocks(&mut self) {
        let live: Vec<(usize, Slot)> = self.live().collect();
        for (i, s) in live {
            let tag = verify::tag(self.id, self.seq);
            self.seq += 1;
            // SAFETY: `s` is a live block of `s.size` bytes.
            unsafe { verify::fill(s.ptr, s.size, tag) };
            self.tags[i] = tag;
        }
        self.tagged = true;
    }

    /// Frees every live block (checked, if tagged), uncounted and untimed.
    pub fn drain(&mut self, cx: &Ctx) -> Result<u64, CellError> {
        let live: Vec<(usize, Slot)> = self.live().collect();
        let mut n = 0;
        for (i, s) in live {
            if self.tagged {
                self.check_tag(cx, i, s, usize::MAX, "at drain")?;
            }
            // SAFETY: a live block allocated with this layout, freed once.
            unsafe {
                cx.alloc
                    .dealloc(s.ptr, Layout::from_size_align_unchecked(s.size, cx.align))
            };
            n += 1;
        }
        self.in_cycle = false;
        Ok(n)
    }

    fn fill_tag(
        &mut self,
        cx: &Ctx,
        slot: usize,
        p: *mut u8,
        size: usize,
    ) -> Result<(), CellError> {
        if !verify::aligned(p, cx.align) {
            return Err(CellError::Verification(format!(
                "subject `{}` returned {p:#x?} for {size} bytes, not aligned to {}",
                cx.subject, cx.align
            )));
        }
        let tag = verify::tag(self.id, self.seq);
        self.seq += 1;
        // SAFETY: `p` is a live block of `size` bytes.
        unsafe { verify::fill(p, size, tag) };
        self.tags[slot] = tag;
        Ok(())
    }

    fn check_tag(
        &mut self,
        cx: &Ctx,
        slot: usize,
        s: Slot,
        upto: usize,
        when: &str,
    ) -> Result<(), CellError> {
        let tag = self.tags[slot];
        // SAFETY: `s` is a live block of at least `min(s.size, upto)` bytes.
        let r = unsafe { verify::check(s.ptr, s.size, tag, upto) };
        self.checked += 1;
        // A corrupt block is leaked, not freed: the allocator's metadata
        // next to it may be damaged too.
        r.map_err(|m| {
            CellError::Verification(format!(
                "subject `{}`: block at {:#x?} (size {}) {when}: byte {} is {:#04x}, expected {:#04x}",
                cx.subject, s.ptr, s.size, m.offset, m.found, m.expected
            ))
        })
    }

    #[cold]
    fn refused(&self, cx: &Ctx, what: &str, size: usize) -> CellError {
        CellError::AllocFailed(format!(
            "subject `{}` returned null for {what}({size} bytes, align {}) on thread {}",
            cx.subject, cx.align, self.id
        ))
    }
}

/// The ranges of a `size`-byte block the workload touches: the first
/// `min(size, touch)` bytes, or (touching the ends) half of them at the
/// start and half at the end.
#[inline(always)]
fn touched(size: usize, cx: &Ctx) -> [(usize, usize); 2] {
    let n = size.min(cx.touch);
    if cx.touch_ends {
        let tail = n / 2;
        [(0, n - tail), (size - tail, size)]
    } else {
        [(0, n), (0, 0)]
    }
}

/// Writes the bytes `[from, to)` of a block with the pattern: up to 16
/// bytes as two (possibly overlapping) stores of the widest size that
/// fits, more as a `memset`. Small touches are inline stores, with no
/// loop, because a `memset` call would cost more than most allocators'
/// fast paths (and LLVM turns a loop of byte stores into one).
///
/// # Safety
/// `p` must be valid for writes of `to` bytes.
#[inline(always)]
unsafe fn fill_range(p: *mut u8, from: usize, to: usize) {
    let n = to - from;
    // SAFETY: every store below is inside `[from, to)`, inside the block
    // (the second of each pair ends at `to`); the stores are unaligned.
    unsafe {
        let q = p.add(from);
        if n > 16 {
            q.write_bytes(PATTERN as u8, n);
        } else if n >= 8 {
            (q as *mut u64).write_unaligned(PATTERN);
            (q.add(n - 8) as *mut u64).write_unaligned(PATTERN);
        } else if n >= 4 {
            (q as *mut u32).write_unaligned(PATTERN as u32);
            (q.add(n - 4) as *mut u32).write_unaligned(PATTERN as u32);
        } else if n >= 2 {
            (q as *mut u16).write_unaligned(PATTERN as u16);
            (q.add(n - 2) as *mut u16).write_unaligned(PATTERN as u16);
        } else if n == 1 {
            q.write(PATTERN as u8);
        }
    }
}

/// Writes the touched bytes of a fresh block (see [`touched`]),
/// `cx.passes` times. The block's pointer escapes into the slot table and
/// an opaque free, so the stores cannot be dropped; between passes a
/// `black_box` of the pointer keeps the compiler from merging them.
///
/// # Safety
/// `p` must be valid for writes of `size` bytes.
#[inline(always)]
unsafe fn touch(p: *mut u8, size: usize, cx: &Ctx) {
    let [(a, b), (c, d)] = touched(size, cx);
    for pass in 0..cx.passes {
        if pass > 0 {
            std::hint::black_box(p);
        }
        // SAFETY: both ranges are inside the block (`touched`).
        unsafe {
            fill_range(p, a, b);
            if d > c {
                fill_range(p, c, d);
            }
        }
    }
}

/// Reads the touched bytes of a live block back (a workload that reads
/// its blocks before freeing them); returns their sum.
///
/// # Safety
/// `p` must be valid for reads of `size` bytes.
#[inline(always)]
unsafe fn read_back(p: *const u8, size: usize, cx: &Ctx) -> u64 {
    let mut sum = 0u64;
    for (from, to) in touched(size, cx) {
        let mut i = from;
        while i + 8 <= to {
            // SAFETY: `[i, i + 8)` is inside the block.
            let w = unsafe { (p.add(i) as *const [u8; 8]).read_volatile() };
            sum = sum.wrapping_add(u64::from_le_bytes(w));
            i += 8;
        }
        while i < to {
            // SAFETY: `i < to <= size`.
            sum = sum.wrapping_add(u64::from(unsafe { p.add(i).read_volatile() }));
            i += 1;
        }
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every width of touch writes exactly its bytes: none before, none
    /// after (the two-store trick must not spill past `to`).
    #[test]
    fn fill_range_writes_exactly_its_bytes() {
        for from in [0, 3, 8] {
            for n in 0..=40 {
                let mut buf = [0u8; 64];
                // SAFETY: `from + n <= 48 < 64`.
                unsafe { fill_range(buf.as_mut_ptr(), from, from + n) };
                for (i, &b) in buf.iter().enumerate() {
                    let inside = (from..from + n).contains(&i);
                    assert_eq!(
                        b,
                        if inside { PATTERN as u8 } else { 0 },
                        "from {from} n {n} byte {i}"
                    );
                }
            }
        }
    }
}
