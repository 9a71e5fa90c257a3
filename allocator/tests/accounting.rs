//! The accounting of a long run through the public API: one million seeded
//! random operations on `Locked` (classic geometry), leaving blocks live,
//! then the `_debugmallocstats`-style table. The figures are printed (run
//! with `--nocapture` to see them); the assertions hold the table to what
//! the test knows is live: the byte identity, bytes requested live, raw
//! requests live, and blocks in use per class.

mod support;

use std::alloc::{GlobalAlloc, Layout};

use allocator::{Geometry, Locked, PoolStats};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use support::random_layout;

#[test]
#[cfg_attr(miri, ignore = "multi-threaded or long: run natively")]
fn locked_stats_after_a_million_random_ops() {
    const OPS: usize = 1_000_000;
    let g = Geometry::CLASSIC;
    let a = Locked::new(g);
    let mut rng = SmallRng::seed_from_u64(1_000_000);
    // (address, layout, class the block lives in)
    let mut live: Vec<(*mut u8, Layout, Option<usize>)> = Vec::new();
    let (mut allocs, mut frees, mut reallocs) = (0usize, 0usize, 0usize);
    for op in 0..OPS {
        // Drain and growth phases alternate; the last one grows (~15k blocks).
        let grow = (op / 100_000) % 2 == 1;
        let roll = rng.random_range(0..100);
        if roll < 5 && !live.is_empty() {
            let i = rng.random_range(0..live.len());
            let (p, l, class) = live[i];
            let new = rng.random_range(1..=1000);
            // SAFETY: live with `l`; `new` is non-zero and valid.
            let q = unsafe { a.realloc(p, l, new) };
            assert!(!q.is_null());
            let nl = Layout::from_size_align(new, l.align()).unwrap();
            // An in-place realloc keeps the block (and its class).
            let class = if q == p && class.is_some() {
                class
            } else {
                g.class_of(new, l.align())
            };
            live[i] = (q, nl, class);
            reallocs += 1;
        } else if live.is_empty() || rng.random_range(0..100) < if grow { 58 } else { 42 } {
            let l = random_layout(&mut rng, &g);
            // SAFETY: a valid layout.
            let p = unsafe { a.alloc(l) };
            assert!(!p.is_null() && p as usize % l.align() == 0);
            live.push((p, l, g.class_of(l.size(), l.align())));
            allocs += 1;
        } else {
            let (p, l, _) = live.swap_remove(rng.random_range(0..live.len()));
            // SAFETY: live with `l`.
            unsafe { a.dealloc(p, l) };
            frees += 1;
        }
    }
    let s = a.stats();
    println!(
        "locked, classic geometry, {OPS} random ops ({allocs} alloc, {frees} free, {reallocs} realloc), {} blocks live:\n{s}",
        live.len()
    );
    if let Some(f) = s.fragmentation() {
        println!("{:<34} = {:>15.3}", "held / requested live", f);
    }
    s.bytes.check().unwrap();
    assert_eq!(
        s.requested_live,
        live.iter().map(|(_, l, _)| l.size()).sum::<usize>()
    );
    assert_eq!(
        s.raw_live_allocs,
        live.iter().filter(|(_, _, c)| c.is_none()).count()
    );
    for (idx, c) in s.classes().iter().enumerate() {
        let n = live.iter().filter(|(_, _, cl)| *cl == Some(idx)).count();
        assert_eq!(c.blocks_in_use, n, "class {idx}");
    }
    assert!(!live.is_empty());
    for (p, l, _) in live {
        // SAFETY: live with `l`.
        unsafe { a.dealloc(p, l) };
    }
    let s = a.stats();
    s.bytes.check().unwrap();
    assert_eq!(
        (s.requested_live, s.blocks_in_use(), s.raw_live_allocs),
        (0, 0, 0)
    );
    assert!(s.arenas_current <= 1);
}
