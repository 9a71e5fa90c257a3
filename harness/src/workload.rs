//! TEMPORARY stand-in for the workload helper's `workload.rs`.
//!
//! The driver branch needs the `Workload` / `Plan` / `Action` contract from
//! the brief to compile and to be tested; this file provides exactly those
//! signatures with a small random-slot-replacement generator. The lead takes
//! the workload helper's real file at merge and deletes this one; the driver
//! relies only on the brief's contract plus the fields named in it
//! (`threads`, `ops_per_thread`, `duration_ms`, `warmup_ops`, `touch_bytes`,
//! `touch_passes`, `switch_interval_us`, `geometry`, `rounds`, `verify`,
//! `latency_sample_one_in`, `seed`), and on `Plan::size_hint` giving the
//! exact number of actions when the plan is finite.

use std::path::Path;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// One operation of a thread's plan, over numbered slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Allocate into `slot`, which is empty.
    Alloc {
        slot: usize,
        size: usize,
        align: usize,
    },
    /// Free the block in `slot` on this thread.
    Free { slot: usize },
    /// Give the block in `slot` to another thread, which frees it.
    Handoff { slot: usize },
    /// Resize the block in `slot`.
    Realloc { slot: usize, new_size: usize },
}

/// Bytes written into each block.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub enum Touch {
    /// The whole block.
    All,
    /// At most this many bytes.
    Bytes(usize),
}

/// The byte limit as a number: `All` is `u64::MAX`.
impl From<Touch> for u64 {
    fn from(t: Touch) -> u64 {
        match t {
            Touch::All => u64::MAX,
            Touch::Bytes(n) => n as u64,
        }
    }
}

/// Why a workload cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    #[error("workload field `{field}`: {message} (accepted: {accepted})")]
    Field {
        field: String,
        message: String,
        accepted: &'static str,
    },
    #[error("workload file: {0}")]
    Parse(String),
}

/// A workload field, for `poolbench list` and error messages.
#[derive(Clone, Copy, Debug)]
pub struct FieldDoc {
    pub name: &'static str,
    pub accepted: &'static str,
    pub help: &'static str,
}

/// A workload as data.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Workload {
    pub name: String,
    pub threads: usize,
    /// Measured actions per thread (after `warmup_ops`); exactly one of
    /// this and `duration_ms` is set.
    pub ops_per_thread: Option<u64>,
    /// Run the measured phase for this long instead of `ops_per_thread`.
    pub duration_ms: Option<u64>,
    /// Actions per thread before the measured phase.
    pub warmup_ops: u64,
    pub size_min: usize,
    pub size_max: usize,
    pub align: usize,
    pub slots: usize,
    pub remote_free_fraction: f64,
    pub realloc_fraction: f64,
    pub touch_bytes: Touch,
    pub touch_passes: u32,
    pub switch_interval_us: u64,
    pub geometry: String,
    pub rounds: u32,
    pub verify: bool,
    pub latency_sample_one_in: u32,
    pub seed: u64,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            name: "custom".into(),
            threads: 1,
            ops_per_thread: Some(100_000),
            duration_ms: None,
            warmup_ops: 1_000,
            size_min: 16,
            size_max: 512,
            align: 8,
            slots: 1_000,
            remote_free_fraction: 0.0,
            realloc_fraction: 0.0,
            touch_bytes: Touch::Bytes(16),
            touch_passes: 1,
            switch_interval_us: 5_000,
            geometry: "classic".into(),
            rounds: 1,
            verify: false,
            latency_sample_one_in: 1,
            seed: 1,
        }
    }
}

const FIELDS: &[FieldDoc] = &[
    FieldDoc {
        name: "threads",
        accepted: "integer >= 1",
        help: "worker threads",
    },
    FieldDoc {
        name: "ops_per_thread",
        accepted: "integer >= 1",
        help: "measured actions per thread",
    },
    FieldDoc {
        name: "warmup_ops",
        accepted: "integer >= 0",
        help: "actions before measuring",
    },
    FieldDoc {
        name: "size_min",
        accepted: "integer >= 1",
        help: "smallest request",
    },
    FieldDoc {
        name: "size_max",
        accepted: "integer >= size_min",
        help: "largest request",
    },
    FieldDoc {
        name: "slots",
        accepted: "integer >= 1",
        help: "live-block slots per thread",
    },
    FieldDoc {
        name: "remote_free_fraction",
        accepted: "0.0..=1.0",
        help: "frees done by another thread",
    },
    FieldDoc {
        name: "realloc_fraction",
        accepted: "0.0..=1.0",
        help: "reallocs among actions on live slots",
    },
    FieldDoc {
        name: "rounds",
        accepted: "integer >= 1",
        help: "thread generations",
    },
    FieldDoc {
        name: "verify",
        accepted: "true|false",
        help: "tag and check every block",
    },
    FieldDoc {
        name: "latency_sample_one_in",
        accepted: "integer >= 0 (0 = off)",
        help: "time one op in N",
    },
    FieldDoc {
        name: "touch_bytes",
        accepted: "integer >= 0",
        help: "bytes written per block",
    },
    FieldDoc {
        name: "align",
        accepted: "power of two",
        help: "alignment of every request",
    },
    FieldDoc {
        name: "seed",
        accepted: "integer",
        help: "RNG seed",
    },
];

