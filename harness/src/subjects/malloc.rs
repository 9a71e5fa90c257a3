//! `malloc`: the process's C allocator, driven through libc's `malloc`,
//! `free`, `realloc`, `calloc` and `posix_memalign` — whatever library
//! those symbols resolve to. That is how `so:PATH` and `preload:NAME`
//! subjects are measured: the cell's child runs under `LD_PRELOAD=PATH`
//! (mimalloc-bench's way of injecting an allocator), and this subject
//! calls the preloaded library through the C ABI, as a C program would.
//!
//! Layouts go to `malloc` when C's promise covers them (the alignment of
//! `max_align_t`, 16 bytes on x86-64 and AArch64, and no more than the
//! size), to `posix_memalign` otherwise: the rule of Rust's `System`, so
//! a block is requested the way a C program of the same shape would
//! request it. The harness's own allocations in that process also come
//! from the preloaded library (through `System`), as in any preloaded
//! program.
//!
//! Its own counters are glibc's `mallinfo2` when `malloc` is glibc's and
//! nothing otherwise: another library's `mallinfo` (if it has one) is not
//! glibc's structure, and asking `malloc_usable_size` per block would cost
//! the measured loop a call per operation.

use std::alloc::{GlobalAlloc, Layout};
use std::collections::BTreeMap;
use std::ffi::c_void;

use super::{Info, Subject};

/// The largest alignment `malloc` promises (C's `alignof(max_align_t)`).
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
const MALLOC_ALIGN: usize = 16;
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
const MALLOC_ALIGN: usize = 8;

/// Whether plain `malloc` serves `layout` (see the module docs).
#[inline(always)]
fn plain(layout: Layout) -> bool {
    layout.align() <= MALLOC_ALIGN && layout.align() <= layout.size()
}

/// The C allocator through libc.
pub struct Malloc;

// SAFETY: every block comes from the C allocator and is returned to it;
// `malloc`/`calloc` blocks are aligned to `MALLOC_ALIGN` (C's promise, for
// sizes of at least the alignment), other layouts come from
// `posix_memalign` with their own alignment; `realloc` keeps the contents
// up to the smaller size, as `GlobalAlloc::realloc` requires.
unsafe impl GlobalAlloc for Malloc {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if plain(layout) {
            // SAFETY: malloc has no preconditions.
            unsafe { libc::malloc(layout.size()).cast() }
        } else {
            aligned(layout)
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        if plain(layout) {
            // SAFETY: calloc has no preconditions.
            unsafe { libc::calloc(1, layout.size()).cast() }
        } else {
            let p = aligned(layout);
            if !p.is_null() {
                // SAFETY: a fresh block of `layout.size()` bytes.
                unsafe { p.write_bytes(0, layout.size()) };
            }
            p
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` is a live block of this allocator (caller's
        // contract), i.e. of the C allocator.
        unsafe { libc::free(ptr.cast()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `layout` and `new_size` make a valid layout (caller's
        // contract), and `ptr` is live with `layout`.
        let new = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        if plain(layout) && plain(new) {
            // SAFETY: a live C block; realloc keeps the contents.
            unsafe { libc::realloc(ptr.cast(), new_size).cast() }
        } else {
            let q = aligned(new);
            if !q.is_null() {
                // SAFETY: distinct live blocks, both at least the smaller
                // size long; the old block is freed once.
                unsafe {
                    std::ptr::copy_nonoverlapping(ptr, q, layout.size().min(new_size));
                    libc::free(ptr.cast());
                }
            }
            q
        }
    }
}

/// A block from `posix_memalign` (null on failure).
fn aligned(layout: Layout) -> *mut u8 {
    // posix_memalign wants a multiple of sizeof(void *).
    let align = layout.align().max(std::mem::size_of::<usize>());
    let mut out: *mut c_void = std::ptr::null_mut();
    // SAFETY: `out` is a valid place for the result; the alignment is a
    // power of two and a multiple of the pointer size.
    let rc = unsafe { libc::posix_memalign(&mut out, align, layout.size()) };
    if rc == 0 {
        out.cast()
    } else {
        std::ptr::null_mut()
    }
}

/// The shared object the process's `malloc` symbol resolves to (glibc's
/// `libc.so.6`, or whatever `LD_PRELOAD` put in front of it).
pub fn library() -> Option<String> {
    // SAFETY: `dlsym` takes a valid NUL-terminated name and the default
    // handle; `dladdr` writes into a valid, writable `Dl_info`, whose
    // `dli_fname` (checked for null) is a NUL-terminated path owned by the
    // dynamic loader for the life of the process.
    unsafe {
        let sym = libc::dlsym(libc::RTLD_DEFAULT, c"malloc".as_ptr());
        if sym.is_null() {
            return None;
        }
        let mut info: libc::Dl_info = std::mem::zeroed();
        if libc::dladdr(sym, &mut info) == 0 || info.dli_fname.is_null() {
            return None;
        }
        std::ffi::CStr::from_ptr(info.dli_fname)
            .to_str()
            .ok()
            .map(str::to_string)
    }
}

/// Whether `path` names glibc's C library.
pub fn is_glibc(path: &str) -> bool {
    let file = path.rsplit('/').next().unwrap_or(path);
    file.starts_with("libc.so") || file.starts_with("libc-")
}

struct MallocSubject {
    info: &'static Info,
    glibc: bool,
}

impl Subject for MallocSubject {
    fn info(&self) -> &'static Info {
        self.info
    }
    fn allocator(&self) -> &(dyn GlobalAlloc + Sync) {
        &Malloc
    }
    fn own_counters(&self) -> BTreeMap<String, u64> {
        if self.glibc {
            super::reference::own_counters("system")
        } else {
            BTreeMap::new()
        }
    }
}

/// The `malloc` subject, over whichever library serves `malloc` now.
pub(super) fn build(info: &'static Info) -> Box<dyn Subject> {
    Box::new(MallocSubject {
        info,
        glibc: library().is_some_and(|l| is_glibc(&l)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_layout_keeps_its_alignment_and_contents() {
        for (size, align) in [(1, 1), (8, 8), (24, 16), (8, 16), (100, 64), (5000, 4096)] {
            let l = Layout::from_size_align(size, align).unwrap();
            // SAFETY: non-zero sizes; every block is freed once with its
            // layout; reallocs keep the alignment.
            unsafe {
                let p = Malloc.alloc(l);
                assert!(!p.is_null() && p as usize % align == 0, "{size}/{align}");
                p.write_bytes(0xAB, size);
                let q = Malloc.realloc(p, l, size * 3);
                assert!(!q.is_null() && q as usize % align == 0, "{size}/{align}");
                assert!((0..size).all(|i| *q.add(i) == 0xAB));
                Malloc.dealloc(q, Layout::from_size_align(size * 3, align).unwrap());
                let z = Malloc.alloc_zeroed(l);
                assert!((0..size).all(|i| *z.add(i) == 0));
                Malloc.dealloc(z, l);
            }
        }
    }

    #[test]
    fn this_process_mallocs_with_glibc() {
        let lib = library().expect("malloc resolves");
        assert!(is_glibc(&lib), "{lib}");
        assert!(!is_glibc("/x/libpoolbench_preload.so"));
    }
}
