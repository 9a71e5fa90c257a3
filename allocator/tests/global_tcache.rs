//! `tcache` as the program's `#[global_allocator]`: std collections from
//! many threads, including threads that exit with live blocks.

use std::collections::{BTreeMap, HashMap};

use allocator::{Geometry, PoolStats, Tcache};

#[global_allocator]
static A: Tcache = Tcache::new(Geometry::CLASSIC);

#[test]
fn std_collections_from_many_threads() {
    let handles: Vec<_> = (0..8)
        .map(|t| {
            std::thread::spawn(move || {
                let mut m = HashMap::new();
                let mut b = BTreeMap::new();
                let mut v = Vec::new();
                for i in 0..20_000u32 {
                    m.insert(i, format!("{t}-{i}"));
                    b.insert(format!("{i:08}"), Box::new(i));
                    v.push(i.to_string());
                    if i % 3 == 0 {
                        m.remove(&(i / 2));
                    }
                }
                assert_eq!(b.len(), 20_000);
                (m, v)
            })
        })
        .collect();
    // The maps outlive their threads and are dropped here.
    let mut total = 0;
    for h in handles {
        let (m, v) = h.join().unwrap();
        total += m.len() + v.len();
        assert!(m.values().all(|s| s.contains('-')));
    }
    assert!(total > 0);
    let s = A.stats();
    s.bytes.check().unwrap();
    assert!(s.blocks_in_use() >= s.extra.cached_blocks);
}
