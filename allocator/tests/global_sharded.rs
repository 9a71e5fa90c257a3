//! `sharded` as the program's `#[global_allocator]`: std collections from
//! many threads, dropped after the threads that built them exited.
//! Also: 50 forks while four threads allocate; no child may hang.

mod support;

use allocator::{Geometry, PoolStats, Sharded};

#[global_allocator]
static A: Sharded = Sharded::new(Geometry::MODERN);

#[test]
fn std_collections_from_many_threads() {
    support::collections::outliving_threads();
    let s = A.stats();
    s.bytes.check().unwrap();
    assert!(s.extra.abandoned_heaps >= 1, "{:?}", s.extra);
}

#[test]
#[cfg_attr(miri, ignore = "forks: run natively")]
fn fork_while_threads_allocate() {
    support::fork::fork_while_threads_allocate(&|f| f());
}