fn field_err(field: &str, message: String, accepted: &'static str) -> WorkloadError {
    WorkloadError::Field {
        field: field.into(),
        message,
        accepted,
    }
}

fn parse<T: std::str::FromStr>(
    field: &str,
    v: &str,
    accepted: &'static str,
) -> Result<T, WorkloadError> {
    v.parse()
        .map_err(|_| field_err(field, format!("cannot parse `{v}`"), accepted))
}

impl Workload {
    pub fn from_toml_str(s: &str) -> Result<Workload, WorkloadError> {
        let w: Workload = toml::from_str(s).map_err(|e| WorkloadError::Parse(e.to_string()))?;
        w.validate()?;
        Ok(w)
    }

    pub fn from_file(path: &Path) -> Result<Workload, WorkloadError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| WorkloadError::Parse(format!("{}: {e}", path.display())))?;
        Self::from_toml_str(&text)
    }

    pub fn validate(&self) -> Result<(), WorkloadError> {
        if self.threads == 0 {
            return Err(field_err(
                "threads",
                "must be at least 1".into(),
                "integer >= 1",
            ));
        }
        if self.size_min == 0 || self.size_max < self.size_min {
            return Err(field_err(
                "size_min",
                "need 1 <= size_min <= size_max".into(),
                "integer >= 1",
            ));
        }
        if self.slots == 0 {
            return Err(field_err(
                "slots",
                "must be at least 1".into(),
                "integer >= 1",
            ));
        }
        if self.rounds == 0 {
            return Err(field_err(
                "rounds",
                "must be at least 1".into(),
                "integer >= 1",
            ));
        }
        for (f, v) in [
            ("remote_free_fraction", self.remote_free_fraction),
            ("realloc_fraction", self.realloc_fraction),
        ] {
            if !(0.0..=1.0).contains(&v) {
                return Err(field_err(f, format!("{v} is out of range"), "0.0..=1.0"));
            }
        }
        Ok(())
    }

    pub fn set(&mut self, field: &str, value: &str) -> Result<(), WorkloadError> {
        let doc = FIELDS
            .iter()
            .find(|d| d.name == field)
            .ok_or_else(|| field_err(field, "unknown field".into(), "see `poolbench list`"))?;
        let a = doc.accepted;
        match field {
            "threads" => self.threads = parse(field, value, a)?,
            "ops_per_thread" => self.ops_per_thread = Some(parse(field, value, a)?),
            "warmup_ops" => self.warmup_ops = parse(field, value, a)?,
            "size_min" => self.size_min = parse(field, value, a)?,
            "size_max" => self.size_max = parse(field, value, a)?,
            "slots" => self.slots = parse(field, value, a)?,
            "remote_free_fraction" => self.remote_free_fraction = parse(field, value, a)?,
            "realloc_fraction" => self.realloc_fraction = parse(field, value, a)?,
            "rounds" => self.rounds = parse(field, value, a)?,
            "touch_bytes" if value == "all" => self.touch_bytes = Touch::All,
            "touch_bytes" => self.touch_bytes = Touch::Bytes(parse(field, value, a)?),
            "align" => self.align = parse(field, value, a)?,
            "verify" => self.verify = parse(field, value, a)?,
            "latency_sample_one_in" => self.latency_sample_one_in = parse(field, value, a)?,
            _ => self.seed = parse(field, value, a)?,
        }
        self.validate()
    }

    pub fn fields() -> &'static [FieldDoc] {
        FIELDS
    }

    pub fn plan(&self, thread: usize) -> Plan {
        let total = if self.duration_ms.is_some() {
            None
        } else {
            Some(self.warmup_ops + self.ops_per_thread.unwrap_or_default())
        };
        Plan {
            rng: SmallRng::seed_from_u64(
                self.seed ^ (thread as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            ),
            live: vec![None; self.slots],
            left: total,
            w: self.clone(),
        }
    }
}

/// A thread's deterministic action sequence: random slot replacement.
pub struct Plan {
    rng: SmallRng,
    live: Vec<Option<usize>>,
    left: Option<u64>,
    w: Workload,
}

impl Iterator for Plan {
    type Item = Action;

    fn next(&mut self) -> Option<Action> {
        if let Some(left) = &mut self.left {
            if *left == 0 {
                return None;
            }
            *left -= 1;
        }
        let slot = self.rng.random_range(0..self.live.len());
        let w = &self.w;
        Some(match self.live[slot] {
            None => {
                let size = self.rng.random_range(w.size_min..=w.size_max);
                self.live[slot] = Some(size);
                Action::Alloc {
                    slot,
                    size,
                    align: w.align,
                }
            }
            Some(_) if self.rng.random_bool(w.realloc_fraction) => {
                let new_size = self.rng.random_range(w.size_min..=w.size_max);
                self.live[slot] = Some(new_size);
                Action::Realloc { slot, new_size }
            }
            Some(_) => {
                self.live[slot] = None;
                if self.rng.random_bool(w.remote_free_fraction) {
                    Action::Handoff { slot }
                } else {
                    Action::Free { slot }
                }
            }
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self.left {
            Some(n) => (n as usize, Some(n as usize)),
            None => (usize::MAX, None),
        }
    }
}
