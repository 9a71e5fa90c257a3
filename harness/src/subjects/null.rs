//! `null`: the cheapest allocator that is still an allocator — the floor.
//!
//! A cell run on `null` measures what poolbench itself costs per operation
//! (reading the tape, the indirect call, the slot table, the touch, the
//! batches of remote frees), so it must be cheaper than every real
//! allocator on every workload, and must not pay costs a real allocator in
//! steady state does not pay. Its design, in that order of concern:
//!
//! - **Per-thread stacks of free blocks, kept outside the blocks.**
//!   `alloc` pops the calling thread's stack for the block's class,
//!   `dealloc` pushes on it: an array access, no atomic, and no write into
//!   the block itself (a real allocator links every freed block). A stack
//!   never spills: when it is full it moves to an array twice its size
//!   (taken from the region, like the blocks), so a thread's own blocks
//!   never pass through a lock, however many it frees in a row.
//! - **Tight classes**: 16-byte steps up to 1 KiB, then powers of two, so
//!   a workload's live blocks pack as densely as a good allocator packs
//!   them and its touches hit the cache as often; a freed block is the
//!   next one handed out for its class (LIFO).
//! - **Blocks stay with the thread that carved them.** Fresh blocks come
//!   from per-thread 1 MiB chunks whose first line names the owning
//!   thread; a block freed by another thread does not go on that thread's
//!   stack (where reusing it would put two threads' writes in one cache
//!   line: false sharing, which good allocators avoid and which would make
//!   `null` slower than them on cache-scratch) but into a per-class batch
//!   of the freeing thread's, which goes whole, with one lock, to a global
//!   depot of its class when [`BATCH`] blocks are gathered. A thread whose
//!   stack is empty takes a whole batch back before it carves new memory.
//!   So producer/consumer workloads reuse warm memory instead of growing,
//!   at a fraction of a nanosecond per operation. A thread's stacks and
//!   batches go to the depots when it exits, for later rounds.
//! - **Pre-touched memory.** Chunks are faulted in with one
//!   `MADV_POPULATE_WRITE` when taken, so steady state never page-faults.
//!
//! It never returns memory to the OS; its memory figures describe it, not
//! the workload. Alignments up to 4096 are honoured; larger ones get null.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::UnsafeCell;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::Mutex;

/// Granularity of the small classes.
const STEP: usize = 16;
/// Largest size of a small class.
const SMALL_MAX: usize = 1024;
/// Small classes are `0..SMALL` (class `c` holds `(c + 1) × 16` bytes).
const SMALL: usize = SMALL_MAX / STEP;
/// Then powers of two `2^k` for `k` in `MIN_POW..=MAX_POW`, for larger
/// requests and for alignments beyond 16.
const MIN_POW: u32 = 5;
const MAX_POW: u32 = 28;
/// Number of classes.
const CLASSES: usize = SMALL + (MAX_POW - MIN_POW + 1) as usize;
/// Largest alignment served.
const MAX_ALIGN: usize = 4096;
/// Blocks a thread's stack for one class holds at first (it doubles when
/// full).
const STACK: usize = 64;
/// Bytes of fresh memory a thread takes from the region at a time (and
/// their alignment: a block's chunk is its address rounded down).
const CHUNK: usize = 1 << 20;
/// Bytes at the start of a chunk that hold its owner.
const CHUNK_HEADER: usize = 64;
/// Blocks larger than this get a run of the region of their own.
const LARGE: usize = CHUNK / 4;
/// Region sizes tried, largest first (overcommit policies differ).
const REGION_SIZES: [usize; 4] = [64 << 30, 16 << 30, 4 << 30, 1 << 30];

/// The class of a layout, or `None` when it cannot be served.
#[inline(always)]
fn class_of(layout: Layout) -> Option<usize> {
    let (size, align) = (layout.size(), layout.align());
    if size <= SMALL_MAX && align <= STEP {
        return Some(size.max(1).div_ceil(STEP) - 1);
    }
    if align > MAX_ALIGN {
        return None;
    }
    let bytes = size.max(align).checked_next_power_of_two()?;
    let k = bytes.trailing_zeros().max(MIN_POW);
    (k <= MAX_POW).then(|| SMALL + (k - MIN_POW) as usize)
}

