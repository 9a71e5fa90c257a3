//! `string-sort`: parallel sorts of owned strings and byte vectors.
//!
//! The input is generated from a fixed seed before the measured part: the
//! bytes of `size` identifier-like strings (one of 64 shared prefixes and a
//! random tail, 2 to 40 bytes) and of `size` random byte strings (1 to 48
//! bytes), kept in two flat buffers with their offsets.
//!
//! The program materialises them in parallel as a `Vec<String>` and a
//! `Vec<Vec<u8>>` (one allocation per string, made by whichever worker
//! runs the task), sorts both with rayon's `par_sort` (a parallel merge
//! sort with its own buffer), and after the check hands both vectors to a
//! new thread that frees them, so every block is freed by a thread that did
//! not allocate it.
//!
//! Check: both results are sorted, and hold the same multiset as the input
//! (their lengths, and the sum of a 64-bit hash of every element, equal
//! the input's). Measured: building and sorting, then freeing on the other
//! thread. Unit: strings (`2 × size`, both kinds).

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use rayon::ThreadPool;

use super::{hash, AppInfo, Done, Measure};

pub(super) const INFO: AppInfo = AppInfo {
    name: "string-sort",
    about: "par_sort of a large Vec<String> and of a Vec<Vec<u8>>, \
            then freed on another thread",
    size_means: "strings of each kind",
    unit: "strings",
    default_size: 400_000,
    min_size: 1,
    max_size: 1 << 28,
};

const SEED: u64 = 0x7374_7269_6e67_736f;
const PREFIXES: usize = 64;

/// The generated input: flat buffers and `(offset, length)` of each string.
struct Input {
    text: String,
    strings: Vec<(usize, usize)>,
    bytes: Vec<u8>,
    blobs: Vec<(usize, usize)>,
}

fn generate(n: usize) -> Input {
    let mut rng = SmallRng::seed_from_u64(SEED);
    let letter = |rng: &mut SmallRng| char::from(b'a' + rng.random_range(0..16u8));
    let prefixes: Vec<String> = (0..PREFIXES)
        .map(|_| {
            let len = rng.random_range(0..=8);
            (0..len).map(|_| letter(&mut rng)).collect()
        })
        .collect();
    let mut text = String::with_capacity(n * 20);
    let mut strings = Vec::with_capacity(n);
    for _ in 0..n {
        let start = text.len();
        text.push_str(&prefixes[rng.random_range(0..PREFIXES)]);
        for _ in 0..rng.random_range(2..=32) {
            text.push(letter(&mut rng));
        }
        strings.push((start, text.len() - start));
    }
    let mut bytes = Vec::with_capacity(n * 25);
    let mut blobs = Vec::with_capacity(n);
    for _ in 0..n {
        let start = bytes.len();
        for _ in 0..rng.random_range(1..=48) {
            bytes.push(rng.random::<u8>());
        }
        blobs.push((start, bytes.len() - start));
    }
    Input {
        text,
        strings,
        bytes,
        blobs,
    }
}

/// Length and order-independent hash of a multiset of byte strings.
fn fingerprint<'a>(items: impl Iterator<Item = &'a [u8]>) -> (usize, u64) {
    items.fold((0, 0), |(n, h), s| (n + 1, h.wrapping_add(hash(s))))
}

/// The first index `i` where `items[i] > items[i + 1]`, if any.
fn unsorted_at<T: Ord>(items: &[T]) -> Option<usize> {
    items.windows(2).position(|w| w[0] > w[1])
}

pub(super) fn run(pool: &ThreadPool, size: u64, m: &mut Measure) -> Result<Done, String> {
    let input = m.prepare(|| generate(size as usize));
    let (strings, blobs) = m.time(|| {
        pool.install(|| {
            let mut strings: Vec<String> = input
                .strings
                .par_iter()
                .map(|&(at, len)| input.text[at..at + len].to_owned())
                .collect();
            let mut blobs: Vec<Vec<u8>> = input
                .blobs
                .par_iter()
                .map(|&(at, len)| input.bytes[at..at + len].to_vec())
                .collect();
            strings.par_sort();
            blobs.par_sort();
            (strings, blobs)
        })
    });
    m.peak();
    let done = m.verify(|| {
        if let Some(i) = unsorted_at(&strings) {
            return Err(format!(
                "strings not sorted at {i}: `{}` > `{}`",
                strings[i],
                strings[i + 1]
            ));
        }
        if let Some(i) = unsorted_at(&blobs) {
            return Err(format!("byte strings not sorted at {i}"));
        }
        let want_s = fingerprint(input.strings.iter().map(|&(a, l)| &input.text.as_bytes()[a..a + l]));
        let got_s = fingerprint(strings.iter().map(|s| s.as_bytes()));
        if got_s != want_s {
            return Err(format!(
                "sorted strings are not the generated ones: (count, hash sum) {got_s:?}, expected {want_s:?}"
            ));
        }
        let want_b = fingerprint(input.blobs.iter().map(|&(a, l)| &input.bytes[a..a + l]));
        let got_b = fingerprint(blobs.iter().map(|b| b.as_slice()));
        if got_b != want_b {
            return Err(format!(
                "sorted byte strings are not the generated ones: (count, hash sum) {got_b:?}, expected {want_b:?}"
            ));
        }
        Ok(Done {
            units: 2 * size,
            checksum: got_s.1 ^ got_b.1.rotate_left(32),
        })
    })?;
    m.time(|| {
        std::thread::spawn(move || drop((strings, blobs)))
            .join()
            .map_err(|_| "the thread freeing the strings panicked".to_string())
    })?;
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_is_deterministic_and_shaped() {
        let (a, b) = (generate(1000), generate(1000));
        assert_eq!(a.text, b.text);
        assert_eq!(a.bytes, b.bytes);
        assert!(a.strings.iter().all(|&(_, l)| (2..=40).contains(&l)));
        assert!(a.blobs.iter().all(|&(_, l)| (1..=48).contains(&l)));
        assert_eq!(unsorted_at(&[1, 2, 2, 1]), Some(2));
        assert_eq!(unsorted_at(&[1, 2, 2]), None);
    }
}
