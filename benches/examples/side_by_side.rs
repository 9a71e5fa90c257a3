//! Side-by-side figures for the allocator issues, in one process:
//! single-thread alloc+free pairs, the same from N threads, random-size
//! churn over 1000 live blocks, a two-thread producer/consumer where every
//! block is freed by the other thread, and the single-thread pair with no
//! GIL span (where `gil` takes the GIL in every call). Each figure is the
//! median of `--repeat` runs; subjects are interleaved within each repeat
//! so machine noise hits them alike.
//!
//! The subjects and loops are the criterion benches' (`benches` library):
//! every subject of the harness's table but `null` (a harness floor, not an
//! allocator to compare), in `poolbench list` order.
//!
//! `cargo run --release -p benches --example side_by_side -- [--repeat 5] [--ops 2000000] [--threads 1,2]`

use harness::subjects::{Family, Subject};

use benches::{block, producer_consumer, subjects, threaded_pairs, Churn, CHURN_SIZES};

/// Block size of every figure.
const SIZE: usize = 48;

/// `threads` threads each doing `ops` alloc+free pairs; ns per pair
/// (wall time × threads / total pairs, so perfect scaling keeps it flat).
fn pairs(s: &dyn Subject, threads: usize, ops: u64) -> f64 {
    let layout = block(SIZE).unwrap_or_else(|| unreachable!("size is non-zero"));
    threaded_pairs(s, threads, ops, layout).as_nanos() as f64 / ops as f64
}

/// `ops` replacements of the churn loop on the calling thread (holding a
/// GIL span for `gil`); ns per replacement (one free and one allocation).
fn churn(s: &dyn Subject, ops: u64) -> f64 {
    let _span = benches::span(s);
    let mut c = Churn::new(s.allocator());
    let start = std::time::Instant::now();
    c.run(ops);
    start.elapsed().as_nanos() as f64 / ops as f64
}

/// `ops` pairs on the calling thread with no GIL span: `gil` takes the GIL
/// per call. ns per pair.
fn pairs_per_call(s: &dyn Subject, ops: u64) -> f64 {
    let layout = block(SIZE).unwrap_or_else(|| unreachable!("size is non-zero"));
    let start = std::time::Instant::now();
    benches::pairs(s.allocator(), layout, ops);
    start.elapsed().as_nanos() as f64 / ops as f64
}

/// A producer allocating batches of blocks that a consumer frees: every
/// free is remote. ns per block (wall).
fn remote(s: &dyn Subject, blocks: u64) -> f64 {
    let layout = block(SIZE).unwrap_or_else(|| unreachable!("size is non-zero"));
    producer_consumer(s, blocks, layout).as_nanos() as f64 / blocks as f64
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

/// Parses `--name`'s value (or takes `default`), exiting with a message
/// naming the flag and what it accepts on a bad value.
fn flag<T: std::str::FromStr>(name: &str, accepts: &str, default: T) -> T {
    match arg(name) {
        None => default,
        Some(v) => v.parse().unwrap_or_else(|_| bad(name, &v, accepts)),
    }
}

fn bad(name: &str, value: &str, accepts: &str) -> ! {
    eprintln!("error: {name} `{value}`: expected {accepts}");
    std::process::exit(2)
}

fn main() {
    let repeat: usize = flag("--repeat", "a positive count", 5);
    let ops: u64 = flag("--ops", "a positive count", 2_000_000);
    let threads_arg = arg("--threads").unwrap_or_else(|| "1,2".into());
    let threads: Vec<usize> = threads_arg
        .split(',')
        .map(|t| match t.parse() {
            Ok(n) if n > 0 => n,
            _ => bad("--threads", &threads_arg, "thread counts like 1,2,4"),
        })
        .collect();
    if repeat == 0 {
        bad("--repeat", "0", "a positive count");
    }
    if ops < threads.iter().copied().max().unwrap_or(1) as u64 {
        bad("--ops", &ops.to_string(), "at least one op per thread");
    }
    let subjects: Vec<Box<dyn Subject>> = subjects()
        .into_iter()
        .filter(|s| s.info().family != Family::Floor)
        .collect();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "{SIZE}-byte blocks, median of {repeat}, {cores} logical cores (threads > cores oversubscribe)"
    );
    let mut rows: Vec<(String, Vec<f64>)> = Vec::new();
    for &t in &threads {
        let mut runs = vec![Vec::new(); subjects.len()];
        for _ in 0..repeat {
            for (i, s) in subjects.iter().enumerate() {
                runs[i].push(pairs(s.as_ref(), t, ops / t as u64));
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
            runs[i].push(churn(s.as_ref(), ops));
        }
    }
    rows.push((
        format!(
            "churn {}-{} B, ns/replacement",
            CHURN_SIZES.0, CHURN_SIZES.1
        ),
        runs.into_iter().map(median).collect(),
    ));
    let mut runs = vec![Vec::new(); subjects.len()];
    for _ in 0..repeat {
        for (i, s) in subjects.iter().enumerate() {
            runs[i].push(remote(s.as_ref(), ops / 2));
        }
    }
    rows.push((
        "producer/consumer, ns/block".into(),
        runs.into_iter().map(median).collect(),
    ));
    let mut runs = vec![Vec::new(); subjects.len()];
    for _ in 0..repeat {
        for (i, s) in subjects.iter().enumerate() {
            runs[i].push(pairs_per_call(s.as_ref(), ops / 4));
        }
    }
    rows.push((
        "pairs, no GIL span, ns/pair".into(),
        runs.into_iter().map(median).collect(),
    ));
    print!("{:<34}", "");
    for s in &subjects {
        print!("{:>10}", s.info().name);
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
        let best = subjects
            .iter()
            .zip(vals)
            .filter(|(s, _)| s.info().family == Family::Reference)
            .map(|(_, &v)| v)
            .fold(f64::INFINITY, f64::min);
        print!("{name:<34}");
        for v in vals {
            print!("{:>10.2}", v / best);
        }
        println!();
    }
}
