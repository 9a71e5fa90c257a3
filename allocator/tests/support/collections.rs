//! The std-collections workload of the `#[global_allocator]` test binaries:
//! four threads build and check Vec, String, Box, HashMap and BTreeMap
//! values, and hand Vecs to the next thread, which checks and drops them
//! (cross-thread frees through the global allocator).

use std::collections::{BTreeMap, HashMap};
use std::sync::mpsc::channel;

/// Work done in one span: `gil` runs it holding the GIL; channel
/// operations and thread joins stay outside spans, where a blocked thread
/// holds no GIL.
pub type Span<'a> = &'a (dyn Fn(&mut dyn FnMut()) + Sync);

/// One thread's checked work on std collections, deterministic in `t`.
fn collections(t: u64, round: u64) -> Vec<u8> {
    let n = 2000 + 100 * t;
    let v: Vec<u64> = (0..n).map(|i| i * i + t).collect();
    assert_eq!(
        v.iter().sum::<u64>(),
        (0..n).map(|i| i * i + t).sum::<u64>()
    );

    let mut m: HashMap<u64, String> = HashMap::new();
    for k in 0..n {
        m.insert(k, format!("{k}-{t}-{round}"));
    }
    for k in (0..n).step_by(2) {
        m.remove(&k);
    }
    assert_eq!(m.len() as u64, n / 2);
    assert_eq!(m[&(n - 1)], format!("{}-{t}-{round}", n - 1));

    let mut s = String::new();
    for k in 0..500 {
        s.push_str(&k.to_string());
        s.push(',');
    }
    assert!(s.starts_with("0,1,2,") && s.ends_with("498,499,"));

    let boxes: Vec<Box<[u64; 9]>> = (0..300).map(|k| Box::new([k + t; 9])).collect();
    assert!(boxes.iter().enumerate().all(|(k, b)| b[8] == k as u64 + t));

    let mut b: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    for k in 0..1000u32 {
        b.insert(
            k.wrapping_mul(2654435761) % 5000,
            vec![k as u8; (k % 700) as usize],
        );
    }
    for (&k, val) in b.range(1000..2000) {
        assert!((1000..2000).contains(&k));
        assert!(val.iter().all(|&x| x == val.first().copied().unwrap_or(0)));
    }
    let mut out = vec![t as u8; 64 + (round as usize % 1000)];
    out.extend_from_slice(s.as_bytes());
    out
}

/// Runs the workload on four threads for a few rounds, each thread sending
/// what it built to the next one, which checks and frees it.
pub fn run(span: Span<'_>) {
    const THREADS: u64 = 4;
    const ROUNDS: u64 = 25;
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..THREADS).map(|_| channel::<(u64, Vec<u8>)>()).unzip();
    std::thread::scope(|s| {
        for (t, rx) in rxs.into_iter().enumerate() {
            let t = t as u64;
            let tx = txs[((t + 1) % THREADS) as usize].clone();
            s.spawn(move || {
                for round in 0..ROUNDS {
                    let mut built = Vec::new();
                    span(&mut || built = collections(t, round));
                    tx.send((t, built)).unwrap();
                    let (from, got) = rx.recv().unwrap();
                    assert_eq!(from, (t + THREADS - 1) % THREADS);
                    let mut got = Some(got);
                    // Check and free the other thread's block in a span.
                    span(&mut || {
                        let got = got.take().unwrap();
                        assert_eq!(got.len(), 64 + round as usize % 1000 + 1890);
                        assert!(got[..64].iter().all(|&x| x == from as u8));
                    });
                }
            });
        }
        drop(txs);
    });
}

/// Eight threads build maps, strings and boxed values and return them; the
/// caller's thread checks and drops them after every builder has exited,
/// so the frees land in the structures of threads that are gone. Returns
/// how many values were checked.
pub fn outliving_threads() -> usize {
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
    let mut total = 0;
    for h in handles {
        let (m, v) = h.join().unwrap();
        total += m.len() + v.len();
        assert!(m.values().all(|s| s.contains('-')));
    }
    assert!(total > 0);
    total
}
