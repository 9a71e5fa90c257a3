//! TEMPORARY STAND-IN on the `cli` branch, replaced at merge by the driver
//! helper's `subject.rs`. Only `system`, `mimalloc`, `jemalloc`,
//! `snmalloc` and a system-backed `null` resolve here; the brief's
//! `allocator::{PoolStats, Gil}` are not on main yet, so placeholders
//! stand in for those field types.

use std::alloc::{GlobalAlloc, System};
use std::collections::BTreeMap;

use allocator::{Geometry, Stats};

/// Placeholder for `allocator::PoolStats` until it lands.
pub trait PoolStats {
    fn stats(&self) -> Stats;
}

/// Placeholder for `allocator::Gil` until it lands.
pub struct Gil;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Family {
    Ours,
    Reference,
    Null,
}

pub struct Subject {
    pub name: &'static str,
    pub about: &'static str,
    pub family: Family,
    pub alloc: &'static (dyn GlobalAlloc + Sync),
    pub stats: Option<&'static (dyn PoolStats + Sync)>,
    pub gil: Option<&'static Gil>,
}

pub const NAMES: &[&str] = &[
    "gil", "locked", "tcache", "sharded", "system", "mimalloc", "jemalloc", "snmalloc", "null",
];

#[derive(Debug, thiserror::Error)]
#[error("unknown subject `{0}` (accepted: {list})", list = NAMES.join(", "))]
pub struct UnknownSubject(pub String);

static SYSTEM: System = System;
static MIMALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
static JEMALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
static SNMALLOC: snmalloc_rs::SnMalloc = snmalloc_rs::SnMalloc;

pub fn lookup(name: &str, _geometry: Geometry) -> Result<Subject, UnknownSubject> {
    let (alloc, about, family): (&'static (dyn GlobalAlloc + Sync), _, _) = match name {
        "system" => (&SYSTEM, "the platform malloc (glibc)", Family::Reference),
        "mimalloc" => (&MIMALLOC, "mimalloc through its crate", Family::Reference),
        "jemalloc" => (
            &JEMALLOC,
            "jemalloc through tikv-jemallocator",
            Family::Reference,
        ),
        "snmalloc" => (&SNMALLOC, "snmalloc through snmalloc-rs", Family::Reference),
        "null" => (
            &SYSTEM,
            "stand-in null subject (system-backed)",
            Family::Null,
        ),
        _ => return Err(UnknownSubject(name.to_string())),
    };
    let name = NAMES.iter().find(|n| **n == name).copied().unwrap_or("?");
    Ok(Subject {
        name,
        about,
        family,
        alloc,
        stats: None,
        gil: None,
    })
}

pub fn reference_stats(_name: &str) -> BTreeMap<String, u64> {
    BTreeMap::new()
}
