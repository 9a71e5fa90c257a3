//! The workload model: its fields, its TOML form and its one check.
//!
//! A workload is plain data (a TOML file, `--set`/`--sweep` text, or JSON
//! handed to a child cell), never code. Every field is declared once, in
//! the [`fields!`] invocation below (see `field.rs` for what is derived
//! from it). Every field has a default, so a file names only what it
//! changes; a file may start from a preset with `preset = "larson"`.
//!
//! Values are checked against their field's rule as they come in (a file's
//! field, a `--set`), so an error names the field, the refused value and
//! what is accepted. [`Workload::check`] then checks the fields together,
//! once, and yields a [`Checked`] workload: the only form that plans,
//! tapes and the driver accept, so none of them re-validates or clamps.

use std::fmt;
use std::ops::Deref;
use std::path::Path;

use serde::Serialize;

use super::field::{Custom, FieldDoc, FieldValue, OptRange, Range};
use super::lifetime::{Lifetime, LIFETIME_RULE};
use super::size::{SizeDist, SIZE_RULE};
use super::touch::{Touch, TOUCH_RULE};
use crate::fields;

/// Most threads a workload may ask for.
pub const MAX_THREADS: usize = 1024;
/// Longest `duration_ms` or `min_time_ms` accepted (one hour).
pub const MAX_DURATION_MS: u64 = 3_600_000;
/// Largest alignment a workload may request.
pub const MAX_ALIGN: usize = 4096;

fields! {
    /// Name shown in reports and results (preset name or file stem).
    name: String = "custom".to_string(), rule NAME_RULE;
    /// Worker threads, each running its own plan.
    threads: usize = 1, rule Range(1, MAX_THREADS);
    /// Measured operations per thread (allocs, frees, handoffs and reallocs
    /// count one each); `min_time_ms` may lengthen the phase. Setting it
    /// unsets `duration_ms`.
    ops_per_thread: Option<u64> = Some(200_000), rule OptRange(1, u64::MAX), clears duration_ms;
    /// Measured phase length in milliseconds instead of an op count (ops
    /// calibrated from a probe). Setting it unsets `ops_per_thread`.
    duration_ms: Option<u64> = None, rule OptRange(1, MAX_DURATION_MS), clears ops_per_thread;
    /// Shortest measured phase in milliseconds: when `ops_per_thread` would
    /// take less, more operations are run (calibrated from a probe);
    /// 0 runs exactly `ops_per_thread`.
    min_time_ms: u64 = 200, rule Range(0, MAX_DURATION_MS);
    /// Untimed operations per thread before the measured phase (after the
    /// working set is filled).
    warmup_ops: u64 = 10_000, rule Range(0, u64::MAX);
    /// Distribution of requested block sizes.
    size: SizeDist = SizeDist::Uniform { min: 16, max: 512 }, rule SIZE_RULE;
    /// When blocks die: free at once, FIFO window, random slot replacement,
    /// batches, long-lived survivors.
    lifetime: Lifetime = Lifetime::Fifo { window: 64 }, rule LIFETIME_RULE;
    /// Fraction of frees handed to another thread and freed there.
    remote_free_fraction: f64 = 0.0, rule FRACTION;
    /// Fraction of allocations followed by a realloc of the same block to a
    /// new size drawn from the same distribution.
    realloc_fraction: f64 = 0.0, rule FRACTION;
    /// Alignment of every request.
    align: usize = 8, rule ALIGN_RULE;
    /// Bytes written into each block after allocation: `all` or a count
    /// (capped at the block's size; 0 writes nothing).
    touch_bytes: Touch = Touch::All, rule TOUCH_RULE;
    /// How many times those bytes are written (repeated writes make false
    /// sharing visible).
    touch_passes: u32 = 1, rule Range(0, 1_000_000);
    /// Thread generations: each thread's measured ops are split into
    /// rounds, each run on a freshly spawned thread that takes over the
    /// previous one's live blocks.
    rounds: u32 = 1, rule Range(1, 10_000);
    /// GIL switch interval in microseconds (the `gil` subject only;
    /// CPython's default is 5000).
    switch_interval_us: u64 = 5000, rule Range(1, 10_000_000);
    /// Arena/pool/alignment geometry of our own allocators.
    geometry: String = "classic".to_string(), rule GEOMETRY_RULE;
    /// Run an untimed verification pass: every block tagged when allocated
    /// and checked before it is freed or reallocated.
    verify: bool = false, rule Custom::<bool> { accepted: "true, false", check: |_| Ok(()) };
    /// Latency pass: one operation in this many, on average, is timed, at
    /// random intervals (0 = no latency pass).
    latency_sample_one_in: u32 = 16, rule Range(0, 1 << 20);
    /// RNG seed; each thread's plan is seeded from (seed, thread).
    seed: u64 = 42, rule Range(0, u64::MAX);
}

const NAME_RULE: Custom<String> = Custom {
    accepted: "1 to 64 characters from A-Z a-z 0-9 - _ .",
    check: |n| {
        let ok = !n.is_empty()
            && n.len() <= 64
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if ok {
            Ok(())
        } else {
            Err("not a usable name".into())
        }
    },
};

