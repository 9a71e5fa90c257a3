//! Subjects: the allocators a cell can drive, behind one trait.
//!
//! A [`Subject`] gives the driver an allocator to call through
//! `&dyn GlobalAlloc` (passed through `black_box`, so the compiler can
//! neither devirtualise it nor pair a `malloc` with its `free`), and
//! answers for its capabilities: its own accounting ([`Subject::stats`]
//! for ours, counters by the references' own names), whether its blocks can
//! be verified, and how a worker thread holds it ([`Span`]: the GIL for
//! `gil`, nothing for the others). The driver knows no subject by name.
//!
//! [`INFOS`] describes every subject statically, so listing them builds
//! nothing; [`lookup`] builds one for a cell (a cell is its own process, so
//! a subject lives as long as its process).
//!
//! | family | subjects |
//! | --- | --- |
//! | ours | `gil`, `locked`, `tcache`, `sharded` (the `allocator` crate) |
//! | reference | `system`, `mimalloc`, `jemalloc`, `snmalloc` |
//! | library | `malloc`: the C allocator through libc, what `so:PATH` and `preload:NAME` drive under `LD_PRELOAD` ([`preload`]) |
//! | floor | `null`: the harness's own cost per operation |
//! | calibration | `spin`: `null` plus a known cost per call |
//! | test | `test-counting`, `test-double`, `test-realloc`: for the harness's own tests, never listed |
//!
//! [`global`] is the binary's switchable `#[global_allocator]`: an
//! application cell's child serves every allocation of its process from
//! the subject named in its environment ([`corrupt`] is a test subject for
//! it that damages blocks on purpose).

pub mod corrupt;
pub mod global;
pub mod malloc;
pub mod null;
pub mod ours;
pub mod preload;
pub mod reference;
pub mod spin;
pub mod testing;

use std::alloc::GlobalAlloc;
use std::collections::BTreeMap;

use allocator::{Geometry, Gil, GilGuard};
use serde::{Deserialize, Serialize};

/// Which family a subject belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Family {
    /// Our pymalloc-style allocators (they report `Stats`).
    Ours,
    /// Allocators people ship.
    Reference,
    /// The C allocator through libc: a shared library a cell's child runs
    /// under (`LD_PRELOAD`), or glibc.
    Library,
    /// The harness-cost floor (`null`).
    Floor,
    /// A known cost per call on top of the floor (`spin`).
    Calibration,
    /// Subjects that exist to test the harness itself.
    Test,
}

/// What `poolbench list` and the reports say about a subject.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Info {
    pub name: &'static str,
    pub about: &'static str,
    pub family: Family,
}

/// Every subject, in report order; `test-*` subjects are never listed.
pub const INFOS: &[Info] = &[
    Info {
        name: "gil",
        about: "pymalloc behind a GIL held for spans and switched every interval (CPython)",
        family: Family::Ours,
    },
    Info {
        name: "locked",
        about: "pymalloc with one lock taken around every call",
        family: Family::Ours,
    },
    Info {
        name: "tcache",
        about: "per-thread block caches in front of `locked`, moved in batches",
        family: Family::Ours,
    },
    Info {
        name: "sharded",
        about: "lock-free per-thread heaps; remote frees posted to the owner in batches (mimalloc, PEP 703)",
        family: Family::Ours,
    },
    Info {
        name: "system",
        about: "the platform allocator (glibc malloc)",
        family: Family::Reference,
    },
    Info {
        name: "mimalloc",
        about: "mimalloc, through the `mimalloc` crate",
        family: Family::Reference,
    },
    Info {
        name: "jemalloc",
        about: "jemalloc, through `tikv-jemallocator`",
        family: Family::Reference,
    },
    Info {
        name: "snmalloc",
        about: "snmalloc, through `snmalloc-rs`",
        family: Family::Reference,
    },
    Info {
        name: "malloc",
        about: "the C allocator through libc (glibc, or the library `so:PATH` / `preload:NAME` preloads)",
        family: Family::Library,
    },
    Info {
        name: "null",
        about: "the floor: per-thread LIFO lists over pre-touched memory, the harness's own cost",
        family: Family::Floor,
    },
    Info {
        name: "spin",
        about: "calibration: `null` plus a calibrated spin of known length per call (POOLBENCH_SPIN_NS, default 20)",
        family: Family::Calibration,
    },
    Info {
        name: "test-counting",
        about: "test: `null`, counting every call",
        family: Family::Test,
    },
    Info {
        name: "test-double",
        about: "test: `null`, but now and then hands out a live block a second time",
        family: Family::Test,
    },
    Info {
        name: "test-realloc",
        about: "test: `null`, but its realloc keeps only half of the old contents",
        family: Family::Test,
    },
];

/// The subjects `all` means: every listed one (not calibration or tests).
pub const NAMES: &[&str] = &[
    "gil", "locked", "tcache", "sharded", "system", "mimalloc", "jemalloc", "snmalloc", "null",
];

/// The static description of subject `name`.
pub fn info(name: &str) -> Option<&'static Info> {
    INFOS.iter().find(|i| i.name == name)
}

/// A subject name that does not exist.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown subject `{name}`; accepted subjects: {}, spin", NAMES.join(", "))]
pub struct UnknownSubject {
    pub name: String,
}

