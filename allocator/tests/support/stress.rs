//! Tagged blocks through a `&dyn GlobalAlloc`, and a multi-threaded
//! stress driver with cross-thread frees (the per-thread allocators' tests).

use std::alloc::{GlobalAlloc, Layout};
use std::sync::mpsc;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// A live block with the tag written into it.
pub struct Tagged {
    pub ptr: usize,
    pub layout: Layout,
    pub tag: u64,
}

/// Allocates `layout`, checks alignment, fills the block with `tag`.
pub fn alloc_tagged(a: &dyn GlobalAlloc, layout: Layout, tag: u64) -> Tagged {
    // SAFETY: layouts in these tests have non-zero size.
    let p = unsafe { a.alloc(layout) };
    assert!(!p.is_null(), "allocation of {layout:?} failed");
    assert_eq!(
        p as usize % layout.align(),
        0,
        "misaligned block for {layout:?}"
    );
    fill(p, layout.size(), tag);
    Tagged {
        ptr: p as usize,
        layout,
        tag,
    }
}

fn fill(p: *mut u8, size: usize, tag: u64) {
    let bytes = tag.to_le_bytes();
    for i in 0..size {
        // SAFETY: `p` is a live block of `size` bytes.
        unsafe { p.add(i).write(bytes[i % 8] ^ (i as u8)) };
    }
}

/// Checks the tag, then frees the block.
pub fn free_checked(a: &dyn GlobalAlloc, t: Tagged) {
    let p = t.ptr as *mut u8;
    let bytes = t.tag.to_le_bytes();
    for i in 0..t.layout.size() {
        // SAFETY: the block is live until the dealloc below.
        let got = unsafe { p.add(i).read() };
        assert_eq!(
            got,
            bytes[i % 8] ^ (i as u8),
            "block {p:p} ({:?}) corrupted at byte {i}",
            t.layout
        );
    }
    // SAFETY: the block came from `a` with this layout.
    unsafe { a.dealloc(p, t.layout) };
}

/// `threads` threads doing `ops` operations each over a window of live
/// blocks; `remote_pct` percent of frees are handed to the next thread.
pub fn stress(
    a: &'static (dyn GlobalAlloc + Sync),
    threads: usize,
    ops: u64,
    remote_pct: u32,
    max_size: usize,
) {
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..threads).map(|_| mpsc::channel::<Tagged>()).unzip();
    let mut handles = Vec::new();
    for (t, rx) in rxs.into_iter().enumerate() {
        let tx = txs[(t + 1) % threads].clone();
        handles.push(std::thread::spawn(move || {
            let mut rng = SmallRng::seed_from_u64(0xC0FFEE + t as u64);
            let mut live: Vec<Tagged> = Vec::with_capacity(256);
            let mut seq = 0u64;
            let mut done = 0u64;
            while done < ops {
                while let Ok(b) = rx.try_recv() {
                    free_checked(a, b);
                    done += 1;
                }
                if live.len() < 200 && rng.random_bool(0.55) || live.is_empty() {
                    let size = rng.random_range(1..=max_size);
                    let align = if rng.random_ratio(1, 50) { 64 } else { 8 };
                    let l = Layout::from_size_align(size, align).unwrap();
                    live.push(alloc_tagged(a, l, super::tag(t, seq)));
                    seq += 1;
                } else {
                    let i = rng.random_range(0..live.len());
                    let b = live.swap_remove(i);
                    if rng.random_range(0..100) < remote_pct {
                        tx.send(b).expect("receiver alive");
                    } else {
                        free_checked(a, b);
                    }
                }
                done += 1;
            }
            drop(tx);
            for b in live {
                free_checked(a, b);
            }
            rx
        }));
    }
    drop(txs);
    let rxs: Vec<_> = handles
        .into_iter()
        .map(|h| h.join().expect("stress thread"))
        .collect();
    for rx in rxs {
        for b in rx.try_iter() {
            free_checked(a, b);
        }
    }
}
