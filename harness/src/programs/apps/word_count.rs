//! `word-count`: count the words of a generated text with hash maps.
//!
//! The input is one text of `size` words drawn from a fixed vocabulary of
//! random lowercase words with a skewed (Zipf-like) frequency, separated by
//! spaces and newlines; it is generated from a fixed seed before the
//! measured part, and the generator counts what it emits.
//!
//! The program splits the text into 64 KiB chunks at whitespace; one rayon
//! task per chunk splits it into owned `String` words and counts them into
//! its own `HashMap<String, usize>` (a word already counted is dropped, a
//! new one becomes a key); the maps are merged pairwise as rayon reduces,
//! moving keys into the larger map, so strings allocated on one thread are
//! kept or freed on another. The merged map is then freed.
//!
//! Check: every counted word with its count equals the generator's counts,
//! and the totals agree. Measured: counting and merging, then (after the
//! check) freeing the merged map. Unit: words.

use std::collections::HashMap;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use rayon::ThreadPool;

use super::{hash, AppInfo, Done, Measure};

pub(super) const INFO: AppInfo = AppInfo {
    name: "word-count",
    about: "generated text split into owned words, counted in per-task HashMap<String, usize>s \
            and merged across threads",
    size_means: "words of text",
    unit: "words",
    default_size: 1_500_000,
    min_size: 1,
    max_size: 1 << 30,
};

const SEED: u64 = 0x776f_7264_636f_756e;
const VOCABULARY: usize = 30_000;
const CHUNK: usize = 64 << 10;

/// The generated input.
struct Input {
    vocabulary: Vec<String>,
    /// How many times the generator emitted each vocabulary entry.
    emitted: Vec<u64>,
    text: String,
}

fn generate(words: u64) -> Input {
    let mut rng = SmallRng::seed_from_u64(SEED);
    let vocabulary: Vec<String> = (0..VOCABULARY)
        .map(|_| {
            let len = rng.random_range(2..=12);
            (0..len)
                .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
                .collect()
        })
        .collect();
    let mut emitted = vec![0u64; VOCABULARY];
    let mut text = String::with_capacity(words as usize * 8);
    for i in 0..words {
        let u: f64 = rng.random();
        let idx = ((u * u * u) * VOCABULARY as f64) as usize;
        emitted[idx] += 1;
        text.push_str(&vocabulary[idx]);
        text.push(if i % 13 == 12 { '\n' } else { ' ' });
    }
    Input {
        vocabulary,
        emitted,
        text,
    }
}

/// Cuts `text` into pieces of about `CHUNK` bytes, each ending at a
/// whitespace character (so no word is split).
fn chunks(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let mut end = CHUNK.min(rest.len());
        while end < rest.len() && !rest.as_bytes()[end].is_ascii_whitespace() {
            end += 1;
        }
        let (head, tail) = rest.split_at(end);
        out.push(head);
        rest = tail;
    }
    out
}

fn count(chunk: &str) -> HashMap<String, usize> {
    let words: Vec<String> = chunk.split_ascii_whitespace().map(str::to_owned).collect();
    let mut counts = HashMap::new();
    for w in words {
        *counts.entry(w).or_insert(0) += 1;
    }
    counts
}

fn merge(a: HashMap<String, usize>, b: HashMap<String, usize>) -> HashMap<String, usize> {
    let (mut into, from) = if a.len() >= b.len() { (a, b) } else { (b, a) };
    for (w, c) in from {
        *into.entry(w).or_insert(0) += c;
    }
    into
}

pub(super) fn run(pool: &ThreadPool, size: u64, m: &mut Measure) -> Result<Done, String> {
    let input = m.prepare(|| generate(size));
    let pieces = m.prepare(|| chunks(&input.text));
    let counts = m.time(|| {
        pool.install(|| {
            pieces
                .par_iter()
                .map(|c| count(c))
                .reduce(HashMap::new, merge)
        })
    });
    m.peak();
    let done = m.verify(|| {
        let mut expected: HashMap<&str, u64> = HashMap::new();
        for (w, &n) in input.vocabulary.iter().zip(&input.emitted) {
            if n > 0 {
                *expected.entry(w.as_str()).or_insert(0) += n;
            }
        }
        let total: u64 = counts.values().map(|&c| c as u64).sum();
        if total != size {
            return Err(format!("counted {total} words, generated {size}"));
        }
        let mut checksum = 0u64;
        for (w, &c) in &counts {
            match expected.get(w.as_str()) {
                Some(&n) if n == c as u64 => {}
                Some(&n) => return Err(format!("word `{w}`: counted {c}, generated {n}")),
                None => return Err(format!("word `{w}` was counted but never generated")),
            }
            checksum = checksum.wrapping_add(hash(w.as_bytes()).wrapping_mul(c as u64));
        }
        if counts.len() != expected.len() {
            return Err(format!(
                "{} distinct words counted, {} generated",
                counts.len(),
                expected.len()
            ));
        }
        Ok(Done {
            units: size,
            checksum,
        })
    })?;
    m.time(|| drop(counts));
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_text_at_word_boundaries() {
        let input = generate(50_000);
        let pieces = chunks(&input.text);
        assert!(pieces.len() > 1);
        assert_eq!(pieces.concat(), input.text);
        for (p, next) in pieces.iter().zip(&pieces[1..]) {
            assert!(p.len() >= CHUNK);
            assert!(next.as_bytes()[0].is_ascii_whitespace(), "no word is cut");
        }
        let words: usize = pieces
            .iter()
            .map(|p| p.split_ascii_whitespace().count())
            .sum();
        assert_eq!(words, 50_000);
        assert_eq!(input.emitted.iter().sum::<u64>(), 50_000);
    }

    #[test]
    fn merging_adds_counts() {
        let m = merge(count("a b a"), count("b c"));
        assert_eq!(m.len(), 3);
        assert_eq!((m["a"], m["b"], m["c"]), (2, 2, 1));
    }
}
