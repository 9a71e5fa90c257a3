//! Loops shared by the criterion benches (`benches/*.rs`) and the
//! `side_by_side` example, so both time exactly the same work.
//!
//! Subjects come from the harness's table ([`harness::subjects::lookup`] over
//! [`harness::subjects::NAMES`], classic geometry), so the benches name and
//! build every allocator the way `poolbench` does. Every helper calls the
//! subject through its `&dyn GlobalAlloc`, passed through
//! [`black_box`] first: the compiler cannot devirtualise the call, inline
//! one allocator into the loop, or pair an `alloc` with its `dealloc` and
//! delete both. Every pointer goes through `black_box` too, and each block
//! gets one volatile write, so the block is really handed out.
//!
//! ## The `gil` subject
//! A thread that uses `gil` holds the GIL for its whole span of work, as a
//! CPython thread does ([`span`]), and releases it around every blocking
//! call (barrier, channel) with `allow_threads`; blocking while holding it
//! would deadlock, as in CPython. With several threads the holder hands the
//! GIL over once a waiter has waited a switch interval, so multi-threaded
//! `gil` figures include those hand-offs (5 ms interval, CPython's default,
//! set by [`subjects`]).
//!
//! ## Timing threads
//! The multi-threaded helpers start their threads first, release them
//! together with a barrier that the calling thread also joins, and return
//! the wall time from that release to the last thread's end of work: thread
//! creation, GIL acquisition before the barrier and thread exit are not
//! timed.

use std::alloc::{handle_alloc_error, GlobalAlloc, Layout};
use std::hint::black_box;
use std::sync::{mpsc, Barrier};
use std::time::{Duration, Instant};

use allocator::Geometry;
use harness::subjects::{self, Span, Subject};

/// The GIL switch interval the benches run `gil` with (CPython's default).
pub const SWITCH_INTERVAL: Duration = Duration::from_millis(5);

/// Blocks a producer hands to the consumer per message in
/// [`producer_consumer`].
pub const HANDOFF_BATCH: usize = 256;

/// Every subject of the harness's table, in `poolbench list` order, built
/// with the classic geometry. Our pool allocators are built (and leaked)
/// once per call, so call this once per process.
pub fn subjects() -> Vec<Box<dyn Subject>> {
    subjects::NAMES
        .iter()
        .map(|&name| {
            // NAMES is the table `lookup` serves; a name it refuses is a bug
            // in the harness, not bad input.
            let s = subjects::lookup(name, Geometry::CLASSIC)
                .unwrap_or_else(|e| panic!("the subject table refuses its own name: {e}"));
            s.configure(SWITCH_INTERVAL);
            s
        })
        .collect()
}

/// The layout of an `size`-byte block at 8-byte alignment (pymalloc's
/// classic alignment), or `None` for a size of zero or one too large.
pub fn block(size: usize) -> Option<Layout> {
    if size == 0 {
        return None;
    }
    Layout::from_size_align(size, 8).ok()
}

/// Takes the GIL for the calling thread's span of work when `s` is `gil`.
pub fn span(s: &dyn Subject) -> Span<'_> {
    Span::enter(s)
}

/// Runs `f` with the GIL released when a span is held (CPython's
/// `Py_BEGIN_ALLOW_THREADS`): for every blocking call.
fn unlocked<R>(span: &mut Span<'_>, f: impl FnOnce() -> R) -> R {
    span.unlocked(f)
}

/// Allocates one block, aborting with the layout if the subject fails.
///
/// # Safety
/// `layout` has a non-zero size.
#[inline(always)]
unsafe fn alloc_block(a: &dyn GlobalAlloc, layout: Layout) -> *mut u8 {
    // SAFETY: the caller guarantees a non-zero size.
    let p = black_box(unsafe { a.alloc(layout) });
    if p.is_null() {
        handle_alloc_error(layout);
    }
    // SAFETY: `p` is a live block of at least one byte.
    unsafe { p.write_volatile(1) };
    p
}

/// Frees a block `alloc_block` returned.
///
/// # Safety
/// `p` is live, was allocated by `a` with `layout`, and is freed once.
#[inline(always)]
unsafe fn free_block(a: &dyn GlobalAlloc, p: *mut u8, layout: Layout) {
    // SAFETY: guaranteed by the caller.
    unsafe { a.dealloc(black_box(p), layout) }
}

/// Panics unless `layout` can be passed to `GlobalAlloc::alloc`; the
/// helpers check once per call, so their loops can rely on it.
fn check(layout: Layout) {
    assert!(layout.size() != 0, "benches allocate non-empty blocks only");
}

/// `n` alloc+free pairs of `layout` on the calling thread.
pub fn pairs(a: &dyn GlobalAlloc, layout: Layout, n: u64) {
    check(layout);
    let a = black_box(a);
    for _ in 0..n {
        // SAFETY: non-zero size (checked above); the block is freed once,
        // with its layout, by the allocator that made it.
        unsafe {
            let p = alloc_block(a, layout);
            free_block(a, p, layout);
        }
    }
}

