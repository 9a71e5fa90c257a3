//! `json`: serde_json round trips of generated documents, in parallel.
//!
//! The input is `size` order documents (a customer with an address, 1 to 8
//! line items, tags, free-form attributes, optional note; strings, integers,
//! floats, booleans, nesting), generated from a fixed seed before the
//! measured part as typed Rust values.
//!
//! For each document, in parallel, the program serialises it to a JSON
//! string, parses the text into a `serde_json::Value` tree (maps, vectors,
//! strings: many small allocations), and converts that tree back into the
//! typed document, moving its strings; the parsed documents are collected,
//! and after the check freed on the calling thread (not a pool worker).
//!
//! Check: every parsed document equals its original (floats exactly:
//! serde_json's `float_roundtrip` is on); a text that no longer parses is a
//! failed check too. Measured: the round trips, then freeing the results.
//! Unit: documents.

use std::collections::BTreeMap;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use rayon::ThreadPool;
use serde::{Deserialize, Serialize};

use super::{hash, AppInfo, Done, Measure};

pub(super) const INFO: AppInfo = AppInfo {
    name: "json",
    about: "generated documents serialised and parsed back (via serde_json::Value) in parallel",
    size_means: "documents",
    unit: "documents",
    default_size: 40_000,
    min_size: 1,
    max_size: 1 << 26,
};

const SEED: u64 = 0x6a73_6f6e_6a73_6f6e;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Order {
    id: u64,
    created: String,
    customer: Customer,
    items: Vec<Item>,
    tags: Vec<String>,
    note: Option<String>,
    paid: bool,
    total: f64,
    attributes: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Customer {
    id: u32,
    name: String,
    email: String,
    address: Address,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Address {
    lines: Vec<String>,
    city: String,
    postcode: String,
    country: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Item {
    sku: String,
    name: String,
    quantity: u32,
    unit_price: f64,
    discounts: Vec<f64>,
}

fn word(rng: &mut SmallRng, min: usize, max: usize) -> String {
    let len = rng.random_range(min..=max);
    (0..len)
        .map(|_| char::from(b'a' + rng.random_range(0..26u8)))
        .collect()
}

/// Between `min` and `max` words separated by spaces.
fn words(rng: &mut SmallRng, min: usize, max: usize) -> String {
    (0..rng.random_range(min..=max))
        .map(|_| word(rng, 2, 9))
        .collect::<Vec<_>>()
        .join(" ")
}

fn order(rng: &mut SmallRng, id: u64) -> Order {
    let items: Vec<Item> = (0..rng.random_range(1..=8))
        .map(|_| Item {
            sku: format!("SKU-{:08}", rng.random_range(0..100_000_000u32)),
            name: words(rng, 1, 4),
            quantity: rng.random_range(1..=20),
            unit_price: f64::from(rng.random_range(1..100_000u32)) / 100.0,
            discounts: (0..rng.random_range(0..=2))
                .map(|_| rng.random::<f64>() * 0.3)
                .collect(),
        })
        .collect();
    let total = items
        .iter()
        .map(|i| f64::from(i.quantity) * i.unit_price)
        .sum();
    Order {
        id,
        created: format!(
            "2024-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            rng.random_range(1..=12),
            rng.random_range(1..=28),
            rng.random_range(0..24),
            rng.random_range(0..60),
            rng.random_range(0..60)
        ),
        customer: Customer {
            id: rng.random(),
            name: words(rng, 2, 2),
            email: format!("{}@{}.example", word(rng, 3, 10), word(rng, 3, 8)),
            address: Address {
                lines: (0..rng.random_range(1..=3))
                    .map(|_| words(rng, 2, 4))
                    .collect(),
                city: word(rng, 4, 12),
                postcode: format!("{:05}", rng.random_range(0..100_000)),
                country: word(rng, 2, 2).to_uppercase(),
            },
        },
        items,
        tags: (0..rng.random_range(0..=5))
            .map(|_| word(rng, 3, 8))
            .collect(),
        note: rng.random_bool(0.3).then(|| words(rng, 3, 12)),
        paid: rng.random_bool(0.8),
        total,
        attributes: (0..rng.random_range(0..=4))
            .map(|_| (word(rng, 3, 8), words(rng, 1, 3)))
            .collect(),
    }
}

fn generate(n: u64) -> Vec<Order> {
    let mut rng = SmallRng::seed_from_u64(SEED);
    (0..n).map(|id| order(&mut rng, id)).collect()
}

fn round_trip(doc: &Order) -> Result<Order, serde_json::Error> {
    let text = serde_json::to_string(doc)?;
    let tree: serde_json::Value = serde_json::from_str(&text)?;
    serde_json::from_value(tree)
}

/// The first top-level field where two documents differ, for the message.
fn differing_field(got: &Order, want: &Order) -> String {
    let (Ok(serde_json::Value::Object(g)), Ok(serde_json::Value::Object(w))) =
        (serde_json::to_value(got), serde_json::to_value(want))
    else {
        return "(not an object)".into();
    };
    w.iter()
        .find(|(k, v)| g.get(*k) != Some(v))
        .map_or_else(|| "(a float)".into(), |(k, _)| format!("`{k}`"))
}

pub(super) fn run(pool: &ThreadPool, size: u64, m: &mut Measure) -> Result<Done, String> {
    let docs = m.prepare(|| generate(size));
    let parsed = m.time(|| {
        pool.install(|| {
            docs.par_iter()
                .enumerate()
                .map(|(i, d)| {
                    round_trip(d).map_err(|e| format!("document {i} does not round-trip: {e}"))
                })
                .collect::<Result<Vec<Order>, String>>()
        })
    })?;
    m.peak();
    let done = m.verify(|| {
        let mut checksum = 0u64;
        for (i, (got, want)) in parsed.iter().zip(&docs).enumerate() {
            if got != want {
                return Err(format!(
                    "document {i} differs after the round trip, at {}",
                    differing_field(got, want)
                ));
            }
            let text = serde_json::to_string(got).map_err(|e| e.to_string())?;
            checksum = checksum.wrapping_add(hash(text.as_bytes()));
        }
        if parsed.len() != docs.len() {
            return Err(format!(
                "{} documents parsed, {} sent",
                parsed.len(),
                docs.len()
            ));
        }
        Ok(Done {
            units: size,
            checksum,
        })
    })?;
    m.time(|| drop(parsed));
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_round_trip_and_vary() {
        let docs = generate(50);
        assert_eq!(docs, generate(50), "deterministic");
        for d in &docs {
            assert_eq!(&round_trip(d).unwrap(), d);
        }
        assert!(docs.iter().any(|d| d.note.is_some()) && docs.iter().any(|d| d.note.is_none()));
        let mut changed = docs[3].clone();
        changed.customer.name.push('x');
        assert_eq!(differing_field(&changed, &docs[3]), "`customer`");
    }
}
