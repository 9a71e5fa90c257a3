use allocator::{Geometry, Locked, PoolStats};
use std::alloc::{GlobalAlloc, Layout};

#[test]
fn smoke() {
    for g in [Geometry::CLASSIC, Geometry::MODERN, Geometry::TINY] {
        let a = Locked::new(g);
        let mut v = Vec::new();
        for i in 0..20000usize {
            let l = Layout::from_size_align(1 + (i * 7919) % 600, 8).unwrap();
            let p = unsafe { a.alloc(l) };
            assert!(!p.is_null());
            unsafe { p.write_bytes(0xAB, l.size()) };
            v.push((p, l));
        }
        let s = a.stats();
        s.bytes.check().unwrap();
        println!("{g:?}\n{s}");
        let all: Vec<_> = v.drain(..).collect();
        let mut rest = Vec::new();
        for (i, (p, l)) in all.into_iter().enumerate() {
            if i % 3 == 0 {
                unsafe { a.dealloc(p, l) }
            } else {
                rest.push((p, l));
            }
        }
        a.stats().bytes.check().unwrap();
        for (p, l) in rest {
            unsafe { a.dealloc(p, l) }
        }
        let s = a.stats();
        s.bytes.check().unwrap();
        assert!(s.arenas_current <= 1, "{s}");
        assert_eq!(s.requested_live, 0);
    }
}
