//! Workloads as data: the [`Workload`] model, its TOML form, validation, and
//! the deterministic per-thread action generator [`Plan`].
//!
//! A workload is plain data (a TOML file, CLI flags, or JSON handed to a
//! child cell), never code. Every field has a default, so a file names only
//! what it changes; a file may start from a preset with `preset = "larson"`.
//! The TOML path is applied field by field (not through one derive) so that
//! every error names the field, the value that was refused and what is
//! accepted; [`Workload::set`] uses the same path, so a CLI override or a
//! sweep value gets exactly the same checks. The JSON path (parent → child
//! cell) uses the serde derive with `deny_unknown_fields`.
//!
//! Sizes and lifetimes are tagged tables (`size = { kind = "uniform", min =
//! 16, max = 512 }`) or a compact string (`size = "16..512"`,
//! `lifetime = "fifo:64"`); [`SizeDist::parse`] and [`Lifetime::parse`]
//! describe the compact forms.
//!
//! # Plans
//!
//! [`Workload::plan`] turns the workload into a [`Plan`] for one thread: an
//! iterator of [`Action`]s over numbered slots, seeded from `(seed, thread)`
//! so that a cell is reproducible op for op. The driver keeps `slots[i]` =
//! the block live in slot `i`; the plan knows which slots are live and never
//! frees an empty slot or allocates into a live one. The plan runs inside the
//! measured loop, so generating an action allocates nothing and hashes
//! nothing: all tables are built when the plan is made.
//!
//! A bounded plan yields exactly `warmup_ops + ops_per_thread` actions, each
//! counting as one op; the driver runs the first `warmup_ops` untimed
//! (`plan.by_ref().take(warmup)`), times the rest, then frees whatever
//! [`Plan::live_slots`] still holds ("drain"). With `duration_ms` instead of
//! `ops_per_thread` the plan never ends by itself: the driver stops pulling
//! actions when the time is up, then drains the same way.
//!
//! With one thread there is nobody to hand a block to, so the plan turns
//! every would-be [`Action::Handoff`] into a local [`Action::Free`].

use std::fmt;
use std::path::Path;

use rand::distr::weighted::WeightedIndex;
use rand::distr::{Bernoulli, Distribution, Uniform};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Most threads a workload may ask for.
pub const MAX_THREADS: usize = 1024;
/// Largest block size any distribution may produce (256 MiB).
pub const MAX_BLOCK_SIZE: usize = 1 << 28;
/// Most slots (live blocks) one thread's plan may keep.
pub const MAX_SLOTS: usize = 1 << 24;
/// Longest `duration_ms` accepted (one hour).
pub const MAX_DURATION_MS: u64 = 3_600_000;
/// Largest alignment a workload may request.
pub const MAX_ALIGN: usize = 4096;

/// One concurrent allocation workload: everything a cell needs besides the
/// subject (allocator) under test.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Workload {
    /// Name shown in reports and results (preset name or file stem).
    pub name: String,
    /// Worker threads, each running its own [`Plan`].
    pub threads: usize,
    /// Measured operations per thread (allocs, frees, handoffs and reallocs
    /// each count one). Exactly one of `ops_per_thread` and `duration_ms`
    /// is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ops_per_thread: Option<u64>,
    /// Measured phase length in milliseconds instead of an op count; the
    /// plan is then unbounded and the driver stops it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// Untimed operations per thread before the measured phase.
    pub warmup_ops: u64,
    /// Distribution of requested block sizes.
    pub size: SizeDist,
    /// When blocks die: which slot each allocation fills and which is freed.
    pub lifetime: Lifetime,
    /// Fraction (0..=1) of frees handed to another thread and freed there.
    pub remote_free_fraction: f64,
    /// Fraction (0..=1) of allocations followed by a realloc of the same
    /// block to a new size drawn from the same distribution.
    pub realloc_fraction: f64,
    /// Alignment of every request (a power of two).
    pub align: usize,
    /// Bytes written into each block after allocation: `all` or a count
    /// (capped at the block's size; 0 writes nothing).
    pub touch_bytes: Touch,
    /// How many times those bytes are written (repeated writes make false
    /// sharing visible).
    pub touch_passes: u32,
    /// Thread generations: the driver splits each thread's ops into
    /// `rounds`, and runs each round on a freshly spawned thread that takes
    /// over the previous one's plan and live slots, so blocks outlive the
    /// thread that allocated them.
    pub rounds: u32,
    /// GIL switch interval in microseconds (the `gil` subject only;
    /// CPython's default is 5000).
    pub switch_interval_us: u64,
    /// Arena/pool/alignment geometry of our own allocators.
    pub geometry: String,
    /// Tag every block and check the tag before it is freed.
    pub verify: bool,
    /// Time one op in this many (1 = every op, 0 = no latency timing).
    pub latency_sample_one_in: u32,
    /// RNG seed; each thread's plan is seeded from (seed, thread).
    pub seed: u64,
}

impl Default for Workload {
    fn default() -> Self {
        Workload {
            name: "custom".to_string(),
            threads: 1,
            ops_per_thread: Some(200_000),
            duration_ms: None,
            warmup_ops: 10_000,
            size: SizeDist::Uniform { min: 16, max: 512 },
            lifetime: Lifetime::Fifo { window: 64 },
            remote_free_fraction: 0.0,
            realloc_fraction: 0.0,
            align: 8,
            touch_bytes: Touch::All,
            touch_passes: 1,
            rounds: 1,
            switch_interval_us: 5000,
            geometry: "classic".to_string(),
            verify: false,
            latency_sample_one_in: 1,
            seed: 42,
        }
    }
}

/// Distribution of requested sizes, in bytes.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SizeDist {
    /// Always `size`.
    Fixed {
        /// The one size requested.
        size: usize,
    },
    /// Uniform over `min..=max`.
    Uniform {
        /// Smallest size.
        min: usize,
        /// Largest size.
        max: usize,
    },
    /// Log-uniform over `min..=max`: each octave equally likely.
    LogUniform {
        /// Smallest size (at least 1).
        min: usize,
        /// Largest size.
        max: usize,
    },
    /// Density proportional to 1/size² over `min..=max`: many small
    /// blocks, a long thin tail of large ones (glibc's bench-malloc-thread).
    InverseSquare {
        /// Smallest size (at least 1).
        min: usize,
        /// Largest size.
        max: usize,
    },
    /// Sizes drawn from a table with relative weights.
    Weighted {
        /// Non-empty; weights need not sum to 1.
        table: Vec<WeightedSize>,
    },
    /// CPython-like object sizes: mostly 16–512 B (the pymalloc range,
    /// weighted towards 16–64 B) and a thin log-uniform tail of large
    /// requests above 512 B.
    Python {
        /// Fraction (0..=1) of requests in the large tail.
        #[serde(default = "python_large_fraction")]
        large_fraction: f64,
        /// Largest tail size (above 512).
        #[serde(default = "python_large_max")]
        large_max: usize,
    },
}

fn python_large_fraction() -> f64 {
    0.02
}

fn python_large_max() -> usize {
    64 * 1024
}

/// One row of a [`SizeDist::Weighted`] table.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WeightedSize {
    /// Requested size in bytes.
    pub size: usize,
    /// Relative weight (finite, not negative).
    pub weight: f64,
}

/// The small-object bands of [`SizeDist::Python`]: `(lo, hi, weight)`.
///
/// Our own shaping, after the sizes of common CPython objects (ints and
/// floats of 24–32 B, small tuples, lists and strings of 40–64 B, dicts and
/// sets above 100 B), not a measured trace.
const PYTHON_BANDS: [(usize, usize, f64); 5] = [
    (16, 32, 0.30),
    (33, 64, 0.34),
    (65, 128, 0.18),
    (129, 256, 0.12),
    (257, 512, 0.06),
];

/// The order in which a [`Lifetime::Batch`] frees its blocks.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum FreeOrder {
    /// Reverse of allocation (stack order).
    Lifo,
    /// Allocation order (queue order).
    Fifo,
    /// A fresh random permutation each batch.
    Random,
    /// Each batch picks one of the three above at random.
    Mixed,
}

impl FreeOrder {
    const ACCEPTED: &'static str = "lifo, fifo, random, mixed";

    fn parse(s: &str) -> Option<FreeOrder> {
        Some(match s {
            "lifo" => FreeOrder::Lifo,
            "fifo" => FreeOrder::Fifo,
            "random" => FreeOrder::Random,
            "mixed" => FreeOrder::Mixed,
            _ => return None,
        })
    }
}

