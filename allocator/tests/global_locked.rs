//! `Locked` as the program's `#[global_allocator]`: std collections from
//! four threads, with cross-thread frees, then the accounting identity.
//! Also: 50 forks while four threads allocate; no child may hang.

mod support;

use allocator::{Geometry, Locked, PoolStats};

#[global_allocator]
static A: Locked = Locked::new(Geometry::CLASSIC);

#[test]
#[cfg_attr(miri, ignore = "multi-threaded or long: run natively")]
fn std_collections_on_four_threads() {
    support::collections::run(&|f| f());
    // A 1 MiB buffer is live: the stats must see it, as a raw request.
    let big = vec![7u8; 1 << 20];
    let s = A.stats();
    assert!(
        s.requested_live >= big.len() && s.raw_live_bytes >= big.len(),
        "{s}"
    );
    assert!(
        s.arenas_allocated_total >= 1 && s.blocks_in_use() > 0,
        "{s}"
    );
    s.bytes.check().unwrap();
    drop(big);
    A.stats().bytes.check().unwrap();
}

#[test]
#[cfg_attr(miri, ignore = "forks: run natively")]
fn fork_while_threads_allocate() {
    support::fork::fork_while_threads_allocate(&|f| f());
}
