//! `null`: the cheapest allocator that is still an allocator — the floor.
//!
//! A cell run on `null` measures what poolbench itself costs per operation
//! (reading the tape, the indirect call, the slot table, the touch, the
//! batches of remote frees), so it must be cheaper than every real
//! allocator on every workload, and must not pay costs a real allocator in
//! steady state does not pay. Its design, in that order of concern:
//!
//! - **Per-thread stacks of free blocks, kept outside the blocks.** `alloc`
//!   pops the calling thread's stack for the block's class, `dealloc`
//!   pushes on it: an array access, no atomic, and no access to the block
//!   itself, so freeing never misses the cache (a real allocator writes a
//!   link into every freed block).
//! - **Few, coarse classes**: every request up to 1 KiB shares one class,
//!   then up to 4, 16 and 64 KiB, then powers of two. A freed block is the
//!   next one handed out for any request of its class (LIFO), so the
//!   workload's touch of a fresh block usually hits a line that is still
//!   in cache. Blocks of the first classes span an odd number of cache
//!   lines (1088 B, 4160 B, ...), so neighbours never share a line (no
//!   false sharing, which would make `null` slower than a good allocator
//!   on cache-scratch and cache-thrash) and do not alias in the cache's
//!   sets.
//! - **Blocks that cross threads come back in batches.** A stack holds at
//!   most [`STACK`] blocks; when a push finds it full, half of it goes to
//!   a global depot of batches for that class (under a mutex, once per
//!   batch), and a thread whose stack is empty takes a whole batch back.
//!   So producer/consumer workloads reuse warm memory instead of growing,
//!   and the lock costs a fraction of a nanosecond per operation. A thread
//!   gives its stacks to the depots when it exits, for later rounds.
//! - **Pre-touched memory.** Fresh blocks come from per-thread 1 MiB chunks
//!   of one big `MAP_NORESERVE` region, faulted in with one
//!   `MADV_POPULATE_WRITE` when the chunk is taken.
//!
//! It never returns memory to the OS; its memory figures describe it, not
//! the workload. Alignments up to 4096 are honoured; larger ones get null.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::UnsafeCell;
use std::ptr;
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};
use std::sync::Mutex;

/// The coarse classes: requests up to these sizes, and the bytes each
/// block of them spans (an odd number of cache lines).
const COARSE: [(usize, usize); 4] = [
    (1 << 10, 17 * 64),
    (4 << 10, 65 * 64),
    (16 << 10, 257 * 64),
    (64 << 10, 1025 * 64),
];
/// Then powers of two `2^k` for `k` in `MIN_POW..=MAX_POW`, for larger
/// requests and for alignments beyond a cache line.
const MIN_POW: u32 = 7;
const MAX_POW: u32 = 28;
/// Number of classes.
const CLASSES: usize = COARSE.len() + (MAX_POW - MIN_POW + 1) as usize;
/// Largest alignment served.
const MAX_ALIGN: usize = 4096;
/// Blocks a thread's stack for one class holds.
const STACK: usize = 128;
/// Bytes of fresh memory a thread takes from the region at a time.
const CHUNK: usize = 1 << 20;
/// Region sizes tried, largest first (overcommit policies differ).
const REGION_SIZES: [usize; 4] = [64 << 30, 16 << 30, 4 << 30, 1 << 30];

/// The class of a layout, or `None` when it cannot be served.
#[inline(always)]
fn class_of(layout: Layout) -> Option<usize> {
    let (size, align) = (layout.size(), layout.align());
    if align <= 64 {
        if size <= COARSE[0].0 {
            return Some(0);
        }
        if let Some(c) = COARSE.iter().position(|&(max, _)| size <= max) {
            return Some(c);
        }
    }
    if align > MAX_ALIGN {
        return None;
    }
    let bytes = size.max(align).checked_next_power_of_two()?;
    let k = bytes.trailing_zeros().max(MIN_POW);
    (k <= MAX_POW).then(|| COARSE.len() + (k - MIN_POW) as usize)
}

/// Bytes a block of `class` spans, and its alignment.
fn block_of(class: usize) -> (usize, usize) {
    match COARSE.get(class) {
        Some(&(_, bytes)) => (bytes, 64),
        None => {
            let bytes = 1usize << (MIN_POW as usize + class - COARSE.len());
            (bytes, bytes.min(MAX_ALIGN))
        }
    }
}

/// Blocks per batch in the depot: half a stack, or fewer when a block is
/// too small to hold the others' addresses.
fn batch_len(class: usize) -> usize {
    let (bytes, _) = block_of(class);
    (STACK / 2).min(bytes / 8 - 2)
}

/// One class's free blocks on one thread.
#[derive(Clone, Copy)]
struct Stack {
    len: usize,
    blocks: [*mut u8; STACK],
}

const EMPTY: Stack = Stack {
    len: 0,
    blocks: [ptr::null_mut(); STACK],
};