/// When blocks die.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Lifetime {
    /// Each block is freed right after it is allocated (one slot).
    Immediate,
    /// A FIFO window: once `window` blocks are live, each allocation is
    /// preceded by freeing the oldest.
    Fifo {
        /// Blocks live at once.
        window: usize,
    },
    /// Random slot replacement over `slots` slots (larson): the slots are
    /// filled once, then a random slot's block is freed and replaced.
    Random {
        /// Blocks live at once.
        slots: usize,
    },
    /// Allocate `count` blocks, then free all of them in `order`; repeat.
    Batch {
        /// Blocks per batch.
        count: usize,
        /// Order of the frees.
        order: FreeOrder,
    },
    /// Short-lived blocks in a FIFO window of `window`, and with probability
    /// `fraction` a long-lived survivor instead: survivors fill `slots`
    /// slots, then each new one replaces a random older one.
    LongLived {
        /// Fraction (0..=1) of allocations that are survivors.
        fraction: f64,
        /// Survivors live at once.
        slots: usize,
        /// FIFO window of the short-lived blocks.
        window: usize,
        /// Size distribution of survivors (default: the workload's `size`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        size: Option<SizeDist>,
    },
}

/// Bytes written into each block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Touch {
    /// The whole block.
    All,
    /// At most this many bytes (from the start of the block).
    Bytes(usize),
}

impl Touch {
    /// Bytes to write into a block of `size` bytes.
    pub fn bytes_for(self, size: usize) -> usize {
        match self {
            Touch::All => size,
            Touch::Bytes(n) => n.min(size),
        }
    }
}

/// The byte limit as a number: `all` is `u64::MAX` (every block is smaller).
impl From<Touch> for u64 {
    fn from(t: Touch) -> u64 {
        match t {
            Touch::All => u64::MAX,
            Touch::Bytes(n) => n as u64,
        }
    }
}

impl fmt::Display for Touch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Touch::All => f.write_str("all"),
            Touch::Bytes(n) => write!(f, "{n}"),
        }
    }
}

impl Serialize for Touch {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Touch::All => s.serialize_str("all"),
            Touch::Bytes(n) => s.serialize_u64(*n as u64),
        }
    }
}

impl<'de> Deserialize<'de> for Touch {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Touch, D::Error> {
        struct TouchVisitor;
        impl Visitor<'_> for TouchVisitor {
            type Value = Touch;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"all\" or a byte count")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Touch, E> {
                match v {
                    "all" => Ok(Touch::All),
                    _ => v
                        .parse::<usize>()
                        .map(Touch::Bytes)
                        .map_err(|_| E::invalid_value(de::Unexpected::Str(v), &self)),
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Touch, E> {
                usize::try_from(v)
                    .map(Touch::Bytes)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Touch, E> {
                usize::try_from(v)
                    .map(Touch::Bytes)
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
            }
        }
        d.deserialize_any(TouchVisitor)
    }
}

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

/// Documentation of one workload field, for `poolbench list` and errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FieldDoc {
    /// Field name as written in TOML and to `set`.
    pub name: &'static str,
    /// What values are accepted.
    pub accepted: &'static str,
    /// What the field does.
    pub help: &'static str,
}

const SIZE_ACCEPTED: &str = "N (fixed), MIN..MAX (uniform), log-uniform:MIN..MAX, \
inverse-square:MIN..MAX, weighted:SIZE=WEIGHT,..., python[:LARGE_FRACTION[:LARGE_MAX]], \
or a table { kind = \"fixed\"|\"uniform\"|\"log-uniform\"|\"inverse-square\"|\"weighted\"|\"python\", ... }; \
sizes 1..=268435456";
const LIFETIME_ACCEPTED: &str = "immediate, fifo:WINDOW, random:SLOTS, batch:COUNT:lifo|fifo|random|mixed, \
long-lived:FRACTION:SLOTS:WINDOW, or a table { kind = \"immediate\"|\"fifo\"|\"random\"|\"batch\"|\"long-lived\", ... }; \
counts 1..=16777216";
const FRACTION_ACCEPTED: &str = "a number from 0 to 1";

const FIELDS: &[FieldDoc] = &[
    FieldDoc {
        name: "preset",
        accepted: "a preset name (see `poolbench list`); workload files only",
        help: "start from this preset; the file's other fields override it",
    },
    FieldDoc {
        name: "name",
        accepted: "1 to 64 characters from A-Z a-z 0-9 - _ .",
        help: "name shown in reports",
    },
    FieldDoc {
        name: "threads",
        accepted: "1..=1024",
        help: "worker threads, each running its own plan",
    },
    FieldDoc {
        name: "ops_per_thread",
        accepted: "an integer >= 1 (setting it clears duration_ms)",
        help: "measured ops per thread; alloc, free, handoff and realloc count one each",
    },
    FieldDoc {
        name: "duration_ms",
        accepted: "1..=3600000 (setting it clears ops_per_thread)",
        help: "measured phase length instead of an op count",
    },
    FieldDoc {
        name: "warmup_ops",
        accepted: "an integer >= 0",
        help: "untimed ops per thread before the measured phase",
    },
    FieldDoc {
        name: "size",
        accepted: SIZE_ACCEPTED,
        help: "distribution of requested block sizes",
    },
    FieldDoc {
        name: "lifetime",
        accepted: LIFETIME_ACCEPTED,
        help: "when blocks die: free at once, FIFO window, random slot replacement, batches, long-lived survivors",
    },
    FieldDoc {
        name: "remote_free_fraction",
        accepted: FRACTION_ACCEPTED,
        help: "fraction of frees handed to another thread and freed there",
    },
    FieldDoc {
        name: "realloc_fraction",
        accepted: FRACTION_ACCEPTED,
        help: "fraction of allocations followed by a realloc to a new size",
    },
    FieldDoc {
        name: "align",
        accepted: "a power of two, 1..=4096",
        help: "alignment of every request",
    },
    FieldDoc {
        name: "touch_bytes",
        accepted: "all, or a byte count 0..=268435456",
        help: "bytes written into each block (capped at its size)",
    },
    FieldDoc {
        name: "touch_passes",
        accepted: "0..=1000000",
        help: "times those bytes are written",
    },
    FieldDoc {
        name: "rounds",
        accepted: "1..=10000, and at most ops_per_thread",
        help: "thread generations: each round runs on a fresh thread that inherits the live blocks",
    },
    FieldDoc {
        name: "switch_interval_us",
        accepted: "1..=10000000",
        help: "GIL switch interval for the gil subject (CPython default 5000)",
    },
    FieldDoc {
        name: "geometry",
        accepted: "classic, modern, tiny",
        help: "arena/pool/alignment geometry of our own allocators",
    },
    FieldDoc {
        name: "verify",
        accepted: "true, false",
        help: "tag every block and check it before it is freed",
    },
    FieldDoc {
        name: "latency_sample_one_in",
        accepted: "0..=1048576",
        help: "time one op in this many (1 = every op, 0 = no latency timing)",
    },
    FieldDoc {
        name: "seed",
        accepted: "an integer 0..=18446744073709551615",
        help: "RNG seed; each thread is seeded from (seed, thread)",
    },
];

fn accepted_for(field: &str) -> &'static str {
    FIELDS
        .iter()
        .find(|f| f.name == field)
        .map_or("", |f| f.accepted)
}

fn known_fields() -> String {
    FIELDS.iter().map(|f| f.name).collect::<Vec<_>>().join(", ")
}

fn invalid(field: &str, value: impl fmt::Display, reason: impl Into<String>) -> WorkloadError {
    WorkloadError::Invalid {
        field: field.to_string(),
        value: value.to_string(),
        reason: reason.into(),
        accepted: accepted_for(field).to_string(),
    }
}

/// Deserializes one field's TOML value, naming the field on failure.
fn from_value<T: serde::de::DeserializeOwned>(
    field: &str,
    value: toml::Value,
) -> Result<T, WorkloadError> {
    let shown = value.to_string();
    value
        .try_into::<T>()
        .map_err(|e| invalid(field, shown, e.message().trim().to_string()))
}