/// Order in which [`batch`] frees its blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Last allocated, first freed (a stack of temporaries).
    Lifo,
    /// First allocated, first freed (a queue).
    Fifo,
}

impl Order {
    /// The name used in benchmark ids.
    pub fn name(self) -> &'static str {
        match self {
            Order::Lifo => "lifo",
            Order::Fifo => "fifo",
        }
    }
}

/// Allocates `blocks.capacity()` blocks of `layout` into `blocks` (which
/// must be empty), then frees them all in `order`, leaving `blocks` empty.
/// The vector is the caller's so that its own allocation is not timed.
pub fn batch(a: &dyn GlobalAlloc, layout: Layout, blocks: &mut Vec<*mut u8>, order: Order) {
    check(layout);
    assert!(blocks.is_empty(), "batch starts from an empty vector");
    let a = black_box(a);
    for _ in 0..blocks.capacity() {
        // SAFETY: non-zero size (checked above).
        blocks.push(unsafe { alloc_block(a, layout) });
    }
    let free = |p: *mut u8| {
        // SAFETY: every pointer in `blocks` is live, from `a` with
        // `layout`, and is drained (freed) exactly once.
        unsafe { free_block(a, p, layout) }
    };
    match order {
        Order::Lifo => blocks.drain(..).rev().for_each(free),
        Order::Fifo => blocks.drain(..).for_each(free),
    }
}

/// Sizes a block grows through in [`realloc_growth`]: 16 → 512 bytes,
/// doubling, as a growing buffer does.
pub const GROWTH: [usize; 6] = [16, 32, 64, 128, 256, 512];

/// Allocates a [`GROWTH`]`[0]`-byte block, reallocates it through every
/// later size (five reallocs, each keeping the old contents), then frees
/// it.
pub fn realloc_growth(a: &dyn GlobalAlloc) {
    let a = black_box(a);
    let mut layout = Layout::from_size_align(GROWTH[0], 8).unwrap_or_else(|_| unreachable!());
    // SAFETY: non-zero size.
    let mut p = unsafe { alloc_block(a, layout) };
    for &size in &GROWTH[1..] {
        // SAFETY: `p` is live with `layout`; `size` is non-zero and far
        // below isize::MAX when rounded to the alignment.
        let q = black_box(unsafe { a.realloc(p, layout, size) });
        if q.is_null() {
            handle_alloc_error(layout);
        }
        // SAFETY: a valid (size, 8) pair, as checked by GROWTH's values.
        layout = unsafe { Layout::from_size_align_unchecked(size, 8) };
        // SAFETY: `q` is a live block of `size` bytes; write its last byte.
        unsafe { q.add(size - 1).write_volatile(2) };
        p = q;
    }
    // SAFETY: `p` is live with `layout` and freed once.
    unsafe { free_block(a, p, layout) };
}

/// Live blocks of the [`Churn`] loop.
pub const CHURN_SLOTS: usize = 1000;
/// Smallest and largest request of the [`Churn`] loop: pymalloc's pool
/// range, every class of the classic geometry from 16 bytes up.
pub const CHURN_SIZES: (usize, usize) = (16, 512);
/// Entries of the [`Churn`] loop's precomputed (slot, size) plan; the
/// plan wraps around, so a run of any length replays it.
const CHURN_PLAN: usize = 1 << 16;

/// Random replacement over [`CHURN_SLOTS`] live blocks of random sizes in
/// [`CHURN_SIZES`] (8-byte alignment): each step frees the block in a
/// random slot and allocates a new block of a random size into it, so
/// pools of every class fill, drain and refill as in a program whose
/// objects have mixed sizes and lifetimes. Slots and sizes come from a
/// plan computed once from a fixed seed (xorshift), so the loop times the
/// allocator, not a random number generator. Creating a `Churn` fills
/// every slot (untimed); dropping it frees them.
pub struct Churn<'a> {
    a: &'a dyn GlobalAlloc,
    blocks: Vec<*mut u8>,
    sizes: Vec<usize>,
    plan: Vec<(u32, u32)>,
    next: usize,
}

impl<'a> Churn<'a> {
    /// Fills [`CHURN_SLOTS`] slots from `a`.
    pub fn new(a: &'a dyn GlobalAlloc) -> Churn<'a> {
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let mut rand = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let span = (CHURN_SIZES.1 - CHURN_SIZES.0 + 1) as u64;
        let size = move |r: u64| CHURN_SIZES.0 + (r % span) as usize;
        let plan: Vec<(u32, u32)> = (0..CHURN_PLAN)
            .map(|_| {
                let r = rand();
                (
                    ((r >> 32) % CHURN_SLOTS as u64) as u32,
                    size(r & 0xFFFF_FFFF) as u32,
                )
            })
            .collect();
        let sizes: Vec<usize> = (0..CHURN_SLOTS).map(|_| size(rand())).collect();
        let blocks = sizes
            .iter()
            // SAFETY: every size is non-zero, at 8-byte alignment.
            .map(|&n| unsafe { alloc_block(a, layout8(n)) })
            .collect();
        Churn {
            a,
            blocks,
            sizes,
            plan,
            next: 0,
        }
    }

    /// `n` replacements (one free and one allocation each).
    pub fn run(&mut self, n: u64) {
        let a = black_box(self.a);
        for _ in 0..n {
            let (slot, size) = self.plan[self.next];
            self.next = (self.next + 1) % CHURN_PLAN;
            let (slot, size) = (slot as usize, size as usize);
            // SAFETY: the slot's block is live with its recorded size and
            // is freed once before the slot gets a new block; sizes are
            // non-zero.
            unsafe {
                free_block(a, self.blocks[slot], layout8(self.sizes[slot]));
                self.blocks[slot] = alloc_block(a, layout8(size));
            }
            self.sizes[slot] = size;
        }
    }
}

impl Drop for Churn<'_> {
    fn drop(&mut self) {
        for (&p, &n) in self.blocks.iter().zip(&self.sizes) {
            // SAFETY: every slot holds a live block of its recorded size.
            unsafe { free_block(self.a, p, layout8(n)) };
        }
    }
}