/// Bytes a block of `class` spans, and its alignment.
fn block_of(class: usize) -> (usize, usize) {
    if class < SMALL {
        ((class + 1) * STEP, STEP)
    } else {
        let bytes = 1usize << (MIN_POW as usize + class - SMALL);
        (bytes, bytes.min(MAX_ALIGN))
    }
}

/// Blocks per batch in the depot.
const BATCH: usize = 32;

/// One class's free blocks on one thread: `blocks[..len]`, in an array of
/// `cap` pointers taken from the region (none until the first push).
#[derive(Clone, Copy)]
struct Stack {
    len: usize,
    cap: usize,
    blocks: *mut *mut u8,
}

const EMPTY: Stack = Stack {
    len: 0,
    cap: 0,
    blocks: ptr::null_mut(),
};

/// Blocks of one class that this thread freed but another thread carved,
/// gathered for the depot.
#[derive(Clone, Copy)]
struct Batch {
    len: usize,
    blocks: [*mut u8; BATCH],
}

const NO_BATCH: Batch = Batch {
    len: 0,
    blocks: [ptr::null_mut(); BATCH],
};

/// A stack of batches. Each batch is a list linked through the second word
/// of its blocks; the first word of its first block links the next batch.
/// (Every block spans at least two words.)
struct Depot {
    top: *mut u8,
}

// SAFETY: the blocks a depot links belong to nobody else while they are in
// it; the mutex around each depot serialises every access.
unsafe impl Send for Depot {}

#[allow(clippy::declare_interior_mutable_const)]
const DEPOT: Mutex<Depot> = Mutex::new(Depot {
    top: ptr::null_mut(),
});
static DEPOTS: [Mutex<Depot>; CLASSES] = [DEPOT; CLASSES];

/// Moves `blocks` (at least one) to the depot of `class` as one batch.
///
/// # Safety
/// Every pointer is a free block of `class`, owned by the caller.
unsafe fn deposit(class: usize, blocks: &[*mut u8]) {
    debug_assert!(!blocks.is_empty() && blocks.len() <= BATCH);
    // SAFETY: the blocks are free and at least two words long: their
    // second words are ours to link them with.
    unsafe {
        for w in blocks.windows(2) {
            (w[0] as *mut *mut u8).add(1).write(w[1]);
        }
        (blocks[blocks.len() - 1] as *mut *mut u8)
            .add(1)
            .write(ptr::null_mut());
    }
    let head = blocks[0] as *mut *mut u8;
    let mut d = DEPOTS[class].lock().unwrap_or_else(|p| p.into_inner());
    // SAFETY: as above, for the head's first word.
    unsafe { head.write(d.top) };
    d.top = head as *mut u8;
}

/// Takes a batch from the depot of `class` into `stack` (empty, with room
/// for a batch); returns one block of it.
fn withdraw(class: usize, stack: &mut Stack) -> Option<*mut u8> {
    debug_assert!(stack.len == 0 && stack.cap >= BATCH);
    let head = {
        let mut d = DEPOTS[class].lock().unwrap_or_else(|p| p.into_inner());
        let head = d.top as *mut *mut u8;
        if head.is_null() {
            return None;
        }
        // SAFETY: `head` heads a batch written by `deposit`.
        d.top = unsafe { head.read() };
        head
    };
    // SAFETY: the batch is ours now; its blocks link through their second
    // words, the last one to null, at most `BATCH` of them, and the stack
    // has room for `BATCH`.
    unsafe {
        let mut b = head.add(1).read();
        let mut n = 0;
        while !b.is_null() && n < BATCH {
            stack.blocks.add(n).write(b);
            n += 1;
            b = (b as *mut *mut u8).add(1).read();
        }
        stack.len = n;
    }
    Some(head as *mut u8)
}