impl Workload {
    /// Parses and validates a TOML workload. Unknown fields, values of the
    /// wrong type and out-of-range values are errors naming the field.
    pub fn from_toml_str(s: &str) -> Result<Workload, WorkloadError> {
        let table: toml::Table =
            toml::from_str(s).map_err(|e| WorkloadError::Syntax(e.to_string()))?;
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
                w.apply(&key, value)?;
            }
        }
        w.validate()?;
        Ok(w)
    }

    /// Reads, parses and validates a TOML workload file. Without a `name`
    /// field (or preset), the workload is named after the file stem.
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
                let mut candidate = w.clone();
                candidate.name = stem.to_string();
                if candidate.validate().is_ok() {
                    w = candidate;
                }
            }
        }
        Ok(w)
    }

    /// The workload as TOML, in the form [`Workload::from_toml_str`] reads.
    pub fn to_toml(&self) -> String {
        // Serializing plain data (strings, numbers, booleans, tables) into
        // TOML cannot fail; fall back to the JSON form rather than panic.
        toml::to_string(self).unwrap_or_else(|e| format!("# {e}\n# {self:?}\n"))
    }

    /// Sets one field from its textual value (CLI flags and sweeps), with
    /// the same parsing and validation as a workload file. On error the
    /// workload is unchanged.
    ///
    /// Dashes in `field` read as underscores (`remote-free-fraction`), for
    /// command-line spelling.
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
        next.apply(field, parsed)?;
        next.validate()?;
        *self = next;
        Ok(())
    }

    /// The current value of a field, in the compact form `set` accepts back
    /// (`16..512`, `random:1000`, `0.25`): for labels and sweep keys.
    pub fn get(&self, field: &str) -> Result<String, WorkloadError> {
        let field = field.replace('-', "_");
        let field = field.as_str();
        let value = match field {
            "name" => return Ok(self.name.clone()),
            "geometry" => return Ok(self.geometry.clone()),
            "ops_per_thread" => return Ok(opt_to_string(self.ops_per_thread)),
            "duration_ms" => return Ok(opt_to_string(self.duration_ms)),
            "touch_bytes" => return Ok(self.touch_bytes.to_string()),
            "size" => return Ok(self.size.to_string()),
            "lifetime" => return Ok(self.lifetime.to_string()),
            "threads" => toml::Value::try_from(self.threads as u64),
            "warmup_ops" => toml::Value::try_from(self.warmup_ops),
            "remote_free_fraction" => toml::Value::try_from(self.remote_free_fraction),
            "realloc_fraction" => toml::Value::try_from(self.realloc_fraction),
            "align" => toml::Value::try_from(self.align as u64),
            "touch_passes" => toml::Value::try_from(self.touch_passes),
            "rounds" => toml::Value::try_from(self.rounds),
            "switch_interval_us" => toml::Value::try_from(self.switch_interval_us),
            "verify" => toml::Value::try_from(self.verify),
            "latency_sample_one_in" => toml::Value::try_from(self.latency_sample_one_in),
            "seed" => return Ok(self.seed.to_string()),
            _ => {
                return Err(WorkloadError::UnknownField {
                    field: field.to_string(),
                    known: known_fields(),
                })
            }
        };
        value
            .map(|v| v.to_string())
            .map_err(|e| invalid(field, "(unprintable)", e.to_string()))
    }

    /// Every field with what it accepts and what it does.
    pub fn fields() -> &'static [FieldDoc] {
        FIELDS
    }

    /// Assigns one field from a TOML value (type checks only; ranges are
    /// [`Workload::validate`]'s job).
    fn apply(&mut self, field: &str, value: toml::Value) -> Result<(), WorkloadError> {
        match field {
            "name" => self.name = from_value(field, value)?,
            "threads" => self.threads = from_value(field, value)?,
            "ops_per_thread" => {
                self.ops_per_thread = Some(from_value(field, value)?);
                self.duration_ms = None;
            }
            "duration_ms" => {
                self.duration_ms = Some(from_value(field, value)?);
                self.ops_per_thread = None;
            }
            "warmup_ops" => self.warmup_ops = from_value(field, value)?,
            "size" => {
                self.size = match value {
                    toml::Value::String(s) => {
                        SizeDist::parse(&s).map_err(|r| invalid(field, format!("{s:?}"), r))?
                    }
                    toml::Value::Integer(n) => SizeDist::Fixed {
                        size: usize::try_from(n)
                            .map_err(|_| invalid(field, n, "a size cannot be negative"))?,
                    },
                    v => from_value(field, v)?,
                }
            }
            "lifetime" => {
                self.lifetime = match value {
                    toml::Value::String(s) => {
                        Lifetime::parse(&s).map_err(|r| invalid(field, format!("{s:?}"), r))?
                    }
                    v => from_value(field, v)?,
                }
            }
            "remote_free_fraction" => self.remote_free_fraction = from_value(field, value)?,
            "realloc_fraction" => self.realloc_fraction = from_value(field, value)?,
            "align" => self.align = from_value(field, value)?,
            "touch_bytes" => self.touch_bytes = from_value(field, value)?,
            "touch_passes" => self.touch_passes = from_value(field, value)?,
            "rounds" => self.rounds = from_value(field, value)?,
            "switch_interval_us" => self.switch_interval_us = from_value(field, value)?,
            "geometry" => self.geometry = from_value(field, value)?,
            "verify" => self.verify = from_value(field, value)?,
            "latency_sample_one_in" => self.latency_sample_one_in = from_value(field, value)?,
            "seed" => self.seed = from_value(field, value)?,
            _ => {
                return Err(WorkloadError::UnknownField {
                    field: field.to_string(),
                    known: known_fields(),
                })
            }
        }
        Ok(())
    }

    /// Checks every field's range and the fields' consistency; the first
    /// problem found is returned, naming its field.
    pub fn validate(&self) -> Result<(), WorkloadError> {
        let name_ok = !self.name.is_empty()
            && self.name.len() <= 64
            && self
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !name_ok {
            return Err(invalid(
                "name",
                format!("{:?}", self.name),
                "not a usable name",
            ));
        }
        if !(1..=MAX_THREADS).contains(&self.threads) {
            return Err(invalid("threads", self.threads, "out of range"));
        }
        match (self.ops_per_thread, self.duration_ms) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "duration_ms",
                    opt_to_string(self.duration_ms),
                    "set either ops_per_thread or duration_ms, not both",
                ))
            }
            (None, None) => {
                return Err(invalid(
                    "ops_per_thread",
                    "nothing",
                    "set ops_per_thread or duration_ms",
                ))
            }
            (Some(0), None) => return Err(invalid("ops_per_thread", 0, "no ops to run")),
            (None, Some(d)) if !(1..=MAX_DURATION_MS).contains(&d) => {
                return Err(invalid("duration_ms", d, "out of range"))
            }
            _ => {}
        }
        validate_size("size", &self.size)?;
        validate_lifetime(&self.lifetime)?;
        validate_fraction("remote_free_fraction", self.remote_free_fraction)?;
        validate_fraction("realloc_fraction", self.realloc_fraction)?;
        if !self.align.is_power_of_two() || self.align > MAX_ALIGN {
            return Err(invalid(
                "align",
                self.align,
                "not a power of two up to 4096",
            ));
        }
        if let Touch::Bytes(n) = self.touch_bytes {
            if n > MAX_BLOCK_SIZE {
                return Err(invalid("touch_bytes", n, "larger than any block"));
            }
        }
        if self.touch_passes > 1_000_000 {
            return Err(invalid("touch_passes", self.touch_passes, "out of range"));
        }
        if !(1..=10_000).contains(&self.rounds) {
            return Err(invalid("rounds", self.rounds, "out of range"));
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
        if !(1..=10_000_000).contains(&self.switch_interval_us) {
            return Err(invalid(
                "switch_interval_us",
                self.switch_interval_us,
                "out of range",
            ));
        }
        if allocator::Geometry::by_name(&self.geometry).is_none() {
            return Err(invalid(
                "geometry",
                format!("{:?}", self.geometry),
                "unknown geometry",
            ));
        }
        if self.latency_sample_one_in > 1 << 20 {
            return Err(invalid(
                "latency_sample_one_in",
                self.latency_sample_one_in,
                "out of range",
            ));
        }
        Ok(())
    }

    /// The same workload scaled down for `--quick`: a tenth of the ops,
    /// warm-up and duration (at least one op per round).
    pub fn quick(mut self) -> Workload {
        if let Some(ops) = self.ops_per_thread {
            self.ops_per_thread = Some((ops / 10).max(u64::from(self.rounds)).max(1));
        }
        if let Some(d) = self.duration_ms {
            self.duration_ms = Some((d / 10).max(1));
        }
        self.warmup_ops /= 10;
        self
    }

    /// Slots a thread's plan uses: the driver's per-thread slot table size.
    /// Counts out of range are clamped as [`Workload::plan`] clamps them.
    pub fn slots(&self) -> usize {
        match &self.lifetime {
            Lifetime::Immediate => 1,
            Lifetime::Fifo { window: n }
            | Lifetime::Random { slots: n }
            | Lifetime::Batch { count: n, .. } => clamp_count(*n),
            Lifetime::LongLived { slots, window, .. } => clamp_count(*window) + clamp_count(*slots),
        }
    }

    /// Measured ops of round `round` (0-based) for one thread: the ops are
    /// split evenly, the remainder going to the first rounds. `None` when
    /// the workload runs for a duration (split the time instead) or the
    /// round does not exist.
    pub fn ops_in_round(&self, round: u32) -> Option<u64> {
        let ops = self.ops_per_thread?;
        let rounds = u64::from(self.rounds.max(1));
        let round = u64::from(round);
        (round < rounds).then(|| ops / rounds + u64::from(round < ops % rounds))
    }

    /// The deterministic action generator of thread `thread` (0-based).
    ///
    /// Expects a workload that passed [`Workload::validate`]; out-of-range
    /// values are clamped rather than panicking.
    pub fn plan(&self, thread: usize) -> Plan {
        Plan::new(self, thread)
    }
}

