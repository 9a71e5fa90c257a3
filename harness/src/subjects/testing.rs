//! Subjects that exist to test the harness: one that counts every call
//! (the driver must make exactly the calls its tapes say), and two broken
//! on purpose (the verify pass must catch them). None is ever listed.

use std::alloc::{GlobalAlloc, Layout};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use super::null::NULL;
use super::{Info, Subject};

/// `null`, counting calls; see [`Counting::counts`].
#[derive(Default)]
pub struct Counting {
    allocs: AtomicU64,
    deallocs: AtomicU64,
    reallocs: AtomicU64,
}

impl Counting {
    /// `(alloc, dealloc, realloc)` calls so far.
    pub fn counts(&self) -> (u64, u64, u64) {
        (
            self.allocs.load(Ordering::Relaxed),
            self.deallocs.load(Ordering::Relaxed),
            self.reallocs.load(Ordering::Relaxed),
        )
    }
}

// SAFETY: delegates every call to `NULL` unchanged; counting has no effect
// on the blocks.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        self.allocs.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { NULL.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        self.deallocs.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { NULL.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        self.reallocs.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { NULL.realloc(ptr, layout, new_size) }
    }
}

/// `null`, except that every [`DOUBLE_EVERY`]-th allocation returns the
/// previous allocation's block again while it is still live.
///
/// `null`'s lists are the whole process's (every test running beside this
/// one uses them), so a broken block must never reach them twice: a block
/// freed meanwhile is never handed out again, and of the two frees a
/// doubled block gets (a pass without verification frees both holders),
/// only the second goes to `null`.
#[derive(Default)]
pub struct Double {
    calls: AtomicU64,
    last: AtomicUsize,
    /// Blocks handed out twice and not yet freed once.
    doubled: Mutex<Vec<usize>>,
}

/// How often [`Double`] hands a block out twice.
pub const DOUBLE_EVERY: u64 = 1000;

// SAFETY: none — this allocator breaks `GlobalAlloc`'s contract on purpose
// (a block handed out twice), for the harness's verification tests. Its
// blocks are `null`'s, which stay mapped, so the harness's writes into a
// doubly handed-out block are writes to valid memory; the verify pass
// stops the cell at the first mismatch and leaks the block.
unsafe impl GlobalAlloc for Double {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let n = self.calls.fetch_add(1, Ordering::Relaxed) + 1;
        let last = self.last.load(Ordering::Relaxed);
        if n % DOUBLE_EVERY == 0 && last != 0 {
            // Handed out once more; the first free of it must not free it
            // a second time through `last`.
            self.last.store(0, Ordering::Relaxed);
            self.doubled
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(last);
            return last as *mut u8;
        }
        // SAFETY: the caller's contract, passed on.
        let p = unsafe { NULL.alloc(layout) };
        // Only blocks large enough for any layout of this test are reused.
        if layout.size() >= 16 && layout.align() <= 16 {
            self.last.store(p as usize, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _ = self
            .last
            .compare_exchange(ptr as usize, 0, Ordering::Relaxed, Ordering::Relaxed);
        {
            let mut doubled = self.doubled.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(i) = doubled.iter().position(|&d| d == ptr as usize) {
                // The first of a doubled block's two frees: its other holder
                // still has it.
                doubled.swap_remove(i);
                return;
            }
        }
        // SAFETY: the caller's contract, passed on; a doubled block gets
        // here once.
        unsafe { NULL.dealloc(ptr, layout) }
    }
}

/// `null`, but `realloc` copies only the first half of the old block.
#[derive(Default)]
pub struct HalfRealloc;

// SAFETY: none for `realloc` (it loses contents on purpose, for the
// harness's verification tests); `alloc` and `dealloc` are `null`'s, so
// memory stays valid.
unsafe impl GlobalAlloc for HalfRealloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract, passed on.
        unsafe { NULL.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract, passed on.
        unsafe { NULL.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Ok(new) = Layout::from_size_align(new_size, layout.align()) else {
            return std::ptr::null_mut();
        };
        // SAFETY: the caller's contract for `ptr` and `layout`; `q` holds
        // `new_size` bytes and `ptr` `layout.size()`, both valid for half
        // the smaller one.
        unsafe {
            let q = NULL.alloc(new);
            if !q.is_null() {
                std::ptr::copy_nonoverlapping(ptr, q, layout.size().min(new_size) / 2);
                NULL.dealloc(ptr, layout);
            }
            q
        }
    }
}

/// A test subject around one of the allocators above.
struct Testing<A: 'static> {
    info: &'static Info,
    alloc: A,
}

impl<A: GlobalAlloc + Sync> Subject for Testing<A> {
    fn verifiable(&self) -> bool {
        true
    }
    fn info(&self) -> &'static Info {
        self.info
    }
    fn allocator(&self) -> &(dyn GlobalAlloc + Sync) {
        &self.alloc
    }
}

/// The counting subject: it shows its counts as its own counters.
struct CountingSubject {
    info: &'static Info,
    alloc: Counting,
}

impl Subject for CountingSubject {
    fn info(&self) -> &'static Info {
        self.info
    }
    fn allocator(&self) -> &(dyn GlobalAlloc + Sync) {
        &self.alloc
    }
    fn own_counters(&self) -> BTreeMap<String, u64> {
        let (a, d, r) = self.alloc.counts();
        BTreeMap::from([
            ("alloc_calls".to_string(), a),
            ("dealloc_calls".to_string(), d),
            ("realloc_calls".to_string(), r),
        ])
    }
}

/// The test subject `info` names.
pub(super) fn build(info: &'static Info) -> Option<Box<dyn Subject>> {
    Some(match info.name {
        "test-counting" => Box::new(CountingSubject {
            info,
            alloc: Counting::default(),
        }),
        "test-double" => Box::new(Testing {
            info,
            alloc: Double::default(),
        }),
        "test-realloc" => Box::new(Testing {
            info,
            alloc: HalfRealloc,
        }),
        _ => return None,
    })
}
