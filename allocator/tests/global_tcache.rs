//! `tcache` as the program's `#[global_allocator]`: std collections from
//! many threads, dropped after the threads that built them exited.
//! Also: 50 forks while four threads allocate; no child may hang.

mod support;

use allocator::{Geometry, PoolStats, Tcache};

#[global_allocator]
static A: Tcache = Tcache::new(Geometry::CLASSIC);

#[test]
fn std_collections_from_many_threads() {
    support::collections::outliving_threads();
    let s = A.stats();
    s.bytes.check().unwrap();
    assert!(s.blocks_in_use() >= s.extra.cached_blocks);
}

#[test]
#[cfg_attr(miri, ignore = "forks: run natively")]
fn fork_while_threads_allocate() {
    support::fork::fork_while_threads_allocate(&|f| f());
}
