//! Named workloads that reproduce the patterns of the classic multithreaded
//! allocator benchmarks.
//!
//! Each preset is written from the published description of its benchmark
//! (paper, README or announcement), never from its code, and expressed
//! purely as [`Workload`] data: the same driver runs all of them, so a
//! preset differs from another only in sizes, lifetimes, cross-thread frees
//! and writes. `docs/presets.md` tabulates what each follows and stresses.
//!
//! Op counts are sized for the default suite (every preset × every subject
//! × 1 and 2 threads, each cell a child process) to finish within minutes on
//! two cores in release mode; `Workload::quick` divides them by ten. Thread
//! counts are 1 here: the suite or `--threads` sets them.

use crate::spec::workload::{FreeOrder, Lifetime, SizeDist, Touch, Workload};

/// A named workload and what it stands for.
#[derive(Clone, Copy, Debug)]
pub struct Preset {
    /// Name used on the command line and in results.
    pub name: &'static str,
    /// The published benchmark it follows, with a reference.
    pub follows: &'static str,
    /// What it stresses, in one line.
    pub stresses: &'static str,
    /// Builds the workload (threads = 1; callers override).
    pub workload: fn() -> Workload,
}

/// A preset name that does not exist.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown preset `{name}`; presets: {known}")]
pub struct UnknownPreset {
    /// The name as given.
    pub name: String,
    /// Every preset name, comma-separated.
    pub known: String,
}

/// Every preset, in the order reports list them.
pub fn all() -> &'static [Preset] {
    PRESETS
}

/// The workload of preset `name`.
pub fn get(name: &str) -> Result<Workload, UnknownPreset> {
    PRESETS
        .iter()
        .find(|p| p.name == name)
        .map(|p| (p.workload)())
        .ok_or_else(|| UnknownPreset {
            name: name.to_string(),
            known: PRESETS
                .iter()
                .map(|p| p.name)
                .collect::<Vec<_>>()
                .join(", "),
        })
}

/// The fields every preset shares; each preset changes what defines it.
fn base(name: &str, ops_per_thread: u64) -> Workload {
    Workload {
        name: name.to_string(),
        threads: 1,
        ops_per_thread: Some(ops_per_thread),
        duration_ms: None,
        warmup_ops: ops_per_thread / 20,
        // A header-sized write: every block is really used, and the cost
        // of touching memory does not drown the allocator's.
        touch_bytes: Touch::Bytes(16),
        touch_passes: 1,
        ..Workload::default()
    }
}

static PRESETS: &[Preset] = &[
    Preset {
        name: "larson",
        follows: "larson (Larson & Krishnan, \"Memory Allocation for Long-Running Server Applications\", ISMM 1998)",
        stresses: "server-like random slot replacement; each round's fresh threads free the blocks their predecessors allocated",
        workload: larson,
    },
    Preset {
        name: "xmalloc",
        follows: "xmalloc-test (Lever & Boreham, \"malloc() Performance in a Multithreaded Linux Environment\", USENIX 2000)",
        stresses: "producer/consumer: every block is freed by a thread other than its allocator",
        workload: xmalloc,
    },
    Preset {
        name: "cache-scratch",
        follows: "cache-scratch (Berger et al., \"Hoard: A Scalable Memory Allocator for Multithreaded Applications\", ASPLOS 2000)",
        stresses: "passive false sharing: blocks freed by another thread are reused by it and written repeatedly",
        workload: cache_scratch,
    },
    Preset {
        name: "cache-thrash",
        follows: "cache-thrash (Berger et al., \"Hoard\", ASPLOS 2000)",
        stresses: "active false sharing: threads allocate small blocks side by side and write them repeatedly",
        workload: cache_thrash,
    },
    Preset {
        name: "mstress",
        follows: "mstress (mimalloc-bench, Leijen et al., \"Mimalloc: Free List Sharding in Action\", MSR-TR-2019-18)",
        stresses: "threads destroyed and recreated each round, blocks outliving their thread, some freed remotely",
        workload: mstress,
    },
    Preset {
        name: "rptest",
        follows: "rptest (rpmalloc-benchmark, Mattias Jansson's rpmalloc test)",
        stresses: "mixed sizes over a per-thread working set with a share of cross-thread frees",
        workload: rptest,
    },
    Preset {
        name: "alloc-test",
        follows: "alloc-test (OLogN Technologies / ITHare.com, as run in mimalloc-bench)",
        stresses: "intensive alloc/free over a large working set with a Pareto-like size mix up to 1 KiB",
        workload: alloc_test,
    },
    Preset {
        name: "glibc-thread",
        follows: "glibc benchtests bench-malloc-thread (Will Newton, libc-alpha, 2014)",
        stresses: "random replacement over a fixed 1024-block working set per thread, inverse-square sizes 4 B–32 KiB",
        workload: glibc_thread,
    },
    Preset {
        name: "sh6bench",
        follows: "sh6bench (MicroQuill SmartHeap benchmark)",
        stresses: "batches of allocations freed in reverse, forward and random order",
        workload: sh6bench,
    },
    Preset {
        name: "sh8bench",
        follows: "sh8bench (MicroQuill SmartHeap benchmark)",
        stresses: "sh6bench's batches with a share of the frees done by another thread",
        workload: sh8bench,
    },
    Preset {
        name: "python",
        follows: "CPython object churn (pymalloc's own workload; Objects/obmalloc.c)",
        stresses: "small objects with short refcount-driven lifetimes, a few long-lived survivors, a thin tail of large requests, list-like reallocs",
        workload: python,
    },
];

