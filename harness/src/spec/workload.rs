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

use serde::Serialize;

use super::field::{Custom, FieldDoc, FieldValue, OptRange, Range};
use super::lifetime::{Lifetime, LIFETIME_RULE};
use super::size::{SizeDist, SIZE_RULE};
use super::touch::{Touch, TouchAt, TOUCH_AT_RULE, TOUCH_RULE};
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
    /// Consecutive allocations that ask for the same drawn size (runs of
    /// one size, as sh6bench's size sequence has; 1 draws every size).
    size_run: u32 = 1, rule Range(1, 1_000_000);
    /// When blocks die: free at once, FIFO window, random slot replacement,
    /// batches, long-lived survivors.
    lifetime: Lifetime = Lifetime::Fifo { window: 64 }, rule LIFETIME_RULE;
    /// Fraction of frees handed to another thread and freed there.
    remote_free_fraction: f64 = 0.0, rule FRACTION;
    /// Who frees what: `symmetric` (every thread allocates and frees, and
    /// hands blocks to the others in turn) or `producer-consumer` (with 2
    /// or more threads, even-numbered threads only allocate and hand their
    /// blocks to the odd-numbered ones, which only free: xmalloc-test).
    roles: Roles = Roles::Symmetric, rule ROLES_RULE;
    /// Fraction of allocations followed by a realloc of the same block to a
    /// new size drawn from the same distribution.
    realloc_fraction: f64 = 0.0, rule FRACTION;
    /// Alignment of every request.
    align: usize = 8, rule ALIGN_RULE;
    /// Bytes written into each block after allocation: `all` or a count
    /// (capped at the block's size; 0 writes nothing).
    touch_bytes: Touch = Touch::All, rule TOUCH_RULE;
    /// Where the touched bytes are: `start` (the first `touch_bytes`) or
    /// `ends` (half at the start, half at the end of the block).
    touch_at: TouchAt = TouchAt::Start, rule TOUCH_AT_RULE;
    /// How many times those bytes are written (repeated writes make false
    /// sharing visible).
    touch_passes: u32 = 1, rule Range(0, 1_000_000);
    /// Read the touched bytes back before freeing a block (alloc-test and
    /// mstress read every word of a block before they free it).
    read_before_free: bool = false, rule BOOL;
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
    verify: bool = false, rule BOOL;
    /// Latency pass: one operation in this many, on average, is timed, at
    /// random intervals (0 = no latency pass).
    latency_sample_one_in: u32 = 16, rule Range(0, 1 << 20);
    /// RNG seed; each thread's plan is seeded from (seed, thread).
    seed: u64 = 42, rule Range(0, u64::MAX);
}

const BOOL: Custom<bool> = Custom {
    accepted: "true, false",
    check: |_| Ok(()),
};

/// Who frees what (see the `roles` field).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Roles {
    Symmetric,
    ProducerConsumer,
}

const ROLES_RULE: Custom<Roles> = Custom {
    accepted: "symmetric, producer-consumer",
    check: |_| Ok(()),
};

impl FieldValue for Roles {
    fn from_toml(v: toml::Value) -> Result<Self, String> {
        match v {
            toml::Value::String(s) if s == "symmetric" => Ok(Roles::Symmetric),
            toml::Value::String(s) if s == "producer-consumer" => Ok(Roles::ProducerConsumer),
            other => Err(format!(
                "expected symmetric or producer-consumer, got {other}"
            )),
        }
    }
    fn show(&self) -> String {
        match self {
            Roles::Symmetric => "symmetric".into(),
            Roles::ProducerConsumer => "producer-consumer".into(),
        }
    }
}

impl Roles {
    /// Whether thread `t` of `threads` only frees what it receives.
    pub fn consumer(self, t: usize, threads: usize) -> bool {
        self == Roles::ProducerConsumer && threads > 1 && t % 2 == 1
    }

