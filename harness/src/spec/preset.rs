//! Presets: named workloads that follow the classic multithreaded
//! allocator benchmarks, shipped as TOML files.
//!
//! Each preset is a file in `harness/presets/`, embedded in the binary and
//! read through the same path as a user's workload file, so that path runs
//! on every invocation. A file has two tables: `[about]` (which published
//! benchmark it follows and what it stresses, for `poolbench list` and the
//! docs) and `[workload]` (workload fields; threads are not part of a
//! preset: the suite or `--threads` sets them). `docs/presets.md` says for
//! each what differs from the original program and why.

use serde::Deserialize;

use super::workload::{Workload, WorkloadError};

/// A named workload and what it stands for.
#[derive(Clone, Debug)]
pub struct Preset {
    /// Name used on the command line and in results.
    pub name: &'static str,
    /// The published benchmark it follows, with a reference.
    pub follows: String,
    /// What it stresses, in one line.
    pub stresses: String,
    /// The workload (threads = 1; callers override).
    pub workload: Workload,
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

/// Every preset file, in the order reports list them.
const FILES: &[(&str, &str)] = &[
    ("larson", include_str!("../../presets/larson.toml")),
    ("xmalloc", include_str!("../../presets/xmalloc.toml")),
    (
        "cache-scratch",
        include_str!("../../presets/cache-scratch.toml"),
    ),
    (
        "cache-thrash",
        include_str!("../../presets/cache-thrash.toml"),
    ),
    ("mstress", include_str!("../../presets/mstress.toml")),
    ("rptest", include_str!("../../presets/rptest.toml")),
    ("alloc-test", include_str!("../../presets/alloc-test.toml")),
    (
        "glibc-thread",
        include_str!("../../presets/glibc-thread.toml"),
    ),
    ("sh6bench", include_str!("../../presets/sh6bench.toml")),
    ("sh8bench", include_str!("../../presets/sh8bench.toml")),
    ("python", include_str!("../../presets/python.toml")),
];

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct About {
    follows: String,
    stresses: String,
}

/// Reads one preset file.
fn parse(name: &'static str, text: &str) -> Result<Preset, WorkloadError> {
    let mut table: toml::Table =
        toml::from_str(text).map_err(|e| WorkloadError::Syntax(format!("preset {name}: {e}")))?;
    let about: About = table
        .remove("about")
        .ok_or_else(|| WorkloadError::Syntax(format!("preset {name}: no [about] table")))?
        .try_into()
        .map_err(|e| WorkloadError::Syntax(format!("preset {name}: [about]: {e}")))?;
    let workload = match table.remove("workload") {
        Some(toml::Value::Table(t)) if table.is_empty() => Workload::default().merge(t)?,
        _ => {
            return Err(WorkloadError::Syntax(format!(
                "preset {name}: expected exactly [about] and [workload]"
            )))
        }
    };
    Ok(Preset {
        name,
        follows: about.follows,
        stresses: about.stresses,
        workload,
    })
}

/// Every preset, in the order reports list them. A preset file that does
/// not parse is a build defect the tests catch; here it is skipped.
pub fn all() -> Vec<Preset> {
    FILES
        .iter()
        .filter_map(|(name, text)| parse(name, text).ok())
        .collect()
}

/// Every preset name.
pub fn names() -> Vec<&'static str> {
    FILES.iter().map(|(n, _)| *n).collect()
}

/// The workload of preset `name`.
pub fn get(name: &str) -> Result<Workload, UnknownPreset> {
    FILES
        .iter()
        .find(|(n, _)| *n == name)
        .and_then(|(n, text)| parse(n, text).ok())
        .map(|p| p.workload)
        .ok_or_else(|| UnknownPreset {
            name: name.to_string(),
            known: names().join(", "),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_preset_file_parses_and_checks_at_full_and_quick_scale() {
        for (name, text) in FILES {
            let p = parse(name, text).unwrap_or_else(|e| panic!("preset {name}: {e}"));
            assert_eq!(p.workload.name, *name);
            assert_eq!(p.workload.threads, 1);
            assert!(!p.follows.is_empty() && !p.stresses.is_empty());
            p.workload.clone().check().unwrap();
            p.workload.clone().quick().check().unwrap();
            let mut two = p.workload.clone();
            two.set("threads", "2").unwrap();
            two.check().unwrap();
        }
        assert_eq!(all().len(), FILES.len());
    }

    #[test]
    fn names_are_unique_and_looked_up() {
        let mut n = names();
        n.sort_unstable();
        n.dedup();
        assert_eq!(n.len(), FILES.len());
        for p in all() {
            assert_eq!(get(p.name).unwrap(), p.workload);
        }
        let msg = get("larsen").unwrap_err().to_string();
        assert!(msg.contains("larsen"), "{msg}");
        for name in names() {
            assert!(msg.contains(name), "{msg} lacks {name}");
        }
    }

    #[test]
    fn docs_table_lists_every_preset() {
        let doc = include_str!("../../../docs/presets.md");
        for name in names() {
            assert!(
                doc.contains(&format!("| `{name}` |")),
                "docs/presets.md has no row for {name}"
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
        assert_eq!(names(), want);
    }
}