/// The layout of an `n`-byte block at 8-byte alignment, `n` in
/// [`CHURN_SIZES`].
#[inline(always)]
fn layout8(n: usize) -> Layout {
    debug_assert!((CHURN_SIZES.0..=CHURN_SIZES.1).contains(&n));
    // SAFETY: 8 is a power of two and `n` is at most 512, far below
    // isize::MAX when rounded up.
    unsafe { Layout::from_size_align_unchecked(n, 8) }
}

/// `threads` threads each doing `per_thread` alloc+free pairs of
/// `layout` on `s`, released together; the wall time from the release to
/// the last thread's end.
pub fn threaded_pairs(
    s: &dyn Subject,
    threads: usize,
    per_thread: u64,
    layout: Layout,
) -> Duration {
    check(layout);
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|sc| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                let barrier = &barrier;
                sc.spawn(move || {
                    let mut span = span(s);
                    unlocked(&mut span, || barrier.wait());
                    pairs(s.allocator(), layout, per_thread);
                    // Before the span's end: releasing the GIL is not work.
                    Instant::now()
                })
            })
            .collect();
        barrier.wait();
        let start = Instant::now();
        last_end(workers, start) - start
    })
}

/// Joins `workers` and returns the latest end instant they report (at
/// least `start`); a worker that panicked re-raises its panic here.
fn last_end(workers: Vec<std::thread::ScopedJoinHandle<'_, Instant>>, start: Instant) -> Instant {
    workers
        .into_iter()
        .map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
        .fold(start, Instant::max)
}

/// A producer thread allocates `blocks` blocks of `layout` in batches of
/// [`HANDOFF_BATCH`] and sends them over a bounded channel to a consumer
/// thread, which frees every one: every free is remote. Batch vectors go
/// back to the producer for reuse, so the steady state allocates nothing
/// but blocks. Returns the wall time from the release of both threads to
/// the consumer's last free.
pub fn producer_consumer(s: &dyn Subject, blocks: u64, layout: Layout) -> Duration {
    check(layout);
    // Blocks travel as addresses: raw pointers are not `Send`.
    let (tx, rx) = mpsc::sync_channel::<Vec<usize>>(8);
    let (back_tx, back_rx) = mpsc::sync_channel::<Vec<usize>>(8);
    let barrier = Barrier::new(3);
    std::thread::scope(|sc| {
        let barrier = &barrier;
        let producer = sc.spawn(move || {
            let a = black_box(s.allocator());
            let mut spare: Vec<Vec<usize>> =
                (0..16).map(|_| Vec::with_capacity(HANDOFF_BATCH)).collect();
            let mut span = span(s);
            unlocked(&mut span, || barrier.wait());
            let mut sent = 0u64;
            while sent < blocks {
                let mut v = match spare.pop() {
                    Some(v) => v,
                    // The consumer holds every vector: wait for one back.
                    None => match unlocked(&mut span, || back_rx.recv()) {
                        Ok(v) => v,
                        Err(_) => break,
                    },
                };
                let n = (blocks - sent).min(HANDOFF_BATCH as u64);
                for _ in 0..n {
                    // SAFETY: non-zero size (checked above); the consumer
                    // frees each block once.
                    v.push(unsafe { alloc_block(a, layout) } as usize);
                }
                sent += n;
                if unlocked(&mut span, || tx.send(v)).is_err() {
                    break;
                }
            }
            // Dropping `tx` here ends the consumer's loop.
            Instant::now()
        });
        let consumer = sc.spawn(move || {
            let a = black_box(s.allocator());
            let mut span = span(s);
            unlocked(&mut span, || barrier.wait());
            while let Ok(mut v) = unlocked(&mut span, || rx.recv()) {
                for p in v.drain(..) {
                    // SAFETY: a live block the producer allocated from `a`
                    // with `layout`; it is sent once, so freed once.
                    unsafe { free_block(a, p as *mut u8, layout) };
                }
                // A full return channel means the producer has spares.
                let _ = back_tx.try_send(v);
            }
            Instant::now()
        });
        barrier.wait();
        let start = Instant::now();
        last_end(vec![producer, consumer], start) - start
    })
}