const FRACTION: Custom<f64> = Custom {
    accepted: "a number from 0 to 1",
    check: |v| {
        if v.is_finite() && (0.0..=1.0).contains(v) {
            Ok(())
        } else {
            Err("not a fraction".into())
        }
    },
};

const ALIGN_RULE: Custom<usize> = Custom {
    accepted: "a power of two, 1..=4096",
    check: |a| {
        if a.is_power_of_two() && *a <= MAX_ALIGN {
            Ok(())
        } else {
            Err("not a power of two up to 4096".into())
        }
    },
};

const GEOMETRY_RULE: Custom<String> = Custom {
    accepted: "classic, modern, tiny",
    check: |g| match allocator::Geometry::by_name(g) {
        Some(_) => Ok(()),
        None => Err("unknown geometry".into()),
    },
};

/// A workload file, field or value that is not accepted.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum WorkloadError {
    /// The file could not be read.
    #[error("cannot read workload file `{path}`: {reason}")]
    Read {
        /// The path as given.
        path: String,
        /// The OS error.
        reason: String,
    },
    /// The text is not TOML.
    #[error("workload file is not valid TOML: {0}")]
    Syntax(String),
    /// A field name nobody knows.
    #[error("unknown workload field `{field}`; known fields: {known}")]
    UnknownField {
        /// The name as given.
        field: String,
        /// Every accepted field name.
        known: String,
    },
    /// A known field with a value that is not accepted.
    #[error("workload field `{field}`: {value} is not accepted ({reason}); accepted: {accepted}")]
    Invalid {
        /// The field (`size`, `lifetime`, `threads`, ...).
        field: String,
        /// The refused value, as written or as the workload holds it.
        value: String,
        /// What is wrong with it.
        reason: String,
        /// What the field accepts.
        accepted: String,
    },
}

impl WorkloadError {
    /// The field the error is about, if it is about one.
    pub fn field(&self) -> Option<&str> {
        match self {
            WorkloadError::UnknownField { field, .. } | WorkloadError::Invalid { field, .. } => {
                Some(field)
            }
            WorkloadError::Read { .. } | WorkloadError::Syntax(_) => None,
        }
    }
}

/// The `preset` key of a workload file (not a field: it picks the start).
const PRESET_DOC: &str = "a preset name (see `poolbench list`); workload files only";

fn invalid(field: &str, value: impl fmt::Display, reason: impl Into<String>) -> WorkloadError {
    let accepted = if field == "preset" {
        PRESET_DOC.to_string()
    } else {
        Workload::fields()
            .into_iter()
            .find(|f| f.name == field)
            .map_or_else(String::new, |f| f.accepted)
    };
    WorkloadError::Invalid {
        field: field.to_string(),
        value: value.to_string(),
        reason: reason.into(),
        accepted,
    }
}

fn unknown_field(field: &str) -> WorkloadError {
    WorkloadError::UnknownField {
        field: field.to_string(),
        known: Workload::FIELD_NAMES.join(", "),
    }
}

/// Reads a CLI value as a TOML scalar or inline table (`4`, `0.5`, `true`,
/// `{ kind = "fixed", size = 64 }`); anything else is a plain string
/// (`all`, `16..512`, `fifo:64`).
fn parse_scalar(text: &str) -> toml::Value {
    let parsed = toml::from_str::<toml::Table>(&format!("v = {text}"))
        .ok()
        .filter(|t| t.len() == 1)
        .and_then(|mut t| t.remove("v"));
    parsed.unwrap_or_else(|| toml::Value::String(text.to_string()))
}

impl Workload {
    /// Parses a TOML workload, checking each field as it is read; unknown
    /// fields and refused values are errors naming the field.
    pub fn from_toml_str(s: &str) -> Result<Workload, WorkloadError> {
        let table: toml::Table =
            toml::from_str(s).map_err(|e| WorkloadError::Syntax(e.to_string()))?;
        Workload::from_table(table)
    }

    /// [`Workload::from_toml_str`] of an already parsed table.
    pub fn from_table(table: toml::Table) -> Result<Workload, WorkloadError> {
        let mut w = match table.get("preset") {
            None => Workload::default(),
            Some(toml::Value::String(name)) => crate::spec::preset::get(name)
                .map_err(|e| invalid("preset", format!("{name:?}"), e.to_string()))?,
            Some(other) => return Err(invalid("preset", other, "expected a string")),
        };
        if let (Some(_), Some(d)) = (table.get("ops_per_thread"), table.get("duration_ms")) {
            return Err(invalid(
                "duration_ms",
                d,
                "set either ops_per_thread or duration_ms, not both",
            ));
        }
        for (key, value) in table {
            if key != "preset" {
                w.apply_field(&key, value)?;
                w.check_field(&key)?;
            }
        }
        Ok(w)
    }