/// A slot count as plans use it: at least 1, at most [`MAX_SLOTS`].
fn clamp_count(n: usize) -> usize {
    n.clamp(1, MAX_SLOTS)
}

fn opt_to_string(v: Option<u64>) -> String {
    v.map_or_else(|| "unset".to_string(), |v| v.to_string())
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

fn validate_fraction(field: &str, v: f64) -> Result<(), WorkloadError> {
    if v.is_finite() && (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err(invalid(field, v, "not a fraction"))
    }
}

fn validate_size(field: &str, d: &SizeDist) -> Result<(), WorkloadError> {
    let shown = || toml::Value::try_from(d).map_or_else(|_| format!("{d:?}"), |v| v.to_string());
    let in_range = |n: usize| (1..=MAX_BLOCK_SIZE).contains(&n);
    let check_range = |min: usize, max: usize| {
        if !in_range(min) || !in_range(max) {
            Err(invalid(field, shown(), "sizes must be 1..=268435456"))
        } else if min > max {
            Err(invalid(field, shown(), format!("min {min} > max {max}")))
        } else {
            Ok(())
        }
    };
    match d {
        SizeDist::Fixed { size } => check_range(*size, *size),
        SizeDist::Uniform { min, max }
        | SizeDist::LogUniform { min, max }
        | SizeDist::InverseSquare { min, max } => check_range(*min, *max),
        SizeDist::Weighted { table } => {
            if table.is_empty() {
                return Err(invalid(field, shown(), "the weighted table is empty"));
            }
            for row in table {
                if !in_range(row.size) {
                    return Err(invalid(field, shown(), "sizes must be 1..=268435456"));
                }
                if !row.weight.is_finite() || row.weight < 0.0 {
                    return Err(invalid(
                        field,
                        shown(),
                        format!("weight {} is not a finite number >= 0", row.weight),
                    ));
                }
            }
            if table.iter().all(|r| r.weight == 0.0) {
                return Err(invalid(field, shown(), "every weight is zero"));
            }
            Ok(())
        }
        SizeDist::Python {
            large_fraction,
            large_max,
        } => {
            if !large_fraction.is_finite() || !(0.0..=1.0).contains(large_fraction) {
                return Err(invalid(field, shown(), "large_fraction is not a fraction"));
            }
            if *large_max <= allocator::geometry::SMALL_REQUEST_THRESHOLD
                || *large_max > MAX_BLOCK_SIZE
            {
                return Err(invalid(field, shown(), "large_max must be 513..=268435456"));
            }
            Ok(())
        }
    }
}

fn validate_lifetime(l: &Lifetime) -> Result<(), WorkloadError> {
    let field = "lifetime";
    let shown = || toml::Value::try_from(l).map_or_else(|_| format!("{l:?}"), |v| v.to_string());
    let count_ok = |n: usize| (1..=MAX_SLOTS).contains(&n);
    match l {
        Lifetime::Immediate => Ok(()),
        Lifetime::Fifo { window: n } | Lifetime::Random { slots: n } => {
            if count_ok(*n) {
                Ok(())
            } else {
                Err(invalid(field, shown(), "count out of range"))
            }
        }
        Lifetime::Batch { count, .. } => {
            if count_ok(*count) {
                Ok(())
            } else {
                Err(invalid(field, shown(), "batch count out of range"))
            }
        }
        Lifetime::LongLived {
            fraction,
            slots,
            window,
            size,
        } => {
            if !fraction.is_finite() || !(0.0..=1.0).contains(fraction) {
                return Err(invalid(field, shown(), "fraction is not a fraction"));
            }
            if !count_ok(*slots) || !count_ok(*window) {
                return Err(invalid(field, shown(), "slots or window out of range"));
            }
            if let Some(size) = size {
                validate_size(field, size)?;
            }
            Ok(())
        }
    }
}

fn parse_usize(s: &str, what: &str) -> Result<usize, String> {
    s.trim()
        .replace('_', "")
        .parse::<usize>()
        .map_err(|_| format!("{what} {s:?} is not a whole number"))
}

fn parse_f64(s: &str, what: &str) -> Result<f64, String> {
    s.trim()
        .parse::<f64>()
        .map_err(|_| format!("{what} {s:?} is not a number"))
}

fn parse_range(s: &str) -> Result<(usize, usize), String> {
    let (lo, hi) = s
        .split_once("..=")
        .or_else(|| s.split_once(".."))
        .ok_or_else(|| format!("expected MIN..MAX, got {s:?}"))?;
    Ok((parse_usize(lo, "min")?, parse_usize(hi, "max")?))
}

impl SizeDist {
    /// Parses the compact form: `64` (fixed), `16..512` (uniform, both
    /// ends included; `..=` also accepted), `fixed:64`, `uniform:16..512`,
    /// `log-uniform:16..4096`, `inverse-square:4..32768`,
    /// `weighted:16=5,64=2,4096=1`, `python`, `python:0.02`,
    /// `python:0.02:65536`. Ranges are checked by [`Workload::validate`].
    pub fn parse(s: &str) -> Result<SizeDist, String> {
        let s = s.trim();
        let (kind, rest) = s.split_once(':').unwrap_or((s, ""));
        match kind {
            "fixed" => Ok(SizeDist::Fixed {
                size: parse_usize(rest, "size")?,
            }),
            "uniform" => parse_range(rest).map(|(min, max)| SizeDist::Uniform { min, max }),
            "log-uniform" => parse_range(rest).map(|(min, max)| SizeDist::LogUniform { min, max }),
            "inverse-square" => {
                parse_range(rest).map(|(min, max)| SizeDist::InverseSquare { min, max })
            }
            "weighted" => {
                let table = rest
                    .split([',', ';'])
                    .filter(|e| !e.trim().is_empty())
                    .map(|e| {
                        let (size, weight) = e
                            .split_once('=')
                            .ok_or_else(|| format!("expected SIZE=WEIGHT, got {e:?}"))?;
                        Ok(WeightedSize {
                            size: parse_usize(size, "size")?,
                            weight: parse_f64(weight, "weight")?,
                        })
                    })
                    .collect::<Result<Vec<_>, String>>()?;
                Ok(SizeDist::Weighted { table })
            }
            "python" => {
                let mut parts = rest.split(':').filter(|p| !p.is_empty());
                let large_fraction = parts
                    .next()
                    .map(|p| parse_f64(p, "large_fraction"))
                    .transpose()?
                    .unwrap_or_else(python_large_fraction);
                let large_max = parts
                    .next()
                    .map(|p| parse_usize(p, "large_max"))
                    .transpose()?
                    .unwrap_or_else(python_large_max);
                if let Some(extra) = parts.next() {
                    return Err(format!("unexpected {extra:?} after python:FRACTION:MAX"));
                }
                Ok(SizeDist::Python {
                    large_fraction,
                    large_max,
                })
            }
            _ if rest.is_empty() && s.contains("..") => {
                parse_range(s).map(|(min, max)| SizeDist::Uniform { min, max })
            }
            _ if rest.is_empty() => parse_usize(s, "size")
                .map(|size| SizeDist::Fixed { size })
                .map_err(|_| format!("unknown size distribution {s:?}")),
            _ => Err(format!("unknown size distribution kind {kind:?}")),
        }
    }
}

impl Lifetime {
    /// Parses the compact form: `immediate`, `fifo:64`, `random:1000`,
    /// `batch:100:lifo` (order `lifo`, `fifo`, `random` or `mixed`),
    /// `long-lived:0.02:2000:16` (fraction, survivor slots, short window;
    /// survivors take the workload's size distribution).
    pub fn parse(s: &str) -> Result<Lifetime, String> {
        let mut parts = s.trim().split(':');
        let kind = parts.next().unwrap_or("");
        let args: Vec<&str> = parts.collect();
        let want = |n: usize| {
            if args.len() == n {
                Ok(())
            } else {
                Err(format!(
                    "{kind} takes {n} argument(s) after ':', got {}",
                    args.len()
                ))
            }
        };
        match kind {
            "immediate" => want(0).map(|_| Lifetime::Immediate),
            "fifo" => {
                want(1)?;
                Ok(Lifetime::Fifo {
                    window: parse_usize(args[0], "window")?,
                })
            }
            "random" => {
                want(1)?;
                Ok(Lifetime::Random {
                    slots: parse_usize(args[0], "slots")?,
                })
            }
            "batch" => {
                want(2)?;
                Ok(Lifetime::Batch {
                    count: parse_usize(args[0], "count")?,
                    order: FreeOrder::parse(args[1]).ok_or_else(|| {
                        format!("order {:?}: expected {}", args[1], FreeOrder::ACCEPTED)
                    })?,
                })
            }
            "long-lived" => {
                want(3)?;
                Ok(Lifetime::LongLived {
                    fraction: parse_f64(args[0], "fraction")?,
                    slots: parse_usize(args[1], "slots")?,
                    window: parse_usize(args[2], "window")?,
                    size: None,
                })
            }
            _ => Err(format!("unknown lifetime kind {kind:?}")),
        }
    }
}

impl fmt::Display for SizeDist {
    /// The compact form [`SizeDist::parse`] reads back (weighted rows are
    /// separated by `;` so that the text survives comma-separated sweeps).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SizeDist::Fixed { size } => write!(f, "{size}"),
            SizeDist::Uniform { min, max } => write!(f, "{min}..{max}"),
            SizeDist::LogUniform { min, max } => write!(f, "log-uniform:{min}..{max}"),
            SizeDist::InverseSquare { min, max } => write!(f, "inverse-square:{min}..{max}"),
            SizeDist::Weighted { table } => {
                f.write_str("weighted:")?;
                for (i, row) in table.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ";" };
                    write!(f, "{sep}{}={}", row.size, row.weight)?;
                }
                Ok(())
            }
            SizeDist::Python {
                large_fraction,
                large_max,
            } => write!(f, "python:{large_fraction}:{large_max}"),
        }
    }
}