/// One thread's stacks, its batches of other threads' blocks, and its
/// current chunk.
struct Cache {
    stacks: [Stack; CLASSES],
    foreign: [Batch; CLASSES],
    bump: usize,
    end: usize,
}

/// Registered (on a thread's first refill) to give the thread's blocks back
/// to the depots when it exits. It is apart from [`Cache`] so that the cache
/// itself has no destructor: a thread-local without one is a plain access,
/// with no "is the destructor registered yet" check on every call.
struct FlushAtExit;

impl Drop for FlushAtExit {
    fn drop(&mut self) {
        let _ = CACHE.try_with(|c| {
            // SAFETY: the thread is exiting; no allocator call of it runs.
            let cache = unsafe { &mut *c.get() };
            for class in 0..CLASSES {
                let s = &mut cache.stacks[class];
                if s.len > 0 {
                    // SAFETY: `blocks[..len]` is initialised.
                    let own = unsafe { std::slice::from_raw_parts(s.blocks, s.len) };
                    for batch in own.chunks(BATCH) {
                        // SAFETY: every block on this thread's stacks is free.
                        unsafe { deposit(class, batch) };
                    }
                }
                s.len = 0;
                let f = &mut cache.foreign[class];
                if f.len > 0 {
                    // SAFETY: every block of a batch is free.
                    unsafe { deposit(class, &f.blocks[..f.len]) };
                }
                f.len = 0;
            }
        });
    }
}

thread_local! {
    static CACHE: UnsafeCell<Cache> = const {
        UnsafeCell::new(Cache {
            stacks: [EMPTY; CLASSES],
            foreign: [NO_BATCH; CLASSES],
            bump: 0,
            end: 0,
        })
    };
    static FLUSH: FlushAtExit = const { FlushAtExit };
}

/// The calling thread's cache. Its address is also the owner token chunk
/// headers carry. (The cache has no destructor, so this is a plain
/// thread-local access.)
#[inline(always)]
fn cache() -> *mut Cache {
    CACHE.with(UnsafeCell::get)
}

/// The floor allocator (see the module docs). There is one, [`NULL`]:
/// its thread caches and depots are the process's.
pub struct NullAlloc {
    base: AtomicPtr<u8>,
    capacity: AtomicUsize,
    /// Bytes of the region taken so far (may run past capacity).
    next: AtomicUsize,
}

/// The process's `null` subject.
pub static NULL: NullAlloc = NullAlloc::new();

impl NullAlloc {
    const fn new() -> NullAlloc {
        NullAlloc {
            base: AtomicPtr::new(ptr::null_mut()),
            capacity: AtomicUsize::new(0),
            next: AtomicUsize::new(0),
        }
    }

    /// The region, mapped on first use; null if no size could be mapped.
    fn region(&self) -> *mut u8 {
        let base = self.base.load(Ordering::Acquire);
        if !base.is_null() {
            return base;
        }
        for size in REGION_SIZES {
            // SAFETY: an anonymous private mapping at no fixed address has no
            // preconditions; failure is reported as MAP_FAILED and checked.
            let p = unsafe {
                libc::mmap(
                    ptr::null_mut(),
                    size,
                    libc::PROT_READ | libc::PROT_WRITE,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                    -1,
                    0,
                )
            };
            if p == libc::MAP_FAILED {
                continue;
            }
            let p = p as *mut u8;
            // Publish capacity before base: readers load base (Acquire) first.
            self.capacity.store(size, Ordering::Relaxed);
            match self.base.compare_exchange(
                ptr::null_mut(),
                p,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return p,
                Err(winner) => {
                    // Another thread mapped first; give ours back.
                    // SAFETY: `p` is the mapping of `size` bytes made above,
                    // never published, so nothing else refers to it.
                    unsafe { libc::munmap(p as *mut libc::c_void, size) };
                    return winner;
                }
            }
        }
        ptr::null_mut()
    }