/// An allocator under test and what it can do.
pub trait Subject: Sync {
    /// Its static description.
    fn info(&self) -> &'static Info;
    /// The allocator the driver calls.
    fn allocator(&self) -> &(dyn GlobalAlloc + Sync);
    /// Our subjects' `_debugmallocstats` accounting.
    fn stats(&self) -> Option<allocator::Stats> {
        None
    }
    /// The subject's own counters by its own names (jemalloc's
    /// `stats.resident`, mimalloc's committed bytes, ...): cross-checks.
    fn own_counters(&self) -> BTreeMap<String, u64> {
        BTreeMap::new()
    }
    /// The GIL, for the subject that has one.
    fn gil(&self) -> Option<&Gil> {
        None
    }
    /// Whether its blocks keep their contents (a verify pass means
    /// something).
    fn verifiable(&self) -> bool {
        true
    }
    /// Settings a workload gives the subject before a cell runs.
    fn configure(&self, _switch_interval: std::time::Duration) {}
    /// Parameters worth recording with its results (the spin's length).
    fn params(&self) -> BTreeMap<String, f64> {
        BTreeMap::new()
    }
}

/// Builds subject `name`, with our allocators in `geometry`. A
/// `so:PATH` or `preload:NAME` subject is `malloc`: the cell's child was
/// started under that library.
pub fn lookup(name: &str, geometry: Geometry) -> Result<Box<dyn Subject>, UnknownSubject> {
    let unknown = || UnknownSubject {
        name: name.to_string(),
    };
    let name = if preload::is_library(name) {
        "malloc"
    } else {
        name
    };
    let info = info(name).ok_or_else(unknown)?;
    Ok(match info.family {
        Family::Ours => ours::build(info, geometry).ok_or_else(unknown)?,
        Family::Reference => reference::build(info).ok_or_else(unknown)?,
        Family::Library => malloc::build(info),
        Family::Floor => Box::new(Floor(info)),
        Family::Calibration => Box::new(spin::Spin::from_env(info)),
        Family::Test => testing::build(info).ok_or_else(unknown)?,
    })
}

/// The `null` subject.
struct Floor(&'static Info);

impl Subject for Floor {
    fn info(&self) -> &'static Info {
        self.0
    }
    fn allocator(&self) -> &(dyn GlobalAlloc + Sync) {
        &null::NULL
    }
    fn own_counters(&self) -> BTreeMap<String, u64> {
        BTreeMap::from([
            ("bumped".to_string(), null::NULL.bumped() as u64),
            ("capacity".to_string(), null::NULL.capacity() as u64),
        ])
    }
}

/// A worker thread's hold on its subject for a span of work: the GIL for
/// `gil` (CPython code runs holding it and releases it around blocking
/// calls), nothing for the others.
pub struct Span<'a>(Option<GilGuard<'a>>);

impl<'a> Span<'a> {
    /// Enters a span on the calling thread.
    pub fn enter(subject: &'a dyn Subject) -> Span<'a> {
        Span(subject.gil().map(|g| g.hold()))
    }

    /// No span at all (for threads that never enter one).
    pub fn none() -> Span<'static> {
        Span(None)
    }

    /// Runs a blocking call (a barrier, a wait for blocks) outside the
    /// span, as CPython's `Py_BEGIN_ALLOW_THREADS` does.
    pub fn unlocked<R>(&mut self, f: impl FnOnce() -> R) -> R {
        match &mut self.0 {
            Some(g) => g.allow_threads(f),
            None => f(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::alloc::Layout;

    #[test]
    fn every_subject_allocates_frees_and_reports() {
        for info in INFOS {
            let s = lookup(info.name, Geometry::CLASSIC).expect(info.name);
            assert_eq!(s.info().name, info.name);
            let layout = Layout::from_size_align(100, 16).expect("layout");
            let a = s.allocator();
            // SAFETY: non-zero size; the block is freed with the same layout.
            unsafe {
                let p = a.alloc(layout);
                assert!(!p.is_null() && p as usize % 16 == 0, "{}", info.name);
                p.write_bytes(7, 100);
                a.dealloc(p, layout);
            }
            match info.family {
                Family::Ours => {
                    let stats = s.stats().expect("our subjects report stats");
                    assert_eq!(stats.requested_live, 0, "{}", info.name);
                    assert_eq!(s.gil().is_some(), info.name == "gil");
                }
                Family::Reference | Family::Floor | Family::Library => {
                    assert!(
                        !s.own_counters().is_empty(),
                        "{} reports nothing",
                        info.name
                    )
                }
                Family::Calibration | Family::Test => {}
            }
        }
    }

    #[test]
    fn names_are_listed_subjects_and_unknown_ones_are_refused() {
        for n in NAMES {
            assert!(info(n).is_some_and(|i| i.family != Family::Test), "{n}");
        }
        let msg = lookup("tcmalloc", Geometry::CLASSIC)
            .err()
            .expect("unknown")
            .to_string();
        assert!(
            msg.contains("`tcmalloc`") && msg.contains("jemalloc, snmalloc, null"),
            "{msg}"
        );
    }

    #[test]
    fn a_span_holds_the_gil_and_releases_it_around_blocking_calls() {
        let s = lookup("gil", Geometry::CLASSIC).expect("gil");
        let gil = s.gil().expect("has a GIL");
        let mut span = Span::enter(s.as_ref());
        assert!(gil.held_by_current_thread());
        span.unlocked(|| assert!(!gil.held_by_current_thread()));
        assert!(gil.held_by_current_thread());
        drop(span);
        assert!(!gil.held_by_current_thread());
    }
}
