//! Subjects: the allocators a cell can run, by name.
//!
//! Every subject is a `&'static (dyn GlobalAlloc + Sync)`: the driver calls
//! `alloc`, `dealloc` and `realloc` through that vtable for all of them, and
//! passes the reference through `black_box` first so the compiler cannot
//! devirtualise one subject and inline it into the loop (it could then also
//! pair a `malloc` with its `free` and delete both). Our pool allocators are
//! built at run time with the requested geometry and leaked to `'static`;
//! a cell runs in its own process, so the leak is one allocator per process.
//!
//! [`reference_stats`] reads what each reference allocator says about
//! itself, by its own names:
//!
//! - `jemalloc`: `stats.{allocated, active, metadata, resident, mapped,
//!   retained}` after an `epoch` advance (tikv-jemalloc-ctl). The harness's
//!   own allocations go to the system allocator, so these are the subject's.
//! - `mimalloc`: `mi_process_info`'s `current_commit` / `peak_commit` (memory
//!   mimalloc has committed; on Linux mimalloc estimates RSS from it, so
//!   RSS is not repeated).
//! - `snmalloc`: `sn_rust_statistics`' current and peak OS reservation.
//! - `system`: glibc `mallinfo2` (`arena`, `hblkhd`, `uordblks`,
//!   `fordblks`); the harness allocates from the same heap (slot tables,
//!   channels, histograms), so these include a little of the harness.
//! - `null`: bytes bumped and the region reserved.
//! - our subjects: nothing here; their accounting is `Stats`.

use std::alloc::{GlobalAlloc, System};
use std::collections::BTreeMap;

pub mod null;

use allocator::Geometry;

use crate::subjects::null::NULL;
use allocator::{Gil, Locked, PoolStats, Sharded, Tcache};

/// Which family a subject belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    /// Our pymalloc-style allocators (report `Stats`).
    Ours,
    /// Allocators people ship.
    Reference,
    /// The harness-cost baseline.
    Null,
}

/// An allocator under test.
#[derive(Clone, Copy)]
pub struct Subject {
    pub name: &'static str,
    pub about: &'static str,
    pub family: Family,
    pub alloc: &'static (dyn GlobalAlloc + Sync),
    pub stats: Option<&'static (dyn PoolStats + Sync)>,
    pub gil: Option<&'static Gil>,
}

impl std::fmt::Debug for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subject")
            .field("name", &self.name)
            .field("family", &self.family)
            .finish_non_exhaustive()
    }
}

/// Every subject name, in report order.
pub const NAMES: &[&str] = &[
    "gil", "locked", "tcache", "sharded", "system", "mimalloc", "jemalloc", "snmalloc", "null",
];

/// A subject name that is not in [`NAMES`] (or not built in yet).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown subject `{name}`{why}; accepted subjects: {}", NAMES.join(", "))]
pub struct UnknownSubject {
    pub name: String,
    why: String,
}

static MIMALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
static JEMALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
static SNMALLOC: snmalloc_rs::SnMalloc = snmalloc_rs::SnMalloc;

/// The subject called `name`, with our allocators built for `geometry`.
pub fn lookup(name: &str, geometry: Geometry) -> Result<Subject, UnknownSubject> {
    let reference = |name, about, alloc| Subject {
        name,
        about,
        family: Family::Reference,
        alloc,
        stats: None,
        gil: None,
    };
    Ok(match name {
        "system" => reference("system", "the platform allocator (glibc malloc)", &System),
        "mimalloc" => reference(
            "mimalloc",
            "mimalloc, through the `mimalloc` crate",
            &MIMALLOC,
        ),
        "jemalloc" => reference(
            "jemalloc",
            "jemalloc, through `tikv-jemallocator`",
            &JEMALLOC,
        ),
        "snmalloc" => reference("snmalloc", "snmalloc, through `snmalloc-rs`", &SNMALLOC),
        "null" => Subject {
            name: "null",
            about: "bump pointer that never reuses: the harness's own cost",
            family: Family::Null,
            alloc: &NULL,
            stats: None,
            gil: None,
        },
        "gil" | "locked" | "tcache" | "sharded" => pool_subject(name, geometry)?,
        _ => {
            return Err(UnknownSubject {
                name: name.into(),
                why: String::new(),
            })
        }
    })
}

