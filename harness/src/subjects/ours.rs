//! Our four pool allocators as subjects: the same pymalloc core under four
//! concurrency strategies (see the `allocator` crate).

use std::alloc::GlobalAlloc;
use std::time::Duration;

use allocator::{Geometry, Gil, Locked, PoolStats, Sharded, Tcache};

use super::{Info, Subject};

/// One of our allocators.
struct Ours<A> {
    info: &'static Info,
    alloc: A,
}

/// What differs between our allocators as subjects: only `gil` has a GIL.
trait Strategy: GlobalAlloc + PoolStats + Sync {
    fn as_gil(&self) -> Option<&Gil> {
        None
    }
}

impl Strategy for Locked {}
impl Strategy for Tcache {}
impl Strategy for Sharded {}
impl Strategy for Gil {
    fn as_gil(&self) -> Option<&Gil> {
        Some(self)
    }
}

impl<A: Strategy> Subject for Ours<A> {
    fn info(&self) -> &'static Info {
        self.info
    }
    fn allocator(&self) -> &(dyn GlobalAlloc + Sync) {
        &self.alloc
    }
    fn stats(&self) -> Option<allocator::Stats> {
        Some(self.alloc.stats())
    }
    fn gil(&self) -> Option<&Gil> {
        self.alloc.as_gil()
    }
    fn configure(&self, switch_interval: Duration) {
        if let Some(g) = self.alloc.as_gil() {
            g.set_switch_interval(switch_interval);
        }
    }
}

/// Builds the allocator `info` names, in geometry `g`.
pub(super) fn build(info: &'static Info, g: Geometry) -> Option<Box<dyn Subject>> {
    fn boxed<A: Strategy + 'static>(info: &'static Info, alloc: A) -> Option<Box<dyn Subject>> {
        Some(Box::new(Ours { info, alloc }))
    }
    match info.name {
        "gil" => boxed(info, Gil::new(g)),
        "locked" => boxed(info, Locked::new(g)),
        "tcache" => boxed(info, Tcache::new(g)),
        "sharded" => boxed(info, Sharded::new(g)),
        _ => None,
    }
}