    /// The threads thread `t` of `threads` may hand blocks to.
    pub fn targets(self, t: usize, threads: usize) -> Vec<usize> {
        (0..threads)
            .filter(|&o| o != t)
            .filter(|&o| self == Roles::Symmetric || o % 2 == 1)
            .collect()
    }
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
pub const PRESET_DOC: &str = "a preset name (see `poolbench list`); workload files only";

/// An error about `field`'s `value`, with what the field accepts.
pub fn invalid(field: &str, value: impl fmt::Display, reason: impl Into<String>) -> WorkloadError {
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
    /// Parses a TOML workload over the defaults, checking each field as it
    /// is read; unknown fields and refused values are errors naming the
    /// field. (Files that start from a preset: `spec::file`.)
    pub fn from_toml_str(s: &str) -> Result<Workload, WorkloadError> {
        let table: toml::Table =
            toml::from_str(s).map_err(|e| WorkloadError::Syntax(e.to_string()))?;
        Workload::default().merge(table)
    }

    /// This workload with the fields of `table` set over it, each checked
    /// as it is read.
    pub fn merge(mut self, table: toml::Table) -> Result<Workload, WorkloadError> {
        if let (Some(_), Some(d)) = (table.get("ops_per_thread"), table.get("duration_ms")) {
            return Err(invalid(
                "duration_ms",
                d,
                "set either ops_per_thread or duration_ms, not both",
            ));
        }
        for (key, value) in table {
            self.apply_field(&key, value)?;
            self.check_field(&key)?;
        }
        Ok(self)
    }

    /// Whether `name` is a usable workload name.
    pub fn usable_name(name: &str) -> bool {
        (NAME_RULE.check)(&name.to_string()).is_ok()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::lifetime::FreeOrder;
    use crate::spec::size::WeightedSize;

    const FULL: &str = r#"
name = "full-file"
threads = 3
ops_per_thread = 5_000
warmup_ops = 100
remote_free_fraction = 0.25
realloc_fraction = 0.1
align = 16
touch_bytes = "all"
touch_passes = 2
rounds = 5
switch_interval_us = 1000
geometry = "modern"
verify = true
latency_sample_one_in = 8
seed = 7
roles = "producer-consumer"
size_run = 3
touch_at = "ends"
read_before_free = true

[size]
kind = "weighted"
table = [ { size = 16, weight = 3.0 }, { size = 4096, weight = 1 } ]

[lifetime]
kind = "long-lived"
fraction = 0.05
slots = 100
window = 8
size = { kind = "log-uniform", min = 600, max = 9000 }
"#;

    fn full() -> Workload {
        Workload {
            name: "full-file".into(),
            threads: 3,
            ops_per_thread: Some(5000),
            duration_ms: None,
            min_time_ms: 200,
            warmup_ops: 100,
            size: SizeDist::Weighted {
                table: vec![
                    WeightedSize {
                        size: 16,
                        weight: 3.0,
                    },
                    WeightedSize {
                        size: 4096,
                        weight: 1.0,
                    },
                ],
            },
            lifetime: Lifetime::LongLived {
                fraction: 0.05,
                slots: 100,
                window: 8,
                size: Some(SizeDist::LogUniform {
                    min: 600,
                    max: 9000,
                }),
            },
            remote_free_fraction: 0.25,
            realloc_fraction: 0.1,
            align: 16,
            touch_bytes: Touch::All,
            touch_passes: 2,
            rounds: 5,
            switch_interval_us: 1000,
            geometry: "modern".into(),
            verify: true,
            latency_sample_one_in: 8,
            seed: 7,
            roles: Roles::ProducerConsumer,
            size_run: 3,
            touch_at: TouchAt::Ends,
            read_before_free: true,
        }
    }

    /// Parses and checks `text` expecting an error, and returns it.
    fn bad(text: &str) -> WorkloadError {
        match Workload::from_toml_str(text).and_then(Workload::check) {
            Ok(w) => panic!("accepted {text:?} as {w:?}"),
            Err(e) => e,
        }
    }

    /// The error names `field`, and its message contains every `needle`.
    fn assert_names(e: &WorkloadError, field: &str, needles: &[&str]) {
        assert_eq!(e.field(), Some(field), "wrong field in: {e}");
        let msg = e.to_string();
        for n in needles {
            assert!(msg.contains(n), "{msg:?} lacks {n:?}");
        }
    }

    #[test]
    fn parses_a_full_file() {
        assert_eq!(Workload::from_toml_str(FULL).unwrap(), full());
    }

    #[test]
    fn missing_fields_take_defaults() {
        let w = Workload::from_toml_str("threads = 2").unwrap();
        assert_eq!(
            w,
            Workload {
                threads: 2,
                ..Workload::default()
            }
        );
        assert!(Workload::default().check().is_ok());
    }

    #[test]
    fn parses_compact_sizes_and_lifetimes() {
        let cases = [
            ("size = 64", "size", "64"),
            ("size = \"16..512\"", "size", "16..512"),
            ("size = \"16..=512\"", "size", "16..512"),
            ("size = \"uniform:16..512\"", "size", "16..512"),
            (
                "size = \"log-uniform:16..4096\"",
                "size",
                "log-uniform:16..4096",
            ),
            (
                "size = \"inverse-square:4..32768\"",
                "size",
                "inverse-square:4..32768",
            ),
            (
                "size = \"weighted:16=5,64=2\"",
                "size",
                "weighted:16=5;64=2",
            ),
            ("size = \"python\"", "size", "python:0.02:65536"),
            ("size = \"python:0.1:1024\"", "size", "python:0.1:1024"),
            ("lifetime = \"immediate\"", "lifetime", "immediate"),
            ("lifetime = \"fifo:8\"", "lifetime", "fifo:8"),
            ("lifetime = \"random:100\"", "lifetime", "random:100"),
            ("lifetime = \"batch:10:lifo\"", "lifetime", "batch:10:lifo"),
            (
                "lifetime = \"long-lived:0.1:10:4\"",
                "lifetime",
                "long-lived:0.1:10:4",
            ),
        ];
        for (text, field, shown) in cases {
            let w = Workload::from_toml_str(text).unwrap();
            assert_eq!(w.get(field).unwrap(), shown, "{text}");
        }
        let w = Workload::from_toml_str("size = \"python:0.1:1024\"").unwrap();
        assert_eq!(
            w.size,
            SizeDist::Python {
                large_fraction: 0.1,
                large_max: 1024
            }
        );
        let w = Workload::from_toml_str("lifetime = \"batch:10:lifo\"").unwrap();
        assert_eq!(
            w.lifetime,
            Lifetime::Batch {
                count: 10,
                order: FreeOrder::Lifo
            }
        );
    }

    #[test]
    fn duration_replaces_ops() {
        let w = Workload::from_toml_str("duration_ms = 250").unwrap();
        assert_eq!((w.ops_per_thread, w.duration_ms), (None, Some(250)));
        assert_names(
            &bad("duration_ms = 250\nops_per_thread = 10"),
            "duration_ms",
            &["not both"],
        );
        assert_names(&bad("duration_ms = 0"), "duration_ms", &["3600000"]);
    }

    #[test]
    fn bad_files_name_the_field() {
        let e = bad("thread = 4");
        assert!(matches!(e, WorkloadError::UnknownField { .. }));
        assert_names(&e, "thread", &["threads", "remote_free_fraction"]);

        assert_names(&bad("threads = \"four\""), "threads", &["four", "1..=1024"]);
        assert_names(&bad("threads = 0"), "threads", &["0", "1..=1024"]);
        assert_names(&bad("threads = 5000"), "threads", &["5000"]);
        assert_names(
            &bad("remote_free_fraction = 1.5"),
            "remote_free_fraction",
            &["1.5", "0 to 1"],
        );
        assert_names(
            &bad("realloc_fraction = -0.1"),
            "realloc_fraction",
            &["-0.1", "0 to 1"],
        );
        assert_names(
            &bad("[size]\nkind = \"weighted\"\ntable = []"),
            "size",
            &["empty", "weighted"],
        );
        assert_names(
            &bad("size = { kind = \"weighted\", table = [{ size = 8, weight = 0 }] }"),
            "size",
            &["zero"],
        );
        assert_names(
            &bad("size = { kind = \"uniform\", min = 64, max = 8 }"),
            "size",
            &["min 64 > max 8"],
        );
        assert_names(
            &bad("size = { kind = \"uniform\", min = 8, max = 64, step = 8 }"),
            "size",
            &["step"],
        );
        assert_names(
            &bad("size = { kind = \"gaussian\" }"),
            "size",
            &["gaussian"],
        );
        assert_names(&bad("size = 0"), "size", &["1..=268435456"]);
        assert_names(&bad("size = -3"), "size", &["negative"]);
        assert_names(&bad("size = \"8..x\""), "size", &["\"x\""]);
        assert_names(
            &bad("lifetime = \"batch:10:sideways\""),
            "lifetime",
            &["sideways", "lifo, fifo, random, mixed"],
        );
        assert_names(&bad("lifetime = \"fifo:0\""), "lifetime", &["fifo"]);
        assert_names(&bad("lifetime = \"fifo\""), "lifetime", &["1 argument"]);
        assert_names(
            &bad("lifetime = { kind = \"long-lived\", fraction = 2.0, slots = 1, window = 1 }"),
            "lifetime",
            &["fraction"],
        );
        assert_names(&bad("align = 24"), "align", &["24", "power of two"]);
        assert_names(
            &bad("geometry = \"huge\""),
            "geometry",
            &["huge", "classic, modern, tiny"],
        );
        assert_names(
            &bad("touch_bytes = \"most\""),
            "touch_bytes",
            &["most", "all"],
        );
        assert_names(
            &bad("ops_per_thread = 3\nrounds = 4"),
            "rounds",
            &["more rounds"],
        );
        assert_names(
            &bad("ops_per_thread = 0"),
            "ops_per_thread",
            &["out of range"],
        );
        assert_names(&bad("verify = \"yes\""), "verify", &["yes", "true, false"]);
        assert_names(&bad("name = \"has space\""), "name", &["has space"]);
        assert_names(
            &bad("latency_sample_one_in = 2000000"),
            "latency_sample_one_in",
            &["0..=1048576"],
        );
        assert!(matches!(bad("threads = "), WorkloadError::Syntax(_)));
    }

    #[test]
    fn set_parses_like_a_file() {
        let mut w = Workload::default();
        w.set("threads", "4").unwrap();
        w.set("size", "16..512").unwrap();
        w.set("lifetime", "batch:10:lifo").unwrap();
        w.set("touch_bytes", "all").unwrap();
        w.set("remote_free_fraction", "1").unwrap();
        w.set("name", "123").unwrap();
        w.set("geometry", "tiny").unwrap();
        assert_eq!(w.threads, 4);
        assert_eq!(w.size, SizeDist::Uniform { min: 16, max: 512 });
        assert_eq!(w.remote_free_fraction, 1.0);
        assert_eq!(w.name, "123");
        w.set("size", "{ kind = \"fixed\", size = 64 }").unwrap();
        assert_eq!(w.size, SizeDist::Fixed { size: 64 });
        w.set("duration_ms", "100").unwrap();
        assert_eq!((w.ops_per_thread, w.duration_ms), (None, Some(100)));
        w.set("ops_per_thread", "1_000").unwrap();
        assert_eq!((w.ops_per_thread, w.duration_ms), (Some(1000), None));
        w.set("remote-free-fraction", "0.5").unwrap();
        assert_eq!(w.remote_free_fraction, 0.5);
        // `;` separates weighted rows too, so that sweeps can split on `,`.
        w.set("size", "weighted:16=3;4096=1").unwrap();
        assert_eq!(w.get("size").unwrap(), "weighted:16=3;4096=1");
        w.set("lifetime", "long-lived:0.5:10:4").unwrap();
        assert_eq!(w.get("lifetime").unwrap(), "long-lived:0.5:10:4");
    }

    #[test]
    fn set_errors_name_the_field_and_leave_the_workload_alone() {
        let mut w = Workload::default();
        let before = w.clone();
        let e = w.set("thread", "4").unwrap_err();
        assert_names(&e, "thread", &["threads", "seed"]);
        assert_names(
            &w.set("threads", "0").unwrap_err(),
            "threads",
            &["1..=1024"],
        );
        assert_names(
            &w.set("remote_free_fraction", "lots").unwrap_err(),
            "remote_free_fraction",
            &["lots", "0 to 1"],
        );
        assert_names(
            &w.set("size", "9..3").unwrap_err(),
            "size",
            &["min 9 > max 3"],
        );
        assert_names(
            &w.set("lifetime", "forever").unwrap_err(),
            "lifetime",
            &["forever", "fifo:WINDOW"],
        );
        assert_names(
            &w.set("preset", "larson").unwrap_err(),
            "preset",
            &["larson"],
        );
        assert_names(&w.set("rounds", "0").unwrap_err(), "rounds", &["1..=10000"]);
        assert_eq!(w, before);
    }

    #[test]
    fn get_gives_back_what_set_accepts() {
        for w in crate::spec::preset::all()
            .into_iter()
            .map(|p| p.workload)
            .chain([full()])
        {
            for f in Workload::fields() {
                let mut copy = w.clone();
                let text = copy.get(f.name).unwrap();
                if text == "unset" {
                    continue;
                }
                copy.set(f.name, &text)
                    .unwrap_or_else(|e| panic!("{}: {text}: {e}", f.name));
                assert_eq!(copy, w, "{} = {text}", f.name);
            }
        }
        assert!(Workload::default().get("nope").is_err());
    }

    #[test]
    fn fields_document_every_field() {
        let mut w = Workload::default();
        let json = serde_json::to_value(&w).unwrap();
        w.duration_ms = Some(1);
        w.ops_per_thread = None;
        let json2 = serde_json::to_value(&w).unwrap();
        let keys = json
            .as_object()
            .unwrap()
            .keys()
            .chain(json2.as_object().unwrap().keys());
        let documented: Vec<&str> = Workload::fields().iter().map(|f| f.name).collect();
        assert_eq!(documented, Workload::FIELD_NAMES);
        for k in keys {
            assert!(documented.contains(&k.as_str()), "{k} undocumented");
        }
        assert!(Workload::fields()
            .iter()
            .all(|f| !f.accepted.is_empty() && !f.help.is_empty()));
    }

    #[test]
    fn json_and_toml_round_trip() {
        for w in crate::spec::preset::all()
            .into_iter()
            .map(|p| p.workload)
            .chain([full(), Workload::default()])
        {
            let json = serde_json::to_string(&w).unwrap();
            assert_eq!(serde_json::from_str::<Workload>(&json).unwrap(), w);
            let toml = w.to_toml();
            assert_eq!(Workload::from_toml_str(&toml).unwrap(), w, "{toml}");
        }
        let err = serde_json::from_str::<Workload>(r#"{"threadz": 1}"#).unwrap_err();
        assert!(err.to_string().contains("threadz"));
    }

    #[test]
    fn quick_divides_ops_and_stays_valid() {
        let w = full().quick();
        assert_eq!(
            (w.ops_per_thread, w.warmup_ops, w.min_time_ms),
            (Some(500), 10, 20)
        );
        w.check().unwrap();
        let mut tiny = full();
        tiny.ops_per_thread = Some(5);
        assert_eq!(tiny.quick().ops_per_thread, Some(5));
    }

    #[test]
    fn rounds_split_the_ops_exactly() {
        let w = full().check().unwrap();
        let split: Vec<u64> = (0..w.rounds).map(|r| w.ops_in_round(5003, r)).collect();
        assert_eq!(split, [1001, 1001, 1001, 1000, 1000]);
        assert_eq!(w.ops_in_round(5003, w.rounds), 0);
    }
}