impl fmt::Display for Lifetime {
    /// The compact form [`Lifetime::parse`] reads back; a long-lived
    /// lifetime with its own survivor sizes has none, and is written as a
    /// TOML inline table, which `set` also reads.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Lifetime::Immediate => f.write_str("immediate"),
            Lifetime::Fifo { window } => write!(f, "fifo:{window}"),
            Lifetime::Random { slots } => write!(f, "random:{slots}"),
            Lifetime::Batch { count, order } => {
                let order = match order {
                    FreeOrder::Lifo => "lifo",
                    FreeOrder::Fifo => "fifo",
                    FreeOrder::Random => "random",
                    FreeOrder::Mixed => "mixed",
                };
                write!(f, "batch:{count}:{order}")
            }
            Lifetime::LongLived {
                fraction,
                slots,
                window,
                size: None,
            } => write!(f, "long-lived:{fraction}:{slots}:{window}"),
            Lifetime::LongLived { .. } => match toml::Value::try_from(self) {
                Ok(v) => write!(f, "{v}"),
                Err(_) => write!(f, "{self:?}"),
            },
        }
    }
}

/// One step of a thread's plan. Each counts as one op.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    /// Allocate `size` bytes aligned to `align` into `slot` (which is empty).
    Alloc {
        /// Slot to fill.
        slot: usize,
        /// Requested size.
        size: usize,
        /// Requested alignment.
        align: usize,
    },
    /// Free the block in `slot` on this thread; the slot becomes empty.
    Free {
        /// Slot to empty.
        slot: usize,
    },
    /// Give the block in `slot` to another thread, which frees it (a remote
    /// free); the slot becomes empty here.
    Handoff {
        /// Slot to empty.
        slot: usize,
    },
    /// Reallocate the block in `slot` to `new_size`; the slot stays live.
    Realloc {
        /// Slot whose block is resized.
        slot: usize,
        /// The new size.
        new_size: usize,
    },
}

/// A size distribution prepared for sampling: no allocation per sample.
#[derive(Clone, Debug)]
enum SizeSampler {
    Fixed(usize),
    Uniform(Uniform<usize>),
    Log(LogBand),
    InverseSquare {
        inv_lo: f64,
        inv_span: f64,
        lo: usize,
        hi: usize,
    },
    Table {
        index: WeightedIndex<f64>,
        bands: Box<[Band]>,
    },
}

/// Log-uniform over `lo..=hi`, sampled as exp of a uniform in log space.
#[derive(Clone, Copy, Debug)]
struct LogBand {
    ln_lo: f64,
    ln_span: f64,
    lo: usize,
    hi: usize,
}

impl LogBand {
    fn new(lo: usize, hi: usize) -> LogBand {
        let lo = lo.max(1);
        let hi = hi.max(lo);
        let ln_lo = (lo as f64).ln();
        // Sample [lo, hi + 1) and floor, so that `hi` is as likely as its
        // neighbours.
        LogBand {
            ln_lo,
            ln_span: ((hi + 1) as f64).ln() - ln_lo,
            lo,
            hi,
        }
    }

    fn sample(&self, rng: &mut SmallRng) -> usize {
        let u: f64 = rng.random();
        ((self.ln_lo + u * self.ln_span).exp() as usize).clamp(self.lo, self.hi)
    }
}

#[derive(Clone, Copy, Debug)]
enum Band {
    Uniform(usize, usize),
    Log(LogBand),
}

fn uniform(lo: usize, hi: usize) -> Uniform<usize> {
    let (lo, hi) = (lo.min(hi).max(1), hi.max(lo).max(1));
    // lo <= hi, so this cannot fail; the fallback only keeps us panic-free.
    Uniform::new_inclusive(lo, hi)
        .unwrap_or_else(|_| Uniform::new_inclusive(1usize, 1usize).expect("1..=1 is a valid range"))
}

impl SizeSampler {
    fn new(d: &SizeDist) -> SizeSampler {
        let clamp = |n: usize| n.clamp(1, MAX_BLOCK_SIZE);
        match d {
            SizeDist::Fixed { size } => SizeSampler::Fixed(clamp(*size)),
            SizeDist::Uniform { min, max } => {
                SizeSampler::Uniform(uniform(clamp(*min), clamp(*max)))
            }
            SizeDist::LogUniform { min, max } => {
                SizeSampler::Log(LogBand::new(clamp(*min), clamp(*max)))
            }
            SizeDist::InverseSquare { min, max } => {
                let lo = clamp(*min.min(max));
                let hi = clamp(*max.max(min));
                // Inverse CDF of a density proportional to 1/x² on
                // [lo, hi + 1): x = 1 / (1/lo - u (1/lo - 1/(hi + 1))).
                let inv_lo = 1.0 / lo as f64;
                SizeSampler::InverseSquare {
                    inv_lo,
                    inv_span: inv_lo - 1.0 / (hi + 1) as f64,
                    lo,
                    hi,
                }
            }
            SizeDist::Weighted { table } => {
                let bands: Vec<Band> = table
                    .iter()
                    .map(|r| Band::Uniform(clamp(r.size), clamp(r.size)))
                    .collect();
                let weights = table.iter().map(|r| {
                    if r.weight.is_finite() {
                        r.weight.max(0.0)
                    } else {
                        0.0
                    }
                });
                match WeightedIndex::new(weights) {
                    Ok(index) => SizeSampler::Table {
                        index,
                        bands: bands.into_boxed_slice(),
                    },
                    // Only an invalid (empty or all-zero) table gets here.
                    Err(_) => SizeSampler::Fixed(table.first().map_or(1, |r| clamp(r.size))),
                }
            }
            SizeDist::Python {
                large_fraction,
                large_max,
            } => {
                let large = if large_fraction.is_finite() {
                    large_fraction.clamp(0.0, 1.0)
                } else {
                    0.0
                };
                let small_total: f64 = PYTHON_BANDS.iter().map(|b| b.2).sum();
                let mut bands: Vec<Band> = PYTHON_BANDS
                    .iter()
                    .map(|&(lo, hi, _)| Band::Uniform(lo, hi))
                    .collect();
                let mut weights: Vec<f64> = PYTHON_BANDS
                    .iter()
                    .map(|b| b.2 / small_total * (1.0 - large))
                    .collect();
                let threshold = allocator::geometry::SMALL_REQUEST_THRESHOLD;
                bands.push(Band::Log(LogBand::new(
                    threshold + 1,
                    clamp(*large_max).max(threshold + 1),
                )));
                weights.push(large);
                match WeightedIndex::new(weights) {
                    Ok(index) => SizeSampler::Table {
                        index,
                        bands: bands.into_boxed_slice(),
                    },
                    Err(_) => SizeSampler::Fixed(64),
                }
            }
        }
    }