    /// Reads a TOML workload file. Without a `name` field (or preset), the
    /// workload is named after the file stem.
    pub fn from_file(path: &Path) -> Result<Workload, WorkloadError> {
        let text = std::fs::read_to_string(path).map_err(|e| WorkloadError::Read {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?;
        let named = toml::from_str::<toml::Table>(&text)
            .map(|t| t.contains_key("name") || t.contains_key("preset"))
            .unwrap_or(true);
        let mut w = Workload::from_toml_str(&text)?;
        if !named {
            if let Some(stem) = path.file_stem().and_then(|s| s.to_str()) {
                if (NAME_RULE.check)(&stem.to_string()).is_ok() {
                    w.name = stem.to_string();
                }
            }
        }
        Ok(w)
    }

    /// The workload as TOML, in the form [`Workload::from_toml_str`] reads.
    pub fn to_toml(&self) -> String {
        // Plain data cannot fail to serialise; fall back rather than panic.
        toml::to_string(self).unwrap_or_else(|e| format!("# {e}\n# {self:?}\n"))
    }

    /// Sets one field from its textual value (`--set`, sweeps), with the
    /// same parsing and rule as a workload file. On error the workload is
    /// unchanged. Dashes in `field` read as underscores.
    pub fn set(&mut self, field: &str, value: &str) -> Result<(), WorkloadError> {
        let field = field.replace('-', "_");
        let field = field.as_str();
        if field == "preset" {
            return Err(invalid(
                field,
                value,
                "a preset is chosen as the workload itself, not set as a field",
            ));
        }
        let parsed = match field {
            // Free text: take it as written, even if it looks like a number.
            "name" | "geometry" => toml::Value::String(value.to_string()),
            _ => parse_scalar(value),
        };
        let mut next = self.clone();
        next.apply_field(field, parsed)?;
        next.check_field(field)?;
        *self = next;
        Ok(())
    }

    /// The current value of a field, in the compact form `set` accepts back
    /// (`16..512`, `random:1000`, `0.25`): for labels and sweep keys.
    pub fn get(&self, field: &str) -> Result<String, WorkloadError> {
        self.show_field(&field.replace('-', "_"))
    }

    /// Every field as `poolbench list` shows it, plus the `preset` key of
    /// workload files.
    pub fn docs() -> Vec<FieldDoc> {
        let mut v = vec![FieldDoc {
            name: "preset",
            help: "start from this preset; the file's other fields override it".into(),
            accepted: PRESET_DOC.into(),
            default: "none".into(),
        }];
        v.extend(Workload::fields());
        v
    }

    /// Checks every field and the fields together, once: the only way to a
    /// [`Checked`] workload.
    pub fn check(self) -> Result<Checked, WorkloadError> {
        self.check_fields()?;
        match (self.ops_per_thread, self.duration_ms) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "duration_ms",
                    self.duration_ms.show(),
                    "set either ops_per_thread or duration_ms, not both",
                ))
            }
            (None, None) => {
                return Err(invalid(
                    "ops_per_thread",
                    "unset",
                    "set ops_per_thread or duration_ms",
                ))
            }
            _ => {}
        }
        if let Some(ops) = self.ops_per_thread {
            if u64::from(self.rounds) > ops {
                return Err(invalid(
                    "rounds",
                    self.rounds,
                    format!("more rounds than ops_per_thread ({ops}): a round would run no op"),
                ));
            }
        }
        Ok(Checked(self))
    }

    /// The same workload scaled down for `--quick`: a tenth of the ops,
    /// warm-up, duration and minimum time (at least one op per round).
    pub fn quick(mut self) -> Workload {
        if let Some(ops) = self.ops_per_thread {
            self.ops_per_thread = Some((ops / 10).max(u64::from(self.rounds)).max(1));
        }
        if let Some(d) = self.duration_ms {
            self.duration_ms = Some((d / 10).max(1));
        }
        self.min_time_ms /= 10;
        self.warmup_ops /= 10;
        self
    }
}

/// A workload whose fields were checked, alone and together
/// ([`Workload::check`]). Plans, tapes and the driver take it as it is.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Checked(Workload);

impl Deref for Checked {
    type Target = Workload;
    fn deref(&self) -> &Workload {
        &self.0
    }
}

impl Checked {
    /// The plain workload, to change and check again.
    pub fn into_inner(self) -> Workload {
        self.0
    }

    /// The geometry of our allocators (the name was checked).
    pub fn geometry(&self) -> allocator::Geometry {
        allocator::Geometry::by_name(&self.geometry).unwrap_or(allocator::Geometry::CLASSIC)
    }

    /// Slots one thread's plan uses (its slot table's size).
    pub fn slots(&self) -> usize {
        self.lifetime.slots()
    }

    /// Measured ops of round `round` (0-based) for one thread, for a
    /// count-bound workload of `ops` measured ops: split evenly, the
    /// remainder going to the first rounds.
    pub fn ops_in_round(&self, ops: u64, round: u32) -> u64 {
        let rounds = u64::from(self.rounds);
        let round = u64::from(round);
        if round >= rounds {
            return 0;
        }
        ops / rounds + u64::from(round < ops % rounds)
    }
}
