//! `Gil` as the program's `#[global_allocator]`: std collections from four
//! threads, each doing its work in GIL spans (channel operations stay
//! outside spans, where they take the GIL per allocation), with
//! cross-thread frees, then the accounting identity.
//! Also: 50 forks while four threads allocate; no child may hang.

mod support;

use std::time::Duration;

use allocator::{Geometry, Gil, PoolStats};

#[global_allocator]
static A: Gil = Gil::new(Geometry::CLASSIC);

#[test]
#[cfg_attr(miri, ignore = "multi-threaded or long: run natively")]
fn std_collections_on_four_threads() {
    A.set_switch_interval(Duration::from_micros(500));
    support::collections::run(&|f| {
        let _span = A.hold();
        f()
    });
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
    let gs = A.gil_stats();
    assert!(gs.acquisitions > 0, "{gs:?}");
}

#[test]
#[cfg_attr(miri, ignore = "forks: run natively")]
fn fork_while_threads_allocate() {
    support::fork::fork_while_threads_allocate(&|f| {
        let _span = A.hold();
        f()
    });
}
