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

/// `threads` threads each do `ops` operations over a window of live blocks
/// with a quarter of the frees handed to the next thread, then free
/// everything and stay alive, idle. With all of them idle, `idle` runs on
/// the calling thread; then each thread makes one more call (an
/// allocation and its free); then `inspect` runs, and its result is
/// returned once the threads have exited.
pub fn stress_then_idle<R>(
    a: &'static (dyn GlobalAlloc + Sync),
    threads: usize,
    ops: u64,
    idle: &(dyn Fn() + Sync),
    inspect: &(dyn Fn() -> R + Sync),
) -> R {
    use std::sync::Barrier;
    let worked = Barrier::new(threads + 1);
    let called = Barrier::new(threads + 1);
    let inspected = Barrier::new(threads + 1);
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..threads).map(|_| mpsc::channel::<Tagged>()).unzip();
    std::thread::scope(|s| {
        for (t, rx) in rxs.into_iter().enumerate() {
            let tx = txs[(t + 1) % threads].clone();
            let (worked, called, inspected) = (&worked, &called, &inspected);
            s.spawn(move || {
                let mut rng = SmallRng::seed_from_u64(0x1D1E + t as u64);
                let mut live: Vec<Tagged> = Vec::with_capacity(256);
                for seq in 0..ops {
                    while let Ok(b) = rx.try_recv() {
                        free_checked(a, b);
                    }
                    if live.len() < 200 && rng.random_bool(0.55) || live.is_empty() {
                        let l = Layout::from_size_align(rng.random_range(1..=600), 8).unwrap();
                        live.push(alloc_tagged(a, l, super::tag(t, seq)));
                    } else {
                        let b = live.swap_remove(rng.random_range(0..live.len()));
                        if rng.random_range(0..4) == 0 {
                            tx.send(b).expect("receiver alive");
                        } else {
                            free_checked(a, b);
                        }
                    }
                }
                for b in live {
                    free_checked(a, b);
                }
                drop(tx);
                // Every sender is gone once all threads got here.
                worked.wait();
                for b in rx.try_iter() {
                    free_checked(a, b);
                }
                worked.wait();
                called.wait();
                let b = alloc_tagged(a, Layout::from_size_align(48, 8).unwrap(), 1);
                free_checked(a, b);
                inspected.wait();
                inspected.wait();
            });
        }
        drop(txs);
        worked.wait();
        worked.wait();
        idle();
        called.wait();
        inspected.wait();
        let r = inspect();
        inspected.wait();
        r
    })
}