/// A stack of batches: each batch is stored in its first block, which
/// holds the next batch, the count, and the other blocks' addresses.
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
    debug_assert!(!blocks.is_empty() && blocks.len() <= batch_len(class) + 1);
    let head = blocks[0] as *mut *mut u8;
    let mut d = DEPOTS[class].lock().unwrap_or_else(|p| p.into_inner());
    // SAFETY: `head` is a free block of at least `(batch_len + 2) * 8`
    // bytes (see `batch_len`), ours to write.
    unsafe {
        head.write(d.top);
        head.add(1).write((blocks.len() - 1) as *mut u8);
        for (i, &b) in blocks[1..].iter().enumerate() {
            head.add(2 + i).write(b);
        }
    }
    d.top = head as *mut u8;
}

/// Takes a batch from the depot of `class` into `stack` (empty); returns
/// one block of it.
fn withdraw(class: usize, stack: &mut Stack) -> Option<*mut u8> {
    let mut d = DEPOTS[class].lock().unwrap_or_else(|p| p.into_inner());
    let head = d.top as *mut *mut u8;
    if head.is_null() {
        return None;
    }
    // SAFETY: `head` heads a batch written by `deposit`.
    unsafe {
        d.top = head.read();
        let n = head.add(1).read() as usize;
        for i in 0..n {
            stack.blocks[i] = head.add(2 + i).read();
        }
        stack.len = n;
    }
    Some(head as *mut u8)
}

/// One thread's stacks and its current chunk.
struct Cache {
    stacks: [Stack; CLASSES],
    bump: usize,
    end: usize,
}

impl Drop for Cache {
    /// A thread's blocks go back to the depots when it exits.
    fn drop(&mut self) {
        for class in 0..CLASSES {
            let s = &self.stacks[class];
            for batch in s.blocks[..s.len].chunks(batch_len(class) + 1) {
                // SAFETY: every block on this thread's stacks is free.
                unsafe { deposit(class, batch) };
            }
        }
    }
}

thread_local! {
    static CACHE: UnsafeCell<Cache> = const {
        UnsafeCell::new(Cache { stacks: [EMPTY; CLASSES], bump: 0, end: 0 })
    };
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

    /// The slow path: a batch from the depot, or fresh memory.
    #[cold]
    fn refill(&self, cache: &mut Cache, class: usize) -> *mut u8 {
        if let Some(p) = withdraw(class, &mut cache.stacks[class]) {
            return p;
        }
        let (bytes, align) = block_of(class);
        if bytes > CHUNK / 4 {
            return self.take(bytes, align);
        }
        let mut start = cache.bump.next_multiple_of(align);
        if cache.bump == 0 || start + bytes > cache.end {
            let chunk = self.take(CHUNK, MAX_ALIGN);
            if chunk.is_null() {
                return ptr::null_mut();
            }
            cache.bump = chunk as usize;
            cache.end = chunk as usize + CHUNK;
            start = cache.bump;
        }
        cache.bump = start + bytes;
        start as *mut u8
    }

    /// The slow path of a push: half the stack goes to the depot.
    #[cold]
    fn spill(cache: &mut Cache, class: usize) {
        let s = &mut cache.stacks[class];
        let n = batch_len(class) + 1;
        let keep = s.len - n;
        // SAFETY: the top `n` blocks of this thread's stack are free blocks
        // of `class`, moved out of the stack here.
        unsafe { deposit(class, &s.blocks[keep..s.len]) };
        s.len = keep;
    }
}

// SAFETY: `alloc` returns null or a block of `block_of(class).0 >= size`
// bytes aligned to `block_of(class).1 >= align` (classes are chosen so),
// never handed out twice while live: a block is on at most one stack or
// depot batch, stacks are per thread and depots behind a mutex. `dealloc`
// takes the block back into the stack of the same class (the same layout
// gives the same class) without touching its memory.
unsafe impl GlobalAlloc for NullAlloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let Some(class) = class_of(layout) else {
            return ptr::null_mut();
        };
        CACHE.with(|c| {
            // SAFETY: the cache is this thread's; nothing else borrows it
            // while this call runs (no allocation happens inside).
            let cache = unsafe { &mut *c.get() };
            let s = &mut cache.stacks[class];
            if s.len == 0 {
                return self.refill(cache, class);
            }
            s.len -= 1;
            s.blocks[s.len]
        })
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let Some(class) = class_of(layout) else {
            return;
        };
        let _ = CACHE.try_with(|c| {
            // SAFETY: as in `alloc`.
            let cache = unsafe { &mut *c.get() };
            if cache.stacks[class].len == STACK {
                Self::spill(cache, class);
            }
            let s = &mut cache.stacks[class];
            s.blocks[s.len] = ptr;
            s.len += 1;
        });
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
        assert_eq!(class_of(layout(1024, 8)), Some(0));
        assert_eq!(class_of(layout(1025, 8)), Some(1));
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
            assert!(batch_len(c) >= 1);
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
        // Any request of the same class gets it back.
        // SAFETY: non-zero size.
        assert_eq!(unsafe { a.alloc(layout(7, 8)) } as usize, p, "LIFO reuse");
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
        // The other thread spilled batches and gave the rest back at exit:
        // everything is in the depot, and this thread gets it back.
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