    /// Takes `len` bytes of the region, aligned to `align` (a power of two
    /// up to a page), faulted in; null when the region is exhausted.
    fn take(&self, len: usize, align: usize) -> *mut u8 {
        let base = self.region();
        if base.is_null() {
            return ptr::null_mut();
        }
        let cap = self.capacity.load(Ordering::Relaxed);
        let Some(need) = len.checked_add(align) else {
            return ptr::null_mut();
        };
        if need > cap {
            return ptr::null_mut();
        }
        let off = self.next.fetch_add(need, Ordering::Relaxed);
        if off.checked_add(need).is_none_or(|end| end > cap) {
            return ptr::null_mut();
        }
        let start = (base as usize + off).next_multiple_of(align);
        // Advice only: kernels before 5.14 refuse it and pages then fault
        // in when first touched.
        // SAFETY: `start..start + len` lies inside the region.
        unsafe { libc::madvise(start as *mut libc::c_void, len, libc::MADV_POPULATE_WRITE) };
        // SAFETY: `start` is inside the region mapped at `base`.
        unsafe { base.add(start - base as usize) }
    }

    /// Bytes of the region taken so far.
    pub fn bumped(&self) -> usize {
        self.next
            .load(Ordering::Relaxed)
            .min(self.capacity.load(Ordering::Relaxed))
    }

    /// Bytes reserved for the region (0 until first use).
    pub fn capacity(&self) -> usize {
        self.capacity.load(Ordering::Relaxed)
    }

    /// The slow path: a batch from the depot, or fresh memory from a chunk
    /// owned by `owner`.
    #[cold]
    fn refill(&self, cache: &mut Cache, class: usize, owner: usize) -> *mut u8 {
        // Registers the flush at thread exit (once; then a no-op).
        let _ = FLUSH.try_with(|_| ());
        if cache.stacks[class].cap >= BATCH || self.grow(&mut cache.stacks[class]) {
            if let Some(p) = withdraw(class, &mut cache.stacks[class]) {
                return p;
            }
        }
        let (bytes, align) = block_of(class);
        if bytes > LARGE {
            return self.take(bytes, align);
        }
        let mut start = cache.bump.next_multiple_of(align);
        if cache.bump == 0 || start + bytes > cache.end {
            let chunk = self.take(CHUNK, CHUNK);
            if chunk.is_null() {
                return ptr::null_mut();
            }
            // SAFETY: the chunk's first line is its header, ours to write.
            unsafe { (chunk as *mut usize).write(owner) };
            cache.bump = chunk as usize + CHUNK_HEADER;
            cache.end = chunk as usize + CHUNK;
            start = cache.bump.next_multiple_of(align);
        }
        cache.bump = start + bytes;
        start as *mut u8
    }

    /// Moves `stack` to an array twice its size (at least [`STACK`]);
    /// false when the region is exhausted.
    #[cold]
    fn grow(&self, stack: &mut Stack) -> bool {
        let cap = (stack.cap * 2).max(STACK);
        let blocks = self.take(cap * size_of::<*mut u8>(), align_of::<*mut u8>());
        if blocks.is_null() {
            return false;
        }
        let blocks = blocks as *mut *mut u8;
        // SAFETY: the new array has room for `cap > len` pointers and does
        // not overlap the old one (fresh region memory); the old array is
        // abandoned (the region never reuses memory).
        unsafe { ptr::copy_nonoverlapping(stack.blocks, blocks, stack.len) };
        stack.blocks = blocks;
        stack.cap = cap;
        true
    }

    /// The slow path of a push: a full stack grows; if it cannot, the block
    /// goes to the depot.
    #[cold]
    fn push_slow(&self, cache: &mut Cache, class: usize, ptr: *mut u8) {
        let s = &mut cache.stacks[class];
        if self.grow(s) {
            // SAFETY: `grow` made room above `len`.
            unsafe { s.blocks.add(s.len).write(ptr) };
            s.len += 1;
        } else {
            // SAFETY: a free block of `class`, ours to give.
            unsafe { deposit(class, &[ptr]) };
        }
    }

