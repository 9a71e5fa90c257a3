//! Side-by-side figures for the allocator issues, in one process:
//! single-thread alloc+free pairs, the same from N threads, and a
//! two-thread producer/consumer where every block is freed by the other
//! thread. Each figure is the median of `--repeat` runs; subjects are
//! interleaved within each repeat so machine noise hits them alike.
//!
//! `cargo run --release -p benches --example side_by_side -- [--repeat 5] [--ops 2000000] [--threads 1,2]`

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::{mpsc, Barrier};
use std::time::{Duration, Instant};

use allocator::{Geometry, Gil, Locked, Sharded, Tcache};

static GIL: Gil = Gil::new(Geometry::CLASSIC);
static LOCKED: Locked = Locked::new(Geometry::CLASSIC);
static TCACHE: Tcache = Tcache::new(Geometry::CLASSIC);
static SHARDED: Sharded = Sharded::new(Geometry::CLASSIC);
static MIMALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;
static JEMALLOC: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
static SNMALLOC: snmalloc_rs::SnMalloc = snmalloc_rs::SnMalloc;

struct Subject {
    name: &'static str,
    alloc: &'static (dyn GlobalAlloc + Sync),
    gil: Option<&'static Gil>,
}

fn subjects() -> Vec<Subject> {
    let s = |name, alloc: &'static (dyn GlobalAlloc + Sync)| Subject {
        name,
        alloc,
        gil: None,
    };
    vec![
        Subject {
            name: "gil",
            alloc: &GIL,
            gil: Some(&GIL),
        },
        s("locked", &LOCKED),
        s("tcache", &TCACHE),
        s("sharded", &SHARDED),
        s("system", &System),
        s("mimalloc", &MIMALLOC),
        s("jemalloc", &JEMALLOC),
        s("snmalloc", &SNMALLOC),
    ]
}

const LAYOUT: Layout = match Layout::from_size_align(48, 8) {
    Ok(l) => l,
    Err(_) => panic!("valid layout"),
};

/// `threads` threads each doing `ops` alloc+free pairs; ns per pair
/// (wall time × threads / total pairs, so perfect scaling keeps it flat).
fn pairs(s: &Subject, threads: usize, ops: u64) -> f64 {
    let a = s.alloc;
    let gil = s.gil;
    let barrier = Barrier::new(threads + 1);
    let elapsed = std::thread::scope(|sc| {
        for _ in 0..threads {
            sc.spawn(|| {
                barrier.wait();
                let _span = gil.map(|g| g.hold());
                for _ in 0..ops {
                    // SAFETY: a valid non-zero layout; the block is freed once.
                    unsafe {
                        let p = black_box(a.alloc(LAYOUT));
                        p.write_volatile(1);
                        a.dealloc(p, LAYOUT);
                    }
                }
            });
        }
        barrier.wait();
        let t = Instant::now();
        // Scope end joins the workers.
        t
    });
    let wall = elapsed.elapsed();
    wall.as_nanos() as f64 * threads as f64 / (threads as u64 * ops) as f64
}

/// A producer allocating batches of blocks that a consumer frees: every
/// free is remote. ns per block (wall).
fn producer_consumer(s: &Subject, blocks: u64) -> f64 {
    const BATCH: usize = 256;
    let a = s.alloc;
    let gil = s.gil;
    let (tx, rx) = mpsc::sync_channel::<Vec<usize>>(8);
    let (back_tx, back_rx) = mpsc::sync_channel::<Vec<usize>>(8);
    let t = Instant::now();
    std::thread::scope(|sc| {
        sc.spawn(move || {
            let mut span = gil.map(|g| g.hold());
            let mut sent = 0;
            let mut spare: Vec<Vec<usize>> = (0..16).map(|_| Vec::with_capacity(BATCH)).collect();
            while sent < blocks {
                let mut v = spare.pop().unwrap_or_else(|| match &mut span {
                    Some(g) => g.allow_threads(|| back_rx.recv().unwrap()),
                    None => back_rx.recv().unwrap(),
                });
                for _ in 0..BATCH {
                    // SAFETY: valid layout; the consumer frees each block once.
                    let p = unsafe { a.alloc(LAYOUT) };
                    // SAFETY: a live 48-byte block.
                    unsafe { p.write_volatile(7) };
                    v.push(p as usize);
                }
                sent += BATCH as u64;
                match &mut span {
                    Some(g) => g.allow_threads(|| tx.send(v).unwrap()),
                    None => tx.send(v).unwrap(),
                }
            }
            drop(tx);
        });
        sc.spawn(move || {
            let mut span = gil.map(|g| g.hold());
            loop {
                let got = match &mut span {
                    Some(g) => g.allow_threads(|| rx.recv()),
                    None => rx.recv(),
                };
                let Ok(mut v) = got else { break };
                for p in v.drain(..) {
                    // SAFETY: a live block from the producer, freed once.
                    unsafe { a.dealloc(p as *mut u8, LAYOUT) };
                }
                let _ = back_tx.try_send(v);
            }
        });
    });
    t.elapsed().as_nanos() as f64 / blocks as f64
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let repeat: usize = arg("--repeat").map_or(5, |v| v.parse().expect("--repeat N"));
    let ops: u64 = arg("--ops").map_or(2_000_000, |v| v.parse().expect("--ops N"));
    let threads: Vec<usize> = arg("--threads")
        .unwrap_or_else(|| "1,2".into())
        .split(',')
        .map(|t| t.parse().expect("--threads 1,2,..."))
        .collect();
    let subjects = subjects();
    GIL.set_switch_interval(Duration::from_millis(5));
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "48-byte blocks, median of {repeat}, {cores} logical cores (threads > cores oversubscribe)"
    );
    let mut rows: Vec<(String, Vec<f64>)> = Vec::new();
    for &t in &threads {
        let mut runs = vec![Vec::new(); subjects.len()];
        for _ in 0..repeat {
            for (i, s) in subjects.iter().enumerate() {
                runs[i].push(pairs(s, t, ops / t as u64));
            }
        }
        rows.push((
            format!("pairs, {t} thread(s), ns/pair"),
            runs.into_iter().map(median).collect(),
        ));
    }
    let mut runs = vec![Vec::new(); subjects.len()];
    for _ in 0..repeat {
        for (i, s) in subjects.iter().enumerate() {
            runs[i].push(producer_consumer(s, ops / 2));
        }
    }
    rows.push((
        "producer/consumer, ns/block".into(),
        runs.into_iter().map(median).collect(),
    ));
    print!("{:<34}", "");
    for s in &subjects {
        print!("{:>10}", s.name);
    }
    println!();
    for (name, vals) in &rows {
        print!("{name:<34}");
        for v in vals {
            print!("{v:>10.1}");
        }
        println!();
    }
    println!("\nratios to the fastest reference (system/mimalloc/jemalloc/snmalloc) per row:");
    for (name, vals) in &rows {
        let best = vals[4..].iter().copied().fold(f64::INFINITY, f64::min);
        print!("{name:<34}");
        for v in vals {
            print!("{:>10.2}", v / best);
        }
        println!();
    }
}
