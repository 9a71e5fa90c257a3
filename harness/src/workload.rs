//! TEMPORARY STAND-IN on the `cli` branch, replaced at merge by the
//! workload helper's `workload.rs`. It carries only the parts of the
//! brief's contract the CLI calls, so the CLI compiles and its tests run.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// A workload as data (stand-in: a fixed-size alloc/free loop).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    pub name: String,
    pub threads: usize,
    pub ops_per_thread: u64,
    pub size: usize,
    pub geometry: String,
    pub seed: u64,
    pub warmup_ops: u64,
    pub verify: bool,
}

/// Why a workload is wrong.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct WorkloadError(pub String);

/// One settable field, for `poolbench list` and error messages.
pub struct FieldDoc {
    pub name: &'static str,
    pub accepted: &'static str,
    pub help: &'static str,
}

const FIELDS: &[FieldDoc] = &[
    FieldDoc {
        name: "threads",
        accepted: "integer 1..=1024",
        help: "worker threads",
    },
    FieldDoc {
        name: "ops_per_thread",
        accepted: "integer >= 1",
        help: "operations per thread",
    },
    FieldDoc {
        name: "size",
        accepted: "integer 1..=1048576",
        help: "bytes per block",
    },
    FieldDoc {
        name: "geometry",
        accepted: "classic | modern | tiny",
        help: "pool geometry",
    },
    FieldDoc {
        name: "seed",
        accepted: "integer",
        help: "RNG seed",
    },
    FieldDoc {
        name: "warmup_ops",
        accepted: "integer",
        help: "unmeasured ops first",
    },
    FieldDoc {
        name: "verify",
        accepted: "true | false",
        help: "tag and check blocks",
    },
];

fn parse<T: std::str::FromStr>(field: &str, value: &str) -> Result<T, WorkloadError> {
    let doc = FIELDS
        .iter()
        .find(|f| f.name == field)
        .map_or("", |f| f.accepted);
    value
        .parse()
        .map_err(|_| WorkloadError(format!("{field}: `{value}` is not valid (accepted: {doc})")))
}

impl Workload {
    pub fn from_toml_str(s: &str) -> Result<Workload, WorkloadError> {
        let w: Workload = toml::from_str(s).map_err(|e| WorkloadError(e.to_string()))?;
        w.validate()?;
        Ok(w)
    }

    pub fn from_file(path: &Path) -> Result<Workload, WorkloadError> {
        let s = std::fs::read_to_string(path)
            .map_err(|e| WorkloadError(format!("cannot read {}: {e}", path.display())))?;
        Self::from_toml_str(&s)
    }

    pub fn validate(&self) -> Result<(), WorkloadError> {
        if self.threads == 0 {
            return Err(WorkloadError("threads: must be at least 1".into()));
        }
        if self.size == 0 {
            return Err(WorkloadError("size: must be at least 1".into()));
        }
        if allocator::Geometry::by_name(&self.geometry).is_none() {
            return Err(WorkloadError(format!(
                "geometry: `{}` is unknown (accepted: classic, modern, tiny)",
                self.geometry
            )));
        }
        Ok(())
    }

    pub fn set(&mut self, field: &str, value: &str) -> Result<(), WorkloadError> {
        match field {
            "threads" => self.threads = parse(field, value)?,
            "ops_per_thread" => self.ops_per_thread = parse(field, value)?,
            "size" => self.size = parse(field, value)?,
            "geometry" => self.geometry = value.to_string(),
            "seed" => self.seed = parse(field, value)?,
            "warmup_ops" => self.warmup_ops = parse(field, value)?,
            "verify" => self.verify = parse(field, value)?,
            _ => {
                let names: Vec<_> = FIELDS.iter().map(|f| f.name).collect();
                return Err(WorkloadError(format!(
                    "unknown workload field `{field}` (accepted: {})",
                    names.join(", ")
                )));
            }
        }
        Ok(())
    }

    pub fn fields() -> &'static [FieldDoc] {
        FIELDS
    }
}