    #[inline]
    fn sample(&self, rng: &mut SmallRng) -> usize {
        match self {
            SizeSampler::Fixed(n) => *n,
            SizeSampler::Uniform(u) => u.sample(rng),
            SizeSampler::Log(b) => b.sample(rng),
            SizeSampler::InverseSquare {
                inv_lo,
                inv_span,
                lo,
                hi,
            } => {
                let u: f64 = rng.random();
                ((1.0 / (inv_lo - u * inv_span)) as usize).clamp(*lo, *hi)
            }
            SizeSampler::Table { index, bands } => match bands[index.sample(rng)] {
                Band::Uniform(lo, hi) if lo == hi => lo,
                Band::Uniform(lo, hi) => rng.random_range(lo..=hi),
                Band::Log(b) => b.sample(rng),
            },
        }
    }
}

/// A follow-up action already decided by the previous step.
#[derive(Clone, Copy, Debug)]
enum Pending {
    None,
    Alloc { slot: usize, long: bool },
    Realloc { slot: usize, long: bool },
}

/// The lifetime, prepared: per-shape cursors over the slot table.
#[derive(Clone, Debug)]
enum Shape {
    Immediate,
    Fifo {
        window: usize,
        head: usize,
        tail: usize,
    },
    Random {
        slots: Uniform<usize>,
        count: usize,
        filled: usize,
    },
    Batch {
        count: usize,
        order: FreeOrder,
        /// Order of the current free phase (never `Mixed`).
        current: FreeOrder,
        freeing: bool,
        next: usize,
        perm: Box<[u32]>,
    },
    LongLived {
        window: usize,
        head: usize,
        tail: usize,
        short_live: usize,
        survivor: Bernoulli,
        slots: Uniform<usize>,
        count: usize,
        filled: usize,
    },
}

/// One thread's deterministic stream of [`Action`]s (see the module docs).
#[derive(Clone, Debug)]
pub struct Plan {
    rng: SmallRng,
    sizes: SizeSampler,
    /// Survivor sizes of [`Lifetime::LongLived`] when they differ.
    long_sizes: Option<SizeSampler>,
    align: usize,
    /// `None`: never hand off (no remote frees, or a single thread).
    remote: Option<Bernoulli>,
    realloc: Option<Bernoulli>,
    /// Actions left; `None` for a duration-bound (unbounded) plan.
    remaining: Option<u64>,
    live: Box<[bool]>,
    live_count: usize,
    pending: Pending,
    shape: Shape,
}

/// SplitMix64 finaliser: spreads (seed, thread) into unrelated RNG seeds.
fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn chance(p: f64) -> Option<Bernoulli> {
    if p.is_finite() && p > 0.0 {
        Bernoulli::new(p.min(1.0)).ok()
    } else {
        None
    }
}

fn slot_range(n: usize) -> Uniform<usize> {
    Uniform::new(0, n.max(1)).unwrap_or_else(|_| uniform(0, 0))
}

impl Plan {
    fn new(w: &Workload, thread: usize) -> Plan {
        let rng = SmallRng::seed_from_u64(mix64(w.seed) ^ mix64(!(thread as u64)));
        let (shape, long_sizes) = match &w.lifetime {
            Lifetime::Immediate => (Shape::Immediate, None),
            Lifetime::Fifo { window } => (
                Shape::Fifo {
                    window: clamp_count(*window),
                    head: 0,
                    tail: 0,
                },
                None,
            ),
            Lifetime::Random { slots } => (
                Shape::Random {
                    slots: slot_range(clamp_count(*slots)),
                    count: clamp_count(*slots),
                    filled: 0,
                },
                None,
            ),
            Lifetime::Batch { count, order } => {
                let count = clamp_count(*count);
                (
                    Shape::Batch {
                        count,
                        order: *order,
                        current: FreeOrder::Lifo,
                        freeing: false,
                        next: 0,
                        perm: (0..count as u32).collect(),
                    },
                    None,
                )
            }
            Lifetime::LongLived {
                fraction,
                slots,
                window,
                size,
            } => (
                Shape::LongLived {
                    window: clamp_count(*window),
                    head: 0,
                    tail: 0,
                    short_live: 0,
                    survivor: Bernoulli::new(if fraction.is_finite() {
                        fraction.clamp(0.0, 1.0)
                    } else {
                        0.0
                    })
                    .unwrap_or_else(|_| Bernoulli::new(0.0).expect("0 is a probability")),
                    slots: slot_range(clamp_count(*slots)),
                    count: clamp_count(*slots),
                    filled: 0,
                },
                size.as_ref().map(SizeSampler::new),
            ),
        };
        let remaining = match w.duration_ms {
            Some(_) => None,
            None => Some(
                w.warmup_ops
                    .saturating_add(w.ops_per_thread.unwrap_or_default()),
            ),
        };
        Plan {
            rng,
            sizes: SizeSampler::new(&w.size),
            long_sizes,
            align: if w.align.is_power_of_two() {
                w.align.min(MAX_ALIGN)
            } else {
                8
            },
            remote: if w.threads > 1 {
                chance(w.remote_free_fraction)
            } else {
                None
            },
            realloc: chance(w.realloc_fraction),
            remaining,
            live: vec![false; w.slots()].into_boxed_slice(),
            live_count: 0,
            pending: Pending::None,
            shape,
        }
    }

    /// Size of the slot table this plan indexes (slots are `0..slots()`).
    pub fn slots(&self) -> usize {
        self.live.len()
    }

    /// Whether `slot` holds a block (out-of-range slots hold none).
    pub fn is_live(&self, slot: usize) -> bool {
        self.live.get(slot).copied().unwrap_or(false)
    }

    /// Blocks live now.
    pub fn live_count(&self) -> usize {
        self.live_count
    }

    /// The live slots, in slot order: what the driver frees when it drains.
    pub fn live_slots(&self) -> impl Iterator<Item = usize> + '_ {
        self.live
            .iter()
            .enumerate()
            .filter_map(|(i, &l)| l.then_some(i))
    }

    /// Actions left, or `None` when the plan is duration-bound (unbounded).
    pub fn remaining(&self) -> Option<u64> {
        self.remaining
    }

    #[inline]
    fn sample_size(&mut self, long: bool) -> usize {
        match (&self.long_sizes, long) {
            (Some(s), true) => s.sample(&mut self.rng),
            _ => self.sizes.sample(&mut self.rng),
        }
    }

    #[inline]
    fn alloc(&mut self, slot: usize, long: bool) -> Action {
        debug_assert!(!self.live[slot], "allocating into live slot {slot}");
        self.live[slot] = true;
        self.live_count += 1;
        let size = self.sample_size(long);
        if let Some(r) = self.realloc {
            if r.sample(&mut self.rng) {
                self.pending = Pending::Realloc { slot, long };
            }
        }
        Action::Alloc {
            slot,
            size,
            align: self.align,
        }
    }

    #[inline]
    fn release(&mut self, slot: usize) -> Action {
        debug_assert!(self.live[slot], "freeing empty slot {slot}");
        self.live[slot] = false;
        self.live_count -= 1;
        match self.remote {
            Some(r) if r.sample(&mut self.rng) => Action::Handoff { slot },
            _ => Action::Free { slot },
        }
    }

    /// Decides the next action from the lifetime shape.
    #[inline]
    fn step(&mut self) -> Action {
        match &mut self.shape {
            Shape::Immediate => {
                if self.live[0] {
                    self.release(0)
                } else {
                    self.alloc(0, false)
                }
            }
            Shape::Fifo { window, head, tail } => {
                if self.live_count == *window {
                    let slot = *tail;
                    *tail = (*tail + 1) % *window;
                    self.release(slot)
                } else {
                    let slot = *head;
                    *head = (*head + 1) % *window;
                    self.alloc(slot, false)
                }
            }
            Shape::Random {
                slots,
                count,
                filled,
            } => {
                if *filled < *count {
                    let slot = *filled;
                    *filled += 1;
                    self.alloc(slot, false)
                } else {
                    // Larson's step: free a random slot's block, refill it.
                    let slot = slots.sample(&mut self.rng);
                    self.pending = Pending::Alloc { slot, long: false };
                    self.release(slot)
                }
            }
            Shape::Batch {
                count,
                order,
                current,
                freeing,
                next,
                perm,
            } => {
                if !*freeing {
                    let slot = *next;
                    *next += 1;
                    if *next == *count {
                        *freeing = true;
                        *next = 0;
                        *current = match *order {
                            FreeOrder::Mixed => match self.rng.random_range(0..3u8) {
                                0 => FreeOrder::Lifo,
                                1 => FreeOrder::Fifo,
                                _ => FreeOrder::Random,
                            },
                            o => o,
                        };
                        if *current == FreeOrder::Random {
                            // Fisher–Yates in place: O(1) amortised per op.
                            for i in (1..perm.len()).rev() {
                                let j = self.rng.random_range(0..=i);
                                perm.swap(i, j);
                            }
                        }
                    }
                    self.alloc(slot, false)
                } else {
                    let k = *next;
                    *next += 1;
                    let slot = match *current {
                        FreeOrder::Lifo => *count - 1 - k,
                        FreeOrder::Fifo => k,
                        FreeOrder::Random | FreeOrder::Mixed => perm[k] as usize,
                    };
                    if *next == *count {
                        *freeing = false;
                        *next = 0;
                    }
                    self.release(slot)
                }
            }
            Shape::LongLived {
                window,
                head,
                tail,
                short_live,
                survivor,
                slots,
                count,
                filled,
            } => {
                if *short_live == *window {
                    let slot = *tail;
                    *tail = (*tail + 1) % *window;
                    *short_live -= 1;
                    return self.release(slot);
                }
                if survivor.sample(&mut self.rng) {
                    let base = *window;
                    if *filled < *count {
                        let slot = base + *filled;
                        *filled += 1;
                        self.alloc(slot, true)
                    } else {
                        // A new survivor replaces a random old one.
                        let slot = base + slots.sample(&mut self.rng);
                        self.pending = Pending::Alloc { slot, long: true };
                        self.release(slot)
                    }
                } else {
                    let slot = *head;
                    *head = (*head + 1) % *window;
                    *short_live += 1;
                    self.alloc(slot, false)
                }
            }
        }
    }
}