    /// A block another thread carved: into this thread's batch for its
    /// class, which goes to the depot when full.
    #[cold]
    fn free_foreign(cache: &mut Cache, class: usize, ptr: *mut u8) {
        let f = &mut cache.foreign[class];
        if f.len == 0 {
            // Registers the flush at thread exit (once; then a no-op).
            let _ = FLUSH.try_with(|_| ());
        }
        f.blocks[f.len] = ptr;
        f.len += 1;
        if f.len == BATCH {
            // SAFETY: every block of a batch is free and ours to give.
            unsafe { deposit(class, &f.blocks) };
            f.len = 0;
        }
    }
}

// SAFETY: `alloc` returns null or a block of `block_of(class).0 >= size`
// bytes aligned to `block_of(class).1 >= align` (classes are chosen so),
// never handed out twice while live: a block is on at most one stack or
// depot batch, stacks are per thread and depots behind a mutex. `dealloc`
// takes the block back into the stack of the same class (the same layout
// gives the same class) without touching its memory.
unsafe impl GlobalAlloc for NullAlloc {
    /// The common case inline: a small block popped from this thread's
    /// stack; everything else out of line.
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let size = layout.size();
        if size.wrapping_sub(1) < SMALL_MAX && layout.align() <= STEP {
            let class = (size - 1) / STEP;
            debug_assert_eq!(Some(class), class_of(layout));
            // SAFETY: the cache is this thread's; nothing else borrows it
            // while this call runs (no allocation happens inside).
            let s = unsafe { &mut (*cache()).stacks[class] };
            if s.len != 0 {
                s.len -= 1;
                // SAFETY: `blocks[..len]` holds free blocks of this class.
                return unsafe { s.blocks.add(s.len).read() };
            }
        }
        self.alloc_slow(layout)
    }

    /// The common case inline: a small block of this thread's pushed on its
    /// stack; everything else out of line.
    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let size = layout.size();
        if size.wrapping_sub(1) < SMALL_MAX && layout.align() <= STEP {
            let class = (size - 1) / STEP;
            let c = cache();
            // SAFETY: a small block was carved from a chunk, whose first
            // word names its owner.
            let owner = unsafe { ((ptr as usize & !(CHUNK - 1)) as *const usize).read() };
            // SAFETY: as in `alloc`.
            let s = unsafe { &mut (*c).stacks[class] };
            if owner == c as usize && s.len != s.cap {
                // SAFETY: `len < cap`: inside the stack's array.
                unsafe { s.blocks.add(s.len).write(ptr) };
                s.len += 1;
                return;
            }
        }
        // SAFETY: the caller's contract, passed on.
        unsafe { self.dealloc_slow(ptr, layout) }
    }
}

impl NullAlloc {
    /// `alloc` for every case (see [`GlobalAlloc::alloc`]).
    #[cold]
    #[inline(never)]
    fn alloc_slow(&self, layout: Layout) -> *mut u8 {
        let Some(class) = class_of(layout) else {
            return ptr::null_mut();
        };
        let c = cache();
        // SAFETY: as in `alloc`.
        let cache = unsafe { &mut *c };
        let s = &mut cache.stacks[class];
        if s.len == 0 {
            return self.refill(cache, class, c as usize);
        }
        s.len -= 1;
        // SAFETY: `blocks[..len]` holds free blocks of this class.
        unsafe { s.blocks.add(s.len).read() }
    }