fn larson() -> Workload {
    Workload {
        size: SizeDist::Uniform { min: 8, max: 1000 },
        lifetime: Lifetime::Random { slots: 1000 },
        // Larson's threads hand their slot arrays to fresh threads: the
        // driver's rounds do exactly that.
        rounds: 4,
        verify: true,
        ..base("larson", 600_000)
    }
}

fn xmalloc() -> Workload {
    Workload {
        size: SizeDist::Uniform { min: 16, max: 256 },
        lifetime: Lifetime::Fifo { window: 100 },
        remote_free_fraction: 1.0,
        verify: true,
        ..base("xmalloc", 400_000)
    }
}

fn cache_scratch() -> Workload {
    Workload {
        size: SizeDist::Fixed { size: 8 },
        lifetime: Lifetime::Immediate,
        // A trickle of blocks moves between threads; the receiver frees
        // them and, with a shared heap, gets them back on its next
        // allocation, next to the sender's blocks.
        remote_free_fraction: 0.1,
        touch_bytes: Touch::All,
        touch_passes: 100,
        ..base("cache-scratch", 300_000)
    }
}

fn cache_thrash() -> Workload {
    Workload {
        size: SizeDist::Fixed { size: 8 },
        lifetime: Lifetime::Immediate,
        touch_bytes: Touch::All,
        touch_passes: 100,
        ..base("cache-thrash", 300_000)
    }
}

fn mstress() -> Workload {
    Workload {
        size: SizeDist::LogUniform { min: 8, max: 4096 },
        lifetime: Lifetime::Random { slots: 500 },
        remote_free_fraction: 0.25,
        rounds: 10,
        verify: true,
        ..base("mstress", 300_000)
    }
}

fn rptest() -> Workload {
    Workload {
        size: SizeDist::LogUniform { min: 16, max: 8192 },
        lifetime: Lifetime::Random { slots: 1024 },
        remote_free_fraction: 0.2,
        verify: true,
        ..base("rptest", 300_000)
    }
}

fn alloc_test() -> Workload {
    Workload {
        size: SizeDist::InverseSquare { min: 8, max: 1024 },
        lifetime: Lifetime::Random { slots: 4096 },
        ..base("alloc-test", 800_000)
    }
}

fn glibc_thread() -> Workload {
    Workload {
        size: SizeDist::InverseSquare {
            min: 4,
            max: 32 * 1024,
        },
        lifetime: Lifetime::Random { slots: 1024 },
        ..base("glibc-thread", 800_000)
    }
}

fn sh6bench() -> Workload {
    sh_batches("sh6bench", 600_000)
}

fn sh8bench() -> Workload {
    Workload {
        remote_free_fraction: 0.25,
        verify: true,
        ..sh_batches("sh8bench", 400_000)
    }
}

/// SmartHeap's batch pattern, shared by sh6bench and sh8bench.
fn sh_batches(name: &str, ops_per_thread: u64) -> Workload {
    Workload {
        size: SizeDist::Uniform { min: 1, max: 1024 },
        lifetime: Lifetime::Batch {
            count: 100,
            order: FreeOrder::Mixed,
        },
        ..base(name, ops_per_thread)
    }
}

fn python() -> Workload {
    Workload {
        size: SizeDist::Python {
            large_fraction: 0.02,
            large_max: 64 * 1024,
        },
        lifetime: Lifetime::LongLived {
            fraction: 0.02,
            slots: 2000,
            window: 16,
            size: None,
        },
        realloc_fraction: 0.03,
        touch_bytes: Touch::All,
        geometry: "modern".to_string(),
        ..base("python", 500_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_validates_at_full_and_quick_scale() {
        for p in all() {
            let w = (p.workload)();
            w.validate()
                .unwrap_or_else(|e| panic!("preset {}: {e}", p.name));
            assert_eq!(w.name, p.name);
            assert_eq!(w.threads, 1);
            w.clone().quick().validate().unwrap();
            let mut two = w.clone();
            two.set("threads", "2").unwrap();
            assert!(!p.follows.is_empty() && !p.stresses.is_empty());
        }
    }

    #[test]
    fn names_are_unique_and_looked_up() {
        let mut names: Vec<&str> = all().iter().map(|p| p.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all().len());
        for p in all() {
            assert_eq!(get(p.name).unwrap(), (p.workload)());
        }
        let e = get("larsen").unwrap_err();
        let msg = e.to_string();
        assert!(msg.contains("larsen"), "{msg}");
        for p in all() {
            assert!(msg.contains(p.name), "{msg} lacks {}", p.name);
        }
    }

    #[test]
    fn quick_runs_stay_mostly_in_steady_state() {
        // Filling the slot table is start-up, not the pattern under test:
        // even at --quick scale each round should run several times more
        // ops than it takes to fill the slots.
        for p in all() {
            let w = (p.workload)().quick();
            let per_round = w.ops_in_round(w.rounds - 1).unwrap();
            assert!(
                per_round >= 4 * w.slots() as u64,
                "{}: {per_round} ops per round for {} slots",
                p.name,
                w.slots()
            );
        }
    }

    #[test]
    fn docs_table_lists_every_preset() {
        let doc = include_str!("../../../docs/presets.md");
        for p in all() {
            assert!(
                doc.contains(&format!("| `{}` |", p.name)),
                "docs/presets.md has no row for {}",
                p.name
            );
        }
    }

    #[test]
    fn the_suite_presets_cover_the_published_benchmarks() {
        let want = [
            "larson",
            "xmalloc",
            "cache-scratch",
            "cache-thrash",
            "mstress",
            "rptest",
            "alloc-test",
            "glibc-thread",
            "sh6bench",
            "sh8bench",
            "python",
        ];
        let names: Vec<&str> = all().iter().map(|p| p.name).collect();
        assert_eq!(names, want);
    }
}