impl Iterator for Plan {
    type Item = Action;

    #[inline]
    fn next(&mut self) -> Option<Action> {
        if let Some(left) = &mut self.remaining {
            if *left == 0 {
                return None;
            }
            *left -= 1;
        }
        let action = match std::mem::replace(&mut self.pending, Pending::None) {
            Pending::None => self.step(),
            Pending::Alloc { slot, long } => self.alloc(slot, long),
            Pending::Realloc { slot, long } => Action::Realloc {
                slot,
                new_size: self.sample_size(long),
            },
        };
        Some(action)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self.remaining {
            Some(n) => {
                let n = usize::try_from(n).unwrap_or(usize::MAX);
                (n, Some(n))
            }
            None => (usize::MAX, None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        }
    }

    /// Parses `text` expecting an error, and returns it.
    fn bad(text: &str) -> WorkloadError {
        match Workload::from_toml_str(text) {
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
        assert!(Workload::default().validate().is_ok());
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
    fn a_file_may_start_from_a_preset() {
        let w = Workload::from_toml_str("preset = \"larson\"\nthreads = 4").unwrap();
        let mut want = crate::spec::preset::get("larson").unwrap();
        want.threads = 4;
        assert_eq!(w, want);
        assert_names(
            &bad("preset = \"nope\""),
            "preset",
            &["nope", "larson", "python"],
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
        assert_names(&bad("ops_per_thread = 0"), "ops_per_thread", &["no ops"]);
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
    fn from_file_reads_and_names_after_the_stem() {
        let dir = std::env::temp_dir().join(format!("poolbench-wl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("my-load.toml");
        std::fs::write(&path, "threads = 2").unwrap();
        let w = Workload::from_file(&path).unwrap();
        assert_eq!((w.name.as_str(), w.threads), ("my-load", 2));
        std::fs::write(&path, FULL).unwrap();
        assert_eq!(Workload::from_file(&path).unwrap(), full());
        std::fs::remove_dir_all(&dir).unwrap();
        let e = Workload::from_file(&dir.join("absent.toml")).unwrap_err();
        assert!(matches!(e, WorkloadError::Read { .. }), "{e}");
        assert!(e.to_string().contains("absent.toml"));
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
            .iter()
            .map(|p| (p.workload)())
            .chain([full()])
        {
            for f in Workload::fields().iter().filter(|f| f.name != "preset") {
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
            .iter()
            .map(|p| (p.workload)())
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
        assert_eq!((w.ops_per_thread, w.warmup_ops), (Some(500), 10));
        w.validate().unwrap();
        let mut tiny = full();
        tiny.ops_per_thread = Some(5);
        assert_eq!(tiny.quick().ops_per_thread, Some(5));
    }

    #[test]
    fn rounds_split_the_ops_exactly() {
        let mut w = full();
        w.ops_per_thread = Some(5003);
        let split: Vec<u64> = (0..w.rounds).map(|r| w.ops_in_round(r).unwrap()).collect();
        assert_eq!(split, [1001, 1001, 1001, 1000, 1000]);
        assert_eq!(w.ops_in_round(w.rounds), None);
    }

    /// Every lifetime shape, with reallocs and remote frees, on two threads.
    fn shapes() -> Vec<Workload> {
        let lifetimes = [
            Lifetime::Immediate,
            Lifetime::Fifo { window: 7 },
            Lifetime::Random { slots: 50 },
            Lifetime::Batch {
                count: 9,
                order: FreeOrder::Mixed,
            },
            Lifetime::Batch {
                count: 9,
                order: FreeOrder::Random,
            },
            full().lifetime,
        ];
        let mut out: Vec<Workload> = lifetimes
            .into_iter()
            .map(|lifetime| Workload {
                threads: 2,
                ops_per_thread: Some(20_000),
                warmup_ops: 123,
                lifetime,
                remote_free_fraction: 0.3,
                realloc_fraction: 0.2,
                ..Workload::default()
            })
            .collect();
        out.extend(crate::spec::preset::all().iter().map(|p| {
            let mut w = (p.workload)().quick();
            w.threads = 2;
            w
        }));
        out
    }

    /// Replays a plan against our own model of the slot table, checking
    /// every action; returns counts (allocs, frees, handoffs, reallocs).
    fn replay(w: &Workload, thread: usize) -> [u64; 4] {
        let mut plan = w.plan(thread);
        let mut live = vec![false; plan.slots()];
        let mut counts = [0u64; 4];
        let (lo, hi) = size_bounds(&w.size, &w.lifetime);
        for a in plan.by_ref() {
            match a {
                Action::Alloc { slot, size, align } => {
                    assert!(!live[slot], "{}: alloc into live slot {slot}", w.name);
                    assert!((lo..=hi).contains(&size), "{}: size {size}", w.name);
                    assert_eq!(align, w.align);
                    live[slot] = true;
                    counts[0] += 1;
                }
                Action::Free { slot } | Action::Handoff { slot } => {
                    assert!(live[slot], "{}: free of empty slot {slot}", w.name);
                    live[slot] = false;
                    counts[if matches!(a, Action::Free { .. }) {
                        1
                    } else {
                        2
                    }] += 1;
                }
                Action::Realloc { slot, new_size } => {
                    assert!(live[slot], "{}: realloc of empty slot {slot}", w.name);
                    assert!((lo..=hi).contains(&new_size));
                    counts[3] += 1;
                }
            }
        }
        assert_eq!(plan.live_count(), live.iter().filter(|&&l| l).count());
        let model: Vec<usize> = (0..live.len()).filter(|&i| live[i]).collect();
        assert_eq!(plan.live_slots().collect::<Vec<_>>(), model);
        assert_eq!(plan.remaining(), Some(0));
        counts
    }

    fn size_bounds(d: &SizeDist, l: &Lifetime) -> (usize, usize) {
        let one = |d: &SizeDist| match d {
            SizeDist::Fixed { size } => (*size, *size),
            SizeDist::Uniform { min, max }
            | SizeDist::LogUniform { min, max }
            | SizeDist::InverseSquare { min, max } => (*min, *max),
            SizeDist::Weighted { table } => (
                table.iter().map(|r| r.size).min().unwrap(),
                table.iter().map(|r| r.size).max().unwrap(),
            ),
            SizeDist::Python { large_max, .. } => (16, *large_max),
        };
        let (lo, hi) = one(d);
        match l {
            Lifetime::LongLived { size: Some(s), .. } => {
                let (l2, h2) = one(s);
                (lo.min(l2), hi.max(h2))
            }
            _ => (lo, hi),
        }
    }

    #[test]
    fn plans_keep_the_slot_invariants_and_the_exact_op_count() {
        for w in shapes() {
            w.validate().unwrap();
            for thread in 0..2 {
                let counts = replay(&w, thread);
                let total: u64 = counts.iter().sum();
                assert_eq!(
                    total,
                    w.warmup_ops + w.ops_per_thread.unwrap(),
                    "{}",
                    w.name
                );
            }
        }
    }

    #[test]
    fn remote_and_realloc_fractions_are_honoured() {
        let w = Workload {
            threads: 2,
            ops_per_thread: Some(200_000),
            lifetime: Lifetime::Immediate,
            remote_free_fraction: 0.3,
            realloc_fraction: 0.2,
            ..Workload::default()
        };
        let [allocs, frees, handoffs, reallocs] = replay(&w, 0);
        let remote = handoffs as f64 / (frees + handoffs) as f64;
        assert!((0.28..0.32).contains(&remote), "remote share {remote}");
        let realloc = reallocs as f64 / allocs as f64;
        assert!((0.18..0.22).contains(&realloc), "realloc share {realloc}");
    }

    #[test]
    fn one_thread_frees_locally() {
        let w = Workload {
            threads: 1,
            remote_free_fraction: 1.0,
            ..Workload::default()
        };
        let [allocs, frees, handoffs, _] = replay(&w, 0);
        assert_eq!(handoffs, 0);
        assert!(frees > 0 && allocs >= frees);
    }

    #[test]
    fn plans_are_deterministic_by_seed_and_thread() {
        for p in crate::spec::preset::all() {
            let mut w = (p.workload)().quick();
            w.threads = 2;
            let run = |w: &Workload, t: usize| w.plan(t).take(5_000).collect::<Vec<_>>();
            let a = run(&w, 0);
            assert_eq!(a, run(&w, 0), "{}: same seed, same plan", p.name);
            let mut other = w.clone();
            other.seed += 1;
            let differs_by_seed = a != run(&other, 0);
            let differs_by_thread = a != run(&w, 1);
            // Fixed sizes with immediate frees and no remote frees or
            // reallocs have no randomness to vary.
            let random = w.remote_free_fraction > 0.0
                || !matches!(w.size, SizeDist::Fixed { .. })
                || !matches!(w.lifetime, Lifetime::Immediate);
            assert_eq!(differs_by_seed, random, "{}", p.name);
            assert_eq!(differs_by_thread, random, "{}", p.name);
        }
    }

    #[test]
    fn touch_limits_the_bytes_written() {
        assert_eq!(Touch::All.bytes_for(100), 100);
        assert_eq!(Touch::Bytes(16).bytes_for(100), 16);
        assert_eq!(Touch::Bytes(16).bytes_for(8), 8);
        assert_eq!(u64::from(Touch::All), u64::MAX);
        assert_eq!(u64::from(Touch::Bytes(16)), 16);
    }

    #[test]
    fn invalid_workloads_give_plans_that_do_not_panic() {
        // A workload that skipped validation (say, JSON handed to a child
        // by hand) still gets a plan that keeps the slot invariants.
        let nan = f64::NAN;
        let sizes = [
            SizeDist::Uniform { min: 0, max: 0 },
            SizeDist::Uniform { min: 9, max: 3 },
            SizeDist::LogUniform { min: 0, max: 0 },
            SizeDist::InverseSquare {
                min: 0,
                max: usize::MAX,
            },
            SizeDist::Weighted { table: vec![] },
            SizeDist::Weighted {
                table: vec![WeightedSize {
                    size: 0,
                    weight: nan,
                }],
            },
            SizeDist::Python {
                large_fraction: nan,
                large_max: 0,
            },
        ];
        let lifetimes = [
            Lifetime::Fifo { window: 0 },
            Lifetime::Random { slots: 0 },
            Lifetime::Batch {
                count: 0,
                order: FreeOrder::Mixed,
            },
            Lifetime::LongLived {
                fraction: nan,
                slots: 0,
                window: 0,
                size: Some(SizeDist::Weighted { table: vec![] }),
            },
            Lifetime::LongLived {
                fraction: 7.0,
                slots: 0,
                window: 0,
                size: None,
            },
        ];
        for size in &sizes {
            for lifetime in &lifetimes {
                let w = Workload {
                    threads: 0,
                    ops_per_thread: None,
                    duration_ms: None,
                    warmup_ops: 2_000,
                    size: size.clone(),
                    lifetime: lifetime.clone(),
                    remote_free_fraction: nan,
                    realloc_fraction: 2.0,
                    align: 3,
                    ..Workload::default()
                };
                assert!(w.validate().is_err());
                let mut plan = w.plan(0);
                let mut live = vec![false; w.slots()];
                assert_eq!(plan.slots(), live.len());
                for a in plan.by_ref() {
                    match a {
                        Action::Alloc { slot, size, align } => {
                            assert!(!live[slot] && size >= 1 && align.is_power_of_two());
                            live[slot] = true;
                        }
                        Action::Free { slot } | Action::Handoff { slot } => {
                            assert!(live[slot]);
                            live[slot] = false;
                        }
                        Action::Realloc { slot, new_size } => {
                            assert!(live[slot] && new_size >= 1);
                        }
                    }
                }
                assert_eq!(plan.live_count(), live.iter().filter(|&&l| l).count());
            }
        }
        let huge = Workload {
            lifetime: Lifetime::Random { slots: usize::MAX },
            ..Workload::default()
        };
        assert_eq!(huge.slots(), MAX_SLOTS);
    }

    #[test]
    fn plans_can_move_to_another_thread() {
        // The driver moves a plan to a fresh thread each round.
        fn assert_send<T: Send + 'static>(_: &T) {}
        assert_send(&full().plan(0));
    }

    #[test]
    fn duration_plans_are_unbounded() {
        let mut w = Workload::default();
        w.set("duration_ms", "10").unwrap();
        let mut plan = w.plan(0);
        assert_eq!(plan.remaining(), None);
        assert_eq!(plan.by_ref().take(50_000).count(), 50_000);
        assert!(plan.next().is_some());
    }

    #[test]
    fn fifo_and_batch_free_in_their_order() {
        let frees = |lifetime: Lifetime, n: usize| -> Vec<usize> {
            let w = Workload {
                lifetime,
                ..Workload::default()
            };
            w.plan(0)
                .filter_map(|a| match a {
                    Action::Free { slot } => Some(slot),
                    _ => None,
                })
                .take(n)
                .collect()
        };
        assert_eq!(frees(Lifetime::Fifo { window: 3 }, 6), [0, 1, 2, 0, 1, 2]);
        let lifo = Lifetime::Batch {
            count: 3,
            order: FreeOrder::Lifo,
        };
        assert_eq!(frees(lifo, 6), [2, 1, 0, 2, 1, 0]);
        let fifo = Lifetime::Batch {
            count: 3,
            order: FreeOrder::Fifo,
        };
        assert_eq!(frees(fifo, 6), [0, 1, 2, 0, 1, 2]);
        let random = Lifetime::Batch {
            count: 4,
            order: FreeOrder::Random,
        };
        for batch in frees(random, 400).chunks(4) {
            let mut sorted = batch.to_vec();
            sorted.sort_unstable();
            assert_eq!(sorted, [0, 1, 2, 3]);
        }
    }

    fn sizes(size: SizeDist, n: usize) -> Vec<usize> {
        let w = Workload {
            size,
            lifetime: Lifetime::Immediate,
            ops_per_thread: Some(2 * n as u64),
            warmup_ops: 0,
            ..Workload::default()
        };
        w.plan(0)
            .filter_map(|a| match a {
                Action::Alloc { size, .. } => Some(size),
                _ => None,
            })
            .collect()
    }

    fn share(v: &[usize], f: impl Fn(usize) -> bool) -> f64 {
        v.iter().filter(|&&s| f(s)).count() as f64 / v.len() as f64
    }

    #[test]
    fn size_distributions_have_their_shape() {
        let u = sizes(SizeDist::Uniform { min: 10, max: 20 }, 50_000);
        assert!(u.iter().all(|s| (10..=20).contains(s)));
        assert!(u.contains(&10) && u.contains(&20));

        // Log-uniform: each octave about equally likely.
        let l = sizes(SizeDist::LogUniform { min: 16, max: 4095 }, 80_000);
        assert!(l.iter().all(|s| (16..=4095).contains(s)));
        let low = share(&l, |s| s < 64);
        let high = share(&l, |s| s >= 1024);
        assert!((0.2..0.3).contains(&low) && (0.2..0.3).contains(&high));

        // Inverse square on 4..=32768: P(size < 8) is about one half.
        let i = sizes(SizeDist::InverseSquare { min: 4, max: 32768 }, 80_000);
        assert!(i.iter().all(|s| (4..=32768).contains(s)));
        assert!((0.45..0.55).contains(&share(&i, |s| s < 8)));
        assert!(i.iter().any(|&s| s > 1024));

        let w = sizes(SizeDist::parse("weighted:16=3,4096=1").unwrap(), 80_000);
        assert!(w.iter().all(|&s| s == 16 || s == 4096));
        assert!((0.72..0.78).contains(&share(&w, |s| s == 16)));

        let p = sizes(
            SizeDist::Python {
                large_fraction: 0.02,
                large_max: 65536,
            },
            100_000,
        );
        assert!((0.97..0.99).contains(&share(&p, |s| (16..=512).contains(&s))));
        assert!(share(&p, |s| s <= 64) > 0.5);
        assert!(p.iter().all(|&s| (16..=65536).contains(&s)));
    }
}
