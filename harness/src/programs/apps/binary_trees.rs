//! `binary-trees`: the benchmarks-game program.
//!
//! Perfect binary trees of boxed nodes are built bottom-up and walked
//! (counting nodes): one "stretch" tree of depth `max + 1`, built and freed;
//! one long-lived tree of depth `max`, kept for the whole run; and for each
//! depth `d` in `4, 6, ..., max`, `2^(max - d + 4)` short-lived trees,
//! built and freed in parallel (depths in parallel too), so every depth
//! does the same number of node allocations. Nodes hold nothing but their
//! two child pointers: the allocator sees nothing but 16-byte blocks.
//!
//! The program prints what the benchmarks game prints, and the check
//! compares that output line by line with the expected one, computed from
//! the closed form (a tree of depth `d` has `2^(d+1) - 1` nodes), as the
//! benchmarks game verifies submissions.
//!
//! Measured: everything from the stretch tree to the output text and
//! freeing the long-lived tree, in two segments around the peak snapshot.
//! Unit: trees built.

use std::fmt::Write;

use rayon::prelude::*;
use rayon::ThreadPool;

use super::{hash, AppInfo, Done, Measure};

pub(super) const INFO: AppInfo = AppInfo {
    name: "binary-trees",
    about: "benchmarks-game binary trees: boxed nodes built and walked in parallel, \
            one long-lived tree and many short-lived ones per depth",
    size_means: "maximum tree depth",
    unit: "trees",
    default_size: 17,
    min_size: MIN_DEPTH as u64 + 2,
    max_size: 26,
};

const MIN_DEPTH: u32 = 4;

struct Tree {
    left: Option<Box<Tree>>,
    right: Option<Box<Tree>>,
}

fn bottom_up(depth: u32) -> Box<Tree> {
    Box::new(if depth > 0 {
        Tree {
            left: Some(bottom_up(depth - 1)),
            right: Some(bottom_up(depth - 1)),
        }
    } else {
        Tree {
            left: None,
            right: None,
        }
    })
}

fn check(t: &Tree) -> u64 {
    1 + t.left.as_deref().map_or(0, check) + t.right.as_deref().map_or(0, check)
}

/// Trees of each depth: `(depth, iterations)`.
fn depths(max: u32) -> Vec<(u32, u64)> {
    (MIN_DEPTH..=max)
        .step_by(2)
        .map(|d| (d, 1u64 << (max - d + MIN_DEPTH)))
        .collect()
}

/// The program's output from its figures.
fn output(max: u32, stretch: u64, per_depth: &[(u32, u64, u64)], long_lived: u64) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(out, "stretch tree of depth {}\t check: {stretch}", max + 1);
    for (d, iterations, c) in per_depth {
        let _ = writeln!(out, "{iterations}\t trees of depth {d}\t check: {c}");
    }
    let _ = writeln!(out, "long lived tree of depth {max}\t check: {long_lived}");
    out
}

pub(super) fn run(pool: &ThreadPool, size: u64, m: &mut Measure) -> Result<Done, String> {
    let max = size as u32;
    let plan = depths(max);
    let (stretch, long_lived_tree, per_depth) = m.time(|| {
        pool.install(|| {
            let stretch = check(&bottom_up(max + 1));
            let long_lived = bottom_up(max);
            let per_depth: Vec<(u32, u64, u64)> = plan
                .par_iter()
                .map(|&(d, iterations)| {
                    let c = (0..iterations)
                        .into_par_iter()
                        .map(|_| check(&bottom_up(d)))
                        .sum();
                    (d, iterations, c)
                })
                .collect();
            (stretch, long_lived, per_depth)
        })
    });
    m.peak();
    let text = m.time(|| {
        let long_lived = check(&long_lived_tree);
        drop(long_lived_tree);
        output(max, stretch, &per_depth, long_lived)
    });

    m.verify(|| {
        let nodes = |d: u32| (1u64 << (d + 1)) - 1;
        let expected_per_depth: Vec<(u32, u64, u64)> =
            plan.iter().map(|&(d, it)| (d, it, it * nodes(d))).collect();
        let expected = output(max, nodes(max + 1), &expected_per_depth, nodes(max));
        if let Some((i, (got, want))) = text
            .lines()
            .zip(expected.lines())
            .enumerate()
            .find(|(_, (g, w))| g != w)
        {
            return Err(format!(
                "output line {}: got `{got}`, expected `{want}`",
                i + 1
            ));
        }
        if text.lines().count() != expected.lines().count() {
            return Err(format!(
                "output has {} lines, expected {}",
                text.lines().count(),
                expected.lines().count()
            ));
        }
        Ok(Done {
            units: 2 + plan.iter().map(|&(_, it)| it).sum::<u64>(),
            checksum: hash(text.as_bytes()),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_matches_the_benchmarks_game() {
        // The benchmarks game's expected output for n = 10.
        let plan = depths(10);
        let figures: Vec<_> = plan
            .iter()
            .map(|&(d, it)| (d, it, it * check(&bottom_up(d))))
            .collect();
        let text = output(10, check(&bottom_up(11)), &figures, check(&bottom_up(10)));
        assert_eq!(
            text,
            "stretch tree of depth 11\t check: 4095\n\
             1024\t trees of depth 4\t check: 31744\n\
             256\t trees of depth 6\t check: 32512\n\
             64\t trees of depth 8\t check: 32704\n\
             16\t trees of depth 10\t check: 32752\n\
             long lived tree of depth 10\t check: 2047\n"
        );
    }
}