    /// `dealloc` for every case.
    ///
    /// # Safety
    /// As [`GlobalAlloc::dealloc`].
    #[cold]
    #[inline(never)]
    unsafe fn dealloc_slow(&self, ptr: *mut u8, layout: Layout) {
        let Some(class) = class_of(layout) else {
            return;
        };
        let c = cache();
        if block_of(class).0 <= LARGE {
            // SAFETY: a block of this size was carved from a chunk, whose
            // first word names its owner.
            let owner = unsafe { ((ptr as usize & !(CHUNK - 1)) as *const usize).read() };
            if owner != c as usize {
                // Another thread's block goes back through the depot (see
                // the module docs).
                // SAFETY: as in `alloc`.
                Self::free_foreign(unsafe { &mut *c }, class, ptr);
                return;
            }
        }
        // SAFETY: as in `alloc`.
        let cache = unsafe { &mut *c };
        let s = &mut cache.stacks[class];
        if s.len == s.cap {
            return self.push_slow(cache, class, ptr);
        }
        // SAFETY: `len < cap`: inside the stack's array.
        unsafe { s.blocks.add(s.len).write(ptr) };
        s.len += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(size: usize, align: usize) -> Layout {
        Layout::from_size_align(size, align).expect("valid layout")
    }

    #[test]
    fn classes_cover_every_size_and_alignment() {
        assert_eq!(class_of(layout(1, 1)), Some(0));
        assert_eq!(class_of(layout(16, 8)), Some(0));
        assert_eq!(class_of(layout(17, 8)), Some(1));
        assert_eq!(block_of(class_of(layout(1024, 8)).unwrap()).0, 1024);
        assert_eq!(block_of(class_of(layout(1025, 8)).unwrap()).0, 2048);
        for (size, align) in [
            (1usize, 1usize),
            (1000, 64),
            (65 << 10, 8),
            (100, 128),
            (1, 4096),
            (1 << 28, 8),
        ] {
            let c = class_of(layout(size, align)).unwrap();
            let (bytes, al) = block_of(c);
            assert!(bytes >= size && al >= align, "{size} {align}");
        }
        assert_eq!(class_of(layout(8, 8192)), None);
        assert_eq!(class_of(layout((1 << 28) + 1, 8)), None);
    }

    #[test]
    fn blocks_are_aligned_disjoint_and_reused_lifo() {
        let a = &NULL;
        let mut blocks = Vec::new();
        for align in [1usize, 8, 64, 128, 4096] {
            for size in [1usize, 24, 1000, 4096, (64 << 10) + 1] {
                let l = layout(size, align);
                // SAFETY: non-zero size.
                let p = unsafe { a.alloc(l) };
                assert!(!p.is_null() && p as usize % align == 0, "{size} {align}");
                // SAFETY: `p` is valid for `size` bytes.
                unsafe { p.write_bytes(0xA5, size) };
                blocks.push((p as usize, size, l));
            }
        }
        let mut spans: Vec<(usize, usize)> = blocks.iter().map(|b| (b.0, b.1)).collect();
        spans.sort_unstable();
        assert!(spans.windows(2).all(|w| w[0].0 + w[0].1 <= w[1].0));
        let (p, _, l) = blocks[2];
        // SAFETY: `p` was allocated with `l` and is freed once.
        unsafe { a.dealloc(p as *mut u8, l) };
        // The next request of its class gets it back.
        // SAFETY: non-zero size.
        assert_eq!(unsafe { a.alloc(layout(999, 8)) } as usize, p, "LIFO reuse");
    }

    #[test]
    fn blocks_freed_by_another_thread_come_back_through_the_depot() {
        // A class no other test uses: depots are shared by the process.
        let a: &'static NullAlloc = &NULL;
        let l = layout(200, 128);
        let n = 3 * STACK;
        let blocks: Vec<usize> = (0..n)
            // SAFETY: non-zero size.
            .map(|_| unsafe { a.alloc(l) } as usize)
            .collect();
        let freed = blocks.clone();
        std::thread::spawn(move || {
            for p in freed {
                // SAFETY: each block was allocated with `l`, freed once.
                unsafe { a.dealloc(p as *mut u8, l) };
            }
        })
        .join()
        .unwrap();
        // The other thread sent every block, not its own, to the depot:
        // this thread gets them all back.
        let again: std::collections::BTreeSet<usize> = (0..n)
            // SAFETY: non-zero size.
            .map(|_| unsafe { a.alloc(l) } as usize)
            .collect();
        let before: std::collections::BTreeSet<usize> = blocks.into_iter().collect();
        assert_eq!(again, before);
    }

    #[test]
    fn refusals_return_null() {
        let a = &NULL;
        // SAFETY: non-zero sizes.
        unsafe {
            assert!(a.alloc(layout(8, 8192)).is_null());
            assert!(a.alloc(layout(isize::MAX as usize - 4096, 4096)).is_null());
        }
    }
}