/// Our four pool allocators, built with `geometry` and leaked to
/// `'static` (one per cell process).
fn pool_subject(name: &str, geometry: Geometry) -> Result<Subject, UnknownSubject> {
    fn ours<A: GlobalAlloc + PoolStats + Sync + 'static>(a: A) -> &'static A {
        Box::leak(Box::new(a))
    }
    let pool = |name, about, alloc, stats| Subject {
        name,
        about,
        family: Family::Ours,
        alloc,
        stats: Some(stats),
        gil: None,
    };
    Ok(match name {
        "gil" => {
            let a = ours(Gil::new(geometry));
            Subject {
                gil: Some(a),
                ..pool(
                    "gil",
                    "pymalloc behind a GIL held for spans and switched every interval (CPython)",
                    a,
                    a,
                )
            }
        }
        "locked" => {
            let a = ours(Locked::new(geometry));
            pool(
                "locked",
                "pymalloc with one lock taken around every call",
                a,
                a,
            )
        }
        "tcache" => {
            let a = ours(Tcache::new(geometry));
            pool(
                "tcache",
                "per-thread block caches in front of `locked`, moved in batches",
                a,
                a,
            )
        }
        "sharded" => {
            let a = ours(Sharded::new(geometry));
            pool(
                "sharded",
                "lock-free per-thread heaps with remote-free stacks (mimalloc, PEP 703)",
                a,
                a,
            )
        }
        _ => {
            return Err(UnknownSubject {
                name: name.into(),
                why: String::new(),
            })
        }
    })
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

/// A reference subject's own statistics, by its own names (see the module
/// docs); empty for our subjects and for unknown names.
pub fn reference_stats(name: &str) -> BTreeMap<String, u64> {
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
        "null" => {
            put("bumped", NULL.bumped());
            put("capacity", NULL.capacity());
        }
        _ => {}
    }
    out
}

/// Bytes the subject holds from the OS by its own account, for the
/// fragmentation ratio, where it has one: our subjects' `Stats::held`,
/// jemalloc's `resident`, the null subject's bumped bytes. `None` means
/// the driver falls back to RSS above the cell's baseline.
pub fn held_bytes(subject: &Subject) -> Option<u64> {
    if let Some(s) = subject.stats {
        return Some(s.stats().held() as u64);
    }
    match subject.name {
        "jemalloc" => reference_stats("jemalloc").get("resident").copied(),
        "null" => Some(NULL.bumped() as u64),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subject_allocates_and_reports() {
        for &name in NAMES {
            let s = lookup(name, Geometry::CLASSIC).expect(name);
            assert_eq!(s.name, name);
            let layout = std::alloc::Layout::from_size_align(100, 16).expect("layout");
            // SAFETY: non-zero size; the block is freed with the same layout.
            unsafe {
                let p = s.alloc.alloc(layout);
                assert!(!p.is_null() && p as usize % 16 == 0, "{name}");
                p.write_bytes(7, 100);
                s.alloc.dealloc(p, layout);
            }
            match s.family {
                Family::Ours => {
                    let stats = s.stats.expect("our subjects report stats").stats();
                    assert_eq!(stats.requested_live, 0, "{name}");
                    assert_eq!(s.gil.is_some(), name == "gil");
                }
                _ => assert!(!reference_stats(name).is_empty(), "{name} reports nothing"),
            }
        }
        assert!(reference_stats("jemalloc").contains_key("resident"));
    }

    #[test]
    fn unknown_names_list_the_accepted_ones() {
        let e = lookup("tcmalloc", Geometry::CLASSIC).expect_err("unknown");
        let msg = e.to_string();
        assert!(
            msg.contains("`tcmalloc`") && msg.contains("jemalloc, snmalloc, null"),
            "{msg}"
        );
    }
}
