//! The allocators people ship, as subjects, with what each says about
//! itself by its own names:
//!
//! - `jemalloc`: `stats.{allocated, active, metadata, resident, mapped,
//!   retained}` after an `epoch` advance (tikv-jemalloc-ctl). The harness's
//!   own allocations go to the system allocator, so these are the subject's.
//! - `mimalloc`: `mi_process_info`'s `current_commit` / `peak_commit`.
//! - `snmalloc`: `sn_rust_statistics`' current and peak OS reservation.
//! - `system`: glibc `mallinfo2` (`arena`, `hblkhd`, `uordblks`,
//!   `fordblks`); the harness allocates from the same heap, so these
//!   include a little of the harness.

use std::alloc::{GlobalAlloc, System};
use std::collections::BTreeMap;

use super::{Info, Subject};

static MIMALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
static JEMALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
static SNMALLOC: snmalloc_rs::SnMalloc = snmalloc_rs::SnMalloc;

struct Reference {
    info: &'static Info,
    alloc: &'static (dyn GlobalAlloc + Sync),
}

impl Subject for Reference {
    fn info(&self) -> &'static Info {
        self.info
    }
    fn allocator(&self) -> &(dyn GlobalAlloc + Sync) {
        self.alloc
    }
    fn own_counters(&self) -> BTreeMap<String, u64> {
        own_counters(self.info.name)
    }
}

/// The reference `info` names.
pub(super) fn build(info: &'static Info) -> Option<Box<dyn Subject>> {
    let alloc: &'static (dyn GlobalAlloc + Sync) = match info.name {
        "system" => &System,
        "mimalloc" => &MIMALLOC,
        "jemalloc" => &JEMALLOC,
        "snmalloc" => &SNMALLOC,
        _ => return None,
    };
    Some(Box::new(Reference { info, alloc }))
}

extern "C" {
    // Both come from the C/C++ libraries the `mimalloc` and `snmalloc-rs`
    // crates link; their Rust crates do not re-export them (mimalloc only
    // with its `extended` feature).
    fn mi_process_info(
        elapsed_msecs: *mut usize,
        user_msecs: *mut usize,
        system_msecs: *mut usize,
        current_rss: *mut usize,
        peak_rss: *mut usize,
        current_commit: *mut usize,
        peak_commit: *mut usize,
        page_faults: *mut usize,
    );
    fn sn_rust_statistics(current_memory_usage: *mut usize, peak_memory_usage: *mut usize);
}

/// A reference allocator's own statistics, by its own names (see the
/// module docs); empty for any other name.
pub fn own_counters(name: &str) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    let mut put = |k: &str, v: usize| {
        out.insert(k.to_string(), v as u64);
    };
    match name {
        "jemalloc" => {
            use tikv_jemalloc_ctl::{epoch, stats};
            // Statistics are cached until the epoch advances.
            if epoch::advance().is_ok() {
                let reads: [(&str, tikv_jemalloc_ctl::Result<usize>); 6] = [
                    ("allocated", stats::allocated::read()),
                    ("active", stats::active::read()),
                    ("metadata", stats::metadata::read()),
                    ("resident", stats::resident::read()),
                    ("mapped", stats::mapped::read()),
                    ("retained", stats::retained::read()),
                ];
                for (k, v) in reads {
                    if let Ok(v) = v {
                        put(k, v);
                    }
                }
            }
        }
        "mimalloc" => {
            let (mut commit, mut peak) = (0usize, 0usize);
            let null = std::ptr::null_mut();
            // SAFETY: every out-parameter is either null (documented as
            // optional) or a valid, writable usize.
            unsafe { mi_process_info(null, null, null, null, null, &mut commit, &mut peak, null) };
            put("current_commit", commit);
            put("peak_commit", peak);
        }
        "snmalloc" => {
            let (mut current, mut peak) = (0usize, 0usize);
            // SAFETY: both pointers are valid, writable usizes.
            unsafe { sn_rust_statistics(&mut current, &mut peak) };
            put("current_memory_usage", current);
            put("peak_memory_usage", peak);
        }
        "system" => {
            // SAFETY: mallinfo2 has no preconditions (glibc >= 2.33).
            let mi = unsafe { libc::mallinfo2() };
            put("arena", mi.arena);
            put("hblkhd", mi.hblkhd);
            put("uordblks", mi.uordblks);
            put("fordblks", mi.fordblks);
        }
        _ => {}
    }
    out
}
